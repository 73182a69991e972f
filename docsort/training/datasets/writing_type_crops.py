"""The printed/handwritten crop sets: what the writing-type classifier is trained and validated on.

Printed crops: random mail text (words, numbers, postal codes, address lines) rendered in the
installed fonts. Handwritten crops: real DHSD words and number strings composed from MNIST
digits. Both classes also come as Tesseract cuts them: synthetic pages holding both kinds of
writing are scanned-degraded, Tesseract's word boxes are cut out and labelled by what lies under
them. Every crop, whatever its class, then goes through the same steps -- fragmenting (whole
word, part of a word, a single character), rescaling to a random text height, the same scanner
degradations, the same normalisation (``docsort.reading.writing_type.prepare``) -- so the only thing
that tells the classes apart is the writing itself, not canvas, resolution or ink colour.
A crop that shows no writing -- a cut that fell on blank paper, a lone period blown up to a
blob -- has no true class; it is drawn again, in training and validation alike.

Validation uses DHSD writers, font families and MNIST digits that training never sees
(``build_validation``); ``held_out_draw`` draws them again for ``evaluate writing-type --draw``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from docsort.reading import writing_type as wt
from docsort.training.datasets.framed_fields import framed_field_pair
from docsort.training.synth import degrade
from docsort.training.synth.handwriting import compose_digit_string, dhsd_writer_split, load_dhsd
from docsort.training.synth.printed import Font, font_split, random_printed_text, render_text

PRINTED, HANDWRITTEN = 0, 1
CLASS_NAMES = ("printed", "handwritten")
DATA_VERSION = 5
# A crop whose ink, once normalised, covers more of the frame than this shows no shape: a lone
# period or hyphen blown up to the crop's height, or a scan that drowned the writing.
MAX_INK_FILL = 0.85
# Ink shorter than this on the scan shows no letter's shape: a sliver of a stroke, a speck.
# Normalising it to the classifier's height blows it up into a smooth gradient.
MIN_INK_HEIGHT = 6
# A clean source image whose darkest pixel is within this many grey levels of its paper is blank.
MIN_SOURCE_CONTRAST = 40


@dataclass
class TrainingConfig:
    dhsd_dir: Path
    mnist_dir: Path
    out_dir: Path
    cache_dir: Optional[Path] = None
    epochs: int = 10  # the shipped model's (models/MODEL_CARD.md)
    limit: Optional[int] = None
    seed: int = 0
    # Which member of an ensemble this model is: members draw their own training crops and start
    # from their own weights; the writer/font split and the validation set are those of ``seed``.
    member: int = 0
    batch_size: int = 64
    workers: int = 2
    # Crops per source in the full training set; --limit caps the total.
    printed_rendered: int = 18000
    dhsd_words: int = 12000
    digit_strings: int = 8000
    single_characters: int = 6000
    lone_pieces: int = 0
    lone_characters: int = 4000
    styled_printed: int = 2000
    letter_spaced: int = 3000
    punctuated: int = 3000
    pen_strokes: int = 0
    # Pairs of number fields in pre-printed frames (underlines, boxes, combs, cells), one printed
    # and one handwritten, whole or cut cell by cell (``datasets.framed_fields``).
    framed_fields: int = 3000
    # Office print and office scans (``datasets.office_crops``): printed words in real italic,
    # bold and condensed faces, small caps, typewriter, dot-matrix and thermal print, and real
    # handwriting in pencil and thin pen, through 1-bit and grey scans at 150-400 dpi; and words
    # Tesseract cuts from pages of mixed roman and italic paragraphs.
    office_printed: int = 16000
    office_handwritten: int = 9000
    paragraph_pages: int = 48
    validation_office_printed: int = 1500
    validation_office_handwritten: int = 1000
    validation_paragraph_pages: int = 8
    # Weight averaging (0: the last step's weights are saved).
    ema_momentum: float = 0.0
    # The last epochs train with BatchNorm statistics fixed (0: batch statistics throughout),
    # measured first on this many training crops.
    fixed_statistics_epochs: int = 3
    recalibration_crops: int = 20000
    tesseract_pages: int = 120
    validation_printed: int = 2500
    validation_digit_strings: int = 1500
    validation_tesseract_pages: int = 40
    # The lone-character model: trained and measured only on the crops at most ``max_width``
    # wide once normalised (lone characters and slivers), with a wider network (``filters``).
    # None: the main model, on all crops.
    max_width: Optional[int] = None
    # The shape of the shipped second looks. On one core the first convolutions at full and half
    # resolution take most of the time whatever their filters (ONNX Runtime pads them to blocks of
    # 16 channels), so the shipped main network runs none at full resolution: (16, 32, 64, 192,
    # 256) with ``stem_stride`` 2, 1.8 times as fast as this shape (models/MODEL_CARD.md).
    filters: tuple[int, ...] = (4, 16, 32, 96, 192, 256)
    # The first convolution's step (``train.writing_type.build_model``); 2 halves the pooling
    # the crop's 32 rows allow, so ``filters`` then holds at most five convolutions.
    stem_stride: int = 1
    # A trained classifier (a models folder, or one network) whose probabilities on each
    # training batch the targets move ``teacher_share`` of the way to (None: the labels alone).
    teacher: Optional[Path] = None
    teacher_share: float = 0.5
    name: str = "writing_type"
    # Training print also in the extra font families (``synth.printed.EXTRA_PACKAGES``); measured,
    # not shipped (models/MODEL_CARD.md: print gains, handwriting loses on validation).
    extra_fonts: bool = False
    # The extras' share of the faces training print is drawn in (None: each face once, about 0.8).
    extra_font_share: Optional[float] = None
    # Each training crop gets a new scan's look each epoch (``train.writing_type.rescan``).
    rescan: bool = True
    # Half of each batch moved by a pixel or two (``train.writing_type.shifted``).
    jitter: bool = True
    # Crops that hold no writing (cuts of handwritten words that fall on blank paper, ink a few
    # pixels tall, shapeless blobs) are drawn again, in training and validation alike: neither
    # class is their truth.
    only_writing: bool = True

    @property
    def draw_seed(self) -> int:
        """Seed of the training crops and weights: ``seed`` for the first member of an ensemble."""
        return self.seed + 1000 * self.member

    def scaled(self) -> "TrainingConfig":
        """The source sizes cut down proportionally when ``limit`` is set (quick runs, tests)."""
        if not self.limit:
            return self
        total = self.printed_rendered + self.dhsd_words + self.digit_strings
        f = min(1.0, self.limit / total)
        c = TrainingConfig(**{**asdict(self)})
        c.printed_rendered = max(8, int(self.printed_rendered * f))
        c.dhsd_words = max(6, int(self.dhsd_words * f))
        c.digit_strings = max(4, int(self.digit_strings * f))
        c.single_characters = max(2, int(self.single_characters * f))
        c.lone_pieces = max(min(2, self.lone_pieces), int(self.lone_pieces * f))
        c.lone_characters = max(min(2, self.lone_characters), int(self.lone_characters * f))
        c.styled_printed = max(min(2, self.styled_printed), int(self.styled_printed * f))
        c.letter_spaced = max(min(2, self.letter_spaced), int(self.letter_spaced * f))
        c.punctuated = max(min(2, self.punctuated), int(self.punctuated * f))
        c.pen_strokes = max(min(2, self.pen_strokes), int(self.pen_strokes * f))
        c.framed_fields = max(min(2, self.framed_fields), int(self.framed_fields * f))
        c.office_printed = max(min(4, self.office_printed), int(self.office_printed * f))
        c.office_handwritten = max(min(4, self.office_handwritten), int(self.office_handwritten * f))
        c.paragraph_pages = min(1, self.paragraph_pages)
        c.validation_office_printed = max(min(4, self.validation_office_printed),
                                          int(self.validation_office_printed * f))
        c.validation_office_handwritten = max(min(4, self.validation_office_handwritten),
                                              int(self.validation_office_handwritten * f))
        c.validation_paragraph_pages = min(1, self.validation_paragraph_pages)
        c.tesseract_pages = 1 if self.limit < 5000 else max(1, int(self.tesseract_pages * f))
        c.validation_printed = max(8, int(self.validation_printed * f))
        c.validation_digit_strings = max(4, int(self.validation_digit_strings * f))
        c.validation_tesseract_pages = 1
        return c


# --- Making crops: what both classes share ----------------------------------------------------

def ink_mask(img: np.ndarray) -> np.ndarray:
    """The ink of a clean source image (dark on light): darker than paper by 40 % of the contrast.

    Relative, not a fixed grey level: faint pencil or pale ink (DHSD words whose darkest stroke is
    grey 150) is ink too, and a fixed cut would find only its darkest speck.
    """
    paper, darkest = int(img.max()), int(img.min())
    if paper - darkest < MIN_SOURCE_CONTRAST:
        return np.zeros(img.shape, bool)
    return img < paper - 0.4 * (paper - darkest)


def _ink_rows_cols(img: np.ndarray) -> Optional[tuple[int, int, int, int]]:
    mask = ink_mask(img)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] + 1), int(rows[-1] + 1)


def holds_ink(piece: np.ndarray) -> bool:
    """Whether a cut of a clean (dark on white) word image holds writing, not just paper."""
    return int(ink_mask(piece).sum()) >= max(8, int(0.02 * piece.size))


def shows_writing(crop: np.ndarray) -> bool:
    """Whether a finished crop shows writing the classifier can judge: ink with a shape.

    Blank paper (no contrast), ink only a few pixels tall and blobs whose normalised ink fills
    the frame carry nothing of either class; a label on them is noise in training and luck in
    validation.
    """
    grey = wt.as_grey(crop)
    found = wt.ink_box(grey)
    if found is None:
        return False
    (_, y0, _, y1), _, _ = found
    if y1 - y0 < MIN_INK_HEIGHT:
        return False
    prepared = wt.normalise(grey, found)
    inner = prepared[wt.MARGIN_PX:wt.HEIGHT - wt.MARGIN_PX, wt.MARGIN_PX:prepared.shape[1] - wt.MARGIN_PX]
    return inner.size == 0 or float(inner.mean()) <= MAX_INK_FILL


def drawn(make: Callable, tries: int = 8):
    """``make()``, drawn again (up to ``tries`` times) until every crop it returns shows writing."""
    for _ in range(tries):
        made = make()
        if all(shows_writing(c) for c in (made if isinstance(made, tuple) else (made,))):
            break
    return made


def fragment(img: np.ndarray, rng: np.random.Generator, char_boxes: Optional[list] = None,
             need_ink: bool = False) -> np.ndarray:
    """Cut a crop as Tesseract cuts handwriting: whole, a piece of the word, or one character.

    ``char_boxes`` (x, width of each character) makes the cuts follow character boundaries;
    without them (cursive words) the cuts fall anywhere, as Tesseract's do in joined writing.
    A cut can fall between letters onto blank paper; with ``need_ink`` it is drawn again, so
    training never labels paper as handwriting.
    """
    for _ in range(8):
        piece = _fragment_once(img, rng, char_boxes)
        if not need_ink or holds_ink(piece):
            return piece
    return img


def _fragment_once(img: np.ndarray, rng: np.random.Generator, char_boxes: Optional[list]) -> np.ndarray:
    box = _ink_rows_cols(img)
    if box is None:
        return img
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    roll = rng.random()
    if roll < 0.7 or w < 1.2 * h:
        return img
    single = roll < 0.85
    if char_boxes:
        first = int(rng.integers(len(char_boxes)))
        last = first if single else int(rng.integers(first, len(char_boxes)))
        a, b = char_boxes[first][0], char_boxes[last][0] + char_boxes[last][1]
    else:
        width = int(h * rng.uniform(0.4, 1.0)) if single else int(w * rng.uniform(0.25, 0.7))
        a = x0 + int(rng.integers(0, max(1, w - width)))
        b = a + width
    jitter = max(1, h // 12)
    a = max(0, a - int(rng.integers(0, jitter + 1)))
    b = min(img.shape[1], b + int(rng.integers(0, jitter + 1)))
    return img[:, a:b] if b - a >= 2 else img


def _tight(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut to the ink plus 0-3 px of paper, as Tesseract's word boxes hug the ink."""
    lo, hi = np.percentile(img, (1, 95))
    if hi - lo < 20:
        return img
    mask = img < hi - 0.5 * (hi - lo)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    pad = int(rng.integers(0, 4))
    y0, y1 = max(0, rows[0] - pad), min(img.shape[0], rows[-1] + 1 + pad)
    x0, x1 = max(0, cols[0] - pad), min(img.shape[1], cols[-1] + 1 + pad)
    return img[y0:y1, x0:x1]


def type_height(size_px: float) -> int:
    """Ink height of a capital at this font size: the scale of the line a printed piece is cut from.

    A lone hyphen or period keeps the size it has in its line, as Tesseract's cuts do, rather
    than being blown up to the height of a word.
    """
    return max(1, int(round(0.7 * size_px)))


def ink_height(img: np.ndarray) -> Optional[int]:
    """Height of the ink in a clean (dark on white) image; None for blank paper."""
    box = _ink_rows_cols(img)
    return None if box is None else box[3] - box[1]


def scan_like(img: np.ndarray, rng: np.random.Generator, text_height: Optional[int] = None) -> np.ndarray:
    """Put a clean crop (dark on light) through a random scan, at a random text height.

    ``text_height`` is the ink height of the word (or, for print, of a capital in the line) a
    piece was cut from: the piece keeps that scale, as Tesseract's cuts keep the page's. Without
    it the crop's own ink sets the scale, which would blow a sliver of a stroke or a hyphen up to
    the size of a word.
    """
    box = _ink_rows_cols(img)
    if box is None:
        return img
    x0, y0, x1, y1 = box
    ink_h = max(1, text_height or (y1 - y0))
    # From small print on a 200 dpi scan to headline or large handwriting at 300 dpi.
    target = math.exp(rng.uniform(math.log(14), math.log(100)))
    factor = target / ink_h
    body = img[y0:y1, x0:x1]
    new_size = (max(1, int(round(body.shape[1] * factor))), max(1, int(round(body.shape[0] * factor))))
    body = cv2.resize(body, new_size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    margin = int(rng.integers(2, max(3, int(0.35 * target) + 3)))
    # Tilting a long line moves its ends up and down: leave room so nothing is cut off.
    vertical = margin + int(0.06 * body.shape[1])
    paper = int(np.percentile(img, 95))
    out = cv2.copyMakeBorder(body, vertical, vertical, margin, margin, cv2.BORDER_CONSTANT, value=paper)
    if target > 24 and rng.random() < 0.25:
        out = degrade.stroke_width(out, int(rng.choice([-1, 1, 2])))
    out = degrade.random_scan(out, rng, strength=float(rng.uniform(0.2, 1.0)))
    return _tight(out, rng) if rng.random() < 0.8 else out


def random_type(rng: np.random.Generator, bold: Optional[tuple[float, int]] = None,
                condense: Optional[tuple[float, float, float]] = None,
                shear: Optional[tuple[float, float, float]] = None,
                tracking: Optional[tuple[float, float, float]] = None) -> dict:
    """A font size from small print to headlines, and the type styles each kind of crop calls for.

    Each style is drawn for a share of the crops: ``bold`` is (share, size divisor: the most
    pixels of emboldening is size // divisor), the others (share, low, high). A style left out
    is not drawn at all.
    """
    size = int(math.exp(rng.uniform(math.log(14), math.log(72))))
    style: dict = {"size_px": size}
    if bold is not None:
        share, divisor = bold
        style["embolden"] = int(rng.integers(1, max(1, size // divisor) + 1)) if rng.random() < share else 0
    for name, rule, plain in (("condense", condense, 1.0), ("shear", shear, 0.0), ("tracking", tracking, 0.0)):
        if rule is not None:
            share, low, high = rule
            style[name] = float(rng.uniform(low, high)) if rng.random() < share else plain
    return style


def scanned_type(text: str, font: Font, rng: np.random.Generator, style: dict) -> np.ndarray:
    """Text rendered in ``style`` (from ``random_type``) and scanned at the scale of its line."""
    return scan_like(render_text(text, font.path, rng=rng, **style), rng, type_height(style["size_px"]))


def printed_crop(rng: np.random.Generator, fonts: list[Font]) -> np.ndarray:
    font = fonts[int(rng.integers(len(fonts)))]
    text = random_printed_text(rng).strip()
    # Tesseract cuts printed text at character boundaries: single characters and word pieces.
    roll = rng.random()
    if roll < 0.15 and len(text) > 1:
        text = next((ch for ch in rng.permutation(list(text)) if not ch.isspace()), text)
    elif roll < 0.25 and len(text) > 2:
        a = int(rng.integers(0, len(text) - 1))
        text = text[a:int(rng.integers(a + 2, len(text) + 1))].strip() or text
    style = random_type(rng, bold=(0.12, 28), condense=(0.3, 0.7, 1.15), shear=(0.12, 0.08, 0.25),
                        tracking=(0.15, 0.05, 0.4))
    return scanned_type(text, font, rng, style)


def styled_printed_crop(rng: np.random.Generator, fonts: list[Font]) -> np.ndarray:
    """Printed text in bold, oblique, condensed, wide or letter-spaced type far more often than ``printed_crop``.

    Type styles the training fonts lack (heavy italics, display faces) are what the model most
    often takes for handwriting; faked styles of the training fonts stand in for them.
    """
    from docsort.training.synth.printed import random_symbol_text

    font = fonts[int(rng.integers(len(fonts)))]
    text = (random_symbol_text(rng) if rng.random() < 0.3 else random_printed_text(rng)).strip() or "A"
    if rng.random() < 0.4 and len(text) > 1:
        text = next((ch for ch in rng.permutation(list(text)) if not ch.isspace()), text)
    style = random_type(rng, bold=(0.4, 20), condense=(0.4, 0.65, 1.3), shear=(0.5, 0.08, 0.3),
                        tracking=(0.25, 0.1, 0.6))
    return scanned_type(text, font, rng, style)


def punctuated_crop(rng: np.random.Generator, fonts: list[Font]) -> np.ndarray:
    """A printed word or number with brackets, quotes or marks attached, as Tesseract cuts them.

    Half are bilevel scans and a third are bold: angle brackets and quotes in heavy type, with
    a short number or word between them, are the printed crops most often taken for handwriting.
    """
    from docsort.training.synth.printed import random_punctuated_text

    font = fonts[int(rng.integers(len(fonts)))]
    style = random_type(rng, bold=(0.35, 24), tracking=(0.15, 0.05, 0.3))
    crop = scanned_type(random_punctuated_text(rng), font, rng, style)
    return degrade.binarise(crop) if rng.random() < 0.5 else crop


def dhsd_crop(rng: np.random.Generator, words: list[np.ndarray], need_ink: bool = False) -> np.ndarray:
    img = words[int(rng.integers(len(words)))]
    img = _split_word(img, rng) if rng.random() < 0.3 else img
    return scan_like(fragment(img, rng, need_ink=need_ink), rng, ink_height(img))


def single_character_pair(rng: np.random.Generator, fonts: list[Font], digits: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """A printed symbol or short token and a handwritten single digit, half of them bilevel scans.

    Lone characters and bilevel (fax-like) scans are where the two kinds of writing look most
    alike; both classes get them in equal numbers so neither becomes a shortcut.
    """
    from docsort.training.synth.printed import random_symbol_text

    font = fonts[int(rng.integers(len(fonts)))]
    text = random_symbol_text(rng) if rng.random() < 0.6 else str(rng.integers(0, 10))
    printed = scanned_type(text, font, rng, random_type(rng, tracking=(0.3, 0.05, 0.4)))
    digit, _ = compose_digit_string([digits[int(rng.integers(len(digits)))]], rng,
                                    height=float(rng.uniform(20, 100)), stroke=int(rng.integers(-1, 3)),
                                    ink=int(rng.integers(0, 120)))
    handwritten = scan_like(digit, rng)
    if rng.random() < 0.5:
        printed, handwritten = degrade.binarise(printed), degrade.binarise(handwritten)
    return printed, handwritten


def lone_character_pair(rng: np.random.Generator, fonts: list[Font], words: list[np.ndarray],
                        need_ink: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A printed lone character in a random style and a character-wide cut of a handwritten word.

    Lone characters are where the classifier errs most: printed symbols and letters in bold,
    oblique or condensed type, and slivers of joined handwriting cut anywhere, as Tesseract
    cuts them. Both classes get them in equal numbers.
    """
    from docsort.training.synth.printed import random_symbol_text

    font = fonts[int(rng.integers(len(fonts)))]
    source = random_symbol_text(rng) if rng.random() < 0.4 else random_printed_text(rng)
    text = next((ch for ch in rng.permutation(list(source)) if not ch.isspace()), "A")
    style = random_type(rng, bold=(0.2, 28), condense=(0.3, 0.7, 1.15), shear=(0.2, 0.08, 0.25))
    printed = scanned_type(text, font, rng, style)
    word = words[int(rng.integers(len(words)))]
    box = _ink_rows_cols(word)
    word_height = None
    if box is not None:
        x0, y0, x1, y1 = box
        h, w = y1 - y0, x1 - x0
        word_height = h
        for _ in range(8 if need_ink else 1):
            width = min(w, int(h * rng.uniform(0.4, 1.0)))
            a = x0 + int(rng.integers(0, max(1, w - width)))
            if width >= 2 and (not need_ink or holds_ink(word[:, a:a + width])):
                word = word[:, a:a + width]
                break
    handwritten = scan_like(word, rng, word_height)
    return printed, handwritten


def ink_pieces(img: np.ndarray) -> list[tuple[int, int]]:
    """Column spans of ink separated by blank paper: where Tesseract can cut a word apart.

    Spans holding little of the word's ink (specks, dust) are left out.
    """
    mass = ink_mask(img).sum(axis=0)
    inked = (mass > 0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked, [0]))))
    total = max(1, int(mass.sum()))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])
            if b - a >= 3 and mass[a:b].sum() >= 0.04 * total]


def lone_piece_pair(rng: np.random.Generator, fonts: list[Font], words: list[np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A printed lone character and a piece of a real handwritten word cut at an ink gap.

    Tesseract cuts lone letters, digits and punctuation out of printed lines, and cuts
    handwriting where the pen left the paper: one letter, or a few joined ones. These slivers
    are where the classifier errs most, so both classes get them in equal numbers, half of
    them as bilevel scans.
    """
    font = fonts[int(rng.integers(len(fonts)))]
    text = random_printed_text(rng).replace(" ", "") or "A"
    first = int(rng.integers(len(text)))
    text = text[first:first + (1 if rng.random() < 0.75 else 2)]
    printed = scanned_type(text, font, rng, random_type(rng))
    word = words[int(rng.integers(len(words)))]
    word_height = ink_height(word)
    pieces = ink_pieces(word)
    if len(pieces) > 1:
        first = int(rng.integers(len(pieces)))
        last = min(len(pieces) - 1, first + (0 if rng.random() < 0.75 else 1))
        a, b = pieces[first][0], pieces[last][1]
        pad = int(rng.integers(0, 3))
        word = word[:, max(0, a - pad):min(word.shape[1], b + pad)]
    handwritten = scan_like(word, rng, word_height)
    if rng.random() < 0.5:
        printed, handwritten = degrade.binarise(printed), degrade.binarise(handwritten)
    return printed, handwritten


def letter_spaced_crop(rng: np.random.Generator, fonts: list[Font]) -> np.ndarray:
    """Letter-spaced printing and lone letters, often as bilevel scans.

    Spaced-out capitals on forms and lone letters cut from a line are printed crops whose
    letters stand apart like hand-printed ones; on a bilevel scan the font's fine detail is gone.
    """
    font = fonts[int(rng.integers(len(fonts)))]
    roll = rng.random()
    if roll < 0.35:
        text = str(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")))
    else:
        text = random_printed_text(rng).strip() or "A"
        if rng.random() < 0.4:
            text = text.upper()
    style = random_type(rng)
    style["tracking"] = float(rng.uniform(0.1, 0.6)) if roll >= 0.35 else 0.0
    crop = scanned_type(text, font, rng, style)
    return degrade.binarise(crop) if rng.random() < 0.5 else crop


def pen_crop(rng: np.random.Generator) -> np.ndarray:
    """The project's own stroke handwriting (``synth.pen``): hand-printed block capitals.

    An optional training source (``pen_strokes``, 0 in the shipped recipe): hand-printed capitals
    look most like print; validation stays on real handwriting.
    """
    from docsort.training.synth import pen
    from docsort.training.synth.printed import NAMES, random_city_line, random_postal_code, random_street_line

    roll = rng.random()
    if roll < 0.3:
        text = random_postal_code(rng)
    elif roll < 0.5:
        text = str(rng.choice(NAMES))
    elif roll < 0.7:
        text = random_city_line(rng)
    elif roll < 0.85:
        text = random_street_line(rng)
    else:
        text = str(rng.integers(1, 10 ** int(rng.integers(1, 6))))
    text = pen.supported(text) or "A"
    # Tesseract cuts an address line into words: mostly one word is the crop.
    words = text.split()
    text = str(rng.choice(words)) if words and rng.random() < 0.7 else text
    height = float(math.exp(rng.uniform(math.log(16), math.log(80))))
    img, boxes = pen.write(text, height, rng, ink=int(rng.integers(0, 120)))
    crop = scan_like(fragment(img, rng, [(x, w) for x, _, w, _ in boxes] or None), rng, ink_height(img))
    return degrade.binarise(crop) if rng.random() < 0.2 else crop


def _split_word(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One word of a multi-word name, cut at the widest blank gap, as Tesseract splits words."""
    cols = ink_mask(img).any(axis=0)
    inked = np.flatnonzero(cols)
    if len(inked) < 2:
        return img
    gaps = np.diff(inked)
    i = int(np.argmax(gaps))
    if gaps[i] < 0.25 * img.shape[0]:
        return img
    cut = int(inked[i] + gaps[i] // 2)
    return img[:, :cut] if rng.random() < 0.5 else img[:, cut:]


def digit_string_crop(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    length = int(rng.choice([1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9]))
    chosen = [digits[i] for i in rng.integers(0, len(digits), size=length)]
    lo = float(rng.uniform(-0.35, 0.3))
    gap = (lo, lo + float(rng.uniform(0.05, 0.5)))
    height = float(math.exp(rng.uniform(math.log(20), math.log(100))))
    stroke = int(rng.integers(-1, max(1, int(height / 25)) + 1))
    ink = int(rng.integers(0, 120))
    img, boxes = compose_digit_string(chosen, rng, gap=gap, height=height, stroke=stroke, ink=ink)
    return scan_like(fragment(img, rng, [(x, w) for x, _, w, _ in boxes]), rng, ink_height(img))


# --- Tesseract's own cuts from synthetic pages -------------------------------------------------

@dataclass
class PageSources:
    fonts: list[Font]
    words: list[np.ndarray]
    digits: np.ndarray


_page_sources: Optional[PageSources] = None


def _init_page_worker(sources: PageSources) -> None:
    global _page_sources
    _page_sources = sources


def _item_image(rng: np.random.Generator, sources: PageSources) -> tuple[np.ndarray, int]:
    roll = rng.random()
    if roll < 0.5:
        font = sources.fonts[int(rng.integers(len(sources.fonts)))]
        size = int(rng.integers(16, 56))
        return render_text(random_printed_text(rng), font.path, size, rng, margin=0.05), PRINTED
    if roll < 0.8:
        img = sources.words[int(rng.integers(len(sources.words)))]
        box = _ink_rows_cols(img)
        if box is not None:
            img = img[box[1]:box[3], box[0]:box[2]]
        f = rng.uniform(0.6, 1.8)
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        return img, HANDWRITTEN
    length = int(rng.integers(1, 10))
    chosen = [sources.digits[i] for i in rng.integers(0, len(sources.digits), size=length)]
    img, _ = compose_digit_string(chosen, rng, gap=(-0.2, 0.6), height=float(rng.uniform(25, 80)),
                                  stroke=int(rng.integers(0, 3)), ink=int(rng.integers(0, 100)), margin=0.02)
    return img, HANDWRITTEN


def synthetic_page(seed: int, sources: PageSources) -> tuple[np.ndarray, list[tuple[tuple[int, int, int, int], int]]]:
    """A page of printed and handwritten items in rows, scanner-degraded, with each item's box and class."""
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(1400, 2000)), int(rng.integers(1000, 1500))
    page = np.full((height, width), 255, np.uint8)
    items = []
    y = int(rng.integers(30, 80))
    while True:
        row = [_item_image(rng, sources) for _ in range(int(rng.integers(1, 4)))]
        row_h = max(img.shape[0] for img, _ in row)
        if y + row_h > height - 30:
            break
        x = int(rng.integers(30, 120))
        for img, kind in row:
            h, w = img.shape
            if x + w > width - 30:
                break
            top = y + (row_h - h) // 2
            region = page[top:top + h, x:x + w]
            np.minimum(region, img, out=region)
            box = _ink_rows_cols(img)
            if box is not None:
                items.append(((x + box[0], top + box[1], box[2] - box[0], box[3] - box[1]), kind))
            x += w + int(rng.integers(40, 160))
        y += row_h + int(rng.integers(25, 90))
    page = degrade.random_scan(page, rng, strength=float(rng.uniform(0.2, 1.0)))
    return page, items


def _overlap(a, b) -> int:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return max(0, w) * max(0, h)


def label_word_boxes(words, items) -> list[tuple[int, int]]:
    """(word index, class) for Tesseract words that lie clearly on one kind of writing."""
    labelled = []
    for i, word in enumerate(words):
        area = word.bbox[2] * word.bbox[3]
        if area <= 0:
            continue
        cover = [0, 0]
        for box, kind in items:
            cover[kind] += _overlap(word.bbox, box)
        kind = int(np.argmax(cover))
        if cover[kind] >= 0.5 * area and cover[1 - kind] <= 0.05 * area:
            labelled.append((i, kind))
    return labelled


def _tesseract_page_crops(seed: int) -> list[tuple[np.ndarray, int, float]]:
    from docsort.page import tesseract as segment

    page, items = synthetic_page(seed, _page_sources)
    words = segment.words(page)
    crops = []
    for i, kind in label_word_boxes(words, items):
        x, y, w, h = words[i].bbox
        crops.append((page[y:y + h, x:x + w].copy(), kind, words[i].conf))
    return crops


def tesseract_crops(sources: PageSources, seeds: list[int], workers: int, cache: Optional[Path],
                    log: Callable[[str], None]) -> list[tuple[np.ndarray, int, float]]:
    """Crops Tesseract cuts from synthetic pages (cached: Tesseract is the slow part)."""
    cached = load_cached_crops(cache)
    if cached is not None:
        return cached
    started = time.time()
    crops: list = []
    if workers > 1 and len(seeds) > 1:
        with ProcessPoolExecutor(workers, initializer=_init_page_worker, initargs=(sources,)) as pool:
            for page_crops in pool.map(_tesseract_page_crops, seeds):
                crops.extend(page_crops)
    else:
        _init_page_worker(sources)
        for seed in seeds:
            crops.extend(_tesseract_page_crops(seed))
    log(f"tesseract: {len(seeds)} pages -> {len(crops)} labelled crops in {time.time() - started:.0f} s")
    save_cached_crops(cache, crops)
    return crops


def load_cached_crops(cache: Optional[Path]) -> Optional[list]:
    """Crops an earlier run cut with Tesseract and kept in ``cache``, or None."""
    if cache is None or not cache.is_file():
        return None
    with cache.open("rb") as fh:
        return pickle.load(fh)


def save_cached_crops(cache: Optional[Path], crops: list) -> None:
    """Keep Tesseract's crops for the next run, written whole or not at all."""
    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(crops, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, cache)


# --- Data sets ----------------------------------------------------------------------------------

@dataclass
class CropSet:
    """Raw crops (uint8 grey, dark on light) with labels and the source each came from."""

    crops: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    tesseract_conf: list[float] = field(default_factory=list)  # page-level conf, NaN if not cut by Tesseract
    # Conditions of each crop for the per-condition table ("italic", "1-bit", "pencil"...; see
    # ``office_crops.CONDITIONS``); empty for the sources that do not record them.
    tags: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, crop: np.ndarray, label: int, source: str, conf: float = float("nan"),
            tags: tuple[str, ...] = ()) -> None:
        self.crops.append(crop)
        self.labels.append(label)
        self.sources.append(source)
        self.tesseract_conf.append(conf)
        self.tags.append(tuple(tags))

    def __len__(self) -> int:
        return len(self.labels)


def mnist_splits(mnist_dir: Path):
    from docsort.training.datasets import mnist

    data = mnist.load(mnist_dir)
    train, validation = mnist.train_validation_split(data.train)
    return data, train, validation


def _dataset_hashes(config: TrainingConfig, mnist_data) -> dict:
    csv_path = Path(config.dhsd_dir) / "data.csv"
    from docsort.reading.manifest import file_sha256

    return {"mnist": dict(mnist_data.sha256), "dhsd_data_csv": file_sha256(str(csv_path.resolve()))}


def _cache_file(config: TrainingConfig, name: str, key: dict) -> Optional[Path]:
    if config.cache_dir is None:
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(config.cache_dir) / f"writing_type_{name}_{digest}.pkl"


def build_sets(config: TrainingConfig, log: Callable[[str], None] = lambda m: None):
    """Training and validation crop sets, plus a description of what went in (for the metrics)."""
    config = config.scaled()
    writers = dhsd_writer_split(config.seed)
    fonts = font_split(config.seed)
    if not config.extra_fonts:
        fonts = fonts.without_extra()
    mnist_data, mnist_train, mnist_val = mnist_splits(config.mnist_dir)
    dhsd = load_dhsd(config.dhsd_dir)
    train_words = [img for img, _, w in dhsd if w in writers.train]
    # The sealed writers are the held-out family's (``office_crops.sealed_family``): not validation.
    val_words = [(img, text) for img, text, w in dhsd if w in writers.selection]
    log(f"data: {len(train_words)} DHSD training words, {len(val_words)} validation words, "
        f"{len(fonts.train)}/{len(fonts.held_out)} training/held-out fonts, {len(fonts.extra)} extra training faces")

    rng = np.random.default_rng(config.draw_seed)
    clean = config.only_writing
    draw = drawn if clean else (lambda make: make())
    printed_fonts = fonts.weighted_training(config.extra_font_share)
    train = CropSet()
    for _ in range(config.printed_rendered):
        train.add(draw(lambda: printed_crop(rng, printed_fonts)), PRINTED, "printed_rendered")
    for _ in range(config.dhsd_words):
        train.add(draw(lambda: dhsd_crop(rng, train_words, need_ink=clean)), HANDWRITTEN, "dhsd")
    for _ in range(config.digit_strings):
        train.add(draw(lambda: digit_string_crop(rng, mnist_train.images)), HANDWRITTEN, "digit_strings")
    pairs = (("single_characters", config.single_characters,
              lambda: single_character_pair(rng, printed_fonts, mnist_train.images)),
             ("lone_pieces", config.lone_pieces, lambda: lone_piece_pair(rng, printed_fonts, train_words)),
             ("lone_characters", config.lone_characters,
              lambda: lone_character_pair(rng, printed_fonts, train_words, need_ink=clean)),
             ("framed_fields", config.framed_fields,
              lambda: framed_field_pair(rng, printed_fonts, mnist_train.images, mnist_train.labels)))
    for source, count, make_pair in pairs:
        for _ in range(count):
            printed, handwritten = draw(make_pair)
            train.add(printed, PRINTED, source)
            train.add(handwritten, HANDWRITTEN, source)
    for source, count, make in (("letter_spaced", config.letter_spaced, letter_spaced_crop),
                                ("styled_printed", config.styled_printed, styled_printed_crop),
                                ("punctuated", config.punctuated, punctuated_crop)):
        for _ in range(count):
            train.add(draw(lambda: make(rng, printed_fonts)), PRINTED, source)
    for _ in range(config.pen_strokes):
        train.add(draw(lambda: pen_crop(rng)), HANDWRITTEN, "pen_strokes")
    key = {"v": DATA_VERSION, "seed": config.seed, "pages": config.tesseract_pages, "fonts": fonts.families(),
           "writers": writers.to_dict(), "hash": _dataset_hashes(config, mnist_data)}
    if fonts.extra:
        key["extra_fonts"] = sorted(f.path for f in fonts.extra)
        if config.extra_font_share is not None:
            key["extra_font_share"] = config.extra_font_share
    page_seeds = [config.seed * 1_000_003 + 1 + i for i in range(config.tesseract_pages)]
    sources = PageSources(printed_fonts, train_words, mnist_train.images)
    for crop, kind, conf in tesseract_crops(sources, page_seeds, config.workers,
                                            _cache_file(config, "train_pages", key), log):
        if not clean or shows_writing(crop):
            train.add(crop, kind, "tesseract_pages", conf)
    by_writer: dict[int, list[np.ndarray]] = {}
    for img, _, w in dhsd:
        if w in writers.train:
            by_writer.setdefault(w, []).append(img)
    _add_office(train, config, rng, printed_fonts, by_writer, mnist_train.images,
                config.office_printed, config.office_handwritten,
                [config.seed * 1_000_003 + 700_000 + i for i in range(config.paragraph_pages)], "train", log)

    validation = build_validation(config, fonts, writers, val_words, mnist_val.images, log)
    if config.max_width:
        train, validation = narrow_crops(train, config.max_width), narrow_crops(validation, config.max_width)
        log(f"data: lone-character model, crops up to {config.max_width} px wide: "
            f"{len(train)} training, {len(validation)} validation")
    meta = {
        "writer_split": writers.to_dict(),
        "font_split": {**fonts.families(), "extra_train": fonts.extra_families()},
        "dataset_sha256": _dataset_hashes(config, mnist_data),
        "mnist_digits": {"train": "MNIST training set minus the project's fixed validation split",
                         "validation": "the project's fixed MNIST validation split (never the test set)"},
        "train_sources": _count_sources(train),
        "validation_sources": _count_sources(validation),
    }
    return train, validation, meta


def narrow_crops(crops: CropSet, max_width: int) -> CropSet:
    """The crops at most ``max_width`` wide once normalised: lone characters and slivers."""
    kept = CropSet()
    for crop, label, source, conf, tags in zip(crops.crops, crops.labels, crops.sources, crops.tesseract_conf,
                                               crops.tags):
        if wt.prepare(crop).shape[1] <= max_width:
            kept.add(crop, label, source, conf, tags)
    return kept


def build_validation(config: TrainingConfig, fonts, writers, val_words, val_digits, log) -> CropSet:
    """Held-out writers, fonts and digits; fixed by the seed, so every evaluation sees the same crops."""
    validation = _held_out_crops(config, fonts, val_words, val_digits, np.random.default_rng(config.seed + 7919))
    key = {"v": DATA_VERSION, "seed": config.seed, "pages": config.validation_tesseract_pages,
           "fonts": fonts.families(), "writers": writers.to_dict(), "n_words": len(val_words)}
    page_seeds = [config.seed * 1_000_003 + 500_000 + i for i in range(config.validation_tesseract_pages)]
    sources = PageSources(list(fonts.held_out), [img for img, _ in val_words], val_digits)
    for crop, kind, conf in tesseract_crops(sources, page_seeds, config.workers,
                                            _cache_file(config, "validation_pages", key), log):
        if not config.only_writing or shows_writing(crop):
            validation.add(crop, kind, "tesseract_pages", conf)
    by_writer: dict[int, list[np.ndarray]] = {}
    for img, _, w in load_dhsd(config.dhsd_dir, writers.selection):
        by_writer.setdefault(w, []).append(img)
    _add_office(validation, config, np.random.default_rng(config.seed + 7927), list(fonts.held_out), by_writer,
                val_digits, config.validation_office_printed, config.validation_office_handwritten,
                [config.seed * 1_000_003 + 800_000 + i for i in range(config.validation_paragraph_pages)],
                "validation", log)
    return validation


def _add_office(crops: CropSet, config: TrainingConfig, rng: np.random.Generator, fonts, by_writer, digits,
                printed: int, handwritten: int, page_seeds: list[int], name: str, log) -> None:
    """Office print and handwriting through office scans, and Tesseract's cuts of paragraph pages."""
    from docsort.training.datasets import office_crops

    keep = shows_writing if config.only_writing else (lambda c: True)
    for crop, label, tags in office_crops.office_crops(rng, printed, handwritten, fonts, by_writer, digits,
                                                       keep=keep):
        crops.add(crop, label, f"office_{CLASS_NAMES[label]}", tags=tags)
    key = {"v": DATA_VERSION, "seed": config.seed, "pages": page_seeds, "fonts": sorted({f.path for f in fonts})}
    if len(fonts) != len({f.path for f in fonts}):  # faces weighted by repetition draw other pages
        key["faces_drawn"] = len(fonts)
    for crop, label, conf, tags in office_crops.paragraph_crops(
            fonts, page_seeds, config.workers, _cache_file(config, f"{name}_paragraph_pages", key), log):
        if keep(crop):
            crops.add(crop, label, "paragraph_pages", conf, tags=tags)


def held_out_draw(config: TrainingConfig, fonts, val_words, val_digits, seed: int) -> CropSet:
    """A further draw of the held-out writers, fonts and digits, cut, sized and scanned anew with
    ``seed``, as the validation set is but without Tesseract pages. The validation set is one
    draw; its figure carries that draw's luck, and these measure how much."""
    return _held_out_crops(config, fonts, val_words, val_digits, np.random.default_rng(seed))


def _held_out_crops(config: TrainingConfig, fonts, val_words, val_digits, rng: np.random.Generator) -> CropSet:
    """Every held-out DHSD word once (fewer with ``limit``), then the validation's counts of digit
    strings and printed crops in held-out fonts, all drawn with ``rng``."""
    crops = CropSet()
    limit_words = len(val_words) if not config.limit else max(6, config.validation_printed // 2)
    clean = config.only_writing
    draw = drawn if clean else (lambda make: make())
    for img, _ in val_words[:limit_words]:
        crops.add(draw(lambda: dhsd_crop(rng, [img], need_ink=clean)), HANDWRITTEN, "dhsd")
    for _ in range(config.validation_digit_strings):
        crops.add(draw(lambda: digit_string_crop(rng, val_digits)), HANDWRITTEN, "digit_strings")
    for _ in range(config.validation_printed):
        crops.add(draw(lambda: printed_crop(rng, list(fonts.held_out))), PRINTED, "printed_held_out_fonts")
    return crops


def _count_sources(crops: CropSet) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for label, source in zip(crops.labels, crops.sources):
        entry = counts.setdefault(source, {"printed": 0, "handwritten": 0})
        entry[CLASS_NAMES[label]] += 1
    return counts
