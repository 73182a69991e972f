"""Printed text the project renders itself: fonts from the system, random address-like text.

Mail carries printed words in every typeface: labels, franking, letterheads, window envelopes.
The writing-type classifier and the pipeline's samples need many of them, so text is rendered
with the installed font packages (fonts-dejavu, fonts-liberation, fonts-freefont-ttf,
fonts-noto-core, fonts-urw-base35: the *core* families) and split by font family, so a model is
measured on typefaces it never saw in training.

A classifier that has seen fourteen families takes the fifteenth's italic for a hand. The
*extra* families (``EXTRA_PACKAGES``: book faces, grotesques, condensed and typewriter faces, small
caps), where installed, can widen the writing-type classifier's training print
(``train writing-type --extra-fonts``). They are never split, never drawn on the generated
envelopes, and never validation, so every figure measured without them is measured on the same
crops with them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

# Fonts digitised from someone's handwriting are hands (synth.font_hands), never print.
from docsort.training.synth.font_hands import ALL_FILES as _HANDWRITING_FONTS

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Characters every usable font must draw: German/French letters, digits and address punctuation.
_REQUIRED_GLYPHS = "AaZzÄäÖöÜüßéèçà0123456789-,./@&%()<>€"
_HELD_OUT_FRACTION = 0.3
# The held-out family: fonts that no training or model selection sees, measured on their own
# (``docsort evaluate writing-type``): a serif with a true italic (P052, Palatino's design) and a
# condensed sans with obliques. They are taken out of ``font_split``'s both sides.
SEALED_FAMILIES = ("P052", "Nimbus Sans Narrow")
# The families of the core packages: what the page generators draw and the split divides.
CORE_FAMILIES = frozenset({
    "C059", "DejaVu Sans", "DejaVu Sans Mono", "DejaVu Serif", "FreeMono", "FreeSans", "FreeSerif",
    "Liberation Mono", "Liberation Sans", "Liberation Sans Narrow", "Liberation Serif", "Nimbus Mono PS",
    "Nimbus Roman", "Nimbus Sans", "Nimbus Sans Narrow", "Noto Sans", "Noto Sans Display", "Noto Serif",
    "Noto Serif Display", "P052", "URW Bookman", "URW Gothic", "Z003",
})
# Text faces for training print only (see the module's docstring; ``train writing-type --extra-fonts``).
EXTRA_PACKAGES = (
    "fonts-linuxlibertine", "fonts-ebgaramond", "fonts-crosextra-caladea", "fonts-crosextra-carlito",
    "fonts-lato", "fonts-roboto", "fonts-cantarell", "fonts-sil-gentiumplus", "fonts-sil-charis", "fonts-go",
    "fonts-inconsolata", "fonts-hack", "fonts-cmu", "fonts-stix", "fonts-junicode", "fonts-courier-prime",
    "fonts-paratype", "fonts-oldstandard", "fonts-cabin", "fonts-firacode", "fonts-jetbrains-mono",
    "fonts-mononoki", "fonts-quattrocento", "fonts-sil-andika", "fonts-adf-accanthis", "fonts-adf-gillius",
    "fonts-adf-universalis", "fonts-adf-baskervald", "fonts-adf-berenis", "fonts-adf-romande",
    "fonts-adf-tribun", "fonts-adf-verana", "fonts-adf-ikarius", "fonts-adf-libris", "fonts-vollkorn",
)
# Designs copied from a validation or held-out family (Palatino, Helvetica and its narrow cut,
# Times and Courier's metric twins of Liberation, Open Sans behind Noto Sans, Bookman): never
# training print, whatever package brings them.
_TWIN_FAMILIES = ("TeX Gyre Pagella", "TeX Gyre Heros", "TeX Gyre Bonum", "Tinos", "Cousine", "Open Sans",
                  "Droid Sans", "Palladio", "Switzera", "Helvetica", "Palatino", "Book Antiqua")


@dataclass(frozen=True)
class Font:
    path: str
    family: str
    style: str


def _glyph_signature(font, ch: str) -> bytes:
    mask = font.getmask(ch)
    return bytes(mask.size) + bytes(mask)


def _draws_latin(path: Path) -> Optional[Font]:
    """The font, when it draws every required Latin glyph (not its missing-glyph box)."""
    from PIL import ImageFont

    try:
        font = ImageFont.truetype(str(path), 32)
        family, style = font.getname()
    except OSError:
        return None
    missing = {_glyph_signature(font, ch) for ch in ("\ue000", "\U0010fffd")}
    for ch in _REQUIRED_GLYPHS:
        sig = _glyph_signature(font, ch)
        if sig in missing or font.getmask(ch).getbbox() is None:
            return None
    # Symbol and music fonts map Latin code points to pictures: require distinct letter shapes.
    if _glyph_signature(font, "a") == _glyph_signature(font, "b"):
        return None
    return Font(path=str(path), family=family or path.stem, style=style or "Regular")


_NON_TEXT_FAMILIES = ("math", "symbol", "music", "dingbat", "d050000l")


@functools.lru_cache(maxsize=None)
def _scan_fonts(dirs: tuple[Path, ...]) -> tuple[Font, ...]:
    fonts = []
    for root in dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in (".ttf", ".otf") or path.name in _HANDWRITING_FONTS:
                continue
            font = _draws_latin(path)
            if font and not any(word in font.family.lower() for word in _NON_TEXT_FAMILIES):
                fonts.append(font)
    return tuple(fonts)


def available_fonts(dirs: Sequence[Path] = FONT_DIRS) -> list[Font]:
    """Installed TrueType/OpenType fonts of the core families that draw German, French and English text."""
    return [f for f in _scan_fonts(tuple(Path(d) for d in dirs)) if f.family in CORE_FAMILIES]


_WEIGHT_WORDS = ("light", "thin", "hairline", "black", "heavy", "extra", "medium", "semi", "demi", "expanded",
                 "retina", "08 ", "upright")


def extra_fonts(dirs: Sequence[Path] = FONT_DIRS) -> list[Font]:
    """Installed text faces outside the core families, for training print: one face of each style
    (roman, italic, bold, bold-italic, and a condensed cut) a family, so a family with forty weights
    counts as much as one with four."""
    from docsort.training.synth.office import style_of

    chosen: dict[tuple[str, str], tuple[bool, Font]] = {}
    for font in _scan_fonts(tuple(Path(d) for d in dirs)):
        if font.family in CORE_FAMILIES or any(font.family.startswith(t) for t in _TWIN_FAMILIES):
            continue
        name = font.style.lower()
        kind = style_of(font) + (" condensed" if "cond" in name or "narrow" in name else "")
        # The plain weight of each style stands for it: "Regular" rather than "Light" or "Black".
        plain = not any(w in name for w in _WEIGHT_WORDS)
        key = (font.family, kind)
        if key not in chosen or (plain and not chosen[key][0]):
            chosen[key] = (plain, font)
    return sorted((font for _, font in chosen.values()), key=lambda f: (f.family, f.style, f.path))


def font_category(family: str) -> str:
    """Rough typeface class, so both sides of the split get sans, serif and mono faces."""
    name = family.lower()
    if any(k in name for k in ("z003", "chancery", "script")):
        return "script"
    if "mono" in name:
        return "mono"
    if any(k in name for k in ("serif", "roman", "c059", "p052", "bookman")) and "sans" not in name:
        return "serif"
    return "sans"


@dataclass(frozen=True)
class FontSplit:
    train: tuple[Font, ...]
    held_out: tuple[Font, ...]
    seed: int
    # Extra families, training print only (never split, never validation).
    extra: tuple[Font, ...] = ()

    @property
    def training(self) -> tuple[Font, ...]:
        """Every face training print is drawn in: the core training families, then the extras."""
        return self.train + self.extra

    def weighted_training(self, extra_share: Optional[float] = None) -> list[Font]:
        """``training`` with the core faces repeated so the extras are about ``extra_share`` of
        the faces drawn (None: every face once)."""
        if extra_share is None or not self.extra or not self.train:
            return list(self.training)
        repeat = max(1, int(round((1 - extra_share) / max(extra_share, 1e-6) * len(self.extra) / len(self.train))))
        return list(self.train) * repeat + list(self.extra)

    def families(self) -> dict:
        """The core split (what validation is keyed on); ``extra_families`` lists the rest."""
        return {
            "train": sorted({f.family for f in self.train}),
            "held_out": sorted({f.family for f in self.held_out}),
            "seed": self.seed,
        }

    def extra_families(self) -> list[str]:
        return sorted({f.family for f in self.extra})

    def without_extra(self) -> "FontSplit":
        return FontSplit(self.train, self.held_out, self.seed)


def font_split(seed: int = 0, fonts: Optional[Sequence[Font]] = None) -> FontSplit:
    """Split fonts by family (all styles of a family on one side), stratified by typeface class.

    About 30 % of the families of each class are held out; a class with a single family (the
    calligraphic Z003) stays in training, since holding it out would leave its class unseen.
    With the installed fonts (``fonts`` None) the core families are split and the installed
    extras (``extra_fonts``) join training as ``extra``.
    """
    extra = tuple(extra_fonts()) if fonts is None else ()
    fonts = list(fonts) if fonts is not None else available_fonts()
    rng = np.random.default_rng(seed)
    by_category: dict[str, list[str]] = {}
    for family in sorted({f.family for f in fonts}):
        by_category.setdefault(font_category(family), []).append(family)
    held_out: set[str] = set()
    for category in sorted(by_category):
        families = by_category[category]
        order = rng.permutation(len(families))
        n_held = int(round(len(families) * _HELD_OUT_FRACTION)) if len(families) > 1 else 0
        held_out.update(families[i] for i in order[:max(1, n_held) if len(families) > 2 else n_held])
    # The sealed families are left out after the split, so the validation families stay those
    # chosen before they were sealed.
    return FontSplit(
        train=tuple(f for f in fonts if f.family not in held_out and f.family not in SEALED_FAMILIES),
        held_out=tuple(f for f in fonts if f.family in held_out and f.family not in SEALED_FAMILIES),
        seed=seed,
        extra=extra,
    )


def sealed_fonts(fonts: Optional[Sequence[Font]] = None) -> list[Font]:
    """The held-out family's fonts (``SEALED_FAMILIES``), all their styles."""
    fonts = list(fonts) if fonts is not None else available_fonts()
    return [f for f in fonts if f.family in SEALED_FAMILIES]


@functools.lru_cache(maxsize=512)
def _load_font(path: str, size_px: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size_px)


def render_text(
    text: str,
    font_path: str,
    size_px: int,
    rng: Optional[np.random.Generator] = None,
    *,
    ink: int = 0,
    paper: int = 255,
    embolden: int = 0,
    condense: float = 1.0,
    shear: float = 0.0,
    tracking: float = 0.0,
    margin: Optional[float] = None,
) -> np.ndarray:
    """Render one line of text as a uint8 grey image, dark ink on light paper.

    ``size_px`` is the font size in pixels (about the height of an 'H' plus ascender room);
    ``embolden`` thickens strokes by that many pixels (fake bold), ``condense`` squeezes or
    widens the line horizontally, ``shear`` slants it (fake oblique), ``tracking`` adds space
    between letters (a fraction of the size; letter-spaced type is common on forms). The margin around the
    text is ``margin`` times the size, random in [0.05, 0.4] when None and ``rng`` is given.
    """
    from PIL import Image, ImageDraw

    font = _load_font(font_path, int(max(4, size_px)))
    left, top, right, bottom = font.getbbox(text, stroke_width=embolden)
    extra = int(round(tracking * size_px))
    if extra:
        right += extra * (len(text) - 1)
    if margin is None:
        margin = float(rng.uniform(0.05, 0.4)) if rng is not None else 0.2
    pad = int(round(margin * size_px)) + 1 + embolden
    w = max(1, right - left) + 2 * pad
    h = max(1, bottom - top) + 2 * pad
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if extra:
        x = float(pad - left)
        for ch in text:
            draw.text((x, pad - top), ch, font=font, fill=255, stroke_width=embolden, stroke_fill=255)
            x += font.getlength(ch) + extra
    else:
        draw.text((pad - left, pad - top), text, font=font, fill=255, stroke_width=embolden, stroke_fill=255)
    coverage = np.asarray(canvas, dtype=np.float32) / 255.0
    if abs(condense - 1.0) > 1e-3 or abs(shear) > 1e-3:
        import cv2

        nw = max(1, int(round(w * condense)))
        extra = int(np.ceil(abs(shear) * h))
        m = np.float32([[condense, -shear, shear * h if shear > 0 else 0.0], [0, 1, 0]])
        coverage = cv2.warpAffine(coverage, m, (nw + extra, h), flags=cv2.INTER_LINEAR, borderValue=0)
    image = paper - coverage * (float(paper) - float(ink))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)



def glyph_coverage(ch: str, font_path: str, size_px: int, embolden: int = 0) -> tuple[np.ndarray, int]:
    """One character's ink (float 0..1, cropped to its ink box) and the row of its top relative
    to the baseline (negative: above it), so that characters set one by one share a baseline."""
    from PIL import Image, ImageDraw

    font = _load_font(font_path, int(max(4, size_px)))
    left, top, right, bottom = font.getbbox(ch, anchor="ls", stroke_width=embolden)
    w, h = max(1, right - left), max(1, bottom - top)
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((-left, -top), ch, font=font, fill=255, anchor="ls",
                                stroke_width=embolden, stroke_fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0, int(top)

# --- Random text like the text on mail -------------------------------------------------------

GERMAN_STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Schulstraße", "Gartenstraße", "Dorfstraße", "Lindenallee",
    "Am Marktplatz", "Kirchweg", "Bergstraße", "Goethestraße", "Schillerplatz", "Mühlenweg",
    "Friedrich-Ebert-Str.", "Rosenweg", "Waldstraße", "Ringstraße", "Birkenweg", "Kastanienallee",
    "Am Sportplatz", "Industriestraße", "Königsallee", "Uhlandstr.", "Wilhelmstraße", "Feldweg",
    "Brückenstraße", "Am Rathaus", "Hafenstraße", "Tannenweg", "Jägerstraße", "Schloßallee",
)
ENGLISH_STREETS = (
    "High Street", "Station Road", "Church Lane", "Main Street", "Park Avenue", "Victoria Road",
    "Green Lane", "Manor Road", "Kings Road", "Queen Street", "Mill Lane", "Oak Drive",
    "Elm Street", "Maple Avenue", "Broadway", "Sunset Blvd", "Baker Street", "London Road",
    "Chestnut Close", "Riverside Walk", "Market Square", "Orchard Way",
)
FRENCH_STREETS = (
    "Rue de la Paix", "Avenue des Champs-Élysées", "Boulevard Voltaire", "Rue Victor Hugo",
    "Place de la République", "Rue du Moulin", "Chemin des Vignes", "Rue de l'Église",
    "Allée des Tilleuls", "Quai de la Loire", "Rue Jean Jaurès", "Impasse des Lilas",
    "Route de Lyon", "Rue Pasteur", "Cours Mirabeau", "Rue Gambetta",
)
GERMAN_CITIES = (
    "Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf",
    "Leipzig", "Dortmund", "Essen", "Bremen", "Dresden", "Hannover", "Nürnberg", "Kaiserslautern",
    "Saarbrücken", "Würzburg", "Göttingen", "Lübeck", "Regensburg", "Oberhausen", "Gießen",
    "Bad Homburg", "Neustadt a. d. Weinstraße", "Freiburg im Breisgau", "Mönchengladbach",
)
ENGLISH_CITIES = (
    "London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Edinburgh", "Bristol", "Cardiff",
    "Oxford", "Cambridge", "Springfield", "Boston", "Chicago", "New York", "Seattle", "Portland",
)
FRENCH_CITIES = (
    "Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Strasbourg", "Montpellier",
    "Bordeaux", "Lille", "Rennes", "Reims", "Saint-Étienne", "Le Havre", "Grenoble", "Besançon",
)
NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Smith",
    "Johnson", "Williams", "Brown", "Taylor", "Martin", "Bernard", "Dubois", "Thomas", "Robert",
    "Petit", "Durand", "Lefèvre", "Anna", "Peter", "Claire", "James", "Sophie", "Jürgen", "Élise",
)
MAIL_WORDS = (
    "Herrn", "Frau", "Firma", "z. Hd.", "GmbH", "AG", "KG", "e.V.", "Postfach", "Absender",
    "Deutsche Post", "Entgelt bezahlt", "Einschreiben", "Rückschein", "Büchersendung", "Infopost",
    "Mr", "Mrs", "Ms", "Dr.", "Attn:", "Ltd", "Inc.", "PO Box", "Priority", "Airmail", "Par avion",
    "Madame", "Monsieur", "SARL", "Cedex", "BP", "Tel.", "Fax", "E-Mail", "Germany", "Deutschland",
    "France", "United Kingdom", "Rechnung", "Kundennummer", "Datum", "Betreff", "Seite", "Invoice",
)


SENTENCE_WORDS = (
    "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "der", "die", "das", "und", "über",
    "für", "mit", "von", "Sehr", "geehrte", "Damen", "Herren", "Ihre", "Bestellung", "vom", "le", "la",
    "les", "des", "pour", "avec", "Madame", "please", "return", "to", "sender", "if", "undeliverable",
    "Zahlung", "bis", "spätestens", "Vielen", "Dank", "Kontoauszug", "Mitteilung", "Versicherung",
)


def random_symbol_text(rng: np.random.Generator) -> str:
    """Printed words with brackets, symbols and punctuation: e-mail, web, money, per cent, quotes."""
    word = str(rng.choice(SENTENCE_WORDS + NAMES))
    kind = rng.integers(0, 10)
    if kind == 0:
        left, right = [("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"), ("„", "“"), ("«", "»"), ('"', '"')][
            int(rng.integers(0, 7))]
        return f"{left}{word.lower() if rng.random() < 0.5 else word}{right}"
    if kind == 1:
        return f"{word.lower()}@{str(rng.choice(NAMES)).lower()}.{rng.choice(['de', 'com', 'fr', 'org'])}"
    if kind == 2:
        return f"www.{str(rng.choice(NAMES)).lower()}-{word.lower()}.{rng.choice(['de', 'com', 'eu'])}"
    if kind == 3:
        return f"{rng.choice(['$', '€', '£', 'EUR '])}{rng.integers(0, 99999):,}.{rng.integers(0, 99):02d}"
    if kind == 4:
        return f"{rng.integers(0, 100)}.{rng.integers(0, 9)}%"
    if kind == 5:
        return str(rng.choice(["&", "#", "§", "*", "+", "/", "-", "%", "@", "!", "?", ";", ":", "€", "$", "№"]))
    if kind == 6:
        return f"#{rng.integers(1, 999)}"
    if kind == 7:
        return word + str(rng.choice([",", ".", "!", "?", ":", ";"]))
    if kind == 8:
        return f"{word}/{str(rng.choice(SENTENCE_WORDS)).lower()}"
    return " ".join(str(w) for w in rng.choice(SENTENCE_WORDS, size=int(rng.integers(2, 6))))


BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"), ("‹", "›"), ("«", "»"), ("»", "«"), ("„", "“"),
            ("“", "”"), ('"', '"'), ("'", "'"), ("‚", "‘"))
LEADING_MARKS = ("#", "$", "€", "£", "§", "*", "+", "-", "–", "/", "@", "&", "~", "№", "¿", "¡")
TRAILING_MARKS = (",", ".", ":", ";", "!", "?", "%", "*", "/", "-", "°", "'s", ".-", "),", ").", "!)")


def random_punctuated_text(rng: np.random.Generator) -> str:
    """A word, number or letter with the punctuation Tesseract leaves attached to it.

    Tesseract cuts "(quick)", "<lazy>", "#90", "12.5%" or "goose," as one word; brackets,
    quotes and marks are bold, angular strokes that a classifier can take for a pen's, on
    numbers and short words most of all.
    """
    roll = rng.random()
    if roll < 0.35:
        core = random_word(rng)
    elif roll < 0.6:
        core = str(rng.integers(0, 10 ** int(rng.integers(1, 5))))
    elif roll < 0.8:
        core = str(rng.choice(SENTENCE_WORDS + NAMES))
    else:
        core = str(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")))
    if rng.random() < 0.3:
        core = core.lower() if rng.random() < 0.5 else core.upper()
    roll = rng.random()
    if roll < 0.55:
        left, right = BRACKETS[int(rng.integers(len(BRACKETS)))]
        text = f"{left}{core}{right}"
        if rng.random() < 0.2:
            text += str(rng.choice(TRAILING_MARKS[:6]))
    elif roll < 0.75:
        text = f"{rng.choice(LEADING_MARKS)}{core}"
    else:
        text = f"{core}{rng.choice(TRAILING_MARKS)}"
    return text


def random_postal_code(rng: np.random.Generator) -> str:
    """A postal code as printed on mail: German, French, US or UK style."""
    kind = rng.integers(0, 6)
    if kind == 0:
        return f"D-{rng.integers(1000, 99999):05d}"
    if kind == 1:
        return f"F-{rng.integers(1000, 99999):05d}"
    if kind == 2:
        return f"{rng.integers(10000, 99999)}-{rng.integers(0, 9999):04d}"
    if kind == 3:
        letters = "ABCDEFGHJKLMNPRSTUWYZ"
        a = "".join(rng.choice(list(letters), 2))
        b = "".join(rng.choice(list(letters), 2))
        return f"{a}{rng.integers(1, 20)} {rng.integers(1, 9)}{b}"
    return f"{rng.integers(1000, 99999):05d}"


def random_number(rng: np.random.Generator) -> str:
    """Numbers found on mail: house numbers, amounts, dates, reference and phone numbers."""
    kind = rng.integers(0, 8)
    if kind == 0:
        return str(rng.integers(1, 200)) + ("" if rng.random() < 0.7 else str(rng.choice(list("abc"))))
    if kind == 1:
        return f"{rng.integers(0, 9999)},{rng.integers(0, 99):02d} €"
    if kind == 2:
        return f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.{rng.integers(1990, 2030)}"
    if kind == 3:
        return f"+49 {rng.integers(30, 999)} {rng.integers(100000, 9999999)}"
    if kind == 4:
        return f"0{rng.integers(30, 9999)}/{rng.integers(1000, 999999)}"
    if kind == 5:
        return f"Postfach {rng.integers(1, 99)} {rng.integers(0, 99):02d}"
    if kind == 6:
        return f"Nr. {rng.integers(1000, 9999999)}"
    return str(rng.integers(0, 10 ** int(rng.integers(1, 10))))


def random_street_line(rng: np.random.Generator) -> str:
    lang = rng.integers(0, 3)
    if lang == 0:
        return f"{rng.choice(GERMAN_STREETS)} {rng.integers(1, 200)}"
    if lang == 1:
        return f"{rng.integers(1, 300)} {rng.choice(ENGLISH_STREETS)}"
    return f"{rng.integers(1, 120)}, {rng.choice(FRENCH_STREETS)}"


def random_city_line(rng: np.random.Generator) -> str:
    lang = rng.integers(0, 3)
    if lang == 0:
        return f"{rng.choice(['', 'D-'])}{rng.integers(1000, 99999):05d} {rng.choice(GERMAN_CITIES)}"
    if lang == 1:
        return f"{rng.choice(ENGLISH_CITIES)} {random_postal_code(rng)}"
    return f"{rng.integers(1000, 99999):05d} {rng.choice(FRENCH_CITIES)}" + (" Cedex" if rng.random() < 0.2 else "")


def random_address_line(rng: np.random.Generator) -> str:
    """One line of an address block: name, street, postal code and city, PO box or phone."""
    kind = rng.integers(0, 6)
    if kind == 0:
        return f"{rng.choice(['Herrn', 'Frau', 'Mr', 'Mme', 'Dr.', ''])} {rng.choice(NAMES)} {rng.choice(NAMES)}".strip()
    if kind == 1:
        return random_street_line(rng)
    if kind == 2:
        return random_city_line(rng)
    if kind == 3:
        return f"{rng.choice(['Postfach', 'PO Box', 'BP'])} {rng.integers(1, 99)} {rng.integers(0, 99):02d}"
    if kind == 4:
        return f"Tel. {random_number(rng) if rng.random() < 0.3 else '+49 30 ' + str(rng.integers(100000, 9999999))}"
    return f"{rng.choice(NAMES)} {rng.choice(['GmbH', 'AG', 'KG', 'Ltd', 'SARL', '& Co.'])}"


def random_word(rng: np.random.Generator) -> str:
    """One word as Tesseract would cut it from a printed page."""
    pool = rng.integers(0, 5)
    if pool == 0:
        phrase = str(rng.choice(GERMAN_STREETS + ENGLISH_STREETS + FRENCH_STREETS))
    elif pool == 1:
        phrase = str(rng.choice(GERMAN_CITIES + ENGLISH_CITIES + FRENCH_CITIES))
    elif pool == 2:
        phrase = str(rng.choice(NAMES))
    elif pool == 3:
        phrase = str(rng.choice(MAIL_WORDS))
    else:
        phrase = random_number(rng)
    words = phrase.split()
    word = words[int(rng.integers(0, len(words)))]
    if rng.random() < 0.1:
        word = word.upper()
    return word


def random_printed_text(rng: np.random.Generator) -> str:
    """A mix of what printed crops on mail contain: words, numbers, postal codes, symbols, whole lines."""
    kind = rng.random()
    if kind < 0.38:
        return random_word(rng)
    if kind < 0.5:
        return random_number(rng)
    if kind < 0.6:
        return random_postal_code(rng)
    if kind < 0.78:
        return random_symbol_text(rng)
    return random_address_line(rng)
