"""Read a handwritten number field with two readers and say how sure the pair is.

The segmenting reader (``digit_reader``) cuts the field into digits and reads each with the
digit model: strong on well-spaced digits, weak where digits overlap. The whole-field reader
(``string_reader``) reads the strip of columns without cutting: strong on touching and
intertwined digits. They fail on different fields, so:

- when both read the same string, that string is taken, and the agreement is strong evidence;
- when they differ, the reading with the higher probability is taken, and the other reading
  counts against it.

The code confidence is P(the string is right): a logistic model of both readers' own
probabilities (and whether they agree), fitted on validation strings composed from MNIST
digits held out of training (``training.digit_strings.fit_combination``) and shipped in
``digit_strings.metrics.json``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from docsort import modelstore
from docsort.digit_reader import DigitString, ink_of

# Confidences are clipped here before the log-odds are taken.
EPSILON = 1e-6


def _logit(p: float) -> float:
    p = min(1.0 - EPSILON, max(EPSILON, float(p)))
    return math.log(p / (1.0 - p))


def features(own: float, other: float) -> np.ndarray:
    """Inputs of the combination model: bias, the chosen reading's and the other's log-odds."""
    return np.array([1.0, _logit(own), _logit(other)])


def combined_confidence(weights: dict, agree: bool, own: float, other: float) -> float:
    w = np.asarray(weights["agree" if agree else "disagree"], float)
    z = float(features(own, other) @ w)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def choose(segmented: DigitString, whole, code_length: Optional[int]) -> tuple[str, bool, float, float]:
    """Which reading to take: ``(source, agree, its probability, the other's probability)``.

    ``source`` is ``segmented`` or ``whole``. A whole-field reading of the wrong length (when
    the length is known) or an empty one has no say.
    """
    whole_ok = bool(whole.digits) and (code_length is None or len(whole.digits) == code_length)
    whole_p = whole.confidence if whole_ok else 0.0
    seg_p = segmented.confidence if segmented.digits else 0.0
    if whole_ok and whole.digits == segmented.digits:
        return "segmented", True, seg_p, whole_p
    if whole_p > seg_p:
        return "whole", False, whole_p, seg_p
    return "segmented", False, seg_p, whole_p


def combination_weights() -> Optional[dict]:
    """The shipped combination model, or None when the whole-field model is not shipped."""
    return modelstore.load_metrics(modelstore.DIGIT_STRINGS).get("combination")


def read_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                string_reader=None, weights: Optional[dict] = None) -> list[DigitString]:
    """Read many number fields at once with both readers (each makes whole-batch model calls).

    ``fields`` are grey crops (dark ink on light paper) or ink-high float arrays. With
    ``code_length`` every answer has exactly that many digits, or is empty with confidence 0.
    """
    from docsort import digit_reader

    inks = [_ink(f) for f in fields]
    segmented = digit_reader.read_fields(inks, code_length, reader=reader)
    if not inks:
        return []
    if string_reader is None:
        from docsort.string_reader import shared_reader

        string_reader = shared_reader()
    if weights is None:
        weights = combination_weights()
    wholes = string_reader.read_inks(inks)
    results = []
    for seg, whole in zip(segmented, wholes):
        source, agree, own, other = choose(seg, whole, code_length)
        if source == "whole":
            reading = DigitString(whole.digits, own, list(whole.digit_confidences))
        else:
            reading = DigitString(seg.digits, own, list(seg.digit_confidences), seg.boxes)
        if reading.digits and weights:
            reading.confidence = combined_confidence(weights, agree, own, other)
            # Each digit is right whenever the whole code is: P(digit) >= P(code).
            reading.digit_confidences = [max(c, reading.confidence) for c in reading.digit_confidences]
        results.append(reading)
    return results


def _ink(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0:
        return arr.astype(np.float32)
    return ink_of(arr)
