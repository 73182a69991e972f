"""Read a handwritten number field with several readers and say how sure they are together.

The readers fail on different fields:

- the segmenting reader (``segmenting``) cuts the field into digits and reads each with the
  digit model: strong on well-spaced digits, weak where digits overlap;
- the whole-field reader (``strings``), an ensemble of our CTC networks, reads the strip of
  columns without cutting: strong on touching and intertwined digits, and trained on fields
  with separators, marks, frames and patterned paper;
- the line reader (``ppocr``), PP-OCR's text recogniser read over digits only: trained on a
  large mix of real text by other hands, strong where our MNIST-trained readers meet a hand
  unlike MNIST's.

Every reader can say how likely *any* string is, not only its own answer. So each reading any
reader proposes is a candidate, and one logistic model gives P(candidate right) from every
reader's log-odds of that candidate and which readers proposed it; the candidate most likely
right is taken, with that probability. The model is fitted on codes composed from MNIST digits
held out of training, on number fields of the training families and on fields the pipeline cut
from envelopes (``training.train.digit_strings.fit_combination``), recorded in
``digit_strings.metrics.json`` and shipped in the manifest, so the code confidence means
P(code right). How much each reader is trusted is what the fit says, not a rule.
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
# The readers a combination can weigh, in the order of their features.
READERS = ("segmented", "whole", "line")


def _logit(p: float) -> float:
    p = min(1.0 - EPSILON, max(EPSILON, float(p)))
    return math.log(p / (1.0 - p))


def proposals(splits: FieldSplits, whole: StringReading, line: Optional[StringReading],
              code_length: Optional[int]) -> dict[str, str]:
    """Each reader's own reading, where it has one (of the asked length, when one is asked)."""
    own = {"segmented": splits.reading.digits, "whole": whole.digits, "line": line.digits if line else ""}
    return {name: digits for name, digits in own.items()
            if digits and (code_length is None or len(digits) == code_length)}


def candidate_features(splits: FieldSplits, whole: StringReading, line: Optional[StringReading],
                       candidate: str, proposed: dict[str, str]) -> np.ndarray:
    """Inputs of the combination for one candidate string: bias, each reader's log-odds of it,
    and which readers proposed it (a reader's own answer weighs differently from its opinion of
    another's)."""
    whole_p = whole.confidence if proposed.get("whole") == candidate else whole.probability(candidate)
    seg_p = splits.reading.confidence if proposed.get("segmented") == candidate else splits.probability(candidate)
    line_p = 0.0
    if line is not None:
        line_p = line.confidence if proposed.get("line") == candidate else line.probability(candidate)
    by = [float(proposed.get(name) == candidate) for name in READERS]
    return np.array([1.0, _logit(seg_p), _logit(whole_p), _logit(line_p), *by])


def _probability(w, x: np.ndarray) -> float:
    """Logistic model output."""
    z = float(x @ np.asarray(w, float))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def choose(splits: FieldSplits, whole: StringReading, line: Optional[StringReading], code_length: Optional[int],
           weights: Optional[dict] = None) -> tuple[str, list[str], Optional[float]]:
    """The reading to take: ``(digits, the readers that proposed it, P(it is right))``.

    Without ``weights`` the proposal with the highest own probability is taken and no combined
    probability is given. No proposal: ``("", [], None)``.
    """
    proposed = proposals(splits, whole, line, code_length)
    if not proposed:
        return "", [], None
    candidates = list(dict.fromkeys(proposed.values()))
    if not weights:
        own = {"segmented": splits.reading.confidence, "whole": whole.confidence,
               "line": line.confidence if line else 0.0}
        best = max(proposed, key=lambda name: own[name])
        digits = proposed[best]
        return digits, [n for n, d in proposed.items() if d == digits], None
    scored = [(_probability(weights["candidate"], candidate_features(splits, whole, line, c, proposed)), c)
              for c in candidates]
    p, digits = max(scored)
    return digits, [n for n, d in proposed.items() if d == digits], p


def combination_weights() -> Optional[dict]:
    """The shipped combination model, or None when the manifest ships none."""
    return manifest.shipped().combination


@dataclass
class FieldAnalysis:
    """One field as every reader saw it, and the reading taken (``reading.confidence`` is the
    combination's P(right) when the combination is shipped)."""

    splits: FieldSplits
    whole: StringReading
    reading: DigitString
    agree: bool  # at least two readers proposed the reading taken
    line: Optional[StringReading] = None


def uses_line_reader(weights: Optional[dict]) -> bool:
    return bool(weights) and "line" in weights.get("readers", ())


def read_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                string_reader=None, weights: Optional[dict] = None) -> list[DigitString]:
    """Read many number fields at once with every reader (each makes whole-batch model calls).

    ``fields`` are grey crops (dark ink on light paper) or ink-high float arrays. With
    ``code_length`` every answer has exactly that many digits, or is empty with confidence 0.
    """
    return [a.reading for a in analyse_fields([as_ink(f) for f in fields], code_length, reader,
                                              string_reader, weights)]


def analyse_fields(inks: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None,
                   string_reader=None, weights: Optional[dict] = None,
                   wholes: Optional[Sequence[StringReading]] = None,
                   lines: Optional[Sequence[StringReading]] = None, line_reader=None,
                   cheap_first: bool = False) -> list[FieldAnalysis]:
    """``read_fields`` on ink-high fields, keeping what each reader saw. ``wholes`` and ``lines``:
    the whole-field and line readings when already made (they do not depend on ``code_length``).
    The line reader runs when the combination weighs it (or a ``line_reader`` is given).

    ``cheap_first`` (with a ``code_length``): the whole-field reader, the cheapest, reads every
    field first; the line reader (about twenty times its cost per field) reads only the fields
    it reads as about a code's length (``_lines_near_code_length``), and the segmenting reader
    (dozens of digit cuts per field) only the fields where one of them proposes a reading of
    that length. Elsewhere it could only add a candidate of its own, and the fitted combination gives
    a candidate no other reader proposes a P(right) near zero (benchmarks/RESULTS.md, "Cheaply
    first", counts what it changes on envelopes); on a page most handwritten words are names
    and streets, so this is most of the segmenting reader's work.
    """
    from docsort.reading.digits import segmenting as digit_reader

    if not inks:
        return []
    if wholes is None:
        if string_reader is None:
            from docsort.reading.digits.strings import shared_reader

            string_reader = shared_reader()
        wholes = string_reader.read_inks(inks)
    if weights is None:
        weights = combination_weights()
    if lines is None and (line_reader is not None or uses_line_reader(weights)):
        if line_reader is None:
            from docsort.reading.digits.ppocr import shared_reader as shared_line_reader

            line_reader = shared_line_reader()
        if cheap_first and code_length is not None:
            lines = _lines_near_code_length(inks, wholes, code_length, line_reader)
        else:
            lines = line_reader.read_inks(inks)
    if cheap_first and code_length is not None:
        wanted = [i for i, whole in enumerate(wholes)
                  if len(whole.digits) == code_length
                  or (lines is not None and lines[i] is not None and len(lines[i].digits) == code_length)]
        read = digit_reader.analyse_fields([inks[i] for i in wanted], code_length, reader=reader)
        segmented = [digit_reader.FieldSplits.unread() for _ in inks]
        for i, splits in zip(wanted, read):
            segmented[i] = splits
    else:
        segmented = digit_reader.analyse_fields(inks, code_length, reader=reader)
    results = []
    for k, (splits, whole) in enumerate(zip(segmented, wholes)):
        line = lines[k] if lines is not None else None
        reading, agree = combined_reading(splits, whole, line, code_length, weights)
        results.append(FieldAnalysis(splits, whole, reading, agree, line))
    return results


# ``cheap_first``: the line reader reads a field only when the whole-field reader reads it as
# at most this many digits more or fewer than the code has (benchmarks/RESULTS.md, "Reading
# less on a page", counts what it changes on envelopes).
LINE_READER_SPAN = 2


def _lines_near_code_length(inks: Sequence[np.ndarray], wholes: Sequence[StringReading], code_length: int,
                            line_reader) -> list[Optional[StringReading]]:
    """The line reader's readings of the fields the whole-field reader reads as about a code's
    length; None elsewhere.

    The line reader costs about twenty times the whole-field reader per field, and on a page
    most handwritten fields are names and streets that the whole-field reader reads as strings
    far from a code's length. There the line reader could only add a candidate of its own, which
    the fitted combination scores near zero against the whole-field reader's log-odds of it; a
    code the whole-field reader misreads by a digit or two (a merged pair, a prefix, a stroke
    read as a 1) is still read."""
    wanted = [i for i, whole in enumerate(wholes) if abs(len(whole.digits) - code_length) <= LINE_READER_SPAN]
    lines: list[Optional[StringReading]] = [None] * len(inks)
    for i, line in zip(wanted, line_reader.read_inks([inks[i] for i in wanted]) if wanted else []):
        lines[i] = line
    return lines


def combined_reading(splits: FieldSplits, whole: StringReading, line: Optional[StringReading],
                     code_length: Optional[int], weights: Optional[dict]) -> tuple[DigitString, bool]:
    """The reading the combination takes, with P(it is right), and whether readers agreed on it."""
    digits, by, p_right = choose(splits, whole, line, code_length, weights)
    seg = splits.reading
    if not digits:
        return DigitString("", 0.0, []), False
    if "segmented" in by:
        reading = DigitString(seg.digits, seg.confidence, list(seg.digit_confidences), seg.boxes)
    else:
        source = whole if "whole" in by else line
        reading = DigitString(source.digits, source.confidence, list(source.digit_confidences))
    if p_right is not None:
        reading.confidence = p_right
        # Each digit is right whenever the whole code is: P(digit) >= P(code).
        reading.digit_confidences = [max(c, reading.confidence) for c in reading.digit_confidences]
    return reading, len(by) >= 2


def as_ink(image: np.ndarray) -> np.ndarray:
    """A grey crop (dark on light) or an ink-high float array -> ink-high float32 0..1."""
    arr = np.asarray(image)
    if arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0:
        return arr.astype(np.float32)
    return ink_of(arr)
