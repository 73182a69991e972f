"""Codes written into a form's comb: a writing line with short teeth rising between the cells.

Forms (customs declarations, registered-mail slips, order forms) print a code's cells this way,
with no top to the cells. The string readers' field families draw combs in cut fields
(``synth.fields``), but the envelope generator draws boxes, cells and rules on its pages, no comb.
These pages are for the tests and ``benchmarks/bench_combs.py``: a code written digit by digit
with real handwritten digits, one to a cell, on an otherwise empty page, as the page pipeline
meets it.
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
