"""Crops that hold no number, as ``read-digits`` is handed them: real handwritten words and bits
of words (DHSD), hand-printed capitals and letters, rules and lines, blank paper, smudges and
blots. What P(a field is a number) is fitted on (DHSD *training* writers) and measured on
(DHSD validation writers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

# Letters whose hand-printed capital is drawn like a digit (O 0, I 1, Z 2, S 5, B 8, G 6, Q 9,
# D 0, L and T 1 or 7): a lone one is a number field's reading, not a negative.
DIGIT_LIKE_LETTERS = set("OIZSBGQDLT")
NOT_NUMBER_KINDS = ("word", "letters", "capitals", "capital", "rule", "blank", "smudge")


def load_words(dhsd_dir: str | Path, writers: Sequence[int]) -> list[np.ndarray]:
    """The DHSD words of ``writers`` as grey images (names that hold a digit are left out)."""
    from docsort.training.synth.handwriting import load_dhsd

    return [image for image, text, _ in load_dhsd(dhsd_dir, writers=writers)
            if not any(c.isdigit() for c in text)]


def word_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A DHSD word as someone would cut it from a scan: the form's frame dropped, cropped to the
    ink with some paper, dark ink, at a scan's size; or, now and then, the file as it is."""
    if rng.random() < 0.25:
        return image
    ink = 255.0 - image.astype(np.float32)
    ink = np.clip(ink / max(1.0, float(ink.max())), 0, 1)
    ink[:, :4] = ink[:, -4:] = 0  # some scans carry the frame of the writing box at the edges
    ink[:3, :] = ink[-3:, :] = 0
    ys, xs = np.nonzero(ink > 0.3)
    if len(xs) == 0:
        return image
    pad = int(rng.integers(2, 12))
    ink = ink[max(0, ys.min() - pad):ys.max() + pad + 1, max(0, xs.min() - pad):xs.max() + pad + 1]
    scale = float(rng.uniform(30, 90)) / max(12, ys.max() - ys.min() + 1)
    ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return (255.0 * (1.0 - np.clip(ink * float(rng.uniform(1.0, 1.6)), 0, 1))).astype(np.uint8)


def _letters(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three letters of a word: a window of its ink about as wide as it is tall."""
    ys, xs = np.nonzero(word < 160)
    if len(xs) < 10:
        return word
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    width = int(min(x1 - x0, max(4, (y1 - y0) * rng.uniform(0.4, 1.6))))
    start = int(rng.integers(x0, max(x0 + 1, x1 - width + 1)))
    pad = 4
    return word[max(0, y0 - pad):y1 + pad, max(0, start - pad):start + width + pad]


def _capitals(words: Sequence[str], rng: np.random.Generator, single: bool) -> np.ndarray:
    """Hand-printed capitals (the project's pen): a word, or one letter that looks like no digit."""
    from docsort.training.synth import pen

    if single:
        letters = [c for c in "ACEFHJKMNPRUVWXY" if c not in DIGIT_LIKE_LETTERS]
        text = letters[int(rng.integers(0, len(letters)))]
    else:
        text = pen.supported(words[int(rng.integers(0, len(words)))]) or "STRASSE"
    image, _ = pen.write(text, float(rng.uniform(20, 70)), rng)
    return image


def _rule(rng: np.random.Generator) -> np.ndarray:
    """Lines that are no writing: a rule, an underline, a dashed line, an empty box, a wave."""
    h, w = int(rng.integers(24, 90)), int(rng.integers(40, 400))
    page = np.full((h, w), 255, np.uint8)
    thick = int(rng.integers(1, 5))
    shade = int(rng.integers(0, 120))
    kind = rng.integers(0, 5)
    y = int(rng.integers(h // 4, 3 * h // 4 + 1))
    if kind == 0:  # a straight rule, maybe tilted
        cv2.line(page, (2, y), (w - 3, y + int(rng.integers(-h // 4, h // 4 + 1))), shade, thick, cv2.LINE_AA)
    elif kind == 1:  # a dashed or dotted line
        step = int(rng.integers(6, 20))
        for x in range(2, w - 3, step):
            cv2.line(page, (x, y), (min(w - 3, x + step // 2), y), shade, thick, cv2.LINE_AA)
    elif kind == 2:  # an empty box or the bottom of one
        cv2.rectangle(page, (2, 2), (w - 3, h - 3), shade, thick)
    elif kind == 3:  # a wavy line
        xs = np.arange(2, w - 2)
        ys = y + (h / 6) * np.sin(xs / float(rng.uniform(5, 20)) + float(rng.uniform(0, 6)))
        cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, shade, thick, cv2.LINE_AA)
    else:  # two or three parallel rules
        for k in range(int(rng.integers(2, 4))):
            yy = int((k + 1) * h / 4)
            cv2.line(page, (2, yy), (w - 3, yy), shade, thick, cv2.LINE_AA)
    return page


def _blank(rng: np.random.Generator) -> np.ndarray:
    """Empty paper: grain, uneven light, maybe a faint speck."""
    h, w = int(rng.integers(20, 100)), int(rng.integers(20, 300))
    paper = np.full((h, w), float(rng.uniform(180, 255)), np.float32)
    paper += np.linspace(0, float(rng.uniform(-30, 30)), w)[None, :]
    paper += rng.normal(0, float(rng.uniform(0, 10)), (h, w))
    if rng.random() < 0.4:
        cv2.circle(paper, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 3)),
                   float(rng.uniform(60, 160)), -1)
    return np.clip(paper, 0, 255).astype(np.uint8)


def _smudge(rng: np.random.Generator) -> np.ndarray:
    """A smudge, a blot, a scribble or a stain: ink that is no digit."""
    h, w = int(rng.integers(24, 100)), int(rng.integers(24, 260))
    ink = np.zeros((h, w), np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # soft smudges
        for _ in range(int(rng.integers(1, 4))):
            cv2.circle(ink, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(4, max(5, h // 2))),
                       float(rng.uniform(0.4, 1.0)), -1)
        ink = cv2.GaussianBlur(ink, (0, 0), float(rng.uniform(2, 8)))
    elif kind == 1:  # solid blots
        for _ in range(int(rng.integers(1, 3))):
            cv2.ellipse(ink, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (int(rng.integers(3, max(4, w // 3))), int(rng.integers(3, max(4, h // 2)))),
                        float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    elif kind == 2:  # a scribble: a pen wandering over the paper
        steps = int(rng.integers(20, 80))
        pts = np.cumsum(rng.normal(0, max(2.0, h / 8), (steps, 2)), axis=0)
        pts -= pts.min(axis=0)
        pts *= np.array([w - 6, h - 6]) / np.maximum(pts.max(axis=0), 1)
        cv2.polylines(ink, [(pts + 3).astype(np.int32)], False, 1.0, int(rng.integers(1, 5)), cv2.LINE_AA)
    else:  # a stain: a large faint blob with a darker rim
        centre = (w // 2 + int(rng.integers(-w // 4, w // 4 + 1)), h // 2)
        axes = (int(rng.integers(max(4, w // 5), max(5, w // 2))), int(rng.integers(max(4, h // 5), max(5, h // 2))))
        cv2.ellipse(ink, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.2, 0.5)), -1)
        cv2.ellipse(ink, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.5, 0.9)), 2)
        ink = cv2.GaussianBlur(ink, (0, 0), 1.5)
    return (255.0 * (1.0 - np.clip(ink, 0, 1))).astype(np.uint8)


def not_number_fields(words: Sequence[np.ndarray], texts: Sequence[str], count: int, seed: int
                      ) -> tuple[list[np.ndarray], list[str]]:
    """``count`` crops that hold no number, and their kinds (``NOT_NUMBER_KINDS``): about half
    real handwritten words, the rest bits of words, hand-printed capitals, lines, blanks and smudges."""
    from docsort.training.synth import degrade

    rng = np.random.default_rng(seed)
    shares = np.array([0.45, 0.15, 0.1, 0.06, 0.08, 0.06, 0.1])
    crops, kinds = [], []
    for _ in range(count):
        kind = NOT_NUMBER_KINDS[int(rng.choice(len(shares), p=shares / shares.sum()))]
        if kind == "word":
            crop = word_crop(words[int(rng.integers(0, len(words)))], rng)
        elif kind == "letters":
            crop = _letters(word_crop(words[int(rng.integers(0, len(words)))], rng), rng)
        elif kind in ("capitals", "capital"):
            crop = _capitals(texts, rng, single=kind == "capital")
        elif kind == "rule":
            crop = _rule(rng)
        elif kind == "blank":
            crop = _blank(rng)
        else:
            crop = _smudge(rng)
        if kind in ("capitals", "capital", "rule", "smudge") and rng.random() < 0.5:
            crop = degrade.random_scan(crop, rng, strength=0.6)
        crops.append(crop)
        kinds.append(kind)
    return crops, kinds


def word_fields(dhsd_dir: str | Path, writers: Sequence[int], count: int, seed: int) -> list[np.ndarray]:
    """``count`` real handwritten words of ``writers``, cut as ``word_crop`` cuts them."""
    rng = np.random.default_rng(seed)
    words = load_words(dhsd_dir, writers)
    picks = rng.choice(len(words), size=min(count, len(words)), replace=False)
    return [word_crop(words[int(i)], rng) for i in picks]


