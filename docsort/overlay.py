"""Annotated page images (``--overlays``): what the pipeline saw, for a person to check.

Printed crops are outlined blue, handwritten crops orange; the chosen postal code is boxed
thick (green when sent automatically, red when it goes to manual sorting) and labelled with
its value and confidence.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from docsort.errors import OutputNotWritableError
from docsort.records import PageResult

PRINTED = (200, 90, 0)  # BGR
HANDWRITTEN = (0, 140, 255)
AUTO = (0, 170, 0)
MANUAL = (0, 0, 220)
MAX_SIDE = 2000


def draw(image: np.ndarray, result: PageResult) -> np.ndarray:
    """The page (BGR) with its crops and chosen code drawn on it."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    scale = max(1, int(round(max(canvas.shape[:2]) / 1000)))
    for crop in result.crops:
        x, y, w, h = crop.bbox
        colour = HANDWRITTEN if crop.kind == "handwritten" else PRINTED
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 2 * scale)
    code = result.postal_code
    if code is not None:
        x, y, w, h = code.bbox
        colour = AUTO if code.decision == "auto" else MANUAL
        pad = 4 * scale
        cv2.rectangle(canvas, (x - pad, y - pad), (x + w + pad, y + h + pad), colour, 4 * scale)
        label = f"{code.value} {code.confidence:.3f} {code.decision}"
        ty = y + h + pad + 26 * scale if y < 40 * scale else y - pad - 8 * scale
        cv2.putText(canvas, label, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, colour, 2 * scale, cv2.LINE_AA)
    return canvas


def write_overlay(image: np.ndarray, result: PageResult, path: Path) -> Path:
    """Draw and save the overlay (reduced to at most 2000 px on its long side)."""
    canvas = draw(image, result)
    factor = MAX_SIDE / max(canvas.shape[:2])
    if factor < 1:
        canvas = cv2.resize(canvas, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), canvas)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write overlay {path}: {exc.strerror or exc}") from exc
    if not ok:
        raise OutputNotWritableError(f"cannot write overlay {path}")
    return path
