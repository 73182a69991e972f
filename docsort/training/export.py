"""A trained ``.keras`` model as the ``.onnx`` file the run-time engine runs.

Reading mail runs every network with ONNX Runtime (``docsort.reading.engine``), which needs no
TensorFlow. Each ``NAME.keras`` is exported to ``NAME.onnx`` beside it, and the two are run on
the same probe batches (two widths where the width is free) before the file is kept: an export
that changed what the model says is refused. The ``.keras`` stays: it is what training
reproduces and what the measured metrics name.

Export names tensors after a process-wide counter, so the same model exported twice would give
different bytes; tensors are renamed in graph order, which makes the file (and its sha256, which
the manifest records) depend only on the model. The ``.keras`` file's sha256 is kept in the
ONNX metadata (``source_sha256``), so anyone can tell which model an ``.onnx`` was made from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from docsort import settings
from docsort.errors import MissingDependencyError, UsageError

# Largest difference allowed between the Keras and the ONNX outputs on the probe batches.
TOLERANCE = 1e-4
PROBE_BATCH = 8
PROBE_WIDTHS = (64, 160)  # for inputs of any width: one narrow, one wide, both multiples of 4
# The graph output's name: what each network's output is.
OUTPUT_NAMES = {"digit": "probabilities", "crop": "p_handwritten", "field": "column_probabilities"}


def onnx_path(keras_file: str | os.PathLike) -> Path:
    return Path(keras_file).with_suffix(".onnx")


def export(keras_file: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> dict:
    """Write ``NAME.onnx`` beside ``NAME.keras`` and check both agree on probe batches.

    Returns ``{"file", "sha256", "source": {"file", "sha256"}, "max_difference"}``; raises
    ``UsageError`` when the exported file would answer differently (nothing is written then).
    """
    from docsort.reading.manifest import file_sha256
    from docsort.training.tf import keras as get_keras

    keras_file = Path(keras_file)
    if not keras_file.is_file():
        raise UsageError(f"no model file {keras_file}")
    keras = get_keras()
    try:
        model = keras.models.load_model(keras_file, compile=False)
    except Exception as exc:  # keras raises many types for a broken archive
        raise MissingDependencyError(f"model file {keras_file} is corrupt or unreadable: {_first_line(exc)}") from None
    probes = probe_batches(model)
    expected = [np.asarray(model(x, training=False), np.float32) for x in probes]  # export needs a called model
    source = {"file": keras_file.name, "sha256": file_sha256(str(keras_file.resolve()))}
    target = onnx_path(keras_file)
    with tempfile.TemporaryDirectory(prefix="docsort-export-") as scratch:
        raw = Path(scratch) / "raw.onnx"
        _keras_export(model, raw)
        staged = Path(scratch) / target.name
        staged.write_bytes(canonical_bytes(raw, source))
        worst = max(float(np.abs(got.reshape(want.shape) - want).max())
                    for got, want in zip(onnx_outputs(staged, probes), expected))
        if not worst <= TOLERANCE:
            raise UsageError(f"{target.name} would not answer like {keras_file.name} "
                             f"(outputs differ by up to {worst:.2g}); nothing written")
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(staged.read_bytes())
        os.replace(tmp, target)
    log(f"{keras_file.name} -> {target.name}: outputs agree within {worst:.1e}")
    return {"file": target.name, "sha256": file_sha256(str(target.resolve())), "source": source,
            "max_difference": worst}


def probe_batches(model) -> list[np.ndarray]:
    """Inputs in the models' range (0 paper .. 1 ink), at two widths when the width is free."""
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    widths = PROBE_WIDTHS if None in shape else (None,)
    batches = []
    for width in widths:
        full = tuple(width if d is None else d for d in shape)
        batches.append(rng.random((PROBE_BATCH, *full), dtype=np.float32))
    return batches


def onnx_outputs(path: Path, batches: list[np.ndarray]) -> list[np.ndarray]:
    """What ONNX Runtime answers for each batch, on one thread (a check of the file itself)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x})[0] for x in batches]


def export_folder(folder: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Export every ``.keras`` in ``folder``."""
    files = sorted(Path(folder).glob("*.keras"))
    if not files:
        raise UsageError(f"no .keras model in {folder}")
    return [export(path, log) for path in files]


def runnable(model_file: str | os.PathLike) -> str:
    """The ``.onnx`` the engine runs for a model file, exported now when a ``.keras`` has none
    made from it (training and evaluation hand over ``.keras`` files)."""
    from docsort.reading import engine

    path = Path(model_file)
    if path.suffix != ".keras":
        return str(path)
    try:
        return str(engine.exported_from(path))
    except MissingDependencyError:
        export(path)
        return str(onnx_path(path))


def _keras_export(model, path: Path) -> None:
    from docsort.log import native_stderr_silenced

    # tf2onnx prints its progress and TensorFlow's graph warnings straight to the terminal.
    with native_stderr_silenced(not settings.show_tensorflow_log()):
        model.export(str(path), format="onnx", verbose=False)


def canonical_bytes(raw: Path, source: dict) -> bytes:
    """The exported graph with names that depend only on the graph, and its source recorded.

    Node, tensor and initializer names become their position in the graph; the input keeps its
    name (``digit``, ``crop``, ``field``) and the output gets the name of what it is.
    """
    import onnx

    model = onnx.load(str(raw))
    graph = model.graph
    (graph_input,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    (graph_output,) = graph.output
    names = {graph_input.name: graph_input.name,
             graph_output.name: OUTPUT_NAMES.get(graph_input.name, "output")}
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for position, name in enumerate(node.output):
            if name and name not in names:
                names[name] = f"t{index}_{position}"
    used = [name for node in graph.node for name in node.input]
    order = {name: i for i, name in reversed(list(enumerate(used)))}
    initializers = sorted(graph.initializer, key=lambda t: order.get(t.name, len(order)))
    for index, tensor in enumerate(initializers):
        names[tensor.name] = f"w{index}"
    for node in graph.node:
        node.input[:] = [names.get(name, name) if name else name for name in node.input]
        node.output[:] = [names.get(name, name) if name else name for name in node.output]
    for tensor in graph.initializer:
        tensor.name = names[tensor.name]
    reordered = sorted(graph.initializer, key=lambda t: int(t.name[1:]))
    del graph.initializer[:]
    graph.initializer.extend(reordered)
    graph_output.name = names[graph_output.name]
    kept_info = [v for v in graph.value_info if v.name in names]
    for info in kept_info:
        info.name = names[info.name]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    dims: dict[str, str] = {}
    for info in [graph_input, graph_output, *graph.value_info]:
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = dims.setdefault(dim.dim_param, (["batch", "width"] + [f"dim{len(dims)}"])[min(len(dims), 2)])
    graph.name = Path(source["file"]).stem
    graph.doc_string = f"exported from {source['file']}"
    del model.metadata_props[:]
    for key, value in (("source_file", source["file"]), ("source_sha256", source["sha256"])):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
