"""Measuring the digit reader on the MNIST test set, clean and as if scanned from paper.

The clean test set compares the reader with published MNIST figures; the scanned-look test set
(the same 10,000 digits printed dark on light paper at 3x, pen width changed, blurred, noised,
JPEG-compressed, then read back through ``to_mnist``, all seeded) measures what the sorting line
sees. Expected calibration error says whether a confidence of 0.99 really means 99 in 100.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from docsort import mnist

SCANNED_SEED = 7
ECE_BINS = 15
LABELS = [str(d) for d in range(10)]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by bin size."""
    if len(labels) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, confusion matrix (rows: true digit), per-digit accuracy and ECE."""
    labels = np.asarray(labels)
    predicted = probs.argmax(axis=1)
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (labels, predicted), 1)
    per_class = {LABELS[d]: float(cm[d, d] / cm[d].sum()) if cm[d].sum() else None for d in range(10)}
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "n": int(len(labels)),
        "confusion_matrix": cm.tolist(),
        "per_class_accuracy": per_class,
        "ece": expected_calibration_error(probs, labels),
    }


def scanned_test_set(test: mnist.Split, limit: int | None = None, seed: int = SCANNED_SEED) -> mnist.Split:
    """The test digits made to look scanned and read back through ``to_mnist`` (seeded)."""
    from docsort.training.augment import scanned_look

    split = test if limit is None else mnist.Split(test.images[:limit], test.labels[:limit])
    return mnist.Split(scanned_look(split.images, np.random.default_rng(seed)), split.labels)


def scanned_test_accuracy(reader, test: mnist.Split, limit: int | None = None) -> dict:
    scanned = scanned_test_set(test, limit)
    probs = reader.predict_proba(scanned.images)
    return classification_metrics(probs, scanned.labels)


def evaluate(data: str | None = None, model_file: str | None = None, report_dir: str | None = None,
             scanned: bool = False, scanned_limit: int | None = None) -> dict:
    """Measure a digit model on the MNIST test set; optionally write a report folder."""
    from docsort.digit_model import DigitReader

    dataset = mnist.load(data)
    reader = DigitReader(model_file)
    probs = reader.predict_proba(dataset.test.images)
    result = classification_metrics(probs, dataset.test.labels)
    result["test_accuracy"] = result["accuracy"]
    result["model_file"] = reader.path
    result["dataset"] = {"name": "MNIST", "source": dataset.source, "sha256": dataset.sha256}
    if scanned:
        scanned_metrics = scanned_test_accuracy(reader, dataset.test, scanned_limit)
        result["scanned_test_accuracy"] = scanned_metrics["accuracy"]
        result["scanned_n"] = scanned_metrics["n"]
        result["scanned_ece"] = scanned_metrics["ece"]
        result["scanned_confusion_matrix"] = scanned_metrics["confusion_matrix"]
    if report_dir is not None:
        write_report(Path(report_dir), result, dataset.test, probs, reader.path)
    return result


def write_report(folder: Path, result: dict, test: mnist.Split, probs: np.ndarray, model_file: str | None) -> None:
    """metrics.json plus the pictures a person checks: confusion matrix, failures, learning curve."""
    from docsort.errors import OutputNotWritableError
    from docsort.evaluation import plots

    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write the report to {folder}: {exc.strerror or exc}") from None
    plots.save_confusion_matrix(result["confusion_matrix"], LABELS, folder / "confusion_matrix.png",
                                title="Digit reader on the MNIST test set")
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != test.labels)
    wrong = wrong[np.argsort(-probs[wrong].max(axis=1))]
    plots.save_failure_gallery([test.images[i] for i in wrong], test.labels[wrong].tolist(),
                               predicted[wrong].tolist(), probs[wrong].max(axis=1).tolist(),
                               folder / "failures.png", title="Misread MNIST test digits")
    history = history_for(model_file)
    if history:
        plots.save_learning_curve(history, folder / "learning_curve.png", title="Digit reader training")


def history_for(model_file: str | None) -> dict | None:
    """The training history saved next to a model (``digits.keras`` -> ``digits.history.json``)."""
    if not model_file:
        return None
    path = Path(model_file)
    candidate = path.with_name(path.name.removesuffix(".keras") + ".history.json")
    try:
        return json.loads(candidate.read_text())
    except (OSError, ValueError):
        return None
