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
