"""Training the whole-field digit string reader (CTC) on number strings composed from MNIST.

There are no labelled handwritten number fields, so every training string is composed on the
fly from MNIST *training* digits with the project's own composition code
(``synth.handwriting.compose_digit_string``): 1-9 digits, spacing from overlapping neighbours
to wide gaps, varied pen width, slant, size and baseline, and now and then a scanner
(``synth.degrade.random_scan``). Validation strings come from the 5,000 digits held out of
training (``mnist.train_validation_split``); the checkpoint is chosen on them and the CTC
temperature is fitted on them. MNIST test digits are only measured, once, at the end.

The network is convolutional only: conv blocks pool the height away, convolutions over the
columns give each column context on both sides, and a per-column softmax over 10 digits and
the blank ends it.
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
from typing import Optional, Sequence

import numpy as np

from docsort import settings
from docsort.training.datasets import mnist
from docsort.training.datasets.digit_fields import compose_field, compose_strings
from docsort.training.synth import font_hands, pen_digits
from docsort.training.export import export, onnx_path, runnable
from docsort.training.manifest import refresh as refresh_manifest, write as write_manifest
from docsort.reading import engine
from docsort.reading.digits import strings as string_reader
from docsort.reading.digits.segmenting import ink_of
from docsort.errors import DatasetError, OutputNotWritableError, UsageError

BATCH_SIZE = 32
PEAK_LEARNING_RATE = 2e-3
MAX_LENGTH = 9
VALIDATION_STRINGS = 600
# Validation strings are the same whatever the training seed, so runs compare on them.
VALIDATION_SEED = 1001
CHECKPOINTS = 12


@dataclass
class StringTrainingConfig:
    data: Optional[str] = None
    steps: int = 6000
    seed: int = 1
    out: Path = Path("runs/digit_strings")
    filters: tuple[int, ...] = (32, 64, 96, 128)
    column_filters: int = 128
    validation_strings: int = VALIDATION_STRINGS
    test_strings: int = 1000
    combination_strings: int = 2000
    learning_rate: float = PEAK_LEARNING_RATE
    init: Optional[str] = None  # continue from the weights of a trained digit_strings.keras
    # Share of training strings drawn as number fields of the training families
    # (synth.fields: separators, marks, frames, patterned paper, pens); the rest are plain rows.
    field_share: float = 0.0
    # Share of training strings composed from writer-varied digits (augment.writer_variation:
    # rotation, shear, scale, elastic deformation, pen width): hands MNIST's writers do not have.
    writer_share: float = 0.0
    # Share of training (and validation) strings written by writers of another school: every 1
    # with the continental up-stroke (now and then a foot), most 7s crossed (synth.digit_styles).
    convention_share: float = 0.0
    # Share of training (and validation) strings drawn by pen writers of many digit shapes (open
    # 4s, hooked 9s, looped 2s, flat-topped 3s, slashed 0s: synth.pen_digits), not MNIST's hands.
    pen_share: float = 0.0
    # Share of training (and validation) strings whose digits are written in the hands of real
    # people digitised as fonts (synth.font_hands, the training hands only).
    font_share: float = 0.0
    # Residual 3x3 convolutions added after each of the four conv blocks (depth where the
    # strokes have become digit parts), and residual 1x5 convolutions over the columns.
    block_convs: tuple[int, ...] = (0, 0, 0, 0)
    context_blocks: int = 2
    # Residual 1x3 convolutions over columns at twice the density (one per 2 px of the strip): the
    # network's columns are doubled before them, so two equal digits side by side, or a narrow 1
    # against its neighbour, have room for the blank CTC needs between them. 0: one column per 4 px.
    fine_blocks: int = 0
    # Processes composing training strings while the network trains (0: in the training process,
    # one random stream, as the shipped models were trained).
    data_workers: int = 0
    command: str = field(default_factory=lambda: shlex.join(["docsort", *sys.argv[1:]]))


# ---------------------------------------------------------------- data


def random_field(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A training field: any length, spacing, pen, slant, size and scanner."""
    length = int(rng.integers(1, MAX_LENGTH + 1))
    if rng.random() < 0.5:  # the benchmark's range and a little beyond
        gap = (-0.35, 0.55)
    else:  # one writer's own habit: tight, loose or wide
        lo = float(rng.uniform(-0.35, 0.6))
        gap = (lo, lo + float(rng.uniform(0.05, 0.9)))
    height = float(rng.uniform(18, 80))
    stroke = int(rng.choice([-1, 0, 0, 0, 1, 1, 2])) if height > 36 else int(rng.choice([0, 0, 0, 1]))
    slant = float(rng.uniform(0.0, 0.35))
    scan = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 0.0
    return compose_field(images, labels, rng, length, gap, height, stroke, scan=scan,
                         slant=(-slant, slant), baseline_jitter=float(rng.uniform(0.0, 0.12)),
                         scale_jitter=float(rng.uniform(0.05, 0.18)), ink=int(rng.uniform(0, 90)),
                         paper=int(rng.uniform(190, 256)))


def benchmark_fields(images: np.ndarray, labels: np.ndarray, count: int, seed: int, length: int = 5,
                     gap: tuple[float, float] = (-0.3, 0.5)) -> tuple[list[np.ndarray], list[str]]:
    """Fields like the envelope benchmark's ``read-digits`` strings (touching and overlapping)."""
    rng = np.random.default_rng(seed)
    fields, truths = [], []
    for _ in range(count):
        image, text = compose_field(images, labels, rng, length, gap, float(rng.uniform(28, 56)),
                                    int(rng.integers(0, 2)))
        fields.append(image)
        truths.append(text)
    return fields, truths


def strips_of(fields: list[np.ndarray]) -> list[np.ndarray]:
    return [string_reader.prepare(ink_of(f)) for f in fields]


def family_field(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A number field of a training family (never the held-out one) of at most MAX_LENGTH digits:
    the reader learns that separators, marks, frames and paper patterns are no digits."""
    from docsort.training.synth import fields as field_synth

    family = str(rng.choice(field_synth.TRAINING_FAMILIES))
    lengths = [n for n in field_synth.FAMILIES[family].lengths if n <= MAX_LENGTH]
    composed = field_synth.training_field(images, labels, rng, family, int(rng.choice(lengths)))
    return composed.image, composed.digits


def validation_fields(images: np.ndarray, labels: np.ndarray, count: int, field_share: float,
                      convention_share: float = 0.0, pen_share: float = 0.0,
                      font_share: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """Checkpoint and temperature strings from held-out training digits: plain touching codes,
    and (with ``field_share``) that share of training-family fields, drawn with a fixed seed.
    With ``convention_share``, that share of each kind is written by continental writers
    (``ConventionPool``), with ``pen_share`` that share by pen writers (``synth.pen_digits``),
    and with ``font_share`` that share in the training font hands (``synth.font_hands``), so a
    checkpoint is chosen for reading them too."""
    families = int(round(count * field_share))
    styled_images = (ConventionPool(images, labels, np.random.default_rng(VALIDATION_SEED + 2)).digits()[0]
                     if convention_share else None)
    drawn_images = pen_digits.draw_like(labels, np.random.default_rng(VALIDATION_SEED + 3)) if pen_share else None
    font_images = (font_hands.draw_like(labels, np.random.default_rng(VALIDATION_SEED + 4))
                   if font_share else None)

    def codes(source, k: int, seed: int):
        return benchmark_fields(source, labels, k, seed)

    def family(source, k: int, seed: int):
        rng = np.random.default_rng(seed)
        drawn = [family_field(source, labels, rng) for _ in range(k)]
        return [image for image, _ in drawn], [text for _, text in drawn]

    fields, truths = [], []
    # Each kind from its own fixed seed; the continental ones from that seed + 7, the pen-drawn + 11,
    # the font hands + 13.
    for draw, n, seed in ((codes, count - families, VALIDATION_SEED), (family, families, VALIDATION_SEED + 1)):
        styled, drawn, fonts = int(round(n * convention_share)), int(round(n * pen_share)), int(round(n * font_share))
        for source, k, kind_seed in ((images, n - styled - drawn - fonts, seed), (styled_images, styled, seed + 7),
                                     (drawn_images, drawn, seed + 11), (font_images, fonts, seed + 13)):
            if k:
                more, more_truths = draw(source, k, kind_seed)
                fields += more
                truths += more_truths
    return fields, truths


class WriterPool:
    """Writer-varied copies of random training digits, drawn afresh every ``refresh`` uses, so
    strings are also composed from hands MNIST's writers do not have (slanted, rotated, squashed,
    elastically bent, thinner or broader) without varying all 55,000 digits each time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 size: int = 4000, refresh: int = 2000, strength: float = 1.5):
        self.images, self.labels, self.rng, self.strength = images, labels, rng, strength
        self.size, self.refresh, self.uses = min(size, len(images)), refresh, 0
        self._draw()

    def _draw(self) -> None:
        from docsort.training.datasets.augment import writer_variation

        picks = self.rng.choice(len(self.images), self.size, replace=False)
        self.pool_images = writer_variation(self.images[picks], self.rng, self.strength)
        self.pool_labels = self.labels[picks]

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        self.uses += 1
        if self.uses % self.refresh == 0:
            self._draw()
        return self.pool_images, self.pool_labels


class ConventionPool:
    """The training digits as continental writers write them: every 1 with the up-stroke (some
    on a foot), most 7s crossed (``synth.digit_styles``), the other digits as MNIST has them.
    Restyled afresh every ``refresh`` uses, so the added strokes vary."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, refresh: int = 3000):
        self.images, self.labels, self.rng, self.refresh, self.uses = images, labels, rng, refresh, 0
        self._draw()

    def _draw(self) -> None:
        from docsort.training.synth.digit_styles import restyle_many

        # One school per digit: every 1 flagged (a foot now and then), 7s crossed as most do.
        self.pool_images = restyle_many(self.images, self.labels, self.rng,
                                        convention=None, share=1.0)

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        self.uses += 1
        if self.uses % self.refresh == 0:
            self._draw()
        return self.pool_images, self.labels


class PenPool:
    """Pen-drawn digits (``synth.pen_digits``), ``size`` of them with random labels, drawn
    afresh every ``refresh`` uses so the writers keep changing."""

    def __init__(self, rng: np.random.Generator, size: int = 6000, refresh: int = 3000):
        self.rng, self.size, self.refresh, self.uses = rng, size, refresh, 0
        self._draw()

    def _draw(self) -> None:
        self.labels = self.rng.integers(0, 10, self.size).astype(np.int64)
        self.images = pen_digits.draw_like(self.labels, self.rng)

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        self._use()
        return self.images, self.labels

    def _use(self) -> None:
        """Count a use; every ``refresh`` uses the pool is drawn afresh."""
        self.uses += 1
        if self.uses % self.refresh == 0:
            self._draw()


class FontPool(PenPool):
    """Digits in the training font hands (``synth.font_hands``), ``size`` of them with random
    labels, written afresh every ``refresh`` uses. Each string is written by one hand, as a
    field is by one writer: ``digits`` hands out one hand's digits at a time."""

    def _draw(self) -> None:
        writers = font_hands.hand_fonts("training")
        each = max(10, self.size // len(writers))
        self.hands = []
        for name, paths in writers.items():
            labels = self.rng.integers(0, 10, each).astype(np.int64)
            self.hands.append((font_hands.draw_like(labels, self.rng, hands={name: paths}), labels))

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        self._use()
        return self.hands[int(self.rng.integers(len(self.hands)))]


def training_batch(images, labels, rng, field_share: float = 0.0, writers: Optional[WriterPool] = None,
                   writer_share: float = 0.0, conventions: Optional[ConventionPool] = None,
                   convention_share: float = 0.0, pens: Optional[PenPool] = None,
                   pen_share: float = 0.0, fonts: Optional[FontPool] = None,
                   font_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs padded to the batch's width bucket, labels padded with -1, label lengths)."""
    strips, texts = [], []
    for _ in range(BATCH_SIZE):
        draw = family_field if field_share and rng.random() < field_share else random_field
        if fonts is not None and rng.random() < font_share:
            image, text = draw(*fonts.digits(), rng)
        elif pens is not None and rng.random() < pen_share:
            image, text = draw(*pens.digits(), rng)
        elif conventions is not None and rng.random() < convention_share:
            image, text = draw(*conventions.digits(), rng)
        elif writers is not None and rng.random() < writer_share:
            image, text = draw(*writers.digits(), rng)
        else:
            image, text = draw(images, labels, rng)
        strips.append(string_reader.prepare(ink_of(image)))
        texts.append(text)
    x = engine.stack(strips, string_reader.INPUT.bucket(max(s.shape[1] for s in strips)), string_reader.INPUT)
    y = np.full((BATCH_SIZE, MAX_LENGTH), 0, np.int32)
    lengths = np.array([len(t) for t in texts], np.int32)
    for i, t in enumerate(texts):
        y[i, :len(t)] = [int(c) for c in t]
    return x, y, lengths


def _batch_worker(data: Optional[str], seed: int, worker: int, workers: int, field_share: float,
                  writer_share: float, convention_share: float, pen_share: float, font_share: float,
                  queue) -> None:
    """A data worker: composes training batches from its own random stream into ``queue``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the training process decides when to stop
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    train_split, _ = mnist.train_validation_split(mnist.load(data).train)
    rng = np.random.default_rng([seed, worker, workers])
    writers = WriterPool(train_split.images, train_split.labels, rng) if writer_share else None
    conventions = ConventionPool(train_split.images, train_split.labels, rng) if convention_share else None
    pens = PenPool(rng) if pen_share else None
    fonts = FontPool(rng) if font_share else None
    while True:
        queue.put(training_batch(train_split.images, train_split.labels, rng, field_share, writers, writer_share,
                                 conventions, convention_share, pens, pen_share, fonts, font_share))


class BatchProducer:
    """Training batches composed by ``workers`` processes while the network trains.

    Composing a batch (drawing fields, paper, pens and a scanner) costs about as much as a
    training step on a CPU; in worker processes the two overlap. Each worker has its own random
    stream from the run's seed, so a run is repeatable up to the order the batches arrive in.
    """

    def __init__(self, data: Optional[str], seed: int, workers: int, field_share: float, writer_share: float,
                 convention_share: float = 0.0, pen_share: float = 0.0, font_share: float = 0.0):
        from multiprocessing import get_context

        context = get_context("spawn")
        self.queue = context.Queue(maxsize=4 * workers)
        self.processes = [context.Process(target=_batch_worker, daemon=True,
                                          args=(data, seed, k, workers, field_share, writer_share, convention_share,
                                                pen_share, font_share, self.queue))
                          for k in range(workers)]
        for process in self.processes:
            process.start()

    def next(self):
        import queue

        while True:
            try:
                return self.queue.get(timeout=5)
            except queue.Empty:
                if not any(process.is_alive() for process in self.processes):
                    raise DatasetError("every data worker stopped before composing a batch "
                                       "(run with --data-workers 0 to see why)") from None

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(timeout=10)


# ---------------------------------------------------------------- network


def build_network(keras, filters=(32, 64, 96, 128), column_filters: int = 128, dropout: float = 0.1,
                  block_convs: Sequence[int] = (0, 0, 0, 0), context_blocks: int = 2, fine_blocks: int = 0):
    """(n, 32, width, 1) ink-high strips -> (n, 1, width / 4, 11) logits per column (width / 2
    with ``fine_blocks``).

    ``block_convs`` adds residual 3x3 convolutions inside each conv block and ``context_blocks``
    sets how many residual 1x5 convolutions run over the columns. Every added convolution is a
    residual branch whose last batch norm can start at zero (``grow_from``), so a deeper network
    can begin as exactly the network it grows from and spend its training on what the extra
    depth adds.
    """
    layers = keras.layers
    inputs = keras.Input((string_reader.HEIGHT, None, 1), name="field")
    x = inputs
    # Height 32 -> 16 -> 8 -> 4 -> 1; width pooled twice (-> width / 4 columns).
    pools = [(2, 2), (2, 2), (2, 1), (4, 1)]
    extra = list(block_convs) + [0] * (len(filters) - len(block_convs))
    for i, (f, pool) in enumerate(zip(filters, pools)):
        x = layers.Conv2D(f, 3, padding="same", name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        for j in range(extra[i]):
            name = f"conv{i + 1}_res{j + 1}"
            y = layers.Conv2D(f, 3, padding="same", name=name)(x)
            y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(y)
            y = layers.ReLU(name=f"{name}_relu")(y)
            x = layers.Add(name=f"{name}_add")([x, y])
        x = layers.MaxPooling2D(pool, name=f"pool{i + 1}")(x)
    x = layers.Conv2D(column_filters, (1, 1), padding="same", name="columns")(x)
    for i in range(context_blocks):  # context along the row: neighbours left and right
        y = layers.Conv2D(column_filters, (1, 5), padding="same", name=f"context{i + 1}")(x)
        y = layers.BatchNormalization(momentum=0.9, name=f"context_bn{i + 1}")(y)
        y = layers.ReLU(name=f"context_relu{i + 1}")(y)
        x = layers.Add(name=f"context_add{i + 1}")([x, y])
    if fine_blocks:
        # Each column becomes two (a learned split that starts as a copy, ``_copy_columns``), and
        # residual 1x3 convolutions tell the two apart, so a blank fits between equal digits.
        x = layers.Conv2DTranspose(column_filters, (1, 2), strides=(1, 2), use_bias=False, name="fine_split")(x)
        for i in range(fine_blocks):
            y = layers.Conv2D(column_filters, (1, 3), padding="same", name=f"fine{i + 1}")(x)
            y = layers.BatchNormalization(momentum=0.9, name=f"fine_bn{i + 1}")(y)
            y = layers.ReLU(name=f"fine_relu{i + 1}")(y)
            x = layers.Add(name=f"fine_add{i + 1}")([x, y])
    x = layers.Dropout(dropout, name="drop")(x)
    logits = layers.Dense(string_reader.BLANK + 1, name="logits")(x)
    model = keras.Model(inputs, logits, name="digit_strings_logits")
    if fine_blocks:
        _copy_columns(model.get_layer("fine_split"))
    return model


def _copy_columns(layer) -> None:
    """Set a (1, 2)-strided transposed convolution to copy each column into both of its
    outputs, so a network grown from a coarser one reads as it did (repeats merge in CTC)."""
    (kernel,) = layer.get_weights()  # (1, 2, filters out, filters in)
    eye = np.eye(kernel.shape[2], kernel.shape[3], dtype=kernel.dtype)
    layer.set_weights([np.stack([eye, eye])[None]])


def grow_from(model, start) -> list[str]:
    """Start ``model`` from the weights of ``start`` (a trained, possibly shallower reader).

    Layers of the same name take their weights; every residual branch ``start`` lacks gets its
    closing batch norm's scale and shift set to zero, so it adds nothing at first and ``model``
    reads exactly as ``start`` did. Returns the names of the layers that are new.
    """
    known = {layer.name for layer in start.layers}
    new = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name == "fine_split" and layer.name not in known:
            new.append(layer.name)  # keeps the copy it was built with
            continue
        if layer.name in known:
            try:
                layer.set_weights(start.get_layer(layer.name).get_weights())
            except ValueError:
                raise UsageError(f"--init: layer {layer.name} of the model grown from has other shapes; "
                                 "growing adds layers and keeps the widths of the network it grows from") from None
            continue
        new.append(layer.name)
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, variance])
    return new


def export_network(trained, temperature: float, keras):
    """The shipped model: logits divided by the fitted temperature, softmax over 11 classes."""
    x = keras.layers.Rescaling(1.0 / temperature, name="temperature")(trained.output)
    probs = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(trained.input, probs, name="digit_strings")


# ---------------------------------------------------------------- measuring


def column_logits(model, strips: list[np.ndarray]) -> list[np.ndarray]:
    """Per strip (T, 11) logits, batched by width bucket."""
    out: list = [None] * len(strips)
    for part, x in engine.batches(strips, string_reader.INPUT):
        logits = np.asarray(model(x, training=False)).reshape(len(part), -1, string_reader.BLANK + 1)
        stride = string_reader.column_stride(x.shape[2], logits.shape[1])
        for k, i in enumerate(part):
            steps = min(logits.shape[1], math.ceil((strips[i].shape[1] + string_reader.SIDE_PAD) / stride))
            out[i] = logits[k, :steps]
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def read_logits(logits: list[np.ndarray], temperature: float = 1.0) -> tuple[list[str], np.ndarray]:
    reads, confidences = [], []
    for lg in logits:
        probs = _softmax(lg / temperature)
        digits, _ = string_reader.best_path(probs)
        reads.append("".join(map(str, digits)))
        confidences.append(math.exp(string_reader.string_log_probability(probs, digits)) if digits else 0.0)
    return reads, np.array(confidences)


def fit_temperature(logits: list[np.ndarray], truths: list[str]) -> float:
    """The temperature whose string probabilities best predict whether the read is right (log loss)."""
    best = (math.inf, 1.0)
    for t in np.exp(np.linspace(math.log(0.5), math.log(4.0), 29)):
        reads, conf = read_logits(logits, float(t))
        right = np.array([r == s for r, s in zip(reads, truths)])
        c = np.clip(conf, 1e-6, 1 - 1e-6)
        loss = -float(np.mean(np.where(right, np.log(c), np.log(1 - c))))
        if loss < best[0]:
            best = (loss, float(t))
    return best[1]


def reliability(confidences: np.ndarray, right: np.ndarray) -> dict:
    """Expected calibration error and accuracy at a few confidence cut-offs."""
    bins = np.linspace(0, 1, 11)
    ece = 0.0
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (confidences >= lo) & (confidences < hi if hi < 1 else confidences <= hi)
        if sel.any():
            ece += sel.mean() * abs(confidences[sel].mean() - right[sel].mean())
    return {"ece": float(ece),
            **{f"right_at_conf_{c}": float((right & (confidences >= c)).mean()) for c in (0.9, 0.95)},
            **{f"wrong_at_conf_{c}": float((~right & (confidences >= c)).mean()) for c in (0.9, 0.95)}}


# ---------------------------------------------------------------- training


def train(config: StringTrainingConfig, progress=None) -> dict:
    """Train, pick the checkpoint on validation strings, calibrate, export and measure."""
    from docsort.training.tf import keras as get_keras, tensorflow

    say = progress or (lambda message: None)
    started = time.time()
    data = mnist.load(config.data)
    train_split, val_split = mnist.train_validation_split(data.train)
    tf = tensorflow()
    keras = get_keras()
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    model = build_network(keras, config.filters, config.column_filters, block_convs=config.block_convs,
                          context_blocks=config.context_blocks, fine_blocks=config.fine_blocks)
    grown: list[str] = []
    if config.init:
        grown = grow_from(model, keras.models.load_model(config.init, compile=False))
        if grown:
            say(f"grown from {config.init}: {len(grown)} new layers start as no-ops")
    warmup = max(1, min(300, config.steps // 10))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 20, decay_steps=max(1, config.steps - warmup),
        warmup_target=config.learning_rate, warmup_steps=warmup, alpha=0.02)
    optimizer = keras.optimizers.Adam(schedule, clipnorm=5.0)

    @tf.function(input_signature=[tf.TensorSpec((None, string_reader.HEIGHT, None, 1), tf.float32),
                                  tf.TensorSpec((None, MAX_LENGTH), tf.int32),
                                  tf.TensorSpec((None,), tf.int32)], reduce_retracing=True)
    def step(x, y, lengths):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)[:, 0]
            steps = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits, lengths, steps, logits_time_major=False,
                                                 blank_index=string_reader.BLANK))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    val_fields, val_truths = validation_fields(val_split.images, val_split.labels,
                                               config.validation_strings, config.field_share,
                                               config.convention_share, config.pen_share, config.font_share)
    val_strips = strips_of(val_fields)
    history: dict[str, list[float]] = {"step": [], "loss": [], "validation_exact": []}
    best = (-1.0, 0, model.get_weights())
    every = max(1, config.steps // CHECKPOINTS)
    say(f"training on strings of {len(train_split)} MNIST training digits, {config.steps} steps of "
        f"{BATCH_SIZE}; validation: {len(val_truths)} strings of held-out digits")
    losses: list[float] = []
    tick = time.time()
    producer = (BatchProducer(config.data, config.seed, config.data_workers, config.field_share,
                              config.writer_share, config.convention_share, config.pen_share,
                              config.font_share)
                if config.data_workers else None)
    writers = (WriterPool(train_split.images, train_split.labels, rng)
               if config.writer_share and producer is None else None)
    conventions = (ConventionPool(train_split.images, train_split.labels, rng)
                   if config.convention_share and producer is None else None)
    pens = PenPool(rng) if config.pen_share and producer is None else None
    fonts = FontPool(rng) if config.font_share and producer is None else None
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for k in range(1, config.steps + 1):
            if producer is not None:
                x, y, lengths = producer.next()
            else:
                x, y, lengths = training_batch(train_split.images, train_split.labels, rng, config.field_share,
                                               writers, config.writer_share, conventions, config.convention_share,
                                               pens, config.pen_share, fonts, config.font_share)
            losses.append(float(step(x, y, lengths)))
            if k % every == 0 or k == config.steps:
                reads, _ = read_logits(column_logits(model, val_strips))
                exact = float(np.mean([r == t for r, t in zip(reads, val_truths)]))
                history["step"].append(k)
                history["loss"].append(float(np.mean(losses)))
                history["validation_exact"].append(exact)
                if exact >= best[0]:
                    best = (exact, k, model.get_weights())
                    # The best network so far, unexported: a run stopped early can be continued
                    # from it with --init.
                    (out / "checkpoint").mkdir(exist_ok=True)
                    model.save(out / "checkpoint" / "best.keras")
                say(f"step {k}/{config.steps}: loss {np.mean(losses):.3f}, validation strings exact {exact:.4f} "
                    f"({time.time() - tick:.0f} s)")
                losses, tick = [], time.time()
    finally:
        if producer is not None:
            producer.close()
    model.set_weights(best[2])

    val_logits = column_logits(model, val_strips)
    temperature = fit_temperature(val_logits, val_truths)
    val_reads, val_conf = read_logits(val_logits, temperature)
    val_right = np.array([r == t for r, t in zip(val_reads, val_truths)])
    shipped = export_network(model, temperature, keras)
    training_seconds = time.time() - started

    test = {}
    if config.test_strings:
        say(f"measuring {config.test_strings} strings of MNIST test digits")
        for name, gap in (("touching", (-0.3, 0.5)), ("gentle", (-0.15, 0.35))):
            fields, truths = benchmark_fields(data.test.images, data.test.labels, config.test_strings,
                                              2025 + 1, gap=gap)
            reads, conf = read_logits(column_logits(model, strips_of(fields)), temperature)
            right = np.array([r == t for r, t in zip(reads, truths)])
            test[name] = {"gap": list(gap), "n": len(truths), "exact": float(right.mean()),
                          **reliability(conf, right)}

    model_file = out / "digit_strings.keras"
    shipped.save(model_file)
    export(model_file, say)
    from docsort.reading.manifest import file_sha256

    metrics = {
        "model": "digit_strings",
        "task": "whole-field digit string reading (CTC, 10 digits + blank per column)",
        "test_accuracy": test.get("touching", {}).get("exact"),
        "test": test,
        "validation_exact": float(val_right.mean()),
        "validation": {"n": len(val_truths), "gap": [-0.3, 0.5], "length": 5, "field_share": config.field_share,
                       **reliability(val_conf, val_right)},
        "field_share": config.field_share,
        "writer_share": config.writer_share,
        "convention_share": config.convention_share,
        "pen_share": config.pen_share,
        "font_share": config.font_share,
        "temperature": temperature,
        "steps": config.steps,
        "learning_rate": config.learning_rate,
        "init": config.init,
        "batch_size": BATCH_SIZE,
        "best_step": best[1],
        "seed": config.seed,
        "filters": list(config.filters),
        "column_filters": config.column_filters,
        "block_convs": list(config.block_convs),
        "context_blocks": config.context_blocks,
        "fine_blocks": config.fine_blocks,
        "grown_layers": grown,
        "data_workers": config.data_workers,
        "params": int(shipped.count_params()),
        "training_seconds": round(training_seconds, 1),
        "command": config.command,
        "dataset": {"name": "MNIST", "source": data.source, "sha256": data.sha256},
        "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                        "keras": keras.__version__, "cpu_count": os.cpu_count(),
                        "tf_threads": settings.model_threads() or None},
        "model_file": model_file.name,
        "model_sha256": file_sha256(str(model_file.resolve())),
        "history": history,
    }
    if config.combination_strings:
        say("fitting the combination with the segmenting reader on validation codes")
        from docsort.reading.digits.strings import StringReader

        metrics["combination"] = fit_combination(val_split.images, val_split.labels,
                                                 config.combination_strings,
                                                 string_reader=StringReader(str(onnx_path(model_file))))
    (out / "digit_strings.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_manifest(out, say)
    return metrics


# ---------------------------------------------------------------- combining with the segmenting reader


def fit_logistic(x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray] = None,
                 l2: float = 1e-2, iterations: int = 50) -> np.ndarray:
    """Logistic regression weights by Newton's method (small ridge keeps separable groups finite)."""
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
        grad = x.T @ (s * (p - y)) + l2 * w
        hess = (x * (s * p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return w


def combination_fields(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                       code_length: int = 5) -> tuple[list[np.ndarray], list[str]]:
    """Codes like the pipeline meets: half scanned at envelope sizes (as ``evaluate tradeoff``
    composes them), half touching and overlapping (as the ``read-digits`` benchmark does)."""
    scanned, _, scanned_truths = compose_strings(images, labels, count - count // 2, seed, code_length)
    tight, tight_truths = benchmark_fields(images, labels, count // 2, seed + 1, code_length)
    return scanned + tight, scanned_truths + tight_truths


def envelope_fields(handwriting: str | Path, count: int, seed: int, code_length: int = 5,
                    jobs: int = 1, mnist_split: str = "validation") -> tuple[list[np.ndarray], list[str]]:
    """Handwritten destination fields as ``process`` cuts them, with their true codes.

    ``count`` envelopes are generated with MNIST validation digits (never trained on;
    ``mnist_split`` picks others for measurements) and read by the real pipeline; for each
    envelope whose destination it read as handwriting, the field crop behind the chosen code is
    kept (its truth the envelope's destination code).
    """
    import tempfile
    from multiprocessing import get_context

    from docsort.training import samples

    with tempfile.TemporaryDirectory() as tmp:
        truths = samples.write_samples(tmp, count=count, seed=seed, handwriting=handwriting,
                                       code_length=code_length, mnist_split=mnist_split, image_format="png")
        jobs_in = [(str(Path(tmp) / t.file), t.destination_code, code_length) for t in truths
                   if t.destination_source == "handwritten"]
        if jobs > 1:
            with get_context("spawn").Pool(jobs) as pool:
                found = pool.map(_destination_field, jobs_in)
        else:
            found = [_destination_field(job) for job in jobs_in]
    kept = [f for f in found if f is not None]
    return [f[0] for f in kept], [f[1] for f in kept]


def _destination_field(job: tuple[str, str, int]) -> Optional[tuple[np.ndarray, str]]:
    """Run the pipeline on one envelope; return the field crop behind its chosen code."""
    from docsort.page import ingest
    from docsort.page import pipeline

    path, truth, code_length = job
    page = next(iter(ingest.iter_pages(path)), None)
    if page is None or not page.ok:
        return None
    # The fields do not depend on the accept threshold, which is measured after this fit.
    result, fields = pipeline.read_page(page.image, page.number,
                                        pipeline.Settings(code_length=code_length, accept_threshold=0.5))
    code = result.postal_code
    if code is None or code.source != "handwritten":
        return None
    for crop, reading in fields:
        if reading.digits == code.value and abs(reading.confidence - code.confidence) < 1e-9:
            return ink_of(crop), truth
    return None


def family_fields_for_fitting(images: np.ndarray, labels: np.ndarray, count: int, seed: int
                              ) -> tuple[list[np.ndarray], list[str]]:
    """Number fields of the training families (separators, marks, frames, paper, pens), lengths
    1-10, composed from ``images`` (pass validation digits): what ``read-digits`` is handed."""
    from docsort.training.synth import fields as field_synth

    rng = np.random.default_rng(seed)
    composed = [field_synth.training_field(images, labels, rng) for _ in range(count)]
    return [c.image for c in composed], [c.digits for c in composed]


def other_hands(images: np.ndarray, labels: np.ndarray, seed: int, convention_share: float,
                pen_share: float, font_share: float = 0.0
                ) -> tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """The combination's digits in other hands: ``images`` written the continental way, the
    same labels drawn by pen writers, and written in the training font hands (None where the
    share is 0)."""
    styled = (ConventionPool(images, labels, np.random.default_rng(seed + 5)).digits()[0]
              if convention_share else None)
    drawn = pen_digits.draw_like(labels, np.random.default_rng(seed + 8)) if pen_share else None
    fonts = font_hands.draw_like(labels, np.random.default_rng(seed + 12)) if font_share else None
    return styled, drawn, fonts


def combination_codes(images: np.ndarray, labels: np.ndarray, count: int, seed: int, code_length: int,
                      convention_share: float = 0.0, pen_share: float = 0.0, hands=None,
                      font_share: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """The ``count`` composed codes the combination is fitted on (``combination_fields``), the
    shares by continental and pen writers drawn from ``hands`` (``other_hands``)."""
    styled, drawn, fonts = (hands if hands is not None
                            else other_hands(images, labels, seed, convention_share, pen_share, font_share))
    styled_count, pen_count = int(round(count * convention_share)), int(round(count * pen_share))
    font_count = int(round(count * font_share))
    plain_count = count - styled_count - pen_count - font_count
    fields, truths = (combination_fields(images, labels, plain_count, seed, code_length)
                      if plain_count > 0 else ([], []))
    for source, k, kind_seed in ((styled, styled_count, seed + 3), (drawn, pen_count, seed + 9),
                                 (fonts, font_count, seed + 13)):
        if k:
            more, more_truths = combination_fields(source, labels, k, kind_seed, code_length)
            fields, truths = fields + more, truths + more_truths
    return fields, truths


def fit_combination(images: np.ndarray, labels: np.ndarray, count: int = 2000, seed: int = 7,
                    code_length: int = 5, reader=None, string_reader=None,
                    envelopes: Optional[tuple[list[np.ndarray], list[str]]] = None,
                    envelope_weight: float = 1.0, family_count: int = 0, line_reader=None,
                    convention_share: float = 0.0, pen_share: float = 0.0, font_share: float = 0.0) -> dict:
    """Fit P(candidate right) from every reader's probability of every candidate (see
    ``combine``) on validation codes composed from digits (read at ``code_length``), on
    ``family_count`` number fields of the training families (read at their own length) and, when
    given, on destination fields the pipeline cut from envelopes (``envelope_fields``), each of
    those counting ``envelope_weight`` times. ``convention_share`` of the codes and of the family
    fields are written by continental writers (``ConventionPool``), and ``pen_share`` of them
    by pen writers of many digit shapes (``synth.pen_digits``), and ``font_share`` of them in the
    training font hands (``synth.font_hands``), so the fit learns how far each reader is trusted
    on hands unlike MNIST's."""
    from docsort.reading.digits import combine
    from docsort.reading.digits.ppocr import shared_reader as shared_line_reader
    from docsort.reading.digits import segmenting as digit_reader
    from docsort.reading.digits.strings import shared_reader

    line_reader = line_reader or shared_line_reader()
    groups = []  # (inks, truths, weight, code length)
    styled, drawn, fonts = other_hands(images, labels, seed, convention_share, pen_share, font_share)
    fields, truths = combination_codes(images, labels, count, seed, code_length, convention_share, pen_share,
                                       (styled, drawn, fonts), font_share)
    codes = [ink_of(f) for f in fields]
    if envelopes:
        codes += list(envelopes[0])
    groups.append((codes, list(truths) + (list(envelopes[1]) if envelopes else []),
                   [1.0] * len(fields) + [envelope_weight] * (len(envelopes[0]) if envelopes else 0), code_length))
    if family_count:
        styled_family, pen_family = int(round(family_count * convention_share)), int(round(family_count * pen_share))
        font_family = int(round(family_count * font_share))
        family, family_truths = family_fields_for_fitting(
            images, labels, family_count - styled_family - pen_family - font_family, seed + 2)
        for source, k, kind_seed in ((styled, styled_family, seed + 4), (drawn, pen_family, seed + 10),
                                     (fonts, font_family, seed + 14)):
            if k:
                more, more_truths = family_fields_for_fitting(source, labels, k, kind_seed)
                family, family_truths = family + more, family_truths + more_truths
        groups.append(([ink_of(f) for f in family], family_truths, [1.0] * len(family), None))
    rows, y, w = [], [], []
    analysed = []  # (splits, whole, line, truth, length)
    for inks, group_truths, weights_, length in groups:
        if not inks:
            continue
        splits_all = digit_reader.analyse_fields(inks, length, reader=reader)
        wholes = (string_reader or shared_reader()).read_inks(inks)
        lines = line_reader.read_inks(inks)
        for splits, whole, line, truth, weight in zip(splits_all, wholes, lines, group_truths, weights_):
            proposed = combine.proposals(splits, whole, line, length)
            for candidate in dict.fromkeys(proposed.values()):
                rows.append(combine.candidate_features(splits, whole, line, candidate, proposed))
                y.append(float(candidate == truth))
                w.append(weight)
            analysed.append((splits, whole, line, truth, length))
    x = np.array(rows).reshape(len(rows), -1)
    weights = {"readers": list(combine.READERS),
               "candidate": [round(float(v), 6) for v in fit_logistic(x, np.array(y), np.array(w))]}

    def share(items) -> float:
        items = list(items)
        return float(np.mean(items)) if items else 0.0

    chosen = [combine.choose(s, wh, ln, n, weights)[0] for s, wh, ln, _, n in analysed]
    accuracy = {"segmented_right": share(s.reading.digits == t for s, _, _, t, _ in analysed),
                "whole_right": share(wh.digits == t for _, wh, _, t, _ in analysed),
                "line_right": share(ln.digits == t for _, _, ln, t, _ in analysed),
                "combined_right": share(c == t for c, (_, _, _, t, _) in zip(chosen, analysed))}
    if family_count:
        tail = analysed[-family_count:]
        accuracy["family_fields_combined_right"] = share(
            c == t for c, (_, _, _, t, _) in zip(chosen[-family_count:], tail))
        accuracy["family_fields_line_right"] = share(ln.digits == t for _, _, ln, t, _ in tail)
        accuracy["family_fields_whole_right"] = share(wh.digits == t for _, wh, _, t, _ in tail)
    data = "MNIST training digits held out for validation"
    if envelopes:
        data += f"; {len(envelopes[0])} of them destination fields cut by the pipeline from envelopes"
    if family_count:
        data += f"; {family_count} number fields of the training families (never the held-out one)"
    if convention_share:
        data += f"; {100 * convention_share:g} % of the codes and family fields by continental writers"
    if pen_share:
        data += f"; {100 * pen_share:g} % by pen writers of many digit shapes (synth.pen_digits)"
    if font_share:
        data += f"; {100 * font_share:g} % in the training font hands (synth.font_hands)"
    return {**weights, "fit": {"data": data, "n": len(analysed), "candidates": len(y), "seed": seed,
                               "code_length": code_length, "family_fields": family_count,
                               "envelope_fields": len(envelopes[0]) if envelopes else 0,
                               "envelope_weight": envelope_weight, "convention_share": convention_share,
                               "pen_share": pen_share, "font_share": font_share,
                               **accuracy}}


def refit_combination(metrics_path: Path, data: Optional[str], handwriting: Optional[str], envelopes: int = 600,
                      envelope_seed: int = 7001, envelope_weight: float = 3.0, count: int = 2000,
                      jobs: int = 1, fields: Optional[tuple[list[np.ndarray], list[str]]] = None,
                      command: str = "", progress=None, members: Optional[Sequence[str]] = None,
                      out: Optional[Path] = None, family_count: int = 0,
                      views: Optional[Sequence[int]] = None, convention_share: float = 0.0,
                      pen_share: float = 0.0, font_share: float = 0.0) -> dict:
    """Refit the shipped combination in ``metrics_path`` without retraining the string model:
    on the composed validation codes plus the destination fields the pipeline cuts from
    ``envelopes`` generated envelopes with validation digits (``envelope_fields``).

    ``members`` names the whole-field models of the ensemble (files beside ``metrics_path``,
    its own model first); by default the ones it names already. ``views``: the ink heights each
    member reads a field at (default ``strings.VIEWS``); the combination is fitted to them and
    the manifest ships them. The refitted metrics go to ``out`` (default: ``metrics_path`` itself).
    """
    from docsort.reading.digits.strings import StringReader

    say = progress or (lambda line: None)
    metrics = json.loads(Path(metrics_path).read_text())
    folder = Path(metrics_path).parent
    members = list(members or metrics.get("ensemble") or [metrics.get("model_file", "digit_strings.keras")])
    missing = [m for m in members if not (folder / m).is_file()]
    if missing:
        raise UsageError(f"no whole-field model {', '.join(missing)} in {folder}")
    string_reader = StringReader([runnable(folder / m) for m in members], views=views)
    _, val_split = mnist.train_validation_split(mnist.load(data).train)
    if fields is None and envelopes and handwriting:
        say(f"reading {envelopes} generated envelopes with the pipeline")
        fields = envelope_fields(handwriting, envelopes, envelope_seed, jobs=jobs)
    say(f"fitting on {count} composed codes, {family_count} family fields and "
        f"{len(fields[0]) if fields else 0} envelope fields")
    combination = fit_combination(val_split.images, val_split.labels, count, envelopes=fields,
                                  envelope_weight=envelope_weight, string_reader=string_reader,
                                  family_count=family_count, convention_share=convention_share,
                                  pen_share=pen_share, font_share=font_share)
    combination["fit"].update({"envelopes": envelopes, "envelope_seed": envelope_seed,
                               "command": command})
    metrics["combination"] = combination
    metrics["ensemble"] = members
    metrics["views"] = list(string_reader.views)  # the combination is fitted to readings at these heights
    target = Path(out) if out is not None else Path(metrics_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(metrics, indent=2) + "\n")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {target}: {exc.strerror or exc}") from None
    refresh_manifest(target, say)
    return combination
