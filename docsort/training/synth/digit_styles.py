"""Digit shapes of writing conventions MNIST's writers did not use, drawn onto real MNIST digits.

MNIST was written by American Census staff and students: a 1 is one stroke and a 7 has no bar.
Much of the world writes otherwise, and a reader trained only on MNIST takes those digits for
others: in most of continental Europe (German, French, Dutch, Scandinavian and Italian schools) a
1 starts with a long up-stroke from the left, so it looks like an American 7 without its bar,
and the 7 is crossed through its stem so it stays apart from that 1. Some writers also set a 1
on a foot (a short base bar), and cross a 0 or a Z-like 2 (rarer, left out).

These functions add the missing strokes to a real MNIST digit, in that digit's own pen: the
stroke is as wide as the digit's strokes and anti-aliased like them, so the network cannot tell
the added stroke by its look. A writer keeps a convention: ``Convention`` draws per writer which
of them they use, and ``restyle`` applies it to every digit they write.

Only 1s and 7s change; every other digit passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

INK = 128  # a pixel at or above this level (of 255) is stroke


@dataclass(frozen=True)
class Convention:
    """How one writer shapes the digits MNIST writes one way only."""

    flagged_one: bool = False  # 1 with a long up-stroke from the left (continental)
    footed_one: bool = False  # 1 on a short base bar
    crossed_seven: bool = False  # 7 crossed through its stem

    @property
    def plain(self) -> bool:
        return not (self.flagged_one or self.footed_one or self.crossed_seven)

    @staticmethod
    def draw(rng: np.random.Generator, share: float = 0.5) -> "Convention":
        """A writer: with probability ``share`` a continental hand (flagged 1, and most of them a
        crossed 7; now and then a foot), otherwise MNIST's own habits."""
        if rng.random() >= share:
            return Convention()
        flagged, footed = rng.random() < 0.9, rng.random() < 0.2
        # The bar through the 7 is there to tell it from the flagged 1: a hand that flags its 1s
        # nearly always crosses its 7s, so a plain 7 stays a 7 from any writer.
        crossed = rng.random() < (0.95 if flagged else 0.8)
        # A continental hand keeps at least one of the habits (the crossed 7 if it drew none).
        return Convention(flagged_one=flagged, footed_one=footed, crossed_seven=crossed or not (flagged or footed))


def stroke_width(digit: np.ndarray) -> float:
    """The digit's pen width in pixels: its stroke area over its stroke length (the skeleton)."""
    from skimage.morphology import skeletonize

    mask = np.asarray(digit) >= INK
    area = int(mask.sum())
    if area == 0:
        return 1.0
    length = int(skeletonize(mask).sum())
    return float(np.clip(area / max(1, length), 1.0, 6.0))


def _line(digit: np.ndarray, start, end, width: float) -> np.ndarray:
    """``digit`` with an anti-aliased stroke of ``width`` px from ``start`` to ``end`` (x, y)."""
    scale = 8  # sub-pixel end points for cv2's fixed-point drawing
    canvas = np.zeros_like(digit, dtype=np.uint8)
    p0 = (int(round(start[0] * scale)), int(round(start[1] * scale)))
    p1 = (int(round(end[0] * scale)), int(round(end[1] * scale)))
    cv2.line(canvas, p0, p1, 255, max(1, int(round(width))), cv2.LINE_AA, shift=3)
    if width < 1.5:  # a thin pen: soften to MNIST's grey rim
        canvas = cv2.GaussianBlur(canvas, (3, 3), 0.5)
    return np.maximum(np.asarray(digit, np.uint8), canvas)


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask.any(axis=1))


def _centre_x(mask: np.ndarray, y: int) -> Optional[float]:
    cols = np.flatnonzero(mask[y])
    return float(cols.mean()) if cols.size else None


def flag_one(digit: np.ndarray, rng: np.random.Generator, width: Optional[float] = None) -> np.ndarray:
    """A 1 with the continental up-stroke: from the top of the stem down to the left, 30-50 % of
    the digit's height long, 30-55 degrees below the horizontal. Steeper and shorter than the
    level bar of a 7: a flag drawn as long and flat as that bar makes the 1 a 7 in any hand."""
    mask = np.asarray(digit) >= INK
    rows = _rows(mask)
    if rows.size < 4:
        return digit
    top, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    x_top = _centre_x(mask, top)
    width = stroke_width(digit) if width is None else width
    length = height * rng.uniform(0.3, 0.5)
    angle = np.deg2rad(rng.uniform(30, 55))
    start = (x_top, top + 0.3 * width)
    end = (x_top - length * np.cos(angle), top + length * np.sin(angle))
    return _line(digit, start, end, width)


def foot_one(digit: np.ndarray, rng: np.random.Generator, width: Optional[float] = None) -> np.ndarray:
    """A 1 set on a short base bar, centred under the stem's foot, 35-60 % of its height wide."""
    mask = np.asarray(digit) >= INK
    rows = _rows(mask)
    if rows.size < 4:
        return digit
    bottom, height = int(rows[-1]), int(rows[-1] - rows[0] + 1)
    x_foot = _centre_x(mask, bottom)
    width = stroke_width(digit) if width is None else width
    half = height * rng.uniform(0.35, 0.6) / 2
    tilt = height * rng.uniform(-0.04, 0.04)
    y = bottom - 0.3 * width
    return _line(digit, (x_foot - half, y + tilt), (x_foot + half, y - tilt), width)


def cross_seven(digit: np.ndarray, rng: np.random.Generator, width: Optional[float] = None) -> np.ndarray:
    """A 7 crossed through its stem about mid-height, by a bar 35-55 % of its height long, a
    little tilted."""
    mask = np.asarray(digit) >= INK
    rows = _rows(mask)
    if rows.size < 6:
        return digit
    top, bottom = int(rows[0]), int(rows[-1])
    height = bottom - top + 1
    y = int(round(top + height * rng.uniform(0.4, 0.55)))
    x_stem = _centre_x(mask, y)
    if x_stem is None:
        return digit
    width = stroke_width(digit) if width is None else width
    half = height * rng.uniform(0.35, 0.55) / 2
    centre = x_stem + half * rng.uniform(-0.15, 0.2)
    tilt = half * np.tan(np.deg2rad(rng.uniform(-10, 6)))
    return _line(digit, (centre - half, y + tilt), (centre + half, y - tilt), width)


def restyle(digit: np.ndarray, label: int, convention: Convention, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit (ink high, uint8) as a writer of ``convention`` would write it; the label
    is unchanged. The digit is framed again as MNIST frames its digits (``_trim``)."""
    if convention.plain or label not in (1, 7):
        return digit
    digit = np.asarray(digit, np.uint8)
    width = stroke_width(digit)
    # Room for a stroke that leaves the 28 x 28 frame; trimmed back to the ink by the callers.
    pad = digit.shape[0] // 2
    out = np.pad(digit, pad)
    if label == 1:
        if convention.flagged_one:
            out = flag_one(out, rng, width)
        if convention.footed_one:
            out = foot_one(out, rng, width)
    elif convention.crossed_seven:
        out = cross_seven(out, rng, width)
    return _trim(out, digit.shape)


def _trim(digit: np.ndarray, shape) -> np.ndarray:
    """Back to ``shape`` (MNIST's 28 x 28), framed as MNIST framed its digits (``mnist_format.frame``)."""
    from docsort.reading.digits.mnist_format import frame

    ys, xs = np.nonzero(digit)
    if ys.size == 0:
        return np.zeros(shape, np.uint8)
    box = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255.0
    return np.clip(np.round(frame(box) * 255.0), 0, 255).astype(np.uint8).reshape(shape)


def restyle_many(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 convention: Optional[Convention] = None, share: float = 0.5) -> np.ndarray:
    """Every 1 and 7 of ``images`` restyled; one ``convention`` for all (one writer), or a fresh
    writer drawn for each digit when None."""
    out = np.array(images, copy=True)
    for i in np.flatnonzero(np.isin(labels, (1, 7))):
        writer = convention if convention is not None else Convention.draw(rng, share)
        out[i] = restyle(out[i], int(labels[i]), writer, rng)
    return out
