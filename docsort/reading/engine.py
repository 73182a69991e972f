"""Runs the networks with ONNX Runtime: sessions, threads and batching in one place.

Reading mail needs only the forward pass of small convolutional networks. Every network is an
``.onnx`` file exported from its trained ``.keras`` (``docsort train export``), run here by ONNX
Runtime: no TensorFlow in a worker, which starts in a fraction of a second and stays small. No
reader knows how its network is run; each says what its input is (``InputSpec``) and hands over
whole lists of crops.

- Sessions: one per file and process, made on first use and kept (``load``). A large network
  is kept in the cache folder as ONNX Runtime optimised it for this machine, so that a worker
  starting later opens it in a third of the time (``_optimised_copy``).
- Threads: each session runs on ``DOCSORT_THREADS`` threads (one in each worker of
  ``process``, a Dask worker's ``--nthreads``; default all cores), operators one after another
  (inter-op 1).
- Batches: crops are grouped by the smallest width bucket of their input that holds them,
  padded to it with blank paper (0) and sent in calls of at most ``InputSpec.batch`` crops
  (``batches``), the same way for every network, in training and at run time.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from docsort import settings
from docsort.errors import MissingDependencyError


@dataclass(frozen=True)
class InputSpec:
    """What a network takes: ink-high float32 crops ``height`` rows high, and how crops of
    many widths are batched for it."""

    name: str  # the ONNX input's name
    height: int
    width: Optional[int] = None  # a fixed width; None: any width, padded to a bucket
    width_buckets: tuple[int, ...] = ()
    align: str = "centre"  # where a crop narrower than its bucket sits: "centre" or "left"
    channel: bool = True  # the input has a trailing channel axis of 1
    batch: int = 64  # crops per call: on one core, batches of tens keep the activations in cache
    # At most this many input columns per call (crops x bucket width), None: no bound. A large
    # network's activations grow with both, and on one core a few wide lines per call read as
    # fast as many: the bound keeps a worker's peak memory down at no cost in speed.
    columns: Optional[int] = None

    def per_call(self, width: int) -> int:
        """Crops of bucket ``width`` per call."""
        if self.columns is None:
            return self.batch
        return max(1, min(self.batch, self.columns // max(1, width)))

    def bucket(self, width: int) -> int:
        """The width a crop ``width`` columns wide is padded to (a wider one is cut)."""
        if self.width is not None:
            return self.width
        for bucket in self.width_buckets:
            if width <= bucket:
                return bucket
        return self.width_buckets[-1]

    def shape(self) -> list:
        """The input's shape, ``None`` where it is free (the batch; the width)."""
        return [None, self.height, self.width] + ([1] if self.channel else [])

    def describe(self) -> dict:
        """The spec as the manifest records it."""
        described = {"name": self.name, "shape": self.shape(), "dtype": "float32"}
        if self.width is None:
            described.update(width_buckets=list(self.width_buckets), align=self.align)
        return described


def stack(crops: Sequence[np.ndarray], width: int, spec: InputSpec) -> np.ndarray:
    """Crops padded with blank paper to ``width`` columns, as one input batch."""
    x = np.zeros((len(crops), spec.height, width), np.float32)
    for k, crop in enumerate(crops):
        w = min(crop.shape[1], width)
        left = (width - w) // 2 if spec.align == "centre" else 0
        x[k, :, left:left + w] = crop[:, :w]
    return x[..., None] if spec.channel else x


def batches(crops: Sequence[np.ndarray], spec: InputSpec) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(indices, input)`` for crops grouped by width bucket, at most ``spec.batch`` at a time."""
    groups: dict[int, list[int]] = {}
    for i, crop in enumerate(crops):
        groups.setdefault(spec.bucket(crop.shape[1]), []).append(i)
    for width in sorted(groups):
        members = groups[width]
        size = spec.per_call(width)
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            yield np.asarray(chunk), stack([crops[i] for i in chunk], width, spec)


def threads() -> int:
    """Threads per session: ``DOCSORT_THREADS``, or every core this process may use."""
    chosen = settings.model_threads()
    if chosen:
        return chosen
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def session_options(count: int, optimise: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = count
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.log_severity_level = 3
    # No memory arena: it keeps the largest activations a call ever needed for the rest of the
    # worker's life (about 20 MB of peak memory per worker over a batch), and costs no speed here.
    options.enable_cpu_mem_arena = False
    if count > 1:
        # Between calls a worker runs Tesseract; spinning threads would take its core.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Network:
    """One ``.onnx`` network in an ONNX Runtime session."""

    def __init__(self, path: Path, session, thread_count: int):
        self.path = path
        self.session = session
        self.threads = thread_count
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        meta = session.get_modelmeta().custom_metadata_map
        # The .keras file it was exported from (``docsort.training.export``).
        self.source = ({"file": meta["source_file"], "sha256": meta["source_sha256"]}
                       if "source_sha256" in meta else None)

    @classmethod
    def load(cls, path: str | os.PathLike, cached: bool = True, thread_count: Optional[int] = None) -> "Network":
        """The network in ``path``; with ``cached`` made once per process and file."""
        path = Path(path).resolve()
        if not path.is_file():
            raise MissingDependencyError(f"model file not found: {path}")
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if cached:
            with _lock:
                if key in _networks:
                    return _networks[key]
        count = threads() if thread_count is None else thread_count
        network = cls(path, _session(path, stat, count), count)
        if cached:
            with _lock:
                network = _networks.setdefault(key, network)
        return network

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """One call on one batch."""
        return self.session.run([self.output_name], {self.input_name: np.asarray(x, np.float32)})[0]

    def run(self, crops: Sequence[np.ndarray], spec: InputSpec) -> list[np.ndarray]:
        """Each crop's output, in order: crops batched by width bucket (``batches``)."""
        out: list[Optional[np.ndarray]] = [None] * len(crops)
        for index, x in batches(crops, spec):
            for i, y in zip(index, self(x)):
                out[i] = y
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Network({self.path.name}, threads={self.threads})"


_networks: dict[tuple, Network] = {}
_lock = threading.Lock()

# Networks at least this large are kept optimised in the cache folder: ONNX Runtime's full graph
# optimisation of PP-OCR's recogniser (21 MB) takes 0.12 s of a worker's start, opening the
# optimised copy 0.04 s; the small networks open in milliseconds either way.
OPTIMISED_COPY_MIN_BYTES = 4 * 2**20


def _session(path: Path, stat: os.stat_result, count: int):
    """An ONNX Runtime session of ``path``: from its optimised copy when there is one, else
    optimised now (and the copy written for the next worker)."""
    import onnxruntime as ort

    copy = _optimised_copy(path, stat) if stat.st_size >= OPTIMISED_COPY_MIN_BYTES else None
    if copy is not None and copy.is_file():
        try:
            return ort.InferenceSession(str(copy), sess_options=session_options(count, optimise=False),
                                        providers=["CPUExecutionProvider"])
        except Exception:  # a copy another version left broken: optimise the original again
            pass
    options = session_options(count)
    written = None
    if copy is not None:
        written = copy.with_name(f"{copy.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        options.optimized_model_filepath = str(written)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own types for a broken file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingDependencyError(f"model file {path} is corrupt or unreadable: {first}") from None
    if written is not None:
        try:
            os.replace(written, copy)  # whole or not at all, whichever worker writes it last
        except OSError:
            written.unlink(missing_ok=True)
        else:  # copies made for an earlier file of this name, ONNX Runtime or processor
            for stale in copy.parent.glob(f"{path.stem}.*.onnx"):
                if stale != copy:
                    stale.unlink(missing_ok=True)
    return session


def _optimised_copy(path: Path, stat: os.stat_result) -> Optional[Path]:
    """Where the optimised copy of ``path`` is kept, or None when the cache folder cannot be
    written. Its name changes with the file, ONNX Runtime's version and the processor's
    features: the optimised graph uses the kernels of the machine it was made on."""
    import hashlib

    import onnxruntime as ort

    folder = settings.cache_folder() / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    described = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{ort.__version__}|{_processor_features()}"
    return folder / f"{path.stem}.{hashlib.sha256(described.encode()).hexdigest()[:16]}.onnx"


def _processor_features() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def load(model_file: str | os.PathLike) -> Network:
    """A network from a file given by a user or a tool: an ``.onnx``, or a ``.keras`` whose
    exported ``.onnx`` lies beside it. Shipped networks come from ``manifest``, which checks them."""
    path = Path(model_file)
    if path.suffix == ".keras":
        path = exported_from(path)
    return Network.load(path)


def exported_from(keras_file: str | os.PathLike) -> Path:
    """The ``.onnx`` beside ``keras_file``, if it was exported from exactly that file."""
    from docsort.reading.manifest import file_sha256

    keras_file = Path(keras_file)
    onnx_file = keras_file.with_suffix(".onnx")
    export = f"export it: docsort train export {keras_file.parent}"
    if not onnx_file.is_file():
        raise MissingDependencyError(f"{keras_file} has no {onnx_file.name} beside it to run; {export}")
    if not keras_file.is_file():
        raise MissingDependencyError(f"model file not found: {keras_file}")
    source = Network.load(onnx_file).source
    if source is None or source["sha256"] != file_sha256(str(keras_file.resolve())):
        raise MissingDependencyError(f"{onnx_file} was not exported from {keras_file}; {export}")
    return onnx_file
