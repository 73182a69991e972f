"""Word regions of a page, built from the ink itself and labelled with Tesseract's text.

Tesseract cuts printed text into words well but handwriting badly: it splits one handwritten
postal code into several boxes, glues it to the city beside it, or misses faint strokes
altogether. A number field has to reach the digit reader whole, so the regions here come
from connected components of the ink: marks on one line that lie closer than about half their
height belong to one word (digits of a code do; a code and its city, written a space apart,
do not), small marks above a word (dots, umlauts, a detached bar of a 5) join it. Tesseract's
words are then attached to the regions that contain them, and Tesseract words with no ink
region of their own (faint print) become regions too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from docsort.page.clean import INK_DEPTH, components
from docsort.page.destination import union_box
from docsort.page.tesseract import TesseractWord

from docsort.batch.records import BBox

# Marks on one line closer than this share of the taller one's height belong to one word.
WORD_GAP = 0.5
# Marks overlapping vertically by this share of the shorter one are on the same line.
LINE_OVERLAP = 0.35
MIN_SPECK_AREA = 12
# A block of marks this many times taller than its letters holds more than one line.
TOO_TALL = 1.7
# Text is lower than this share of the page's short side (stamps and postmarks are taller).
MAX_TEXT_HEIGHT = 0.1
MIN_TEXT_HEIGHT = 8
# For Tesseract, anything this much darker than the flattened paper may be print (faint print
# the ink mask misses included), and marks closer than this many text heights are read together.
FAINT_DEPTH = 0.08
AREA_JOIN = 2.0
TYPICAL_TEXT_HEIGHT = 24  # a word of 10 pt print at 200 dpi, for a page with no word region


@dataclass
class TextRegion:
    """One word-sized region of ink on the clean page, with Tesseract's reading when it had one."""

    bbox: BBox
    words: list[TesseractWord] = field(default_factory=list)

    @property
    def text(self) -> Optional[str]:
        return " ".join(w.text for w in self.words) if self.words else None

    @property
    def tesseract_conf(self) -> float:
        confs = [w.conf for w in self.words if w.conf >= 0]
        return float(min(confs)) if confs else -1.0


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def ink_components(ink: np.ndarray) -> np.ndarray:
    """Bounding boxes (n, 4: x, y, w, h) and areas (n,) of the ink's connected components."""
    return _marks(components(ink)[2])


def _marks(stats: np.ndarray) -> np.ndarray:
    """OpenCV's component stats without the background and the specks."""
    stats = stats[1:]
    return stats[stats[:, cv2.CC_STAT_AREA] >= MIN_SPECK_AREA]


def group_words(stats: np.ndarray, max_height: float) -> list[BBox]:
    """Join ink components into word boxes (see the module doc for the rules)."""
    keep = (stats[:, 3] <= max_height) & (stats[:, 2] <= 25 * np.maximum(stats[:, 3], 1))
    s = stats[keep].astype(np.float64)
    if len(s) == 0:
        return []
    boxes = []
    for members in _link(s, strict=False):
        if _too_tall(s[members]):
            # Two lines chained together (a descender touching the line below): regroup
            # the members line by line.
            for part in _link(s[members], strict=True):
                boxes.append(_box(s[members][part]))
        else:
            boxes.append(_box(s[members]))
    return boxes


def _box(s: np.ndarray) -> BBox:
    x0, y0 = s[:, 0].min(), s[:, 1].min()
    x1, y1 = (s[:, 0] + s[:, 2]).max(), (s[:, 1] + s[:, 3]).max()
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def _too_tall(s: np.ndarray) -> bool:
    """A word is about as tall as its tallest letters; much taller means several lines."""
    h = s[:, 3]
    letters = h[h >= LETTER_SHARE * h.max()]
    top, bottom = s[:, 1].min(), (s[:, 1] + s[:, 3]).max()
    return len(s) > 1 and (bottom - top) > TOO_TALL * float(np.median(letters))


def _link(s: np.ndarray, strict: bool) -> list[list[int]]:
    """Groups of component indices that form words; ``strict`` joins only marks on one line."""
    n = len(s)
    x0, y0, w, h = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    x1, y1 = x0 + w, y0 + h
    uf = _UnionFind(n)
    gap = np.maximum(x0[None, :] - x1[:, None], x0[:, None] - x1[None, :])
    overlap_v = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    taller = np.maximum(h[:, None], h[None, :])
    shorter = np.minimum(h[:, None], h[None, :])
    if strict:
        cy = y0 + h / 2
        same_line = ((overlap_v >= 0.6 * shorter) & (gap <= WORD_GAP * taller)
                     & (np.abs(cy[:, None] - cy[None, :]) <= 0.5 * taller))
        links = same_line
    else:
        same_line = (overlap_v >= LINE_OVERLAP * shorter) & (gap <= WORD_GAP * taller)
        # A small mark just above or below a bigger one it overlaps horizontally (i-dots,
        # umlauts, the loose bar of a handwritten 5 or 7).
        overlap_h = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
        vgap = np.maximum(y0[None, :] - y1[:, None], y0[:, None] - y1[None, :])
        area = w * h
        smaller_share = (np.minimum(area[:, None], area[None, :])
                         / np.maximum(np.maximum(area[:, None], area[None, :]), 1))
        attached = (overlap_h > 0) & (vgap <= 0.3 * taller) & (smaller_share < 0.2)
        links = same_line | attached
    ii, jj = np.nonzero(np.triu(links, 1))
    for i, j in zip(ii.tolist(), jj.tolist()):
        uf.union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    return list(groups.values())


def _looks_like_text(box: BBox, max_height: float) -> bool:
    x, y, w, h = box
    if h < MIN_TEXT_HEIGHT or h > max_height:
        return False
    if w > 40 * h:  # a rule or a postmark's cancel line
        return False
    return w >= 0.15 * h


def _contains(box: BBox, word: TesseractWord, margin: int = 3) -> bool:
    x, y, w, h = box
    wx, wy, ww, wh = word.bbox
    cx, cy = wx + ww / 2, wy + wh / 2
    return x - margin <= cx <= x + w + margin and y - margin <= cy <= y + h + margin


def _overlap_share(box: BBox, other: BBox) -> float:
    """Share of ``box``'s area covered by ``other``."""
    x, y, w, h = box
    ox, oy, ow, oh = other
    iw = min(x + w, ox + ow) - max(x, ox)
    ih = min(y + h, oy + oh) - max(y, oy)
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / float(max(1, w * h))


def ink_regions(ink: np.ndarray) -> list[TextRegion]:
    """The page's word regions found in its ink alone, before any Tesseract word is attached."""
    page_h, page_w = ink.shape
    max_height = MAX_TEXT_HEIGHT * min(page_h, page_w)
    found = components(ink)
    parted = lines_apart(ink, found)
    stats = found[2] if parted is ink else components(parted)[2]  # found again only where cut
    boxes = [b for b in group_words(_marks(stats), max_height) if _looks_like_text(b, max_height)]
    return [TextRegion(b) for b in boxes]


# Two lines of a block: peaks of its row profile (smoothed over a sixth of a line) holding at least
# LINE_PEAK_SHARE of the fullest row, at least LINE_APART of a line's height apart, the emptiest row
# between them at most VALLEY_SHARE of the lesser peak, and each side of it at least
# LINE_INK_SHARE of the block's ink (a capital's bar above a word's letters is no line). The cut
# runs in the middle LINE_SEAM_BAND of the rows between the two peaks.
LINE_PEAK_SHARE = 0.2
LINE_APART = 0.6
VALLEY_SHARE = 0.6
LINE_INK_SHARE = 0.2
LINE_SEAM_BAND = 0.6
# The percentile of a block's mark heights taken as its line height.
LINE_HEIGHT_PERCENTILE = 75
# Two lines are joined by a few strokes; a cut along one line's middle crosses its letters or
# digits, at least one every JOIN_SPACING line heights of its width.
JOIN_SPACING = 0.75
# A seam's cost of a row away from the valley, per column and row (a tie-breaker: a stroke is 3-5 px).
SEAM_PULL = 0.002
# Letters at least this share of a block's tallest mark set its height (``_too_tall``).
LETTER_SHARE = 0.5


def lines_apart(ink: np.ndarray, found: Optional[tuple] = None) -> np.ndarray:
    """The ink with lines of writing that touch parted.

    Cramped hands write a line's descenders into the next line's letters. Words are grouped from
    connected components, and marks of two lines that touch are one component: the block they
    chain together cannot be regrouped line by line (``group_words``), so it would make one region
    two lines tall, too tall to be a word, and a code written under its place would be lost in it.
    Such a block is cut along the path that crosses the least ink between the two lines' bodies
    (``_line_gaps``, ``_seam``), and the marks are found again. ``found``: ``components(ink)``
    when the caller has it. Returns ``ink`` itself when nothing is cut."""
    count, labels, stats = components(ink) if found is None else found
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= MIN_SPECK_AREA)
    keep = keep[keep > 0]
    marks = stats[keep].astype(np.float64)
    out = None
    for members in _link(marks[:, :4], strict=False):
        s = marks[members]
        # The line's height from its marks, dots and specks left out, high in their range (a
        # word comes in pieces, letters without ascenders lowest): the marks that join two lines
        # are few, and would set it themselves if only the tallest counted (``_too_tall``).
        heights = s[:, 3][s[:, 3] >= 2 * MIN_TEXT_HEIGHT]
        if len(heights) < 2:
            continue
        line_height = float(np.percentile(heights, LINE_HEIGHT_PERCENTILE))
        if _box(s)[3] <= TOO_TALL * line_height:
            continue
        # Marks on one line group line by line; a group still too tall holds the marks that
        # join two lines, and only its own marks are cut.
        for part in _link(s, strict=True):
            x, y, w, h = _box(s[part])
            if h <= TOO_TALL * line_height:
                continue
            block = np.isin(labels[y:y + h, x:x + w], keep[np.asarray(members)[part]])
            cols = np.arange(w)
            for top, bottom, valley in _line_gaps(block.sum(axis=1), line_height):
                rows = top + _seam(block[top:bottom], valley - top)
                # Two rows thick: a stroke crossing where the seam steps a row cannot stay joined.
                cut = [np.minimum(rows + dy, h - 1) for dy in (0, 1)]
                crossed = block[cut[0], cols] | block[cut[1], cols]
                strokes = int(np.count_nonzero(np.diff(crossed.astype(np.int8), prepend=0) == 1))
                if strokes > w / (JOIN_SPACING * line_height):
                    continue  # through one line's letters (the middle of a row of digits), not between two
                if out is None:
                    out = ink.copy()
                for r in cut:
                    out[y + r, x + cols] &= ~block[r, cols]
    return ink if out is None else out


def _seam(gap: np.ndarray, valley: int) -> np.ndarray:
    """The path across ``gap`` (rows between two lines' bodies) that crosses the least ink, one
    row per column, stepping at most a row from column to column. Of paths crossing as much ink,
    the one nearest the ``valley`` row (the emptiest between the lines) is taken: a stroke
    joining two lines is cut where it leaves one line's ink for the other's, not at one end."""
    rows, width = gap.shape
    pull = SEAM_PULL * np.abs(np.arange(rows, dtype=np.float32) - valley)
    gap = gap + pull[:, None]
    cost = gap[:, 0].astype(np.float32)
    back = np.zeros((rows, width), np.int8)
    step = 0.05  # a step costs a little, so the path runs level where the paper is empty anyway
    for c in range(1, width):
        up = np.concatenate(([np.inf], cost[:-1])) + step
        down = np.concatenate((cost[1:], [np.inf])) + step
        choice = np.argmin(np.stack([up, cost, down]), axis=0)
        back[:, c] = choice - 1
        cost = np.choose(choice, [up, cost, down]) + gap[:, c]
    path = np.zeros(width, np.int64)
    path[-1] = int(np.argmin(cost))
    for c in range(width - 1, 0, -1):
        path[c - 1] = path[c] + back[path[c], c]
    return path


def _line_gaps(profile: np.ndarray, line_height: float) -> list[tuple[int, int, int]]:
    """The rows (first, last + 1) to cut in between each two lines of writing a block's row
    profile holds (see ``LINE_PEAK_SHARE``), and the emptiest row between them."""
    size = max(3, int(round(line_height / 6)) | 1)
    p = np.convolve(profile.astype(np.float64), np.ones(size) / size, mode="same")
    h = len(p)
    if h < 3 or p.max() <= 0:
        return []
    lines: list[int] = []
    for r in np.flatnonzero((p[1:-1] >= p[:-2]) & (p[1:-1] > p[2:])) + 1:
        if p[r] < LINE_PEAK_SHARE * p.max():
            continue
        if lines and r - lines[-1] < LINE_APART * line_height:
            if p[r] > p[lines[-1]]:
                lines[-1] = int(r)
        else:
            lines.append(int(r))
    total = float(profile.sum())
    cuts = []
    for a, b in zip(lines, lines[1:]):
        valley = a + int(np.argmin(p[a:b]))
        above = float(profile[:valley].sum())
        if (p[valley] <= VALLEY_SHARE * min(p[a], p[b]) and above >= LINE_INK_SHARE * total
                and total - above >= LINE_INK_SHARE * total):
            margin = int((b - a) * (1.0 - LINE_SEAM_BAND) / 2)
            cuts.append((a + margin, b - margin, valley))
    return cuts


def attach_words(regions: list[TextRegion], words: list[TesseractWord]) -> list[TextRegion]:
    """Give each Tesseract word to the smallest region holding it; a confident word with no
    region of its own (print too faint for the ink mask) becomes a region, appended to
    ``regions`` and returned."""
    added = []
    for word in words:
        holders = [r for r in regions if _contains(r.bbox, word)]
        if holders:
            min(holders, key=lambda r: r.bbox[2] * r.bbox[3]).words.append(word)
        elif word.conf >= 60 and any(c.isalnum() for c in word.text):
            if not any(_overlap_share(word.bbox, r.bbox) > 0.5 for r in regions):
                region = TextRegion(word.bbox, [word])
                regions.append(region)
                added.append(region)
    for r in regions:
        r.words.sort(key=lambda w: w.bbox[0])
    return added


def reading_order(regions: list[TextRegion]) -> list[int]:
    """Indices of ``regions`` top to bottom, left to right."""
    return sorted(range(len(regions)), key=lambda i: (regions[i].bbox[1] + regions[i].bbox[3] / 2, regions[i].bbox[0]))


def without_handwriting(grey: np.ndarray, handwritten: list[BBox], printed: list[BBox], margin: int = 2) -> np.ndarray:
    """The clean page with its handwritten regions whitened (printed ones kept whole), for
    Tesseract: the digit readers read handwriting, and Tesseract's attempts at it cost most of
    its time on a handwritten envelope. ``margin``: a stroke's anti-aliased edge lies just
    outside the ink mask that drew its region's box."""
    if not handwritten:
        return grey
    out = grey.copy()
    height, width = grey.shape[:2]
    for x, y, w, h in handwritten:
        out[max(0, y - margin):min(height, y + h + margin), max(0, x - margin):min(width, x + w + margin)] = 255
    for x, y, w, h in printed:
        out[y:y + h, x:x + w] = grey[y:y + h, x:x + w]
    return out


def reading_areas(grey: np.ndarray, printed: list[BBox], text_heights: list[int]) -> list[BBox]:
    """The parts of a page (its handwriting whitened) worth Tesseract's reading.

    Marks darker than paper, grouped by proximity (``AREA_JOIN`` times the median of
    ``text_heights``, the heights of the page's word regions) into areas. An area is read when
    it holds a printed region, or when it holds no ink at all and its marks are a word in size:
    faint print, too light for the ink mask, lies in such areas. Blank paper is not read, nor
    ink that made no printed region (stamps, postmarks, what is left around handwriting), nor
    specks: Tesseract's page analysis costs per pixel, and its words there are junk that would
    stand as regions of their own.
    Analysis runs on a copy reduced ``f`` times.
    """
    f = 4
    height, width = grey.shape[:2]

    def cells(depth: float) -> np.ndarray:
        """f x f cells with a few of their pixels this dark: a stroke crosses them, a speck of
        paper grain does not."""
        dark = cv2.threshold(grey, int(255 * (1.0 - depth)) - 1, 255, cv2.THRESH_BINARY_INV)[1]
        return cv2.blur(dark, (f, f), anchor=(0, 0))[::f, ::f] >= 48

    marks, ink = cells(FAINT_DEPTH), cells(INK_DEPTH)
    text_height = float(np.median(text_heights)) if len(text_heights) else TYPICAL_TEXT_HEIGHT
    k = max(3, int(round(AREA_JOIN * text_height / f)) | 1)
    grown = cv2.dilate(marks.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    _, _, stats = components(grown)
    areas = []
    for x, y, w, h in stats[1:, :4].tolist():
        x0, y0, x1, y1 = max(0, (x - 1) * f), max(0, (y - 1) * f), min(width, (x + w + 1) * f), min(height, (y + h + 1) * f)
        area = (x0, y0, x1 - x0, y1 - y0)
        # The marks themselves, without the growth that joined them: faint print is a word wide.
        word_sized = (w - k + 1) * f >= text_height and (h - k + 1) * f >= text_height / 2
        if any(_overlap_share(box, area) > 0 for box in printed) or \
                (word_sized and not ink[y:y + h, x:x + w].any()):
            areas.append(area)
    return _apart(areas)


def _apart(boxes: list[BBox]) -> list[BBox]:
    """Boxes that overlap joined into one, until none do. The boxes of marks that do not touch
    can still overlap (grainy or coloured paper leaves many marks round a block): read twice,
    each word would come back twice, and a code line twice over holds too many digits for a
    code."""
    out = list(boxes)
    joined = True
    while joined:
        joined = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if _overlap_share(out[i], out[j]) > 0:
                    out[i] = union_box((out[i], out.pop(j)))
                    joined = True
                    break
            if joined:
                break
    return out


def cut(grey: np.ndarray, bbox: BBox, margin: int = 4) -> np.ndarray:
    """The crop of ``bbox`` from the clean page with a little paper around it."""
    x, y, w, h = bbox
    ph, pw = grey.shape[:2]
    return grey[max(0, y - margin):min(ph, y + h + margin), max(0, x - margin):min(pw, x + w + margin)]


def field_ink(grey: np.ndarray, bbox: BBox, ink_depth: float = 0.28) -> np.ndarray:
    """Ink intensity (0..1, ink high) of a number field, for the digit reader."""
    crop = cut(grey, bbox, margin=2).astype(np.float32)
    return np.clip((255.0 - crop) / 255.0, 0, 1)
