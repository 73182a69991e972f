"""Hand-printed digits in the shapes people write that MNIST's writers did not, in MNIST's format.

Every reader of ours learnt its digits from MNIST, and so did every fit that weighs them: when a
hand unlike MNIST's comes, our readers misread it *surely*, and the combination, fitted where
they are strong, trusts them over the line reader (PP-OCR, trained on much real text), which
reads it right. These digits are a second, independent source of hands: drawn with the pen of
``synth.pen`` (jittered strokes, slant, pen width, size), each writer choosing one way of
writing each digit (``ALLOGRAPHS``): an open or a closed 4, a 9 with a straight, upright or
hooked tail, a 2 with or without a loop, a flat-topped 3, a 1 as a stick, with a flag or on a
foot, a 7 plain, crossed or hooked, a slashed 0.

They are framed as MNIST frames its digits (28 x 28, ink high, the longer side 20 px, centred
by the centre of mass), so every composer of fields and codes takes them in place of MNIST
digits. They are drawn, not written: a measure on them says how the readers meet *another* hand,
not how well they read real ones.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from docsort.training.synth import pen
from docsort.training.synth.pen import _GLYPHS as PLAIN, Stroke, _arc

SIZE = 28


# The ways of writing each digit, in a unit box (x right, y down, 0..1 the digit's height),
# with how common each is among writers; ``PLAIN`` is the pen's own way (``synth.pen``).
ALLOGRAPHS: dict[str, list[tuple[float, list[Stroke]]]] = {
    "0": [(0.85, PLAIN["0"]),
          (0.15, [_arc(0.5, 0.5, 0.36, 0.5, -90, 275, 24), [(0.82, 0.08), (0.18, 0.92)]])],  # slashed
    "1": [(0.35, [[(0.5, 0.0), (0.5, 1.0)]]),  # a stick
          (0.4, [[(0.2, 0.3), (0.55, 0.0), (0.55, 1.0)]]),  # flagged
          (0.25, [[(0.25, 0.25), (0.55, 0.0), (0.55, 1.0)], [(0.22, 1.0), (0.88, 1.0)]])],  # on a foot
    "2": [(0.5, PLAIN["2"]),
          (0.3, [_arc(0.5, 0.3, 0.36, 0.3, 200, 360, 10) + _arc(0.5, 0.3, 0.36, 0.3, 0, 50, 5)
                 + [(0.22, 0.86)] + _arc(0.24, 0.92, 0.1, 0.08, -60, 250, 10) + [(0.92, 0.98)]]),  # looped
          (0.2, [[(0.12, 0.1), (0.4, 0.0), (0.85, 0.08), (0.12, 1.0), (0.92, 1.0)]])],  # angular
    "3": [(0.7, PLAIN["3"]),
          (0.3, [[(0.12, 0.0), (0.85, 0.0), (0.42, 0.42)] + _arc(0.46, 0.71, 0.38, 0.29, -90, 145, 14)])],  # flat top
    "4": [(0.5, PLAIN["4"]),  # closed
          (0.5, [[(0.2, 0.0), (0.1, 0.62), (0.95, 0.62)], [(0.7, 0.15), (0.7, 1.0)]])],  # open
    "5": [(0.6, PLAIN["5"]),
          (0.4, [[(0.24, 0.0), (0.17, 0.45)] + _arc(0.48, 0.68, 0.38, 0.32, -120, 150, 14),
                 [(0.24, 0.02), (0.88, 0.0)]])],  # the bar drawn last
    "6": [(0.6, PLAIN["6"]),
          (0.4, [[(0.66, 0.0), (0.18, 0.6)] + _arc(0.5, 0.7, 0.34, 0.3, 180, 540, 22)])],  # straight stem
    "7": [(0.5, PLAIN["7"]),
          (0.3, PLAIN["7"] + [[(0.3, 0.52), (0.85, 0.48)]]),  # crossed
          (0.2, [[(0.06, 0.18), (0.08, 0.0), (0.92, 0.0), (0.45, 1.0)]])],  # hooked top
    "8": [(0.7, PLAIN["8"]),
          (0.3, [_arc(0.5, 0.28, 0.26, 0.28, 90, 450, 18), _arc(0.5, 0.76, 0.34, 0.24, -90, 270, 18)])],
    "9": [(0.4, PLAIN["9"]),
          (0.3, [_arc(0.5, 0.32, 0.36, 0.32, 0, 360, 18) + [(0.86, 0.32), (0.86, 1.0)]]),  # upright tail
          (0.3, [_arc(0.5, 0.32, 0.36, 0.32, 0, 360, 18) + [(0.86, 0.32)]
                 + _arc(0.56, 0.66, 0.3, 0.32, 0, 150, 10)])],  # hooked tail
}


def choose_hand(rng: np.random.Generator) -> dict[str, list[Stroke]]:
    """One writer's way of writing each digit."""
    hand = {}
    for digit, ways in ALLOGRAPHS.items():
        weights = np.array([w for w, _ in ways])
        hand[digit] = ways[int(rng.choice(len(ways), p=weights / weights.sum()))][1]
    return hand


def draw_digit(label: int, rng: np.random.Generator, hand: Optional[dict] = None,
               writer: Optional[pen.Writer] = None) -> np.ndarray:
    """One digit by a pen writer, framed as MNIST frames its digits: (28, 28) uint8, ink high."""
    from docsort.reading.digits.mnist_format import frame

    height = float(rng.uniform(24, 44))
    hand = hand or choose_hand(rng)
    grey, _ = pen.write(str(int(label)), height, rng, writer or pen.Writer.random(rng, height), glyphs=hand)
    ink = (255.0 - grey.astype(np.float32)) / 255.0
    ys, xs = np.nonzero(ink > 0.05)
    if ys.size == 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    box = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return np.clip(np.round(frame(box) * 255.0), 0, 255).astype(np.uint8)


def draw_like(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A pen-drawn digit for every label, each by a writer of its own: (n, 28, 28) uint8, so
    ``(draw_like(labels, rng), labels)`` stands in for any split of MNIST."""
    return np.stack([draw_digit(int(label), rng) for label in labels]) if len(labels) else \
        np.zeros((0, SIZE, SIZE), np.uint8)
