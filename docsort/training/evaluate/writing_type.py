"""Measuring the printed/handwritten classifier.

Three measurements, each answering a question a user of the pipeline would ask:

* validation crops of DHSD writers, font families and MNIST digits never used in training
  (accuracy per class and per source, confusion matrix, calibration error);
* the real printed scans in ``tesseract-pages``, cut by Tesseract as the pipeline cuts pages:
  how many of those printed words would be mistaken for handwriting;
* a baseline: Tesseract's own word confidence used as the printed/handwritten score, at its
  best threshold, on the same validation crops -- does the network earn its place?
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from docsort.errors import DatasetError
from docsort.training.datasets import writing_type_crops as crop_sets
from docsort.training.datasets.metrics import binary_calibration_error
from docsort.reading import manifest

CLASS_NAMES = crop_sets.CLASS_NAMES
REAL_SCAN_FILES = ("phototest.tif", "eurotext.tif")
# The real pages are also measured rescaled, as other scanners' resolutions would give them.
REAL_SCAN_SCALES = (0.6, 0.8, 1.0, 1.25, 1.5)
# Crops per Tesseract sheet when scoring the baseline.
SHEET_CROPS = 60


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    """Rows: true class, columns: predicted class, in ``CLASS_NAMES`` order."""
    cm = np.zeros((2, 2), np.int64)
    np.add.at(cm, (labels.astype(int), predicted.astype(int)), 1)
    return cm.tolist()


def classification_summary(labels: np.ndarray, p: np.ndarray, sources: Optional[Sequence[str]] = None) -> dict:
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(p) >= 0.5).astype(int)
    correct = predicted == labels
    summary = {
        "accuracy": float(correct.mean()) if len(labels) else 0.0,
        "n": int(len(labels)),
        "labels": list(CLASS_NAMES),
        "confusion_matrix": confusion_matrix(labels, predicted),
        "per_class_accuracy": {
            name: (float(correct[labels == k].mean()) if (labels == k).any() else None)
            for k, name in enumerate(CLASS_NAMES)
        },
        "per_class_n": {name: int((labels == k).sum()) for k, name in enumerate(CLASS_NAMES)},
        "ece": binary_calibration_error(np.asarray(p, np.float64), labels),
    }
    eps = 1e-7
    pc = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    summary["log_loss"] = float(-np.mean(labels * np.log(pc) + (1 - labels) * np.log(1 - pc)))
    if sources is not None:
        per_source = {}
        for source in sorted(set(sources)):
            sel = np.asarray([s == source for s in sources])
            per_source[source] = {"n": int(sel.sum()), "accuracy": float(correct[sel].mean())}
        summary["per_source"] = per_source
    return summary


# Crops narrower than this (width / height) hold one or two characters, wider ones words or numbers.
WORD_ASPECT = 1.5


def by_shape(crops: Sequence[np.ndarray], labels: np.ndarray, p: np.ndarray) -> dict:
    """Accuracy on words and number strings apart from lone characters and slivers.

    A lone '1', 'l' or '0' is often ambiguous even to a person; the pipeline decides on whole
    fields, so the two are reported separately.
    """
    aspect = np.asarray([c.shape[1] / max(1, c.shape[0]) for c in crops])
    out = {"word_aspect": WORD_ASPECT}
    for name, sel in (("words", aspect >= WORD_ASPECT), ("single_characters", aspect < WORD_ASPECT)):
        entry = classification_summary(labels[sel], p[sel]) if sel.any() else {"n": 0}
        out[name] = {k: entry[k] for k in ("accuracy", "n", "confusion_matrix", "per_class_accuracy")
                     if k in entry}
    return out


# --- Real printed scans ----------------------------------------------------------------------------

def real_scan_crops(pages_dir: Path, scales: Sequence[float] = (1.0,)) -> list[dict]:
    """Word crops Tesseract cuts from the real printed scans, at each scale."""
    import cv2

    from docsort.page import tesseract as segment

    crops = []
    for name in REAL_SCAN_FILES:
        path = Path(pages_dir) / name
        page = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if page is None:
            raise DatasetError(f"real printed scan not found or unreadable: {path}")
        for scale in scales:
            scaled = page if scale == 1.0 else cv2.resize(
                page, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            for word in segment.words(scaled):
                x, y, w, h = word.bbox
                crops.append({"file": name, "scale": scale, "bbox": list(word.bbox), "text": word.text,
                              "conf": word.conf, "image": scaled[y:y + h, x:x + w]})
    return crops


def real_scan_check(classifier, pages_dir: Path) -> dict:
    """Share of Tesseract's crops of the real printed scans that the model calls printed."""
    result = {}
    crops = real_scan_crops(pages_dir, REAL_SCAN_SCALES)
    p = classifier.p_handwritten([c["image"] for c in crops])
    for key, sel in (("original", [c["scale"] == 1.0 for c in crops]), ("rescaled", [True] * len(crops))):
        sel = np.asarray(sel)
        chosen = p[sel]
        result[key] = {
            "n": int(sel.sum()),
            "printed_rate": float((chosen < 0.5).mean()) if sel.any() else None,
            "max_p_handwritten": float(chosen.max()) if sel.any() else None,
        }
    result["scales"] = list(REAL_SCAN_SCALES)
    result["files"] = list(REAL_SCAN_FILES)
    result["failures"] = [
        {"file": c["file"], "scale": c["scale"], "bbox": c["bbox"], "text": c["text"],
         "p_handwritten": round(float(v), 4)}
        for c, v in zip(crops, p) if v >= 0.5
    ]
    result["_failure_images"] = [c["image"] for c, v in zip(crops, p) if v >= 0.5]
    return result


# --- Tesseract's confidence as a baseline ------------------------------------------------------------

def _sheet_scores(crops: list[np.ndarray]) -> list[float]:
    """Tesseract's confidence for each crop, read from one sheet holding all of them.

    Each crop sits alone in its own cell, with a wide paper border, so Tesseract reads it as
    a word on a page -- as in the pipeline -- at a fraction of the cost of one run per crop.
    A crop's score is the mean confidence of the words found in its cell, 0 when none.
    """
    import cv2

    from docsort.page import tesseract as segment

    cells, boxes = [], []
    for crop in crops:
        pad = max(12, crop.shape[0] // 2)
        paper = int(np.percentile(crop, 95))
        cell = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=paper)
        cells.append(cell.astype(np.float32) * (255.0 / max(paper, 1)))
    width = max(1600, max(c.shape[1] for c in cells))
    layout, x, y, row_h = [], 0, 0, 0
    for cell in cells:
        if x + cell.shape[1] > width:
            x, y, row_h = 0, y + row_h, 0
        layout.append((x, y))
        x += cell.shape[1]
        row_h = max(row_h, cell.shape[0])
    sheet = np.full((y + row_h, width), 255, np.uint8)
    for (cx, cy), cell in zip(layout, cells):
        sheet[cy:cy + cell.shape[0], cx:cx + cell.shape[1]] = np.clip(cell, 0, 255).astype(np.uint8)
        boxes.append((cx, cy, cell.shape[1], cell.shape[0]))
    found = segment.words(sheet, timeout=300)
    confs: list[list[float]] = [[] for _ in crops]
    for word in found:
        wx, wy, ww, wh = word.bbox
        centre = (wx + ww / 2, wy + wh / 2)
        for i, (bx, by, bw, bh) in enumerate(boxes):
            if bx <= centre[0] < bx + bw and by <= centre[1] < by + bh:
                if word.conf >= 0:
                    confs[i].append(word.conf)
                break
    return [float(np.mean(c)) if c else 0.0 for c in confs]


def tesseract_scores(crops: Sequence[np.ndarray], workers: int = 2, cache_dir: Optional[Path] = None,
                     log: Callable[[str], None] = lambda m: None) -> np.ndarray:
    """Tesseract's confidence for each crop (cached by crop content)."""
    digest = hashlib.sha256()
    for c in crops:
        digest.update(np.ascontiguousarray(c).tobytes())
        digest.update(str(c.shape).encode())
    cache = (Path(cache_dir) / f"writing_type_tesseract_sheet_conf_{digest.hexdigest()[:16]}.npy"
             if cache_dir else None)
    if cache is not None and cache.is_file():
        return np.load(cache)
    chunks = [list(crops[i:i + SHEET_CROPS]) for i in range(0, len(crops), SHEET_CROPS)]
    scores: list[float] = []
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(_sheet_scores, chunks):
                scores.extend(part)
    else:
        for chunk in chunks:
            scores.extend(_sheet_scores(chunk))
    out = np.asarray(scores, np.float32)
    log(f"tesseract baseline: scored {len(out)} crops")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, out)
    return out


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The confidence threshold (printed when score >= threshold) with the best accuracy."""
    labels = np.asarray(labels).astype(int)
    candidates = np.unique(np.concatenate([scores, [np.inf]]))
    best_t, best_acc = float(candidates[0]), -1.0
    for t in candidates:
        predicted_handwritten = scores < t
        acc = float(np.mean(predicted_handwritten == (labels == 1)))
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def tesseract_baseline(scores: np.ndarray, labels) -> dict:
    """Tesseract's confidence as a printed/handwritten classifier at its best threshold."""
    threshold, _ = best_threshold(scores, labels)
    pseudo_p = (scores < threshold).astype(np.float64)
    summary = classification_summary(np.asarray(labels), pseudo_p)
    summary.pop("ece", None)
    summary.pop("log_loss", None)
    summary["threshold"] = threshold
    summary["rule"] = ("printed when Tesseract's mean word confidence on the crop (read on a sheet of crops, "
                       "--psm 11 as the pipeline reads pages) >= threshold")
    return summary


# --- Putting it together -----------------------------------------------------------------------------

def evaluate_on(classifier, validation, pages_dir: Optional[Path], *, report_dir: Optional[Path] = None,
                baseline_scores: Optional[np.ndarray] = None, history: Optional[dict] = None,
                log: Callable[[str], None] = lambda m: None) -> dict:
    """All measurements of ``classifier`` on a validation ``CropSet``, plus report pictures.

    ``baseline_scores`` are Tesseract's confidences for the same crops (``tesseract_scores``,
    computed before TensorFlow starts, since it runs worker processes).
    """
    labels = np.asarray(validation.labels)
    p = classifier.p_handwritten(validation.crops)
    metrics = classification_summary(labels, p, validation.sources)
    metrics["by_shape"] = by_shape(validation.crops, labels, p)
    log(f"validation: accuracy {metrics['accuracy']:.4f} on {metrics['n']} crops")
    if pages_dir is not None:
        metrics["real_scans"] = real_scan_check(classifier, pages_dir)
        log(f"real scans: printed rate {metrics['real_scans']['original']['printed_rate']:.4f} "
            f"({metrics['real_scans']['original']['n']} crops), "
            f"rescaled {metrics['real_scans']['rescaled']['printed_rate']:.4f}")
    if baseline_scores is not None:
        metrics["tesseract_confidence_baseline"] = tesseract_baseline(baseline_scores, labels)
        log(f"tesseract baseline: accuracy {metrics['tesseract_confidence_baseline']['accuracy']:.4f}")
    real_failures = metrics["real_scans"].pop("_failure_images") if "real_scans" in metrics else []
    if report_dir is not None:
        metrics["report"] = write_report(Path(report_dir), validation, labels, p, metrics, history, real_failures)
    return metrics


def training_metrics(config: crop_sets.TrainingConfig, trained: dict, validation: crop_sets.CropSet,
                     pages_dir: Optional[Path], *, baseline_scores: Optional[np.ndarray] = None,
                     command: str = "", seconds: Optional[float] = None,
                     log: Callable[[str], None] = lambda m: None) -> dict:
    """Measure the model ``train.writing_type.train`` just saved (``trained`` is what it returned)
    and write ``NAME.metrics.json`` beside it: the figures the model card and ``manifest`` read.

    The lone-character model is measured alone on its narrow validation crops; the real scans'
    word crops are the main model's (``docsort evaluate writing-type`` measures the two together).
    """
    from docsort import __version__
    from docsort.reading import manifest
    from docsort.reading import writing_type as wt

    classifier = wt.WritingTypeClassifier(trained["model_file"], ensemble=False)
    measured = evaluate_on(classifier, validation, None if config.max_width else pages_dir,
                           baseline_scores=baseline_scores, log=log)
    model_file = Path(trained["model_file"])
    metrics = {
        "model": config.name,
        "file": model_file.name,
        "sha256": manifest.file_sha256(str(model_file.resolve())),
        "test_accuracy": measured["accuracy"],
        "test_set": "validation crops of DHSD writers, font families and MNIST digits held out from training"
                    + (f", those at most {config.max_width} px wide once normalised" if config.max_width else ""),
        **measured,
        "temperature": trained["temperature"],
        "threshold": 0.5,
        "input": {"height": wt.HEIGHT, "max_width": config.max_width or wt.MAX_WIDTH,
                  "width_buckets": [b for b in wt.INPUT.width_buckets if b <= (config.max_width or wt.MAX_WIDTH)]},
        "filters": list(config.filters),
        "stem_stride": config.stem_stride,
        "teacher": ({"from": str(config.teacher), "share": config.teacher_share} if config.teacher else None),
        "rescan": config.rescan,
        "jitter": config.jitter,
        "writer_split": trained["writer_split"],
        "font_split": trained["font_split"],
        "dataset_sha256": trained["dataset_sha256"],
        "mnist_digits": trained["mnist_digits"],
        "train_sources": trained["train_sources"],
        "validation_sources": trained["validation_sources"],
        "training": {
            "command": command,
            "seed": config.seed,
            "member": config.member,
            # Which generation of the training-data generator made the crops (``DATA_VERSION``).
            "data_version": crop_sets.DATA_VERSION,
            "epochs": config.epochs,
            "limit": config.limit,
            "batch_size": config.batch_size,
            "n_train": trained["n_train"],
            "n_validation": trained["n_validation"],
            "seconds": round(seconds if seconds is not None else trained["training_seconds"], 1),
            "docsort_version": __version__,
            "tensorflow_version": trained["tensorflow_version"],
        },
    }
    metrics_file = model_file.with_name(f"{config.name}.metrics.json")
    metrics_file.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {metrics_file}")
    from docsort.training.manifest import write as write_manifest

    write_manifest(model_file.parent, log)
    metrics["model_file"] = str(model_file)
    return metrics


def further_draws(classifier, config, fonts, val_words, val_digits, seeds: Sequence[int], validation: dict,
                  log: Callable[[str], None]) -> dict:
    """The classifier on further draws of the held-out writers, fonts and digits, and pooled with
    the validation set: how much of the validation figure is the luck of its one draw."""
    crops, labels, sources = [], [], []
    for seed in seeds:
        drawn = crop_sets.held_out_draw(config, fonts, val_words, val_digits, int(seed))
        crops += drawn.crops
        labels += drawn.labels
        sources += drawn.sources
    labels = np.asarray(labels)
    p = classifier.p_handwritten(crops)
    summary = classification_summary(labels, p, sources)
    summary.pop("log_loss", None)
    summary["seeds"] = [int(s) for s in seeds]
    summary["errors"] = int(((p >= 0.5) != (labels == 1)).sum())
    val_errors = validation["n"] - int(np.trace(np.asarray(validation["confusion_matrix"])))
    n = summary["n"] + validation["n"]
    summary["pooled_with_validation"] = {"n": n, "errors": summary["errors"] + val_errors,
                                         "accuracy": 1.0 - (summary["errors"] + val_errors) / n}
    log(f"further draws (seeds {', '.join(map(str, seeds))}): accuracy {summary['accuracy']:.4f} on "
        f"{summary['n']} crops; pooled with validation {summary['pooled_with_validation']['accuracy']:.4f}")
    return summary


def write_report(report_dir: Path, validation, labels, p, metrics: dict, history: Optional[dict],
                 real_failures: Sequence[np.ndarray] = ()) -> dict:
    from docsort.training.evaluate import plots

    report_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    files["confusion_matrix"] = str(plots.save_confusion_matrix(
        metrics["confusion_matrix"], list(CLASS_NAMES), report_dir / "writing_type_confusion.png",
        title="Printed vs handwritten, held-out writers and fonts"))
    predicted = (p >= 0.5).astype(int)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-np.abs(p[wrong] - 0.5))]
    files["failures"] = str(plots.save_failure_gallery(
        [validation.crops[i] for i in wrong], [CLASS_NAMES[labels[i]] for i in wrong],
        [CLASS_NAMES[predicted[i]] for i in wrong], [max(p[i], 1 - p[i]) for i in wrong],
        report_dir / "writing_type_failures.png", title="Misclassified validation crops", ink_dark=True))
    real = metrics.get("real_scans", {})
    if real:
        images = list(real_failures)
        files["real_scan_failures"] = str(plots.save_failure_gallery(
            images, ["printed"] * len(images), ["handwritten"] * len(images),
            [f["p_handwritten"] for f in real["failures"]], report_dir / "writing_type_real_scan_failures.png",
            title="Real printed scan crops called handwritten", ink_dark=True))
    if history:
        files["learning_curve"] = str(plots.save_learning_curve(
            history, report_dir / "writing_type_learning_curve.png", title="Printed vs handwritten"))
    (report_dir / "writing_type_metrics.json").write_text(
        json.dumps({k: v for k, v in metrics.items() if k != "report"}, indent=2) + "\n")
    return files


def evaluate(model_file: Optional[str], dhsd_dir: Path, mnist_dir: Path, pages_dir: Optional[Path], *,
             seed: int = 0, report_dir: Optional[Path] = None, cache_dir: Optional[Path] = None,
             baseline: bool = True, workers: int = 2, limit: Optional[int] = None, draws: Sequence[int] = (),
             held_out: bool = True,
             log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Rebuild the fixed validation set for ``seed`` and measure the model on it.

    ``held_out``: also measure the held-out family, the per-condition table and the
    tesseract-pages variants (``evaluate.writing_type_office``).

    ``draws``: seeds of further draws of the same held-out writers, fonts and digits
    (``held_out_draw``), measured too, alone and pooled with the validation set.
    """
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd
    from docsort.training.synth.printed import font_split
    from docsort.reading.writing_type import WritingTypeClassifier
    from docsort.training.evaluate import writing_type_office as office

    config = crop_sets.TrainingConfig(dhsd_dir=Path(dhsd_dir), mnist_dir=Path(mnist_dir), out_dir=Path("."),
                                      cache_dir=cache_dir, seed=seed, limit=limit, workers=workers).scaled()
    writers = dhsd_writer_split(seed)
    fonts = font_split(seed)
    _, _, mnist_val = crop_sets.mnist_splits(config.mnist_dir)
    val_words = [(img, text) for img, text, _ in load_dhsd(config.dhsd_dir, writers.selection)]
    validation = crop_sets.build_validation(config, fonts, writers, val_words, mnist_val.images, log)
    scores = tesseract_scores(validation.crops, workers, cache_dir, log) if baseline else None
    # The held-out family is made (Tesseract in worker processes) before the models load.
    family = office.held_out_family(dhsd_dir, mnist_dir, seed=seed, cache_dir=cache_dir, workers=workers,
                                    limit=limit, log=log) if held_out else None
    from docsort.training.export import runnable

    classifier = WritingTypeClassifier(runnable(model_file) if model_file else None)
    history = None
    history_file = Path(classifier.model_file).with_name("writing_type.history.json")
    if history_file.is_file():
        history = json.loads(history_file.read_text())
    metrics = evaluate_on(classifier, validation, pages_dir, report_dir=report_dir, baseline_scores=scores,
                          history=history, log=log)
    metrics["model"] = _identity(classifier.model)
    if family is not None:
        metrics.update(office.office_measurements(classifier, validation, family, pages_dir, report_dir=report_dir,
                                                  log=log))
    if draws:
        metrics["further_draws"] = further_draws(classifier, config, fonts, val_words, mnist_val.images, draws,
                                                 metrics, log)
    for key, networks in (("second_looks", classifier.second_look_models),
                          ("lone_characters", classifier.lone_character_models)):
        if networks:
            metrics["model"][key] = [_identity(n) for n in networks]
    if report_dir is not None:  # every figure measured, the held-out family's too
        (Path(report_dir) / "writing_type_metrics.json").write_text(
            json.dumps({k: v for k, v in metrics.items() if k != "report"}, indent=2, default=str) + "\n")
    return metrics


def _identity(network) -> dict:
    """A measured network as metrics name it: the ``.keras`` it was exported from (the trained
    model, as training records it), with its folder."""
    source = network.source or {"file": network.path.name, "sha256": manifest.file_sha256(network.path)}
    return {"file": str(network.path.with_name(source["file"])), "sha256": source["sha256"]}
