"""Measuring the accept/error trade-off of the digit reader and its cost-optimal accept threshold.

There are no labelled handwritten postal codes in the data, so codes are composed from real
MNIST digits the model never trained on, rendered at envelope sizes and passed through random
scanner degradations (``datasets.digit_fields.compose_strings``), then read by the same reader
``process`` uses. The curve and the threshold of least cost come from ``docsort.cost.tradeoff``.

The threshold is *fitted* on strings composed from the validation digits held out of MNIST
training, and *checked* on fresh strings composed from MNIST test digits, each test digit used
once so the strings are independent: the error rate the curve promised must agree with the one
measured on the fresh set within sampling error (Wilson / Newcombe 95 % intervals).
"""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from docsort import settings
from docsort.cost import model as cost_model
from docsort.cost.tradeoff import (check_threshold, curve_thresholds, near_optimal_range, operating_threshold,
                                   tradeoff_curve)
from docsort.reading import manifest
from docsort.training.datasets.digit_fields import compose_strings

CODE_LENGTH = settings.CODE_LENGTH  # the shipped curve is measured on 5-digit codes
FIT_SEED_OFFSET = 0
CHECK_SEED_OFFSET = 1


# --------------------------------------------------------------------------- labelled strings

def read_fields(strings: list[np.ndarray], model_path: Optional[Path] = None,
                code_length: int = CODE_LENGTH) -> tuple[list[str], np.ndarray]:
    """Read each whole number field as ``process`` does: the digits and the code confidence."""
    from docsort.reading.digits import combine
    from docsort.reading.digits.mnist_model import DigitReader

    reads = combine.read_fields(strings, code_length=code_length, reader=DigitReader(model_path))
    return [r.digits for r in reads], np.array([r.confidence for r in reads], float)


def read_at_boxes(strings: list[np.ndarray], boxes: list[list], model_path: Optional[Path] = None
                  ) -> tuple[list[str], np.ndarray]:
    """Read each field digit by digit at its known digit boxes: the reader with perfect segmentation.

    Each digit is cut at its composed box (with some height to spare for the scan's small
    rotation; touching neighbours stay in the cut) and classified by the calibrated digit model
    in one batch; the code confidence is the product of the digit probabilities. Comparing it
    with ``read_fields`` shows what splitting the field into digits costs.
    """
    from docsort.reading.digits.mnist_model import DigitReader

    crops, owners = [], []
    for n, (image, digit_boxes) in enumerate(zip(strings, boxes)):
        for x, y, w, h in digit_boxes:
            m = max(2, int(round(0.12 * h)))
            crops.append(image[max(0, y - m):y + h + m, x:x + w])
            owners.append(n)
    probs = DigitReader(model_path).read_digit_images(crops)
    digits, confidences = probs.argmax(axis=1), probs.max(axis=1).astype(float)
    reads = [""] * len(strings)
    code_conf = np.ones(len(strings), float)
    for n, d, c in zip(owners, digits, confidences):
        reads[n] += str(int(d))
        code_conf[n] *= c
    return reads, code_conf


READERS = ("field", "boxes")


# --------------------------------------------------------------------------- the measurement

def measure_tradeoff(count: int = 2000, manual_cost: float = cost_model.DEFAULT_MANUAL_COST,
                     missort_cost: float = cost_model.DEFAULT_MISSORT_COST,
                     volume: float = cost_model.DEFAULT_VOLUME, data_dir: Optional[Path] = None,
                     model_path: Optional[Path] = None, seed: int = 0, reader: str = "field") -> dict:
    """Fit the cost-optimal threshold on held-out training digits and check it on test digits.

    ``reader`` is ``field`` (the pipeline's whole-field reader, the default and what ships) or
    ``boxes`` (digits cut at their known boxes: the bound perfect segmentation would reach).
    """
    from docsort.training.datasets import mnist

    data = mnist.load(data_dir)
    _, validation = mnist.train_validation_split(data.train)
    from docsort.training.export import runnable

    model_file = Path(model_path) if model_path is not None else manifest.keras_path(manifest.DIGITS)
    network_file = runnable(model_path) if model_path is not None else None  # None: the shipped network

    sets = {}
    for name, split, offset in (("fit", validation, FIT_SEED_OFFSET), ("check", data.test, CHECK_SEED_OFFSET)):
        strings, boxes, truths = compose_strings(split.images, split.labels, count, seed * 2 + offset)
        if reader == "boxes":
            reads, confidences = read_at_boxes(strings, boxes, network_file)
        else:
            reads, confidences = read_fields(strings, network_file)
        correct = np.array([r == t for r, t in zip(reads, truths)], bool)
        sets[name] = (confidences, correct)

    fit_conf, fit_correct = sets["fit"]
    threshold, fitted = operating_threshold(fit_conf, fit_correct, manual_cost, missort_cost)
    curve = tradeoff_curve(fit_conf, fit_correct, curve_thresholds([threshold]))
    at_opt = {**tradeoff_curve(fit_conf, fit_correct, [threshold])[0], "fitted_threshold": fitted}
    check = check_threshold(threshold, sets["fit"], sets["check"])
    check["expected_cost"] = cost_model.threshold_cost(check["accept_rate"], check["error_rate"],
                                                       volume, manual_cost, missort_cost)
    bayes = cost_model.bayes_threshold(manual_cost, missort_cost)
    bayes_point = tradeoff_curve(*sets["check"], [bayes])[0]
    metrics = manifest.load_metrics(manifest.DIGITS) if model_path is None else {}

    return cost_model.round_report({
        "description": "Accept/error trade-off of the digit reader on composed handwritten "
                       f"{CODE_LENGTH}-digit codes; error_rate = share of all letters accepted with a wrong code.",
        "code_length": CODE_LENGTH,
        "reader": {"field": "docsort.reading.digits.combine.read_fields (as in process)",
                   "boxes": "digits cut at their known boxes (perfect segmentation)"}[reader],
        "costs": {"volume": volume, "manual_cost": manual_cost, "missort_cost": missort_cost},
        "model": {"file": model_file.name, "sha256": manifest.file_sha256(str(model_file.resolve())),
                  "test_accuracy": metrics.get("test_accuracy")},
        "string_model": _string_model(),
        "models": measured_models(reader, model_file),
        "reader_sources": _reader_sources(),
        "optimal": {**at_opt, "expected_cost": cost_model.threshold_cost(
            at_opt["accept_rate"], at_opt["error_rate"], volume, manual_cost, missort_cost)},
        "near_optimal": near_optimal_range(curve, volume, manual_cost, missort_cost),
        "fit": {"data": "MNIST training digits held out for validation "
                        f"({len(validation)} digits, mnist.train_validation_split)",
                "n": count, "seed": seed * 2 + FIT_SEED_OFFSET, "code_accuracy": float(np.mean(fit_correct))},
        "check": {"data": f"MNIST test digits ({len(data.test)}); no digit is in two strings up to "
                          f"{len(data.test) // CODE_LENGTH} strings",
                  "seed": seed * 2 + CHECK_SEED_OFFSET, **check},
        "calibrated_rule": {"threshold": bayes, **{k: v for k, v in bayes_point.items() if k != "threshold"},
                            "expected_cost": cost_model.threshold_cost(
                                bayes_point["accept_rate"], bayes_point["error_rate"], volume,
                                manual_cost, missort_cost),
                            "note": "1 - manual_cost/missort_cost, measured on the check set"},
        "curve": curve,
        "command": "docsort evaluate tradeoff " + " ".join(_command_args(count, manual_cost, missort_cost, seed,
                                                                          reader)),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": {"python": platform.python_version(), "platform": sys.platform,
                        "tf_threads": settings.model_threads() or None},
    })


def measured_models(reader: str, model_file: Optional[Path] = None) -> dict:
    """The model files the measured confidences come from (``{name: {"file", "sha256"}}``), which
    ``process`` and ``cost`` check before trusting the curve: the digit model and, for the field
    reader, every whole-field model."""
    models = manifest.code_reader_models(model_file)
    return models if reader == "field" else {manifest.DIGITS: models[manifest.DIGITS]}


def _string_model() -> Optional[dict]:
    """The whole-field model the field reader combines with the digit model, when shipped."""
    path = manifest.keras_path(manifest.DIGIT_STRINGS)
    if not path.is_file():
        return None
    return {"file": path.name, "sha256": manifest.file_sha256(str(path.resolve())),
            "test_accuracy": manifest.load_metrics(manifest.DIGIT_STRINGS).get("test_accuracy")}


def _reader_sources() -> dict:
    """Hashes of the code the measured confidences depend on (the curve is stale when they change)."""
    import docsort

    digits = Path(docsort.__file__).parent / "reading" / "digits"
    return {name: manifest.file_sha256(str(digits / name))
            for name in ("segmenting.py", "mnist_format.py", "mnist_model.py", "strings.py", "combine.py")}


def _command_args(count: int, manual_cost: float, missort_cost: float, seed: int, reader: str) -> list[str]:
    args = [f"--count {count}"]
    if reader != "field":
        args.append(f"--reader {reader}")
    if manual_cost != cost_model.DEFAULT_MANUAL_COST:
        args.append(f"--manual-cost {manual_cost:g}")
    if missort_cost != cost_model.DEFAULT_MISSORT_COST:
        args.append(f"--missort-cost {missort_cost:g}")
    if seed:
        args.append(f"--seed {seed}")
    return args
