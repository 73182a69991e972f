"""The project's own handwriting: block capitals and digits drawn as jittered pen strokes.

The committed sample envelopes and the default ``docsort samples`` mode may not contain pixels
from any dataset, so their handwriting is drawn here: every glyph is a few strokes in a unit
box, and each writer (a random generator) bends the control points, slants the letters, varies
their size and spacing and holds a pen of its own width. The result looks hand-printed, the
way people address envelopes, but it is not real handwriting: measurements use real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 14) -> Stroke:
    """Points on an ellipse from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


# Glyphs in a unit box: x to the right, y downwards, 0..1 cap height.
_GLYPHS: dict[str, list[Stroke]] = {
    "0": [_arc(0.5, 0.5, 0.38, 0.5, -90, 275, 24)],
    "1": [[(0.25, 0.22), (0.55, 0.0), (0.55, 1.0)]],
    "2": [_arc(0.5, 0.3, 0.36, 0.3, 200, 360, 10) + _arc(0.5, 0.3, 0.36, 0.3, 0, 50, 5)
          + [(0.12, 1.0), (0.92, 1.0)]],
    "3": [_arc(0.48, 0.26, 0.34, 0.26, 210, 450, 14) + _arc(0.48, 0.73, 0.38, 0.27, -90, 145, 14)],
    "4": [[(0.68, 1.0), (0.68, 0.0), (0.05, 0.68), (0.95, 0.68)]],
    "5": [[(0.85, 0.0), (0.22, 0.0), (0.17, 0.45)] + _arc(0.48, 0.68, 0.38, 0.32, -120, 150, 14)],
    "6": [[(0.78, 0.03)] + _arc(0.5, 0.68, 0.36, 0.32, 200, 560, 22)],
    "7": [[(0.08, 0.0), (0.92, 0.0), (0.38, 1.0)]],
    "8": [_arc(0.5, 0.25, 0.3, 0.25, 90, 450, 18), _arc(0.5, 0.74, 0.37, 0.26, -90, 270, 18)],
    "9": [_arc(0.5, 0.32, 0.36, 0.32, 0, 360, 18) + [(0.86, 0.32), (0.72, 1.0)]],
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "B": [[(0.1, 0.0), (0.1, 1.0)], [(0.1, 0.0), (0.6, 0.0)] + _arc(0.6, 0.24, 0.28, 0.24, -90, 90, 8)
          + [(0.1, 0.48), (0.62, 0.48)] + _arc(0.62, 0.74, 0.3, 0.26, -90, 90, 8) + [(0.1, 1.0)]],
    "C": [_arc(0.55, 0.5, 0.45, 0.5, -40, -320, 20)],
    "D": [[(0.1, 0.0), (0.1, 1.0)], [(0.1, 0.0), (0.45, 0.0)] + _arc(0.45, 0.5, 0.45, 0.5, -90, 90, 14)
          + [(0.1, 1.0)]],
    "E": [[(0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0)], [(0.1, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0.0), (0.1, 0.0), (0.1, 1.0)], [(0.1, 0.5), (0.7, 0.5)]],
    "G": [_arc(0.55, 0.5, 0.45, 0.5, -40, -340, 20) + [(0.98, 0.55), (0.6, 0.55)]],
    "H": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.9, 1.0)], [(0.1, 0.5), (0.9, 0.5)]],
    "I": [[(0.5, 0.0), (0.5, 1.0)]],
    "J": [[(0.8, 0.0), (0.8, 0.7)] + _arc(0.5, 0.7, 0.3, 0.3, 0, 170, 8)],
    "K": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.1, 0.6)], [(0.35, 0.42), (0.9, 1.0)]],
    "L": [[(0.1, 0.0), (0.1, 1.0), (0.85, 1.0)]],
    "M": [[(0.05, 1.0), (0.1, 0.0), (0.5, 0.65), (0.9, 0.0), (0.95, 1.0)]],
    "N": [[(0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0)]],
    "O": [_arc(0.5, 0.5, 0.48, 0.5, -90, 275, 24)],
    "P": [[(0.1, 1.0), (0.1, 0.0), (0.6, 0.0)] + _arc(0.6, 0.26, 0.3, 0.26, -90, 90, 8) + [(0.1, 0.52)]],
    "Q": [_arc(0.5, 0.5, 0.48, 0.5, -90, 275, 24), [(0.55, 0.7), (0.95, 1.05)]],
    "R": [[(0.1, 1.0), (0.1, 0.0), (0.6, 0.0)] + _arc(0.6, 0.26, 0.3, 0.26, -90, 90, 8) + [(0.1, 0.52)],
          [(0.45, 0.52), (0.9, 1.0)]],
    "S": [_arc(0.5, 0.26, 0.38, 0.26, -20, -270, 12) + _arc(0.5, 0.74, 0.4, 0.26, -90, 160, 12)],
    "T": [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "U": [[(0.1, 0.0), (0.1, 0.65)] + _arc(0.5, 0.65, 0.4, 0.35, 180, 0, 12) + [(0.9, 0.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0)]],
    "X": [[(0.05, 0.0), (0.95, 1.0)], [(0.95, 0.0), (0.05, 1.0)]],
    "Y": [[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    "Z": [[(0.05, 0.0), (0.95, 0.0), (0.05, 1.0), (0.95, 1.0)]],
    "-": [[(0.1, 0.55), (0.7, 0.55)]],
    ".": [[(0.45, 0.95), (0.5, 1.0)]],
}
# Relative glyph widths (cap height = 1).
_WIDTH = {"1": 0.45, "I": 0.25, "-": 0.6, ".": 0.25, "M": 0.9, "W": 1.0}
_UMLAUT = {"Ä": "A", "Ö": "O", "Ü": "U"}
_SPACE = 0.55


def supported(text: str) -> str:
    """``text`` reduced to what the pen can draw: capitals, digits, umlauts, '-' and '.'."""
    out = []
    for ch in text.upper().replace("ß", "SS"):
        if ch in _GLYPHS or ch in _UMLAUT or ch == " ":
            out.append(ch)
        elif ch in "ÉÈÊ":
            out.append("E")
        elif ch in "ÀÂ":
            out.append("A")
        elif ch == "Ç":
            out.append("C")
    return "".join(out).strip()


@dataclass
class Writer:
    """One person's hand: slant, pen width, size and spacing habits, how shaky the strokes are."""

    slant: float
    pen: int
    jitter: float
    spacing: float
    width: float

    @classmethod
    def random(cls, rng: np.random.Generator, height: float) -> "Writer":
        return cls(
            slant=float(rng.uniform(-0.1, 0.3)),
            pen=int(max(2, round(height * rng.uniform(0.07, 0.13)))),
            jitter=float(rng.uniform(0.03, 0.07)),
            spacing=float(rng.uniform(0.15, 0.45)),
            width=float(rng.uniform(0.55, 0.75)),
        )


def write(text: str, height: float, rng: np.random.Generator, writer: Optional[Writer] = None,
          ink: int = 0, paper: int = 255, glyphs: Optional[dict[str, list[Stroke]]] = None
          ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Draw ``text`` by hand: a grey image (dark ink on light paper) and one box per glyph.

    ``height`` is the cap height in pixels. Spaces give no box; every other drawn character does.
    ``glyphs`` draws some characters another way (a writer's own 4 or 9, ``synth.pen_digits``).
    """
    writer = writer or Writer.random(rng, height)
    text = supported(text)
    pad = int(height * 0.4) + writer.pen
    strokes_px: list[np.ndarray] = []
    glyph_points: list[Optional[np.ndarray]] = []
    x = 0.0
    for ch in text:
        if ch == " ":
            x += _SPACE * height
            glyph_points.append(None)
            continue
        base = _UMLAUT.get(ch, ch)
        scale = height * float(np.clip(rng.normal(1.0, 0.1), 0.75, 1.25))
        w = _WIDTH.get(base, 1.0) * writer.width * float(rng.uniform(0.85, 1.15)) * scale
        dy = float(rng.normal(0, 0.07)) * height
        lean = writer.slant + float(rng.normal(0, 0.08))
        shapes = [list(s) for s in (glyphs or {}).get(base, _GLYPHS[base])]
        if ch in _UMLAUT:
            shapes += [[(0.3, -0.25), (0.32, -0.2)], [(0.7, -0.25), (0.72, -0.2)]]
        pts_all = []
        for stroke in shapes:
            p = np.asarray(stroke, np.float64)
            p = p + _wobble(len(p), writer.jitter, rng)
            px = x + p[:, 0] * w + (1.0 - p[:, 1]) * lean * scale
            py = height * 0.4 + dy + (height - scale) + p[:, 1] * scale
            arr = np.stack([px, py], 1)
            strokes_px.append(arr)
            pts_all.append(arr)
        glyph_points.append(np.concatenate(pts_all))
        x += w + writer.spacing * height * float(rng.uniform(0.6, 1.4))
    if not strokes_px:
        return np.full((int(height) + 2 * pad, int(height) + 2 * pad), paper, np.uint8), []
    allpts = np.concatenate(strokes_px)
    x0, y0 = allpts.min(0) - pad
    x1, y1 = allpts.max(0) + pad
    shift = 4  # sub-pixel precision for anti-aliased lines
    canvas = np.zeros((int(np.ceil(y1 - y0)), int(np.ceil(x1 - x0))), np.uint8)
    for arr in strokes_px:
        pts = np.round((arr - [x0, y0]) * (1 << shift)).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, thickness=writer.pen, lineType=cv2.LINE_AA, shift=shift)
    boxes = []
    half = writer.pen / 2.0
    for pts in glyph_points:
        if pts is None:
            continue
        gx0, gy0 = pts.min(0) - [x0, y0] - half
        gx1, gy1 = pts.max(0) - [x0, y0] + half
        boxes.append((int(gx0), int(gy0), int(np.ceil(gx1 - gx0)), int(np.ceil(gy1 - gy0))))
    image = paper - (canvas.astype(np.float32) / 255.0) * (float(paper) - float(ink))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), boxes


def _wobble(n: int, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Displacements for a stroke's n points: free at corners of short strokes, smooth along curves."""
    if n <= 6:
        return rng.normal(0, amount, (n, 2)) * np.array([1.0, 0.6])
    anchors = rng.normal(0, amount, (4, 2)) * np.array([1.0, 0.6])
    t = np.linspace(0, 3, n)
    return np.stack([np.interp(t, np.arange(4), anchors[:, k]) for k in range(2)], 1)
