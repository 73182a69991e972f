"""Measuring the accept/error trade-off of the digit reader and its cost-optimal accept threshold.

There are no labelled handwritten postal codes in the data, so codes are composed from real
MNIST digits the model never trained on, rendered at envelope sizes and passed through random
scanner degradations, then read by the same reader ``process`` uses. For every accept threshold
t the share of letters accepted automatically and the share accepted with a wrong code give the
annual cost ``volume x (reject(t) x manual_cost + error(t) x missort_cost)``.

The threshold is *fitted* on strings composed from the validation digits held out of MNIST
training, and *checked* on fresh strings composed from MNIST test digits, each test digit used
once so the strings are independent: the error rate the curve promised must agree with the one
measured on the fresh set within sampling error (Wilson / Newcombe 95 % intervals).
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from docsort import settings
from docsort.cost import model as cost_model
from docsort.reading import manifest
from docsort.errors import OutputNotWritableError

CODE_LENGTH = settings.CODE_LENGTH  # the shipped curve is measured on 5-digit codes
FIT_SEED_OFFSET = 0
CHECK_SEED_OFFSET = 1


# --------------------------------------------------------------------------- the curve (pure maths)

def curve_thresholds(extra: Sequence[float] = ()) -> np.ndarray:
    """Thresholds the stored curve is sampled at (``cost.curve_grid``) plus ``extra`` ones."""
    return np.unique(np.concatenate([cost_model.curve_grid(), np.asarray(extra, float)]))


def tradeoff_curve(confidences: np.ndarray, correct: np.ndarray, thresholds: Sequence[float]) -> list[dict]:
    """Accept rate and error rate (wrong and accepted, as a share of all letters) at each threshold."""
    conf = np.asarray(confidences, float)
    wrong = ~np.asarray(correct, bool)
    n = len(conf)
    curve = []
    for t in thresholds:
        accepted = conf >= t
        curve.append({"threshold": float(t), "accept_rate": float(accepted.sum() / n),
                      "error_rate": float((accepted & wrong).sum() / n)})
    return curve


def fit_threshold(confidences: np.ndarray, correct: np.ndarray, manual_cost: float, missort_cost: float) -> float:
    """The accept threshold of least cost on labelled reads.

    Every distinct confidence is a candidate (accept it and everything above). The returned
    threshold lies half-way between the chosen confidence and the next lower one, so a new
    sample's confidence is not decided by a hair's breadth on the fitted set.
    """
    conf = np.asarray(confidences, float)
    wrong = ~np.asarray(correct, bool)
    order = np.argsort(-conf, kind="stable")
    conf_sorted, wrong_sorted = conf[order], wrong[order]
    # Accepting the top j reads: j reads accepted, errors = wrong among them.
    errors = np.concatenate([[0], np.cumsum(wrong_sorted)])
    accepted = np.arange(len(conf) + 1)
    # Only cut between different confidences: ties are accepted or rejected together.
    valid = np.ones(len(conf) + 1, bool)
    valid[1:-1] = conf_sorted[1:] < conf_sorted[:-1]
    costs = (len(conf) - accepted) * manual_cost + errors * missort_cost
    costs = np.where(valid, costs, np.inf)
    j = len(costs) - 1 - int(np.argmin(costs[::-1]))  # of equal costs, accept the most letters
    if j == 0:  # rejecting everything is cheapest: a threshold above every confidence
        return float(np.nextafter(conf_sorted[0], 2.0)) if len(conf) else 1.0
    lowest_accepted = conf_sorted[j - 1]
    below = conf_sorted[j] if j < len(conf) else 0.0
    return float((lowest_accepted + below) / 2)


def near_optimal_range(curve: list[dict], volume: float, manual_cost: float, missort_cost: float,
                       within: float = 0.05) -> dict:
    """The thresholds around the optimum whose cost stays within ``within`` of it.

    The cost curve is usually flat near its minimum, so any threshold in this range is as good
    as the fitted one within the measurement's resolution.
    """
    costs = [cost_model.threshold_cost(p["accept_rate"], p["error_rate"], volume, manual_cost, missort_cost)
             for p in curve]
    best = int(np.argmin(costs))
    limit = costs[best] * (1.0 + within)
    lo = hi = best
    while lo > 0 and costs[lo - 1] <= limit:
        lo -= 1
    while hi < len(curve) - 1 and costs[hi + 1] <= limit:
        hi += 1
    return {"within": within, "from": curve[lo]["threshold"], "to": curve[hi]["threshold"]}


def check_threshold(threshold: float, fit: tuple[np.ndarray, np.ndarray],
                    fresh: tuple[np.ndarray, np.ndarray]) -> dict:
    """Compare what the fitted set promised at ``threshold`` with a fresh set, with 95 % intervals."""
    def counts(conf, correct):
        accepted = np.asarray(conf) >= threshold
        return int(len(conf)), int(accepted.sum()), int((accepted & ~np.asarray(correct, bool)).sum())

    n_fit, acc_fit, err_fit = counts(*fit)
    n, acc, err = counts(*fresh)
    diff_lo, diff_hi = cost_model.difference_interval(err_fit, n_fit, err, n)
    conf = np.asarray(fresh[0], float)
    accepted = conf >= threshold
    return {
        "threshold": threshold,
        "n": n,
        "accepted": acc,
        "errors": err,
        "accept_rate": acc / n,
        "accept_rate_ci95": list(cost_model.wilson_interval(acc, n)),
        "error_rate": err / n,
        "error_rate_ci95": list(cost_model.wilson_interval(err, n)),
        "promised_error_rate": err_fit / n_fit,
        "promised_accept_rate": acc_fit / n_fit,
        "difference_ci95": [diff_lo, diff_hi],
        "consistent": bool(diff_lo <= 0.0 <= diff_hi),
        # Calibration: the errors a batch projection would expect from the confidences alone.
        "expected_errors_from_confidence": float((1.0 - conf[accepted]).sum()),
        "code_accuracy": float(np.mean(fresh[1])),
    }


# --------------------------------------------------------------------------- labelled strings

def compose_strings(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                    code_length: int = CODE_LENGTH) -> tuple[list[np.ndarray], list[list], list[str]]:
    """``count`` scanned handwritten codes made of the given MNIST digits, their digit boxes and truth.

    Digits are drawn without replacement (a fresh permutation when the pool runs out), so with
    enough digits every string is made of digits no other string uses.
    """
    from docsort.training.synth import degrade
    from docsort.training.synth.handwriting import compose_digit_string

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    pos = 0
    strings, boxes, truths = [], [], []
    for _ in range(count):
        if pos + code_length > len(order):
            order, pos = rng.permutation(len(labels)), 0
        idx = order[pos:pos + code_length]
        pos += code_length
        # Envelope scans at 200-300 dpi: handwritten digits 4-7 mm tall are 30-80 px.
        height = float(rng.uniform(30, 80))
        stroke = int(rng.random() < 0.3)  # now and then a broader pen
        # Postal codes are mostly written with the digits apart, sometimes touching.
        image, digit_boxes = compose_digit_string([images[i] for i in idx], rng, gap=(-0.1, 0.6),
                                                  height=height, stroke=stroke)
        strings.append(degrade.random_scan(image, rng, strength=0.6))
        boxes.append(digit_boxes)
        truths.append("".join(str(int(labels[i])) for i in idx))
    return strings, boxes, truths


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
    model_file = Path(model_path) if model_path is not None else manifest.model_path(manifest.DIGITS)

    sets = {}
    for name, split, offset in (("fit", validation, FIT_SEED_OFFSET), ("check", data.test, CHECK_SEED_OFFSET)):
        strings, boxes, truths = compose_strings(split.images, split.labels, count, seed * 2 + offset)
        if reader == "boxes":
            reads, confidences = read_at_boxes(strings, boxes, model_file)
        else:
            reads, confidences = read_fields(strings, model_file)
        correct = np.array([r == t for r, t in zip(reads, truths)], bool)
        sets[name] = (confidences, correct)

    fit_conf, fit_correct = sets["fit"]
    threshold = fit_threshold(fit_conf, fit_correct, manual_cost, missort_cost)
    curve = tradeoff_curve(fit_conf, fit_correct, curve_thresholds([threshold]))
    at_opt = tradeoff_curve(fit_conf, fit_correct, [threshold])[0]
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
    path = manifest.model_path(manifest.DIGIT_STRINGS)
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


def write_tradeoff(result: dict, path: Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
