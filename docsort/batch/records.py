"""Records that cross module boundaries, and their one JSON form.

Workers return these; the batch writer turns them into ``results.json``/``results.csv``.
``to_dict`` is the only place that decides the on-disk JSON layout of a record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

Kind = Literal["printed", "handwritten"]
BBox = tuple[int, int, int, int]  # x, y, width, height in page pixels


@dataclass
class Crop:
    """One word (or repaired number field) cut from a page."""

    bbox: BBox
    kind: Kind
    p_handwritten: float
    text: Optional[str] = None  # Tesseract's text (printed) or the digits read (handwritten)
    digits: Optional[str] = None  # digit string read by the digit model, handwritten fields only
    confidence: Optional[float] = None  # confidence of ``digits``

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bbox"] = [int(v) for v in self.bbox]
        d["p_handwritten"] = round(float(self.p_handwritten), 6)
        if self.confidence is not None:
            d["confidence"] = round(float(self.confidence), 6)
        return d


@dataclass
class PostalCode:
    """The destination postal code picked on a page."""

    value: str
    source: Kind
    confidence: float
    digit_confidences: list[float]
    bbox: BBox
    decision: Literal["auto", "manual"]
    plus4: Optional[str] = None  # a US ZIP+4's last four digits (printed codes), else None
    # With a postal directory (--country / --directory): whether the code exists, the directory's
    # place for it, the place name read on the page, and whether the two agree (None: none read).
    valid: Optional[bool] = None
    place: Optional[str] = None
    place_read: Optional[str] = None
    place_match: Optional[bool] = None
    written: Optional[str] = None  # with a directory: the code as the country writes it ("00-950")

    def to_dict(self) -> dict:
        d = {
            "value": self.value,
            "source": self.source,
            "confidence": round(float(self.confidence), 6),
            "digit_confidences": [round(float(c), 6) for c in self.digit_confidences],
            "bbox": [int(v) for v in self.bbox],
            "decision": self.decision,
            "plus4": self.plus4,
        }
        if self.valid is not None:
            d.update(valid=self.valid, place=self.place, place_read=self.place_read, place_match=self.place_match,
                     written=self.written if self.written is not None else self.value)
        return d


@dataclass
class PageResult:
    """One page's findings; ``error`` is set (and nothing else found) when that page alone failed."""

    page: int  # 1-based
    width: int
    height: int
    crops: list[Crop] = field(default_factory=list)
    postal_code: Optional[PostalCode] = None
    error: Optional[str] = None

    def to_dict(self) -> dict:
        return {
            "page": self.page,
            "width": int(self.width),
            "height": int(self.height),
            "crops": [c.to_dict() for c in self.crops],
            "postal_code": self.postal_code.to_dict() if self.postal_code else None,
            "error": self.error,
        }


@dataclass
class DocumentResult:
    file: str
    sha256: Optional[str]
    status: Literal["ok", "error"]
    error: Optional[str] = None
    pages: list[PageResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "status": self.status,
            "error": self.error,
            "pages": [p.to_dict() for p in self.pages],
        }
