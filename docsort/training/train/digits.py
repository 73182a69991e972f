"""Training the handwritten digit reader on MNIST.

The recipe: a compact CNN (or the flat 784-100-10 reference network), fixed seeds, a fresh
augmented copy of the training set every epoch (other writers: affine, elastic, pen width; other
scanners: a share of digits scanned on paper and brought back through ``to_mnist``), Adam with a
warm-up + cosine learning-rate schedule, and the epoch kept by validation accuracy. The 5,000
validation digits are carved out of the training set; the test set is only measured, once, at the
end. Temperature scaling fitted on validation is folded into the saved model, so the ``.keras`` file
alone gives calibrated probabilities; batch normalisation is folded into the convolutions so
inference is a plain conv-relu chain.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docsort.training.datasets import mnist
from docsort.training.datasets import augment
from docsort.training.datasets.metrics import classification_metrics, scanned_test_accuracy
from docsort.training.export import export, onnx_path
from docsort.training.manifest import write as write_manifest

ARCHS = ("cnn", "mlp")
FULL_DATA_EPOCHS = 20
SMALL_DATA_EPOCHS = 40
# Small training sets are repeated (freshly augmented each time) so an epoch has this many samples.
MIN_EPOCH_SAMPLES = 10000
BATCH_SIZE = 128
PEAK_LEARNING_RATE = 2e-3
SCANNED_SHARE = 0.2
VALIDATION_CONVENTION_SEED = 4101
PEN_TEST_SEED = 4202
CLEAN_SHARE = 0.15


@dataclass
class TrainingConfig:
    data: str | None = None
    arch: str = "cnn"
    limit: int | None = None
    epochs: int | None = None
    seed: int = 1
    augment: bool | None = None
    epoch_size: int = MIN_EPOCH_SAMPLES  # small training sets are repeated up to this many per epoch
    scanned_test_limit: int | None = None  # None: all 10,000 test digits also in the scanned look
    # Share of training and validation digits written as continental writers write them (every 1
    # with the up-stroke, most 7s crossed; synth.digit_styles): MNIST's writers never do.
    convention_share: float = 0.0
    # Share of training and validation digits drawn by pen writers in shapes MNIST's writers did
    # not use (open 4s, hooked 9s, looped 2s, slashed 0s; synth.pen_digits), each by a writer of
    # its own; the continental share applies to the rest.
    pen_share: float = 0.0
    out: Path = Path("runs/digits")
    command: str = field(default_factory=lambda: shlex.join(["docsort", *sys.argv[1:]]))

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        return SMALL_DATA_EPOCHS if self.limit is not None and self.limit < 20000 else FULL_DATA_EPOCHS

    def resolved_augment(self) -> bool:
        return self.arch == "cnn" if self.augment is None else self.augment


# ---------------------------------------------------------------- networks

CONV_FILTERS = (32, 64, 128)
HIDDEN_UNITS = 128
MLP_HIDDEN = 100


def build_network(arch: str, keras, inference: bool = False):
    """The network as trained (``inference=False``: conv, batch norm, dropout) or as shipped
    (``inference=True``: batch norm folded into the convolutions, no dropout). Both take
    (n, 28, 28) float32 in [0, 1] and return logits.
    """
    layers = keras.layers
    inputs = keras.Input((28, 28), name="digit")
    if arch == "mlp":
        x = layers.Flatten(name="flatten")(inputs)
        x = layers.Dense(MLP_HIDDEN, activation="relu", name="hidden")(x)
        return keras.Model(inputs, layers.Dense(10, name="logits")(x), name="digits_mlp")
    if arch != "cnn":
        raise ValueError(f"unknown architecture {arch!r}")
    x = layers.Reshape((28, 28, 1), name="channel")(inputs)
    for i, filters in enumerate(CONV_FILTERS):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=inference, name=f"conv{i + 1}")(x)
        if not inference:
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    if not inference:
        x = layers.Dropout(0.3, name="drop1")(x)
    x = layers.Dense(HIDDEN_UNITS, use_bias=inference, name="dense")(x)
    if not inference:
        x = layers.BatchNormalization(momentum=0.9, name="bn_dense")(x)
    x = layers.ReLU(name="relu_dense")(x)
    if not inference:
        x = layers.Dropout(0.4, name="drop2")(x)
    return keras.Model(inputs, layers.Dense(10, name="logits")(x), name="digits_cnn")


def export_network(trained, arch: str, temperature: float, keras):
    """The shipped model: folded weights, logits divided by the temperature, softmax."""
    logits_model = build_network(arch, keras, inference=True)
    for layer in logits_model.layers:
        if not layer.weights:
            continue
        source = trained.get_layer(layer.name)
        bn_name = "bn_dense" if layer.name == "dense" else layer.name.replace("conv", "bn")
        if arch == "cnn" and bn_name != layer.name and _has_layer(trained, bn_name):
            layer.set_weights(_fold_batch_norm(source.get_weights()[0], trained.get_layer(bn_name)))
        else:
            layer.set_weights(source.get_weights())
    x = keras.layers.Rescaling(1.0 / temperature, name="temperature")(logits_model.output)
    probs = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(logits_model.input, probs, name=logits_model.name)


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def _fold_batch_norm(kernel: np.ndarray, bn) -> list[np.ndarray]:
    gamma, beta, mean, var = (np.asarray(w) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    return [kernel * scale, beta - mean * scale]


# ---------------------------------------------------------------- calibration


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (golden-section on log T)."""
    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(logits / math.exp(log_t))[np.arange(len(labels)), labels]))

    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(math.exp((lo + hi) / 2))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


# ---------------------------------------------------------------- training


def continental(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """``images`` with ``share`` of them (only 1s and 7s change) as continental writers write them."""
    if not share:
        return images
    from docsort.training.synth.digit_styles import restyle_many

    pick = np.flatnonzero(rng.random(len(images)) < share)
    out = images.copy()
    out[pick] = restyle_many(images[pick], labels[pick], rng, share=1.0)
    return out


def other_hands(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                convention_share: float, pen_share: float) -> np.ndarray:
    """``images`` with ``pen_share`` of them redrawn by pen writers (the same labels) and
    ``convention_share`` of the rest written the continental way: hands MNIST does not have."""
    images = images.copy()
    drawn = rng.random(len(images)) < pen_share if pen_share else np.zeros(len(images), bool)
    if convention_share:
        rest = np.flatnonzero(~drawn)
        images[rest] = continental(images[rest], labels[rest], rng, convention_share)
    if drawn.any():
        from docsort.training.synth import pen_digits

        images[drawn] = pen_digits.draw_like(labels[drawn], rng)
    return images


def epoch_inputs(train: mnist.Split, rng: np.random.Generator, use_augment: bool,
                 epoch_size: int = MIN_EPOCH_SAMPLES, convention_share: float = 0.0,
                 pen_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's inputs: a freshly varied copy of the training digits, float32 in [0, 1]."""
    repeats = max(1, math.ceil(epoch_size / len(train)))
    images = np.concatenate([train.images] * repeats)
    labels = np.concatenate([train.labels] * repeats)
    images = other_hands(images, labels, rng, convention_share, pen_share)
    if use_augment:
        choice = rng.random(len(images))
        scanned = choice < SCANNED_SHARE
        varied = choice >= SCANNED_SHARE + CLEAN_SHARE
        images = images.copy()
        images[scanned] = augment.scanned_look(images[scanned], rng)
        images[varied] = augment.writer_variation(images[varied], rng)
    order = rng.permutation(len(images))
    return images[order].astype(np.float32) / 255.0, labels[order]


def continental_test_accuracy(reader, test: mnist.Split) -> dict:
    """The test digits with every 1 and 7 as a continental writer writes it (a fixed draw): how
    the reader reads writers MNIST does not have. Only 1s and 7s differ from the plain test set."""
    from docsort.training.synth.digit_styles import restyle_many

    images = restyle_many(test.images, test.labels, np.random.default_rng(VALIDATION_CONVENTION_SEED + 1), share=1.0)
    predicted = reader.predict_proba(images).argmax(axis=1)
    right = predicted == test.labels
    return {"accuracy": float(right.mean()), "n": int(len(right)),
            "ones": float(right[test.labels == 1].mean()), "sevens": float(right[test.labels == 7].mean())}


def pen_test_accuracy(reader, test: mnist.Split) -> dict:
    """The test labels, each digit drawn afresh by a pen writer of its own (a fixed draw): how the
    reader reads digit shapes MNIST's writers did not use. A training option, not a held-out figure."""
    from docsort.training.synth import pen_digits

    images = pen_digits.draw_like(test.labels, np.random.default_rng(PEN_TEST_SEED))
    predicted = reader.predict_proba(images).argmax(axis=1)
    right = predicted == test.labels
    return {"accuracy": float(right.mean()), "n": int(len(right)),
            "per_digit": {str(d): float(right[test.labels == d].mean()) for d in range(10)}}


def logits_of(model, images: np.ndarray, batch: int = 1024) -> np.ndarray:
    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    out = [np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def train(config: TrainingConfig, progress=None) -> dict:
    """Train, calibrate, export and measure; writes model, metrics and history to ``config.out``."""
    from docsort.reading.digits.mnist_model import DigitReader
    from docsort.training.tf import keras as get_keras, tensorflow

    if config.arch not in ARCHS:
        raise ValueError(f"unknown architecture {config.arch!r}")
    if config.convention_share + config.pen_share > 1:
        raise ValueError("the continental and pen-drawn shares together must not pass 1")
    say = progress or (lambda message: None)
    started = time.time()
    data = mnist.load(config.data)
    train_split, val_split = mnist.train_validation_split(data.train)
    if config.limit is not None:
        train_split = mnist.stratified_head(train_split, config.limit)
    epochs = config.resolved_epochs()
    use_augment = config.resolved_augment()

    tf = tensorflow()
    keras = get_keras()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(config.seed)

    model = build_network(config.arch, keras)
    steps_per_epoch = math.ceil(max(len(train_split), config.epoch_size) / BATCH_SIZE)
    total_steps = steps_per_epoch * epochs
    warmup = min(steps_per_epoch, total_steps // 4)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=PEAK_LEARNING_RATE / 20, decay_steps=max(1, total_steps - warmup),
        warmup_target=PEAK_LEARNING_RATE, warmup_steps=warmup, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    # Validation digits in the training's shares of other hands (a fixed draw), so the kept epoch
    # reads them too; the plain MNIST figures are measured besides.
    val_images = other_hands(val_split.images, val_split.labels, np.random.default_rng(VALIDATION_CONVENTION_SEED),
                             config.convention_share, config.pen_share)
    x_val = val_images.astype(np.float32) / 255.0
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    best = (-1.0, 0, None)
    say(f"training {config.arch} on {len(train_split)} digits ({len(val_split)} for validation), "
        f"{epochs} epochs, augmentation {'on' if use_augment else 'off'}")
    for epoch in range(epochs):
        tick = time.time()
        x_train, y_train = epoch_inputs(train_split, rng, use_augment, config.epoch_size, config.convention_share,
                                        config.pen_share)
        fitted = model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=1, verbose=0,
                           validation_data=(x_val, val_split.labels), shuffle=False)
        for key in history:
            history[key].append(float(fitted.history[key][-1]))
        val_accuracy = history["val_accuracy"][-1]
        if val_accuracy >= best[0]:
            best = (val_accuracy, epoch + 1, model.get_weights())
        say(f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, "
            f"validation accuracy {val_accuracy:.4f} ({time.time() - tick:.0f} s)")
    model.set_weights(best[2])

    val_logits = logits_of(model, val_split.images)
    temperature = fit_temperature(val_logits, val_split.labels)
    shipped = export_network(model, config.arch, temperature, keras)
    training_seconds = time.time() - started

    val_probs_raw = softmax(val_logits)
    test_probs = logits_of(shipped, data.test.images)
    test_probs_raw = softmax(logits_of(model, data.test.images))
    test_metrics = classification_metrics(test_probs, data.test.labels)
    val_metrics = classification_metrics(logits_of(shipped, val_split.images), val_split.labels)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / "digits.keras"
    shipped.save(model_file)
    export(model_file, say)
    say("measuring the scanned-look test digits (the exported network, as reading runs it)")
    reader = DigitReader(str(onnx_path(model_file)))
    scanned = scanned_test_accuracy(reader, data.test, config.scanned_test_limit)
    conventions = continental_test_accuracy(reader, data.test)
    pen_drawn = pen_test_accuracy(reader, data.test)
    metrics = {
        "model": "digits",
        "arch": config.arch,
        "test_accuracy": test_metrics["accuracy"],
        "scanned_test_accuracy": scanned["accuracy"],
        "n_test": test_metrics["n"],
        "n_scanned_test": scanned["n"],
        "validation_accuracy": val_metrics["accuracy"],
        "per_class_accuracy": test_metrics["per_class_accuracy"],
        "confusion_matrix": test_metrics["confusion_matrix"],
        "temperature": temperature,
        "ece_before_temperature": classification_metrics(test_probs_raw, data.test.labels)["ece"],
        "ece": test_metrics["ece"],
        "validation_ece_before_temperature": classification_metrics(val_probs_raw, val_split.labels)["ece"],
        "validation_ece": val_metrics["ece"],
        "training_samples": len(train_split),
        "validation_samples": len(val_split),
        "limit": config.limit,
        "epochs": epochs,
        "epoch_size": config.epoch_size,
        "best_epoch": best[1],
        "augmentation": use_augment,
        "convention_share": config.convention_share,
        "continental_test": conventions,
        "pen_share": config.pen_share,
        "pen_test": pen_drawn,
        "seed": config.seed,
        "params": int(shipped.count_params()),
        "training_seconds": round(training_seconds, 1),
        "command": config.command,
        "dataset": {"name": "MNIST", "source": data.source, "sha256": data.sha256},
        "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                        "keras": keras.__version__, "cpu_count": os.cpu_count()},
        "model_file": model_file.name,
    }
    from docsort.reading.manifest import file_sha256

    metrics["model_sha256"] = file_sha256(str(model_file.resolve()))
    (out / "digits.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "digits.history.json").write_text(json.dumps(history, indent=2) + "\n")
    write_manifest(out, say)
    return metrics
