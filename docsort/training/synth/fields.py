"""Number fields as people write them on cheques and forms, composed from real MNIST digits.

Real number fields are more than digits side by side: amounts carry thousands separators,
decimals and a ``$`` or ``***`` before them, dates and phone numbers have their own groups,
forms print an underline, a box or a comb of cells, cheque paper has a line pattern, and people
write with pencils, fine pens and felt tips. A reader trained only on clean rows of digits reads
such fields badly, so this module composes them, each from real MNIST digits:

- digits with their writer's slant (shear), uneven size and a wandering baseline, spaced from
  overlapping to wide apart, now and then with a gap in a stroke (a pen that skipped);
- separators between digit groups where real numbers have them (thousands, decimals, dates,
  phone numbers, ZIP+4) and marks before or after (``$ * - = # ( ) +`` and short rules), drawn
  as hand strokes (jittered polylines in the writer's pen, no font); they are not digits;
- pre-printed underlines, boxes, combs and cells, and paper: plain, tinted, fibrous, recycled,
  ruled, squared, or covered with a line pattern, composed in colour and then made grey;
- pens: ballpoint, fine, broad (stroke width by morphology), pencil (light, grainy), felt tip;
- a scanner (``degrade.random_scan``).

The variation is organised in named families (``FAMILIES``): how a family's numbers are
grouped and marked, and which papers, pens and frames it comes on. One family, ``cheque``
(``HELD_OUT_FAMILY``), is kept for measuring only, with its own paper (``rosette``, a guilloche
of overlapping rosettes and a fine hatch) and pen (``felt``) that no training family uses
(``HELD_OUT_PAPERS``, ``HELD_OUT_PENS``). Training and fitting code draws fields with
``training_field`` (which refuses it) from MNIST *training* digits; ``held_out_fields`` writes
the held-out family with MNIST *test* digits only.

A field's truth is its digits only; ``text`` is what was written, separators and marks included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dataclass_field
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from docsort.training.synth import degrade
from docsort.training.synth.handwriting import _MNIST_BODY_PX, _shape_digit
from docsort.training.synth.printed import glyph_coverage

DIGIT = "D"
RULE = "—"  # a short hand-drawn rule before or after an amount
GAP = " "  # a space between digit groups: no ink, a wider gap
# Separators stand between digit groups; marks before or after the number.
SEPARATORS = (".", ",", "-", "/", "'", GAP)
MARKS = ("$", "*", "=", "#", "(", ")", "+", "-", RULE)

PAPERS = ("plain", "tinted", "fibre", "speckle", "ruled", "grid", "waves", "rosette")
PENS = ("ballpoint", "thin", "broad", "pencil", "felt")
FRAMES = ("none", "underline", "dotted", "box", "comb", "cells")

HELD_OUT_FAMILY = "cheque"
HELD_OUT_PAPERS = ("rosette",)
HELD_OUT_PENS = ("felt",)


# ---------------------------------------------------------------- layouts: what is written


def _digits(n: int) -> list[str]:
    return [DIGIT] * n


def _grouped(groups: Sequence[int], separator: str) -> list[str]:
    tokens: list[str] = []
    for i, g in enumerate(groups):
        if i:
            tokens.append(separator)
        tokens += _digits(g)
    return tokens


def _thousands(n: int) -> list[int]:
    """Digit groups of an integer part: 1234567 -> [1, 3, 3]."""
    head = n % 3 or 3
    return [head] + [3] * ((n - head) // 3) if n > 0 else []


def _amount_layout(rng: np.random.Generator, n: int, stars: float, raised: float) -> tuple[list[str], set]:
    """An amount of ``n`` digits: thousands groups, maybe decimals, marks before and after.

    Returns the tokens and the token positions written raised and small (cents written as a
    superscript, as many do on cheques).
    """
    decimals = 2 if n >= 3 and rng.random() < 0.6 else 0
    whole = n - decimals
    grouping = rng.choice([",", ".", "'", GAP, ""], p=[0.45, 0.2, 0.05, 0.1, 0.2]) if whole > 3 else ""
    decimal_mark = "." if grouping in (",", "'", "") else ","
    if grouping == ".":
        decimal_mark = ","
    tokens = _grouped(_thousands(whole), grouping) if grouping else _digits(whole)
    raised_at: set[int] = set()
    if decimals:
        if rng.random() < raised:
            raised_at = {len(tokens), len(tokens) + 1}
            tokens += _digits(2)
        else:
            tokens += [decimal_mark] + _digits(2)
    before = rng.random()
    if before < 0.35:
        tokens = ["$"] + (["*"] * int(rng.integers(1, 4)) if rng.random() < stars else []) + tokens
    elif before < 0.35 + stars:
        tokens = ["*"] * int(rng.integers(1, 4)) + tokens
    elif before < 0.5 + stars:
        tokens = ["#"] + tokens
    after = rng.random()
    if after < 0.15:
        tokens += ["-"]
    elif after < 0.25:
        tokens += ["="]
    elif after < 0.38:
        tokens += [RULE]
    elif after < 0.45:
        tokens += ["/", "-"]
    elif after < 0.45 + stars:
        tokens += ["*"] * int(rng.integers(1, 4))
    # Raised positions were counted before the marks in front were added (the number began with a digit).
    shift = tokens.index(DIGIT)
    raised_at = {i + shift for i in raised_at}
    return tokens, raised_at


def amount_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    return _amount_layout(rng, n, stars=0.1, raised=0.15)


def cheque_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    """A cheque's courtesy amount: like an amount, more often guarded by ``$`` and stars."""
    return _amount_layout(rng, n, stars=0.25, raised=0.25)


def date_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    separator = str(rng.choice([".", "/", "-", GAP], p=[0.35, 0.35, 0.2, 0.1]))
    groups = {4: [[2, 2], [1, 1, 2], [2, 2]], 5: [[1, 2, 2], [2, 1, 2]], 6: [[2, 2, 2], [1, 1, 4]],
              7: [[1, 2, 4], [2, 1, 4]], 8: [[2, 2, 4], [4, 2, 2]]}[n]
    return _grouped(groups[int(rng.integers(len(groups)))], separator), set()


def phone_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    separator = str(rng.choice(["-", GAP, ".", "/"], p=[0.45, 0.3, 0.15, 0.1]))
    options = {6: [[3, 3], [2, 2, 2]], 7: [[3, 4], [3, 2, 2]], 8: [[4, 4], [2, 2, 2, 2], [3, 5]],
               9: [[3, 3, 3], [2, 3, 4]], 10: [[3, 3, 4], [2, 2, 2, 2, 2], [4, 3, 3]]}[n]
    groups = options[int(rng.integers(len(options)))]
    if n == 10 and groups == [3, 3, 4] and rng.random() < 0.35:
        tokens = ["("] + _digits(3) + [")"] + _grouped([3, 4], separator if separator != "/" else "-")
    else:
        tokens = _grouped(groups, separator)
    if rng.random() < 0.12:
        tokens = ["+"] + tokens
    return tokens, set()


def zip4_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    if n == 9:
        return _grouped([5, 4], "-" if rng.random() < 0.85 else GAP), set()
    return _digits(n), set()


def account_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    size = int(rng.choice([3, 4]))
    groups = [size] * (n // size) + ([n % size] if n % size else [])
    tokens = _grouped(groups, str(rng.choice([GAP, "-", "."], p=[0.5, 0.35, 0.15])))
    if rng.random() < 0.25:
        tokens = ["#"] + tokens
    return tokens, set()


def plain_layout(rng: np.random.Generator, n: int) -> tuple[list[str], set]:
    return _digits(n), set()


@dataclass(frozen=True)
class FieldFamily:
    """How a kind of number field is written and what it is written on."""

    name: str
    lengths: tuple[int, ...]
    layout: Callable[[np.random.Generator, int], tuple[list[str], set]]
    papers: tuple[str, ...]
    pens: tuple[str, ...]
    frames: tuple[str, ...]
    gap: tuple[float, float]  # space between digits, in digit widths (negative: overlapping)
    scan: float  # scanner strength; 0: never scanned
    description: str


_TRAINING_PENS = ("ballpoint", "ballpoint", "thin", "broad", "pencil")

FAMILIES: dict[str, FieldFamily] = {f.name: f for f in (
    FieldFamily("amount", tuple(range(1, 11)), amount_layout, ("plain", "tinted", "waves", "fibre"),
                _TRAINING_PENS, ("none", "underline", "box", "dotted"), (-0.3, 0.5), 0.6,
                "amounts: thousands groups, decimals (sometimes raised), $ * # before, - = / rules after"),
    FieldFamily("date", (4, 5, 6, 7, 8), date_layout, ("plain", "ruled", "grid", "tinted"), _TRAINING_PENS,
                ("none", "underline", "comb"), (-0.2, 0.5), 0.6, "dates: day, month, year split by . / - or a space"),
    FieldFamily("phone", (6, 7, 8, 9, 10), phone_layout, ("plain", "ruled", "speckle", "fibre"), _TRAINING_PENS,
                ("none", "underline", "dotted"), (-0.2, 0.6), 0.6, "phone numbers: groups, (area code), a leading +"),
    FieldFamily("zip4", (5, 9), zip4_layout, ("plain", "tinted", "fibre", "speckle"), _TRAINING_PENS,
                ("none", "underline", "box", "comb"), (-0.3, 0.6), 0.6, "ZIP and ZIP+4 codes (12345-6789)"),
    FieldFamily("form-comb", tuple(range(1, 11)), plain_layout, ("plain", "tinted", "grid"), _TRAINING_PENS,
                ("comb", "cells"), (0.0, 0.0), 0.6, "one digit per printed cell or comb tooth"),
    FieldFamily("account", tuple(range(4, 11)), account_layout, ("plain", "waves", "fibre", "tinted"),
                _TRAINING_PENS, ("none", "underline", "box"), (-0.25, 0.5), 0.6,
                "account and reference numbers in groups of 3 or 4, sometimes after #"),
    FieldFamily("plain", tuple(range(1, 11)), plain_layout, ("plain", "speckle", "ruled", "tinted"), _TRAINING_PENS,
                ("none", "underline"), (-0.35, 0.6), 0.8, "digits alone, touching to wide apart (envelope codes)"),
    FieldFamily(HELD_OUT_FAMILY, tuple(range(1, 11)), cheque_layout, HELD_OUT_PAPERS, ("felt", "felt", "ballpoint"),
                ("box", "underline", "none"), (-0.3, 0.5), 0.6,
                "cheque courtesy amounts on rosette guilloche paper, often in felt tip (held out)"),
)}

TRAINING_FAMILIES: tuple[str, ...] = tuple(name for name in FAMILIES if name != HELD_OUT_FAMILY)


def check_training_family(name: str) -> FieldFamily:
    """The training family ``name``; the held-out family is refused (it is for measuring only)."""
    if name == HELD_OUT_FAMILY:
        raise ValueError(f"the {HELD_OUT_FAMILY!r} field family is held out: training and fitting never use it")
    if name not in FAMILIES:
        raise ValueError(f"unknown field family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


# ---------------------------------------------------------------- hand-drawn separators and marks


def _chaikin(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Smooth a polyline the way a hand rounds corners."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def _glyph_strokes(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """A mark's strokes in units of the digit height: x from 0, y 0 at the digits' top, 1 at their baseline."""
    u = rng.uniform
    if kind == ".":
        return [np.array([[0.05, 0.93], [0.07, 0.95]])]
    if kind == ",":
        return [np.array([[0.12, 0.9], [0.13, 0.96], [0.08, 1.06], [0.0, 1.14]])]
    if kind == "'":
        return [np.array([[0.08, 0.0], [0.05, 0.1], [0.0, 0.2]])]
    if kind == "-":
        length = u(0.25, 0.5)
        y = u(0.45, 0.62)
        return [np.array([[0.0, y], [length, y - u(-0.05, 0.06)]])]
    if kind == RULE:
        length, y = u(0.7, 1.8), u(0.45, 0.65)
        xs = np.linspace(0.0, length, 8)
        return [np.stack([xs, y + 0.03 * np.sin(xs * u(2, 6) + u(0, 6))], 1)]
    if kind == "=":
        length, y = u(0.3, 0.45), u(0.38, 0.5)
        return [np.array([[0.0, y], [length, y]]), np.array([[0.02, y + 0.2], [length, y + 0.19]])]
    if kind == "/":
        return [np.array([[0.0, 1.0], [u(0.3, 0.45), u(-0.05, 0.1)]])]
    if kind == "*":
        cx, cy, r = 0.2, u(0.2, 0.45), u(0.14, 0.2)
        strokes = []
        for angle in (90.0, 30.0, 150.0):
            a = math.radians(angle + u(-12, 12))
            strokes.append(np.array([[cx - r * math.cos(a), cy - r * math.sin(a)],
                                     [cx + r * math.cos(a), cy + r * math.sin(a)]]))
        return strokes
    if kind == "#":
        return [np.array([[0.2, 0.1], [0.12, 0.95]]), np.array([[0.42, 0.1], [0.34, 0.95]]),
                np.array([[0.0, 0.35], [0.55, 0.33]]), np.array([[0.0, 0.68], [0.52, 0.66]])]
    if kind == "$":
        s = np.array([[0.48, 0.17], [0.36, 0.06], [0.16, 0.08], [0.05, 0.24], [0.14, 0.41], [0.34, 0.53],
                      [0.48, 0.7], [0.42, 0.88], [0.22, 0.95], [0.03, 0.84]])
        bar = np.array([[0.27, -0.12], [0.25, 0.5], [0.24, 1.1]])
        return [_chaikin(s), bar] if rng.random() < 0.6 else [_chaikin(s), bar[:2] * [1, 0.5] + [0, -0.06],
                                                             np.array([[0.24, 0.9], [0.24, 1.1]])]
    if kind in "()":
        t = np.linspace(0.0, 1.0, 9)
        bulge = u(0.15, 0.25)
        xs = bulge * (1 - np.sin(np.pi * t)) if kind == "(" else bulge * np.sin(np.pi * t)
        return [np.stack([xs, -0.08 + 1.2 * t], 1)]
    if kind == "+":
        r = u(0.17, 0.24)
        return [np.array([[0.0, 0.55], [2 * r, 0.55]]), np.array([[r, 0.55 - r], [r, 0.55 + r]])]
    raise ValueError(f"no stroke drawing for mark {kind!r}")


GLYPH_TOP, GLYPH_BOTTOM = -0.3, 1.3  # the glyph canvas spans these heights (units of the digit height)


def draw_glyph(kind: str, height: float, thickness: float, rng: np.random.Generator) -> np.ndarray:
    """One separator or mark as hand strokes (ink high, float 0..1) on a canvas spanning
    ``GLYPH_TOP``..``GLYPH_BOTTOM`` digit heights, cropped to its ink left and right."""
    scale = 4  # drawn at 4x and reduced: smooth, antialiased edges like a scanned pen line
    strokes = _glyph_strokes(kind, rng)
    wobble = 0.025
    width = max(float(np.max(s[:, 0])) for s in strokes) + 0.3
    rows = int(math.ceil((GLYPH_BOTTOM - GLYPH_TOP) * height))
    cols = int(math.ceil(width * height)) + int(2 * thickness) + 2
    canvas = np.zeros((rows * scale, cols * scale), np.uint8)
    pen = max(1, int(round(thickness * scale)))
    for s in strokes:
        pts = s + rng.normal(0.0, wobble, s.shape)
        xy = np.stack([(pts[:, 0] + 0.1) * height + thickness, (pts[:, 1] - GLYPH_TOP) * height], 1) * scale
        cv2.polylines(canvas, [np.round(xy).astype(np.int32)], False, 255, pen, cv2.LINE_AA)
    small = cv2.resize(canvas, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    used = np.flatnonzero(small.max(axis=0) > 0.05)
    if len(used) == 0:
        return np.zeros((rows, 1), np.float32)
    return small[:, used[0]:used[-1] + 1]


# ---------------------------------------------------------------- paper, frames and pens


def _hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """A BGR colour (floats 0..1) from hue in degrees."""
    hsv = np.uint8([[[int(hue / 2) % 180, int(saturation * 255), int(value * 255)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0


def _lay(paper: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Lay ink or print of ``colour`` with coverage ``alpha`` (0..1) on BGR ``paper`` (absorbing light)."""
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    return paper * (1.0 - a + a * colour[None, None, :])


def _lines(shape: tuple[int, int], polylines: list[np.ndarray], thickness: int = 1) -> np.ndarray:
    """Thin antialiased printed lines, coverage 0..1."""
    canvas = np.zeros(shape, np.uint8)
    pts = [np.round(p * 4).astype(np.int32) for p in polylines]
    cv2.polylines(canvas, pts, False, 255, thickness, cv2.LINE_AA, shift=2)
    return canvas.astype(np.float32) / 255.0


def _mottle(shape: tuple[int, int], rng: np.random.Generator, cell: float) -> np.ndarray:
    """Low-frequency paper unevenness around 0 (roughly -1..1)."""
    h, w = shape
    small = rng.normal(0.0, 1.0, (max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_paper(kind: str, shape: tuple[int, int], height: float, rng: np.random.Generator) -> np.ndarray:
    """A BGR paper (floats 0..1) of ``kind``; ``height`` is the digits' height, for pattern scales."""
    h, w = shape
    u = rng.uniform
    if kind in ("tinted", "waves", "rosette") or rng.random() < 0.15:
        base = _hsv_colour(u(0, 360), u(0.06, 0.3), u(0.86, 1.0))
    else:
        base = np.full(3, u(0.88, 1.0), np.float32) * np.array([1.0, 1.0, u(0.97, 1.03)], np.float32)
    paper = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    # A gentle gradient and unevenness, as any sheet under a scanner lamp.
    ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :] * u(-0.04, 0.04)
    paper = paper * (1.0 + ramp[..., None] + 0.015 * _mottle(shape, rng, u(20, 60))[..., None])
    if kind == "fibre":
        paper = paper * (1.0 + 0.03 * _mottle(shape, rng, u(6, 14))[..., None])
        fibres = []
        for _ in range(int(h * w / u(150, 500))):
            start = np.array([u(0, w), u(0, h)])
            steps = np.cumsum(rng.normal(0.0, 1.0, (int(u(4, 14)), 2)) * u(1.5, 4), axis=0)
            fibres.append(start + np.concatenate([[[0.0, 0.0]], steps]))
        paper = _lay(paper, u(0.08, 0.3) * _lines(shape, fibres), _hsv_colour(u(0, 360), u(0, 0.5), u(0.3, 0.7)))
        if rng.random() < 0.5:  # security fibres: a few coloured ones
            coloured = fibres[:max(1, len(fibres) // 12)]
            paper = _lay(paper, 0.5 * _lines(shape, coloured), _hsv_colour(rng.choice([0, 220, 120]), 0.8, 0.8))
    elif kind == "speckle":
        spots = np.zeros(shape, np.float32)
        for _ in range(int(h * w / u(80, 300))):
            cv2.circle(spots, (int(u(0, w)), int(u(0, h))), int(rng.choice([0, 0, 0, 1])), float(u(0.1, 0.5)), -1)
        paper = _lay(paper, cv2.GaussianBlur(spots, (0, 0), 0.6), np.full(3, u(0.2, 0.5), np.float32))
    elif kind == "ruled":
        spacing = height * u(1.0, 1.6)
        offset = u(0, spacing)
        lines = [np.array([[0.0, y], [w, y + u(-1, 1)]]) for y in np.arange(offset, h, spacing)]
        paper = _lay(paper, u(0.3, 0.7) * _lines(shape, lines), _hsv_colour(u(190, 230), u(0.3, 0.7), 0.85))
        if rng.random() < 0.3:
            x = u(0, w)
            paper = _lay(paper, 0.6 * _lines(shape, [np.array([[x, 0.0], [x, h]])]), _hsv_colour(0, 0.7, 0.9))
    elif kind == "grid":
        spacing = height * u(0.45, 0.9)
        lines = [np.array([[0.0, y], [w, y]]) for y in np.arange(u(0, spacing), h, spacing)]
        lines += [np.array([[x, 0.0], [x, h]]) for x in np.arange(u(0, spacing), w, spacing)]
        paper = _lay(paper, u(0.25, 0.6) * _lines(shape, lines), _hsv_colour(u(0, 360), u(0, 0.5), u(0.55, 0.85)))
    elif kind == "waves":
        # A cheque-like pattern: bundles of parallel waves across the sheet, sometimes crossing.
        for _ in range(int(rng.integers(1, 3))):
            period, amplitude = height * u(0.6, 3.0), height * u(0.1, 0.6)
            spacing, phase, tilt = u(2.5, 7.0), u(0, 2 * np.pi), u(-0.3, 0.3)
            xs = np.linspace(0.0, w, max(8, w // 2))
            waves = [np.stack([xs, y0 + tilt * xs + amplitude * np.sin(2 * np.pi * xs / period + phase)], 1)
                     for y0 in np.arange(-amplitude - abs(tilt) * w, h + amplitude + abs(tilt) * w, spacing)]
            paper = _lay(paper, u(0.12, 0.4) * _lines(shape, waves), _hsv_colour(u(0, 360), u(0.2, 0.7), u(0.4, 0.8)))
    elif kind == "rosette":
        # Held out: overlapping guilloche rosettes r = R + a cos(k t) and a fine diagonal hatch.
        for _ in range(int(rng.integers(1, 3))):
            cx, cy = u(-0.5, 1.5) * w, u(-1.0, 2.0) * h
            lobes, depth = int(rng.integers(12, 40)), u(0.02, 0.08)
            far = math.hypot(max(abs(cx), abs(cx - w)), max(abs(cy), abs(cy - h)))
            near = max(0.0, math.hypot(min(max(cx, 0), w) - cx, min(max(cy, 0), h) - cy) - 2 * height)
            t = np.linspace(0.0, 2 * np.pi, 720)
            rings = []
            for radius in np.arange(near, far + height, u(3.0, 6.0)):
                r = radius * (1 + depth * np.cos(lobes * t + radius * 0.05))
                rings.append(np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1))
            paper = _lay(paper, u(0.12, 0.35) * _lines(shape, rings), _hsv_colour(u(0, 360), u(0.3, 0.8), u(0.4, 0.8)))
        step, slope = u(2.0, 4.0), rng.choice([-1.0, 1.0]) * u(0.6, 1.6)
        hatch = [np.array([[x, 0.0], [x + slope * h, h]]) for x in np.arange(-abs(slope) * h, w + abs(slope) * h, step)]
        paper = _lay(paper, u(0.06, 0.2) * _lines(shape, hatch), _hsv_colour(u(0, 360), u(0.2, 0.6), u(0.5, 0.8)))
    elif kind not in ("plain", "tinted"):
        raise ValueError(f"unknown paper {kind!r}")
    return paper


def frame_print(kind: str, shape: tuple[int, int], body: tuple[int, int, int, int], cells: Sequence[tuple[int, int]],
                height: float, rng: np.random.Generator) -> np.ndarray:
    """Pre-printed lines of a form around or under the digits, coverage 0..1.

    ``body`` is the written number's box (x0, y0, x1, y1, baseline at y1); ``cells`` the
    left and right edges of each digit's cell for combs and cells.
    """
    h, w = shape
    x0, y0, x1, y1 = body
    u = rng.uniform
    lines: list[np.ndarray] = []
    below = y1 + u(0.03, 0.25) * height
    if kind in ("underline", "dotted"):
        left, right = u(-0.2, 0.5) * (x0 + 1), x1 + u(0.0, 1.0) * (w - x1)
        if kind == "underline":
            lines.append(np.array([[left, below], [right, below + u(-1.5, 1.5)]]))
        else:
            step = u(0.12, 0.3) * height
            for x in np.arange(left, right, step):
                lines.append(np.array([[x, below], [x + 0.35 * step, below]]))
    elif kind == "box":
        top, bottom = y0 - u(0.1, 0.4) * height, y1 + u(0.1, 0.35) * height
        left, right = x0 - u(0.1, 0.6) * height, x1 + u(0.1, 0.6) * height
        lines.append(np.array([[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]))
    elif kind in ("comb", "cells"):
        top, bottom = y0 - u(0.1, 0.3) * height, y1 + u(0.08, 0.25) * height
        tooth = bottom - (u(0.25, 0.5) * height if kind == "comb" else bottom - top)
        edges = sorted({e for cell in cells for e in cell})
        lines.append(np.array([[edges[0], bottom], [edges[-1], bottom]]))
        for e in edges:
            lines.append(np.array([[e, bottom], [e, tooth]]))
        if kind == "cells":
            lines.append(np.array([[edges[0], top], [edges[-1], top]]))
    elif kind != "none":
        raise ValueError(f"unknown frame {kind!r}")
    if not lines:
        return np.zeros(shape, np.float32)
    return _lines(shape, lines, thickness=int(rng.choice([1, 1, 2])))


@dataclass(frozen=True)
class Pen:
    """How a pen lays the ink: its kind, stroke change (px, by morphology), darkness and colour."""

    kind: str
    stroke: int
    strength: float
    colour: tuple[float, float, float]
    bleed: float = 0.0
    grain: float = 0.0


def draw_pen(kind: str, height: float, rng: np.random.Generator) -> Pen:
    u = rng.uniform
    dark = (u(0.02, 0.12),) * 3
    blue = (u(0.45, 0.7), u(0.12, 0.3), u(0.02, 0.15))
    if kind == "ballpoint":
        return Pen(kind, 0, u(0.8, 1.0), blue if rng.random() < 0.5 else dark)
    if kind == "thin":
        return Pen(kind, -1 if height >= 30 else 0, u(0.75, 1.0), blue if rng.random() < 0.4 else dark)
    if kind == "broad":
        return Pen(kind, int(rng.integers(1, 3 if height >= 30 else 2)), u(0.85, 1.0), blue if rng.random() < 0.4 else dark)
    if kind == "pencil":
        return Pen(kind, int(rng.choice([-1, 0, 0])) if height >= 30 else 0, u(0.4, 0.75), (u(0.2, 0.35),) * 3,
                   grain=u(0.2, 0.5))
    if kind == "felt":
        # A felt tip writes broad and bleeds into the paper, more so in larger writing.
        return Pen(kind, int(rng.integers(1, 3)) if height >= 36 else 1, u(0.9, 1.0), blue if rng.random() < 0.3 else dark,
                   bleed=u(0.3, 0.9) * min(1.5, height / 36))
    raise ValueError(f"unknown pen {kind!r}")


def centre_line(ink: np.ndarray) -> np.ndarray:
    """The strokes of ``ink`` (coverage 0..1) as a fine pen draws them: their centre line, unbroken,
    softened to about two pixels. Eroding a broad stroke instead breaks every part thinner than the
    kernel, so fine-pen digits came out in pieces; OpenCV's main modules have no thinning, and
    scikit-image's ``skeletonize`` keeps each stroke's topology."""
    from skimage.morphology import skeletonize

    line = skeletonize(ink > 0.5 * max(float(ink.max()), 1e-6)).astype(np.float32)
    if not line.any():
        return ink
    soft = cv2.GaussianBlur(line, (0, 0), 0.6)
    return np.clip(soft / max(float(soft.max()), 1e-6), 0.0, 1.0)


def apply_pen(ink: np.ndarray, pen: Pen, grain_field: Optional[np.ndarray] = None) -> np.ndarray:
    """Ink coverage (0..1) of a field written with ``pen``: width by morphology, bleed, grain."""
    out = ink
    if pen.stroke > 0:
        size = 2 * pen.stroke + 1
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    elif pen.stroke < 0:
        out = centre_line(ink)
    if pen.bleed:
        out = np.clip(cv2.GaussianBlur(out, (0, 0), pen.bleed) * 1.5, 0.0, 1.0)
    if pen.grain and grain_field is not None:
        out = out * grain_field
    return np.clip(out * pen.strength, 0.0, 1.0)


# ---------------------------------------------------------------- composing


@dataclass
class ComposedField:
    """A composed number field: the image (uint8 grey, dark on light), its truth (digits only)
    and what was written and how (for breaking results down by condition)."""

    image: np.ndarray
    digits: str
    text: str
    family: str
    paper: str
    pen: str
    frame: str
    separators: bool  # something but digits between the first and the last digit (a space too)
    marks: bool  # a mark before the first or after the last digit
    touching: bool
    broken: bool
    raised: bool
    digit_ink: Optional[np.ndarray] = dataclass_field(default=None, repr=False)
    mark_ink: Optional[np.ndarray] = dataclass_field(default=None, repr=False)
    # Left and right edges (columns of ``image``) of each pre-printed cell, for combs and cells.
    cells: list[tuple[int, int]] = dataclass_field(default_factory=list, repr=False)
    printed: bool = False  # set in a font (``printed_field``), not written by hand

    def conditions(self) -> dict[str, str]:
        return {"family": self.family, "paper": self.paper, "pen": self.pen, "frame": self.frame,
                "separators": "yes" if self.separators else "no", "marks": "yes" if self.marks else "no",
                "touching": "yes" if self.touching else "no", "broken": "yes" if self.broken else "no",
                "raised cents": "yes" if self.raised else "no"}


def _break_strokes(digit: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """Gaps where the pen skipped: one or two short cuts across the digit's strokes."""
    out = digit.copy()
    ys, xs = np.nonzero(out > 0.5)
    if len(xs) < 10:
        return out
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(len(xs)))
        angle = rng.uniform(0, np.pi)
        half = 0.12 * height
        dx, dy = half * math.cos(angle), half * math.sin(angle)
        cv2.line(out, (int(xs[k] - dx), int(ys[k] - dy)), (int(xs[k] + dx), int(ys[k] + dy)), 0.0,
                 max(1, int(round(0.07 * height))), cv2.LINE_AA)
    return out


def _shear(image: np.ndarray, slant: float) -> np.ndarray:
    """Lean the whole field: positive slant leans the tops to the right (sheared about the bottom row)."""
    if abs(slant) < 1e-3:
        return image
    h, w = image.shape
    extra = int(math.ceil(abs(slant) * h)) + 1
    m = np.float32([[1, -slant, slant * h if slant > 0 else 0.0], [0, 1, 0]])
    return cv2.warpAffine(image, m, (w + extra, h), flags=cv2.INTER_LINEAR, borderValue=0)


# A printed digit's ink height as a share of the font size (about that of a capital).
_DIGIT_HEIGHT_PER_SIZE = 0.72


def compose_field(family: str, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, length: int,
                  *, keep_layers: bool = False, scan: bool = True, font=None, frame: Optional[str] = None,
                  bold: float = 0.2, oblique: float = 0.15) -> ComposedField:
    """One field of ``family`` with ``length`` digits drawn from ``images`` (MNIST format, ink high).

    ``keep_layers`` also returns the digits' and the marks' ink where they stand in the image;
    ``scan=False`` leaves the scanner out (so the layers stay in register with the image).
    ``font`` (a ``printed.Font``) sets the field in type instead, on the same papers and frames:
    random digits, one baseline, even spacing, a printer's ink (``images`` is not used), emboldened
    in a ``bold`` share of fields and oblique in an ``oblique`` share. ``frame`` fixes the
    pre-printed frame (one of the family's); None draws it.
    """
    fam = FAMILIES[family]
    if length not in fam.lengths:
        raise ValueError(f"the {family!r} family writes {fam.lengths} digits, not {length}")
    tokens, raised_at = fam.layout(rng, length)
    u = rng.uniform
    typed = font is not None
    height = float(u(20, 64))
    base = height / _MNIST_BODY_PX
    if typed:
        size_px = int(round(height / _DIGIT_HEIGHT_PER_SIZE))
        embolden = int(rng.integers(1, max(1, size_px // 24) + 1)) if rng.random() < bold else 0
        slant = float(u(0.1, 0.25)) if rng.random() < oblique else 0.0  # oblique type
        scale_jitter, drift, wobble = 0.0, 0.0, 0.0
    else:
        slant = float(u(-0.2, 0.35))
        scale_jitter = float(u(0.03, 0.15))
        drift, wobble = float(u(-0.06, 0.06)), float(u(0.0, 0.08))
    thickness = max(1.0, 0.12 * height * float(u(0.8, 1.2)))
    if fam.gap == (0.0, 0.0):
        gap = (0.0, 0.0)
    elif typed:  # type advances evenly; letter-spaced on some forms
        spacing = float(u(0.05, 0.2)) if rng.random() < 0.7 else float(u(0.2, 0.8))
        gap = (spacing, spacing)
    elif rng.random() < 0.5:
        gap = fam.gap
    else:  # one writer's own habit: tight, loose or wide
        lo = float(u(fam.gap[0], fam.gap[1]))
        gap = (lo, lo + float(u(0.05, 0.6)))
    broken = not typed and rng.random() < 0.15
    paper_kind = str(rng.choice(fam.papers))
    pen_kind = "print" if typed else str(rng.choice(fam.pens))
    if frame is None:
        frame = str(rng.choice(fam.frames))
    elif frame not in fam.frames:
        raise ValueError(f"the {family!r} family prints {fam.frames}, not {frame!r}")
    in_cells = frame in ("comb", "cells")
    pitch = height * float(u(0.85, 1.3))

    # Shape every token: digits from MNIST, marks drawn as strokes, spaces as gaps.
    picks = rng.integers(0, len(images), size=length)
    pieces: list[tuple[str, Optional[np.ndarray], float]] = []  # (token, ink, top offset from baseline)
    truth, text, d = [], [], 0
    for i, token in enumerate(tokens):
        if token == DIGIT and typed:
            small = i in raised_at
            digit = str(int(rng.integers(0, 10)))
            ink, top = glyph_coverage(digit, font.path, int(round(size_px * (0.6 if small else 1.0))), embolden)
            pieces.append((token, ink, top - (0.4 * height if small else 0.0)))
            truth.append(digit)
            text.append(digit)
            d += 1
        elif token == DIGIT:
            small = i in raised_at
            scale = base * float(np.clip(1.0 + rng.normal(0.0, scale_jitter), 0.7, 1.35)) * (0.6 if small else 1.0)
            ink = _shape_digit(images[picks[d]], scale, float(rng.normal(0.0, 0.03)), 0).astype(np.float32) / 255.0
            if broken and rng.random() < 0.5:
                ink = _break_strokes(ink, height, rng)
            lift = 0.4 * height if small else 0.0
            pieces.append((token, ink, -ink.shape[0] - lift))
            digit = str(int(labels[picks[d]]))
            truth.append(digit)
            text.append(digit)
            d += 1
        elif token == GAP:
            pieces.append((token, None, 0.0))
            text.append(" ")
        elif typed:
            ink, top = glyph_coverage("-" if token == RULE else token, font.path, size_px, embolden)
            pieces.append((token, ink, float(top)))
            text.append(token)
        else:
            glyph = draw_glyph(token, height, thickness, rng)
            pieces.append((token, glyph, (GLYPH_TOP - 1.0) * height))
            text.append(token)

    digit_at = [i for i, t in enumerate(tokens) if t == DIGIT]
    separators = any(t != DIGIT for t in tokens[digit_at[0]:digit_at[-1]])
    marks = digit_at[0] > 0 or digit_at[-1] < len(tokens) - 1
    mean_w = float(np.mean([max(p[1].shape[1], 0.45 * height) for p in pieces if p[0] == DIGIT]))
    placed: list[tuple[str, np.ndarray, int, int]] = []
    cells: list[tuple[int, int]] = []
    x, previous = 0.0, None
    touching = False
    for token, ink, top in pieces:
        if token == GAP:
            x += float(u(0.3, 0.8)) * height
            previous = GAP
            continue
        if in_cells and token == DIGIT:
            cell_left = len(cells) * pitch
            cells.append((int(round(cell_left)), int(round(cell_left + pitch))))
            x = cell_left + (pitch - ink.shape[1]) / 2 + float(u(-0.1, 0.1)) * pitch
        elif previous == DIGIT and token == DIGIT:
            space = float(u(*gap)) * mean_w
            touching |= space <= 0.0
            x += space
        elif previous is not None and previous != GAP:
            x += float(u(0.04, 0.3)) * height
        baseline = drift * x + float(rng.normal(0.0, wobble)) * height
        placed.append((token, ink, int(round(x)), int(round(baseline + top))))
        x += ink.shape[1]
        previous = token

    margin_x, margin_y = int(round(float(u(0.15, 0.8)) * height)), int(round(float(u(0.2, 0.6)) * height))
    xs0 = min(px for _, _, px, _ in placed)
    if cells:
        xs0 = min(xs0, 0)
    ys0 = min(py for _, _, _, py in placed)
    width = max(px + ink.shape[1] for _, ink, px, _ in placed) - xs0 + 2 * margin_x
    if cells:
        width = max(width, cells[-1][1] - xs0 + 2 * margin_x)
    rows = max(py + ink.shape[0] for _, ink, _, py in placed) - ys0 + 2 * margin_y
    digit_ink = np.zeros((rows, width), np.float32)
    mark_ink = np.zeros((rows, width), np.float32)
    for token, ink, px, py in placed:
        layer = digit_ink if token == DIGIT else mark_ink
        ox, oy = px - xs0 + margin_x, py - ys0 + margin_y
        region = layer[oy:oy + ink.shape[0], ox:ox + ink.shape[1]]
        np.maximum(region, ink, out=region)
    # The shear moves the baseline row by this much; printed cells stay upright around it.
    baseline_row = rows - margin_y
    shift = int(round(slant * (rows - baseline_row) if slant > 0 else -slant * baseline_row))
    digit_ink, mark_ink = _shear(digit_ink, slant), _shear(mark_ink, slant)
    rows, width = digit_ink.shape

    # Where the written number stands, for the printed frame.
    ys, xs = np.nonzero(np.maximum(digit_ink, mark_ink) > 0.3)
    body = (int(xs.min()), int(ys.min()), int(xs.max()), int(np.percentile(ys, 97)))
    cells = [(a - xs0 + margin_x + shift, b - xs0 + margin_x + shift) for a, b in cells]
    printed = frame_print(frame, (rows, width), body, cells, height, rng)

    pen = _printer(rng) if typed else draw_pen(pen_kind, height, rng)
    grain = None
    if pen.grain:
        grain = np.clip(1.0 - pen.grain * rng.random((rows, width)).astype(np.float32), 0.0, 1.0)
        grain = cv2.GaussianBlur(grain, (0, 0), 0.5)
    written = apply_pen(np.maximum(digit_ink, mark_ink), pen, grain)
    if pen.kind == "ballpoint":  # pressure changes along the line
        written = written * np.clip(1.0 - 0.25 * np.abs(_mottle(written.shape, rng, u(8, 30))), 0.5, 1.0)

    paper = make_paper(paper_kind, (rows, width), height, rng)
    print_colour = _hsv_colour(u(0, 360), u(0.0, 0.8), u(0.2, 0.7))
    paper = _lay(paper, float(u(0.5, 0.9)) * printed, print_colour)
    page = _lay(paper, written, np.asarray(pen.colour, np.float32))
    image = cv2.cvtColor(np.clip(np.rint(page * 255.0), 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    if scan and fam.scan and rng.random() < 0.6:
        image = degrade.random_scan(image, rng, strength=fam.scan)
    return ComposedField(
        image=image, digits="".join(truth), text="".join(text).strip(), family=family, paper=paper_kind, pen=pen_kind,
        frame=frame, separators=separators, marks=marks, touching=touching, broken=broken, raised=bool(raised_at),
        digit_ink=apply_pen(digit_ink, pen, grain) if keep_layers else None,
        mark_ink=apply_pen(mark_ink, pen, grain) if keep_layers else None,
        cells=[(max(0, a), min(width, b)) for a, b in cells], printed=typed)


def _printer(rng: np.random.Generator) -> Pen:
    """A printer's or typewriter's ink: even, dark or now and then blue, an ink-jet's slight bleed."""
    u = rng.uniform
    colour = (u(0.45, 0.7), u(0.12, 0.3), u(0.02, 0.15)) if rng.random() < 0.15 else (u(0.0, 0.15),) * 3
    return Pen("print", 0, u(0.8, 1.0), colour, bleed=u(0.3, 0.7) if rng.random() < 0.2 else 0.0)


# ---------------------------------------------------------------- entry points


def training_field(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   family: Optional[str] = None, length: Optional[int] = None,
                   frame: Optional[str] = None) -> ComposedField:
    """A field for training or fitting: a training family (drawn at random unless named, never the
    held-out one) and a length it writes (drawn at random unless given). Pass MNIST training digits."""
    if family is None:
        fitting = [f for f in TRAINING_FAMILIES if length is None or length in FAMILIES[f].lengths]
        family = str(rng.choice(fitting))
    fam = check_training_family(family)
    if length is None:
        length = int(rng.choice(fam.lengths))
    return compose_field(family, images, labels, rng, length, frame=frame)


def printed_field(fonts: Sequence, rng: np.random.Generator, family: Optional[str] = None,
                  length: Optional[int] = None, **style) -> ComposedField:
    """A training family's field set in one of ``fonts``: a printed counterpart of ``training_field``
    on the same papers and frames, so that a frame or a paper says nothing about the hand."""
    if family is None:
        family = str(rng.choice([f for f in TRAINING_FAMILIES if length is None or length in FAMILIES[f].lengths]))
    fam = check_training_family(family)
    if length is None:
        length = int(rng.choice(fam.lengths))
    font = fonts[int(rng.integers(len(fonts)))]
    return compose_field(family, np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64), rng, length, font=font,
                         **style)


def held_out_fields(test_images: np.ndarray, test_labels: np.ndarray, count: int, seed: int,
                    lengths: Sequence[int] = tuple(range(3, 10))) -> list[ComposedField]:
    """``count`` fields of the held-out family, the lengths taken in turn, for measuring only.

    Pass MNIST *test* digits: neither they nor this family's papers and pens are in any training.
    """
    rng = np.random.default_rng(seed)
    return [compose_field(HELD_OUT_FAMILY, test_images, test_labels, rng, int(lengths[n % len(lengths)]))
            for n in range(count)]


def family_fields(family: str, images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                  lengths: Optional[Sequence[int]] = None) -> list[ComposedField]:
    """``count`` fields of one family (lengths it writes in turn, within ``lengths`` when given)."""
    fam = FAMILIES[family]
    usable = [n for n in fam.lengths if lengths is None or n in lengths] or list(fam.lengths)
    rng = np.random.default_rng(seed)
    return [compose_field(family, images, labels, rng, usable[n % len(usable)]) for n in range(count)]
