"""Read a handwritten number field whole, without splitting it into digits.

Digits that overlap or intertwine cannot be cut apart cleanly, so this reader never cuts: a
convolutional sequence model (``models/digit_strings.keras``) looks at the field as a strip of
columns and gives, per column, the probability of each digit and of "no digit here" (the CTC
blank). The string is the best path through the columns (repeats merged, blanks dropped); its
probability is the CTC probability of that string summed over every way of placing it on the
columns, with the model's temperature fitted on validation strings so it means P(right).

Each network reads a field in several views, its ink scaled to a few heights (``VIEWS``), and
several networks may read it as an ensemble: every view of every member proposes its best path,
and a string's probability is the geometric mean of theirs, so a reading only one view likes is
doubted. A hand's digits are not all of one size and a network's errors depend on the scale it
sees, so the views disagree on exactly the fields one view would misread: three heights (24, 26
and 28 rows) read 90.7 % of the validation strings exactly right where one (24) reads 88.0 %.

Fields are scaled to one height and padded on the right to a few fixed widths (``INPUT``), so
the networks see whole batches of a handful of shapes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.reading import engine, manifest

HEIGHT = 32
# The ink of a field is scaled to this height, with paper above and below.
BODY = 24
# The ink heights each network reads a field at (the shipped set is the manifest's ``views``).
VIEWS = (24, 26, 28)
SIDE_PAD = 4
INPUT = engine.InputSpec("field", HEIGHT, width_buckets=(64, 96, 128, 192, 256, 384, 512), align="left", batch=16,
                          columns=1024)
BLANK = 10
INK_LEVEL = 0.3


@dataclass
class StringReading:
    """The whole-field reading: digits, P(string right), per-digit peak probabilities, and each
    member model's column probabilities (so any other reading of the field can be weighed)."""

    digits: str
    confidence: float
    digit_confidences: list[float]
    columns: list[np.ndarray] = field(default_factory=list, repr=False)

    def probability(self, digits: str) -> float:
        """P(the field reads as ``digits``) by this reader."""
        if not digits or not digits.isdigit() or not self.columns:
            return 0.0
        return ensemble_probability(self.columns, [int(c) for c in digits])


def prepare(ink: np.ndarray, body: int = BODY) -> np.ndarray:
    """An ink-high field (float 0..1) -> (HEIGHT, width) float32, ink cropped and scaled to ``body`` px."""
    return prepare_views(ink, (body,))[0]


def prepare_views(ink: np.ndarray, bodies: Sequence[int]) -> list[np.ndarray]:
    """``prepare`` at each ink height of ``bodies``, the ink found once."""
    return [strip for strip, _ in _prepare_placed(ink, bodies)]


def _prepare_placed(ink: np.ndarray, bodies: Sequence[int]) -> list[tuple[np.ndarray, tuple[float, float]]]:
    """``prepare_views`` with, for each strip, where the field's columns went: strip x =
    offset + scale * field x."""
    ink = np.asarray(ink, np.float32)
    mask = (ink > INK_LEVEL).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 3]
    if not keep:
        return [(np.zeros((HEIGHT, INPUT.width_buckets[0]), np.float32), (0.0, 0.0)) for _ in bodies]
    s = stats[keep]
    x0, y0 = int(s[:, 0].min()), int(s[:, 1].min())
    x1, y1 = int((s[:, 0] + s[:, 2]).max()), int((s[:, 1] + s[:, 3]).max())
    crop = ink[y0:y1, x0:x1]
    strips = []
    for body in bodies:
        scale = body / max(1, y1 - y0)
        width = max(1, int(round((x1 - x0) * scale)))
        limit = INPUT.width_buckets[-1] - 2 * SIDE_PAD
        width = min(width, limit)  # a very long field is squeezed rather than cut
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = cv2.resize(crop, (width, body), interpolation=interpolation)
        top = (HEIGHT - body) // 2
        out = np.zeros((HEIGHT, width + 2 * SIDE_PAD), np.float32)
        out[top:top + body, SIDE_PAD:SIDE_PAD + width] = np.clip(scaled, 0.0, 1.0)
        x_scale = width / max(1, x1 - x0)
        strips.append((out, (SIDE_PAD - x0 * x_scale, x_scale)))
    return strips


def best_path(probs: np.ndarray) -> tuple[list[int], list[float]]:
    """Greedy CTC decoding of (T, 11) column probabilities: the digits and each one's peak probability."""
    best = probs.argmax(axis=1)
    digits: list[int] = []
    peaks: list[float] = []
    previous = BLANK
    for t, label in enumerate(best):
        if label != BLANK:
            if label != previous:
                digits.append(int(label))
                peaks.append(float(probs[t, label]))
            else:
                peaks[-1] = max(peaks[-1], float(probs[t, label]))
        previous = label
    return digits, peaks


def string_log_probability(probs: np.ndarray, digits: Sequence[int]) -> float:
    """log P(digits | columns) summed over all CTC alignments (the forward algorithm)."""
    log_p = np.log(np.clip(probs, 1e-30, 1.0))
    states = [BLANK]
    for d in digits:
        states += [int(d), BLANK]
    states = np.asarray(states)
    n = len(states)
    alpha = np.full(n, -np.inf)
    alpha[0] = log_p[0, BLANK]
    if n > 1:
        alpha[1] = log_p[0, states[1]]
    # A state may be skipped from two back when it is a digit different from the one two back.
    skip = np.zeros(n, bool)
    skip[2:] = (states[2:] != BLANK) & (states[2:] != states[:-2])
    for t in range(1, len(probs)):
        stay = alpha
        step = np.concatenate([[-np.inf], alpha[:-1]])
        jump = np.concatenate([[-np.inf, -np.inf], alpha[:-2]])[:n]
        jump = np.where(skip, jump, -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + log_p[t, states]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if n > 1 else alpha[-1])


def ensemble_probability(columns: Sequence[np.ndarray], digits: Sequence[int]) -> float:
    """P(digits) by an ensemble: the members' CTC probabilities averaged in the log domain (a
    reading only one member likes is not trusted as much as one they all like)."""
    return min(1.0, math.exp(float(np.mean([string_log_probability(c, digits) for c in columns]))))


def column_stride(input_width: int, output_columns: int) -> int:
    """Strip columns per output column of a network, from one call's shapes: 4 for the networks
    that pool width by 4, 2 for those with a fine column head (``train digit-strings
    --fine-blocks``). A network says nothing else about it, and ensemble members may differ."""
    return max(1, int(round(input_width / max(1, output_columns))))


def shipped_members() -> list[str]:
    """The shipped whole-field networks, as the manifest lists the ensemble's members."""
    models = manifest.shipped()
    return [str(models.path(name)) for name in models.string_members()]


class StringReader:
    """The whole-field networks behind a batched interface."""

    def __init__(self, model=None, views: Optional[Sequence[int]] = None):
        """``model``: a network file (``.onnx``, or a ``.keras`` with its exported ``.onnx`` beside
        it), a loaded ``engine.Network``, a list of those (an ensemble), or None for the shipped
        ensemble. ``views``: the ink heights each network reads a field at (default: the
        shipped manifest's for the shipped ensemble, ``VIEWS`` for others)."""
        if model is None:
            models = manifest.shipped()
            self.models = [models.network(name, INPUT) for name in models.string_members()]
            self.views = tuple(views or models.string_views())
            return
        members = model if isinstance(model, (list, tuple)) else [model]
        self.models = [engine.load(m) if isinstance(m, (str, os.PathLike)) else m for m in members]
        self.views = tuple(views or VIEWS)

    @property
    def model(self):
        """The first member (the one a single-model caller means)."""
        return self.models[0]

    def column_probabilities(self, strips: Sequence[np.ndarray], model=None) -> list[np.ndarray]:
        """Prepared strips -> per strip (T, 11) column probabilities (padding columns included)
        of ``model`` (default: the first member)."""
        return [probs for probs, _ in self._strided_columns(strips, model)]

    def _strided_columns(self, strips: Sequence[np.ndarray], model=None) -> list[tuple[np.ndarray, int]]:
        """``column_probabilities`` with each strip's column stride (strip pixels per column)."""
        model = self.model if model is None else model
        out = []
        for strip, probs in zip(strips, model.run(strips, INPUT)):
            probs = probs.reshape(-1, BLANK + 1)
            stride = column_stride(INPUT.bucket(strip.shape[1]), len(probs))
            # Columns past the strip's own width (plus the network's reach) are padding.
            out.append((probs[:min(len(probs), math.ceil((strip.shape[1] + SIDE_PAD) / stride))], stride))
        return out

    def read_inks(self, inks: Sequence[np.ndarray], views: Optional[Sequence[int]] = None) -> list[StringReading]:
        """Ink-high fields (float 0..1) -> their readings, one call per member, view and width
        bucket.

        Each view of each member proposes its best path; of the proposals the one all of them
        together find most probable is the reading. ``views``: other ink heights than the
        reader's own (one view is a third of the cost, for a first look).
        """
        per_view = list(zip(*(prepare_views(ink, views or self.views) for ink in inks))) if inks else []
        per_model = [self.column_probabilities(list(strips), model) for strips in per_view for model in self.models]
        return [_best_reading(list(columns)) for columns in zip(*per_model)]

    def read_spans(self, inks: Sequence[np.ndarray], spans: Sequence[Sequence[tuple[int, int]]],
                   body: int = 26) -> list[list[StringReading]]:
        """For each ink-high field, the readings of its column ``spans`` (``(x0, x1)`` in the
        field's pixels), all from one reading of the whole field at one ink height: a first look
        at the parts of a line, at the cost of reading the line once. The network sees each
        span's neighbours too, so a span's reading is a little less its own than a field cut
        to it."""
        placed = [_prepare_placed(ink, (body,))[0] for ink in inks]
        per_model = [self._strided_columns([strip for strip, _ in placed], model) for model in self.models]
        out = []
        for f, ((_, (offset, scale)), field_spans) in enumerate(zip(placed, spans)):
            readings = []
            for x0, x1 in field_spans:
                cut = []
                for member in per_model:
                    probs, stride = member[f]
                    c0 = min(len(probs) - 1, max(0, int(math.floor((offset + scale * x0) / stride))))
                    c1 = min(len(probs), int(math.ceil((offset + scale * x1) / stride)) + 1)
                    cut.append(probs[c0:max(c0 + 1, c1)])
                readings.append(_best_reading(cut))
            out.append(readings)
        return out


def _best_reading(columns: list[np.ndarray]) -> StringReading:
    """Of the best paths of every member and view, the one all of them together find most probable."""
    best = StringReading("", 0.0, [], columns)
    for probs in columns:
        digits, peaks = best_path(probs)
        if not digits or "".join(map(str, digits)) == best.digits:
            continue
        p = ensemble_probability(columns, digits)
        if p > best.confidence or not best.digits:
            best = StringReading("".join(map(str, digits)), p, peaks, columns)
    return best


_shared: Optional[StringReader] = None


def shared_reader() -> StringReader:
    """The shipped whole-field reader, loaded once per process."""
    global _shared
    if _shared is None:
        _shared = StringReader()
    return _shared
