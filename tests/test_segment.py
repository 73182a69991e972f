"""The Tesseract wrapper on real printed scans."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from docsort.page import tesseract
from docsort.errors import InputError


def test_version_and_languages():
    assert tesseract.check_tesseract().startswith(("4.", "5."))


def test_words_of_a_real_scan_come_with_boxes_and_lines(tesseract_pages):
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    found = tesseract.words(page)
    text = " ".join(w.text for w in found)
    assert "quick brown dog" in text
    h, w = page.shape
    for word in found:
        x, y, bw, bh = word.bbox
        assert 0 <= x < w and 0 <= y < h and bw > 0 and bh > 0
    first_line = {wd.text for wd in found if wd.line_key == found[0].line_key}
    assert {"This", "is"} <= first_line


def test_blank_page_has_no_words():
    assert tesseract.words(np.full((300, 400), 255, np.uint8)) == []


def test_a_page_that_takes_too_long_is_an_input_error(tesseract_pages):
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    with pytest.raises(InputError, match="longer than"):
        tesseract.words(page, timeout=0.01)


def test_a_page_read_smaller_keeps_its_boxes_in_page_pixels(tesseract_pages):
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    full = {w.text: w.bbox for w in tesseract.words(page)}
    reduced = {w.text: w.bbox for w in tesseract.words(page, scale=0.6)}
    both = [t for t in ("quick", "brown", "dog", "This") if t in full and t in reduced]
    assert len(both) >= 3
    for text in both:
        (x, y, w, h), (rx, ry, rw, rh) = full[text], reduced[text]
        assert abs(rx - x) <= 3 and abs(ry - y) <= 3 and abs(rw - w) <= 4 and abs(rh - h) <= 4, text


def test_the_page_after_one_that_hung_is_read(tesseract_pages):
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    with pytest.raises(InputError, match="longer than"):
        tesseract.words(page, timeout=0.01)
    assert "quick" in {w.text for w in tesseract.words(page)}


def test_reading_part_of_a_page_gives_that_part_s_words_in_page_pixels(tesseract_pages):
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    full = tesseract.words(page)
    first_line = [w for w in full if w.line_key == full[0].line_key]
    x0 = min(w.bbox[0] for w in first_line) - 20
    y0 = min(w.bbox[1] for w in first_line) - 5
    x1 = max(w.bbox[0] + w.bbox[2] for w in first_line) + 20
    y1 = max(w.bbox[1] + w.bbox[3] for w in first_line) + 5
    part = tesseract.words(page, areas=[(x0, y0, x1 - x0, y1 - y0)])
    assert [w.text for w in part] == [w.text for w in first_line]
    for word, same in zip(part, first_line):
        (x, y, w, h), (sx, sy, sw, sh) = word.bbox, same.bbox
        assert abs(x - sx) <= 4 and abs(y - sy) <= 4 and x >= x0 and y >= y0, (word, same)
    assert tesseract.words(page, areas=[]) == []
