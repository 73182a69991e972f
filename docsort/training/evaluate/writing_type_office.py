"""Measuring the printed/handwritten classifier on office print: the held-out family, the
per-condition table, and the real printed scans as a fax or with every word in italic.

* **Held-out family** (``datasets.office_crops.sealed_family``): fonts, a scan condition (1-bit
  at 200 dpi), DHSD writers and MNIST test digits that no training or selection touches.
* **Per-condition table**: accuracy per class for italic, bold, 1-bit, short words, pencil...
  on the validation set's office crops and on the held-out family, with a failure gallery.
* **tesseract-pages variants**: ``phototest.tif`` and ``eurotext.tif`` binarised to 1 bit at
  200 and 300 dpi, and re-rendered with every word Tesseract reads set in italic at its place
  and size, then cut by Tesseract as the pipeline cuts pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from docsort.training.datasets import office_crops

BINARY_DPIS = (200, 300)
# Faces the real pages are re-rendered in: a serif italic and a sans oblique (Times and Helvetica
# metrics, the pages' own kinds of type).
ITALIC_FACES = (("Liberation Serif", "Italic"), ("Liberation Sans", "Italic"))
NATIVE_DPI = {"phototest.tif": 200, "eurotext.tif": 300}


def _page(pages_dir: Path, name: str) -> np.ndarray:
    import cv2

    from docsort.errors import DatasetError

    page = cv2.imread(str(Path(pages_dir) / name), cv2.IMREAD_GRAYSCALE)
    if page is None:
        raise DatasetError(f"real printed scan not found or unreadable: {Path(pages_dir) / name}")
    return page


def binarised(page: np.ndarray, native_dpi: float, dpi: float) -> np.ndarray:
    """The page as a 1-bit scan at ``dpi``: resampled from its own resolution, thresholded at mid-grey."""
    import cv2

    f = dpi / native_dpi
    grey = page if abs(f - 1) < 1e-6 else cv2.resize(
        page, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    return np.where(grey < 128, 0, 255).astype(np.uint8)


def italic_page(page: np.ndarray, face_path: str) -> np.ndarray:
    """The page re-set with every word Tesseract reads on it in ``face_path``, each word's ink at
    the place and height Tesseract found it, as a 1-bit page."""
    from PIL import Image, ImageDraw, ImageFont

    from docsort.page import tesseract as segment

    canvas = Image.new("L", (page.shape[1], page.shape[0]), 255)
    draw = ImageDraw.Draw(canvas)
    probe = ImageFont.truetype(face_path, 100)
    for word in segment.words(page):
        text = (word.text or "").strip()
        if not text or word.conf < 0:
            continue
        x, y, w, h = word.bbox
        left, top, right, bottom = probe.getbbox(text)
        # Sized by the capital height the line implies: a word's ink height mixes ascenders,
        # descenders and accents, so a box's height alone would give "a" the size of "Ag".
        # The word's own ink fills Tesseract's box: its height sets the size.
        size = max(6, int(round(100 * h / max(1, bottom - top))))
        font = ImageFont.truetype(face_path, size)
        l2, t2, r2, b2 = font.getbbox(text)
        squeeze = min(1.0, w / max(1, r2 - l2)) if r2 - l2 > 1.3 * w else 1.0
        if squeeze < 1.0:
            font = ImageFont.truetype(face_path, max(6, int(size * squeeze)))
            l2, t2, r2, b2 = font.getbbox(text)
        draw.text((x - l2, y - t2), text, font=font, fill=0)
    return np.where(np.asarray(canvas) < 128, 0, 255).astype(np.uint8)


def _face(family: str, style: str) -> Optional[str]:
    from docsort.training.synth.printed import available_fonts

    for font in available_fonts():
        if font.family == family and font.style == style:
            return font.path
    return None


def page_variants(pages_dir: Path) -> list[tuple[str, str, np.ndarray]]:
    """(variant, file, page) for the tesseract-pages variants: 1-bit at each of ``BINARY_DPIS``, and
    re-rendered in each of ``ITALIC_FACES``."""
    from docsort.training.evaluate.writing_type import REAL_SCAN_FILES

    out = []
    for name in REAL_SCAN_FILES:
        page = _page(pages_dir, name)
        for dpi in BINARY_DPIS:
            out.append((f"1-bit {dpi} dpi", name, binarised(page, NATIVE_DPI.get(name, 300), dpi)))
        for family, style in ITALIC_FACES:
            path = _face(family, style)
            if path:
                out.append((f"italic ({family} {style})", name, italic_page(page, path)))
    return out


def page_variant_check(classifier, pages_dir: Path) -> dict:
    """Share of Tesseract's crops of each tesseract-pages variant that the classifier calls printed."""
    from docsort.page import tesseract as segment

    result: dict = {}
    failures, images = [], []
    for variant, name, page in page_variants(pages_dir):
        crops, texts = [], []
        for word in segment.words(page):
            x, y, w, h = word.bbox
            if w > 0 and h > 0:
                crops.append(page[y:y + h, x:x + w])
                texts.append(word.text)
        p = classifier.p_handwritten(crops) if crops else np.zeros(0)
        entry = result.setdefault(variant, {"n": 0, "printed": 0})
        entry["n"] += len(crops)
        entry["printed"] += int((p < 0.5).sum())
        for crop, text, v in zip(crops, texts, p):
            if v >= 0.5:
                failures.append({"variant": variant, "file": name, "text": text, "p_handwritten": round(float(v), 4)})
                images.append(crop)
    for entry in result.values():
        entry["printed_rate"] = entry["printed"] / entry["n"] if entry["n"] else None
    total_n = sum(e["n"] for e in result.values())
    total_printed = sum(e["printed"] for e in result.values())
    return {"variants": result, "n": total_n, "printed_rate": total_printed / total_n if total_n else None,
            "failures": failures, "_failure_images": images}


def family_check(classifier, family, report_dir: Optional[Path] = None) -> dict:
    """The classifier on the held-out family: per class, per condition, with a failure gallery."""
    from docsort.training.evaluate.writing_type import classification_summary

    labels = np.asarray(family.labels)
    p = classifier.p_handwritten(family.crops)
    summary = classification_summary(labels, p, family.sources)
    summary.pop("log_loss", None)
    summary["errors"] = int(((p >= 0.5) != (labels == 1)).sum())
    summary["conditions"] = office_crops.condition_table(labels, p, family.tags)
    if report_dir is not None:
        summary["failure_gallery"] = failure_gallery(
            family.crops, labels, p, Path(report_dir) / "writing_type_held_out_family_failures.png",
            "Misclassified crops of the held-out family (fonts, 1-bit 200 dpi, writers, MNIST test digits)",
            family.tags)
    return summary


def failure_gallery(crops: Sequence[np.ndarray], labels: np.ndarray, p: np.ndarray, path: Path, title: str,
                    tags: Optional[Sequence[Sequence[str]]] = None) -> str:
    from docsort.training.evaluate import plots
    from docsort.training.evaluate.writing_type import CLASS_NAMES

    predicted = (p >= 0.5).astype(int)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-np.abs(p[wrong] - 0.5))]
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(plots.save_failure_gallery(
        [crops[i] for i in wrong], [CLASS_NAMES[labels[i]] for i in wrong],
        [CLASS_NAMES[predicted[i]] for i in wrong], [max(p[i], 1 - p[i]) for i in wrong],
        path, title=title, ink_dark=True))


def condition_rows_text(rows: Sequence[dict]) -> list[str]:
    """The per-condition table as Markdown lines."""
    lines = ["| condition | n | accuracy | printed | handwritten |", "| --- | ---: | ---: | ---: | ---: |"]

    def cell(entry):
        return "—" if not entry["n"] else f"{100 * entry['accuracy']:.2f} % ({entry['n']})"

    for row in rows:
        lines.append(f"| {row['condition']} | {row['n']} | {100 * row['accuracy']:.2f} % | "
                     f"{cell(row['printed'])} | {cell(row['handwritten'])} |")
    return lines


def held_out_family(dhsd_dir: Path, mnist_dir: Path, *, seed: int = 0, cache_dir: Optional[Path] = None,
                    workers: int = 2, limit: Optional[int] = None, log: Callable[[str], None] = lambda m: None):
    """The held-out family's crops (``office_crops.sealed_family``); a small one with ``limit``."""
    sizes = {}
    if limit:
        sizes = {"printed": max(8, limit // 20), "handwritten": max(8, limit // 20), "pages": 1,
                 "words_per_writer": max(2, limit // 100)}
    return office_crops.sealed_family(dhsd_dir, mnist_dir, seed=seed, cache_dir=cache_dir, workers=workers,
                                      log=log, **sizes)


def office_measurements(classifier, validation, family, pages_dir: Optional[Path], *,
                        report_dir: Optional[Path] = None, log: Callable[[str], None] = lambda m: None) -> dict:
    """The per-condition table on the validation set, the held-out family (from ``held_out_family``)
    and the tesseract-pages variants, for ``evaluate writing-type``."""
    out: dict = {}
    labels = np.asarray(validation.labels)
    p = classifier.p_handwritten(validation.crops)
    out["validation_conditions"] = office_crops.condition_table(labels, p, validation.tags)
    out["held_out_family"] = family_check(classifier, family, report_dir)
    fam = out["held_out_family"]
    log(f"held-out family: accuracy {fam['accuracy']:.4f} on {fam['n']} crops (printed "
        f"{fam['per_class_accuracy']['printed']:.4f}, handwritten {fam['per_class_accuracy']['handwritten']:.4f})")
    if pages_dir is not None:
        variants = page_variant_check(classifier, pages_dir)
        images = variants.pop("_failure_images")
        out["tesseract_page_variants"] = variants
        for name, entry in variants["variants"].items():
            log(f"tesseract-pages {name}: {entry['printed']} of {entry['n']} called printed")
        if report_dir is not None and images:
            from docsort.training.evaluate import plots

            out["tesseract_page_variant_gallery"] = str(plots.save_failure_gallery(
                images, ["printed"] * len(images), ["handwritten"] * len(images),
                [f["p_handwritten"] for f in variants["failures"]],
                Path(report_dir) / "writing_type_page_variant_failures.png",
                title="tesseract-pages (1-bit, italic) crops called handwritten", ink_dark=True))
    if report_dir is not None:
        lines = ["# Printed vs handwritten per condition", "", "## Held-out family", "",
                 *condition_rows_text(fam["conditions"]), "", "## Validation (office crops and all)", "",
                 *condition_rows_text(out["validation_conditions"]), ""]
        path = Path(report_dir) / "writing_type_conditions.md"
        path.write_text("\n".join(lines))
        out["conditions_table"] = str(path)
    return out
