"""Number fields in pre-printed frames, handwritten and printed, cut as Tesseract cuts them.

Forms and envelopes print underlines, boxes, combs and cells for a number, and people write one
digit to a cell. Tesseract cuts such a field whole, or cell by cell: a lone handwritten digit
between printed lines. With no frames in its training data the classifier read the frame as
print and called the hand inside it printed. Here both classes get the same frames and papers
(``synth.fields``: the training field families; the held-out ``cheque`` family never), the hand
from MNIST digits, the print from the training fonts, and the same cuts, so that a frame says
nothing about who filled it in.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from docsort.training.synth import degrade, fields
from docsort.training.synth.printed import Font

# One pair in this many is drawn from the one-digit-per-cell family, where lone cells are cut.
CELL_FAMILY_SHARE = 0.4
# Printed fields emboldened and oblique: few, since bold oblique digits are what a thick,
# slanted hand looks most like, and this source exists to teach frames, not type styles.
PRINTED_BOLD, PRINTED_OBLIQUE = 0.08, 0.04


def cell_cut(field: fields.ComposedField, first: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Cells ``first`` .. ``first + count - 1`` of a field: with or without the cell walls, as a
    word box around the cell's ink or around its printed lines would fall."""
    a, b = field.cells[first][0], field.cells[first + count - 1][1]
    width = field.image.shape[1]
    if rng.random() < 0.5:  # the box takes in the cell's walls
        a, b = a - int(rng.integers(0, 4)), b + int(rng.integers(0, 4))
    else:  # the box stops inside them
        inset = max(2, (b - a) // 12)
        a, b = a + int(rng.integers(2, inset + 3)), b - int(rng.integers(2, inset + 3))
    a, b = max(0, a), min(width, b)
    return field.image[:, a:b] if b - a >= 4 else field.image


def field_crop(field: fields.ComposedField, rng: np.random.Generator) -> np.ndarray:
    """The field whole, or (in cells) one to three cells of it; resized and now and then 1-bit."""
    crop = field.image
    if field.cells and rng.random() < 0.7:
        count = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
        count = min(count, len(field.cells))
        crop = cell_cut(field, int(rng.integers(0, len(field.cells) - count + 1)), count, rng)
    # Scans from 150 to 400 dpi: the same field comes small or large.
    factor = math.exp(rng.uniform(math.log(0.55), math.log(1.5)))
    size = (max(2, int(round(crop.shape[1] * factor))), max(2, int(round(crop.shape[0] * factor))))
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    return degrade.binarise(crop) if rng.random() < 0.2 else crop


def framed_field_pair(rng: np.random.Generator, fonts: Sequence[Font], digits: np.ndarray, labels: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A printed and a handwritten field of one training family in the same frame (never none:
    unframed digit strings of both classes come from other sources), each cut as Tesseract may
    cut it."""
    if rng.random() < CELL_FAMILY_SHARE:
        family = "form-comb"
    else:
        family = str(rng.choice([f for f in fields.TRAINING_FAMILIES if f != "form-comb"]))
    frame = str(rng.choice([f for f in fields.FAMILIES[family].frames if f != "none"]))
    printed = fields.printed_field(fonts, rng, family=family, frame=frame, bold=PRINTED_BOLD,
                                   oblique=PRINTED_OBLIQUE)
    handwritten = fields.training_field(digits, labels, rng, family=family, frame=frame)
    return field_crop(printed, rng), field_crop(handwritten, rng)
