"""Turn any cut-out digit image into the 28x28 MNIST format the digit reader was trained on.

A digit cut from a scanned page differs from an MNIST sample in every way that matters to a
network: dark ink on light paper, arbitrary size and aspect, speckles, JPEG blocking, faint or
heavy strokes. ``to_mnist`` repeats the recipe NIST/MNIST used for its own samples so the reader
sees what it learnt from: ink high on a zero background, the ink bounding box scaled so its
longer side is 20 px (aspect kept, anti-aliased), placed in 28x28 by its centre of mass.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

SIZE = 28
BOX = 20
# Mean centre of mass (row, col) of the MNIST training digits in pixel-index coordinates.
MNIST_CENTRE = (14.0, 14.0)
# Ink contrast below this (on a 0..1 scale) means the image holds no digit.
MIN_CONTRAST = 0.08
# ... and ink must stand this many noise deviations above the paper.
NOISE_MARGIN = 6.0
# Components smaller than this share of the largest one are speckle, not strokes.
SPECKLE_SHARE = 0.06
# MNIST strokes are about this wide in the 20 px box; much thinner or thicker ink is brought closer.
MNIST_STROKE = 2.6
# Faint ink: a mask level this far above the paper's noise (in noise deviations), and at least
# this share of full ink.
FAINT_INK_NOISE = 4.0
FAINT_INK = 0.2


def to_mnist(image: np.ndarray) -> np.ndarray:
    """One digit image (grey, colour, bool; either polarity; any size) -> 28x28 float32 in [0, 1]."""
    grey = _as_grey(image)
    if grey.size == 0 or min(grey.shape) < 1:
        return blank()
    ink = _ink_high(grey)
    if float(ink.max()) < MIN_CONTRAST:
        return blank()
    mask = _stroke_mask(ink)
    if mask is None:
        return blank()
    mask8 = mask.view(np.uint8)
    x0, y0, w, h = cv2.boundingRect(mask8)
    y1, x1 = y0 + h, x0 + w
    # Keep the anti-aliased rim of the kept strokes; everything else (speckle, paper) goes to zero.
    rim = cv2.dilate(mask8[y0:y1, x0:x1], _SQUARE3, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    digit = ink[y0:y1, x0:x1] * rim
    digit = _normalise_stroke(digit, mask[y0:y1, x0:x1])
    return frame(digit)


def frame(ink: np.ndarray) -> np.ndarray:
    """Ink cropped to its box (float, ink high) -> 28x28 as MNIST framed its digits: the longer
    side scaled to 20 px, the centre of mass on MNIST's centre. The strokes are left as they are."""
    return _place(_fit_box(ink))


def to_mnist_batch(images: Iterable[np.ndarray]) -> np.ndarray:
    """Many digit images -> (n, 28, 28) float32, ready for ``DigitReader.predict_proba``."""
    out = [to_mnist(img) for img in images]
    if not out:
        return np.zeros((0, SIZE, SIZE), np.float32)
    return np.stack(out)


def blank() -> np.ndarray:
    return np.zeros((SIZE, SIZE), np.float32)


def _as_grey(image: np.ndarray) -> np.ndarray:
    """Any array a page or a file can give -> 2-D float32 in [0, 1] (paper colour unknown yet)."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.float32)
    elif img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / max(float(np.iinfo(img.dtype).max), 1.0)
    else:
        img = img.astype(np.float32)
        finite = bool(np.isfinite(img).all())
        if img.size and float(img.max() if finite else np.nanmax(img)) > 1.0:
            img = img / 255.0
        if not finite:
            img = np.nan_to_num(img)
    if img.ndim == 3:
        if img.shape[2] == 4:
            # Transparent pixels are paper: composite over white, as a viewer shows the crop.
            alpha = img[..., 3:4]
            img = img[..., :3] * alpha + (1.0 - alpha)
        if img.shape[2] >= 3:
            img = img[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        else:
            img = img[..., 0]
    if img.ndim != 2:
        return np.zeros((0, 0), np.float32)
    return np.clip(img, 0.0, 1.0, dtype=np.float32)


def _ink_high(grey: np.ndarray) -> np.ndarray:
    """Paper to 0 and the darkest/brightest ink to 1, whichever polarity the scan has.

    The paper is what fills the border of a cut-out digit; if the border is ambiguous (the digit
    touches it everywhere) the paper is the majority of the image.
    """
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    paper = _median(border)
    levels = np.bincount((grey * 255 + 0.5).astype(np.uint8).ravel(), minlength=256)
    middle = float(np.searchsorted(np.cumsum(levels), grey.size / 2)) / 255
    if abs(paper - middle) > 0.25:
        paper = middle
    light_paper = paper >= 0.5 if abs(paper - 0.5) > 0.05 else float(grey.mean()) >= 0.5
    ink = np.maximum((paper - grey) if light_paper else (grey - paper), 0.0)
    # Full ink is what most clearly-inked pixels reach, so one dark speck does not set the scale.
    strongest = float(ink.max())
    if strongest <= 0:
        return np.zeros_like(grey)
    inked = ink[ink > 0.5 * strongest]
    top = _percentile(inked, 90) if inked.size >= 20 else strongest
    if top < MIN_CONTRAST or not _ink_above_noise(grey, paper, light_paper):
        return np.zeros_like(grey)  # paper grain and sensor noise, no ink
    return np.minimum(ink / top, 1.0)


def _ink_above_noise(grey: np.ndarray, paper: float, light_paper: bool) -> bool:
    """Whether any ink stands clearly above the paper's noise, judged at MNIST-pixel scale.

    Pixels on the far side of the paper level (lighter than light paper) are pure noise, so
    their spread measures it; smoothing first keeps real strokes and averages grain away.
    """
    unit = max(grey.shape) / SIZE
    smooth = cv2.GaussianBlur(grey, (0, 0), 0.4 * unit) if unit >= 1.5 else grey
    signed = (paper - smooth) if light_paper else (smooth - paper)
    strongest = float(signed.max())
    if strongest <= 0:
        return False
    beyond = -signed[signed < 0]
    noise = 1.4826 * _median(beyond) if beyond.size >= 20 else 0.0
    contrast = _percentile(signed[signed > 0.5 * strongest], 90)
    return contrast >= max(MIN_CONTRAST, NOISE_MARGIN * noise)


def _stroke_mask(ink: np.ndarray) -> np.ndarray | None:
    """Otsu mask of the strokes with speckle dropped; None if nothing is left.

    Scan noise is smoothed away at the scale of about half an MNIST pixel before thresholding,
    and mask pieces closer than about one MNIST pixel count as one stroke (a faint stroke breaks
    into pieces; a dust speck stands apart).
    """
    unit = max(ink.shape) / SIZE
    ink8 = (ink * 255).astype(np.uint8)
    if unit >= 1.5:
        ink8 = cv2.GaussianBlur(ink8, (0, 0), 0.4 * unit)
    level, _ = cv2.threshold(ink8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu can split dark from faint ink; any value clearly above the paper's noise is ink.
    paper = np.bincount(ink8.ravel(), minlength=256)[: int(level) + 1]
    centre, spread = _median_and_spread(paper)
    level = min(level, max(centre + FAINT_INK_NOISE * spread, 255 * FAINT_INK))
    _, mask = cv2.threshold(ink8, level, 255, cv2.THRESH_BINARY)
    reach = int(round(unit))
    grouped = cv2.dilate(mask, _disc(reach)) if reach >= 1 else mask
    count, labels = cv2.connectedComponents(grouped, connectivity=8)
    if count <= 1:
        return None
    inked = mask > 0
    areas = np.bincount(labels[inked], minlength=count)[1:]
    keep = np.flatnonzero(areas >= max(2.0, SPECKLE_SHARE * float(areas.max()))) + 1
    if keep.size == 0:
        return None
    kept = np.zeros(count, bool)
    kept[keep] = True
    return kept[labels] & inked


def _median_and_spread(histogram: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 x median absolute deviation) of a histogram."""
    total = int(histogram.sum())
    if total == 0:
        return 0.0, 0.0
    cumulative = np.cumsum(histogram)
    median = int(np.searchsorted(cumulative, total / 2))
    values = np.arange(len(histogram))
    deviations = np.bincount(np.abs(values - median), weights=histogram)
    mad = int(np.searchsorted(np.cumsum(deviations), total / 2))
    return float(median), 1.4826 * mad


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array without its generic machinery (this runs ~100 times a field)."""
    n = values.size
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    low, high = np.partition(values, [half - 1, half])[half - 1:half + 1]
    return (float(low) + float(high)) / 2.0


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) of a 1-D array, by partial sort."""
    position = (values.size - 1) * q / 100.0
    below = int(position)
    above = min(below + 1, values.size - 1)
    low, high = np.partition(values, [below, above])[[below, above]]
    return float(low) + (float(high) - float(low)) * (position - below)


_SQUARE3 = np.ones((3, 3), np.uint8)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _normalise_stroke(digit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Thin very heavy or thicken very faint strokes towards MNIST's pen width.

    The stroke width is twice the median distance-to-paper along the stroke middles; it is
    judged at the scale the digit will have in the 20 px box.
    """
    longer = max(digit.shape)
    if longer < 8:
        return digit
    scale = BOX / longer
    ink = mask.astype(np.uint8)
    if ink.all():  # no paper inside the box: measure to its edge, not to infinity
        padded = cv2.copyMakeBorder(ink, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    else:
        dist = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    ridge = dist[(dist > 0) & (dist >= cv2.dilate(dist, _SQUARE3) - 1e-6)]
    if ridge.size == 0:
        return digit
    width = 2.0 * _median(ridge) * scale
    if width > 2.0 * MNIST_STROKE:
        steps = int(round((width - 1.4 * MNIST_STROKE) / 2.0 / scale))
        op = cv2.erode
    elif width < 0.45 * MNIST_STROKE:
        steps = int(round((MNIST_STROKE * 0.8 - width) / 2.0 / scale))
        op = cv2.dilate
    else:
        return digit
    if steps <= 0:
        return digit
    if op is cv2.dilate:
        return op(digit, _disc(steps))
    # Thinning must not eat the digit: a blot of ink is only thinned as far as its shape survives.
    inked = np.count_nonzero(digit > 0.5)
    for radius in (steps, steps // 2):
        if radius >= 1:
            thinner = op(digit, _disc(radius))
            if np.count_nonzero(thinner > 0.5) >= 0.35 * inked:
                return thinner
    return digit


def _fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale so the longer side is 20 px, aspect kept, with area averaging (MNIST's anti-aliasing)."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    box = cv2.resize(digit, (nw, nh), interpolation=interp)
    top = float(box.max())
    return np.clip(box / top, 0.0, 1.0) if top > 0 else box


def _place(box: np.ndarray) -> np.ndarray:
    """Put the 20 px box in 28x28 so its centre of mass lands on MNIST's centre."""
    h, w = box.shape
    total = float(box.sum())
    if total <= 0:
        return blank()
    cy = float(box.sum(axis=1, dtype=np.float64) @ np.arange(h)) / total
    cx = float(box.sum(axis=0, dtype=np.float64) @ np.arange(w)) / total
    top = int(round(MNIST_CENTRE[0] - cy))
    left = int(round(MNIST_CENTRE[1] - cx))
    top = min(max(top, 0), SIZE - h)
    left = min(max(left, 0), SIZE - w)
    out = blank()
    out[top:top + h, left:left + w] = box
    return out
