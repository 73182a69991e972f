"""Training the printed/handwritten classifier on the crop sets of ``datasets.writing_type_crops``.

A small convolutional network over a normalised crop of any width; the last epochs train with
BatchNorm statistics measured once and held fixed (inference runs under one average), and the
temperature that calibrates ``p_handwritten`` is fitted on the held-out validation crops and
folded into the saved model. ``docsort train writing-type`` then measures the saved model with
``evaluate.writing_type.training_metrics`` and writes its metrics beside it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from docsort.reading import engine, writing_type as wt
from docsort.training.datasets.writing_type_crops import TrainingConfig, build_sets
from docsort.training.export import export

# The lone-character model's convolutions: wider than the main model's, affordable on narrow crops.
LONE_CHARACTER_FILTERS = (24, 48, 96, 128)
# Its training makes three times the lone-character pairs of the main model's, since it learns
# from the narrow crops only (with the main model's counts it overfits them).
LONE_CHARACTER_RECIPE = {"single_characters": 18000, "lone_characters": 12000}

# --- Model ----------------------------------------------------------------------------------------

def build_model(keras, filters: tuple[int, ...] = (12, 24, 48, 64), stem_stride: int = 1):
    """A small conv net over a (32, any width) crop; global pooling makes it width-agnostic.

    ``filters``: of each 3x3 convolution; all but the last are followed by 2x2 max-pooling.
    ``stem_stride`` 2: the first convolution steps two pixels, so nothing runs at the crop's full
    resolution (on one core a few filters there cost more time than all the deep layers).
    Outputs a logit; calibration and the sigmoid are added when the model is saved.
    """
    layers = keras.layers
    inputs = keras.Input((wt.HEIGHT, None, 1), name="crop")
    x = inputs
    for i, width in enumerate(filters[:-1]):
        x = layers.Conv2D(width, 3, strides=stem_stride if i == 0 else 1, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(filters[-1], 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(0.3)(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logit, name="writing_type_logit")


def calibrated_model(keras, logit_model, temperature: float):
    """The logit model with temperature scaling and the sigmoid folded in: outputs p_handwritten."""
    scaled = keras.layers.Rescaling(1.0 / temperature, name="temperature")(logit_model.output)
    p = keras.layers.Activation("sigmoid", name="p_handwritten")(scaled)
    return keras.Model(logit_model.input, p, name="writing_type")


def prepare_all(crops: list[np.ndarray]) -> list[np.ndarray]:
    return [wt.prepare(c).astype(np.float16) for c in crops]


def shifted(x: np.ndarray, rng: np.random.Generator, share: float = 0.5) -> np.ndarray:
    """A batch of prepared crops with ``share`` of them moved by up to 2 columns and 1 row, paper
    filling in: where Tesseract's box falls on the word is an accident, and a network whose call
    turns on a pixel's alignment with its pooling grid is judging the grid, not the hand."""
    out = x.copy()
    for i in np.flatnonzero(rng.random(len(x)) < share):
        dy, dx = int(rng.integers(-1, 2)), int(rng.integers(-2, 3))
        moved = np.zeros_like(x[i])
        h, w = x.shape[1:3]
        moved[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
            x[i, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        out[i] = moved
    return out


def rescan(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A batch of prepared crops (B, HEIGHT, W, 1) as another pen and scanner would give them.

    The crops are drawn once per run and a large network learns them by heart (training accuracy
    above validation); each time a crop is seen it gets, at random and for both classes alike,
    the scan's look anew: cut to 1 bit at a random level, its strokes thickened or thinned by a
    pixel, its ink lighter or darker, or specks on the paper. None of it tells print from hand.
    """
    x = x.copy()
    n = len(x)

    def chosen(p):
        return (rng.random(n) < p)[:, None, None, None]

    level = rng.uniform(0.25, 0.65, (n, 1, 1, 1)).astype(np.float32)
    x = np.where(chosen(0.25), (x > level).astype(np.float32), x)
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    corners = (padded[:, :-1, :-1], padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, 1:, 1:])
    thick = np.maximum.reduce(corners)
    thin = np.minimum.reduce(corners)
    # Thinning keeps a crop only where most of its ink survives (a pencil line would vanish).
    kept = (thin.sum(axis=(1, 2, 3)) >= 0.5 * x.sum(axis=(1, 2, 3)))[:, None, None, None]
    x = np.where(chosen(0.15), thick, np.where(chosen(0.15) & kept, thin, x))
    gamma = np.exp(rng.uniform(np.log(0.6), np.log(1.7), (n, 1, 1, 1))).astype(np.float32)
    x = np.where(chosen(0.3), x ** gamma, x)
    specks = (rng.random(x.shape) < 0.003).astype(np.float32)
    x = np.where(chosen(0.15), np.maximum(x, specks), x)
    return x


def _epoch_batches(prepared, labels, batch_size, rng, augment: bool = False, jitter: bool = False):
    """Shuffled batches of crops of similar width (same bucket), in random order; with
    ``augment``, each as ``rescan`` gives it, and with ``jitter`` half of them ``shifted``."""
    by_bucket: dict[int, list[int]] = {}
    for i, p in enumerate(prepared):
        by_bucket.setdefault(wt.INPUT.bucket(p.shape[1]), []).append(i)
    plan = []
    for width, members in by_bucket.items():
        members = np.asarray(members)[rng.permutation(len(members))]
        for start in range(0, len(members), batch_size):
            plan.append((width, members[start:start + batch_size]))
    for j in rng.permutation(len(plan)):
        width, idx = plan[j]
        x = engine.stack([prepared[i].astype(np.float32) for i in idx], width, wt.INPUT)
        if augment:
            x = rescan(x, rng)
        if jitter:
            x = shifted(x, rng)
        yield x, np.asarray(labels, np.float32)[idx][:, None]


def teacher_of(path) -> Callable[[np.ndarray], np.ndarray]:
    """P(handwritten) of a trained classifier (a model folder's ensemble, or one network) on a
    stacked training batch, as it would answer at run time: the crops are already padded to
    their bucket, so it batches them exactly as given."""
    from docsort.reading.writing_type import WritingTypeClassifier

    path = Path(path)
    classifier = WritingTypeClassifier(str(path / f"{wt.manifest.WRITING_TYPE}.onnx") if path.is_dir() else str(path))
    return lambda x: classifier.p_handwritten_prepared(list(x[..., 0]))[:, None]


def distilled(y: np.ndarray, p_teacher: np.ndarray, share: float) -> np.ndarray:
    """Soft targets: the label, moved ``share`` of the way to the teacher's probability.

    A small network learns from a larger ensemble's probabilities what the labels alone cannot
    tell it: which crops are near the line between print and hand, and how near.
    """
    return ((1.0 - share) * y + share * np.asarray(p_teacher, np.float32).reshape(y.shape)).astype(np.float32)


def recalibrate_batchnorm(tf, keras, model, make_batches) -> None:
    """Measure each BatchNorm layer's statistics again, in order, with the current weights.

    During training the moving statistics trail weights that keep changing, and each batch
    holds one width bucket; here every layer gets the plain average of its per-batch mean and
    variance over training batches, as the network now produces them.
    """
    spec = tf.TensorSpec((None, wt.HEIGHT, None, 1), tf.float32)
    for layer in [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]:
        probe = keras.Model(model.input, layer.input)
        moments = tf.function(lambda x: tf.nn.moments(probe(x, training=False), axes=[0, 1, 2]),
                              input_signature=[spec], reduce_retracing=True)
        means, variances = [], []
        for x, _ in make_batches():
            mean, variance = moments(tf.constant(x))
            means.append(mean.numpy())
            variances.append(variance.numpy())
        layer.moving_mean.assign(np.mean(means, axis=0))
        layer.moving_variance.assign(np.mean(variances, axis=0))


def predict_logits(predict, prepared) -> np.ndarray:
    out = np.zeros(len(prepared), np.float32)
    for idx, x in engine.batches([p.astype(np.float32) for p in prepared], wt.INPUT):
        out[idx] = np.asarray(predict(x)).reshape(-1)
    return out


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation log-loss (1-D search on a log grid, then refined)."""
    y = labels.astype(np.float64)
    z = logits.astype(np.float64)

    def nll(t):
        s = z / t
        return float(np.mean(np.logaddexp(0, s) - y * s))

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 200))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.exp(np.linspace(np.log(best / 1.1), np.log(best * 1.1), 100))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(config: TrainingConfig, log: Callable[[str], None] = _stderr, sets=None) -> dict:
    """Build the data (or take ``sets`` from ``build_sets``), train, calibrate, and write
    ``writing_type.keras`` + history to ``out_dir``."""
    started = time.time()
    # The data is made (with worker processes) before TensorFlow starts its threads.
    train_set, validation, meta = sets if sets is not None else build_sets(config, log)
    log(f"data: {len(train_set)} training crops, {len(validation)} validation crops")
    from docsort.training.tf import keras, tensorflow

    tf = tensorflow()
    k = keras()
    k.utils.set_random_seed(config.draw_seed)
    x_train = prepare_all(train_set.crops)
    x_val = prepare_all(validation.crops)
    y_train = np.asarray(train_set.labels)
    y_val = np.asarray(validation.labels)

    model = build_model(k, tuple(config.filters), config.stem_stride)
    teacher = teacher_of(config.teacher) if config.teacher else None
    steps_per_epoch = sum(math.ceil(n / config.batch_size) for n in
                          np.bincount([wt.INPUT.bucket(p.shape[1]) for p in x_train]) if n)
    schedule = k.optimizers.schedules.CosineDecay(2e-3, decay_steps=max(1, config.epochs * steps_per_epoch),
                                                  alpha=0.02)
    optimizer = k.optimizers.Adam(schedule)
    # With ``ema_momentum`` an exponential moving average of the weights is saved: single steps
    # swing the BatchNorm net's validation accuracy by points from epoch to epoch, the average
    # does not. Its momentum ramps up from the first step, so short runs average what they have.
    weights = list(model.trainable_variables)
    averages = [tf.Variable(v, trainable=False) for v in weights]
    step = tf.Variable(0.0, trainable=False)
    loss_fn = k.losses.BinaryCrossentropy(from_logits=True)
    # Balance the classes: each class carries half of the loss whatever its share of crops.
    counts = np.bincount(y_train, minlength=2).astype(np.float64)
    class_weight = (len(y_train) / (2.0 * np.maximum(counts, 1))).astype(np.float32)

    spec = tf.TensorSpec((None, wt.HEIGHT, None, 1), tf.float32)

    def make_train_step():
        """A traced training step over the variables trainable now (fewer once BatchNorm is fixed)."""
        label_spec = tf.TensorSpec((None, 1), tf.float32)

        @tf.function(input_signature=[spec, label_spec, label_spec], reduce_retracing=True)
        def train_step(x, y, target):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                sample_weight = tf.gather(tf.constant(class_weight), tf.cast(y[:, 0], tf.int32))
                loss = loss_fn(target, logits, sample_weight=sample_weight)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            if config.ema_momentum:
                step.assign_add(1.0)
                momentum = tf.minimum(config.ema_momentum, (1.0 + step) / (10.0 + step))
                for average, variable in zip(averages, weights):
                    average.assign(momentum * average + (1.0 - momentum) * variable)
            correct = tf.reduce_mean(tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), y), tf.float32))
            return loss, correct
        return train_step

    train_step = make_train_step()

    predict = tf.function(lambda x: model(x, training=False), input_signature=[spec], reduce_retracing=True)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    rng = np.random.default_rng(config.draw_seed)
    for epoch in range(config.epochs):
        t0 = time.time()
        if config.fixed_statistics_epochs and epoch == max(1, config.epochs - config.fixed_statistics_epochs):
            # Each batch holds crops of one width bucket, so batch statistics differ from bucket
            # to bucket (lone characters against long lines) while inference uses one average.
            # Measured once and then held fixed, the remaining epochs train the network under
            # the very statistics it will run with.
            chosen = rng.permutation(len(x_train))[:config.recalibration_crops]
            recalibrate_batchnorm(tf, k, model, lambda: _epoch_batches(
                [x_train[i] for i in chosen], y_train[chosen], config.batch_size,
                np.random.default_rng(config.draw_seed)))
            for layer in model.layers:
                if isinstance(layer, k.layers.BatchNormalization):
                    layer.trainable = False
            train_step = make_train_step()
            log(f"BatchNorm statistics measured on {len(chosen)} crops and fixed for the last "
                f"{config.epochs - epoch} epochs")
        losses, accs, sizes = [], [], []
        for x, y in _epoch_batches(x_train, y_train, config.batch_size, rng, config.rescan, config.jitter):
            target = y if teacher is None else distilled(y, teacher(x), config.teacher_share)
            loss, acc = train_step(tf.constant(x), tf.constant(y), tf.constant(target))
            losses.append(float(loss))
            accs.append(float(acc))
            sizes.append(len(y))
        val_logits = predict_logits(predict, x_val)
        val_loss = float(np.mean(np.logaddexp(0, val_logits) - y_val * val_logits))
        val_acc = float(np.mean((val_logits > 0) == (y_val == 1)))
        history["loss"].append(float(np.average(losses, weights=sizes)))
        history["accuracy"].append(float(np.average(accs, weights=sizes)))
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_acc)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {history['loss'][-1]:.4f} acc {history['accuracy'][-1]:.4f} "
            f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({time.time() - t0:.0f} s)")

    if config.ema_momentum:
        for average, variable in zip(averages, weights):
            variable.assign(average)
    val_logits = predict_logits(predict, x_val)
    if config.ema_momentum:
        log(f"averaged weights: val_acc {float(np.mean((val_logits > 0) == (y_val == 1))):.4f}")
    for layer in model.layers:
        layer.trainable = True
    temperature = fit_temperature(val_logits, y_val)
    final = calibrated_model(k, model, temperature)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_file = out_dir / f"{config.name}.keras"
    final.save(model_file)
    export(model_file, log)
    history_file = out_dir / f"{config.name}.history.json"
    history_file.write_text(json.dumps(history, indent=2) + "\n")
    log(f"saved {model_file} (temperature {temperature:.3f}) after {time.time() - started:.0f} s")
    return {
        "model_file": str(model_file),
        "history_file": str(history_file),
        "temperature": temperature,
        "tensorflow_version": tf.__version__,
        "history": history,
        "training_seconds": round(time.time() - started, 1),
        "n_train": len(train_set),
        "n_validation": len(validation),
        **meta,
    }
