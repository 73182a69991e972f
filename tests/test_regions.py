"""Word regions from the page's ink: lines of writing that touch are parted before words are grouped."""

from __future__ import annotations

import cv2
import numpy as np

from docsort.page import regions

# An envelope's page size: the tallest word region is a tenth of its short side.
PAGE = (900, 1200)


def _cursive_line(ink: np.ndarray, x0: int, x1: int, body_top: int, body_bottom: int) -> None:
    """A line of joined-up writing: round letters joined at their feet, an ascender at its start."""
    cy, ry = (body_top + body_bottom) // 2, (body_bottom - body_top) // 2
    for x in range(x0 + 12, x1 - 12, 30):
        cv2.ellipse(ink, (x, cy), (12, ry), 0, 0, 360, 1, 3)
        cv2.line(ink, (x + 10, body_bottom - 6), (x + 20, body_bottom - 6), 1, 3)
    cv2.line(ink, (x0 + 24, body_top - 24), (x0 + 24, body_bottom - 8), 1, 3)


def _code(ink: np.ndarray, x0: int, top: int, height: int = 44) -> list[int]:
    """Five digit-like loops a third of a height apart; returns their centres."""
    centres = [x0 + 16 + 46 * k for k in range(5)]
    for x in centres:
        cv2.ellipse(ink, (x, top + height // 2), (14, height // 2), 0, 0, 360, 1, 3)
    return centres


def _code_region(found: list[regions.TextRegion], x0: int, top: int, above: int = 4) -> bool:
    """A region holding the code's five loops and nothing of the line above (the end of a stroke
    that joined the two lines may stay on the code, up to ``above`` px over it)."""
    return any(abs(r.bbox[0] - (x0 + 1)) <= 4 and top - above <= r.bbox[1] <= top + 4
               and r.bbox[1] + r.bbox[3] <= top + 50 and r.bbox[2] >= 200 for r in found)


def test_a_code_touched_by_a_descender_of_the_line_above_is_its_own_region():
    """A cramped hand: a descender of the place's line reaches down into the code's first digit,
    so the two lines are one connected mark. The lines are parted, and the code is a region of
    its own; without parting, the block is two lines tall and no region holds the code."""
    ink = np.zeros(PAGE, np.uint8)
    _cursive_line(ink, 100, 520, 300, 340)
    centres = _code(ink, 100, 362)
    cv2.line(ink, (centres[0], 340), (centres[0], 366), 1, 3)  # the descender, into the loop's top
    mask = ink.astype(bool)
    assert regions.components(mask)[0] - 1 == 5  # the upper line and the first digit are one mark

    parted = regions.lines_apart(mask)
    assert parted.sum() < mask.sum()  # cut, and only a little of the ink
    assert mask.sum() - parted.sum() <= 3 * 2 * 4
    # Cut between the lines: the descender's end stays on the digit, the letters above do not.
    assert _code_region(regions.ink_regions(mask), 100, 362, above=20)
    # The upper line is a region of its own too.
    assert any(r.bbox[1] <= 280 and r.bbox[1] + r.bbox[3] <= 350 and r.bbox[2] >= 400
               for r in regions.ink_regions(mask))

    unparted = [regions.TextRegion(b) for b in regions.group_words(regions.ink_components(mask), 90)
                if regions._looks_like_text(b, 90)]
    assert not _code_region(unparted, 100, 362, above=20)


def test_one_line_of_writing_is_never_cut():
    """A line whose first word has a capital's bar over its letters and long descenders, beside
    short words: a block taller than its marks, looked at, with one body of letters: nothing is
    cut. Nor in a code of sevens, heavy bars over thin stems."""
    ink = np.zeros(PAGE, np.uint8)
    _cursive_line(ink, 100, 280, 300, 340)
    cv2.line(ink, (90, 262), (160, 262), 1, 3)  # a T's bar at cap height
    cv2.line(ink, (125, 262), (125, 334), 1, 3)
    for x in (190, 250):
        cv2.line(ink, (x, 334), (x, 386), 1, 3)  # descenders
    for x0 in (300, 420):
        _cursive_line(ink, x0, x0 + 100, 300, 340)
    mask = ink.astype(bool)
    count, labels, stats = regions.components(mask)
    heights = stats[1:, 3]
    assert heights.max() > regions.TOO_TALL * np.median(heights)  # the block is looked at
    assert np.array_equal(regions.lines_apart(mask), mask)

    sevens = np.zeros((60, 260), np.uint8)
    for x in range(6, 230, 46):
        cv2.line(sevens, (x, 6), (x + 28, 6), 1, 5)
        cv2.line(sevens, (x + 28, 6), (x + 10, 52), 1, 2)
    assert regions._line_gaps(sevens.sum(axis=1), 46.0) == []


def test_lines_that_do_not_touch_are_left_to_the_grouping():
    """Two lines a little apart are parted by grouping words line by line: nothing is cut."""
    ink = np.zeros(PAGE, np.uint8)
    _cursive_line(ink, 100, 520, 300, 340)
    _code(ink, 100, 372)
    mask = ink.astype(bool)
    assert np.array_equal(regions.lines_apart(mask), mask)
    assert _code_region(regions.ink_regions(mask), 100, 372)


def test_tesseract_reads_each_word_once_when_marks_round_a_block_frame_it():
    """A label's edge, a pale frame or the grain of coloured paper round a printed address is a
    mark of its own whose box holds the block's box. Both would be areas worth Tesseract's
    reading; read twice, each word came back twice and "PA 94400 94400" held too many digits to
    be a code line. Areas that overlap are read as one."""
    grey = np.full((600, 1200), 250, np.uint8)
    cv2.rectangle(grey, (100, 100), (700, 400), 222, 2)  # a label's pale edge, far from the words
    cv2.putText(grey, "Edinburgh, PA 94400", (200, 270), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 20, 3)
    word = (200, 240, 440, 40)
    areas = regions.reading_areas(grey, [word], [40])
    holding = [a for a in areas if regions._overlap_share(word, a) > 0]
    assert len(holding) == 1, areas
    assert all(regions._overlap_share(a, b) == 0 for i, a in enumerate(areas) for b in areas[i + 1:]), areas
    x, y, w, h = holding[0]
    assert x <= 100 and y <= 100 and x + w >= 700 and y + h >= 400  # the frame read with it
