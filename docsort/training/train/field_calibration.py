"""Fitting what ``read-digits`` says about a field: P(it is a number) and P(its reading is right).

The combination of the two readers (``field_reader``) was fitted on 5-digit codes, the fields the
pipeline meets. ``read-digits`` is handed fields of any length, and crops that hold no number at
all. So its confidence is calibrated again here, on fields it is really handed:

- numbers of 1 to 10 digits composed from the MNIST digits held out of every model's training
  (``mnist.train_validation_split``), written several ways (apart, touching, scanned at envelope
  sizes, a lone MNIST digit as it comes), each read with and without the code length;
- crops that are not numbers: real handwritten words and bits of words by DHSD *training*
  writers, hand-printed capitals and letters, rules and lines, blank paper, smudges and blots.

MNIST test digits and the DHSD validation writers are never fitted on: ``evaluate digits``
measures on them with the same recipes (``datasets.digit_fields.number_fields``,
``datasets.non_number_crops.word_fields``) and the same reading (``datasets.field_readings``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from docsort.errors import DatasetError
from docsort.training.datasets.digit_fields import LENGTHS, number_fields
from docsort.training.datasets.field_readings import read_all
from docsort.training.datasets.non_number_crops import NOT_NUMBER_KINDS, not_number_fields

# The share of crops handed to read-digits that are numbers, as the models are fitted: most are.
NUMBER_SHARE = 0.7


def asked_lengths(truths: Sequence[str], rng: np.random.Generator, other_share: float = 0.15) -> list[int]:
    """The code length a user gives with each field: its own, or now and then another one."""
    lengths = []
    for text in truths:
        n = len(text)
        if rng.random() < other_share:
            n = int(np.clip(n + rng.choice([-2, -1, 1, 2]), 1, max(LENGTHS)))
        lengths.append(n)
    return lengths


def _standardised_fit(rows: Sequence[dict], names: Sequence[str], products: Sequence[tuple[str, str]],
                      y: np.ndarray, weights: np.ndarray, l2: float) -> dict:
    """A logistic model on standardised features (and their products), as ``field_confidence``
    reads it: intercept, weights, and the mean and scale of each input."""
    from docsort.reading.digits.confidence import model_inputs
    from docsort.training.train.digit_strings import fit_logistic

    model = {"features": list(names), "products": [list(p) for p in products]}
    width = len(names) + len(products)
    raw = np.array([model_inputs({**model, "mean": np.zeros(width), "scale": np.ones(width)}, r) for r in rows])
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = np.hstack([np.ones((len(rows), 1)), (raw - mean) / scale])
    w = fit_logistic(x, y, weights * len(y) / weights.sum(), l2=l2, iterations=200)
    model.update({"intercept": round(float(w[0]), 6), "weights": [round(float(v), 6) for v in w[1:]],
                  "mean": [round(float(v), 6) for v in mean], "scale": [round(float(v), 6) for v in scale]})
    return model


def fit_models(number_rows: list[dict], truths: list[str], other_rows: list[dict],
               number_share: float = NUMBER_SHARE, number_l2: float = 10.0, right_l2: float = 1.0) -> dict:
    """The two models from read rows.

    P(number): number fields against the rest, weighted as if ``number_share`` of the crops
    were numbers (its 69 inputs are held in by a stronger ridge). P(right): on every reading
    judged a number, of number fields (right when it is the truth) and of the rest (never
    right), weighted alike.
    """
    from itertools import combinations_with_replacement

    from docsort.reading.digits.confidence import NUMBER_PRODUCTS, NUMBER_THRESHOLD, probability

    rows = [r["number"] for r in number_rows + other_rows]
    y = np.r_[np.ones(len(number_rows)), np.zeros(len(other_rows))]
    weights = np.r_[np.full(len(number_rows), number_share / len(number_rows)),
                    np.full(len(other_rows), (1 - number_share) / len(other_rows))]
    number = _standardised_fit(rows, list(rows[0]), list(combinations_with_replacement(NUMBER_PRODUCTS, 2)),
                               y, weights, number_l2)
    p_number = np.array([probability(number, r) for r in rows])

    readings, right, reading_weights = [], [], []
    for k, row in enumerate(number_rows + other_rows):
        if p_number[k] < NUMBER_THRESHOLD:
            continue
        truth = truths[k] if k < len(number_rows) else None
        for read in [row] + ([row["known"]] if "known" in row else []):
            if read["read"]:  # no reading: confidence 0, nothing to fit
                readings.append({**read["right"], "number": _log_odds(p_number[k])})
                right.append(float(read["read"] == truth))
                reading_weights.append(weights[k])
    right_model = _standardised_fit(readings, list(readings[0]), [], np.array(right), np.array(reading_weights),
                                   right_l2)
    fitted = {"ridge": {"number": number_l2, "right": right_l2}, "readings": len(readings),
              "numbers_judged_not_numbers": float(np.mean(p_number[:len(number_rows)] < NUMBER_THRESHOLD)),
              "not_numbers_judged_numbers": float(np.mean(p_number[len(number_rows):] >= NUMBER_THRESHOLD))}
    return {"threshold": NUMBER_THRESHOLD, "number_share": number_share, "number": number, "right": right_model,
            "fit": fitted}


def _log_odds(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, float(p)))
    return float(np.log(p / (1 - p)))


def find_datasets(folder: str | Path) -> tuple[Path, Path]:
    """The MNIST folder and the DHSD folder under ``folder`` (as ``samples --handwriting`` finds them)."""
    folder = Path(folder)
    images = next(iter(sorted(folder.rglob("train-images-idx3-ubyte*"))), None)
    index = next(iter(sorted(folder.rglob("data.csv"))), None)
    if images is None:
        raise DatasetError(f"no MNIST training images (train-images-idx3-ubyte[.gz]) under {folder}")
    if index is None:
        raise DatasetError(f"no DHSD data.csv under {folder}")
    return images.parent, index.parent


def calibrate(data: str | Path, metrics_path: Path, out: Path, numbers: int = 2000, not_numbers: int = 800,
              seed: int = 11, jobs: int = 1, command: str = "", progress=None, family_share: float = 0.5) -> dict:
    """Fit the field calibration on validation digits and DHSD training writers and write the
    metrics of ``metrics_path`` with it to ``out`` (``field_calibration``)."""
    from docsort.training.datasets import mnist
    from docsort.errors import OutputNotWritableError
    from docsort.reading.digits.confidence import combination_digest
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd

    say = progress or (lambda line: None)
    started = time.time()
    metrics = json.loads(Path(metrics_path).read_text())
    mnist_dir, dhsd_dir = find_datasets(data)
    dataset = mnist.load(mnist_dir)
    _, validation = mnist.train_validation_split(dataset.train)
    writers = dhsd_writer_split().train
    dhsd = load_dhsd(dhsd_dir, writers=writers)
    words = [image for image, text, _ in dhsd if not any(c.isdigit() for c in text)]
    rng = np.random.default_rng(seed + 2)
    fields, truths = number_fields(validation.images, validation.labels, numbers, seed, family_share=family_share)
    others, kinds = not_number_fields(words, [text for _, text, _ in dhsd], not_numbers, seed + 1)
    # Half the crops that are no number are read with a code length too, as a user may ask.
    other_lengths = [int(rng.integers(1, max(LENGTHS) + 1)) if rng.random() < 0.5 else None for _ in others]
    say(f"reading {numbers} number fields of MNIST validation digits and {not_numbers} crops that are no number")
    rows = read_all(fields + others, asked_lengths(truths, rng) + other_lengths, jobs, say)
    calibration = fit_models(rows[:numbers], truths, rows[numbers:])
    calibration["fit"] = {
        **calibration["fit"],
        "command": command,
        "data": (f"{numbers} number fields of 1-{max(LENGTHS)} digits composed from the {len(validation)} MNIST "
                 f"training digits held out for validation ({100 * family_share:.0f} % of them number fields of "
                 f"the training families), each read without a code length and with one (its "
                 f"own, or 15 % of the time another); "
                 f"{not_numbers} crops that are no number: DHSD words of training writers {list(writers)}, "
                 "bits of them, hand-printed capitals, rules, blanks and smudges"),
        "numbers": numbers, "not_numbers": not_numbers, "family_share": family_share,
        "not_number_kinds": {k: kinds.count(k) for k in NOT_NUMBER_KINDS},
        "seed": seed,
        "mnist_sha256": dataset.sha256,
        "combination_sha256": combination_digest(metrics),
        "seconds": round(time.time() - started, 1),
    }
    metrics["field_calibration"] = calibration
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(metrics, indent=2) + "\n")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {out}: {exc.strerror or exc}") from None
    from docsort.training.manifest import refresh

    refresh(out, say)
    return calibration
