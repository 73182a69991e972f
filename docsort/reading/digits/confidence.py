"""What ``read-digits`` says about a field: is it a number at all, and P(its reading is right).

The combination of the readers (``field_reader``) is fitted on 5-digit postal codes, the
fields the pipeline hands it. ``read-digits`` is handed anything a user cuts: a lone digit, a
10-digit account number, a handwritten word. Two small logistic models, fitted by
``training.field_calibration``, recorded in ``digit_strings.metrics.json`` under
``field_calibration`` and shipped in the manifest, turn what both readers saw into

- ``p_number``, P(the field is a digit string), from the reading of the field at whatever length
  it holds: how sure each reader is of each digit and of its own string, how the ink had to be cut, and how the ink
  lies (a word's letters crowd a middle band with strokes above and below; digits fill their
  height). It is fitted as if most crops handed in (``number_share``) were numbers.
- the confidence, P(the reading is right), for a field judged a number: from the combination's
  probability, the reading's length, ``p_number``, and, when the code length is given,
  whether the field holds that many digits by itself.

A field judged not a number (``p_number`` below ``NUMBER_THRESHOLD``) gets no digits and
confidence 0: its reading is not offered as an answer, and an answer of no digits is never the
field's number. The pipeline does not use this: its codes keep the combination's P(code right),
which its accept threshold was measured on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.reading.digits import combine as field_reader
from docsort.reading import manifest
from docsort.reading.digits.segmenting import INK_LEVEL, DigitString, _stroke_width

NUMBER_THRESHOLD = 0.5
EPSILON = 1e-6
# Reading lengths the right-model tells apart: a lone digit, short, medium and long strings.
LENGTH_BUCKETS = ((1, 1), (2, 4), (5, 7), (8, 10**6))


@dataclass
class NumberField:
    """``read-digits``' answer for one field: the reading (empty when not a number or when the
    field cannot hold the code length), whether the field is a number, and P(it is)."""

    reading: DigitString
    is_number: bool
    p_number: float

    def to_dict(self) -> dict:
        row = self.reading.to_dict()
        if not self.reading.digits:
            row["digits"] = None
        row["is_number"] = self.is_number
        row["p_number"] = round(float(self.p_number), 6)
        return row


def _logit(p: float) -> float:
    p = min(1.0 - EPSILON, max(EPSILON, float(p)))
    return math.log(p / (1.0 - p))


def _ink_shape(ink: np.ndarray) -> dict[str, float]:
    """How the ink lies: share of ink rows in the middle half of its height, how much of its box
    it fills, its width over height, how many sizeable pieces it has, pen width over height."""
    mask = ink > INK_LEVEL
    if mask.sum() < 5:
        return {"middle_ink": 0.0, "fill": 0.0, "aspect": 0.0, "pieces": 0.0, "pen": 0.0}
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    profile = mask[rows[0]:rows[-1] + 1].sum(axis=1).astype(float)
    quarter = h // 4
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return {"middle_ink": float(profile[quarter:h - quarter].sum() / max(profile.sum(), 1.0)),
            "fill": float(mask.sum() / (h * w)), "aspect": float(w / h),
            "pieces": float((areas >= 0.05 * areas.max()).sum()), "pen": float(_stroke_width(mask) / h)}


def number_features(analysis: field_reader.FieldAnalysis, ink: np.ndarray) -> dict[str, float]:
    """Evidence that a field read at whatever length it holds is a digit string at all."""
    splits, whole, reading = analysis.splits, analysis.whole, analysis.reading
    n = len(reading.digits)
    digit_probs = [float(splits.probs[s].max()) for s in splits.path]
    priors = [splits.field.priors[s] for s in splits.path]
    columns = [float(np.mean(np.log(np.clip(c.max(axis=1), 1e-9, 1.0)))) for c in whole.columns if len(c)]
    shape = _ink_shape(ink)
    return {
        "combined": _logit(reading.confidence if n else 0.0),
        "segmented": _logit(splits.reading.confidence),
        "whole": _logit(whole.confidence),
        "line": _logit(analysis.line.confidence if analysis.line is not None else 0.0),
        "agree": float(analysis.agree),
        "log_digits": math.log1p(n),
        "digit_min": _logit(min(digit_probs)) if digit_probs else _logit(0.0),
        "digit_mean": float(np.mean([_logit(p) for p in digit_probs])) if digit_probs else _logit(0.0),
        "split_prior": float(np.mean(priors)) if priors else -20.0,
        "column_certainty": float(np.mean(columns)) if columns else -20.0,
        "middle_ink": shape["middle_ink"],
        "fill": shape["fill"],
        "width_per_digit": math.log(max(shape["aspect"], 1e-3) / max(n, 1)),
        "pieces_per_digit": shape["pieces"] / max(n, 1),
        "pen": shape["pen"],
    }


# The number model also weighs these features two by two (a lone blot fills its box, a long
# word's letters do not; a sure digit reading of a word-shaped field is doubtful).
NUMBER_PRODUCTS = ("combined", "log_digits", "digit_min", "digit_mean", "column_certainty", "middle_ink",
                   "fill", "width_per_digit", "pieces_per_digit", "pen")


def right_features(analysis: field_reader.FieldAnalysis, free_length: int,
                   code_length: Optional[int]) -> dict[str, float]:
    """Evidence that a number field's reading is right: the combination's probability, by how
    many digits were read, and whether the field holds the asked length by itself (the right
    model also weighs ``number``, the log-odds of ``p_number``)."""
    reading = analysis.reading
    n = len(reading.digits)
    z = _logit(reading.confidence if n else 0.0)
    row = {"combined": z}
    for lo, hi in LENGTH_BUCKETS[1:]:
        name = f"length_{lo}_{hi}" if hi < 10**6 else f"length_{lo}_up"
        inside = float(lo <= n <= hi)
        row[name] = inside
        row[f"combined_x_{name}"] = z * inside
    other = float(code_length is not None and free_length != code_length)
    row["known_length"] = float(code_length is not None)
    row["holds_other_length"] = other
    row["combined_x_holds_other_length"] = z * other
    row["agree"] = float(analysis.agree)
    return row


def model_inputs(model: dict, features: dict[str, float]) -> np.ndarray:
    """A model's input vector: its features, then their products two by two, standardised."""
    x = [features[name] for name in model["features"]]
    x += [features[a] * features[b] for a, b in model.get("products", [])]
    return (np.asarray(x, float) - np.asarray(model["mean"])) / np.asarray(model["scale"])


def probability(model: dict, features: dict[str, float]) -> float:
    """A shipped logistic model's output for one field."""
    z = model["intercept"] + float(model_inputs(model, features) @ np.asarray(model["weights"]))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def combination_digest(metrics: dict) -> str:
    """Names the combination a calibration was fitted on: refitting the combination calls for
    fitting the calibration again."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(metrics.get("combination", {}), sort_keys=True).encode()).hexdigest()


def shipped_calibration() -> Optional[dict]:
    """The shipped calibration, or None when none is shipped (confidences are then the
    combination's, and every field counts as a number)."""
    return manifest.shipped().field_calibration


def assess(number: dict[str, float], right: Optional[dict[str, float]], calibration: dict
           ) -> tuple[float, bool, float]:
    """``(p_number, is_number, confidence)`` of a field from the features of its reading at its
    own length (``number``) and of the reading given (``right``; None when there is none)."""
    p_number = probability(calibration["number"], number)
    is_number = p_number >= calibration["threshold"]
    if not is_number or right is None:
        return p_number, is_number, 0.0
    return p_number, True, probability(calibration["right"], {**right, "number": _logit(p_number)})


def judge(free: field_reader.FieldAnalysis, read: field_reader.FieldAnalysis, ink: np.ndarray,
          code_length: Optional[int], calibration: Optional[dict]) -> NumberField:
    """One field's answer from its reading at its own length (``free``) and at the asked length
    (``read``, the same as ``free`` without one)."""
    reading = read.reading
    if calibration is None:
        return NumberField(reading, bool(reading.digits), 1.0 if reading.digits else 0.0)
    right = right_features(read, len(free.reading.digits), code_length) if reading.digits else None
    p_number, is_number, confidence = assess(number_features(free, ink), right, calibration)
    if not is_number or right is None:
        return NumberField(DigitString("", 0.0, []), is_number, p_number)
    # Each digit is right whenever the whole string is: P(digit) >= P(string).
    digits = [max(c, confidence) for c in reading.digit_confidences]
    return NumberField(DigitString(reading.digits, confidence, digits, reading.boxes), True, p_number)


def read_number_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                       string_reader=None, calibration: Optional[dict] = None) -> list[NumberField]:
    """Read already-cut fields (grey crops, dark on light, or ink-high floats): is each a number,
    its digits (exactly ``code_length`` of them when given), and P(they are right)."""
    inks = [field_reader.as_ink(f) for f in fields]
    if not inks:
        return []
    if calibration is None:
        calibration = shipped_calibration()
    if string_reader is None:
        from docsort.reading.digits.strings import shared_reader

        string_reader = shared_reader()
    wholes = string_reader.read_inks(inks)
    free = field_reader.analyse_fields(inks, None, reader=reader, wholes=wholes)
    lines = [a.line for a in free] if free and free[0].line is not None else None
    read = free if code_length is None else field_reader.analyse_fields(inks, code_length, reader=reader,
                                                                         wholes=wholes, lines=lines)
    return [judge(f, r, ink, code_length, calibration) for f, r, ink in zip(free, read, inks)]
