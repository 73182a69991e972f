"""Clean a page before anything reads it: even light, upright lines, an ink mask.

Scans of mail arrive tilted by several degrees, lit unevenly (a shadowed fold, a yellowed
envelope) and noisy. Tesseract's line finding and the crop classifiers both suffer from that,
so every page is first flattened (divided by its own smoothed background), deskewed (the angle
whose horizontal ink profile is sharpest), cleared of printed form lines (rules, boxes, code
cells) and given an ink mask. Analysis runs on a reduced
copy, so this costs a few tens of milliseconds; the crops are cut from the full-resolution
clean page. ``CleanPage`` remembers the rotation so boxes can be reported in the page's own
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

# Pages are analysed (background, skew) at roughly this long side.
ANALYSIS_SIDE = 900
MAX_SKEW_DEGREES = 15.0
# Upright strips of the page whose row profiles the coarse skew search judges apart (``estimate_skew``).
SKEW_STRIPS = 3
# Ink is anything this much darker than the flattened paper (0..1).
INK_DEPTH = 0.28
# Paper within this share of the envelope's median level is the envelope's own, and a mean
# above the median by PAPER_STEP of that level has been lifted by lighter paper beside it
# (``flatten``).
PAPER_LEVEL_SPREAD = 0.12
PAPER_STEP = 0.05
# A pencil's strokes (``_pencil_strokes``): their pixels darker than paper by PENCIL_DEPTH, some
# by PENCIL_SEED_DEPTH, fewer than PENCIL_INK_SHARE of them as dark as ink; filling at most
# PENCIL_MAX_FILL of their box or, fuller, with no stroke wider than PENCIL_MAX_STROKE of their
# height; at most PENCIL_MAX_HEIGHT of the page's short side tall and at most
# PENCIL_MAX_ASPECT times as wide as tall.
PENCIL_DEPTH = 0.12
PENCIL_SEED_DEPTH = 0.2
PENCIL_INK_SHARE = 0.5
PENCIL_MAX_FILL = 0.4
PENCIL_MAX_STROKE = 0.5
PENCIL_MAX_HEIGHT = 0.12
PENCIL_MAX_ASPECT = 12


@dataclass
class CleanPage:
    """A flattened, deskewed grey page and the map back to the original page's pixels."""

    grey: np.ndarray  # uint8, paper ~255, ink dark, deskewed
    ink: np.ndarray  # bool mask of ink on ``grey``
    skew_degrees: float  # the page's measured tilt (counter-clockwise positive, as cv2 rotates)
    to_page: np.ndarray  # 2x3 affine from clean-page to original-page coordinates
    page_size: tuple[int, int]  # original (width, height)

    def page_bbox(self, bbox: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box on the clean page as the axis-aligned box it covers on the original page."""
        x, y, w, h = bbox
        corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], np.float64)
        moved = corners @ self.to_page.T
        pw, ph = self.page_size
        x0, y0 = np.clip(np.floor(moved.min(0)), 0, [pw, ph]).astype(int)
        x1, y1 = np.clip(np.ceil(moved.max(0)), 0, [pw, ph]).astype(int)
        return int(x0), int(y0), int(max(1, x1 - x0)), int(max(1, y1 - y0))


def to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
    if image.shape[2] == 4:
        image = image[..., :3]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def flatten(grey: np.ndarray) -> np.ndarray:
    """Divide out the paper's brightness so paper is ~255 everywhere and ink keeps its contrast.

    The background is the page with text closed away (a grey-level closing at low resolution
    removes strokes thinner than the kernel), smoothed (``_paper_level``) and brought back to
    full size. The closing keeps the step where the paper changes (an address label on a kraft
    or coloured envelope); a mean alone would spread the label's white over the envelope beside
    it, and a band of envelope as wide as the kernel would come out as dark as ink all round the
    label, joined to the address's last line.
    """
    h, w = grey.shape
    factor = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(grey, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA)
    k = max(9, int(round(max(small.shape) / 40)) | 1)
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = _paper_level(background, k)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR)
    np.maximum(background, 1, out=background)
    # In place: a page-sized float array per step costs more than the arithmetic.
    flat = grey.astype(np.float32)
    np.divide(flat, background, out=flat)
    np.multiply(flat, np.float32(255.0), out=flat)
    np.minimum(flat, np.float32(255.0), out=flat)
    return flat.astype(np.uint8)


def _paper_level(closed: np.ndarray, k: int) -> np.ndarray:
    """The paper's level from the closed page: the mean over ``k`` x ``k``, which smooths the
    page's light, but the median where the mean stands clearly above it at the envelope's own
    level (``PAPER_STEP``, ``PAPER_LEVEL_SPREAD``): beside a lighter patch of paper (a label)
    the mean lifts the envelope's level and the median keeps it. Inside a stamp (darker than
    the envelope) and on plain paper, its light however uneven, the mean stays.

    The median costs 25 times the mean, so it is found only round the places where it can be
    taken: where the levels in a window lie at least ``PAPER_STEP`` apart and the mean is above
    the envelope's lowest level by that much (the same figures as taking it everywhere)."""
    mean = cv2.blur(closed, (k, k))
    paper = float(np.median(closed))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    apart = cv2.dilate(closed, kernel).astype(np.float32) - cv2.erode(closed, kernel).astype(np.float32)
    floor = (1.0 - PAPER_LEVEL_SPREAD) * paper
    maybe = (apart > PAPER_STEP * paper) & (mean.astype(np.float32) > floor + PAPER_STEP * paper)
    if not maybe.any():
        return mean
    ys, xs = np.nonzero(maybe)
    reach = k // 2 + 1
    y0, y1 = max(0, int(ys.min()) - reach), min(closed.shape[0], int(ys.max()) + reach + 1)
    x0, x1 = max(0, int(xs.min()) - reach), min(closed.shape[1], int(xs.max()) + reach + 1)
    median = cv2.medianBlur(np.ascontiguousarray(closed[y0:y1, x0:x1]), k).astype(np.float32)
    near = mean[y0:y1, x0:x1]
    beside = ((near.astype(np.float32) - median > PAPER_STEP * paper)
              & (np.abs(median - paper) <= PAPER_LEVEL_SPREAD * paper))
    out = mean.copy()
    out[y0:y1, x0:x1] = np.where(beside, median.astype(np.uint8), near)
    return out


def denoise(grey: np.ndarray) -> np.ndarray:
    """Take off sensor noise only when the paper is visibly grainy (a median keeps stroke edges)."""
    h, w = grey.shape
    sample = grey[h // 4: 3 * h // 4: 4, w // 4: 3 * w // 4: 4].astype(np.float32)
    paper = sample[sample > 200]
    if paper.size > 100 and float(np.std(paper)) > 5.0:
        return cv2.medianBlur(grey, 3)
    return grey


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a mask: ``(count, labels, stats)`` as OpenCV gives them.

    Labels are 16-bit while they fit (about three times faster on a page than 32-bit: the label
    image is most of the work); a page of more than 65,535 specks falls back to 32-bit.
    """
    mask = mask.astype(np.uint8, copy=False)
    try:
        count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_16U, cv2.CCL_DEFAULT)
    except cv2.error:  # OpenCV refuses to overflow the label type
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return count, labels, stats


def estimate_skew(ink: np.ndarray) -> float:
    """The rotation (degrees, cv2 convention) that makes text lines horizontal.

    Text lines give the sharpest row profile of the ink when they are level; the search runs
    over ink pixel coordinates of a reduced mask, coarse then fine. The coarse search (whole
    degrees) takes the profile in ``SKEW_STRIPS`` upright strips of the page and sums their
    sharpness: over the whole width, the lines of two blocks side by side (a sender's address
    and a cramped handwritten address lower down) can line up with each other at a wrong angle
    (15 degrees off) and outscore each block's own lines, level. The fine search, a degree
    either way of it, takes the whole width, which resolves tenths of a degree best.
    """
    h, w = ink.shape
    factor = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = cv2.resize(np.multiply(ink, np.uint8(255), dtype=np.uint8), (max(1, int(w * factor)), max(1, int(h * factor))),
                       interpolation=cv2.INTER_AREA) > 64
    # Only text-sized marks vote: a stamp's filled picture or a long rule would outweigh the lines.
    count, labels, stats = components(small)
    heights, widths = stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_WIDTH]
    limit = max(8, int(0.06 * max(small.shape)))
    textlike = (heights >= 2) & (heights <= limit) & (widths <= 4 * limit)
    textlike[0] = False
    ys, xs = np.nonzero(textlike[labels])
    if len(xs) < 50:
        return 0.0
    if len(xs) > 40000:
        pick = np.random.default_rng(0).choice(len(xs), 40000, replace=False)
        xs, ys = xs[pick], ys[pick]
    strip = np.minimum(xs * SKEW_STRIPS // small.shape[1], SKEW_STRIPS - 1).astype(np.intp)
    xs = xs.astype(np.float32) - small.shape[1] / 2
    ys = ys.astype(np.float32) - small.shape[0] / 2
    bins = small.shape[0] * 2
    half = small.shape[0]

    def sharpness(angle: float, strips: int = 1) -> float:
        t = np.radians(angle)
        # A page tilted by t (cv2's counter-clockwise positive) has its lines level again in
        # rows y' = sin(t) x + cos(t) y.
        yr = np.sin(t) * xs + np.cos(t) * ys
        # np.histogram(yr, bins, range=(-height, height)) counted the quick way: one-pixel rows
        # whose edges are exact integers, so a point on an edge falls where np.histogram puts it.
        inside = (yr >= -half) & (yr <= half)
        yr = yr[inside]
        rows = np.floor(yr + half).astype(np.intp)
        rows -= yr < rows - half
        rows += yr >= rows + 1 - half
        rows = np.minimum(rows, bins - 1)
        if strips > 1:  # one profile per strip: each strip's rows counted apart
            rows = rows + bins * strip[inside]
        hist = np.bincount(rows, minlength=bins * strips).astype(np.float64)
        return float(np.sum(hist ** 2))

    coarse = np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 0.01, 1.0)
    best = float(coarse[int(np.argmax([sharpness(a, SKEW_STRIPS) for a in coarse]))])
    fine = np.arange(best - 1.0, best + 1.01, 0.1)
    return float(fine[int(np.argmax([sharpness(a) for a in fine]))])


def ink_mask(grey: np.ndarray, pencil: bool = True) -> np.ndarray:
    """Ink on the flattened page: darker than paper by ``INK_DEPTH``, and (``pencil``) the faint
    strokes a pencil leaves (``_pencil_strokes``)."""
    ink = grey < int(255 * (1.0 - INK_DEPTH))
    return ink | _pencil_strokes(grey, ink) if pencil else ink


def _pencil_strokes(grey: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Strokes of a pencil: the paper's grain lets only specks of graphite through as dark as
    ink, so at the ink depth a pencil's stroke is a trail of specks too small to be marks, or
    nothing, and the address is lost. At a fainter depth (``PENCIL_DEPTH``) the stroke is whole.
    A faint mark is a pencil's when it holds specks darker than ``PENCIL_SEED_DEPTH`` but is
    mostly fainter than ink (under ``PENCIL_INK_SHARE`` of its pixels: a pen's stroke holds
    mostly ink, and its faint edge is not added), and is shaped like writing: made of strokes,
    no taller than a line, not a long straight rule (a form's pale printed line).

    Made of strokes: it fills little of its box, or its widest stroke is narrow for its height.
    A soft pencil or a broad grey pen writes a 1, a 3 or a 4 filling half its box or more, as
    a solid patch (a stamp's picture, a tint) does; the patch is as thick as it is high."""
    faint = grey < int(255 * (1.0 - PENCIL_DEPTH))
    count, labels, stats = components(faint)
    seeded = np.bincount(labels[grey < int(255 * (1.0 - PENCIL_SEED_DEPTH))], minlength=count)
    inked = np.bincount(labels[ink], minlength=count)
    area = stats[:, cv2.CC_STAT_AREA]
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    pencil = ((seeded > 0) & (inked < PENCIL_INK_SHARE * area)
              & (h <= PENCIL_MAX_HEIGHT * min(grey.shape)) & (w <= PENCIL_MAX_ASPECT * h))
    pencil[0] = False
    for i in np.flatnonzero(pencil & (area > PENCIL_MAX_FILL * w * h)):
        pencil[i] = _widest_stroke(labels, stats[i], i) <= PENCIL_MAX_STROKE * h[i]
    return pencil[labels]


def _widest_stroke(labels: np.ndarray, stat: np.ndarray, i: int) -> float:
    """Twice the furthest any pixel of component ``i`` lies from paper."""
    x, y, w, h = (int(v) for v in stat[:4])
    own = np.pad((labels[y:y + h, x:x + w] == i).astype(np.uint8), 1)
    return 2.0 * float(cv2.distanceTransform(own, cv2.DIST_L2, 3).max())


# Printed form furniture: a straight rule at least this share of the page wide (and 40 px) and
# at most this thick, and the walls of the boxes and comb cells that stand between two rules.
# Sizes in pixels here are those of a page scanned at 200 dpi, scaled by the page's ``unit``.
RULE_MIN_WIDTH_SHARE = 1 / 30
RULE_MAX_THICKNESS = 4
CELL_MIN_HEIGHT, CELL_MAX_HEIGHT = 12, 220
FAINT_LINE_DEPTH = 0.1
# A comb's teeth (``_comb_teeth``): upright runs at least this long, looked for this far above
# a rule, at least this many in an evenly spaced row (three cells).
COMB_MIN_TOOTH = 6
COMB_REACH = 120
COMB_MIN_TEETH = 4
# ... and the writing in their cells stands at least this much taller than they do.
COMB_WRITING_TALLER = 1.25
# A frame drawn by hand round a code (``hand_frames``): at least this tall, this many times as
# wide as tall, inking at most this share of its box; its ink within this many stroke widths of
# its hull's edge along at least this share of that edge; and writing inside at least this share
# of the outline's ink, this share of it apart from the outline (a word's loops hold only itself).
FRAME_MIN_HEIGHT = 30
FRAME_MIN_ASPECT = 2.0
FRAME_MAX_FILL = 0.25
FRAME_BAND_STROKES = 2.0
FRAME_CLOSED = 0.85
FRAME_HELD_INK = 0.5
FRAME_HELD_APART = 0.25
# ... and in its end columns (this share of its width) it spans at least this share of its height.
FRAME_END_COLUMNS = 0.12
FRAME_END_SPAN = 0.4
# A frame found is painted out this many stroke widths deep from the outside.
FRAME_PEEL_STROKES = 1.5
# An outline this much of which is printed furniture is a printed box, not a frame drawn by hand.
FRAME_PRINTED_SHARE = 0.8


# Mail is 8 to 13 inches wide, so a page's width says roughly how finely it was scanned: pages
# wider than this many pixels (9 inches at 200 dpi, the generator's envelopes) count as scanned
# finer, and the form furniture's sizes in pixels grow with them (``unit``). A 300 dpi scan's
# rules are half as thick again as a 200 dpi scan's; looked for at the 200 dpi thickness, not
# one is found, and code cells' walls stay in the field to be read as ones.
UNIT_PAGE_WIDTH = 1800


def unit(page_width: int) -> float:
    """Pixels of the page for one pixel of a 200 dpi scan, judged from its width (never below 1:
    a page scanned coarser keeps the 200 dpi sizes, which its thinner lines still pass)."""
    return max(1.0, page_width / UNIT_PAGE_WIDTH)


def _px(size: float, scale: float) -> int:
    """A size in pixels of a 200 dpi scan, on a page of ``scale`` (``unit``)."""
    return int(round(size * scale))


def form_lines(ink: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The printed furniture in an ink mask: long thin straight horizontal rules (a form's
    writing line, an underline, the top and bottom of a box or a row of code cells), the
    vertical walls that run from one such rule to the one below it, and boxes printed one per
    digit (``_boxes``).

    People write codes on rules and into pre-printed cells; read with the digits, a rule joins
    a code to the words beside it and cell walls read as ones. A handwritten stroke is never
    straight and level for a thirtieth of the page, and a digit written in a cell does not
    touch both its top and its bottom, so neither is taken for furniture.
    """
    h, w = ink.shape
    mask = ink.astype(np.uint8)
    thickness = _px(RULE_MAX_THICKNESS, scale)
    cell_min, cell_max = _px(CELL_MIN_HEIGHT, scale), _px(CELL_MAX_HEIGHT, scale)
    length = max(_px(40, scale), int(w * RULE_MIN_WIDTH_SHARE))
    level = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    furniture = np.zeros((h, w), bool)
    (ox, oy), labels, stats = _level_runs(level)
    keep = np.zeros(len(stats), bool)
    for i in range(1, len(stats)):
        x, y, bw, bh = (int(v) for v in stats[i][:4])
        keep[i] = (bw >= length and _run_thickness(labels, i, stats[i], thickness) <= thickness
                   and _thin(ink, ox + x, oy + y, bw, bh, thickness))
    rules = [(ox + int(stats[i][0]), oy + int(stats[i][1]), int(stats[i][2]), int(stats[i][3]))
             for i in np.flatnonzero(keep)]
    if rules:
        furniture[oy:oy + labels.shape[0], ox:ox + labels.shape[1]] |= keep[labels]
    for top in rules:
        for bottom in rules:
            gap = bottom[1] - (top[1] + top[3])
            x0, x1 = max(top[0], bottom[0]), min(top[0] + top[2], bottom[0] + bottom[2])
            if not cell_min <= gap <= cell_max or x1 - x0 < 0.5 * min(top[2], bottom[2]):
                continue
            y0, y1 = top[1], bottom[1] + bottom[3]
            band = mask[y0:y1, x0:x1]
            walls = cv2.morphologyEx(band, cv2.MORPH_OPEN,
                                     cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, gap))))
            n, wall_labels, wall_stats = components(walls)
            wall = np.zeros(n, bool)
            for i in range(1, n):
                x, y, ww, wh = (int(v) for v in wall_stats[i][:4])
                wall[i] = ww <= thickness and y <= top[3] + 1 and y + wh >= (y1 - y0) - bottom[3] - 1
            furniture[y0:y1, x0:x1] |= wall[wall_labels]
    for rule in rules:
        _comb_teeth(mask, rule, furniture, scale)
    _boxes(mask, ink, level, furniture, scale)
    return furniture


def _comb_teeth(mask: np.ndarray, rule: tuple[int, int, int, int], furniture: np.ndarray, scale: float = 1.0) -> None:
    """Add to ``furniture`` the teeth of a comb standing on ``rule``: forms print a code's cells
    as a writing line with short ticks rising between the digits, and no top. A tooth is a thin
    upright run of ink standing on the rule, with little ink standing beside it; a comb is a row
    of at least ``COMB_MIN_TEETH`` of them, evenly spaced and about as tall. Handwriting stands on
    a rule too (the stem of a 1, 4 or 7), but not as a row of equal, evenly spaced strokes. A
    digit touching a tooth keeps its own ink: only the tooth's columns up to its height go."""
    x, y, w, h = rule
    reach, min_tooth, near = _px(COMB_REACH, scale), _px(COMB_MIN_TOOTH, scale), _px(3, scale)
    top = max(0, y - reach)
    rows = slice(top, y + h)
    cols = slice(x, x + w)
    furnished = furniture[rows, cols]
    standing = mask[rows, cols].astype(bool) & ~furnished
    # This rule's own rows (another rule above it is no foot for its teeth).
    on_rule = furnished[y - top:]
    has_rule = on_rule.any(axis=0)
    rule_top = (y - top) + np.argmax(on_rule, axis=0)  # the rule's first row in each column
    depth = min(reach, int(rule_top.max(initial=0)))
    if depth < min_tooth:
        return
    k = np.arange(1, depth + 1)[:, None]
    above = rule_top[None, :] - k  # row k above the rule, per column
    inked = standing[np.clip(above, 0, None), np.arange(w)[None, :]] & (above >= 0)
    run = np.cumprod(inked, axis=0).sum(axis=0) * has_rule
    tall = run >= min_tooth
    edges = np.flatnonzero(np.diff(np.concatenate(([0], tall.view(np.int8), [0]))))
    teeth = []
    for a, b in zip(edges[0::2], edges[1::2]):
        height = float(run[a:b].max())
        beside = np.concatenate((run[max(0, a - near):a], run[b:b + near]))
        # A tooth ends in paper: the stem of a 1 goes on, leaning, above its upright foot.
        tip = int(rule_top[a:b].min()) - int(height)
        over = standing[max(0, tip - near):max(0, tip), max(0, a - near):b + near]
        if (b - a <= _px(RULE_MAX_THICKNESS + 2, scale) and (not len(beside) or beside.max() < 0.5 * height)
                and not over.any()):
            teeth.append(((a + b) / 2.0, height, a, b))
    if len(teeth) < COMB_MIN_TEETH:
        return
    # How high the ink reaches above the rule in each column (0: none).
    highest = np.argmax(standing, axis=0)
    writing = np.where(standing.any(axis=0) & has_rule, rule_top - highest, 0)
    comb: dict[int, float] = {}
    for first in range(len(teeth)):
        for second in range(first + 1, len(teeth)):
            pitch = teeth[second][0] - teeth[first][0]
            if pitch < min_tooth:
                continue
            row = [teeth[first], teeth[second]]
            while True:
                want = row[-1][0] + pitch
                close = [t for t in teeth if abs(t[0] - want) <= max(2.0 * scale, 0.1 * pitch)]
                if not close:
                    break
                row.append(min(close, key=lambda t: abs(t[0] - want)))
            heights = np.array([t[1] for t in row])
            usual = float(np.median(heights))
            if (len(row) >= COMB_MIN_TEETH and np.all(np.abs(heights - usual) <= 0.3 * usual)
                    and _written_taller(writing, row, usual, _px(2, scale))):
                comb.update({t[2]: usual for t in row})
    for tooth in teeth:
        if tooth[2] not in comb:
            continue
        reach = int(np.ceil(1.2 * comb[tooth[2]]))
        for c in range(tooth[2], tooth[3]):
            up = min(int(run[c]), reach)
            furniture[top + rule_top[c] - up:top + rule_top[c], x + c] = True


def _written_taller(writing: np.ndarray, row: list, tooth_height: float, margin: int = 2) -> bool:
    """Whether the writing in the cells between a row of teeth stands taller than the teeth, as
    digits written into a comb do: a row of 1s standing on a rule has nothing in between."""
    cells = []
    for left, right in zip(row, row[1:]):
        inside = writing[left[3] + margin:max(left[3] + margin, right[2] - margin)]
        if len(inside) and inside.max() > 0:
            cells.append(float(inside.max()))
    return bool(cells) and float(np.median(cells)) >= COMB_WRITING_TALLER * tooth_height


def _run_thickness(labels: np.ndarray, i: int, stat: np.ndarray, thickness: int = RULE_MAX_THICKNESS) -> float:
    """How thick level run ``i`` is across (its median column): a rule on a page left a degree
    off level spans more rows than it is thick."""
    x, y, w, h = (int(v) for v in stat[:4])
    if h <= thickness:
        return float(h)
    columns = (labels[y:y + h, x:x + w] == i).sum(axis=0)
    return float(np.median(columns[columns > 0]))


def _level_runs(level: np.ndarray) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Components of a mostly empty mask, labelled only over the box that holds its pixels:
    ``((x, y) of that box, labels, stats)`` (a page-sized labelling costs more than the rest)."""
    points = cv2.findNonZero(level)
    if points is None:
        return (0, 0), np.zeros((1, 1), np.int32), np.zeros((1, 5), np.int32)
    x, y, w, h = cv2.boundingRect(points)
    _, labels, stats = components(level[y:y + h, x:x + w])
    return (x, y), labels, stats


def _boxes(mask: np.ndarray, ink: np.ndarray, long_level: np.ndarray, furniture: np.ndarray,
           scale: float = 1.0) -> None:
    """Add to ``furniture`` the printed boxes too short for a rule: one per digit, as forms print
    code cells apart. A box is two thin level edges of the same extent, one above the other, and
    two straight walls joining their ends, in a row of at least three alike; handwriting makes
    no such frame."""
    h, w = mask.shape
    short = max(_px(12, scale), w // 100)
    thickness = _px(RULE_MAX_THICKNESS, scale)
    cell_min, cell_max = _px(CELL_MIN_HEIGHT, scale), _px(CELL_MAX_HEIGHT, scale)
    aligned, beside, inside, level_with = _px(4, scale), _px(2, scale), _px(4, scale), _px(3, scale)
    level = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (short, 1)))
    level[long_level.astype(bool)] = 0
    (ox, oy), labels, stats = _level_runs(level)
    count = len(stats)
    edges = []
    for i in range(1, count):
        x, y, bw, bh = (int(v) for v in stats[i][:4])
        if bh <= thickness and bw >= short and _thin(ink, ox + x, oy + y, bw, bh, thickness):
            edges.append((ox + x, oy + y, bw, bh, i))
    edges.sort(key=lambda e: (e[0], e[1]))
    boxed = np.zeros(count, bool)
    found = []
    for k, first in enumerate(edges):
        for other in edges[k + 1:]:
            if other[0] - first[0] > aligned:
                break
            # On a page left a little tilted the bottom edge may start left of the top one.
            top, bottom = sorted((first, other), key=lambda e: e[1])
            gap = bottom[1] - (top[1] + top[3])
            if (abs((top[0] + top[2]) - (bottom[0] + bottom[2])) > aligned or not cell_min <= gap <= cell_max
                    or not 0.3 <= top[2] / gap <= 3.0):
                continue
            y0, y1 = top[1] + top[3], bottom[1]
            x0, x1 = min(top[0], bottom[0]), max(top[0] + top[2], bottom[0] + bottom[2])
            sides = [mask[y0:y1, max(0, x0 - beside):x0 + inside], mask[y0:y1, max(0, x1 - inside):min(w, x1 + beside)]]
            if not all(side.size and side.any(axis=1).mean() >= 0.9 for side in sides):
                continue
            # Both walls straight from edge to edge: the bowl of a printed D or O is no wall.
            upright = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(0.9 * gap))))
            walls = [cv2.morphologyEx(side, cv2.MORPH_OPEN, upright) for side in sides]
            if not all(wall.any() for wall in walls):
                continue
            found.append((top, bottom, y0, y1, walls, (max(0, x0 - beside), max(0, x1 - inside))))
    # Code boxes come in rows (a code has several digits); a lone frame is more likely a letter
    # (the serifs and stem of a printed D) than a form.
    for top, bottom, y0, y1, walls, lefts in found:
        row = [f for f in found if abs(f[0][1] - top[1]) <= level_with and abs((f[3] - f[2]) - (y1 - y0)) <= level_with]
        if len(row) < 3:
            continue
        boxed[top[4]] = boxed[bottom[4]] = True
        for wall, left in zip(walls, lefts):
            furniture[y0:y1, left:left + wall.shape[1]] |= wall.astype(bool)
    if boxed.any():
        furniture[oy:oy + labels.shape[0], ox:ox + labels.shape[1]] |= boxed[labels]


def _thin(ink: np.ndarray, x: int, y: int, width: int, height: int, thickness: int = RULE_MAX_THICKNESS) -> bool:
    """Whether the level run at ``(x, y, width, height)`` is a line of its own: along most of
    its length the ink through it is no thicker than the run itself (and its edge). The level
    bottom of a cursive word or of a broad pen's stroke is part of a thicker stroke; a printed
    rule is thicker only where writing touches it."""
    reach = 2 * thickness
    top = max(0, y - reach)
    band = ink[top:y + height + reach, x:x + width]
    row = y - top
    up = np.cumprod(band[row - 1::-1], axis=0).sum(axis=0) if row > 0 else np.zeros(width)
    down = np.cumprod(band[row + height:], axis=0).sum(axis=0)
    return float(np.mean(up + height + down <= height + max(2, thickness // 2))) >= 0.5


def hand_frames(ink: np.ndarray, printed: Optional[np.ndarray] = None) -> np.ndarray:
    """The frames people draw round a code by hand (a ring or a box about the digits): a thin
    outline that runs along the edge of its own convex hull nearly all the way round, with
    writing inside it. Read with the digits, a frame's sides are strokes the readers take for
    1s, and its top and bottom cut every digit's shape. Digits touching the frame are one ink
    component with it: only the outline along the hull's edge goes. A large handwritten O or 0
    is an outline too, but holds no writing; a handwritten word's ink leaves most of its hull's
    edge bare; a printed box or row of cells is left to ``form_lines`` (``printed``: its
    furniture), which keeps a digit's stroke where it crosses a rule."""
    frames = np.zeros(ink.shape, bool)
    count, labels, stats = components(ink)
    w_all, h_all, area_all = (stats[:, k].astype(np.int64) for k in (2, 3, 4))
    # Most of a page's components are specks and letters: sized out at once, not one by one.
    outlines = np.flatnonzero((h_all >= FRAME_MIN_HEIGHT) & (w_all >= FRAME_MIN_ASPECT * h_all)
                              & (area_all <= FRAME_MAX_FILL * w_all * h_all))
    for i in outlines[outlines > 0]:
        x, y, w, h, area = (int(v) for v in stats[i][:5])
        own = (labels[y:y + h, x:x + w] == i).astype(np.uint8)
        hull = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(own)), 1)
        stroke = 2.0 * float(np.median(cv2.distanceTransform(own, cv2.DIST_L2, 3)[own > 0]))
        band = max(3, int(round(FRAME_BAND_STROKES * stroke)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        core = cv2.erode(hull, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        edge = hull.astype(bool) & ~cv2.erode(hull, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT,
                                              borderValue=0).astype(bool)
        near = cv2.dilate(own, kernel).astype(bool)
        if not core.any() or (near & edge).sum() < FRAME_CLOSED * edge.sum():
            continue
        outline = own.astype(bool) & ~core
        held = ink[y:y + h, x:x + w].astype(bool) & core
        apart = held & ~own.astype(bool)  # writing inside that is not one stroke with the outline
        if (held.sum() < FRAME_HELD_INK * outline.sum() or apart.sum() < FRAME_HELD_APART * outline.sum()
                or not _closed_at_both_ends(outline)):
            continue
        layer = _outermost(own.astype(bool), int(np.ceil(FRAME_PEEL_STROKES * stroke)))
        if printed is not None and (printed[y:y + h, x:x + w] & layer).sum() >= FRAME_PRINTED_SHARE * layer.sum():
            continue
        frames[y:y + h, x:x + w] |= layer
    return frames


def _outermost(own: np.ndarray, depth: int) -> np.ndarray:
    """The outer layer of a shape, ``depth`` pixels deep, peeled from all four sides: in each
    column the first run of ink met from above and from below, in each row from the left and
    from the right, each cut to ``depth``. A frame is that layer wherever it runs (a hand-drawn
    box's side may lean inward); a digit touching it from inside loses no more than the stroke
    where they meet."""
    layer = np.zeros_like(own)
    for view in (lambda a: a, lambda a: a[::-1], lambda a: a.T, lambda a: a.T[::-1]):
        seen, out = view(own), view(layer)
        started = np.cumsum(seen, axis=0) > 0
        # Rows from the first ink on, while the run lasts: the run's start and its length.
        run = np.cumprod(seen | ~started, axis=0).astype(bool) & started
        out |= run & (np.cumsum(run, axis=0) <= depth)
    return layer


def _closed_at_both_ends(outline: np.ndarray) -> bool:
    """Whether an outline stands up at its left and right ends as a frame's sides do: in the
    end columns it spans a good part of its height (a rule with letters touching it lies flat
    there)."""
    h, w = outline.shape
    end = max(2, int(FRAME_END_COLUMNS * w))
    for side in (outline[:, :end], outline[:, w - end:]):
        rows = np.flatnonzero(side.any(axis=1))
        if not len(rows) or rows[-1] - rows[0] + 1 < FRAME_END_SPAN * h:
            return False
    return True


def without_form_lines(grey: np.ndarray, ink: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``grey`` and ``ink`` with the printed furniture (``form_lines``) painted out as paper,
    except where a stroke crosses it (ink just above and just below), so a digit written
    through a rule keeps its stroke whole; and with the frames drawn by hand round a code
    (``hand_frames``) painted out whole."""
    # Forms print their lines in light colours (and JPEG lightens thin lines further): they
    # are looked for down to a fainter grey than ink.
    faint = grey < int(255 * (1.0 - FAINT_LINE_DEPTH))
    furniture = form_lines(faint, scale)
    frames = hand_frames(ink, furniture)
    if frames.any():
        # The frame's own pixels and the grey fringe of its stroke, not the writing it holds.
        fringe = cv2.dilate(frames.astype(np.uint8), np.ones((_px(5, scale),) * 2, np.uint8)).astype(bool)
        held = ink & ~frames
        grey = grey.copy()
        grey[fringe & ~held] = 255
        ink = held
        furniture = form_lines(grey < int(255 * (1.0 - FAINT_LINE_DEPTH)), scale)
    if not furniture.any():
        return grey, ink
    grown = cv2.dilate(furniture.astype(np.uint8), np.ones((_px(3, scale),) * 2, np.uint8)).astype(bool)
    rest = ink & ~grown
    reach = _px(RULE_MAX_THICKNESS, scale) + 1
    above = np.zeros_like(rest)
    below = np.zeros_like(rest)
    above[reach:] = rest[:-reach]
    below[:-reach] = rest[reach:]
    erase = grown & ~(above & below)
    grey = grey.copy()
    grey[erase] = 255
    return grey, ink & ~erase


def prepare(image: np.ndarray) -> CleanPage:
    """The clean page the pipeline reads: flattened, denoised, deskewed, with its ink mask."""
    grey = to_grey(image)
    h, w = grey.shape
    flat = denoise(flatten(grey))
    # The tilt from the ink alone: a pencil's specks lie along its lines too, and faint marks
    # (a pale printed rule, a stamp's picture) have no say in it.
    skew = estimate_skew(ink_mask(flat, pencil=False))
    # Undo the tilt: rotating the page by -skew makes lines level. The canvas grows so no
    # corner of the page (a sender address close to the edge) is cut off.
    angle = -skew
    if abs(angle) < 0.2:
        identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        flat, ink = without_form_lines(flat, ink_mask(flat), unit(w))
        return CleanPage(flat, ink, 0.0, identity, (w, h))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    clean = cv2.warpAffine(flat, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=255)
    to_page = cv2.invertAffineTransform(m)
    clean, ink = without_form_lines(clean, ink_mask(clean), unit(w))
    return CleanPage(clean, ink, skew, to_page, (w, h))
