"""Overlays (``--overlays``): a legend that hides nothing, labels beside their box and never over
another crop, small JPEGs by default, full-size PNGs on request, and no stale files left behind."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_cli

from docsort.page import overlay
from docsort.batch.records import Crop, PageResult, PostalCode

SAMPLES = REPO / "sample_docs"


def load_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def page_image(width: int, height: int) -> np.ndarray:
    """A light page with dark strokes, like a scanned envelope."""
    page = np.full((height, width, 3), 235, np.uint8)
    rng = np.random.default_rng(5)
    for _ in range(60):
        x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 20))
        cv2.line(page, (x, y), (x + 50, y + 10), (30, 30, 30), 3)
    return page


def code(bbox, decision="auto") -> PostalCode:
    return PostalCode(value="75011", source="handwritten", confidence=0.962, digit_confidences=[0.99] * 5,
                      bbox=bbox, decision=decision)


def crop(bbox, kind="printed") -> Crop:
    return Crop(bbox=bbox, kind=kind, p_handwritten=0.9 if kind == "handwritten" else 0.1)


def has_colour(pixels: np.ndarray, bgr, tolerance: int = 60) -> bool:
    distance = np.abs(pixels.astype(int) - np.array(bgr)).sum(axis=-1)
    return int((distance < tolerance).sum()) >= 20


def overlaps(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_the_legend_is_a_band_above_the_page_and_shows_every_colour(tmp_path):
    page = page_image(1200, 700)
    result = PageResult(page=1, width=1200, height=700, crops=[crop((100, 100, 200, 50)),
                        crop((500, 400, 300, 80), "handwritten")], postal_code=code((500, 400, 300, 80)))
    path = overlay.write_overlay(page, result, tmp_path / "page.jpg")
    written = cv2.imread(str(path))
    band = written.shape[0] - page.shape[0]
    assert written.shape[1] == page.shape[1] and 30 <= band <= 120
    # The page below the band is the page itself where nothing is drawn: the legend hides none of it.
    assert np.abs(written[band + 300:band + 380, 0:80].astype(int) - page[300:380, 0:80]).mean() < 4
    legend = written[:band]
    for colour in (overlay.PRINTED, overlay.HANDWRITTEN, overlay.AUTO, overlay.MANUAL):
        assert has_colour(legend, colour), colour
    # The band's colours are the ones on the page: a printed box and the chosen code's green box.
    assert has_colour(written[band + 95:band + 105, 100:300], overlay.PRINTED)
    assert has_colour(written[band + 380:band + 400, 500:800], overlay.AUTO)


def test_a_label_goes_beside_its_box_where_no_crop_is():
    # Crops above, below and to the left of the code; only its right side is free.
    target = (600, 400, 250, 60)
    crops = [crop(target, "handwritten"), crop((560, 300, 400, 80)), crop((560, 480, 400, 80)),
             crop((300, 390, 280, 80))]
    result = PageResult(page=1, width=1400, height=900, crops=crops, postal_code=code(target))
    plan = overlay.layout(result, (900, 1400))
    (label,) = plan.labels
    assert not label.in_band and label.page_box[0] >= 850  # right of the code
    assert not any(overlaps(label.page_box, c.bbox) for c in crops)


def test_a_crowded_code_has_its_label_in_the_band(tmp_path):
    target = (600, 400, 250, 60)
    crops = [crop(target, "handwritten"), crop((500, 300, 450, 90)), crop((500, 470, 450, 90)),
             crop((250, 380, 340, 100)), crop((860, 380, 340, 100))]
    result = PageResult(page=1, width=1400, height=900, crops=crops, postal_code=code(target, "manual"))
    plan = overlay.layout(result, (900, 1400))
    (label,) = plan.labels
    assert label.in_band and label.page_box is None and "75011" in label.text
    written = cv2.imread(str(overlay.write_overlay(page_image(1400, 900), result, tmp_path / "crowded.jpg")))
    x0, y0, x1, y1 = label.rect
    assert y1 <= plan.band_height and has_colour(written[y0:y1, x0:x1], overlay.MANUAL)


@pytest.mark.parametrize("seed", range(30))
def test_labels_never_cover_a_crop_on_crowded_pages(seed):
    rng = random.Random(seed)
    width, height = rng.choice([(1800, 900), (2480, 3508), (900, 600)])
    crops = []
    for _ in range(rng.randint(20, 80)):
        w, h = rng.randint(40, 400), rng.randint(20, 90)
        crops.append(crop((rng.randint(0, width - w), rng.randint(0, height - h), w, h),
                          rng.choice(["printed", "handwritten"])))
    target = rng.choice(crops)
    result = PageResult(page=1, width=width, height=height, crops=crops, postal_code=code(target.bbox))
    for size in overlay.SIZES:
        (label,) = overlay.layout(result, (height, width), size).labels
        if not label.in_band:
            assert not any(overlaps(label.page_box, c.bbox) for c in crops), (size, label)


def test_stale_overlays_of_a_document_go_and_others_stay(tmp_path):
    folder = tmp_path / "overlays"
    folder.mkdir()
    document, other = tmp_path / "scans" / "letter.tif", tmp_path / "elsewhere" / "letter.tif"
    content_sha = "ab12cd34" + "0" * 56
    names = [overlay.file_name(document, page) for page in (1, 2, 3)]
    names += [overlay.file_name(document, 1, overlay.FULL), "letter-ab12cd34-p1.png"]  # other size; older naming
    names += [overlay.file_name(other, 1), "notes.txt"]
    for name in names:
        (folder / name).write_bytes(b"x")
    keep = overlay.expected_files(document, {"pages": [{"page": 1}, {"page": 2, "error": "timed out"}]})
    removed = overlay.OverlayFolder(folder).remove_stale(document, keep, content_sha)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [overlay.file_name(document, 1), overlay.file_name(other, 1), "notes.txt"])
    assert len(removed) == 4


def test_process_writes_small_jpegs_removes_stale_ones_and_writes_full_size_on_request(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("envelope_0001.jpg", "envelope_0002.jpg"):
        shutil.copy(SAMPLES / name, scans)
    first, second = scans / "envelope_0001.jpg", scans / "envelope_0002.jpg"
    out = tmp_path / "out"
    overlays = out / "overlays"

    result = run_cli("process", first, second, "--out", out, "--overlays", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    written = sorted(overlays.iterdir())
    assert [p.name for p in written] == sorted(overlay.file_name(d, 1) for d in (first, second))
    page = cv2.imread(str(first))
    for path in written:
        image = cv2.imread(str(path))
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
        assert path.stat().st_size < 350_000
        assert image.shape[1] == overlay.SMALL_LONG_SIDE
        assert image.shape[0] > page.shape[0] * overlay.SMALL_LONG_SIDE / page.shape[1]  # page + legend band

    # The first document again, without --overlays: its overlay goes, the second document's stays.
    result = run_cli("process", first, "--out", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in overlays.iterdir()] == [overlay.file_name(second, 1)]
    assert "removed 1 old overlay file" in result.stderr

    result = run_cli("process", first, "--out", out, "--overlay-size", "full", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    full = overlays / overlay.file_name(first, 1, overlay.FULL)
    assert full.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(full))
    assert image.shape[1] == page.shape[1] and image.shape[0] > page.shape[0]
    assert sorted(p.name for p in overlays.iterdir()) == sorted([full.name, overlay.file_name(second, 1)])

    # Back to small overlays: the first document is read again, the second one is reused as it is.
    result = run_cli("process", first, second, "--out", out, "--overlays", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert load_results(out)["summary"]["reused"] == 1
    assert sorted(p.name for p in overlays.iterdir()) == sorted(overlay.file_name(d, 1) for d in (first, second))

    # An overlay deleted by hand comes back: a stored result is reused only with its overlays.
    (overlays / overlay.file_name(second, 1)).unlink()
    result = run_cli("process", second, "--out", out, "--overlays", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert load_results(out)["summary"]["reused"] == 0
    assert (overlays / overlay.file_name(second, 1)).is_file()


def test_an_unknown_overlay_size_is_a_usage_error(tmp_path):
    result = run_cli("process", SAMPLES / "envelope_0001.jpg", "--out", tmp_path / "out", "--overlay-size", "huge")
    assert result.returncode == 2
    assert "--overlay-size must be small or full" in result.stderr
    assert "Traceback" not in result.stderr
