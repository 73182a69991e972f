"""Handwriting the project can show its models: real DHSD words and number strings composed from MNIST.

There are no labelled handwritten digit strings or envelopes in the data, so number fields
(postal codes, amounts) are composed from single MNIST digits: the digits are set side by side
with varied spacing down to touching and overlapping neighbours, varied stroke width, size,
baseline and slant, then rendered as dark ink on light paper like a scan. DHSD supplies real
handwritten words; it is split by writer so a model is always measured on hands it never saw.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from docsort.errors import DatasetError

DigitBox = tuple[int, int, int, int]  # x, y, width, height in the composed image

# The MNIST digit body is size-normalised into a 20 px box inside the 28 px frame.
_MNIST_BODY_PX = 20.0

# DHSD as shipped in ../shared/datasets/dhsd: writers 1..27.
DHSD_WRITERS: tuple[int, ...] = tuple(range(1, 28))
DHSD_VALIDATION_WRITERS = 7


def _ink_bbox(ink: np.ndarray, threshold: int = 20) -> Optional[tuple[int, int, int, int]]:
    """Bounding box (x, y, w, h) of pixels above ``threshold`` in an ink-high image."""
    ys, xs = np.nonzero(ink > threshold)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _shape_digit(digit: np.ndarray, scale: float, slant: float, stroke: int) -> np.ndarray:
    """One MNIST digit (ink high) scaled, sheared and thickened, cropped to its ink."""
    d = np.asarray(digit, dtype=np.uint8)
    if d.ndim != 2:
        raise ValueError("digits must be 2-D greyscale images (ink high, like MNIST)")
    box = _ink_bbox(d)
    if box is None:
        return np.zeros((max(1, int(round(_MNIST_BODY_PX * scale))), 1), np.uint8)
    x, y, w, h = box
    d = np.pad(d[y:y + h, x:x + w], 2)
    nh, nw = max(1, int(round(d.shape[0] * scale))), max(1, int(round(d.shape[1] * scale)))
    d = cv2.resize(d, (nw, nh), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    if scale > 1.5:
        # Upscaled MNIST strokes are soft blobs; steepen the edges so they look like a pen line.
        d = np.clip((d.astype(np.float32) - 70.0) * 1.8, 0, 255).astype(np.uint8)
    if abs(slant) > 1e-3:
        # Shear about the bottom row: positive slant leans the top to the right.
        extra = int(np.ceil(abs(slant) * nh)) + 1
        m = np.float32([[1, -slant, slant * nh if slant > 0 else 0.0], [0, 1, 0]])
        d = cv2.warpAffine(d, m, (nw + extra, nh), flags=cv2.INTER_LINEAR, borderValue=0)
    if stroke:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(stroke) + 1, 2 * abs(stroke) + 1))
        d = cv2.dilate(d, k) if stroke > 0 else cv2.erode(d, k)
    box = _ink_bbox(d)
    if box is None:
        return np.zeros((nh, 1), np.uint8)
    x, y, w, h = box
    return d[y:y + h, x:x + w]


def compose_digit_string(
    digits: Sequence[np.ndarray],
    rng: np.random.Generator,
    *,
    gap: tuple[float, float] = (-0.3, 0.5),
    height: Optional[float] = None,
    stroke: int = 0,
    ink: int = 0,
    paper: int = 255,
    baseline_jitter: float = 0.08,
    scale_jitter: float = 0.12,
    slant: tuple[float, float] = (-0.25, 0.25),
    margin: float = 0.15,
) -> tuple[np.ndarray, list[DigitBox]]:
    """Compose MNIST-format digits (28x28, ink high) into one handwritten number string.

    Returns a uint8 grey image with dark ink (grey level ``ink``) on light paper (``paper``)
    and one ``(x, y, w, h)`` box per digit, in order. ``gap`` is the range of the space between
    neighbours as a fraction of the mean digit width; negative values make digits touch or
    overlap, and overlapping ink is combined (darkest wins), never pasted over. ``height`` is the
    nominal digit height in output pixels (MNIST's own 20 px when None); ``stroke`` thickens
    (> 0) or thins (< 0) the pen by that many output pixels. Each digit gets its own size
    (``scale_jitter``), baseline shift (``baseline_jitter``, fraction of the height) and the
    string one slant (shear drawn from ``slant``), as one writer's hand would.
    """
    if len(digits) == 0:
        raise ValueError("compose_digit_string needs at least one digit")
    base = (float(height) if height else _MNIST_BODY_PX) / _MNIST_BODY_PX
    string_slant = float(rng.uniform(*slant)) if slant else 0.0
    shaped = []
    for d in digits:
        scale = base * float(np.clip(1.0 + rng.normal(0.0, scale_jitter), 0.6, 1.5))
        shaped.append(_shape_digit(d, scale, string_slant + float(rng.normal(0, 0.03)), stroke))
    nominal_h = _MNIST_BODY_PX * base
    mean_w = float(np.mean([max(s.shape[1], 0.45 * nominal_h) for s in shaped]))

    # Place digits left to right: each one's left edge follows the previous right edge plus a gap.
    placements = []
    x = 0.0
    for s in shaped:
        h = s.shape[0]
        baseline = nominal_h + rng.normal(0.0, baseline_jitter) * nominal_h
        top = baseline - h
        placements.append((int(round(x)), int(round(top))))
        x += s.shape[1] + rng.uniform(*gap) * mean_w
        x = max(x, placements[-1][0] + 1.0)
    pad = int(round(margin * nominal_h)) + 1
    min_top = min(t for _, t in placements)
    min_x = min(px for px, _ in placements)
    width = max(px + s.shape[1] for (px, _), s in zip(placements, shaped)) - min_x + 2 * pad
    height_px = max(t + s.shape[0] for (_, t), s in zip(placements, shaped)) - min_top + 2 * pad
    canvas = np.zeros((height_px, width), np.uint8)
    boxes: list[DigitBox] = []
    for (px, top), s in zip(placements, shaped):
        ox, oy = px - min_x + pad, top - min_top + pad
        region = canvas[oy:oy + s.shape[0], ox:ox + s.shape[1]]
        np.maximum(region, s, out=region)
        boxes.append((int(ox), int(oy), int(s.shape[1]), int(s.shape[0])))
    ink_frac = canvas.astype(np.float32) / 255.0
    image = paper - ink_frac * (float(paper) - float(ink))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), boxes


def random_digit_string(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    length: int,
    **compose_options,
) -> tuple[np.ndarray, str, list[DigitBox]]:
    """A random number string of ``length`` digits drawn from an MNIST-format set, with its text."""
    idx = rng.integers(0, len(images), size=length)
    image, boxes = compose_digit_string([images[i] for i in idx], rng, **compose_options)
    return image, "".join(str(int(labels[i])) for i in idx), boxes


@dataclass(frozen=True)
class WriterSplit:
    """Disjoint DHSD writer sets: models train on ``train`` and are measured on ``validation``."""

    train: tuple[int, ...]
    validation: tuple[int, ...]
    seed: int

    @property
    def sealed(self) -> tuple[int, ...]:
        """Validation writers that the printed/handwritten classifier's model selection never sees
        either (every other one): its held-out family's handwriting."""
        return self.validation[1::2]

    @property
    def selection(self) -> tuple[int, ...]:
        """Validation writers left for choosing and calibrating models (all but ``sealed``)."""
        return tuple(w for w in self.validation if w not in self.sealed)

    def to_dict(self) -> dict:
        return {"train": list(self.train), "validation": list(self.validation), "seed": self.seed}


def dhsd_writer_split(seed: int = 0) -> WriterSplit:
    """The project's fixed writer split of DHSD: 20 training and 7 validation writers.

    The split depends only on ``seed`` (default 0 everywhere in the project), so training,
    evaluation and the envelope samples agree on which hands are unseen.
    """
    order = np.random.default_rng(seed).permutation(len(DHSD_WRITERS))
    writers = [DHSD_WRITERS[i] for i in order]
    validation = tuple(sorted(writers[:DHSD_VALIDATION_WRITERS]))
    train = tuple(sorted(writers[DHSD_VALIDATION_WRITERS:]))
    return WriterSplit(train=train, validation=validation, seed=seed)


def read_dhsd_png(path: Path) -> np.ndarray:
    """One DHSD word image as grey dark ink on white (RGBA composited on white paper)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"DHSD image {path} cannot be read")
    if raw.ndim == 2:
        return raw
    colour = raw[..., :3].astype(np.float32)
    if raw.shape[2] == 4:
        alpha = raw[..., 3:4].astype(np.float32) / 255.0
        colour = colour * alpha + 255.0 * (1.0 - alpha)
    grey = cv2.cvtColor(np.clip(colour, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    return grey


def load_dhsd(
    dhsd_dir: str | Path, writers: Optional[Iterable[int]] = None
) -> list[tuple[np.ndarray, str, int]]:
    """DHSD words as ``(grey image dark-on-light, text, writer_id)``, optionally only some writers."""
    root = Path(dhsd_dir)
    index = root / "data.csv"
    if not index.is_file():
        raise DatasetError(f"DHSD index not found: {index} (expected data.csv in the DHSD folder)")
    wanted = None if writers is None else {int(w) for w in writers}
    samples = []
    with index.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            writer = int(row["writer_id"])
            if wanted is not None and writer not in wanted:
                continue
            samples.append((read_dhsd_png(root / row["file_name"]), row["text"], writer))
    if not samples:
        raise DatasetError(f"no DHSD images found in {root} for writers {sorted(wanted or [])}")
    return samples
