"""Synthetic envelope scans with ground truth, for demos, tests and benchmarks.

An envelope here is laid out like real mail: the sender's printed return address top-left
(often with its own postal code, the classic trap for a code reader), a stamp and postmark
top-right, and the destination block near the centre — name, street, postal code and city,
handwritten or printed. The page is then tilted, unevenly lit, blurred, noised and saved as
JPEG or PNG like a scan. ``truth.json`` records, per file, the destination code and its source,
the sender's code, and the box and kind of every text element.

The destination block follows one of several address layout families (``LAYOUTS``: the code
before the place, after place and state with ZIP+4, on its own line, behind a country prefix)
and stands at the centre, lower right or in the left window position; the sender's block is
printed or handwritten by the same hand, with its own code. One family, ``boxed`` (the code in
pre-printed boxes or on a printed rule, a phone number in the block), is held out: ``mixed``
never draws it, so no fitting sees it and benchmarks can report it apart.

Handwriting is real (``--handwriting DIR`` or ``DOCSORT_DATASETS``): digits from the MNIST *test*
set and words from DHSD writers held out of training, so measurements see hands no model was
trained on. Without a handwriting source only printed envelopes can be drawn.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from docsort import settings
from docsort.errors import DatasetError, UsageError
from docsort.training.synth import degrade

PAGE_W, PAGE_H = 1800, 900  # an envelope of about 9 x 4.5 inches at 200 dpi
TRUTH_FILE = "truth.json"

from docsort.batch.records import BBox


@dataclass
class TextElement:
    """One word on the envelope as it was drawn: where, what kind, what it says, what it is."""

    bbox: BBox
    kind: str  # printed | handwritten
    text: str
    role: str  # sender_name, sender_street, sender_code, sender_city, destination_*, stamp


@dataclass
class EnvelopeTruth:
    file: str
    destination_code: str
    destination_source: str
    sender_code: Optional[str]
    tilt_degrees: float
    elements: list[TextElement] = field(default_factory=list)
    layout: str = ""  # the address layout family (LAYOUTS)
    position: str = ""  # where the destination block stands (POSITIONS)
    destination_place: Optional[str] = None  # with --country: the directory's place for the code
    country: Optional[str] = None
    continental_hand: bool = False  # the hand writes 1s with the up-stroke and (mostly) crossed 7s
    pen_digits_hand: bool = False  # the hand's digits are drawn by a pen writer (synth.pen_digits)
    close_words_hand: bool = False  # the hand leaves narrow word spaces (``close_words``)
    tight_lines_hand: bool = False  # the hand writes its lines close, ink of one touching the next's
    block_tilt_degrees: float = 0.0  # the handwritten address's own angle to the page (``block_tilt``)
    pencil_hand: bool = False  # the address is written in pencil: grey, grainy graphite (``pencil``)
    paper_colour: Optional[list[int]] = None  # RGB of a coloured envelope (``coloured``), else None: white
    label: bool = False  # the destination address is on a white label stuck on the envelope (``label``)
    barcode: bool = False  # a postal barcode is printed under the destination block (``barcode``)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["elements"] = [dict(asdict(e), bbox=[int(v) for v in e.bbox]) for e in self.elements]
        return d


# --- hands ----------------------------------------------------------------------------------


class DatasetHand:
    """Real handwriting: MNIST test digits and DHSD words by writers no model trained on."""

    name = "datasets"

    def __init__(self, rng: np.random.Generator, height: float, corpus: "HandwritingCorpus",
                 continental: float = 0.0, pen_digits: float = 0.0):
        from docsort.training.synth.digit_styles import Convention

        self.rng = rng
        self.height = height
        self.corpus = corpus
        self.writer = corpus.writers[int(rng.integers(0, len(corpus.writers)))]
        self.stroke = int(rng.integers(0, 2))
        self.slant = float(rng.uniform(-0.2, 0.2))
        # With probability ``continental`` the hand writes its 1s and 7s as most of Europe does
        # (synth.digit_styles); drawn only when asked for, so other pages stay as they were.
        self.convention = (Convention.draw(rng, share=1.0) if continental and rng.random() < continental
                           else Convention())
        # With probability ``pen_digits`` the hand's digits are not MNIST's but drawn by one pen
        # writer in shapes of its own (synth.pen_digits: an open 4, a hooked 9, ...), the same
        # way every time; drawn only when asked for, like the convention.
        self.pen_hand = None
        if pen_digits and rng.random() < pen_digits:
            from docsort.training.synth import pen, pen_digits as drawn

            self.pen_hand = (drawn.choose_hand(rng), pen.Writer.random(rng, 32.0))

    def word(self, text: str = "") -> tuple[np.ndarray, str]:
        """A real word by this envelope's writer (its own text: DHSD words are street/city names)."""
        words = self.corpus.words_by_writer[self.writer]
        image, label = words[int(self.rng.integers(0, len(words)))]
        # DHSD scans are pale and squeezed to 256x64: darken the ink to a pen's and size the word
        # by its ink height so it stands as tall as the digits beside it.
        ink = (255.0 - image.astype(np.float32))
        ink = np.clip(ink / max(1.0, float(ink.max())), 0, 1)
        ink[:, :4] = ink[:, -4:] = 0  # some scans carry the frame of the writing box at the edges
        ink[:3, :] = ink[-3:, :] = 0
        ys, xs = np.nonzero(ink > 0.3)
        if len(xs):
            ink = ink[max(0, ys.min() - 3):ys.max() + 4, max(0, xs.min() - 3):xs.max() + 4]
            ink_h = ys.max() - ys.min() + 1
        else:
            ink_h = ink.shape[0]
        scale = self.height * float(self.rng.uniform(1.0, 1.25)) / max(12, ink_h)
        ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        image = (255.0 * (1.0 - np.clip(ink * 1.2, 0, 1))).astype(np.uint8)
        return image, label

    def digits(self, text: str) -> np.ndarray:
        """The number in this hand. A code written in groups (``00-950``, ``114 55``) is written
        group by group: a short dash at mid-height between them, or a space of half to a whole
        digit's height."""
        groups = re.split(r"([- ])", text)
        if len(groups) == 1:
            return self._digit_group(text)
        images = [self._digit_group(g) if g not in ("-", " ") else g for g in groups if g]
        height = max(im.shape[0] for im in images if not isinstance(im, str))
        body = self.height * 0.8
        row = []
        for im in images:
            if isinstance(im, str):
                row.append(self._separator(im, height, body))
            else:  # groups stand on one baseline
                row.append(np.pad(im, ((height - im.shape[0], 0), (0, 0)), constant_values=255))
        return np.hstack(row)

    def _separator(self, mark: str, height: int, body: float) -> np.ndarray:
        rng = self.rng
        if mark == " ":
            return np.full((height, max(1, int(body * rng.uniform(0.5, 1.0)))), 255, np.uint8)
        length = max(4, int(body * rng.uniform(0.3, 0.5)))
        side = max(1, int(body * rng.uniform(0.08, 0.25)))
        piece = np.full((height, length + 2 * side), 255, np.uint8)
        # The digits stand on the bottom margin; the dash at about half their body's height.
        y = int(height - 0.15 * body - body * rng.uniform(0.4, 0.55))
        thickness = max(2, int(round(body * 0.09)) + self.stroke)
        cv2.line(piece, (side, y), (side + length, y + int(rng.integers(-2, 3))), 0, thickness, cv2.LINE_AA)
        return piece

    def _digit_group(self, text: str) -> np.ndarray:
        from docsort.training.synth.handwriting import compose_digit_string

        from docsort.training.synth.digit_styles import restyle

        pool = self.corpus.digit_indices
        if self.pen_hand is not None:
            from docsort.training.synth.pen_digits import draw_digit

            picks = [draw_digit(int(c), self.rng, *self.pen_hand) for c in text]
        else:
            picks = [self.corpus.mnist_images[pool[int(c)][int(self.rng.integers(0, len(pool[int(c)])))]]
                     for c in text]
        if not self.convention.plain and self.pen_hand is None:
            picks = [restyle(img, int(c), self.convention, self.rng) for img, c in zip(picks, text)]
        image, _ = compose_digit_string(
            picks, self.rng, gap=(-0.05, 0.45), height=self.height * 0.8, stroke=self.stroke,
            slant=(self.slant - 0.05, self.slant + 0.05),
        )
        return image


@dataclass
class HandwritingCorpus:
    mnist_images: np.ndarray
    digit_indices: dict[int, np.ndarray]
    words_by_writer: dict[int, list[tuple[np.ndarray, str]]]
    writers: list[int]

    @classmethod
    def cached(cls, folder: Path, mnist_split: str = "test") -> "HandwritingCorpus":
        """``load``, once per folder and split in a process (tests and benchmarks draw often)."""
        return _cached_corpus(str(Path(folder).resolve()), mnist_split)

    @classmethod
    def load(cls, folder: Path, mnist_split: str = "test") -> "HandwritingCorpus":
        """MNIST IDX files and DHSD ``data.csv`` found in ``folder`` or its sub-folders.

        Digits come from the MNIST test set (what measurements use); ``mnist_split="train"``
        draws them from the training set instead, for development runs that must not look at
        the test set, and ``"validation"`` only from the training digits the models never
        learnt from (``mnist.train_validation_split``), for calibrating on envelopes.
        """
        from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
        from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd

        folder = Path(folder)
        if mnist_split not in ("test", "train", "validation"):
            raise UsageError(f"MNIST split must be test, train or validation, not {mnist_split!r}")
        prefix = "t10k" if mnist_split == "test" else "train"
        images_file = _find_one(folder, f"{prefix}-images-idx3-ubyte")
        labels_file = _find_one(folder, f"{prefix}-labels-idx1-ubyte")
        dhsd_index = next(iter(sorted(folder.rglob("data.csv"))), None)
        if images_file is None or labels_file is None:
            raise DatasetError(f"no MNIST {mnist_split} set ({prefix}-images-idx3-ubyte[.gz]) under {folder}")
        if dhsd_index is None:
            raise DatasetError(f"no DHSD data.csv under {folder}")
        images = read_idx_images(images_file)
        labels = read_idx_labels(labels_file)
        keep = np.ones(len(labels), bool)
        if mnist_split == "validation":
            from docsort.training.datasets.mnist import validation_indices

            keep[:] = False
            keep[validation_indices(len(labels))] = True
        held_out = dhsd_writer_split().validation
        words: dict[int, list[tuple[np.ndarray, str]]] = {}
        for image, text, writer in load_dhsd(dhsd_index.parent, writers=held_out):
            if len(text) <= 14:  # longer names are squeezed to illegibility in DHSD's 256 px
                words.setdefault(writer, []).append((image, text))
        return cls(
            mnist_images=images,
            digit_indices={d: np.flatnonzero((labels == d) & keep) for d in range(10)},
            words_by_writer=words,
            writers=sorted(words),
        )


@functools.lru_cache(maxsize=2)
def _cached_corpus(folder: str, mnist_split: str) -> HandwritingCorpus:
    return HandwritingCorpus.load(Path(folder), mnist_split)


def _find_one(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + ".gz"):
        hits = sorted(folder.rglob(name))
        if hits:
            return hits[0]
    return None


# --- printed text and page furniture --------------------------------------------------------


def _fonts(rng: np.random.Generator):
    from docsort.training.synth.printed import available_fonts

    fonts = [f for f in available_fonts() if "mono" not in f.family.lower() and "z003" not in f.family.lower()]
    if not fonts:
        raise UsageError("no usable TrueType fonts installed (install fonts-dejavu or fonts-liberation)")
    return fonts


def _printed(text: str, font_path: str, size: int) -> np.ndarray:
    from docsort.training.synth.printed import render_text

    return render_text(text, font_path, size, margin=0.1)


def _paste(page: np.ndarray, piece: np.ndarray, x: int, y: int, colour: tuple[int, int, int]) -> BBox:
    """Lay dark ink of ``piece`` (grey, dark on light) onto the colour page; return the ink box."""
    h, w = piece.shape
    x, y = max(0, x), max(0, y)
    h, w = min(h, page.shape[0] - y), min(w, page.shape[1] - x)
    if h <= 0 or w <= 0:
        return (x, y, 0, 0)
    alpha = (255.0 - piece[:h, :w].astype(np.float32)) / 255.0
    region = page[y:y + h, x:x + w].astype(np.float32)
    ink = np.asarray(colour, np.float32)[None, None, :]
    page[y:y + h, x:x + w] = np.clip(region * (1 - alpha[..., None]) + ink * alpha[..., None], 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(alpha > 0.25)
    if len(xs) == 0:
        return (x, y, 0, 0)
    return (int(x + xs.min()), int(y + ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def _stamp(page: np.ndarray, rng: np.random.Generator) -> None:
    """A coloured stamp with a picture, and a postmark of rings and wavy cancel lines over it."""
    sw, sh = int(rng.uniform(130, 170)), int(rng.uniform(150, 200))
    x, y = PAGE_W - sw - int(rng.uniform(70, 120)), int(rng.uniform(70, 100))
    colour = tuple(int(c) for c in rng.uniform(60, 220, 3))
    cv2.rectangle(page, (x, y), (x + sw, y + sh), (245, 245, 245), -1)
    cv2.rectangle(page, (x + 8, y + 8), (x + sw - 8, y + sh - 8), colour, -1)
    for _ in range(int(rng.integers(3, 7))):
        c = tuple(int(v) for v in rng.uniform(20, 250, 3))
        cx, cy = int(rng.uniform(x + 20, x + sw - 20)), int(rng.uniform(y + 20, y + sh - 20))
        cv2.circle(page, (cx, cy), int(rng.uniform(8, 35)), c, -1, cv2.LINE_AA)
    for k in range(0, sw, 10):  # perforation
        cv2.circle(page, (x + k, y), 3, (255, 255, 255), -1)
        cv2.circle(page, (x + k, y + sh), 3, (255, 255, 255), -1)
    ink = (60, 60, 60) if rng.random() < 0.5 else (90, 40, 30)
    cx, cy = x - int(rng.uniform(10, 60)), y + sh // 2 + int(rng.uniform(-20, 40))
    r = int(rng.uniform(45, 65))
    cv2.circle(page, (cx, cy), r, ink, 3, cv2.LINE_AA)
    cv2.circle(page, (cx, cy), r - 14, ink, 2, cv2.LINE_AA)
    xs = np.arange(cx + r, min(PAGE_W - 20, cx + r + 330))
    for k in range(int(rng.integers(3, 6))):
        ys = cy - 40 + 20 * k + 8 * np.sin((xs - xs[0]) / 18.0 + rng.uniform(0, 6))
        cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, ink, 3, cv2.LINE_AA)


# --- address layouts ------------------------------------------------------------------------

# How the code stands in the destination block. Real mail writes it before the place (DE, FR, NL
# and most of Europe), after place and state (US, CA, AU), on a line of its own, or behind a
# country prefix ("D-12345"); a reader must find it in any of them, so benchmarks draw them all.
# The held-out family draws conventions the others never do, so that a reader (and the fitting
# of its thresholds) tuned on the training families shows what it does on mail it never saw.
HELD_OUT_LAYOUT = "boxed"
INTERNATIONAL_LAYOUT = "international"
# Every family kept out of training, fitting and threshold choice, each reported on its own.
HELD_OUT_LAYOUTS = (HELD_OUT_LAYOUT, INTERNATIONAL_LAYOUT)
LAYOUTS = {
    "code-first": "12345 Berlin: the code before the place (DE, FR, NL, most of Europe)",
    "code-last": "Springfield, IL 62704: the code after place and state (US, CA, AU), ZIP+4 in print",
    "code-alone": "the code on a line of its own under the place",
    "prefixed": "D-12345 Berlin: a country prefix before the code (printed; handwritten as code-first)",
    HELD_OUT_LAYOUT: "held out of all fitting: a handwritten code in pre-printed boxes or on a printed rule, "
                     "a printed one after the place or alone (boxed or ruled at times), and a phone number "
                     "above or below the code line",
    INTERNATIONAL_LAYOUT: "held out of all fitting: mail across borders and other national orders: a country line "
                          "under the place, the code on top of the block before the name (East Asian order), "
                          "a reference or P.O. box number line, the code after the place with a "
                          "district number (75008 PARIS CEDEX 08)",
}
# The families that training, fitting and threshold choice may see: all but the held-out ones.
TRAINING_LAYOUTS = tuple(f for f in LAYOUTS if f not in HELD_OUT_LAYOUTS)
# The held-out international family's country lines and reference labels.
COUNTRIES = ("GERMANY", "DEUTSCHLAND", "FRANCE", "USA", "ITALIA", "ÖSTERREICH", "SCHWEIZ", "NEDERLAND",
             "SPAIN", "BELGIQUE")
REFERENCE_LABELS = ("Ref.", "Kd-Nr.", "Postfach", "P.O. Box", "Attn.", "c/o")
# Where the destination block stands: the centre of the envelope, lower right, or the left
# window position of business envelopes.
POSITIONS = ("centre", "lower-right", "window-left")
MIXED = "mixed"
# Light colours forms are printed in (BGR): code boxes and rules that are not the writer's ink.
PRINT_COLOURS = ((165, 165, 165), (225, 170, 120), (150, 150, 235))

US_STATES = ("IL", "NY", "CA", "TX", "WA", "OR", "MA", "OH", "PA", "FL", "GA", "MI", "MN", "CO")


def check_layout(name: str) -> str:
    """``name`` if it is a layout family or ``mixed`` (the training families only)."""
    if name != MIXED and name not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join([MIXED, *LAYOUTS])}, not {name!r}")
    return name


@dataclass(frozen=True)
class Address:
    """A destination's code and place as the envelope writes them: a real one from a postal
    directory (``--country``), or a made-up code with a place name from the generator's lists."""

    code: str
    city: Optional[str] = None  # None: a place name drawn from the generator's lists
    state: Optional[str] = None  # US state abbreviation
    prefixes: tuple[str, ...] = ("D-", "F-", "DE-")
    written: Optional[str] = None  # the code as its country writes it ("00-950"), when not its digits


def _destination_lines(rng: np.random.Generator, family: str, address: Address, handwritten: bool
                       ) -> list[list[tuple[str, str, str]]]:
    """The destination block as lines of ``(what, text, role)``; ``what`` is ``word``, ``digits``
    (a handwritten number), ``text`` (printed as given), or for the held-out family a code in
    pre-printed cells or on a rule (``boxed-digits``, ``ruled-digits``) or printed inside a box
    or over a rule (``boxed-text``, ``ruled-text``)."""
    from docsort.training.synth.printed import ENGLISH_CITIES, ENGLISH_STREETS, GERMAN_CITIES, GERMAN_STREETS, NAMES

    code = address.code
    name = [("word", str(rng.choice(NAMES)), "destination_name")]
    if not handwritten:
        name.append(("word", str(rng.choice(NAMES)), "destination_name"))
    if family in HELD_OUT_LAYOUTS:
        street = [("word", str(rng.choice(GERMAN_STREETS)).split()[0], "destination_street"),
                  ("digits", str(rng.integers(1, 150)), "destination_street")]
        if family == HELD_OUT_LAYOUT:
            return _boxed_lines(rng, address, handwritten, name, street,
                                address.city or str(rng.choice(GERMAN_CITIES)).split()[0])
        return _international_lines(rng, address, handwritten, name, street,
                                    address.city or str(rng.choice(ENGLISH_CITIES + GERMAN_CITIES)).split()[0])
    if family == "code-last":
        street = [("digits", str(rng.integers(1, 9999)), "destination_street"),
                  ("word", str(rng.choice(ENGLISH_STREETS)).split()[0], "destination_street")]
        city = address.city or str(rng.choice(ENGLISH_CITIES)).split()[0]
        if handwritten:
            last = [("word", city, "destination_city")]
            if rng.random() < 0.5 and (address.state or not address.city):
                last.append(("word", address.state or str(rng.choice(US_STATES)), "destination_state"))
            return [name, street, last + [("digits", code, "destination_code")]]
        plus4 = f"-{int(rng.integers(0, 10000)):04d}" if rng.random() < 0.4 else ""
        if address.city and not address.state:  # a real place of a country without states
            return [name, street, [("word", city + ",", "destination_city"), ("text", code, "destination_code")]]
        return [name, street, [("word", city + ",", "destination_city"),
                               ("word", address.state or str(rng.choice(US_STATES)), "destination_state"),
                               ("text", code + plus4, "destination_code")]]
    street = [("word", str(rng.choice(GERMAN_STREETS)).split()[0], "destination_street"),
              ("digits", str(rng.integers(1, 150)), "destination_street")]
    city = [("word", address.city or str(rng.choice(GERMAN_CITIES)).split()[0], "destination_city")]
    if family == "code-alone":
        return [name, street, city, [("digits", code, "destination_code")]]
    if family == "prefixed" and not handwritten:
        return [name, street, [("text", str(rng.choice(list(address.prefixes))) + code, "destination_code")] + city]
    return [name, street, [("digits", code, "destination_code")] + city]


def _boxed_lines(rng: np.random.Generator, address: Address, handwritten: bool, name, street, city: str
                 ) -> list[list[tuple[str, str, str]]]:
    """The held-out family's block. Handwritten: the code in pre-printed cells, one digit each,
    or on a printed rule, before the place or on its own line. Printed: the code after the place
    or alone on its line, at times in a printed box or over a rule. Either way a phone number
    stands on a line of its own, below the code line (so the last line is no safe rule) or above."""
    code = address.code
    if handwritten:
        code_piece = ("boxed-digits" if rng.random() < 0.6 else "ruled-digits", code, "destination_code")
        place = [("word", city, "destination_city")]
        if rng.random() < 0.5:
            lines = [name, street, place, [code_piece]]
        else:
            lines = [name, street, [code_piece] + place]
    else:
        frame = rng.random()
        what = "boxed-text" if frame < 0.2 else "ruled-text" if frame < 0.4 else "text"
        code_piece = (what, code, "destination_code")
        place = [("word", city, "destination_city")]
        if address.state:
            place.append(("word", address.state, "destination_state"))
        if rng.random() < 0.5:
            lines = [name, street, place + [code_piece]]
        else:
            lines = [name, street, place, [code_piece]]
    phone = _phone_line(rng, code, handwritten)
    if rng.random() < 0.5:
        lines.append(phone)
    else:
        lines.insert(int(rng.integers(1, len(lines))), phone)
    return lines


def _international_lines(rng: np.random.Generator, address: Address, handwritten: bool, name, street, city: str
                         ) -> list[list[tuple[str, str, str]]]:
    """The held-out international family's block, in one of four orders none of the other
    families draws:

    - a country line under the place (mail across borders), so the code's line is not the last;
    - the code first, on top of the block, then place, street and name (East Asian order);
    - a reference, customer or P.O. box number on a line of its own between name and street
      (fewer or more digits than a code), and at times a country line too;
    - the code after the place with a district number behind it (French CEDEX: 75008 PARIS CEDEX 08).

    Handwritten, every word is one of the writer's DHSD words and the numbers are MNIST digits.
    """
    number = "digits" if handwritten else "text"  # a handwritten number is MNIST digits
    code_piece = (number, address.code, "destination_code")
    place = [("word", city, "destination_city")]
    country = [("word", str(rng.choice(COUNTRIES)), "destination_country")]
    order = rng.random()
    if order < 0.3:
        lines = [name, street, [code_piece] + place, country]
    elif order < 0.55:
        top = [[code_piece] + place] if rng.random() < 0.5 else [[code_piece], place]
        lines = top + [street, name]
        if rng.random() < 0.4:
            lines.append(country)
    elif order < 0.8:
        digits = int(rng.choice([3, 4, 6, 7, 8]))
        label = "word" if handwritten else "text"
        reference = [(label, str(rng.choice(REFERENCE_LABELS)), "destination_reference"),
                     (number, _code(rng, digits), "destination_reference")]
        lines = [name, reference, street, [code_piece] + place]
        if rng.random() < 0.5:
            lines.append(country)
    else:
        district = f"{int(rng.integers(1, 21)):02d}"
        lines = [name, street, [code_piece] + place + [("word", "CEDEX", "destination_city"),
                                                       (number, district, "destination_city")]]
    return lines


def _phone_line(rng: np.random.Generator, code: str, handwritten: bool) -> list[tuple[str, str, str]]:
    """``Tel 0171 5550134``, ``Tel. 555-0134`` or ``Tel 030 555 0134``: a number of digit groups
    beside the code that must never be taken for it, so no group (nor all of them) is as long
    as the code. Handwritten, the label is one of the writer's DHSD words, like every written word."""
    while True:
        style = rng.random()
        if style < 0.45:
            groups = ["0" + _code(rng, int(rng.integers(2, 5))), _code(rng, int(rng.integers(6, 9)))]
        elif style < 0.75:
            groups = [_code(rng, 3), _code(rng, 4)]
        else:
            groups = ["0" + _code(rng, int(rng.integers(2, 4))), _code(rng, 3), _code(rng, 4)]
        groups = [g + _code(rng, 1) if len(g) == len(code) else g for g in groups]
        if "".join(groups) != code:
            break
    if handwritten:
        return [("word", "Tel", "destination_phone")] + [("digits", g, "destination_phone") for g in groups]
    label = str(rng.choice(["Tel", "Tel.", "Tel.:"]))
    local = [len(g) for g in groups] == [3, 4]
    numbers = ["-".join(groups)] if local and rng.random() < 0.7 else groups
    return [("text", label, "destination_phone")] + [("text", g, "destination_phone") for g in numbers]


def _real_address(rng: np.random.Generator, directory) -> Address:
    """A code of the directory, drawn uniformly, with its place (and state) as the directory has it."""
    codes = directory.codes()
    code = codes[int(rng.integers(0, len(codes)))]
    places = directory.places(code)
    prefixes = directory.format.prefixes or ((f"{directory.country}-",) if directory.country else ("",))
    written = directory.format.written(code)
    return Address(code, places[0] if places else None, directory.states.get(code) or None, prefixes,
                   written if written != code else None)


def _as_written(lines, address: Address):
    """The block's lines with the code set as its country writes it, in groups (``00-950``);
    digits in cells stay one to a cell."""
    if not address.written:
        return lines
    return [[(what, text.replace(address.code, address.written)
              if role == "destination_code" and what != "boxed-digits" else text, role) for what, text, role in line]
            for line in lines]


def _place_block(rng: np.random.Generator, position: str, width: int, height: int) -> tuple[int, int]:
    """Top-left corner of a block of this size at ``position``, kept on the page with a margin
    that a tilted scan does not cut."""
    margin = 70
    if position == "lower-right":
        x = PAGE_W - margin - int(rng.uniform(20, 90)) - width
        y = PAGE_H - margin - int(rng.uniform(10, 70)) - height
    elif position == "window-left":
        x = int(rng.uniform(0.05, 0.1) * PAGE_W)
        y = int(rng.uniform(0.46, 0.56) * PAGE_H)
    else:
        x = int(rng.uniform(0.36, 0.5) * PAGE_W)
        y = int(rng.uniform(0.4, 0.5) * PAGE_H)
    x = max(margin, min(x, PAGE_W - margin - width))
    y = max(int(0.38 * PAGE_H), min(y, PAGE_H - margin - height))
    return x, y


# A hand's line pitch as a share of its line height: most hands, and the hands that write
# their lines close (``tight_lines``: descenders reach into the next line's ascenders).
LINE_PITCH = (0.95, 1.15)
TIGHT_LINE_PITCH = (0.72, 0.9)


def _lay_out_lines(page: np.ndarray, rng: np.random.Generator, lines, position: str, colour,
                   line_height: float, word_gap, kind: str, pitch: tuple[float, float] = LINE_PITCH
                   ) -> list[TextElement]:
    """Paste lines of rendered pieces ``(image, text, role)`` as one block at ``position``.

    A piece may carry a fourth item, ``print_under(page, x, y)``: form furniture (code cells, a
    rule) printed before the ink at the piece's corner, as a form is printed before it is filled.
    """
    widths = [sum(piece[0].shape[1] for piece in line) + word_gap(0) * (len(line) - 1) for line in lines]
    heights = [max(max(piece[0].shape[0] for piece in line), line_height) for line in lines]
    x0, y = _place_block(rng, position, max(widths) + 40, int(sum(heights) * 1.15))
    elements = []
    for line, line_h in zip(lines, heights):
        x = x0 + (int(rng.uniform(-20, 20)) if kind == "handwritten" else 0)
        for image, text, role, *print_under in line:
            top = y + (int(rng.uniform(-4, 4)) if kind == "handwritten" else 0)
            for furniture in print_under:
                furniture(page, max(0, x), max(0, top))
            box = _paste(page, image, x, top, colour)
            elements.append(TextElement(box, kind, text, role))
            x = box[0] + box[2] + word_gap(1)
        y += int(line_h * (rng.uniform(*pitch) if kind == "handwritten" else 1.0))
    return elements


# Envelopes that are not white (``coloured``), RGB: manila and kraft business envelopes and the
# greeting-card colours, each drawn within PAPER_JITTER of its shade. On a red or green card a
# blue ballpoint is barely darker than the paper in grey, though plain to the eye.
PAPER_COLOURS = {
    "manila": (222, 196, 150), "kraft": (176, 132, 88), "red": (178, 34, 52), "green": (34, 102, 68),
    "blue": (60, 100, 170), "pink": (236, 168, 186), "yellow": (246, 222, 120), "sky": (170, 200, 230),
    "lilac": (190, 160, 210), "orange": (240, 150, 60),
}
PAPER_JITTER = 12
# Paper and labels are drawn from streams of their own (``_own_stream``), so envelopes are the
# same with or without them.
PAPER_STREAM, LABEL_STREAM = 101, 102
# A stuck-on address label (``label``): white to ivory, reaching LABEL_MARGIN address heights past
# the block on each side, corners rounded by LABEL_CORNER px, its edge casting a shadow
# LABEL_SHADOW px wide at LABEL_SHADOW_DEPTH of the paper's brightness.
LABEL_WHITE = (236.0, 255.0)
LABEL_MARGIN = (0.3, 1.0)
LABEL_CORNER = (4, 16)
LABEL_SHADOW = (1, 4)
LABEL_SHADOW_DEPTH = (0.6, 0.9)

# Graphite's grey on the page (0 black, 255 paper), and how much of a stroke's ink the grain of
# the paper lets through, pixel by pixel.
PENCIL_GREY = (85.0, 150.0)
PENCIL_GRAIN = (0.45, 1.0)


def _in_pencil(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A piece (grey, dark on light) as a pencil writes it: the stroke's ink broken by the paper's
    grain, so strokes come out speckled and lighter at their edges."""
    ink = (255.0 - image.astype(np.float32)) / 255.0
    grain = rng.uniform(*PENCIL_GRAIN, size=image.shape).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (3, 3), 0.6)
    return (255.0 * (1.0 - np.clip(ink * grain, 0.0, 1.0))).astype(np.uint8)


# The angle a hand that writes askew (``block_tilt``) writes its address at, either way (degrees).
BLOCK_TILT_DEGREES = (3.0, 8.0)


def _lay_at_angle(page: np.ndarray, canvas: np.ndarray, elements: list[TextElement], angle: float,
                  under=None) -> None:
    """Lay the block written on a white ``canvas`` onto ``page`` turned by ``angle`` degrees about
    its centre (ink is darker than any paper, so the darker of the two is kept), moving the
    elements' boxes with it. ``under(page, elements)`` paints what lies under the block (a
    label) once the boxes are turned."""
    boxes = np.array([e.bbox for e in elements], np.float64)
    centre = ((boxes[:, 0].min() + (boxes[:, 0] + boxes[:, 2]).max()) / 2,
              (boxes[:, 1].min() + (boxes[:, 1] + boxes[:, 3]).max()) / 2)
    h, w = page.shape[:2]
    m = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    for e in elements:
        e.bbox = _turned_box(e.bbox, m, w, h)
    if under is not None:
        under(page, elements)
    np.minimum(page, turned, out=page)


def _turned_box(bbox: BBox, m: np.ndarray, w: int, h: int) -> BBox:
    """The box holding ``bbox`` turned by the affine ``m``, kept on a ``w`` x ``h`` page."""
    x, y, bw, bh = bbox
    corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], np.float64) @ m.T
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    return (int(max(0, x0)), int(max(0, y0)), int(min(w, x1) - max(0, x0)), int(min(h, y1) - max(0, y0)))


# --- form furniture for the held-out family -------------------------------------------------


def _ink_box(piece: np.ndarray) -> tuple[int, int, int, int]:
    """The ink's (x0, y0, x1, y1) in a grey piece (dark on light); the whole piece if blank."""
    ys, xs = np.nonzero(piece < 160)
    if len(xs) == 0:
        return 0, 0, piece.shape[1], piece.shape[0]
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _cells_piece(rng: np.random.Generator, hand: DatasetHand, code: str, print_colour):
    """The code written one digit per pre-printed cell: the ink, and the cells to print first."""
    cell_h = int(hand.height * rng.uniform(1.1, 1.35))
    cell_w = int(cell_h * rng.uniform(0.7, 0.9))
    gap = 0 if rng.random() < 0.5 else int(cell_w * rng.uniform(0.15, 0.4))
    thickness = int(rng.integers(1, 3))
    pad = 6
    width = len(code) * cell_w + (len(code) - 1) * gap + 2 * pad
    piece = np.full((cell_h + 2 * pad, width), 255, np.uint8)
    for k, c in enumerate(code):
        digit = hand.digits(c)
        x0, y0, x1, y1 = _ink_box(digit)
        digit = digit[y0:y1, x0:x1]
        fit = min(1.0, 0.85 * cell_h / digit.shape[0], 0.9 * cell_w / digit.shape[1])
        if fit < 1.0:
            digit = cv2.resize(digit, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
        h, w = digit.shape
        cx = pad + k * (cell_w + gap) + (cell_w - w) // 2 + int(rng.uniform(-0.1, 0.1) * cell_w)
        cy = pad + (cell_h - h) // 2 + int(rng.uniform(-0.08, 0.08) * cell_h)
        cx, cy = max(0, min(cx, width - w)), max(0, min(cy, piece.shape[0] - h))
        piece[cy:cy + h, cx:cx + w] = np.minimum(piece[cy:cy + h, cx:cx + w], digit)

    def print_cells(page: np.ndarray, x: int, y: int) -> None:
        for k in range(len(code)):
            left = x + pad + k * (cell_w + gap)
            cv2.rectangle(page, (left, y + pad), (left + cell_w, y + pad + cell_h), print_colour, thickness)

    return piece, print_cells


def _ruled(rng: np.random.Generator, piece: np.ndarray, print_colour, length: int):
    """A printed rule under the ink of ``piece``, at least ``length`` long (a form's line is
    printed before anyone writes, so it runs past short writing)."""
    x0, _, x1, y1 = _ink_box(piece)
    below = int(rng.uniform(1, 6))
    piece = np.pad(piece, ((0, below + 4), (0, 0)), constant_values=255)
    start = x0 - int(rng.uniform(5, 30))
    end = max(x1 + int(rng.uniform(10, 40)), start + length)
    thickness = int(rng.integers(1, 3))

    def print_rule(page: np.ndarray, x: int, y: int) -> None:
        cv2.line(page, (x + start, y + y1 + below), (x + end, y + y1 + below), print_colour, thickness)

    return piece, print_rule


def _framed(rng: np.random.Generator, piece: np.ndarray, print_colour, size: int):
    """A printed box around the ink of ``piece``, padded so the words beside keep their gap."""
    x0, y0, x1, y1 = _ink_box(piece)
    pad = int(size * rng.uniform(0.2, 0.4))
    piece = np.pad(piece, pad, constant_values=255)
    thickness = int(rng.integers(1, 3))

    inset = pad // 3  # the box stands this far into the padding, clear of the ink

    def print_box(page: np.ndarray, x: int, y: int) -> None:
        cv2.rectangle(page, (x + x0 + inset, y + y0 + inset), (x + x1 + 2 * pad - inset, y + y1 + 2 * pad - inset),
                      print_colour, thickness)

    return piece, print_box


def _hand_piece(rng: np.random.Generator, hand: DatasetHand, what: str, text: str, role: str, print_colour):
    """One piece of a handwritten block: ``(image, text, role)``, with the furniture to print first."""
    if what == "digits":
        return hand.digits(text), text, role
    if what == "boxed-digits":
        image, print_cells = _cells_piece(rng, hand, text, print_colour)
        return image, text, role, print_cells
    if what == "ruled-digits":
        image, print_rule = _ruled(rng, hand.digits(text), print_colour, int(hand.height * len(text) * 0.9))
        return image, text, role, print_rule
    return (*hand.word(text), role)


def _printed_piece(rng: np.random.Generator, what: str, text: str, role: str, font: str, size: int, print_colour):
    """One piece of a printed block: ``(image, text, role)``, with a box or rule around the code."""
    image = _printed(text, font, size)
    if what == "boxed-text":
        image, print_box = _framed(rng, image, print_colour, size)
        return image, text, role, print_box
    if what == "ruled-text":
        image, print_rule = _ruled(rng, image, print_colour, int(size * len(text) * 0.7))
        return image, text, role, print_rule
    return image, text, role


# --- one envelope ---------------------------------------------------------------------------


def _code(rng: np.random.Generator, length: int) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, length))


def make_envelope(
    rng: np.random.Generator,
    *,
    corpus: Optional[HandwritingCorpus],
    handwritten_share: float = 0.7,
    code_length: int = 5,
    max_tilt: float = 6.0,
    layout: str = MIXED,
    position: Optional[str] = None,
    directory=None,
    continental: float = 0.0,
    pen_digits: float = 0.0,
    close_words: float = 0.0,
    barcode: float = 0.0,
    tight_lines: float = 0.0,
    block_tilt: float = 0.0,
    pencil: float = 0.0,
    coloured: float = 0.0,
    label: float = 0.0,
) -> tuple[np.ndarray, EnvelopeTruth]:
    """One envelope scan (BGR uint8) and its truth (file name left empty for the caller).

    ``layout`` and ``position`` are drawn at random when ``mixed`` (a training family, never
    the held-out one) and None. With a postal ``directory`` both codes are real ones and the
    printed places are theirs. ``continental``: the chance that a hand writes its 1s and 7s as
    continental writers do; ``pen_digits``: the chance that its digits are drawn by a pen writer
    (``synth.pen_digits``) instead of being MNIST's; ``close_words``: the chance that the hand
    leaves word spaces of a fifth to half its height (many writers do; the others here leave
    0.8-1.3 heights), so the code and the place beside it may come as one ink region;
    ``tight_lines``: the chance that the hand writes its lines close (``TIGHT_LINE_PITCH``), so a
    descender of one line touches the line below and the code may come joined to the place above it;
    ``block_tilt``: the chance that the hand writes the address at an angle of its own to the
    envelope (``BLOCK_TILT_DEGREES`` either way), as people write on an envelope held askew, while
    the printed sender's block stays square to it; ``pencil``: the chance that the hand writes in
    pencil (``_in_pencil``: graphite grey, grainy, lighter where the pencil skipped); ``barcode``: the chance that a postal barcode (``_postal_barcode``) is printed under the
    destination block, as mail rooms and franking machines print them; ``coloured``: the chance
    that the envelope is not white but one of ``PAPER_COLOURS`` (manila, kraft, greeting cards);
    ``label``: the chance that the destination address is printed or written on a white label
    stuck on the envelope (``_stick_label``), its edges and their shadow around the block.
    """
    from docsort.training.synth.printed import GERMAN_CITIES, GERMAN_STREETS, NAMES

    family = str(rng.choice(list(TRAINING_LAYOUTS))) if layout == MIXED else check_layout(layout)
    position = str(rng.choice(POSITIONS)) if position is None else position
    fonts = _fonts(rng)
    paper = np.array([rng.uniform(225, 252)] * 3) + rng.uniform(-8, 4, 3)
    paper_colour = _paper_colour(_own_stream(rng, PAPER_STREAM), coloured)
    label_rng = _own_stream(rng, LABEL_STREAM)
    labelled = bool(label) and label_rng.random() < label
    stick = (lambda onto, written: _stick_label(onto, label_rng, written)) if labelled else None
    if paper_colour is not None:
        paper = np.array(paper_colour[::-1], np.float64)  # the page is BGR
    page = np.empty((PAGE_H, PAGE_W, 3), np.uint8)
    page[:] = np.clip(paper, 0, 255).astype(np.uint8)
    elements: list[TextElement] = []
    handwritten = corpus is not None and rng.random() < handwritten_share
    close = tight = in_pencil = False
    block_angle = 0.0
    hand = DatasetHand(rng, float(rng.uniform(40, 58)), corpus, continental, pen_digits) if handwritten else None

    # Sender: top-left, usually with a code of its own; printed, or written by the same hand.
    if directory is not None:
        code_length = directory.length
    sender = _real_address(rng, directory) if directory is not None else None
    sender_code = (sender.code if sender else _code(rng, code_length)) if rng.random() < 0.85 else None
    sender_written = sender.written if sender and sender.written and sender_code else sender_code
    x0, y = int(rng.uniform(80, 130)), int(rng.uniform(95, 130))
    if hand is not None and rng.random() < 0.35:
        small = DatasetHand(rng, float(rng.uniform(26, 32)), corpus)
        small.writer, small.stroke, small.slant = hand.writer, hand.stroke, hand.slant
        small.convention = hand.convention
        lines = [[("word", "", "sender_name")], ([("digits", sender_written, "sender_code")] if sender_code else [])
                 + [("word", "", "sender_city")]]
        for line in lines:
            x = x0
            for what, text, role in line:
                image, label = (small.digits(text), text) if what == "digits" else small.word()
                box = _paste(page, image, x, y, (40, 40, 40))
                elements.append(TextElement(box, "handwritten", label, role))
                x = box[0] + box[2] + int(small.height * 0.9)
            y += int(small.height * 1.5)
    else:
        font = fonts[int(rng.integers(0, len(fonts)))].path
        size = int(rng.uniform(22, 30))
        lines = [
            [(str(rng.choice(NAMES)), "sender_name"), (str(rng.choice(NAMES)), "sender_name")],
            [(str(rng.choice(GERMAN_STREETS)).split()[0], "sender_street"), (str(rng.integers(1, 150)), "sender_street")],
            ([(sender_written, "sender_code")] if sender_code else [])
            + [((sender.city if sender and sender_code and sender.city else str(rng.choice(GERMAN_CITIES)).split()[0]),
                "sender_city")],
        ]
        for line in lines:
            x = x0
            for text, role in line:
                box = _paste(page, _printed(text, font, size), x, y, (30, 30, 30))
                elements.append(TextElement(box, "printed", text, role))
                x = box[0] + box[2] + int(size * 0.45)
            y += int(size * 1.45)
    _stamp(page, rng)

    # Destination: in the layout family's address conventions, at one of the block positions.
    address = _real_address(rng, directory) if directory is not None else Address(_code(rng, code_length))
    while address.code == sender_code:
        address = _real_address(rng, directory) if directory is not None else Address(_code(rng, code_length))
    dest_code = address.code
    lines = _as_written(_destination_lines(rng, family, address, handwritten), address)
    print_colour = None
    if family == HELD_OUT_LAYOUT:  # only this family prints forms, so the others draw as they did
        print_colour = PRINT_COLOURS[int(rng.integers(0, len(PRINT_COLOURS)))]
    if hand is not None:
        colour = (30, 30, 30) if rng.random() < 0.5 else (140, 50, 25)
        rendered = [[_hand_piece(rng, hand, what, text, role, print_colour) for what, text, role in line]
                    for line in lines]
        # Drawn only when asked for, so the pages of every other call stay what they were.
        close = bool(close_words) and rng.random() < close_words
        space = (0.2, 0.5) if close else (0.8, 1.3)
        tight = bool(tight_lines) and rng.random() < tight_lines
        tilted = bool(block_tilt) and rng.random() < block_tilt
        in_pencil = bool(pencil) and rng.random() < pencil
        if in_pencil:
            level = int(rng.uniform(*PENCIL_GREY))
            colour = (level, level, level)
            rendered = [[(_in_pencil(image, rng), *rest) for image, *rest in line] for line in rendered]
        canvas = np.full_like(page, 255) if tilted or labelled else page
        written = _lay_out_lines(canvas, rng, rendered, position, colour, hand.height * 1.3,
                                 lambda i: int(hand.height * rng.uniform(*space)), "handwritten",
                                 TIGHT_LINE_PITCH if tight else LINE_PITCH)
        if tilted:
            block_angle = float(rng.uniform(*BLOCK_TILT_DEGREES) * rng.choice([-1.0, 1.0]))
            _lay_at_angle(page, canvas, written, block_angle, under=stick)
        elif labelled:
            _lay_on_label(page, canvas, written, stick)
        elements += written
    else:
        font = fonts[int(rng.integers(0, len(fonts)))].path
        size = int(rng.uniform(30, 42))
        if print_colour is not None and rng.random() < 0.4:  # a frame printed with the address, dark
            print_colour = (60, 60, 60)
        rendered = [[_printed_piece(rng, what, text, role, font, size, print_colour)
                     for what, text, role in line] for line in lines]
        canvas = np.full_like(page, 255) if labelled else page
        written = _lay_out_lines(canvas, rng, rendered, position, (20, 20, 20), size * 1.5,
                                 lambda i: int(size * 0.45), "printed")
        if labelled:
            _lay_on_label(page, canvas, written, stick)
        elements += written

    # From a generator of its own, so that with or without barcodes the envelopes are the same.
    own = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
    barcoded = bool(barcode) and own.random() < barcode
    if barcoded:
        _postal_barcode(page, own, [e.bbox for e in elements if e.role.startswith("destination")])
    page, tilt = _scan(page, rng, max_tilt, elements)
    truth = EnvelopeTruth(
        file="", destination_code=dest_code,
        destination_source="handwritten" if handwritten else "printed",
        sender_code=sender_code, tilt_degrees=round(tilt, 3), elements=elements,
        layout=family, position=position,
        destination_place=directory.place(dest_code) if directory is not None else None,
        country=directory.country if directory is not None else None,
        continental_hand=hand is not None and not hand.convention.plain and hand.pen_hand is None,
        pen_digits_hand=hand is not None and hand.pen_hand is not None,
        close_words_hand=hand is not None and close,
        tight_lines_hand=hand is not None and tight,
        block_tilt_degrees=round(block_angle, 3),
        pencil_hand=in_pencil,
        paper_colour=paper_colour,
        label=labelled,
        barcode=barcoded,
    )
    return page, truth


def _own_stream(rng: np.random.Generator, key: int) -> np.random.Generator:
    """A generator of the envelope's own, ``key`` apart from ``rng``'s draws and children."""
    seq = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, key)))


def _lay_on_label(page: np.ndarray, canvas: np.ndarray, elements: list[TextElement], stick) -> None:
    """Stick the label on ``page`` under the block, then lay the block's ink (drawn on a white
    ``canvas``) on it: ink is darker than any label, so the darker of the two is kept."""
    stick(page, elements)
    np.minimum(page, canvas, out=page)


def _stick_label(page: np.ndarray, rng: np.random.Generator, elements: list[TextElement]) -> None:
    """A white address label round the destination block's boxes: a rounded rectangle a little
    bigger than the block, its lower and right edges casting a thin shadow on the envelope."""
    boxes = np.array([e.bbox for e in elements if e.role.startswith("destination")], np.float64)
    tall = float(np.median(boxes[:, 3]))
    left, top = boxes[:, 0].min(), boxes[:, 1].min()
    right, bottom = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
    h, w = page.shape[:2]
    x0, x1 = int(max(4, left - rng.uniform(*LABEL_MARGIN) * tall)), int(min(w - 8, right + rng.uniform(*LABEL_MARGIN) * tall))
    y0, y1 = int(max(4, top - rng.uniform(*LABEL_MARGIN) * tall)), int(min(h - 8, bottom + rng.uniform(*LABEL_MARGIN) * tall))
    corner = int(rng.integers(*LABEL_CORNER))
    shadow = int(rng.integers(*LABEL_SHADOW))
    paper = page[min(h - 1, y1 + 2 * shadow + 2), min(w - 1, x1 + 2 * shadow + 2)].astype(np.float64)
    white = rng.uniform(*LABEL_WHITE)
    label_colour = (white - rng.uniform(0, 10), white - rng.uniform(0, 4), white)  # BGR: white to ivory
    _rounded_box(page, x0 + shadow, y0 + shadow, x1 + shadow, y1 + shadow, corner,
                 tuple(float(v) for v in paper * rng.uniform(*LABEL_SHADOW_DEPTH)))
    _rounded_box(page, x0, y0, x1, y1, corner, label_colour)


def _rounded_box(page: np.ndarray, x0: int, y0: int, x1: int, y1: int, r: int, colour) -> None:
    """A filled rectangle with corners rounded by ``r`` px."""
    r = max(1, min(r, (x1 - x0) // 2, (y1 - y0) // 2))
    cv2.rectangle(page, (x0 + r, y0), (x1 - r, y1), colour, -1)
    cv2.rectangle(page, (x0, y0 + r), (x1, y1 - r), colour, -1)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
        cv2.circle(page, (cx, cy), r, colour, -1, lineType=cv2.LINE_AA)


def _paper_colour(rng: np.random.Generator, coloured: float) -> Optional[list[int]]:
    """The RGB of a coloured envelope with chance ``coloured``, else None (white paper)."""
    if not coloured or rng.random() >= coloured:
        return None
    shade = np.asarray(PAPER_COLOURS[str(rng.choice(list(PAPER_COLOURS)))], np.float64)
    return [int(v) for v in np.clip(shade + rng.uniform(-PAPER_JITTER, PAPER_JITTER, 3), 0, 255)]


def _postal_barcode(page: np.ndarray, rng: np.random.Generator, block: list[tuple[int, int, int, int]]) -> None:
    """A four-state postal barcode (the USPS Intelligent Mail barcode's 65 bars: full, ascender,
    descender or tracker, about 22 to the inch) printed under the destination block, or along the
    bottom edge where the block leaves no room: a row of thin upright strokes right under the
    code line, the readers' and the picker's neighbour."""
    pitch, bar = int(rng.integers(8, 11)), int(rng.integers(3, 5))
    full, tracker = int(rng.integers(26, 34)), int(rng.integers(8, 12))
    left = min(x for x, _, _, _ in block) + int(rng.integers(-10, 30))
    middle = max(y + h for _, y, _, h in block) + int(rng.uniform(0.4, 1.0) * full) + full // 2
    if middle + full // 2 >= PAGE_H - 10 or left + 65 * pitch >= PAGE_W - 10:
        left, middle = PAGE_W - 65 * pitch - int(rng.integers(40, 120)), PAGE_H - full
    for k in range(65):
        state = int(rng.integers(0, 4))
        top = middle - (full // 2 if state in (0, 1) else tracker // 2)
        bottom = middle + (full // 2 if state in (0, 2) else tracker // 2)
        cv2.rectangle(page, (left + k * pitch, top), (left + k * pitch + bar - 1, bottom), (25, 25, 25), -1)


def _scan(page: np.ndarray, rng: np.random.Generator, max_tilt: float,
          elements: list[TextElement]) -> tuple[np.ndarray, float]:
    """Tilt, light unevenly, blur and noise the page; move the element boxes with the tilt."""
    tilt = float(rng.uniform(-max_tilt, max_tilt))
    h, w = page.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), tilt, 1.0)
    fill = tuple(int(v) for v in np.median(page.reshape(-1, 3), axis=0))
    page = cv2.warpAffine(page, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill)
    for e in elements:
        e.bbox = _turned_box(e.bbox, m, w, h)
    # Uneven light: a smooth gradient across the sheet.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-1, 1, 2)
    light = 1.0 - rng.uniform(0.0, 0.25) * (0.5 + 0.5 * np.tanh(a * (xx / w - 0.5) * 3 + b * (yy / h - 0.5) * 3))
    page = np.clip(page.astype(np.float32) * light[..., None], 0, 255).astype(np.uint8)
    page = degrade.blur(page, float(rng.uniform(0.0, 1.1)))
    page = degrade.gaussian_noise(page, rng, float(rng.uniform(1.0, 8.0)))
    return page, tilt


# --- a folder of envelopes ------------------------------------------------------------------


def write_samples(
    out_dir: str | Path,
    count: int = 10,
    seed: int = 0,
    handwriting: Optional[str | Path] = None,
    handwritten_share: float = 0.7,
    code_length: int = 5,
    mnist_split: str = "test",
    image_format: str = "mixed",
    layout: str = MIXED,
    max_tilt: float = 6.0,
    country: Optional[str] = None,
    continental: float = 0.0,
    pen_digits: float = 0.0,
    close_words: float = 0.0,
    barcode: float = 0.0,
    tight_lines: float = 0.0,
    block_tilt: float = 0.0,
    pencil: float = 0.0,
    coloured: float = 0.0,
    label: float = 0.0,
    first: int = 0,
) -> list[EnvelopeTruth]:
    """Write ``count`` envelope scans and ``truth.json`` into ``out_dir``; returns the truths.

    Each envelope is drawn on a seed of its own (``seed`` and its number), so ``first`` skips
    that many: envelopes ``first + 1`` on are the same pages a larger batch of the same seed
    holds, under the same names. A benchmark reads fresh envelopes of a family that way, once
    the first ones have been looked at.

    ``image_format`` is ``jpg``, ``png`` or ``mixed`` (about 70 % JPEG, like a mail room's scans);
    ``layout`` one of ``LAYOUTS`` or ``mixed`` (each envelope draws a training family; the
    held-out ``boxed`` only when asked for by name). With ``country``
    the codes are real codes of its postal directory, with their places (and US states), and the
    code length is the country's. ``continental``: the share of hands that write 1s with the
    up-stroke and cross their 7s, as most of Europe does (MNIST's writers never do);
    ``pen_digits``: the share of hands whose digits are drawn by a pen writer in shapes MNIST's
    writers did not use (``synth.pen_digits``); ``close_words``: the share of hands that leave
    narrow word spaces (a fifth to half their height); ``tight_lines``: the share of hands that
    write their lines close, one line's ink touching the next's; ``block_tilt``: the share of hands
    that write the address at an angle of its own to the envelope; ``pencil``: the share of hands
    that write in pencil; ``barcode``: the share of envelopes with a
    postal barcode printed under the destination block; ``coloured``: the share of envelopes
    that are not white (``PAPER_COLOURS``); ``label``: the share of envelopes whose address is
    on a stuck-on white label.
    """
    check_layout(layout)
    directory = None
    if country:
        from docsort.page import directory as directories

        directory = directories.load(country)
        code_length = directory.length
    if handwriting is None and handwritten_share > 0:
        handwriting = settings.datasets_folder()
        if handwriting is None:
            raise UsageError("handwritten envelopes need real handwriting: give --handwriting DIR (MNIST and "
                             "DHSD) or set DOCSORT_DATASETS, or draw printed ones with --handwritten-share 0")
    if image_format not in ("jpg", "png", "mixed"):
        raise UsageError(f"--format must be jpg, png or mixed, not {image_format!r}")
    if count < 1:
        raise UsageError("--count must be at least 1")
    if first < 0:
        raise UsageError("the first envelope's number cannot be negative")
    settings.check_code_length(code_length)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    corpus = HandwritingCorpus.cached(Path(handwriting), mnist_split) if handwritten_share > 0 else None
    truths = []
    for i in range(first, first + count):
        rng = np.random.default_rng([seed, i])
        # A mixed batch takes the families and block positions in turn, so that even a small
        # one (the demo's eight envelopes) shows each of them.
        family = TRAINING_LAYOUTS[i % len(TRAINING_LAYOUTS)] if layout == MIXED else layout
        page, truth = make_envelope(rng, corpus=corpus, handwritten_share=handwritten_share,
                                    code_length=code_length, layout=family, position=POSITIONS[i % len(POSITIONS)],
                                    max_tilt=max_tilt, directory=directory, continental=continental,
                                    pen_digits=pen_digits, close_words=close_words, barcode=barcode,
                                    tight_lines=tight_lines, block_tilt=block_tilt, pencil=pencil,
                                    coloured=coloured, label=label)
        as_jpeg = rng.random() < 0.7
        if image_format != "mixed":
            as_jpeg = image_format == "jpg"
        if as_jpeg:
            name = f"envelope_{i + 1:04d}.jpg"
            ok = cv2.imwrite(str(out / name), page, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 93))])
        else:
            name = f"envelope_{i + 1:04d}.png"
            ok = cv2.imwrite(str(out / name), page)
        if not ok:
            raise UsageError(f"cannot write {out / name}")
        truth.file = name
        truths.append(truth)
    payload = {
        "generator": {"seed": seed, "count": count, "first": first, "code_length": code_length, "max_tilt": max_tilt,
                      "layout": layout, "handwriting": "datasets" if corpus else None, "continental": continental,
                      "pen_digits": pen_digits, "close_words": close_words, "tight_lines": tight_lines, "block_tilt": block_tilt, "pencil": pencil, "coloured": coloured, "label": label,
                      "barcode": barcode,
                      "width": PAGE_W, "height": PAGE_H,
                      "country": directory.country if directory is not None else None,
                      "directory": directory.describe() if directory is not None else None},
        "envelopes": [t.to_dict() for t in truths],
    }
    (out / TRUTH_FILE).write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truths


def load_truth(folder: str | Path) -> dict[str, dict]:
    """``truth.json`` of a samples folder as {file name: envelope truth}."""
    data = json.loads((Path(folder) / TRUTH_FILE).read_text(encoding="utf-8"))
    return {e["file"]: e for e in data["envelopes"]}
