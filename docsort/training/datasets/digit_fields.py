"""Handwritten number fields composed from real MNIST digits, with their truth.

There are no labelled handwritten postal codes or number fields in the data, so every reader
of number fields is trained, calibrated and measured on fields composed here from MNIST digits
(the split decides which: training digits, the validation digits held out of training, or test
digits) with the project's handwriting and scanner simulation (``training.synth``):

- ``compose_field``: one field of any length, spacing, pen, slant and scanner;
- ``compose_strings``: codes as they stand on envelopes (digits apart, 30-80 px, scanned), each
  digit used once while the pool lasts: the trade-off curves and the field combination;
- ``number_fields``: fields of 1 to 10 digits, written every way ``read-digits`` meets them:
  its calibration and its reliability measurement.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from docsort import settings
from docsort.training.synth import degrade
from docsort.training.synth.handwriting import compose_digit_string

# The lengths of the number fields ``read-digits`` is calibrated and measured on.
LENGTHS = tuple(range(1, 11))


def compose_field(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, length: int,
                  gap: tuple[float, float], height: float, stroke: int, scan: float = 0.0,
                  slant: tuple[float, float] = (-0.25, 0.25), baseline_jitter: float = 0.08,
                  scale_jitter: float = 0.12, ink: int = 0, paper: int = 255) -> tuple[np.ndarray, str]:
    """One composed number field (grey, dark on light) and its digits; ``scan`` > 0 scans it."""
    idx = rng.integers(0, len(images), size=length)
    image, _ = compose_digit_string([images[i] for i in idx], rng, gap=gap, height=height, stroke=stroke,
                                    slant=slant, baseline_jitter=baseline_jitter, scale_jitter=scale_jitter,
                                    ink=ink, paper=paper)
    if scan > 0:
        image = degrade.random_scan(image, rng, strength=scan)
    return image, "".join(str(int(labels[i])) for i in idx)


def compose_strings(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                    code_length: int = settings.CODE_LENGTH) -> tuple[list[np.ndarray], list[list], list[str]]:
    """``count`` scanned handwritten codes made of the given MNIST digits, their digit boxes and truth.

    Digits are drawn without replacement (a fresh permutation when the pool runs out), so with
    enough digits every string is made of digits no other string uses.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    pos = 0
    strings, boxes, truths = [], [], []
    for _ in range(count):
        if pos + code_length > len(order):
            order, pos = rng.permutation(len(labels)), 0
        idx = order[pos:pos + code_length]
        pos += code_length
        # Envelope scans at 200-300 dpi: handwritten digits 4-7 mm tall are 30-80 px.
        height = float(rng.uniform(30, 80))
        stroke = int(rng.random() < 0.3)  # now and then a broader pen
        # Postal codes are mostly written with the digits apart, sometimes touching.
        image, digit_boxes = compose_digit_string([images[i] for i in idx], rng, gap=(-0.1, 0.6),
                                                  height=height, stroke=stroke)
        strings.append(degrade.random_scan(image, rng, strength=0.6))
        boxes.append(digit_boxes)
        truths.append("".join(str(int(labels[i])) for i in idx))
    return strings, boxes, truths


def number_fields(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                  lengths: Sequence[int] = LENGTHS, family_share: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """``count`` number fields (grey, dark on light) and their digits, the lengths taken in turn.

    Each field is written one of four ways, drawn at random: as on an envelope (apart, scanned,
    30-80 px tall), touching and overlapping (the ``read-digits`` benchmark), any writer's habit
    (spacing, size, pen, slant, scanner: the whole-field reader's training mix), or, for a lone
    digit now and then, the MNIST image itself (either polarity, some paper around it). With
    ``family_share``, that share are instead number fields of the training families
    (``synth.fields``: separators, marks, frames, patterned paper, pens; never the held-out one).
    """
    from docsort.training.synth import fields as field_synth

    rng = np.random.default_rng(seed)
    fields, truths = [], []
    for n in range(count):
        length = int(lengths[n % len(lengths)])
        if family_share and rng.random() < family_share:
            composed = field_synth.training_field(images, labels, rng, length=length)
            fields.append(composed.image)
            truths.append(composed.digits)
            continue
        style = rng.random()
        if length == 1 and style < 0.2:
            k = int(rng.integers(0, len(images)))
            digit = images[k] if rng.random() < 0.3 else 255 - images[k]
            image = np.pad(digit, int(rng.integers(0, 12)), constant_values=int(digit[0, 0]))
            fields.append(image.astype(np.uint8))
            truths.append(str(int(labels[k])))
            continue
        if style < 0.35:
            image, text = compose_field(images, labels, rng, length, (-0.1, 0.6), float(rng.uniform(30, 80)),
                                        int(rng.random() < 0.3))
            image = degrade.random_scan(image, rng, strength=0.6)
        elif style < 0.6:
            image, text = compose_field(images, labels, rng, length, (-0.3, 0.5), float(rng.uniform(28, 56)),
                                        int(rng.integers(0, 2)))
        else:
            lo = float(rng.uniform(-0.35, 0.6))
            slant = float(rng.uniform(0.0, 0.35))
            height = float(rng.uniform(18, 80))
            image, text = compose_field(
                images, labels, rng, length, (lo, lo + float(rng.uniform(0.05, 0.9))), height,
                int(rng.choice([-1, 0, 0, 0, 1, 1, 2])) if height > 36 else int(rng.choice([0, 0, 0, 1])),
                scan=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 0.0, slant=(-slant, slant),
                baseline_jitter=float(rng.uniform(0.0, 0.12)), scale_jitter=float(rng.uniform(0.05, 0.18)),
                ink=int(rng.uniform(0, 90)), paper=int(rng.uniform(190, 256)))
        fields.append(image)
        truths.append(text)
    return fields, truths
