"""What training and evaluation both measure on a labelled set: accuracy, the confusion matrix
and calibration (does a confidence of 0.99 really mean 99 right in 100?).

Training writes these figures into a model's ``*.metrics.json`` when it saves the model, and
``docsort evaluate`` measures a model file again with the same functions, so the two agree.
"""

from __future__ import annotations

import numpy as np

from docsort.training.datasets import mnist
from docsort.training.datasets.augment import scanned_test_set

ECE_BINS = 15
DIGIT_LABELS = [str(d) for d in range(10)]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by bin size
    (``probs``: one row of class probabilities per example)."""
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


def binary_calibration_error(p: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of a two-class model from P(class 1) alone: the predicted class's confidence, in
    equal-width bins over [0.5, 1]."""
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1 - p)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf >= lo) & ((conf < hi) if hi < 1.0 else (conf <= hi))
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Digits: accuracy, confusion matrix (rows: true digit), per-digit accuracy and ECE."""
    labels = np.asarray(labels)
    predicted = probs.argmax(axis=1)
    cm = np.zeros((10, 10), np.int64)
    np.add.at(cm, (labels, predicted), 1)
    per_class = {DIGIT_LABELS[d]: float(cm[d, d] / cm[d].sum()) if cm[d].sum() else None for d in range(10)}
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "n": int(len(labels)),
        "confusion_matrix": cm.tolist(),
        "per_class_accuracy": per_class,
        "ece": expected_calibration_error(probs, labels),
    }


def scanned_test_accuracy(reader, test: mnist.Split, limit: int | None = None) -> dict:
    """``classification_metrics`` of a digit reader on the scanned-look test set."""
    scanned = scanned_test_set(test, limit)
    probs = reader.predict_proba(scanned.images)
    return classification_metrics(probs, scanned.labels)
