"""Digits in the hands of real people, from handwriting fonts packaged by Debian, in MNIST's format.

MNIST's 500 writers are one population: American census staff and students of the early 1990s,
scanned, thickened and centred the same way. Every reader of ours learnt its digits from them,
and on real strings from other writers and scanners the whole-field reader fell far behind a
generic OCR. Handwriting fonts are digitised from one person's real writing each: their digits
are other people's shapes, proportions and pens. Each glyph is varied every time it is drawn
(rotation, shear, size, aspect, an elastic bend, a pen a little broader or finer), so one font
stands for one writer writing many times, not for one picture.

The hands are split by writer: ``TRAINING_HANDS`` may be drawn by any training, fitting or
selection; ``HELD_OUT_HANDS`` are only measured (``benchmarks/bench_string_views.py --font-hands
held-out``), so a figure on them says how a reader meets writers it never saw. The fonts come
from Debian packages (``PACKAGES``; ``scripts/install.sh`` installs them); none is downloaded.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.errors import DatasetError

SIZE = 28
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Debian packages holding the hands (all under free licences: OFL, GPL with font exception or
# public domain; see models/licenses/FONTS.md).
PACKAGES = ("fonts-bwht", "fonts-dkg-handwriting", "fonts-breip", "fonts-kristi", "fonts-humor-sans",
            "fonts-seto", "fonts-yusei-magic", "fonts-kiloji", "fonts-sjfonts", "fonts-rufscript",
            "fonts-kaushanscript", "fonts-navilu")
# A hand: the font files of one writer (weights and slopes of the same hand count as one writer).
TRAINING_HANDS: dict[str, tuple[str, ...]] = {
    "bwht-build": ("BecauseWeBuild-Regular.otf",),
    "bwht-connect": ("BecauseWeConnect-Regular.otf",),
    "bwht-create": ("BecauseWeCreate-Regular.otf",),
    "bwht-learn": ("BecauseWeLearn-Regular.otf",),
    "dkg": ("dkg.ttf", "dkgBd.ttf", "dkgIt.ttf", "dkgBI.ttf"),
    "breip": ("Breip.ttf", "breipfont.ttf"),
    "seto": ("setofont.ttf",),
    "yusei-magic": ("YuseiMagic-Regular.ttf",),
    "kiloji": ("kiloji.ttf", "kiloji_b.ttf", "kiloji_d.ttf", "kiloji_p.ttf"),
    "steve-hand": ("SteveHand.ttf",),
    "delphine": ("Delphine.ttf",),
    "rufscript": ("Rufscript010.ttf",),
    "kaushan-script": ("KaushanScript-Regular.otf",),
    "navilu": ("Navilu.ttf",),
}
HELD_OUT_HANDS: dict[str, tuple[str, ...]] = {
    "bwht-mentor": ("BecauseWeMentor-Regular.otf",),
    "bwht-organize": ("BecauseWeOrganize-Regular.otf",),
    "kristi": ("Kristi.ttf",),
    "humor-sans": ("Humor-Sans.ttf",),
}
ALL_FILES = frozenset(name for hands in (TRAINING_HANDS, HELD_OUT_HANDS) for files in hands.values()
                      for name in files)
RENDER_PX = 72
GLYPH_PX = 64
# The pen's width as a share of the digit's height, drawn for each digit. A font keeps its
# designer's weight (from a hairline to a marker), so every hand is brought to the range of
# MNIST's pens (about 0.13) and the field composer varies the pen of a whole field from there:
# one field, one pen, as people write.
STROKE_SHARE = (0.09, 0.17)


@functools.lru_cache(maxsize=None)
def _installed(dirs: tuple[Path, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in dirs:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.name in ALL_FILES:
                    found.setdefault(path.name, path)
    return found


def hand_fonts(which: str = "training", dirs: Sequence[Path] = FONT_DIRS) -> dict[str, list[Path]]:
    """The installed font files of each hand of ``which`` ("training" or "held-out").

    Raises ``DatasetError`` naming the Debian packages when none of the hands is installed."""
    hands = TRAINING_HANDS if which == "training" else HELD_OUT_HANDS
    installed = _installed(tuple(Path(d) for d in dirs))
    out = {hand: [installed[f] for f in files if f in installed] for hand, files in hands.items()}
    out = {hand: paths for hand, paths in out.items() if paths}
    if not out:
        raise DatasetError(f"no {which} handwriting font is installed: apt-get install {' '.join(PACKAGES)}")
    return out


@functools.lru_cache(maxsize=64)
def _glyph(path: str, digit: str) -> np.ndarray:
    """One digit of one font as float ink (1 = ink), cropped to its box, ``GLYPH_PX`` high."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(path, RENDER_PX)
    canvas = Image.new("L", (3 * RENDER_PX, 2 * RENDER_PX), 0)
    ImageDraw.Draw(canvas).text((RENDER_PX // 2, RENDER_PX // 4), digit, font=font, fill=255)
    ink = np.asarray(canvas, np.float32) / 255.0
    ys, xs = np.nonzero(ink > 0.1)
    if ys.size == 0:
        raise DatasetError(f"font {path} draws no digit {digit}")
    box = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    # Every hand at one height, so a pen's width means the same in each (fonts draw digits
    # from a third to nearly the whole of their size).
    scale = GLYPH_PX / box.shape[0]
    return cv2.resize(box, (max(1, int(round(box.shape[1] * scale))), GLYPH_PX), interpolation=cv2.INTER_LINEAR)


def _varied(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The glyph as one more writing of it: rotated, sheared, rescaled, its pen broader or finer."""
    h, w = ink.shape
    pad = max(h, w) // 2
    ink = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    angle = np.deg2rad(rng.uniform(-7, 7))
    shear = rng.uniform(-0.22, 0.22)
    aspect = np.exp(rng.uniform(-0.15, 0.15))
    cos, sin = np.cos(angle), np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([aspect, 1.0])
    centre = np.array([ink.shape[1] / 2.0, ink.shape[0] / 2.0])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]]).astype(np.float32)
    ink = cv2.warpAffine(ink, matrix, (ink.shape[1], ink.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)
    ink = _with_stroke(ink, float(rng.uniform(*STROKE_SHARE)) * h)
    ys, xs = np.nonzero(ink > 0.1)
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1] if ys.size else ink


def stroke_width(ink: np.ndarray) -> float:
    """The mean width of the strokes in px: ink area over the length of its skeleton."""
    from skimage.morphology import skeletonize

    solid = ink > 0.5
    return float(solid.sum()) / max(1, int(skeletonize(solid).sum()))


def _with_stroke(ink: np.ndarray, width: float) -> np.ndarray:
    """``ink`` redrawn with strokes about ``width`` px wide (grown or thinned around their middle)."""
    change = int(round(width - stroke_width(ink)))
    if change == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(change) + 1,) * 2)
    if change > 0:
        return cv2.dilate(ink, kernel)
    thinned = cv2.erode(ink, kernel)
    # Never thin a stroke away: a hairline font stays as it is rather than break.
    return thinned if stroke_width(thinned) >= 0.6 * width else ink


def draw_digit(label: int, path: Path, rng: np.random.Generator) -> np.ndarray:
    """One digit written in the hand of ``path``'s font, framed as MNIST: (28, 28) uint8, ink high."""
    from docsort.reading.digits.mnist_format import frame
    from docsort.training.datasets.augment import writer_variation

    framed = np.clip(np.round(frame(_varied(_glyph(str(path), str(int(label))), rng)) * 255.0), 0, 255)
    return writer_variation(framed.astype(np.uint8)[None], rng, strength=0.6)[0]


def draw_like(labels: np.ndarray, rng: np.random.Generator, which: str = "training",
              hands: Optional[dict[str, list[Path]]] = None) -> np.ndarray:
    """A digit for every label in a hand of ``which``: (n, 28, 28) uint8, so
    ``(draw_like(labels, rng), labels)`` stands in for any split of MNIST. Each digit's hand
    (and, within it, its weight or slope) is drawn at random."""
    hands = hands or hand_fonts(which)
    fonts = list(hands.values())
    out = np.zeros((len(labels), SIZE, SIZE), np.uint8)
    for i, label in enumerate(labels):
        paths = fonts[int(rng.integers(len(fonts)))]
        out[i] = draw_digit(int(label), paths[int(rng.integers(len(paths)))], rng)
    return out

