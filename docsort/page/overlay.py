"""Annotated page images (``--overlays``): what the pipeline saw, for a person to check.

Printed crops are outlined blue, handwritten crops orange; the chosen postal code is boxed
thick (green when sent automatically, red when it goes to manual sorting) and labelled with
its value and confidence. A band added above the page holds the legend, so that it hides no
part of the page; a label that cannot stand beside its box without covering a crop goes into
that band too.

By default an overlay is a JPEG reduced to at most ``SMALL_LONG_SIDE`` pixels on its long side,
with the boxes drawn at that size so their lines stay sharp (a few hundred kB a page);
``full`` keeps the page's own size, as a PNG.

Each file is named ``STEM-TAG-pN.jpg`` (or ``.png``), TAG being taken from the document's
absolute path, so that every input file has its own overlays whatever its content: when a
document is processed again, the batch deletes those of its files that no longer show its
result (``remove_stale``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import cv2
import numpy as np

from docsort.errors import OutputNotWritableError
from docsort.batch.records import PageResult
from docsort.batch.results import atomic_write_bytes

PRINTED = (200, 90, 0)  # BGR
HANDWRITTEN = (0, 140, 255)
AUTO = (0, 170, 0)
MANUAL = (0, 0, 220)
BAND = (238, 238, 238)
INK = (40, 40, 40)

SMALL, FULL = "small", "full"
SIZES = (SMALL, FULL)
SMALL_LONG_SIDE = 1600
JPEG_QUALITY = 85
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_NAME = re.compile(r"^(?P<stem>.*)-(?P<tag>[0-9a-f]{8})-p(?P<page>[0-9]+)\.(?:jpg|png)$")

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)


def file_name(document: str | os.PathLike, page: int, size: str = SMALL) -> str:
    """The overlay's file name for ``page`` of ``document``."""
    stem, tag = _owner(document)
    return f"{stem}-{tag}-p{page}.{'png' if size == FULL else 'jpg'}"


def _owner(document: str | os.PathLike) -> tuple[str, str]:
    """The name stem and tag that every overlay of ``document`` carries."""
    path = os.path.abspath(os.fspath(document))
    return Path(path).stem, hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def expected_files(document: str | os.PathLike, record: dict, size: str = SMALL) -> set[str]:
    """The overlays a run with overlays writes for a document record: one per page that was read."""
    return {file_name(document, page["page"], size) for page in record.get("pages", []) if not page.get("error")}


# Layout -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """A label as drawn: ``rect`` in overlay pixels (page area, or the band when ``in_band``)."""

    text: str
    colour: tuple[int, int, int]
    rect: Rect
    in_band: bool
    page_box: Optional[tuple[int, int, int, int]]  # x, y, w, h in page pixels; None in the band


@dataclass(frozen=True)
class Layout:
    """Where everything goes on one overlay."""

    factor: float  # overlay pixels per page pixel
    unit: float  # line and font size, grows with the overlay
    page_size: tuple[int, int]  # width, height of the page area in overlay pixels
    width: int  # whole overlay (at least the page width: a narrow page may get a wider band)
    band_height: int
    legend: list[tuple[str, tuple[int, int, int], int, Rect]]  # text, colour, swatch line, swatch rect
    labels: list[Label]

    def thin(self) -> int:
        return max(1, round(1.5 * self.unit))

    def thick(self) -> int:
        return max(2, round(3.0 * self.unit))


def layout(result: PageResult, page_shape: tuple[int, ...], size: str = SMALL) -> Layout:
    """The overlay's geometry for a page of ``page_shape`` (height, width, ...)."""
    height, width = page_shape[:2]
    factor = 1.0
    if size != FULL and max(height, width) > SMALL_LONG_SIDE:
        factor = SMALL_LONG_SIDE / max(height, width)
    page_w, page_h = max(1, round(width * factor)), max(1, round(height * factor))
    unit = max(0.8, max(page_w, page_h) / 1000)
    probe = Layout(factor, unit, (page_w, page_h), page_w, 0, [], [])
    thin, thick = probe.thin(), probe.thick()

    obstacles = [_grow(_scaled(crop.bbox, factor), thin) for crop in result.crops]
    labels: list[tuple[str, tuple[int, int, int]]] = []
    placed: list[Label] = []
    code = result.postal_code
    if code is not None:
        colour = AUTO if code.decision == "auto" else MANUAL
        text = f"{code.value}  {code.confidence:.3f}  {code.decision}"
        box = _grow(_scaled(code.bbox, factor), _code_pad(probe) + thick)
        size_wh = _label_size(text, unit)
        # Beside the code's box, or else beside the crops it was read from (a word inside a line).
        centre = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
        anchors = [box, _union([box] + [o for o in obstacles if _holds(o, centre)])]
        rect = place_label(size_wh, anchors, obstacles + [box], (page_w, page_h), gap=round(4 * unit))
        if rect is None:
            labels.append((f"code {text}", colour))
        else:
            page_box = _page_box(rect, factor)
            placed.append(Label(text, colour, rect, False, page_box))

    legend_items = [("printed", PRINTED, thin), ("handwritten", HANDWRITTEN, thin),
                    ("code, auto", AUTO, thick), ("code, manual", MANUAL, thick)]
    band_w, band_h, legend, band_labels = _band(legend_items, labels, unit, page_w)
    placed += [Label(text, colour, rect, True, None) for text, colour, rect in band_labels]
    return Layout(factor, unit, (page_w, page_h), band_w, band_h, legend, placed)


def place_label(size: tuple[int, int], anchors: list[Rect], obstacles: list[Rect], page: tuple[int, int],
                gap: int) -> Optional[Rect]:
    """A place of ``size`` beside one of the ``anchors`` (above, below, left, right, in that order)
    inside the page that overlaps none of the ``obstacles``; None when there is none."""
    w, h = size
    page_w, page_h = page
    for x0, y0, x1, y1 in anchors:
        above, below, middle = y0 - gap - h, y1 + gap, (y0 + y1 - h) // 2
        # Above and below, the label may slide sideways to stay on the page; left and right it may not.
        beside = [(min(max(x, 0), page_w - w), y) for x, y in ((x0, above), (x1 - w, above), (x0, below), (x1 - w, below))]
        for x, y in beside + [(x0 - gap - w, middle), (x1 + gap, middle)]:
            rect = (x, y, x + w, y + h)
            if rect[0] < 0 or rect[1] < 0 or rect[2] > page_w or rect[3] > page_h:
                continue
            if not any(_overlap(rect, o) for o in obstacles):
                return rect
    return None


def _band(items, labels, unit: float, page_w: int):
    """The legend and the labels that found no place, flowed in lines across the band."""
    margin = round(10 * unit)
    swatch_w = round(34 * unit)
    line_h = max([round(30 * unit)] + [_label_size(text, unit)[1] for text, _ in labels])
    pieces = [(text, colour, line, swatch_w + round(8 * unit) + _text_size(text, unit)[0]) for text, colour, line in items]
    pieces += [(text, colour, None, _label_size(text, unit)[0]) for text, colour in labels]
    width = max(page_w, max(w for *_, w in pieces) + 2 * margin)
    x, y = margin, margin
    legend, band_labels = [], []
    for text, colour, line, w in pieces:
        if x > margin and x + w > width - margin:
            x, y = margin, y + line_h + round(6 * unit)
        if line is not None:
            swatch = (x, y + round(5 * unit), x + swatch_w, y + line_h - round(5 * unit))
            legend.append((text, colour, line, swatch))
        else:
            band_labels.append((text, colour, (x, y, x + w, y + line_h)))
        x += w + round(24 * unit)
    return width, y + line_h + margin, legend, band_labels


# Drawing ----------------------------------------------------------------------------------------


def draw(image: np.ndarray, result: PageResult, size: str = SMALL) -> np.ndarray:
    """The overlay (BGR): the legend band above the page, with its crops and chosen code drawn on it."""
    page = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3]
    plan = layout(result, page.shape, size)
    page_w, page_h = plan.page_size
    if plan.factor != 1.0:
        page = cv2.resize(page, (page_w, page_h), interpolation=cv2.INTER_AREA)
    canvas = np.empty((plan.band_height + page_h, plan.width, 3), np.uint8)
    canvas[:] = BAND
    canvas[plan.band_height:, :page_w] = page
    cv2.line(canvas, (0, plan.band_height - 1), (plan.width, plan.band_height - 1), INK, 1)
    body = canvas[plan.band_height:, :page_w]

    for crop in result.crops:
        x0, y0, x1, y1 = _scaled(crop.bbox, plan.factor)
        colour = HANDWRITTEN if crop.kind == "handwritten" else PRINTED
        cv2.rectangle(body, (x0, y0), (x1, y1), colour, plan.thin())
    code = result.postal_code
    if code is not None:
        colour = AUTO if code.decision == "auto" else MANUAL
        x0, y0, x1, y1 = _grow(_scaled(code.bbox, plan.factor), _code_pad(plan))
        cv2.rectangle(body, (x0, y0), (x1, y1), colour, plan.thick())

    for text, colour, line, (x0, y0, x1, y1) in plan.legend:
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, line)
        _put_text(canvas, text, (x1 + round(8 * plan.unit), y1), INK, plan.unit)
    for label in plan.labels:
        target = canvas if label.in_band else body
        x0, y0, x1, y1 = label.rect
        patch = target[y0:y1, x0:x1]
        patch[:] = (0.25 * patch + 0.75 * 255).astype(np.uint8)  # keeps the label legible on any ink
        _put_text(target, label.text, (x0 + _label_pad(plan.unit), y1 - _label_pad(plan.unit)), label.colour, plan.unit)
    return canvas


def write_overlay(image: np.ndarray, result: PageResult, path: Path, size: str = SMALL) -> Path:
    """Draw and save the overlay: JPEG reduced to ``SMALL_LONG_SIDE`` by default, PNG at full size."""
    canvas = draw(image, result, size)
    path = Path(path)
    if size == FULL:
        ok, encoded = cv2.imencode(".png", canvas, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                                    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise OutputNotWritableError(f"cannot encode overlay {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write overlay {path}: {exc.strerror or exc}") from exc
    return path


# Stale files ------------------------------------------------------------------------------------


class OverlayFolder:
    """The overlay files found in a folder, by the document they belong to (read once per run)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._by_owner: dict[tuple[str, str], list[str]] = {}
        try:
            names = [entry.name for entry in os.scandir(self.folder) if entry.is_file()]
        except OSError:
            names = []
        for name in names:
            match = _NAME.match(name)
            if match:
                self._by_owner.setdefault((match["stem"], match["tag"]), []).append(name)

    def remove_stale(self, document: str | os.PathLike, keep: Iterable[str],
                     content_sha256: Optional[str] = None) -> list[str]:
        """Delete the document's overlays that are not in ``keep``; returns the names deleted.

        ``content_sha256`` also finds the PNGs that earlier docsort versions named after the
        document's content rather than its path.
        """
        stem, tag = _owner(document)
        owned = list(self._by_owner.get((stem, tag), []))
        if content_sha256:
            owned += [n for n in self._by_owner.get((stem, content_sha256[:8]), []) if n.endswith(".png")]
        keep = set(keep)
        removed = []
        for stale in sorted(set(owned) - keep):
            (self.folder / stale).unlink(missing_ok=True)
            removed.append(stale)
        return removed


# Geometry ---------------------------------------------------------------------------------------


def _scaled(bbox, factor: float) -> Rect:
    x, y, w, h = bbox
    return (round(x * factor), round(y * factor), round((x + w) * factor), round((y + h) * factor))


def _grow(rect: Rect, by: int) -> Rect:
    return (rect[0] - by, rect[1] - by, rect[2] + by, rect[3] + by)


def _union(rects: list[Rect]) -> Rect:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def _holds(rect: Rect, point: tuple[int, int]) -> bool:
    return rect[0] <= point[0] < rect[2] and rect[1] <= point[1] < rect[3]


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _page_box(rect: Rect, factor: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (v / factor for v in rect)
    return (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))


def _code_pad(plan: Layout) -> int:
    return round(4 * plan.unit)


def _font_scale(unit: float) -> float:
    return 0.6 * unit


def _font_line(unit: float) -> int:
    return max(1, round(1.4 * unit))


def _text_size(text: str, unit: float) -> tuple[int, int]:
    (w, _), _ = cv2.getTextSize(text, _FONT, _font_scale(unit), _font_line(unit))
    (_, h), baseline = cv2.getTextSize("Hg", _FONT, _font_scale(unit), _font_line(unit))
    return w, h + baseline


def _label_pad(unit: float) -> int:
    return round(5 * unit)


def _label_size(text: str, unit: float) -> tuple[int, int]:
    w, h = _text_size(text, unit)
    return w + 2 * _label_pad(unit), h + 2 * _label_pad(unit)


def _put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], colour, unit: float) -> None:
    """``origin`` is the bottom left of the text's box, below the baseline (the same for every text)."""
    _, baseline = cv2.getTextSize("Hg", _FONT, _font_scale(unit), _font_line(unit))
    x, y = origin
    cv2.putText(canvas, text, (x, y - baseline), _FONT, _font_scale(unit), colour, _font_line(unit), cv2.LINE_AA)
