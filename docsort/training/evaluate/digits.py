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

from docsort.training.datasets import mnist
from docsort.training.datasets.metrics import DIGIT_LABELS, classification_metrics, scanned_test_accuracy

# Number fields and words for the field confidence's reliability: seeded, never fitted on.
FIELD_SEED = 2027
FIELD_BINS = 10


def evaluate(data: str | None = None, model_file: str | None = None, report_dir: str | None = None,
             scanned: bool = False, scanned_limit: int | None = None, handwriting: str | None = None,
             fields_per_length: int = 0, words: int = 0, jobs: int = 1, progress=None) -> dict:
    """Measure a digit model on the MNIST test set; optionally write a report folder.

    With ``fields_per_length``, also the ``read-digits`` field confidence (``field_calibration``)
    on number fields of MNIST test digits and ``words`` DHSD words of held-out writers found
    under ``handwriting``.
    """
    from docsort.reading.digits.mnist_model import DigitReader

    if fields_per_length:
        dhsd_folder(handwriting)  # before any work: the words are needed at the end
    dataset = mnist.load(data)
    from docsort.training.export import runnable

    reader = DigitReader(runnable(model_file) if model_file else None)
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
    if fields_per_length:
        result["calibration"] = field_calibration(dataset.test, handwriting, fields_per_length, words, jobs, progress)
    if report_dir is not None:
        write_report(Path(report_dir), result, dataset.test, probs, reader.path)
    return result


def _reliability(confidence: np.ndarray, right: np.ndarray, bins: int = FIELD_BINS) -> dict:
    """ECE and the per-bin counts, mean confidence and accuracy (equal-width bins)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = which == b
        n = int(members.sum())
        conf = float(confidence[members].mean()) if n else None
        accuracy = float(right[members].mean()) if n else None
        if n:
            ece += n / len(right) * abs(conf - accuracy)
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n, "confidence": conf,
                     "accuracy": accuracy})
    return {"ece": float(ece), "n": int(len(right)), "accuracy": float(right.mean()) if len(right) else None,
            "confidence": float(confidence.mean()) if len(right) else None, "bins": rows}


def dhsd_folder(handwriting: str | None) -> Path:
    """The DHSD folder (its ``data.csv``) under ``handwriting`` or ``$DOCSORT_DATASETS``."""
    from docsort import settings
    from docsort.errors import DatasetError

    folder = handwriting or settings.datasets_folder()
    index = next(iter(sorted(Path(folder).rglob("data.csv"))), None) if folder and Path(folder).is_dir() else None
    if index is None:
        raise DatasetError(f"no DHSD data.csv under {folder or '(none given)'}: give --handwriting DIR "
                           "(or --fields 0 to leave out the field confidence)")
    return index.parent


def field_calibration(test: mnist.Split, handwriting: str | None, per_length: int, words: int = 300,
                      jobs: int = 1, progress=None) -> dict:
    """Reliability of ``read-digits``' confidence on fields no part of it was fitted on.

    Number fields of 1-10 digits composed from MNIST test digits (``per_length`` of each
    length), each read without and with its code length, and real words by the DHSD writers held
    out of all training (read without and with a code length of 1-10): the shipped calibration
    (``after``) against the combination's own confidence (``before``, a word's reading taken
    as a number).
    """
    from docsort.errors import MissingDependencyError
    from docsort.reading.digits.confidence import assess, shipped_calibration
    from docsort.training.datasets.digit_fields import LENGTHS, number_fields
    from docsort.training.datasets.field_readings import read_all
    from docsort.training.datasets.non_number_crops import word_fields
    from docsort.training.synth.handwriting import dhsd_writer_split

    calibration = shipped_calibration()
    if calibration is None:
        raise MissingDependencyError("the shipped digit_strings.metrics.json has no field_calibration")
    dhsd_dir = dhsd_folder(handwriting)
    rng = np.random.default_rng(FIELD_SEED)
    count = per_length * len(LENGTHS)
    numbers, truths = number_fields(test.images, test.labels, count, FIELD_SEED)
    writers = dhsd_writer_split().validation
    crops = word_fields(dhsd_dir, writers, words, FIELD_SEED + 1)
    word_lengths = [int(rng.integers(1, max(LENGTHS) + 1)) for _ in crops]
    rows = read_all(numbers + crops, [len(t) for t in truths] + word_lengths, jobs, progress)

    settings = {"without_code_length": [], "with_code_length": []}
    for k, row in enumerate(rows):
        truth = truths[k] if k < count else None
        for setting, read in (("without_code_length", row), ("with_code_length", row["known"])):
            right_features = read["right"] if read["read"] else None
            p_number, is_number, after = assess(row["number"], right_features, calibration)
            settings[setting].append({"length": len(truth) if truth else 0, "is_number": is_number,
                                      "before": read["combined"] if read["read"] else 0.0,
                                      "before_right": read["read"] == truth,
                                      "after": after, "after_right": bool(is_number and read["read"] == truth)})
    result: dict = {}
    pooled = [r for rs in settings.values() for r in rs]
    for which in ("after", "before"):
        block = _reliability(np.array([r[which] for r in pooled]), np.array([r[f"{which}_right"] for r in pooled]))
        for setting, rs in settings.items():
            block[setting] = _reliability(np.array([r[which] for r in rs]), np.array([r[f"{which}_right"] for r in rs]))
            block[setting]["by_length"] = {}
            for length in LENGTHS:
                chosen = [r for r in rs if r["length"] == length]
                part = _reliability(np.array([r[which] for r in chosen]),
                                    np.array([r[f"{which}_right"] for r in chosen]))
                block[setting]["by_length"][str(length)] = {k: part[k] for k in ("n", "accuracy", "confidence", "ece")}
        result[which] = block
    word_rows = [r for rs in settings.values() for r in rs if r["length"] == 0]
    result.update(result.pop("after"))
    result["words"] = {"n": len(crops), "writers": list(writers), "readings": len(word_rows)}
    if word_rows:
        result["words"].update({
            "called_numbers": float(np.mean([r["is_number"] for r in word_rows])),
            "confidence_below_0.05": float(np.mean([r["after"] < 0.05 for r in word_rows])),
            "before_confidence_below_0.05": float(np.mean([r["before"] < 0.05 for r in word_rows]))})
    result["data"] = (f"{count} number fields of 1-{max(LENGTHS)} digits composed from MNIST test digits "
                      f"(seed {FIELD_SEED}), each read without and with its code length; {len(crops)} DHSD words "
                      f"of held-out writers {list(writers)}, read without and with a code length of 1-10")
    return result


def write_report(folder: Path, result: dict, test: mnist.Split, probs: np.ndarray, model_file: str | None) -> None:
    """metrics.json plus the pictures a person checks: confusion matrix, failures, learning curve."""
    from docsort.errors import OutputNotWritableError
    from docsort.training.evaluate import plots

    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write the report to {folder}: {exc.strerror or exc}") from None
    plots.save_confusion_matrix(result["confusion_matrix"], DIGIT_LABELS, folder / "confusion_matrix.png",
                                title="Digit reader on the MNIST test set")
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != test.labels)
    wrong = wrong[np.argsort(-probs[wrong].max(axis=1))]
    plots.save_failure_gallery([test.images[i] for i in wrong], test.labels[wrong].tolist(),
                               predicted[wrong].tolist(), probs[wrong].max(axis=1).tolist(),
                               folder / "failures.png", title="Misread MNIST test digits")
    if "calibration" in result:
        calibration = result["calibration"]
        panels = {f"{name.replace('_', ' ')}": {"shipped calibration": calibration[name]["bins"],
                                                 "combination alone (before)": calibration["before"][name]["bins"]}
                  for name in ("without_code_length", "with_code_length")}
        plots.save_reliability_diagram(
            panels, folder / "field_reliability.png",
            title=f"read-digits confidence: number fields of MNIST test digits (1-10 digits) and held-out "
                  f"DHSD words\nECE {100 * calibration['ece']:.2f} % "
                  f"(before {100 * calibration['before']['ece']:.2f} %)")
    history = history_for(model_file)
    if history:
        plots.save_learning_curve(history, folder / "learning_curve.png", title="Digit reader training")


def history_for(model_file: str | None) -> dict | None:
    """The training history saved next to a model (``digits.keras`` or ``.onnx`` -> ``digits.history.json``)."""
    if not model_file:
        return None
    path = Path(model_file)
    candidate = path.with_name(path.stem + ".history.json")
    try:
        return json.loads(candidate.read_text())
    except (OSError, ValueError):
        return None
