"""Read a handwritten number field: split it into digits, read each, say how sure we are.

People write digits that touch, overlap, or come apart (a 5 whose bar floats free, a 4 in two
strokes). So the field is over-segmented into *atoms* — connected components of the ink, with
components too wide for one digit cut at the valleys of their ink profile — and every run of
up to four neighbouring atoms is a candidate digit. All candidates of all fields go through
the digit model in one batch; a dynamic programme then picks the split of the atoms into digits
that the model and a digit-shape prior like best (with exactly ``code_length`` digits when the
length is known).

The confidence means what it says, P(the whole string is right): the model's per-digit
probabilities are calibrated, and every split of the atoms is weighted by how much the model
and the priors like it; the confidence is the weighted share of splits that read as the
chosen string. A field that could as well be read differently (another split, another digit)
gets a low confidence and goes to manual sorting; splits that differ only by a sliver of ink
and read the same do not dilute it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.reading.digits.mnist_format import to_mnist

from docsort.batch.records import BBox

MAX_ATOMS_PER_DIGIT = 6
# Ink below this (0..1, ink high) is paper.
INK_LEVEL = 0.3
# A component wider than this share of the digit height may hold several digits.
SPLIT_WIDTH = 0.6
MAX_DIGITS = 40
# Log-costs of splitting a component (plus per stroke crossed beyond one) and of joining
# two components that stand apart into one digit.
CUT_COST = 2.5
NARROW_CUT_COST = 8.0
CUT_INK_COST = 1.5
JOIN_COST = 8.0
DESLANT = False
BLOT_COST = 8.0
PITCH_COST = 6.0


@dataclass
class DigitString:
    """A number field as read: digits, P(all of them right), per-digit confidences, digit boxes."""

    digits: str
    confidence: float
    digit_confidences: list[float]
    boxes: list[BBox] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "digits": self.digits,
            "confidence": round(float(self.confidence), 6),
            "digit_confidences": [round(float(c), 6) for c in self.digit_confidences],
        }


@dataclass
class _Atom:
    mask: np.ndarray  # bool, full field size
    x0: int
    x1: int
    y0: int
    y1: int
    component: int = 0
    cut_cost: float = 0.0  # log-cost of cutting between this atom and the next piece of its component
    area: int = 0

    @property
    def centre(self) -> float:
        return (self.x0 + self.x1) / 2.0


def ink_of(image: np.ndarray) -> np.ndarray:
    """Grey (dark ink on light paper) or colour field -> float ink intensity 0..1, ink high."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    img = img.astype(np.float32)
    if img.size and img.max() > 1.0:
        img = img / 255.0
    paper = float(np.percentile(img, 75)) if img.size else 1.0
    if paper < 0.5:  # light ink on dark ground: already ink high
        ink = img - float(np.percentile(img, 25))
    else:
        ink = paper - img
    top = float(np.percentile(ink, 99.5)) if ink.size else 0.0
    if top <= 0.05:
        return np.zeros_like(img)
    return np.clip(ink / top, 0.0, 1.0)


def deslant(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Shear the field so its strokes stand upright: slanted digits then part along columns.

    Returns the sheared field and the shear, so each digit can be slanted back before it is
    read (the digit model learnt digits with their writers' own slant).
    """
    ys, xs = np.nonzero(ink > INK_LEVEL)
    if len(xs) < 20 or not DESLANT:
        return ink, 0.0
    h, w = ink.shape
    yc = ys.astype(np.float32) - h / 2.0
    # Upright strokes leave the most columns free of ink between digits.
    best_shear, best_empty = 0.0, -1
    for shear in np.arange(-0.4, 0.41, 0.05):
        cols = np.round(xs + shear * yc).astype(np.int64)
        counts = np.bincount(cols - cols.min())
        empty = int(np.sum(counts <= 1))
        if empty > best_empty or (empty == best_empty and abs(shear) < abs(best_shear)):
            best_shear, best_empty = float(shear), empty
    if abs(best_shear) < 0.05:
        return ink, 0.0
    return _shear(ink, best_shear), best_shear


def _shear(image: np.ndarray, shear: float) -> np.ndarray:
    h, w = image.shape
    extra = int(np.ceil(abs(shear) * h / 2.0)) + 2
    m = np.float32([[1, shear, extra - shear * h / 2.0], [0, 1, 0]])
    return cv2.warpAffine(image, m, (w + 2 * extra, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _stroke_width(mask: np.ndarray) -> float:
    """Typical pen width: twice the ink's area over its outline length."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return max(1.0, 2.0 * float(mask.sum()) / max(perimeter, 1.0))


def _atoms(ink: np.ndarray, length: Optional[int] = None) -> tuple[list[_Atom], float, float]:
    """Over-segment the field; returns the atoms left to right, the digit height and pen width."""
    mask = ink > INK_LEVEL
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return [], 0.0, 1.0
    comps = stats[1:]
    areas = comps[:, cv2.CC_STAT_AREA]
    heights = comps[:, cv2.CC_STAT_HEIGHT]
    big = areas >= 0.25 * areas.max()
    height = float(np.median(heights[big])) if big.any() else float(heights.max())
    rows = np.flatnonzero(mask.any(axis=1))
    # A 5 with a floating bar has two short components: the field's ink height keeps the scale.
    height = max(height, 0.8 * float(rows[-1] - rows[0] + 1))
    speck = max(4.0, 0.004 * height * height)
    stroke = _stroke_width(mask)
    cols = np.flatnonzero(mask.any(axis=0))
    # With the digit count known, digits follow each other about every ``pitch`` pixels.
    grid = (float(cols[0]), (cols[-1] + 1 - cols[0]) / length) if length else None
    atoms: list[_Atom] = []
    for idx in range(1, count):
        x, y, w, h, area = stats[idx]
        if area < speck:
            continue
        comp = labels == idx
        if w > SPLIT_WIDTH * height:
            pieces = _split(comp, x, y, w, h, height, stroke, grid)
        else:
            pieces = [_Atom(comp, int(x), int(x + w), int(y), int(y + h))]
        for piece in pieces:
            piece.component = idx
            piece.area = int(piece.mask.sum())
        atoms.extend(pieces)
    atoms.sort(key=lambda a: a.centre)
    return atoms, height, stroke


def _split(comp: np.ndarray, x: int, y: int, w: int, h: int, height: float, stroke: float,
           grid: Optional[tuple[float, float]] = None) -> list[_Atom]:
    """Cut a wide component at the valleys of its column ink profile (candidate digit borders)."""
    profile = comp[:, x:x + w].sum(axis=0).astype(np.float32)
    smooth = np.convolve(profile, np.ones(3, np.float32) / 3, mode="same")
    margin = max(2, int(0.2 * height))
    candidates = [c for c in range(margin, w - margin)
                  if smooth[c] <= smooth[c - 1] and smooth[c] <= smooth[c + 1]]
    wanted = max(1, int(round(w / (0.35 * height))))
    cuts: list[int] = []
    for c in sorted(candidates, key=lambda c: (smooth[c], c)):
        if all(abs(c - o) >= max(2, int(0.18 * height)) for o in cuts):
            cuts.append(c)
        if len(cuts) >= wanted:
            break
    if grid is not None:  # where the known number of digits puts their borders
        start, pitch = grid
        for k in range(1, 60):
            c = int(round(start + k * pitch)) - x
            if c >= w - margin:
                break
            if c > margin and all(abs(c - o) >= max(2, int(0.12 * height)) for o in cuts):
                cuts.append(c)
    if not cuts:  # no valley: cut where a digit of average width would end
        n = max(2, int(round(w / (0.6 * height))))
        cuts = [int(round(w * k / n)) for k in range(1, n)]
    sub = comp[y:y + h, x:x + w]
    cols = np.arange(w)[None, :]
    paths = [_cut_path(sub, c, height) for c in sorted(cuts)]
    for k in range(1, len(paths)):  # cuts must not cross
        paths[k] = np.maximum(paths[k], paths[k - 1] + 1)
    bounds = [np.zeros(h, np.int64)] + paths + [np.full(h, w, np.int64)]
    narrow = min(1.0, max(0.0, (1.0 - w / height) / 0.4))
    pieces = []
    for k in range(len(bounds) - 1):
        inside = sub & (cols >= bounds[k][:, None]) & (cols < bounds[k + 1][:, None])
        ys, xs = np.nonzero(inside)
        if len(xs) == 0:
            continue
        part = np.zeros_like(comp)
        part[y:y + h, x:x + w] = inside
        # Cutting across one stroke (where two digits touch) is cheap; across more ink, dear.
        # A component no wider than one digit is rarely two digits: cutting it costs more.
        crossed = 0.0
        if k + 1 < len(bounds) - 1:
            path = bounds[k + 1]
            crossed = float(sub[np.arange(h), np.clip(path, 0, w - 1)].sum())
        cost = CUT_COST + NARROW_CUT_COST * narrow + CUT_INK_COST * max(0.0, crossed / stroke - 1.0)
        pieces.append(_Atom(part, int(x + xs.min()), int(x + xs.max() + 1), int(y + ys.min()),
                            int(y + ys.max() + 1), cut_cost=cost))
    return pieces


def _cut_path(sub: np.ndarray, start: int, height: float) -> np.ndarray:
    """A top-to-bottom cut through a component that crosses as little ink as it can.

    Digits that overlap side by side cannot be parted by a straight column; the cut may wander
    a step left or right per row, at a small price for leaving its starting column.
    The cut stays within a third of a digit height of where it started: it must part
    neighbours, not walk round the whole component.
    """
    h, w = sub.shape
    cols = np.arange(w)
    deviation = np.abs(cols - start) / max(height, 1.0)
    inside = np.flatnonzero(deviation <= 0.3)
    # Leaving the band costs 1e4 a row, more than any path inside it: search the band alone.
    if inside.size and 11.0 * h < 1e4:
        lo, hi = int(inside[0]), int(inside[-1]) + 1
    else:
        lo, hi = 0, w
    step = np.where(deviation[lo:hi] > 0.3, 1e4, deviation[lo:hi] * 4.0)
    cost = sub[:, lo:hi].astype(np.float32) * 10.0 + step[None, :]
    n = hi - lo
    total = cost[0].copy()
    back = np.zeros((h, n), np.int8)
    left = np.full(n, np.inf)
    right = np.full(n, np.inf)
    for r in range(1, h):
        left[1:] = total[:-1] + 0.3
        right[:-1] = total[1:] + 0.3
        # The first of (left, straight, right) that is lowest, as argmin would pick.
        go_right = right < total
        best = np.where(go_right, right, total)
        go_left = left <= best
        back[r] = np.where(go_left, -1, go_right.view(np.int8))
        total = np.where(go_left, left, best) + cost[r]
    path = np.zeros(h, np.int64)
    path[-1] = int(np.argmin(total))
    for r in range(h - 1, 0, -1):
        path[r - 1] = path[r] + back[r, path[r]]
    return path + lo


def _shape_log_prior(width: float, height: float, ink_share: float, tall: float = 1.0) -> float:
    """How plausible a candidate's size is for one digit (log scale, 0 = fully plausible).

    ``tall`` is the candidate's own height over the field's digit height: a short piece is a
    detached stroke or a speck, not a digit.
    """
    r = width / max(height, 1.0)
    prior = 0.0
    if tall < 0.55:
        prior -= 20.0 * (0.55 - tall)
    if r > 0.95:
        prior -= 8.0 * (r - 0.95)
    if r < 0.08:
        prior -= 2.0
    if ink_share < 0.04:
        prior -= 3.0
    return prior


def _join_cost(left: list[_Atom], atom: _Atom, height: float) -> float:
    """Log-cost of putting ``atom`` into the same digit as ``left``: free for a small broken-off
    stroke or one tucked under the others, dear for a full-sized mark standing apart."""
    lx0, lx1 = min(a.x0 for a in left), max(a.x1 for a in left)
    l_area = sum(a.area for a in left)
    overlap = min(lx1, atom.x1) - max(lx0, atom.x0)
    narrower = max(1, min(lx1 - lx0, atom.x1 - atom.x0))
    share = overlap / narrower  # > 0: side by side overlapping; < 0: a gap
    small = min(atom.area, l_area) / max(1, max(atom.area, l_area))
    cost = JOIN_COST * min(1.0, small * 3.0)
    if share < 0.5:
        cost += JOIN_COST * min(2.0, (0.5 - share))
    return cost


@dataclass
class _Field:
    ink: np.ndarray
    atoms: list[_Atom]
    height: float
    segments: list[tuple[int, int]]  # (i, j): atoms i..j-1
    priors: list[float]  # log-plausibility of each candidate: shape, cuts and joins
    shapes: list[float]  # log-plausibility of being pen strokes at all (a blot is not)
    first: int = 0  # index of the first segment in the shared batch
    evidence: Optional[float] = None  # log-sum of the scores of all splits considered


def _candidate_segments(ink: np.ndarray, length: Optional[int] = None) -> tuple[_Field, list[np.ndarray]]:
    ink, shear = deslant(ink)
    atoms, height, stroke = _atoms(ink, length)
    pitch = (max(a.x1 for a in atoms) - min(a.x0 for a in atoms)) / length if atoms and length else None
    all_ink = np.zeros(ink.shape, bool)
    for a in atoms:
        all_ink |= a.mask
    segments, priors, shapes, images = [], [], [], []
    for i in range(len(atoms)):
        union = np.zeros(ink.shape, bool)
        x0 = y0 = 10 ** 9
        x1 = y1 = -1
        join_cost = 0.0
        for j in range(i + 1, min(len(atoms), i + MAX_ATOMS_PER_DIGIT) + 1):
            a = atoms[j - 1]
            if j - 1 > i and a.component != atoms[j - 2].component:
                join_cost += _join_cost(atoms[i:j - 1], a, height)
            union |= a.mask
            x0, x1, y0, y1 = min(x0, a.x0), max(x1, a.x1), min(y0, a.y0), max(y1, a.y1)
            if x1 - x0 > 1.6 * height:
                break
            # Keep the digit's faint rim, drop ink that belongs to other atoms.
            others = all_ink[y0:y1, x0:x1] & ~union[y0:y1, x0:x1]
            others = others & ~cv2.dilate(union[y0:y1, x0:x1].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            piece = np.where(others, 0.0, ink[y0:y1, x0:x1])
            share = float(union[y0:y1, x0:x1].sum()) / max(1.0, height * height)
            segments.append((i, j))
            fill = float(union[y0:y1, x0:x1].mean())
            blot = fill > 0.75 and x1 - x0 > max(3.0 * stroke, 0.3 * height)  # not pen strokes
            shapes.append(-BLOT_COST if blot else 0.0)
            prior = _shape_log_prior(x1 - x0, height, share, (y1 - y0) / max(height, 1.0)) + shapes[-1] - join_cost
            cut = False
            if j < len(atoms) and atoms[j].component == a.component:
                prior -= a.cut_cost  # this digit ends inside a component: a cut
                cut = True
            if i > 0 and atoms[i - 1].component == atoms[i].component:
                prior -= atoms[i - 1].cut_cost
                cut = True
            if cut and pitch:
                # A digit cut out of touching neighbours should be about as wide as the others.
                prior -= PITCH_COST * max(0.0, abs(math.log(max(x1 - x0, 1) / pitch)) - 0.3) ** 2
            priors.append(prior)
            images.append(_shear(piece, -shear) if shear else piece)
    return _Field(ink, atoms, height, segments, priors, shapes), images


def _split_scores(f: _Field, probs: np.ndarray) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Each candidate segment's log-score (the model's best class and the shape priors), and the
    segments by the atom they start at."""
    scores = np.log(np.clip(probs.max(axis=1), 1e-9, 1.0)) + np.asarray(f.priors)
    by_start: dict[int, list[int]] = {}
    for s, (i, _) in enumerate(f.segments):
        by_start.setdefault(i, []).append(s)
    return scores, by_start


def _best_split(f: _Field, probs: np.ndarray, length: Optional[int]) -> Optional[tuple[list[int], float]]:
    """The best split (list of segment indices) and P(its digit string) over all splits.

    Each split is weighted by how well the model and the shape priors like it (its score);
    the string's probability is the weighted sum, over all splits of the same length, of the
    probability that the split reads as that string. Splits that differ only by a sliver read
    the same and add up; splits the model finds implausible weigh little.
    """
    n = len(f.atoms)
    if n == 0:
        return None
    scores, by_start = _split_scores(f, probs)
    max_len = min(n, MAX_DIGITS) if length is None else length
    neg = -math.inf
    # best[d][i]: best score covering atoms [0, i) with d digits; total[d][i]: log-sum over splits.
    best = np.full((max_len + 1, n + 1), neg)
    total = np.full((max_len + 1, n + 1), neg)
    back: dict[tuple[int, int], int] = {}
    best[0][0] = total[0][0] = 0.0
    for d in range(max_len):
        for i in range(n):
            if best[d][i] == neg:
                continue
            for s in by_start.get(i, []):
                j = f.segments[s][1]
                cand = best[d][i] + scores[s]
                if cand > best[d + 1][j]:
                    best[d + 1][j] = cand
                    back[(d + 1, j)] = s
                total[d + 1][j] = np.logaddexp(total[d + 1][j], total[d][i] + scores[s])
    if length is None:
        options = [d for d in range(1, max_len + 1) if best[d][n] > neg]
        if not options:
            return None
        d = max(options, key=lambda k: best[k][n])
        evidence = np.logaddexp.reduce([total[k][n] for k in options])
    else:
        d = length
        if best[d][n] == neg:
            return None
        evidence = total[d][n]
    f.evidence = float(evidence)
    path, j = [], n
    for k in range(d, 0, -1):
        s = back[(k, j)]
        path.append(s)
        j = f.segments[s][0]
    path.reverse()
    digits = [int(probs[s].argmax()) for s in path]
    return path, string_probability(f, probs, digits)


def string_probability(f: _Field, probs: np.ndarray, digits: Sequence[int]) -> float:
    """P(the field reads as ``digits``): over all splits into that many digits, weighted by
    their scores, the probability that the split reads as that string (see ``_best_split``,
    which sets the field's evidence)."""
    n, d = len(f.atoms), len(digits)
    if n == 0 or d == 0 or f.evidence is None:
        return 0.0
    scores, by_start = _split_scores(f, probs)
    neg = -math.inf
    read_as = np.log(np.clip(probs[:, list(digits)], 1e-12, 1.0))  # (segments, positions)
    # same[t][i]: log-sum over splits of atoms [0, i) into t digits of score x P(reads d_1..d_t).
    same = np.full((d + 1, n + 1), neg)
    same[0][0] = 0.0
    for t in range(d):
        for i in range(n):
            if same[t][i] == neg:
                continue
            for s in by_start.get(i, []):
                j = f.segments[s][1]
                same[t + 1][j] = np.logaddexp(same[t + 1][j], same[t][i] + scores[s] + read_as[s, t])
    return float(min(1.0, np.exp(same[d][n] - f.evidence)))


def _mnist(piece: np.ndarray) -> np.ndarray:
    if int((piece > INK_LEVEL).sum()) < 4:  # a speck: nothing a digit model could read
        return np.zeros((28, 28), np.float32)
    # Paper all round and in the majority: the MNIST preparation finds the paper level there.
    pad = max(3, int(0.3 * max(piece.shape)))
    try:
        return to_mnist(cv2.copyMakeBorder(piece, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0))
    except (ValueError, OverflowError, TypeError, cv2.error):  # a blot with no stroke structure
        return np.zeros((28, 28), np.float32)


@dataclass
class FieldSplits:
    """A field as the segmenting reader saw it: its reading, and what it needs to say how likely
    any other reading of the field is (so another reader's answer can be weighed by this one)."""

    reading: DigitString
    field: Optional[_Field]  # None: not read (``unread``)
    probs: np.ndarray
    scored: dict[str, float] = field(default_factory=dict, repr=False)
    path: list[int] = field(default_factory=list, repr=False)  # the reading's segments

    @classmethod
    def unread(cls) -> "FieldSplits":
        """A field this reader was not asked to read: no reading, and no opinion of any."""
        return cls(DigitString("", 0.0, []), None, np.zeros((0, 10), np.float32))

    def probability(self, digits: str) -> float:
        """P(the field reads as ``digits``) by this reader."""
        if not digits or not digits.isdigit() or self.field is None:
            return 0.0
        if digits not in self.scored:
            self.scored[digits] = string_probability(self.field, self.probs, [int(c) for c in digits])
        return self.scored[digits]


def analyse_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None) -> list[FieldSplits]:
    """Read many number fields at once (one model call for all their candidate digits).

    ``fields`` are grey crops (dark ink on light paper) or ink-high float arrays. With
    ``code_length`` every answer has exactly that many digits, or is empty with confidence 0
    when the field cannot hold that many.
    """
    prepared: list[_Field] = []
    images: list[np.ndarray] = []
    for image in fields:
        ink = ink_of(image) if not (np.asarray(image).dtype.kind == "f" and np.asarray(image).max() <= 1.0) else np.asarray(image, np.float32)
        f, imgs = _candidate_segments(ink, code_length)
        f.first = len(images)
        images.extend(imgs)
        prepared.append(f)
    if images:
        if reader is None:
            from docsort.reading.digits.mnist_model import shared_reader

            reader = shared_reader()
        probs_all = reader.predict_proba(np.stack([_mnist(i) for i in images]))
    else:
        probs_all = np.zeros((0, 10), np.float32)
    results = []
    for f in prepared:
        probs = probs_all[f.first:f.first + len(f.segments)]
        chosen = _best_split(f, probs, code_length)
        if chosen is None:
            results.append(FieldSplits(DigitString("", 0.0, []), f, probs))
            continue
        path, string_probability = chosen
        digits, confs, boxes = [], [], []
        for s in path:
            p = probs[s]
            digits.append(str(int(p.argmax())))
            confs.append(float(p.max()))
            i, j = f.segments[s]
            xs0 = min(a.x0 for a in f.atoms[i:j])
            xs1 = max(a.x1 for a in f.atoms[i:j])
            ys0 = min(a.y0 for a in f.atoms[i:j])
            ys1 = max(a.y1 for a in f.atoms[i:j])
            boxes.append((xs0, ys0, xs1 - xs0, ys1 - ys0))
        # A split can be the best of bad options: a piece that is no pen stroke at all (a blot)
        # lowers the confidence however sure the model is.
        plausibility = float(np.exp(sum(f.shapes[s] for s in path)))
        confidence = string_probability * plausibility
        results.append(FieldSplits(DigitString("".join(digits), confidence, confs, boxes), f, probs,
                                   {"".join(digits): string_probability}, list(path)))
    return results


def read_fields(fields: Sequence[np.ndarray], code_length: Optional[int] = None, reader=None) -> list[DigitString]:
    """Read many number fields at once: the readings of ``analyse_fields``."""
    return [splits.reading for splits in analyse_fields(fields, code_length, reader)]


def read_field(image: np.ndarray, code_length: Optional[int] = None, reader=None) -> DigitString:
    return read_fields([image], code_length, reader)[0]
