"""Office print and office scans: what printed words look like on real mail and letters.

Real office scans are mostly 1-bit (bilevel) at 150-400 dpi: fax machines, copiers and
multifunction scanners threshold or dither body text set at 8-12 point, often in italic or
bold serif type, photocopied before and with toner missing here and there. At those sizes a
serif italic word is 15-30 px tall and its hairlines break up into jagged steps that look like
a pen's. This module makes such print (real italic, bold and condensed faces, small caps,
typewriter, dot-matrix and thermal print, short and punctuation-bound words) and such scans,
and puts handwriting (pencil, thin pen) through the same scans, so the scan tells neither class.

All images are uint8 grey, dark ink on light paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.training.synth import degrade
from docsort.training.synth.printed import Font, _load_font, render_text

# 1-bit scans at this resolution (fax fine mode) are kept out of training: the held-out family's
# scan condition (``SEALED_DPI``). Training draws its resolutions outside this band.
SEALED_DPI = 200
SEALED_DPI_BAND = (185.0, 215.0)
DPI_RANGE = (150.0, 400.0)
# Body text to headings, in points.
POINT_RANGE = (6.5, 16.0)

SHORT_WORDS = (
    "a", "an", "at", "to", "of", "in", "on", "is", "it", "by", "or", "as", "be", "we", "no", "so", "up",
    "if", "do", "my", "I", "A", "To", "At", "In", "On", "Of", "the", "and", "for", "per", "via", "&",
    "der", "die", "das", "und", "im", "am", "zu", "an", "bei", "vom", "zum", "Nr.", "Tel", "Fax", "z.B.",
    "le", "la", "les", "de", "du", "et", "en", "au", "à", "où", "un", "une", "Mr", "Dr.", "St.", "Co.",
    "1", "2", "3", "7", "10", "12", "25", "99", "1.", "2.", "a)", "b)", "(1)", "I.", "II", "§", "%", "€",
    "-", "–", "/", "«", "»", "(", ")", "“", "”", ":", ";", "!", "?", "*", "+", "#",
)
PROSE_WORDS = (
    "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "please", "return", "sender",
    "invoice", "payment", "received", "account", "number", "customer", "service", "delivery", "order",
    "thank", "you", "for", "your", "letter", "regarding", "above", "enclosed", "find", "copy", "contract",
    "agreement", "meeting", "office", "department", "sincerely", "regards", "date", "reference", "page",
    "Sehr", "geehrte", "Damen", "und", "Herren", "vielen", "Dank", "für", "Ihre", "Anfrage", "Rechnung",
    "Zahlung", "bis", "spätestens", "Betrag", "Konto", "Vertrag", "Unterlagen", "beiliegend", "Kopie",
    "freundlichen", "Grüßen", "Mitteilung", "Versicherung", "Kundennummer", "über", "werden", "haben",
    "Madame", "Monsieur", "nous", "vous", "avons", "reçu", "votre", "lettre", "facture", "paiement",
    "veuillez", "trouver", "ci-joint", "salutations", "distinguées", "l'adresse", "d'envoi", "être",
)
BOUND_FORMS = (
    "{w}-", "-{w}", "{w}-{v}", "„{w}“", "“{w}”", "‘{w}’", "\"{w}\"", "'{w}'", "{w}'s", "({w})", "{w},",
    "{w}.", "{w};", "{w}:", "{w}?", "{w}!", "«{w}»", "»{w}«", "l'{w}", "d'{w}", "{w}),", "({w}", "{w})",
    "{w}.”", "{w}/{v}", "{w}…", "{w}-\u00ad",
)


def random_short_word(rng: np.random.Generator) -> str:
    """A word of 1-3 characters: articles, prepositions, numbers, marks (Tesseract cuts them alone)."""
    return str(rng.choice(SHORT_WORDS))


def random_bound_word(rng: np.random.Generator) -> str:
    """A word with a hyphen, quote, apostrophe or bracket attached: line-end hyphens, quoted words."""
    w = str(rng.choice(PROSE_WORDS))
    v = str(rng.choice(PROSE_WORDS)).lower()
    if rng.random() < 0.3:
        w = w.lower()
    return str(rng.choice(BOUND_FORMS)).format(w=w, v=v).replace("\u00ad", "")


def random_prose_word(rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.25:
        return random_short_word(rng)
    if roll < 0.45:
        return random_bound_word(rng)
    return str(rng.choice(PROSE_WORDS))


def style_of(font: Font) -> str:
    """"italic", "bold-italic", "bold" or "roman", from the face's style name."""
    name = font.style.lower()
    italic = "italic" in name or "oblique" in name
    bold = "bold" in name
    return "bold-italic" if italic and bold else "italic" if italic else "bold" if bold else "roman"


def by_style(fonts: Sequence[Font]) -> dict[str, list[Font]]:
    out: dict[str, list[Font]] = {}
    for font in fonts:
        out.setdefault(style_of(font), []).append(font)
    return out


def is_mono(font: Font) -> bool:
    return "mono" in font.family.lower()


# --- Print: faces and devices -------------------------------------------------------------------

def render_small_caps(text: str, font_path: str, size_px: int, margin: float = 0.2) -> np.ndarray:
    """Small caps: lowercase letters set as capitals at 0.75 of the size, on one baseline."""
    from PIL import Image, ImageDraw

    big, small = _load_font(font_path, int(max(4, size_px))), _load_font(font_path, int(max(4, 0.75 * size_px)))
    runs = [(ch.upper(), small if ch.islower() else big) for ch in text]
    width = int(sum(f.getlength(ch) for ch, f in runs)) + 2
    pad = int(round(margin * size_px)) + 1
    ascent, descent = big.getmetrics()
    canvas = Image.new("L", (width + 2 * pad, ascent + descent + 2 * pad), 255)
    draw = ImageDraw.Draw(canvas)
    x = float(pad)
    for ch, f in runs:
        draw.text((x, pad + ascent), ch, font=f, fill=0, anchor="ls")
        x += f.getlength(ch)
    return np.asarray(canvas, np.uint8)


def render_typewriter(text: str, font_path: str, size_px: int, rng: np.random.Generator) -> np.ndarray:
    """Typewriter: each letter struck on its own, a little off the baseline and unevenly inked."""
    from PIL import Image, ImageDraw

    font = _load_font(font_path, int(max(4, size_px)))
    advance = max(1.0, font.getlength("M"))
    ascent, descent = font.getmetrics()
    pad = int(0.3 * size_px) + 2
    canvas = np.full((ascent + descent + 2 * pad, int(advance * len(text)) + 2 * pad), 255.0, np.float32)
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        glyph = Image.new("L", (int(advance * 2) + 4, canvas.shape[0]), 0)
        ImageDraw.Draw(glyph).text((advance / 2, pad + ascent + rng.normal(0, 0.04 * size_px)), ch, font=font,
                                   fill=255, anchor="ls")
        cover = np.asarray(glyph, np.float32) / 255.0
        strength = float(np.clip(rng.normal(0.85, 0.12), 0.45, 1.0))
        x0 = int(pad + i * advance - advance / 2)
        a, b = max(0, x0), min(canvas.shape[1], x0 + cover.shape[1])
        region = canvas[:, a:b]
        np.minimum(region, 255.0 * (1.0 - strength * cover[:, a - x0:b - x0]), out=region)
    # Ribbon texture: the ink is grainy.
    grain = rng.normal(0, 35, canvas.shape).astype(np.float32)
    out = np.where(canvas < 250, canvas + np.abs(grain) * (1 - canvas / 255.0), canvas)
    return np.clip(out, 0, 255).astype(np.uint8)


def dot_matrix(img: np.ndarray, size_px: int, rng: np.random.Generator) -> np.ndarray:
    """Dot-matrix print: the glyphs sampled on a grid of round pin dots (7-9 pins a capital)."""
    pitch = max(2.0, 0.7 * size_px / rng.uniform(7, 10))
    cover = 1.0 - img.astype(np.float32) / 255.0
    gh, gw = max(1, int(img.shape[0] / pitch)), max(1, int(img.shape[1] / pitch))
    grid = cv2.resize(cover, (gw, gh), interpolation=cv2.INTER_AREA) > 0.35
    out = np.full(img.shape, 255, np.uint8)
    radius = max(1, int(round(pitch * rng.uniform(0.45, 0.65))))
    ink = int(rng.integers(0, 80))
    for y, x in zip(*np.nonzero(grid)):
        cv2.circle(out, (int((x + 0.5) * pitch), int((y + 0.5) * pitch)), radius, ink, -1, cv2.LINE_AA)
    return out


def thermal(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thermal (receipt) print: pale grey ink, streaks where the print head's dots failed, fading."""
    f = img.astype(np.float32) / 255.0
    ink = rng.uniform(40, 140)
    out = ink + f * (255 - ink)
    cols = rng.random(img.shape[1]) < rng.uniform(0.0, 0.06)
    out[:, cols] = np.maximum(out[:, cols], 255 - (255 - out[:, cols]) * rng.uniform(0.1, 0.5))
    fade = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), img.shape[1])[None, :]
    out = 255 - (255 - out) * fade
    return np.clip(out, 0, 255).astype(np.uint8)


# --- Handwriting: pencil and thin pen --------------------------------------------------------------

def pencil(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pencil: thinner, pale grey strokes with graphite grain."""
    f = img.astype(np.float32)
    paper, darkest = float(f.max()), float(f.min())
    cover = np.clip((paper - f) / max(1.0, paper - darkest), 0, 1)
    grain = np.clip(rng.normal(1.0, 0.25, cover.shape), 0.3, 1.3).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.6)
    depth = rng.uniform(110, 200)
    return np.clip(255 - cover * grain * depth, 0, 255).astype(np.uint8)


def thin_pen(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fine-liner or ballpoint: strokes thinned by a pixel or two, dark or mid-grey ink."""
    out = degrade.stroke_width(img, -int(rng.integers(1, 3)))
    if ink_pixels(out) < 0.3 * ink_pixels(img):
        out = img
    return degrade.ink_level(out, rng.uniform(0, 100), 255)


def ink_pixels(img: np.ndarray) -> int:
    return int((img < 128).sum())


# --- Office scans ------------------------------------------------------------------------------

@dataclass(frozen=True)
class OfficeScan:
    """How an office scan is made: resolution, and what happens to the paper on the way."""

    dpi: float
    bilevel: bool = True
    dither: bool = False
    photocopy: bool = False
    toner_dropout: bool = False
    fax: bool = False

    def tags(self) -> tuple[str, ...]:
        out = [f"{'1-bit' if self.bilevel else 'grey'} {int(round(self.dpi))} dpi"]
        out += [name for name, on in (("1-bit", self.bilevel), ("dither", self.dither), ("photocopy", self.photocopy),
                                      ("toner dropout", self.toner_dropout), ("fax", self.fax)) if on]
        return tuple(out)


def random_office_scan(rng: np.random.Generator, sealed: bool = False) -> OfficeScan:
    """A training scan (resolutions outside ``SEALED_DPI_BAND``), or with ``sealed`` the held-out one:
    1-bit at ``SEALED_DPI``, thresholded, with fax noise half the time."""
    if sealed:
        return OfficeScan(dpi=SEALED_DPI, bilevel=True, fax=rng.random() < 0.5,
                          photocopy=rng.random() < 0.2, toner_dropout=rng.random() < 0.2)
    while True:
        dpi = math.exp(rng.uniform(math.log(DPI_RANGE[0]), math.log(DPI_RANGE[1])))
        if not SEALED_DPI_BAND[0] <= dpi <= SEALED_DPI_BAND[1]:
            break
    bilevel = rng.random() < 0.75
    return OfficeScan(dpi=dpi, bilevel=bilevel, dither=bilevel and rng.random() < 0.12,
                      photocopy=rng.random() < 0.25, toner_dropout=rng.random() < 0.2,
                      fax=bilevel and rng.random() < 0.35)


def cap_height_px(points: float, dpi: float) -> float:
    """A capital's height in pixels for type of ``points`` scanned at ``dpi`` (0.7 of the size)."""
    return 0.7 * points * dpi / 72.0


_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32) + 0.5) / 16.0


def office_scan(img: np.ndarray, rng: np.random.Generator, scan: OfficeScan, text_height: int,
                points: float) -> np.ndarray:
    """``img`` (clean, any scale; ``text_height`` its capital's or writing's height in pixels) as
    ``scan`` gives it with type of ``points``: scaled to the scan's pixels, blurred by the optics,
    darkened by a photocopy, toner missing, then thresholded or dithered to 1 bit, with fax noise."""
    target = max(6.0, cap_height_px(points, scan.dpi))
    factor = target / max(1, text_height)
    src = img
    if scan.photocopy and rng.random() < 0.7:
        # A copy of a copy: strokes spread, grey specks on the paper.
        src = degrade.stroke_width(src, max(1, int(round(rng.uniform(0.02, 0.06) * text_height))))
    pad = max(2, int(0.3 * text_height))
    src = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(np.percentile(src, 95)))
    size = (max(2, int(round(src.shape[1] * factor))), max(2, int(round(src.shape[0] * factor))))
    out = cv2.resize(src, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC).astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.35, 0.9))
    if scan.toner_dropout:
        holes = cv2.GaussianBlur(rng.random(out.shape).astype(np.float32), (0, 0), rng.uniform(1.0, 2.5))
        holes = (holes - holes.mean()) / max(1e-6, holes.std())
        out = np.where(holes > rng.uniform(0.8, 1.6), 255 - (255 - out) * rng.uniform(0.2, 0.6), out)
    if scan.photocopy:
        out = out - rng.uniform(0, 40) * (out < 250) + rng.normal(0, 6, out.shape)
        specks = rng.random(out.shape) < rng.uniform(0.0, 0.004)
        out[specks] = rng.uniform(0, 120)
    out = np.clip(out + rng.normal(0, rng.uniform(1, 8), out.shape), 0, 255)
    if not scan.bilevel:
        return out.astype(np.uint8)
    paper = float(np.percentile(out, 95))
    # The ink's level: the typical dark pixel, not the darkest speck of grainy pencil.
    inky = out[out < paper - 0.3 * (paper - float(out.min()))]
    ink = float(np.percentile(inky, 30)) if inky.size else float(out.min())
    if paper - ink < 40:
        # Too faint to threshold anything but noise: the scanner's auto-exposure keeps it grey.
        return out.astype(np.uint8)
    if scan.dither:
        h, w = out.shape
        bayer = np.tile(_BAYER, (h // 4 + 1, w // 4 + 1))[:h, :w]
        level = ink + (paper - ink) * (0.15 + 0.7 * bayer)
    else:
        # Light or dark exposure: thin strokes break up or fill in.
        level = ink + (paper - ink) * rng.uniform(0.3, 0.72)
    bits = np.where(out < level, 0, 255).astype(np.uint8)
    if scan.fax:
        bits = fax_noise(bits, rng)
    elif rng.random() < 0.5:
        flips = rng.random(bits.shape) < rng.uniform(0.0, 0.003)
        bits[flips] = 255 - bits[flips]
    return bits


def fax_noise(bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faults of fax transmission (CCITT run-length coding): a scan line lost (white) or smeared
    (its runs shifted or repeated from the line above), lone pixels flipped, a streak down the page."""
    out = bits.copy()
    h, w = out.shape
    for y in np.flatnonzero(rng.random(h) < rng.uniform(0.0, 0.08)):
        roll = rng.random()
        if roll < 0.4:
            out[y] = 255
        elif roll < 0.7 and y > 0:
            out[y] = out[y - 1]
        else:
            out[y] = np.roll(out[y], int(rng.integers(-2, 3)))
    flips = rng.random(out.shape) < rng.uniform(0.0, 0.004)
    out[flips] = 255 - out[flips]
    if rng.random() < 0.2:
        x = int(rng.integers(0, w))
        out[:, x:x + int(rng.integers(1, 3))] = 0 if rng.random() < 0.5 else 255
    return out


# --- Printed words as office print, and handwriting through the same scans -----------------------

PRINT_KINDS = ("face", "face", "face", "face", "small caps", "typewriter", "dot-matrix", "thermal")


@dataclass
class OfficeCrop:
    image: np.ndarray
    tags: tuple[str, ...]


def office_text(rng: np.random.Generator) -> tuple[str, str]:
    """Text of an office-printed word and its kind: short, punctuation-bound, prose or mail text."""
    from docsort.training.synth.printed import random_printed_text

    roll = rng.random()
    if roll < 0.3:
        return random_short_word(rng), "short word"
    if roll < 0.5:
        return random_bound_word(rng), "punctuation-bound"
    if roll < 0.8:
        return str(rng.choice(PROSE_WORDS)), "word"
    return random_printed_text(rng).strip() or "A", "mail text"


def office_printed_crop(rng: np.random.Generator, fonts: Sequence[Font], scan: Optional[OfficeScan] = None,
                        text: Optional[str] = None) -> OfficeCrop:
    """One printed word as office print: a real face (roman, italic, bold, bold italic; condensed
    now and then), small caps, typewriter, dot-matrix or thermal print, through an office scan."""
    styles = by_style(fonts)
    # Italic and bold faces are drawn as often as roman ones: they are what was missed.
    style = str(rng.choice([s for s in ("roman", "italic", "bold", "bold-italic") if s in styles]))
    kind = str(rng.choice(PRINT_KINDS))
    mono = [f for f in fonts if is_mono(f)]
    if kind in ("typewriter", "dot-matrix", "thermal") and not mono:
        kind = "face"
    if kind == "typewriter":
        font = mono[int(rng.integers(len(mono)))]
        style = style_of(font)
    else:
        pool = styles[style]
        font = pool[int(rng.integers(len(pool)))]
    if text is None:
        text, text_kind = office_text(rng)
    else:
        text_kind = "short word" if len(text) <= 3 else "word"
    size = 64
    tags = [style, kind, text_kind]
    if kind == "small caps":
        img = render_small_caps(text, font.path, size)
    elif kind == "typewriter":
        img = render_typewriter(text, font.path, size, rng)
    else:
        condense = float(rng.uniform(0.72, 0.9)) if rng.random() < 0.15 else 1.0
        if condense < 1.0:
            tags.append("condensed")
        img = render_text(text, font.path, size, rng=rng, condense=condense)
        if kind == "dot-matrix":
            img = dot_matrix(img, size, rng)
        elif kind == "thermal":
            img = thermal(img, rng)
    if len(text.replace(" ", "")) <= 3:
        tags.append("short word")
    scan = scan or random_office_scan(rng)
    points = float(rng.uniform(*POINT_RANGE)) if kind != "thermal" else float(rng.uniform(7, 11))
    out = office_scan(img, rng, scan, int(round(0.7 * size)), points)
    return OfficeCrop(_tight(out), tuple(dict.fromkeys(tags + ["printed", *scan.tags()])))


def office_handwritten_crop(rng: np.random.Generator, image: np.ndarray, source: str,
                            scan: Optional[OfficeScan] = None, text_height: Optional[int] = None) -> OfficeCrop:
    """A handwritten word or number (clean, dark on white) in pencil, thin pen or as written, through
    an office scan: writing scanned 1-bit must not look printed, nor 1-bit look printed."""
    if text_height is None:
        text_height = _ink_height(image)
    # Work near the scan's scale: DHSD's originals are several times larger than needed.
    shrink = 48.0 / max(1, text_height)
    if shrink < 1.0:
        image = cv2.resize(image, (max(2, int(image.shape[1] * shrink)), max(2, int(image.shape[0] * shrink))),
                           interpolation=cv2.INTER_AREA)
        text_height = max(1, int(round(text_height * shrink)))
    roll = rng.random()
    tags = ["handwritten", source]
    if roll < 0.35:
        image, pen = pencil(image, rng), "pencil"
    elif roll < 0.65:
        image, pen = thin_pen(image, rng), "thin pen"
    else:
        pen = "pen"
    tags.append(pen)
    scan = scan or random_office_scan(rng)
    # Handwriting on a form or envelope: as large as 9-20 point type.
    points = float(rng.uniform(9, 22))
    out = office_scan(image, rng, scan, text_height, points)
    return OfficeCrop(_tight(out), tuple(dict.fromkeys(tags + list(scan.tags()))))


def _ink_height(image: np.ndarray) -> int:
    mask = image < (int(image.max()) + int(image.min())) // 2
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if len(rows) else image.shape[0]


def _tight(img: np.ndarray, pad: int = 2) -> np.ndarray:
    """Cut to the ink plus a little paper, as Tesseract's word boxes hug the ink."""
    mask = img < 128
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return img
    y0, y1 = max(0, rows[0] - pad), min(img.shape[0], rows[-1] + 1 + pad)
    x0, x1 = max(0, cols[0] - pad), min(img.shape[1], cols[-1] + 1 + pad)
    return img[y0:y1, x0:x1]


# --- Pages of paragraphs, as Tesseract reads them at run time ------------------------------------

def paragraph_page(rng: np.random.Generator, fonts: Sequence[Font], scan: Optional[OfficeScan] = None,
                   italic_share: Optional[float] = None) -> tuple[np.ndarray, OfficeScan, float]:
    """A letter page of paragraphs in one family, mixing roman and italic (and some bold) words and
    whole italic sentences, through an office scan. All its words are printed."""
    from PIL import Image, ImageDraw

    by_family: dict[str, list[Font]] = {}
    for f in fonts:
        by_family.setdefault(f.family, []).append(f)
    family = by_family[sorted(by_family)[int(rng.integers(len(by_family)))]]
    styles = by_style(family)
    roman = (styles.get("roman") or family)[0]
    italic = (styles.get("italic") or styles.get("bold-italic") or [roman])[0]
    bold = (styles.get("bold") or [roman])[0]
    scan = scan or random_office_scan(rng)
    points = float(rng.uniform(8, 13))
    size = max(8, int(round(points * scan.dpi / 72.0)))
    width, height = int(8.0 * scan.dpi * rng.uniform(0.5, 0.8)), int(11.0 * scan.dpi * rng.uniform(0.35, 0.5))
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    share = float(rng.uniform(0.2, 0.8)) if italic_share is None else italic_share
    margin = int(0.6 * scan.dpi)
    y = margin
    line_h = int(size * rng.uniform(1.15, 1.5))
    in_italic = False
    while y + line_h < height - margin // 2:
        x = margin
        while True:
            word = random_prose_word(rng)
            if rng.random() < 0.15:
                in_italic = rng.random() < share
            face = italic if (in_italic or rng.random() < 0.5 * share) else (bold if rng.random() < 0.05 else roman)
            font = _load_font(face.path, size)
            w = font.getlength(word)
            if x + w > width - margin:
                break
            draw.text((x, y), word, font=font, fill=0)
            x += int(w + font.getlength(" ") * rng.uniform(0.9, 1.6))
        y += line_h + (line_h if rng.random() < 0.12 else 0)
    page = np.asarray(canvas, np.uint8)
    # The page is rendered at the scan's resolution already: scanning it keeps its scale.
    text_height = int(round(0.7 * size))
    return office_scan(page, rng, scan, text_height, points), scan, points
