"""Codes in frames the envelope generator never draws, on pages as the page pipeline meets them.

- A form's comb: a writing line with short teeth rising between a code's cells and no top to
  the cells (customs declarations, registered-mail slips, order forms). The string readers'
  field families draw combs in cut fields (``synth.fields``), but the envelope generator draws
  boxes, cells and rules on its pages, no comb.
- A frame drawn by hand round the code: a ring or a box, as people mark the code on an envelope.

For the tests and ``benchmarks/bench_frames.py``: a code of real handwritten digits on an
otherwise empty page.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def comb_page(digits: Sequence[np.ndarray], size: tuple[int, int] = (900, 1800), x0: int = 760,
              base: int = 480, pitch: int = 56, tooth: int = 18, digit_height: int = 40, lift: int = 6,
              print_grey: int = 120, paper: int = 250, teeth: bool = True) -> np.ndarray:
    """A grey page with ``digits`` (MNIST-style images, ink bright on black) written one to a
    cell of a comb: the line at row ``base``, teeth ``tooth`` px tall every ``pitch`` px, each
    digit ``digit_height`` px tall standing ``lift`` px above the line. ``teeth=False``: the
    line alone, the same digits in the same places."""
    page = np.full(size, paper, np.uint8)
    cv2.line(page, (x0, base), (x0 + pitch * len(digits), base), print_grey, 2)
    if teeth:
        for k in range(len(digits) + 1):
            cv2.line(page, (x0 + k * pitch, base), (x0 + k * pitch, base - tooth), print_grey, 2)
    for k, digit in enumerate(digits):
        ys, xs = np.nonzero(digit > 40)
        ink = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        width = max(8, int(ink.shape[1] * digit_height / ink.shape[0]))
        ink = cv2.resize(ink, (width, digit_height), interpolation=cv2.INTER_LINEAR)
        left, top = x0 + k * pitch + (pitch - width) // 2, base - lift - digit_height
        area = page[top:top + digit_height, left:left + width]
        page[top:top + digit_height, left:left + width] = np.minimum(area, 255 - ink)
    return page


def hand_framed_page(digits: Sequence[np.ndarray], rng: np.random.Generator, shape: str = "ring",
                     size: tuple[int, int] = (900, 1800), x0: int = 760, base: int = 480, pitch: int = 52,
                     digit_height: int = 40, paper: int = 250) -> np.ndarray:
    """A grey page with ``digits`` written in a row and a frame drawn round them by hand: a
    ``ring`` (an ellipse a little wobbly, its end overrunning its start) or a ``box`` (four
    strokes, shaky, the last overshooting the first corner), 3 px of dark pen."""
    page = np.full(size, paper, np.uint8)
    for k, digit in enumerate(digits):
        ys, xs = np.nonzero(digit > 40)
        ink = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        width = max(8, int(ink.shape[1] * digit_height / ink.shape[0]))
        ink = cv2.resize(ink, (width, digit_height), interpolation=cv2.INTER_LINEAR)
        left, top = x0 + k * pitch + (pitch - width) // 2, base - digit_height
        area = page[top:top + digit_height, left:left + width]
        page[top:top + digit_height, left:left + width] = np.minimum(area, 255 - ink)
    span = pitch * len(digits)
    if shape == "ring":
        t = np.linspace(0.0, 2.0 * np.pi * rng.uniform(1.03, 1.12), 240) + rng.uniform(0, 2 * np.pi)
        wobble = 1.0 + 0.04 * np.sin(3 * t + rng.uniform(0, 2 * np.pi))
        rx, ry = span / 2 + rng.uniform(14, 32), digit_height * rng.uniform(0.8, 1.1)
        points = np.stack([x0 + span / 2 + rx * wobble * np.cos(t),
                           base - digit_height / 2 + ry * wobble * np.sin(t)], axis=1)
    else:
        m = rng.uniform(7, 16)
        corners = [(x0 - m, base - digit_height - m), (x0 + span + m, base - digit_height - m),
                   (x0 + span + m, base + m), (x0 - m, base + m), (x0 - m, base - digit_height - m - 6)]
        points = np.concatenate([np.linspace(a, b, 40) for a, b in zip(corners, corners[1:])])
        drift = np.cumsum(rng.normal(0.0, 0.35, points.shape), axis=0)
        points += np.stack([np.convolve(drift[:, i], np.ones(9) / 9, mode="same") for i in (0, 1)], axis=1)
    cv2.polylines(page, [points.astype(np.int32)], False, 30, 3)
    return page


def written_code_page(digits: Sequence[np.ndarray], spaces: Sequence[int], size: tuple[int, int] = (900, 1800),
                      x0: int = 760, base: int = 480, digit_height: int = 40, paper: int = 248) -> np.ndarray:
    """A grey page with ``digits`` written in a row on no frame at all, ``spaces[k]`` px of paper
    after digit ``k``: a word space after the third writes the code in two groups (``114 55``, as
    Sweden, Czechia, Slovakia and Greece write it)."""
    page = np.full(size, paper, np.uint8)
    x = x0
    for digit, space in zip(digits, list(spaces) + [0]):
        ys, xs = np.nonzero(digit > 40)
        ink = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        width = max(8, int(ink.shape[1] * digit_height / ink.shape[0]))
        ink = cv2.resize(ink, (width, digit_height), interpolation=cv2.INTER_LINEAR)
        area = page[base - digit_height:base, x:x + width]
        page[base - digit_height:base, x:x + width] = np.minimum(area, 255 - ink)
        x += width + int(space)
    return page
