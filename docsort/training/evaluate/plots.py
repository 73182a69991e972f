"""Report pictures a person looks at to judge a classifier: confusion matrix, failures, learning curve.

Generic over models: labels are strings, images are 2-D arrays of any size (grey, either
range). Uses matplotlib's non-interactive Agg backend, imported only when a picture is drawn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_confusion_matrix(cm, labels: Sequence[str], path: str | os.PathLike, title: str = "Confusion matrix"
                          ) -> Path:
    """Counts per (true, predicted) cell; the diagonal is shaded apart so errors stand out."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    n = len(labels)
    size = max(4.0, 0.55 * n + 2.0)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    off_diagonal = cm.copy()
    np.fill_diagonal(off_diagonal, 0)
    shown = np.log1p(off_diagonal)
    ax.imshow(shown, cmap="Reds", vmin=0, vmax=max(float(shown.max()), 1.0))
    for i in range(n):
        for j in range(n):
            value = int(cm[i, j])
            if value == 0 and i != j:
                continue
            colour = "darkgreen" if i == j else ("white" if shown[i, j] > 0.6 * shown.max() else "black")
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8 if n <= 10 else 6, color=colour,
                    fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(n), labels=[str(x) for x in labels])
    ax.set_yticks(range(n), labels=[str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = int(cm.sum())
    correct = int(np.trace(cm))
    accuracy = correct / total if total else 0.0
    ax.set_title(f"{title}\n{correct}/{total} correct ({100 * accuracy:.2f}%)")
    fig.tight_layout()
    return _save(fig, path)


def save_failure_gallery(images: Sequence[np.ndarray], truths: Sequence, preds: Sequence,
                         confs: Sequence[float], path: str | os.PathLike, title: str = "Misread samples",
                         max_items: int = 100, ink_dark: bool = False) -> Path:
    """A grid of misread samples, each captioned 'true -> predicted (confidence)'.

    ``ink_dark`` draws the images as given; otherwise ink-high images (MNIST polarity) are shown
    dark on light, the way the digit looked on paper.
    """
    plt = _pyplot()
    items = list(zip(images, truths, preds, confs))[:max_items]
    if not items:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no failures", ha="center", va="center")
        ax.set_title(title)
        return _save(fig, path)
    wide = any(np.asarray(img).shape[1] > 2 * np.asarray(img).shape[0] for img, *_ in items)
    cols = 6 if wide else 10
    rows = math.ceil(len(items) / cols)
    cell_w, cell_h = (2.4, 1.2) if wide else (1.1, 1.35)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell_w, rows * cell_h + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (img, truth, pred, conf) in zip(axes.flat, items):
        img = np.asarray(img)
        ax.imshow(img, cmap="gray" if ink_dark else "gray_r", interpolation="nearest")
        ax.set_title(f"{truth}\u2192{pred} ({conf:.2f})", fontsize=8, color="firebrick")
    fig.suptitle(f"{title} (true\u2192predicted, confidence)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def save_learning_curve(history: Mapping[str, Sequence[float]], path: str | os.PathLike,
                        title: str = "Learning curve") -> Path:
    """Loss and accuracy per epoch, training beside validation (keys as Keras' History names them)."""
    plt = _pyplot()
    loss_keys = [k for k in history if k.endswith("loss")]
    acc_keys = [k for k in history if "acc" in k]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, keys, name in ((axes[0], loss_keys, "loss"), (axes[1], acc_keys, "accuracy")):
        for key in sorted(keys):
            values = list(history[key])
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                    label=_legend(key),
                    linestyle="--" if key.startswith("val_") else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
    if acc_keys:
        best = max(max(history[k]) for k in acc_keys)
        low = min(min(history[k]) for k in acc_keys)
        if best > 0.97:
            axes[1].set_ylim(max(low, best - 0.05), min(1.0, best + 0.005))
    if loss_keys and all(min(history[k]) > 0 for k in loss_keys):
        axes[0].set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def save_reliability_diagram(panels: Mapping[str, Mapping[str, Sequence[Mapping]]], path: str | os.PathLike,
                             title: str = "Reliability") -> Path:
    """Observed accuracy against predicted confidence, per confidence bin, with the count of
    each bin; one panel per setting, one line per confidence compared (the diagonal is perfect).

    ``panels``: ``{panel title: {line label: [{"lo", "hi", "n", "confidence", "accuracy"}, ...]}}``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
        counts = ax.twinx()
        for k, (label, bins) in enumerate(lines.items()):
            shown = [b for b in bins if b["n"]]
            line, = ax.plot([b["confidence"] for b in shown], [b["accuracy"] for b in shown], marker="o",
                            markersize=4, label=label)
            width = (shown[0]["hi"] - shown[0]["lo"]) / (len(lines) + 1) if shown else 0.0
            counts.bar([b["lo"] + (k + 0.5) * width for b in shown], [b["n"] for b in shown], width=width,
                       color=line.get_color(), alpha=0.18)
        counts.set_yscale("log")
        counts.set_ylabel("fields per bin (bars)", fontsize=8)
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("predicted confidence")
        ax.set_ylabel("observed accuracy")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _legend(key: str) -> str:
    """Keras history names as a reader says them: val_loss -> validation loss, loss -> training loss."""
    if key.startswith("val_"):
        return "validation " + key[4:].replace("_", " ")
    return "training " + key.replace("_", " ")


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
