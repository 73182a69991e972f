"""The one wrapper around Tesseract: words with their boxes, text and confidence.

Every Tesseract call in docsort goes through here, so there is one place that clamps its
OpenMP threads (workers are parallel processes; threads inside each would only fight for
the same cores), bounds its run time, and maps its failures to docsort's own errors:
Tesseract missing or broken is a ``MissingDependencyError`` (nothing can be processed), one
page that makes it hang or fail is an ``InputError`` (that document's record, the batch goes on).
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from docsort.errors import InputError, MissingDependencyError
from docsort.settings import PAGE_TIMEOUT_S

# Tesseract is 8x slower with its default OpenMP threading when processes run in parallel.
os.environ["OMP_THREAD_LIMIT"] = "1"

from docsort.batch.records import BBox


@dataclass(frozen=True)
class TesseractWord:
    """One word box from Tesseract's layout analysis, in page pixels."""

    bbox: BBox  # x, y, width, height
    text: str
    conf: float  # Tesseract's word confidence 0-100 (-1 when it recognised nothing)
    block: int
    paragraph: int
    line: int
    word: int

    @property
    def line_key(self) -> tuple[int, int, int]:
        """Identifies the text line this word belongs to (block, paragraph, line)."""
        return (self.block, self.paragraph, self.line)


def _pytesseract():
    try:
        import pytesseract
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("the Python package pytesseract is not installed") from exc
    return pytesseract


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str:
    """Tesseract's version string, e.g. ``5.3.0``; raises if Tesseract cannot run."""
    pytesseract = _pytesseract()
    try:
        return str(pytesseract.get_tesseract_version())
    except pytesseract.TesseractNotFoundError as exc:
        raise MissingDependencyError(
            "Tesseract is not installed or not on PATH (install the 'tesseract-ocr' package)"
        ) from exc
    except Exception as exc:
        raise MissingDependencyError(f"Tesseract cannot run: {_first_line(exc)}") from exc


def check_tesseract() -> str:
    """Fail early, before a batch starts, when Tesseract or its English data is missing."""
    version = tesseract_version()
    pytesseract = _pytesseract()
    try:
        languages = pytesseract.get_languages(config="")
    except Exception as exc:
        raise MissingDependencyError(f"Tesseract cannot list its languages: {_first_line(exc)}") from exc
    if "eng" not in languages:
        raise MissingDependencyError(
            "Tesseract's English data is missing (install the 'tesseract-ocr-eng' package)"
        )
    return version


def words(page: np.ndarray, timeout: float = PAGE_TIMEOUT_S, psm: int = 11) -> list[TesseractWord]:
    """All word boxes Tesseract finds on ``page`` (uint8 grey or BGR), in reading order.

    One ``image_to_data`` call per page. ``psm`` 11 (sparse text) suits envelopes, where
    address blocks, stamps and stray marks float on empty paper rather than forming columns.
    Boxes with no text are kept out; handwriting often comes back as low-confidence junk
    words, which the pipeline judges by their pixels, not by Tesseract's text.
    """
    import cv2

    pytesseract = _pytesseract()
    image = np.ascontiguousarray(page)
    if image.ndim not in (2, 3) or image.size == 0:
        raise InputError("page image is empty or has an unsupported shape")
    # Hand Tesseract an uncompressed file: PNG-encoding an envelope costs as much as reading it.
    with tempfile.TemporaryDirectory(prefix="docsort-") as tmp:
        path = os.path.join(tmp, "page.bmp")
        if not cv2.imwrite(path, image):
            raise InputError("page image cannot be handed to Tesseract")
        data = _image_to_data(pytesseract, path, psm, timeout)

    found = []
    for i, text in enumerate(data["text"]):
        text = (text or "").strip()
        w, h = int(data["width"][i]), int(data["height"][i])
        if not text or w <= 0 or h <= 0:
            continue
        found.append(
            TesseractWord(
                bbox=(int(data["left"][i]), int(data["top"][i]), w, h),
                text=text,
                conf=float(data["conf"][i]),
                block=int(data["block_num"][i]),
                paragraph=int(data["par_num"][i]),
                line=int(data["line_num"][i]),
                word=int(data["word_num"][i]),
            )
        )
    return found


def _image_to_data(pytesseract, path: str, psm: int, timeout: float) -> dict:
    try:
        return pytesseract.image_to_data(
            path,
            lang="eng",
            config=f"--psm {int(psm)}",
            output_type=pytesseract.Output.DICT,
            timeout=timeout,
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise MissingDependencyError(
            "Tesseract is not installed or not on PATH (install the 'tesseract-ocr' package)"
        ) from exc
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise InputError(f"Tesseract took longer than {timeout:g} s on this page") from exc
        raise InputError(f"Tesseract failed on this page: {_first_line(exc)}") from exc
    except pytesseract.TesseractError as exc:
        raise InputError(f"Tesseract failed on this page: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
