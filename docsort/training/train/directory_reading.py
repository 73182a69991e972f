"""Fit how a field read against a postal directory says P(code right), and measure what the
directory changes.

There are no labelled handwritten postal codes in the data, so real codes of a directory are
written with MNIST digits (each code's digits drawn from the digits of that value, at envelope
sizes, touching now and then, through scanner degradations) and read by both number-field
readers, as ``process`` does. The fit uses only the 5,000 MNIST training digits held out of
training (``mnist.train_validation_split``); the check uses MNIST test digits.

- ``fit_calibration``: the readers' score weights (the conditional likelihood of the true code
  among each field's candidates) and the logistic model to P(code right), pooled over
  directories of different density (US: 42 % of all 5-digit strings are codes, DE: 8 %), so it
  holds for any directory. Written to ``models/directory_reading.json``.
- ``measure_tradeoff``: accept and error rates at every threshold, without and with the
  directory, on the same composed codes, and the cost-optimal threshold of each. Written to
  ``models/digits.tradeoff.CC.json``.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from docsort.cost import model as cost_model
from docsort.cost import tradeoff
from docsort.page import directory as directories
from docsort.reading.digits import directory_reader
from docsort.reading import manifest
from docsort.training.manifest import refresh as refresh_manifest

FIT_COUNTRIES = ("US", "DE")
FEATURES = ("bias", "renormalised", "valid_mass", "plain", "absolute", "density")


@dataclass
class ReadCodes:
    """Composed codes of one directory as read: truths, plain readings, directory candidates."""

    country: str
    truths: list[str]
    plain: list[tuple[str, float]]  # (digits, confidence) without the directory
    scored: list[directory_reader.Scored]


def compose_codes(images: np.ndarray, labels: np.ndarray, codes: Sequence[str], seed: int) -> list[np.ndarray]:
    """Each code written with MNIST digits of its values (digits used once until a value's pool
    runs out), sized, spaced and scanned like ``datasets.digit_fields.compose_strings``."""
    from docsort.training.synth import degrade
    from docsort.training.synth.handwriting import compose_digit_string

    rng = np.random.default_rng(seed)
    pools = {d: list(rng.permutation(np.flatnonzero(labels == d))) for d in range(10)}
    used = {d: 0 for d in range(10)}
    strings = []
    for code in codes:
        picks = []
        for c in code:
            d = int(c)
            if used[d] >= len(pools[d]):
                pools[d], used[d] = list(rng.permutation(pools[d])), 0
            picks.append(images[pools[d][used[d]]])
            used[d] += 1
        height = float(rng.uniform(30, 80))
        stroke = int(rng.random() < 0.3)
        image, _ = compose_digit_string(picks, rng, gap=(-0.1, 0.6), height=height, stroke=stroke)
        strings.append(degrade.random_scan(image, rng, strength=0.6))
    return strings


def draw_codes(directory: directories.Directory, count: int, seed: int) -> list[str]:
    """``count`` codes of the directory drawn uniformly (every code as likely as any other)."""
    codes = directory.codes()
    rng = np.random.default_rng(seed)
    return [codes[i] for i in rng.integers(0, len(codes), count)]


def read_codes(country: str, split, count: int, seed: int, progress: Callable[[str], None] = lambda s: None,
               batch: int = 100) -> ReadCodes:
    """Compose ``count`` real codes of ``country`` from ``split``'s digits and read them."""
    directory = directories.load(country)
    truths = draw_codes(directory, count, seed)
    strings = compose_codes(split.images, split.labels, truths, seed + 1)
    plain, scored = [], []
    for start in range(0, count, batch):
        readings = directory_reader.read_fields(strings[start:start + batch], directory.length, None)
        for r in readings:
            plain.append((r.plain.digits, float(r.plain.confidence)))
            scored.append(directory_reader.score_candidates(r.splits, r.whole, directory, r.plain.confidence, r.line))
        progress(f"{country}: read {min(count, start + batch)} of {count} codes")
    return ReadCodes(country, truths, plain, scored)


def word_fields(dhsd_dir: str | Path, count: int, seed: int) -> list[np.ndarray]:
    """Handwritten words as the pipeline may hand them to the code reader (a street or a place
    on the address's last lines): DHSD words of the writers the printed/handwritten classifier
    trained on (never the held-out writers the sample envelopes use), sized like envelope words
    and scanned like the composed codes. No code is right for them."""
    import csv

    from docsort.training.synth import degrade
    from docsort.training.synth.handwriting import dhsd_writer_split, read_dhsd_png

    root = Path(dhsd_dir)
    if not (root / "data.csv").is_file():
        found = sorted(root.rglob("data.csv"))
        root = found[0].parent if found else root
    train = set(dhsd_writer_split().train)
    with (root / "data.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["writer_id"]) in train]
    rng = np.random.default_rng(seed)
    fields = []
    for i in rng.choice(len(rows), size=min(count, len(rows)), replace=False):
        ink = 255.0 - read_dhsd_png(root / rows[i]["file_name"]).astype(np.float32)
        ink = np.clip(ink / max(1.0, float(ink.max())), 0, 1)
        ink[:, :4] = ink[:, -4:] = 0
        ink[:3, :] = ink[-3:, :] = 0
        ys, xs = np.nonzero(ink > 0.3)
        if len(xs) < 10:
            continue
        ink = ink[max(0, ys.min() - 3):ys.max() + 4, max(0, xs.min() - 3):xs.max() + 4]
        scale = float(rng.uniform(30, 70)) / max(12, ys.max() - ys.min() + 1)
        import cv2

        ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        image = (255.0 * (1.0 - np.clip(ink * 1.2, 0, 1))).astype(np.uint8)
        fields.append(degrade.random_scan(image, rng, strength=0.6))
    return fields


def code_and_word_fields(codes: Sequence[np.ndarray], words: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    """A written code with a word close behind it, joined into one field (as the pipeline joins a
    code too narrow alone with its neighbour): its reading is rarely the code."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for code, word in zip(codes, words):
        scale = code.shape[0] / max(1, word.shape[0]) * float(rng.uniform(0.8, 1.2))
        word = cv2.resize(word, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h = max(code.shape[0], word.shape[0])
        gap = int(rng.uniform(0.1, 0.6) * code.shape[0])
        canvas = np.full((h, code.shape[1] + gap + word.shape[1]), 255, np.uint8)
        canvas[:code.shape[0], :code.shape[1]] = code
        canvas[:word.shape[0], code.shape[1] + gap:] = np.minimum(canvas[:word.shape[0], code.shape[1] + gap:], word)
        out.append(canvas)
    return out


def read_fields_of(country: str, fields: Sequence[np.ndarray], truths: Sequence[str], batch: int = 100) -> ReadCodes:
    """Given fields of any kind read against ``country``'s directory (truth "" when no code is right)."""
    directory = directories.load(country)
    plain, scored = [], []
    for start in range(0, len(fields), batch):
        for r in directory_reader.read_fields(list(fields[start:start + batch]), directory.length, None):
            plain.append((r.plain.digits, float(r.plain.confidence)))
            scored.append(directory_reader.score_candidates(r.splits, r.whole, directory, r.plain.confidence, r.line))
    return ReadCodes(country, list(truths), plain, scored)


def _choice_loss(params: np.ndarray, sets: list[tuple[np.ndarray, ...]]) -> float:
    total = 0.0
    for *logs, truth in sets:
        z = sum(w * log for w, log in zip(params, logs))
        total -= z[truth] - np.logaddexp.reduce(z)
    return total / max(1, len(sets))


def fit_score(read: Sequence[ReadCodes]) -> dict:
    """The weights of the readers' log-probabilities that make the true code most probable
    among each field's candidates (the line reader's too, where it read the fields)."""
    from scipy.optimize import minimize

    with_line = all(s.line is not None for rc in read for s in rc.scored)
    sets = []
    for rc in read:
        for truth, s in zip(rc.truths, rc.scored):
            if truth in s.codes and len(s.codes) > 1:
                logs = [np.log(np.maximum(s.segmented, directory_reader.EPSILON)),
                        np.log(np.maximum(s.whole, directory_reader.EPSILON))]
                if with_line:
                    logs.append(np.log(np.maximum(s.line, directory_reader.EPSILON)))
                sets.append((*logs, s.codes.index(truth)))
    start = np.ones(3 if with_line else 2)
    result = minimize(_choice_loss, start, args=(sets,), method="Nelder-Mead",
                      options={"xatol": 1e-3, "fatol": 1e-6})
    weights = [round(float(v), 6) for v in result.x]
    return {"segmented": weights[0], "whole": weights[1], "line": weights[2] if with_line else 0.0}


def _top_rows(read: Sequence[ReadCodes], score: dict) -> tuple[np.ndarray, np.ndarray]:
    calibration = directory_reader.Calibration(score, {"bias": 0.0})
    rows, right = [], []
    for rc in read:
        for truth, s in zip(rc.truths, rc.scored):
            reading = directory_reader.decide(s, calibration)
            if not reading.code:
                rows.append([0.0] * len(FEATURES))
                right.append(False)
                continue
            i = s.codes.index(reading.code)
            absolute = float(s.log_score(score)[i])
            x = directory_reader.features(reading.candidates[0][1], s.valid_mass, s.plain, absolute, s.density)
            rows.append([x[name] for name in FEATURES])
            right.append(reading.code == truth)
    return np.array(rows, float), np.array(right, bool)


# Evidence *for* the code: the calibration may weigh it little, never against the code (a field
# the readers find no code in at all must not look sure because one input sits at its floor).
EVIDENCE = ("renormalised", "valid_mass", "plain", "absolute")


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Logistic regression with a ridge (it stays finite where words and codes separate
    completely) and non-negative weights on the ``EVIDENCE`` features."""
    from scipy.optimize import minimize

    def loss(w):
        z = np.clip(x @ w, -50, 50)
        p = 1.0 / (1.0 + np.exp(-z))
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w
        return value, x.T @ (p - y) + l2 * w

    bounds = [(0.0, None) if name in EVIDENCE else (None, None) for name in FEATURES]
    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds).x


def fit_calibration(read: Sequence[ReadCodes]) -> dict:
    score = fit_score(read)
    x, y = _top_rows(read, score)
    w = fit_logistic(x, y.astype(float))
    return {"score": score, "weights": {name: round(float(v), 6) for name, v in zip(FEATURES, w)},
            "top_right": float(y.mean()), "n": int(len(y))}


def read_fit_set(data: Optional[str], dhsd: str | Path, count: int, words: int, seed: int,
                 countries: Sequence[str] = FIT_COUNTRIES,
                 progress: Callable[[str], None] = lambda s: None) -> tuple[list[ReadCodes], int]:
    """The fields the calibration is fitted on, read: composed real codes of held-out MNIST
    training digits, and fields that hold no code alone (handwritten words, and codes joined with
    a word). Returns them and how many words were used."""
    from docsort.training.datasets import mnist

    _, validation = mnist.train_validation_split(mnist.load(data).train)
    read = [read_codes(cc, validation, count, seed + 10 * i, progress) for i, cc in enumerate(countries)]
    word_images = word_fields(dhsd, words, seed + 1000)
    progress(f"reading {len(word_images)} handwritten words and as many codes joined with a word")
    for i, cc in enumerate(countries):
        mine = word_images[i::len(countries)]
        read.append(read_fields_of(cc, mine, [""] * len(mine)))
        directory = directories.load(cc)
        joined_codes = draw_codes(directory, len(mine), seed + 2000 + i)
        written = compose_codes(validation.images, validation.labels, joined_codes, seed + 3000 + i)
        read.append(read_fields_of(cc, code_and_word_fields(written, mine, seed + 4000 + i), joined_codes))
    return read, len(word_images)


def train(data: Optional[str], dhsd: str | Path, count: int, words: int, seed: int, out: Path, command: str,
          countries: Sequence[str] = FIT_COUNTRIES, progress: Callable[[str], None] = lambda s: None) -> dict:
    """Fit the shipped calibration (``read_fit_set``) and write it to ``out``."""
    read, word_count = read_fit_set(data, dhsd, count, words, seed, countries, progress)
    return write_calibration(read, word_count, count, seed, out, command, countries)


def write_calibration(read: Sequence[ReadCodes], word_count: int, count: int, seed: int, out: Path, command: str,
                      countries: Sequence[str] = FIT_COUNTRIES) -> dict:
    fit = fit_calibration(read)
    result = {
        "description": "How a handwritten field read against a postal directory says P(code right): the two "
                       "readers' scores of each candidate code (weights of their log-probabilities) and a logistic "
                       "model on the best candidate (docsort.reading.digits.directory_reader).",
        "score": fit["score"],
        "weights": fit["weights"],
        "fit": {"data": f"real codes of {', '.join(countries)} written with the MNIST training digits held out for "
                        f"validation (mnist.train_validation_split); {word_count} "
                        "handwritten words of the DHSD writers the printed/handwritten classifier trained on, alone "
                        "and joined behind a written code",
                "countries": list(countries), "per_country": count, "words": word_count, "seed": seed,
                "n": fit["n"],
                "top_right": round(fit["top_right"], 6)},
        "models": manifest.code_reader_models(),
        "directories": {cc: directories.load(cc).describe() for cc in countries},
        "command": command,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": {"python": platform.python_version(), "platform": sys.platform},
    }
    _write(result, out)
    return result


# --------------------------------------------------------------------------- trade-off with and without


def _confidences(rc: ReadCodes, calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(plain confidences, plain right, directory confidences, directory right)."""
    plain_conf = np.array([c for _, c in rc.plain])
    plain_right = np.array([d == t for (d, _), t in zip(rc.plain, rc.truths)])
    readings = [directory_reader.decide(s, calibration) for s in rc.scored]
    dir_conf = np.array([r.confidence for r in readings])
    dir_right = np.array([r.code == t for r, t in zip(readings, rc.truths)])
    return plain_conf, plain_right, dir_conf, dir_right


def _operating_point(conf, right, manual_cost, missort_cost, volume) -> tuple[dict, list]:
    # Real codes read against a directory are rarely wrong: the fit set often has too few errors
    # to show the cost of accepting below 1 - manual/missort.
    threshold, fitted = tradeoff.operating_threshold(conf, right, manual_cost, missort_cost)
    point = tradeoff.tradeoff_curve(conf, right, [threshold])[0]
    point["fitted_threshold"] = fitted
    point["expected_cost"] = cost_model.threshold_cost(point["accept_rate"], point["error_rate"], volume,
                                                       manual_cost, missort_cost)
    point["code_accuracy"] = float(np.mean(right))
    curve = tradeoff.tradeoff_curve(conf, right, tradeoff.curve_thresholds([threshold]))
    return point, curve


def _checked(threshold, fit, fresh, volume, manual_cost, missort_cost) -> dict:
    check = tradeoff.check_threshold(threshold, fit, fresh)
    check["expected_cost"] = cost_model.threshold_cost(check["accept_rate"], check["error_rate"], volume,
                                                       manual_cost, missort_cost)
    return check


def measure_tradeoff(country: str, data: Optional[str], count: int, seed: int, command: str,
                     manual_cost: float = cost_model.DEFAULT_MANUAL_COST,
                     missort_cost: float = cost_model.DEFAULT_MISSORT_COST,
                     volume: float = cost_model.DEFAULT_VOLUME,
                     progress: Callable[[str], None] = lambda s: None) -> dict:
    """Accept and error rates without and with ``country``'s directory on the same real codes:
    fitted on held-out training digits, checked on MNIST test digits."""
    from docsort.training.datasets import mnist

    calibration = directory_reader.shipped_calibration()
    data_set = mnist.load(data)
    _, validation = mnist.train_validation_split(data_set.train)
    fit = read_codes(country, validation, count, seed * 2 + 100, progress)
    check = read_codes(country, data_set.test, count, seed * 2 + 101, progress)
    fp_conf, fp_right, fd_conf, fd_right = _confidences(fit, calibration)
    cp_conf, cp_right, cd_conf, cd_right = _confidences(check, calibration)
    without, without_curve = _operating_point(fp_conf, fp_right, manual_cost, missort_cost, volume)
    with_dir, with_curve = _operating_point(fd_conf, fd_right, manual_cost, missort_cost, volume)
    directory = directories.load(country)
    return cost_model.round_report({
        "description": f"Accept/error trade-off of the handwritten code reader on real {country} codes, without and "
                       f"with the {country} postal directory (the same composed codes); error_rate = share of all "
                       "letters accepted with a wrong code.",
        "code_length": directory.length,
        "country": country,
        "directory": directory.describe(),
        "reader": "docsort.reading.digits.directory_reader.read_fields (as in process --country)",
        "costs": {"volume": volume, "manual_cost": manual_cost, "missort_cost": missort_cost},
        "models": manifest.code_reader_models(),
        "calibration": {"file": directory_reader.CALIBRATION_FILE,
                        "sha256": manifest.file_sha256(str(manifest.models_dir() / directory_reader.CALIBRATION_FILE))},
        "optimal": with_dir,
        "without_directory": {
            "optimal": without,
            "check": _checked(without["threshold"], (fp_conf, fp_right), (cp_conf, cp_right), volume, manual_cost,
                              missort_cost),
            "curve": without_curve,
        },
        "fit": {"data": f"{count} real {country} codes written with the MNIST training digits held out for validation",
                "n": count, "seed": seed * 2 + 100, "code_accuracy": with_dir["code_accuracy"]},
        "check": {"data": f"{count} real {country} codes written with MNIST test digits", "seed": seed * 2 + 101,
                  **_checked(with_dir["threshold"], (fd_conf, fd_right), (cd_conf, cd_right), volume, manual_cost,
                             missort_cost)},
        "curve": with_curve,
        "command": command,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": {"python": platform.python_version(), "platform": sys.platform},
    })


def _write(result: dict, path: Path) -> None:
    tradeoff.write_tradeoff(result, Path(path))
    refresh_manifest(path)  # a models folder's manifest states its accept thresholds

