"""A small numpy engine that runs the shipped Keras models without TensorFlow.

Reading mail needs only the forward pass of two small convolutional networks, yet importing
TensorFlow costs every worker process about 2.5 s and 600 MB before the first page. This
module reads a ``.keras`` archive (``config.json`` plus ``model.weights.h5``) directly and
evaluates its functional graph with numpy: convolutions as one matrix product over image
patches (im2col), batch normalisation folded into the convolution before it, and batches
cut into chunks so the patch matrices stay a few megabytes. Training, evaluation reports and
anything the engine does not know stay on Keras: ``load`` raises ``UnsupportedModel`` for a
layer it cannot run, and ``modelstore`` then loads the model with Keras instead.

Outputs agree with Keras to float32 rounding (tests compare both on real crops).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

# Pixels (batch x height x width) evaluated at once: bounds the im2col matrices to a few MB.
CHUNK_PIXELS = 1 << 17


class UnsupportedModel(Exception):
    """The archive holds a layer or setting this engine does not implement."""


@dataclass
class Node:
    """One layer application in the graph: its function and the nodes that feed it."""

    name: str
    kind: str
    config: dict
    inputs: list[str]
    weights: list[np.ndarray] = field(default_factory=list)
    fn: Callable | None = None


class NumpyModel:
    """A loaded ``.keras`` functional model, callable on numpy batches like a Keras model."""

    def __init__(self, nodes: list[Node], input_name: str, output_name: str, source: str,
                 threads: int = 1):
        self.nodes = nodes
        self.input_name = input_name
        self.output_name = output_name
        self.source = source
        self.runtime = "numpy"
        # Chunks run on this many threads (numpy releases the GIL in its kernels); BLAS itself
        # should then be single-threaded, or the two kinds of threads fight over the cores.
        self.threads = max(1, int(threads))
        self._pool = None

    def predict_on_batch(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return self._forward(x[:1])[:0]
        per_item = max(1, int(np.prod(x.shape[1:3])) if x.ndim >= 3 else int(np.prod(x.shape[1:])))
        step = max(1, CHUNK_PIXELS // per_item)
        if len(x) <= step:
            return self._forward(x)
        chunks = [x[i:i + step] for i in range(0, len(x), step)]
        if self.threads == 1:
            return np.concatenate([self._forward(chunk) for chunk in chunks])
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="docsort-model")
        return np.concatenate(list(self._pool.map(self._forward, chunks)))

    def __call__(self, x, training: bool = False) -> np.ndarray:
        return self.predict_on_batch(x)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        values = {self.input_name: x}
        for node in self.nodes:
            args = [values[name] for name in node.inputs]
            values[node.name] = node.fn(*args)
        return values[self.output_name]


def load(path: str | Path, threads: int = 1) -> NumpyModel:
    """Build the numpy engine for a ``.keras`` file; ``UnsupportedModel`` if it cannot run it.

    ``threads``: how many chunks of a batch run at once (a worker process uses 1)."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights_blob = archive.read("model.weights.h5")
    if config.get("class_name") not in ("Functional", "Model") or "layers" not in config.get("config", {}):
        raise UnsupportedModel(f"not a functional model: {config.get('class_name')}")
    graph = config["config"]
    weights = _read_weights(weights_blob, graph["layers"])

    inputs = [layer for layer in graph["layers"] if layer["class_name"] == "InputLayer"]
    outputs = _endpoints(graph["output_layers"])
    if len(inputs) != 1 or len(_endpoints(graph["input_layers"])) != 1 or len(outputs) != 1:
        raise UnsupportedModel("only single-input, single-output models are supported")
    nodes = []
    for layer in graph["layers"]:
        if layer["class_name"] == "InputLayer":
            continue
        if len(layer.get("inbound_nodes", [])) != 1:
            raise UnsupportedModel(f"layer {layer['name']} is shared or unconnected")
        node = Node(name=layer["name"], kind=layer["class_name"], config=layer["config"],
                    inputs=_inbound_names(layer["inbound_nodes"][0]),
                    weights=weights.get(layer["name"], []))
        builder = _BUILDERS.get(node.kind)
        if builder is None:
            raise UnsupportedModel(f"layer type {node.kind} ({node.name}) is not supported")
        node.fn = builder(node)
        nodes.append(node)
    _fuse(nodes)
    return NumpyModel(nodes, inputs[0]["name"], outputs[0], str(path), threads)


# Reading the archive -------------------------------------------------------------------------


def _snake_case(name: str) -> str:
    """Keras' own rule for naming a layer's weight group in ``model.weights.h5``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_weights(blob: bytes, layers: list[dict]) -> dict[str, list[np.ndarray]]:
    """Weights per layer name. The file keys layers by class name and order, not by name."""
    import h5py

    by_layer: dict[str, list[np.ndarray]] = {}
    used: dict[str, int] = {}
    with h5py.File(io.BytesIO(blob), "r") as h5:
        root = h5["layers"] if "layers" in h5 else h5
        for layer in layers:
            key = _snake_case(layer["class_name"])
            if key in used:
                used[key] += 1
                key = f"{key}_{used[key]}"
            else:
                used[key] = 0
            group = root.get(key)
            if group is None or "vars" not in group:
                continue
            variables = group["vars"]
            by_layer[layer["name"]] = [np.asarray(variables[str(i)], dtype=np.float32)
                                       for i in range(len(variables))]
    return by_layer


def _endpoints(spec: list) -> list[str]:
    """Layer names of a model's inputs or outputs: ``[name, 0, 0]`` or a list of those."""
    if spec and isinstance(spec[0], str):
        return [spec[0]]
    return [item[0] for item in spec]


def _inbound_names(inbound: dict) -> list[str]:
    names: list[str] = []

    def walk(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            names.append(value["config"]["keras_history"][0])
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(inbound.get("args", []))
    return names


# Layers ----------------------------------------------------------------------------------------


def _activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(name, dict):
        name = name.get("config", {}).get("name", name.get("class_name"))
    functions = {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0),
        "sigmoid": _sigmoid,
        "softmax": lambda x: _softmax(x, -1),
        "tanh": np.tanh,
    }
    if name not in functions:
        raise UnsupportedModel(f"activation {name} is not supported")
    return functions[name]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (np.tanh(0.5 * x) + 1.0)).astype(np.float32)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _require(node: Node, **expected) -> None:
    for key, value in expected.items():
        got = node.config.get(key, value)
        if isinstance(got, list):
            got = tuple(got)
        if got != value:
            raise UnsupportedModel(f"{node.kind} {node.name}: {key}={got} is not supported")


def _conv(node: Node, spatial: int):
    """Conv1D/Conv2D, stride 1, as one matrix product over patches (im2col)."""
    _require(node, data_format="channels_last", groups=1,
             strides=(1,) * spatial, dilation_rate=(1,) * spatial)
    padding = node.config.get("padding", "valid")
    if padding not in ("same", "valid"):
        raise UnsupportedModel(f"{node.kind} {node.name}: padding={padding} is not supported")
    kernel = node.weights[0]
    node.kernel = kernel.reshape(-1, kernel.shape[-1])
    node.bias = node.weights[1] if node.config.get("use_bias", True) else None
    node.post = _activation(node.config.get("activation", "linear"))
    ksize = kernel.shape[:spatial]

    def conv2d(x):
        kh, kw = ksize
        n, h, w, c = x.shape
        if padding == "same":
            top, left = (kh - 1) // 2, (kw - 1) // 2
            oh, ow = h, w
        else:
            top = left = 0
            oh, ow = h - kh + 1, w - kw + 1
        # Patches are copied straight from x; taps that fall off the edge read zeros ("same").
        cols = np.empty((n, oh, ow, kh, kw, c), np.float32)
        for dy in range(kh):
            y0, y1 = max(0, top - dy), min(oh, h + top - dy)
            for dx in range(kw):
                x0, x1 = max(0, left - dx), min(ow, w + left - dx)
                tap = cols[:, :, :, dy, dx, :]
                if y0 > 0 or y1 < oh or x0 > 0 or x1 < ow:
                    tap[:, :y0] = 0
                    tap[:, y1:] = 0
                    tap[:, :, :x0] = 0
                    tap[:, :, x1:] = 0
                tap[:, y0:y1, x0:x1] = x[:, y0 + dy - top:y1 + dy - top, x0 + dx - left:x1 + dx - left]
        out = cols.reshape(n * oh * ow, -1) @ node.kernel
        if node.bias is not None:
            out += node.bias
        return node.post(out.reshape(n, oh, ow, -1))

    def conv1d(x):
        (k,) = ksize
        if padding == "same":
            left = (k - 1) // 2
            x = np.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
        n, w, c = x.shape
        ow = w - k + 1
        cols = np.empty((n, ow, k, c), np.float32)
        for dx in range(k):
            cols[:, :, dx, :] = x[:, dx:dx + ow, :]
        out = cols.reshape(n * ow, -1) @ node.kernel
        if node.bias is not None:
            out += node.bias
        return node.post(out.reshape(n, ow, -1))

    return conv2d if spatial == 2 else conv1d


def _dense(node: Node):
    kernel = node.weights[0]
    node.kernel = kernel
    node.bias = node.weights[1] if node.config.get("use_bias", True) else None
    node.post = _activation(node.config.get("activation", "linear"))

    def dense(x):
        out = x @ node.kernel
        if node.bias is not None:
            out = out + node.bias
        return node.post(out)

    return dense


def _affine_params(node: Node):
    """gamma and beta of a normalisation layer, honouring its scale/center switches."""
    weights = list(node.weights)
    gamma = weights.pop(0) if node.config.get("scale", True) else None
    beta = weights.pop(0) if node.config.get("center", True) else None
    return gamma, beta, weights


def _batch_norm(node: Node):
    axis = node.config.get("axis", -1)
    if axis not in (-1, [-1]) and not (isinstance(axis, list) and len(axis) == 1):
        raise UnsupportedModel(f"BatchNormalization {node.name}: axis={axis}")
    gamma, beta, (mean, variance) = _affine_params(node)
    inv = 1.0 / np.sqrt(variance + node.config.get("epsilon", 1e-3))
    scale = inv if gamma is None else gamma * inv
    shift = -mean * scale + (0 if beta is None else beta)
    node.scale, node.shift = scale.astype(np.float32), shift.astype(np.float32)
    return lambda x: x * node.scale + node.shift


def _norm_axes(node: Node, ndim: int) -> tuple[int, ...]:
    axis = node.config.get("axis", -1)
    axes = axis if isinstance(axis, list) else [axis]
    return tuple(a % ndim for a in axes)


def _standardise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """Zero mean, unit variance over ``axes``."""
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def _scale_shift(x: np.ndarray, gamma, beta) -> np.ndarray:
    """A normalisation layer's own per-channel scale and offset, where it has them."""
    if gamma is not None:
        x = x * gamma
    if beta is not None:
        x = x + beta
    return x.astype(np.float32)


def _layer_norm(node: Node):
    gamma, beta, _ = _affine_params(node)
    eps = node.config.get("epsilon", 1e-3)
    if node.config.get("rms_scaling", False):
        raise UnsupportedModel(f"LayerNormalization {node.name}: rms_scaling")
    return lambda x: _scale_shift(_standardise(x, _norm_axes(node, x.ndim), eps), gamma, beta)


def _group_norm(node: Node):
    _require(node, axis=-1)
    gamma, beta, _ = _affine_params(node)
    groups = node.config.get("groups", 32)
    eps = node.config.get("epsilon", 1e-3)

    def group_norm(x):
        grouped = x.reshape(x.shape[0], -1, groups, x.shape[-1] // groups)
        return _scale_shift(_standardise(grouped, (1, 3), eps).reshape(x.shape), gamma, beta)

    return group_norm


def _relu(node: Node):
    _require(node, max_value=None, negative_slope=0.0, threshold=0.0)
    return lambda x: np.maximum(x, 0)


def _pool(node: Node, spatial: int, reduce):
    pool = tuple(node.config.get("pool_size", (2,) * spatial))
    strides = tuple(node.config.get("strides") or pool)
    if strides != pool or node.config.get("padding", "valid") != "valid":
        raise UnsupportedModel(f"{node.kind} {node.name}: only pool == strides, padding valid")
    _require(node, data_format="channels_last")

    def pool2d(x):
        n, h, w, c = x.shape
        ph, pw = pool
        x = x[:, :h - h % ph, :w - w % pw, :]
        if reduce is np.max:  # a maximum over strided views is several times faster than a reduce
            out = x[:, 0::ph, 0::pw]
            for dy in range(ph):
                for dx in range(pw):
                    if dy or dx:
                        out = np.maximum(out, x[:, dy::ph, dx::pw])
            return out
        return reduce(x.reshape(n, h // ph, ph, w // pw, pw, c), axis=(2, 4))

    def pool1d(x):
        n, w, c = x.shape
        (pw,) = pool
        x = x[:, :w - w % pw, :]
        return reduce(x.reshape(n, w // pw, pw, c), axis=2)

    return pool2d if spatial == 2 else pool1d


def _global_pool(node: Node, spatial: int, reduce):
    _require(node, data_format="channels_last")
    keepdims = node.config.get("keepdims", False)
    axes = tuple(range(1, 1 + spatial))
    return lambda x: reduce(x, axis=axes, keepdims=keepdims)


def _concatenate(node: Node):
    axis = node.config.get("axis", -1)
    return lambda *xs: np.concatenate(xs, axis=axis)


def _reshape(node: Node):
    target = tuple(node.config["target_shape"])
    return lambda x: x.reshape((x.shape[0],) + target)


def _permute(node: Node):
    dims = (0,) + tuple(node.config["dims"])
    return lambda x: np.transpose(x, dims)


def _rescaling(node: Node):
    scale = np.float32(node.config.get("scale", 1.0))
    offset = np.float32(node.config.get("offset", 0.0))
    return lambda x: x * scale + offset


def _softmax_layer(node: Node):
    axis = node.config.get("axis", -1)
    return lambda x: _softmax(x, axis)


_BUILDERS: dict[str, Callable[[Node], Callable]] = {
    "Conv2D": lambda n: _conv(n, 2),
    "Conv1D": lambda n: _conv(n, 1),
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    "ReLU": _relu,
    "Activation": lambda n: _activation(n.config["activation"]),
    "MaxPooling2D": lambda n: _pool(n, 2, np.max),
    "AveragePooling2D": lambda n: _pool(n, 2, np.mean),
    "MaxPooling1D": lambda n: _pool(n, 1, np.max),
    "AveragePooling1D": lambda n: _pool(n, 1, np.mean),
    "GlobalAveragePooling2D": lambda n: _global_pool(n, 2, np.mean),
    "GlobalMaxPooling2D": lambda n: _global_pool(n, 2, np.max),
    "GlobalAveragePooling1D": lambda n: _global_pool(n, 1, np.mean),
    "GlobalMaxPooling1D": lambda n: _global_pool(n, 1, np.max),
    "Concatenate": _concatenate,
    "Add": lambda n: (lambda *xs: sum(xs[1:], xs[0])),
    "Flatten": lambda n: (lambda x: x.reshape(len(x), -1)),
    "Reshape": _reshape,
    "Permute": _permute,
    "Dropout": lambda n: (lambda x: x),
    "SpatialDropout2D": lambda n: (lambda x: x),
    "Rescaling": _rescaling,
    "Softmax": _softmax_layer,
}


def _fuse(nodes: list[Node]) -> None:
    """Fold batch norms and ReLUs into the linear layer before them."""
    _fold_batch_norms(nodes)
    _fuse_relus(nodes)


def _fuse_relus(nodes: list[Node]) -> None:
    """Apply a ReLU in place on its producer's fresh output instead of allocating another array."""
    consumers = _consumer_counts(nodes)
    by_name = {node.name: node for node in nodes}
    for node in nodes:
        if node.kind != "ReLU" and not (node.kind == "Activation" and node.config.get("activation") == "relu"):
            continue
        producer = _linear_producer(node, by_name)
        # In place is safe only if nothing else reads the arrays the ReLU overwrites.
        if producer is None or consumers.get(producer.name) != 1 or consumers.get(node.inputs[0]) != 1:
            continue
        if producer.config.get("activation", "linear") != "linear":
            continue
        producer.post = lambda x: np.maximum(x, 0, out=x)
        node.fn = lambda x: x


def _linear_producer(node: Node, by_name: dict[str, Node]) -> Node | None:
    """The conv/dense layer whose output reaches ``node`` directly or through a folded batch norm."""
    if len(node.inputs) != 1:
        return None
    producer = by_name.get(node.inputs[0])
    if producer is not None and producer.kind == "BatchNormalization" and getattr(producer, "folded", False):
        producer = by_name.get(producer.inputs[0])
    if producer is None or producer.kind not in ("Conv2D", "Conv1D", "Dense"):
        return None
    return producer


def _consumer_counts(nodes: list[Node]) -> dict[str, int]:
    consumers: dict[str, int] = {}
    for node in nodes:
        for name in node.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    return consumers


def _fold_batch_norms(nodes: list[Node]) -> None:
    """Fold a BatchNormalization into the linear layer before it (one pass over the data less).

    Only when the layer has no activation of its own and the BatchNormalization is its sole
    consumer: then ``bn(conv(x)) == conv'(x)`` with the kernel and bias rescaled per channel.
    """
    consumers = _consumer_counts(nodes)
    by_name = {node.name: node for node in nodes}
    for node in nodes:
        if node.kind != "BatchNormalization" or len(node.inputs) != 1:
            continue
        producer = by_name.get(node.inputs[0])
        if producer is None or producer.kind not in ("Conv2D", "Conv1D", "Dense"):
            continue
        if consumers.get(producer.name) != 1 or producer.config.get("activation", "linear") != "linear":
            continue
        producer.kernel = (producer.kernel * node.scale).astype(np.float32)
        bias = producer.bias if producer.bias is not None else np.zeros_like(node.shift)
        producer.bias = (bias * node.scale + node.shift).astype(np.float32)
        node.fn = lambda x: x
        node.folded = True
