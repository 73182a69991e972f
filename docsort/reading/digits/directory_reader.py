"""Read a handwritten code against a postal directory: only codes that exist can be the answer.

Both number-field readers can say how likely *any* string is (``digit_reader.FieldSplits`` and
``string_reader.StringReading``), so the field is scored over the directory's codes instead of
over all strings:

1. the segmenting reader's probability of every code in the directory, in one pass over the
   directory's prefix tree (the reader's sum over splits of the field, shared by codes with a
   common prefix): its best codes are candidates, and their total is how much of the reader's
   belief lies on codes that exist at all;
2. the whole-field reader's best strings and their one-digit neighbours that exist are
   candidates too (it reads touching digits the segmenting reader cannot cut);
3. every candidate is scored by every reader (a weighted product of their probabilities; the
   line reader, PP-OCR's recogniser, proposes candidates and scores them too), the scores are
   renormalised over the candidates: P(code | the code exists);
4. a logistic model turns that, the P(right) of the plain reading without the directory, how
   much the readers like the best code in absolute terms, the belief left on codes that exist
   and the directory's density into P(code right). It is fitted on real codes of the US and
   German directories written with held-out MNIST training digits, and on handwritten words and
   codes joined with a word, which hold no code (``training.directory_reading``), and shipped in
   ``models/directory_reading.json``.

A reading of a code that does not exist gives way to the best code that does; when the best
one is still doubtful, its P(right) says so and the letter goes to a person. A field neither
reader reads as the code's number of digits holds no code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from docsort.reading import manifest
from docsort.reading.digits.segmenting import DigitString, FieldSplits
from docsort.page.directory import Directory
from docsort.reading.digits.strings import BLANK, StringReading

CALIBRATION_FILE = "directory_reading.json"
# Candidates kept from the segmenting reader's ranking of the whole directory.
TOP_SEGMENTED = 24
EPSILON = 1e-12
# Scores of the two readers, used when no calibration is shipped (a plain product).
DEFAULT_SCORE = {"segmented": 1.0, "whole": 1.0, "line": 0.0}


@dataclass
class DirectoryReading:
    """A field read against a directory: the best code that exists, P(it is right), and the
    candidates it was chosen from with their renormalised probabilities."""

    code: str
    confidence: float
    digit_confidences: list[float]
    candidates: list[tuple[str, float]] = field(default_factory=list)
    valid_mass: float = 0.0  # the segmenting reader's belief on codes that exist

    def as_digit_string(self) -> DigitString:
        return DigitString(self.code, self.confidence, list(self.digit_confidences))


# --------------------------------------------------------------------------- the directory's prefix tree


def prefix_tree(directory: Directory) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per digit position t (1..k): for each distinct prefix of t digits, the index of its
    (t-1)-digit parent and its last digit. The codes are sorted, so the last level is the codes."""
    tree = directory.derived.get("prefix_tree")
    if tree is not None:
        return tree
    digits = directory.digit_array()
    n, k = digits.shape
    levels = []
    parent_ids = np.zeros(n, np.int64)
    for t in range(1, k + 1):
        new = np.ones(n, bool)
        if n > 1:
            new[1:] = np.any(digits[1:, :t] != digits[:-1, :t], axis=1)
        ids = np.cumsum(new) - 1
        firsts = np.flatnonzero(new)
        levels.append((parent_ids[firsts], digits[firsts, t - 1].astype(np.int64)))
        parent_ids = ids
    directory.derived["prefix_tree"] = levels
    return levels


def segmented_probabilities(splits: FieldSplits, directory: Directory) -> np.ndarray:
    """P(the field reads as each directory code) by the segmenting reader, in the directory's
    sorted order: the reader's own sum over the field's splits into k digits
    (``digit_reader.string_probability``) for every code at once, prefixes shared."""
    from docsort.reading.digits.segmenting import _split_scores

    f, probs = splits.field, splits.probs
    k = directory.length
    levels = prefix_tree(directory)
    out = np.zeros(len(levels[-1][0]), np.float64)
    if not f.atoms or f.evidence is None or not np.isfinite(f.evidence) or len(probs) == 0:
        return out
    scores, by_start = _split_scores(f, probs)
    shift = f.evidence / k  # keeps every partial sum near 1
    weights = np.exp(np.asarray(scores, np.float64) - shift)[:, None] * np.asarray(probs, np.float64)
    n = len(f.atoms)
    same: dict[int, np.ndarray] = {0: np.ones(1, np.float64)}
    for t in range(k):
        parents, digit = levels[t]
        following: dict[int, np.ndarray] = {}
        for i, mass in same.items():
            grown = mass[parents]
            for s in by_start.get(i, []):
                j = f.segments[s][1]
                contribution = grown * weights[s][digit]
                if j in following:
                    following[j] += contribution
                else:
                    following[j] = contribution
        same = following
    return np.minimum(1.0, same.get(n, out))


# --------------------------------------------------------------------------- the whole-field reader


def ctc_log_probabilities(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log P(each labelling | columns), all CTC alignments summed, for many labellings of one
    length at once (``string_reader.string_log_probability`` vectorised over ``labels``)."""
    labels = np.asarray(labels, np.int64)
    m, k = labels.shape
    if m == 0:
        return np.zeros(0)
    log_p = np.log(np.clip(np.asarray(probs, np.float64), 1e-30, 1.0))
    states = np.full((m, 2 * k + 1), BLANK, np.int64)
    states[:, 1::2] = labels
    skip = np.zeros(states.shape, bool)
    skip[:, 2:] = (states[:, 2:] != BLANK) & (states[:, 2:] != states[:, :-2])
    alpha = np.full(states.shape, -np.inf)
    alpha[:, 0] = log_p[0, BLANK]
    alpha[:, 1] = log_p[0, states[:, 1]]
    for t in range(1, len(log_p)):
        step = np.concatenate([np.full((m, 1), -np.inf), alpha[:, :-1]], axis=1)
        jump = np.concatenate([np.full((m, 2), -np.inf), alpha[:, :-2]], axis=1)
        jump = np.where(skip, jump, -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, step), jump) + log_p[t][states]
    return np.logaddexp(alpha[:, -1], alpha[:, -2])


def whole_probabilities(whole: StringReading, codes: Sequence[str]) -> np.ndarray:
    """P(the field reads as each code) by the whole-field ensemble (members' CTC probabilities
    averaged in the log domain, as ``string_reader.ensemble_probability``)."""
    if not codes or not whole.columns:
        return np.zeros(len(codes))
    labels = np.array([[int(c) for c in code] for code in codes], np.int64)
    logs = np.mean([ctc_log_probabilities(columns, labels) for columns in whole.columns], axis=0)
    return np.minimum(1.0, np.exp(logs))


def _neighbours(reading: str, k: int) -> set[str]:
    """A whole-field reading and the strings one digit away from it, of length k (a reading one
    digit too long or short also offers the strings with a digit dropped or added)."""
    out = set()
    if len(reading) == k:
        out.add(reading)
        for i in range(k):
            out.update(reading[:i] + d + reading[i + 1:] for d in "0123456789")
    elif len(reading) == k + 1:
        out.update(reading[:i] + reading[i + 1:] for i in range(k + 1))
    elif len(reading) == k - 1:
        for i in range(k):
            out.update(reading[:i] + d + reading[i:] for d in "0123456789")
    return out


def _whole_proposals(whole: StringReading, k: int) -> set[str]:
    from docsort.reading.digits.strings import best_path

    proposals = _neighbours(whole.digits, k) if whole.digits else set()
    for columns in whole.columns:
        digits, _ = best_path(columns)
        proposals |= _neighbours("".join(map(str, digits)), k)
    return proposals


# --------------------------------------------------------------------------- the calibration


@dataclass(frozen=True)
class Calibration:
    """How the two readers' probabilities of a candidate combine into its score, and the
    logistic model from the renormalised probability to P(code right)."""

    score: dict
    weights: dict

    @classmethod
    def shipped(cls) -> Optional["Calibration"]:
        path = manifest.models_dir() / CALIBRATION_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            from docsort.errors import MissingDependencyError

            raise MissingDependencyError(f"directory reading calibration {path} cannot be read: {exc}") from None
        return cls(data["score"], data["weights"])


# Probabilities enter the calibration as log-odds within +-9.2 (1e-4 .. 1 - 1e-4): beyond that a
# renormalised probability only says how few candidates there were, not how sure the readers are.
LOGIT_LIMIT = 1e-4


def _logit(p: float) -> float:
    p = min(1.0 - LOGIT_LIMIT, max(LOGIT_LIMIT, float(p)))
    return math.log(p / (1.0 - p))


# Where the readers' absolute liking of the best code is clipped: far below it a field is not
# the code whatever it is.
ABSOLUTE_FLOOR = -40.0


def features(top: float, valid_mass: float, plain: float, absolute: float, density: float) -> dict[str, float]:
    """What the calibration sees of the best candidate: its renormalised probability; how much of
    the segmenting reader's belief lies on codes that exist at all; P(right) of the plain reading
    without the directory (a handwritten word or a smudge is no well-read number, and then no
    code); how much the readers like the best code in absolute terms (its weighted
    log-probabilities); how dense the directory is (the share of all k-digit strings that are
    codes: in a dense one a misreading often lands on a code that exists)."""
    return {"bias": 1.0, "renormalised": _logit(top), "valid_mass": math.log(max(valid_mass, 1e-6)),
            "plain": _logit(plain), "absolute": max(ABSOLUTE_FLOOR, min(0.0, absolute)),
            "density": math.log(max(density, 1e-9))}


def calibrated(weights: dict, x: dict[str, float]) -> float:
    z = sum(w * x[name] for name, w in weights.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# --------------------------------------------------------------------------- reading


@dataclass
class Scored:
    """A field's candidates with what each reader thinks of them (kept for fitting)."""

    codes: list[str]
    segmented: np.ndarray
    whole: np.ndarray
    valid_mass: float
    density: float
    plain: float = 0.0  # P(right) of the reading without the directory
    line: Optional[np.ndarray] = None  # the line reader's probabilities, where it read the field

    def log_score(self, score: dict) -> np.ndarray:
        """Each candidate's weighted log-probabilities under the readers."""
        total = (score["segmented"] * np.log(np.maximum(self.segmented, EPSILON))
                 + score["whole"] * np.log(np.maximum(self.whole, EPSILON)))
        if self.line is not None and score.get("line"):
            total = total + score["line"] * np.log(np.maximum(self.line, EPSILON))
        return total


def score_candidates(splits: FieldSplits, whole: StringReading, directory: Directory, plain: float = 0.0,
                     line: Optional[StringReading] = None) -> Scored:
    """The field's candidate codes that exist, each with every reader's probability (``plain``:
    P(right) of the field's reading without the directory; ``line``: the line reader's reading,
    whose proposals are candidates too)."""
    k = directory.length
    all_seg = segmented_probabilities(splits, directory)
    codes_sorted = directory.codes()
    top = min(TOP_SEGMENTED, len(all_seg))
    best = np.argpartition(-all_seg, top - 1)[:top] if top else np.zeros(0, np.int64)
    chosen = {codes_sorted[i]: float(all_seg[i]) for i in best if all_seg[i] > 0}
    proposals = _whole_proposals(whole, k) | (_whole_proposals(line, k) if line is not None else set())
    for code in proposals:
        at = directory.position(code)
        if at is not None and code not in chosen:
            chosen[code] = float(all_seg[at]) if all_seg.size else 0.0
    codes = list(chosen)
    seg = np.array([chosen[c] for c in codes], np.float64)
    whole_p = whole_probabilities(whole, codes)
    line_p = whole_probabilities(line, codes) if line is not None else None
    return Scored(codes, seg, whole_p, float(all_seg.sum()), len(directory) / 10.0 ** k, float(plain), line_p)


def decide(scored: Scored, calibration: Optional[Calibration]) -> DirectoryReading:
    """The best candidate, its P(right), and the candidates' renormalised probabilities."""
    if not scored.codes or (scored.valid_mass <= 0.0 and scored.plain <= 0.0):
        # Neither reader reads the field as a code's number of digits: it holds no code.
        return DirectoryReading("", 0.0, [], [], scored.valid_mass)
    score = calibration.score if calibration else DEFAULT_SCORE
    log_score = scored.log_score(score)
    posterior = np.exp(log_score - log_score.max())
    posterior /= posterior.sum()
    order = np.argsort(-posterior, kind="stable")
    best = int(order[0])
    top = float(posterior[best])
    if calibration is not None:
        x = features(top, scored.valid_mass, scored.plain, float(log_score[best]), scored.density)
        confidence = calibrated(calibration.weights, x)
    else:  # the renormalised probability, discounted by the belief left off the directory
        confidence = top * min(1.0, scored.valid_mass)
    code = scored.codes[best]
    # Each digit is right whenever the code is, and as right as the candidates that share it.
    digit_conf = []
    for position, digit in enumerate(code):
        share = float(sum(p for c, p in zip(scored.codes, posterior) if c[position] == digit))
        digit_conf.append(max(confidence, min(1.0, share)))
    candidates = [(scored.codes[i], float(posterior[i])) for i in order[:5]]
    return DirectoryReading(code, confidence, digit_conf, candidates, scored.valid_mass)


_shipped: dict[str, Optional[Calibration]] = {}


def shipped_calibration() -> Optional[Calibration]:
    """The shipped calibration, loaded once per process (None when not shipped)."""
    key = str(manifest.models_dir())
    if key not in _shipped:
        _shipped[key] = Calibration.shipped()
    return _shipped[key]


@dataclass
class FieldReadings:
    """One field as read without and with the directory."""

    plain: DigitString
    directory: Optional[DirectoryReading]
    splits: FieldSplits
    whole: StringReading
    line: Optional[StringReading] = None


def read_fields(fields: Sequence[np.ndarray], code_length: int, directory: Optional[Directory] = None,
                reader=None, string_reader=None, calibration: Optional[Calibration] = None) -> list[FieldReadings]:
    """Read number fields as ``field_reader`` does (its readings are the ``plain`` ones) and,
    with a directory, each also against the directory."""
    from docsort.reading.digits import combine as field_reader

    if not fields:
        return []
    analyses = field_reader.analyse_fields([field_reader.as_ink(f) for f in fields], code_length, reader,
                                           string_reader)
    if directory is not None and calibration is None:
        calibration = shipped_calibration()
    out = []
    for a in analyses:
        against = None
        if directory is not None:
            against = decide(score_candidates(a.splits, a.whole, directory, a.reading.confidence, a.line),
                             calibration)
        out.append(FieldReadings(a.reading, against, a.splits, a.whole, a.line))
    return out


def read_codes(fields: Sequence[np.ndarray], directory: Directory) -> list[dict]:
    """``read-digits --country``: each already-cut field read as one of the directory's codes.

    A row holds the best code that exists (``digits``), P(it is right), whether the field was
    read as a code that exists at all (``valid``; when not, ``digits`` is the plain reading and
    the confidence 0: a code that does not exist cannot be the right one), the directory's place
    for it, the code as the country writes it (``written``: ``00-950``), the plain reading without
    the directory, and the next candidates.
    """
    rows = []
    for read in read_fields(fields, directory.length, directory):
        against = read.directory
        if against is not None and against.code:
            row = against.as_digit_string().to_dict()
            row.update(valid=True, place=directory.place(against.code), written=directory.format.written(against.code))
        else:
            row = DigitString(read.plain.digits, 0.0, [0.0] * len(read.plain.digits)).to_dict()
            row.update(valid=False, place=None, written=None)
        row["digits"] = row["digits"] or None
        row["without_directory"] = {"digits": read.plain.digits or None,
                                    "confidence": round(float(read.plain.confidence), 6),
                                    "valid": read.plain.digits in directory}
        row["candidates"] = [[code, round(p, 6)] for code, p in (against.candidates if against else [])]
        rows.append(row)
    return rows
