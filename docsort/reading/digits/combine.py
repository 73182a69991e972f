"""Read a handwritten number field with two readers and say how sure the pair is.

The segmenting reader (``digit_reader``) cuts the field into digits and reads each with the
digit model: strong on well-spaced digits, weak where digits overlap. The whole-field reader
(``string_reader``) reads the strip of columns without cutting: strong on touching and
intertwined digits. They fail on different fields, so:

- when both read the same string, that string is taken, and the agreement is strong evidence;
- when they differ, the reading more likely right is taken, and the other reading counts
  against it.

Each is a logistic model of what both readers think of both readings (each reader can say how
likely any string is, not only its own answer): P(the shared string is right) when they
agree, P(the segmented reading is right) and P(the whole-field reading is right) when they
differ. The whole-field reader may be an ensemble of models trained alike from other seeds.
The models are fitted on codes composed from MNIST digits held out of training and on fields
the pipeline cut from envelopes drawn with them (``training.digit_strings.fit_combination``),
recorded in ``digit_strings.metrics.json`` and shipped in the manifest, so the code confidence
means P(code right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from docsort.reading import manifest
from docsort.reading.digits.segmenting import DigitString, FieldSplits, ink_of
from docsort.reading.digits.strings import StringReading

# Confidences are clipped here before the log-odds are taken.
EPSILON = 1e-6


def _logit(p: float) -> float:
    p = min(1.0 - EPSILON, max(EPSILON, float(p)))
    return math.log(p / (1.0 - p))


def features(segmented: FieldSplits, whole: StringReading, code_length: Optional[int]) -> np.ndarray:
    """Inputs of the combination models: bias, each reader's log-odds of its own reading, and
    of the other reader's reading (a second opinion: a segmented reading the whole-field reader
    finds unlikely is doubtful, and the other way round)."""
    seg_p, whole_p = own_probabilities(segmented.reading, whole, code_length)
    seg_of_whole = segmented.probability(whole.digits) if whole_p > 0 and seg_p > 0 else 0.0
    if seg_p > 0 and segmented.reading.digits == whole.digits:
        whole_of_seg = whole.confidence  # the same string: the ensemble has scored it already
    else:
        whole_of_seg = whole.probability(segmented.reading.digits) if seg_p > 0 else 0.0
    return np.array([1.0, _logit(seg_p), _logit(whole_p), _logit(seg_of_whole), _logit(whole_of_seg)])


def _probability(w, x: np.ndarray) -> float:
    """Logistic model output; weights fitted on fewer features use the leading ones."""
    w = np.asarray(w, float)
    z = float(x[:len(w)] @ w)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def own_probabilities(segmented: DigitString, whole: StringReading, code_length: Optional[int]) -> tuple[float, float]:
    """Each reader's own P(right); a whole-field reading of the wrong length (when the length is
    known) or an empty reading has no say."""
    whole_ok = bool(whole.digits) and (code_length is None or len(whole.digits) == code_length)
    return (segmented.confidence if segmented.digits else 0.0), (whole.confidence if whole_ok else 0.0)


def choose(segmented: FieldSplits, whole: StringReading, code_length: Optional[int],
           weights: Optional[dict] = None) -> tuple[str, bool, Optional[float]]:
    """Which reading to take: ``(segmented | whole, whether they agree, P(it is right))``.

    Without ``weights`` the reading with the higher own probability is taken and no combined
    probability is given.
    """
    seg_p, whole_p = own_probabilities(segmented.reading, whole, code_length)
    x = features(segmented, whole, code_length)
    if whole_p > 0 and whole.digits == segmented.reading.digits:
        return "segmented", True, _probability(weights["agree"], x) if weights else None
    if not weights:
        return ("whole" if whole_p > seg_p else "segmented"), False, None
    p_seg = _probability(weights["segmented"], x) if seg_p > 0 else 0.0
    p_whole = _probability(weights["whole"], x) if whole_p > 0 else 0.0
    return ("whole", False, p_whole) if p_whole > p_seg else ("segmented", False, p_seg)


def combination_weights() -> Optional[dict]:
    """The shipped combination model, or None when the manifest ships none."""
    return manifest.shipped().combination


@dataclass
class FieldAnalysis:
    """One field as both readers saw it, and the reading taken (``reading.confidence`` is the
    combination's P(right) when the combination is shipped)."""

    splits: FieldSplits
    whole: StringReading
    reading: DigitString
    agree: bool


def read_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                string_reader=None, weights: Optional[dict] = None) -> list[DigitString]:
    """Read many number fields at once with both readers (each makes whole-batch model calls).

    ``fields`` are grey crops (dark ink on light paper) or ink-high float arrays. With
    ``code_length`` every answer has exactly that many digits, or is empty with confidence 0.
    """
    return [a.reading for a in analyse_fields([as_ink(f) for f in fields], code_length, reader,
                                              string_reader, weights)]


def analyse_fields(inks: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                   string_reader=None, weights: Optional[dict] = None,
                   wholes: Optional[Sequence[StringReading]] = None) -> list[FieldAnalysis]:
    """``read_fields`` on ink-high fields, keeping what each reader saw. ``wholes``: the
    whole-field readings when already made (they do not depend on ``code_length``)."""
    from docsort.reading.digits import segmenting as digit_reader

    segmented = digit_reader.analyse_fields(inks, code_length, reader=reader)
    if not inks:
        return []
    if wholes is None:
        if string_reader is None:
            from docsort.reading.digits.strings import shared_reader

            string_reader = shared_reader()
        wholes = string_reader.read_inks(inks)
    if weights is None:
        weights = combination_weights()
    results = []
    for splits, whole in zip(segmented, wholes):
        reading, agree = combined_reading(splits, whole, code_length, weights)
        results.append(FieldAnalysis(splits, whole, reading, agree))
    return results


def combined_reading(splits: FieldSplits, whole: StringReading, code_length: Optional[int],
                     weights: Optional[dict]) -> tuple[DigitString, bool]:
    """The reading the combination takes, with P(it is right), and whether the readers agreed."""
    seg = splits.reading
    source, agree, p_right = choose(splits, whole, code_length, weights)
    if source == "whole":
        reading = DigitString(whole.digits, whole.confidence, list(whole.digit_confidences))
    else:
        reading = DigitString(seg.digits, seg.confidence, list(seg.digit_confidences), seg.boxes)
    if reading.digits and p_right is not None:
        reading.confidence = p_right
        # Each digit is right whenever the whole code is: P(digit) >= P(code).
        reading.digit_confidences = [max(c, reading.confidence) for c in reading.digit_confidences]
    return reading, agree


def as_ink(image: np.ndarray) -> np.ndarray:
    """A grey crop (dark on light) or an ink-high float array -> ink-high float32 0..1."""
    arr = np.asarray(image)
    if arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0:
        return arr.astype(np.float32)
    return ink_of(arr)
