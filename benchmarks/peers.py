"""The readers a user would pick instead of docsort, run the way such a user would run them.

Benchmarks only: the product never imports this. Two peers:

- RapidOCR (``pip install rapidocr``, the PP-OCR detection and recognition models of its wheel
  on ONNX Runtime, no download): one thread, the 0/180-degree angle classifier off (it is on by
  default; envelopes are scanned upright within a few degrees), everything else as shipped.
- Tesseract alone: ``--psm 11`` (sparse text) on a page, ``--psm 7`` with a digits whitelist
  on a cut number field.

Neither gives a calibrated confidence, so every answer counts as sent automatically.

How a page's answer is picked, the same for both (``pick_code``):

1. the engine's text, line by line (RapidOCR) or word by word (Tesseract), in the engine's own
   reading order (top to bottom, left to right);
2. raw: every run of exactly ``code_length`` ASCII digits is a candidate (``D-58412``,
   ``62704-1234`` and ``41580Lübeck`` each give their code; a six-digit number gives none);
3. with ``confusions=True``, every run of digits and look-alikes (O->0, S->5, I->1, l->1, B->8,
   Z->2, and / or | -> 1) that holds a real digit: its raw ``code_length``-digit runs when it
   has any (``10115Berlin`` stays ``10115``, not ``101158``), else the whole run read with the
   look-alikes as digits when that makes ``code_length`` digits (``4O5I2`` -> ``40512``,
   ``4855/Grünstadt`` -> ``48551``). The / and | were added after seeing RapidOCR read a
   handwritten one-stroke 1 as / on the benchmark's envelopes: a help to the peers;
4. candidates whose line stands in the return-address corner (docsort's own
   ``SENDER_ZONE``: centre left of 42 % of the width and above 36 % of the height) are dropped;
   with a postal directory, so are codes that do not exist;
5. the answer is the last candidate left, or none.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from docsort.page.destination import SENDER_ZONE

Image = Union[str, Path, np.ndarray]
Box = tuple[int, int, int, int]  # x, y, width, height in page pixels
Line = tuple[str, Box, float]  # text, box, the engine's score

# Characters an OCR engine puts for a digit: read as digits only in runs that hold a real digit.
CONFUSIONS = str.maketrans({"O": "0", "S": "5", "I": "1", "l": "1", "B": "8", "Z": "2", "/": "1", "|": "1"})
_LOOK_ALIKE_RUN = re.compile(r"[0-9OSIlBZ/|]+")
_DIGIT_RUN = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------- RapidOCR

@functools.lru_cache(maxsize=1)
def rapidocr_engine():
    """One RapidOCR engine per process: one ONNX Runtime thread, no angle classifier."""
    from rapidocr import RapidOCR

    # Log level error: "no text found" is an answer here, not a warning.
    return RapidOCR(params={
        "Global.use_cls": False,
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })


def _load(image: Image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    import cv2

    loaded = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if loaded is None:
        raise FileNotFoundError(image)
    return loaded


def rapidocr_page(image: Image) -> list[Line]:
    """RapidOCR's lines of a page: (text, box, score) in its reading order."""
    # The engine keeps a ``use_det`` given to an earlier call: say it every time.
    out = rapidocr_engine()(_load(image), use_det=True)
    if out.txts is None or out.boxes is None:
        return []
    lines = []
    for quad, text, score in zip(out.boxes, out.txts, out.scores):
        q = np.asarray(quad, float)
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        lines.append((str(text), (int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))), float(score)))
    return lines


def rapidocr_code(image: Image, code_length: int = 5, country: Optional[str] = None,
                  confusions: bool = True) -> Optional[str]:
    """RapidOCR's destination code of an envelope by ``pick_code`` (None when it finds none)."""
    page, directory = _load(image), _directory(country)
    return pick_code(rapidocr_page(page), page.shape[:2][::-1], directory.length if directory else code_length,
                     confusions, directory)


@dataclass(frozen=True)
class FieldText:
    """A peer's reading of one cut number field."""

    raw: str  # the text as recognised, lines joined by a space
    digits: str  # non-digits removed
    mapped: str  # look-alike letters read as digits, then non-digits removed

    @classmethod
    def of(cls, raw: str) -> "FieldText":
        return cls(raw, _digits(raw), _digits(raw.translate(CONFUSIONS)))


def rapidocr_string(image: Image, detect: bool = True) -> FieldText:
    """RapidOCR's text of a single number field crop. ``detect=False`` skips text detection and
    recognises the whole crop as one line, as a user who knows it is one field may do."""
    out = rapidocr_engine()(_load(image), use_det=detect)
    texts = getattr(out, "txts", None) or ()
    return FieldText.of(" ".join(str(t) for t in texts).strip())


# --------------------------------------------------------------------------- Tesseract alone

def tesseract_page(image: Image) -> list[Line]:
    """Tesseract's words of a page (``--psm 11``): (text, box, confidence / 100) in its order."""
    import pytesseract

    data = pytesseract.image_to_data(_tesseract_input(image), lang="eng", config="--psm 11",
                                     output_type=pytesseract.Output.DICT)
    words = []
    for text, x, y, w, h, conf in zip(data["text"], data["left"], data["top"], data["width"],
                                      data["height"], data["conf"]):
        if str(text).strip():
            words.append((str(text).strip(), (int(x), int(y), int(w), int(h)), max(0.0, float(conf)) / 100))
    return words


def tesseract_code(image: Image, code_length: int = 5, country: Optional[str] = None,
                   confusions: bool = True) -> Optional[str]:
    """Tesseract's destination code of an envelope by ``pick_code`` (None when it finds none)."""
    page, directory = _load(image), _directory(country)
    return pick_code(tesseract_page(page), page.shape[:2][::-1], directory.length if directory else code_length,
                     confusions, directory)


def tesseract_string(image: Image) -> FieldText:
    """Tesseract's text of a single number field crop: one line (``--psm 7``), digits only."""
    import pytesseract

    text = pytesseract.image_to_string(_tesseract_input(image), lang="eng",
                                       config="--psm 7 -c tessedit_char_whitelist=0123456789")
    return FieldText.of(" ".join(text.split()))


def _tesseract_input(image: Image):
    if isinstance(image, np.ndarray):
        return image[:, :, ::-1] if image.ndim == 3 else image  # pytesseract takes RGB arrays
    return str(image)


# --------------------------------------------------------------------------- the pick

# Two digit runs a space apart with no digit run beside them: a code written in two groups.
_TWO_GROUPS = re.compile(r"(?<!\d)(?<!\d )(\d{2,})\s(\d{2})(?! ?\d)")
# A code of two groups joined by a hyphen (Poland 00-950, Portugal 1000-001), a dash or two apart.
_HYPHEN_GROUPS = re.compile(r"(?<!\d)(?<!\d-)(\d{2,}) ?[-‐–—] ?(\d{2,})(?!-?\d)")


def code_candidates(text: str, code_length: int, confusions: bool = True) -> list[str]:
    """The ``code_length``-digit codes of one line's text, left to right (rules 2 and 3), and a
    code in two groups (``114 55``: two digit runs a space apart, all but two digits and two,
    with no digit run beside them), or joined by a hyphen (``00-950``), as docsort reads one: a
    help to the peers."""
    groups = [a + b for pattern in (_TWO_GROUPS, _HYPHEN_GROUPS) for a, b in pattern.findall(text)
              if len(a) + len(b) == code_length]
    if not confusions:
        return [run for run in _DIGIT_RUN.findall(text) if len(run) == code_length] + groups
    found = []
    for run in _LOOK_ALIKE_RUN.findall(text):
        raw = [digits for digits in _DIGIT_RUN.findall(run) if len(digits) == code_length]
        mapped = run.translate(CONFUSIONS)
        if raw:
            found += raw
        elif len(mapped) == code_length and any(c.isdigit() for c in run):
            found.append(mapped)
    return found + groups


def in_sender_corner(box: Box, page_size: tuple[int, int]) -> bool:
    """Whether a line's centre stands in the return-address corner (docsort's ``SENDER_ZONE``)."""
    pw, ph = page_size
    x, y, w, h = box
    return x + w / 2 < SENDER_ZONE[0] * pw and y + h / 2 < SENDER_ZONE[1] * ph


def pick_code(lines: Sequence[Line], page_size: tuple[int, int], code_length: int = 5,
              confusions: bool = True, directory=None) -> Optional[str]:
    """The last code candidate outside the sender corner (and in ``directory``, when given)."""
    answer = None
    for text, box, _ in lines:
        if in_sender_corner(box, page_size):
            continue
        for code in code_candidates(text, code_length, confusions):
            if directory is None or code in directory:
                answer = code
    return answer


def printed_code_tokens(lines: Sequence[Line], code_length: int) -> list[str]:
    """The earlier "Tesseract alone" measure, kept for comparison with past results: docsort's
    ``printed_code`` on every word, in order, wherever it stands on the page."""
    from docsort.page.destination import printed_code

    return [code for code in (printed_code(text, code_length) for text, _, _ in lines) if code]


def _directory(country: Optional[str]):
    if not country:
        return None
    from docsort.page import directory

    return directory.load(country)


def _digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")

