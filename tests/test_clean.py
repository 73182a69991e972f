"""Page cleaning: printed form lines (rules, boxes, code cells) go, handwriting stays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from docsort.page import clean
from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
from docsort.training.datasets.non_number_crops import word_fields
from docsort.training.synth.forms import comb_page, hand_framed_page
from docsort.training.synth.handwriting import dhsd_writer_split


@pytest.fixture(scope="module")
def mnist_digits(mnist_dir):
    images = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    return {d: images[np.flatnonzero(labels == d)[:3]] for d in range(10)}


def _paste_digit(page: np.ndarray, digit: np.ndarray, x: int, y: int, size: int) -> None:
    """An MNIST digit (white on black) as dark ink on ``page``, ``size`` pixels tall."""
    ink = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    page[y:y + size, x:x + size] = np.minimum(page[y:y + size, x:x + size], 255 - ink)


def _page() -> np.ndarray:
    return np.full((600, 1800), 255, np.uint8)


def _words_page(words) -> np.ndarray:
    """Handwritten word crops set line by line on a page, as an address's words stand."""
    page = _page()
    x, y = 60, 40
    for word in words:
        h, w = word.shape[:2]
        if x + w > 1760:
            x, y = 60, y + 70
        if y + h > 580:
            break
        page[y:y + h, x:x + w] = np.minimum(page[y:y + h, x:x + w], word)
        x += w + 30
    return page


def test_code_cells_and_rules_are_painted_out_and_the_digits_kept(mnist_digits):
    page = _page()
    # A row of five pre-printed cells (light grey, as forms print them) with a digit in each,
    # the ones as tall as the cells hold them.
    cell, x0, y0 = 56, 300, 200
    for k, d in enumerate((1, 7, 1, 4, 1)):
        cv2.rectangle(page, (x0 + k * cell, y0), (x0 + (k + 1) * cell, y0 + cell), 165, 2)
        _paste_digit(page, mnist_digits[d][0], x0 + k * cell + 4, y0 + 4, cell - 8)
    # A code written on a printed rule that runs on past it.
    for k, d in enumerate((3, 0, 9, 5, 2)):
        _paste_digit(page, mnist_digits[d][1], 900 + k * 40, 380, 48)
    cv2.line(page, (880, 424), (1400, 424), 120, 2)
    ink = clean.ink_mask(page)

    furniture = clean.form_lines(ink)
    assert furniture[y0, x0 + 10:x0 + 5 * cell - 10].all()  # the cells' top
    assert furniture[y0 + 20:y0 + cell - 20, x0].all()  # a wall
    assert furniture[424, 1300:1390].all()  # the rule beyond the writing
    digit_ink = ink & ~furniture
    cells_inside = np.zeros_like(ink)
    cells_inside[y0 + 3:y0 + cell - 2, x0 + 3:x0 + 5 * cell - 2] = True
    # Nothing of a digit inside a cell is taken, the ones included.
    for k in range(5):
        inside = cells_inside[:, x0 + k * cell + 3:x0 + (k + 1) * cell - 2]
        assert (furniture[:, x0 + k * cell + 3:x0 + (k + 1) * cell - 2] & inside).sum() == 0
    grey, kept = clean.without_form_lines(page, ink)
    assert kept.sum() >= 0.95 * digit_ink.sum()
    assert (grey[y0, x0 + 10:x0 + 5 * cell - 10] == 255).all()


@pytest.mark.parametrize("factor", [1.0, 1.5, 2.0])
def test_cells_and_boxes_go_on_a_page_scanned_at_200_300_or_400_dpi(mnist_digits, factor):
    """A mail room scans at 200, 300 or 400 dpi: the printed lines are then 1.5 or 2 times as
    thick in pixels as at 200, and are found all the same (their sizes grow with the page's
    width), and the digits in the cells stay."""
    def form(with_furniture: bool) -> np.ndarray:
        page = _page()
        cell, x0, y0 = 56, 300, 200
        box, pitch, bx = 46, 80, 900
        for k, d in enumerate((1, 7, 1, 4, 1)):
            if with_furniture:
                cv2.rectangle(page, (x0 + k * cell, y0), (x0 + (k + 1) * cell, y0 + cell), 165, 2)
                cv2.rectangle(page, (bx + k * pitch, y0), (bx + k * pitch + box, y0 + box + 8), 150, 2)
            _paste_digit(page, mnist_digits[d][0], x0 + k * cell + 6, y0 + 6, cell - 12)
            _paste_digit(page, mnist_digits[(d + 2) % 10][1], bx + k * pitch + 6, y0 + 7, box - 12)
        if factor == 1.0:
            return page
        return cv2.resize(page, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)

    cleaned, digits_alone = clean.prepare(form(True)), clean.prepare(form(False))
    # No wall of a cell or a box is left as ink (the ones' stems stand inside the cells).
    for x in [300 + 56 * k for k in range(6)] + [900 + 80 * k for k in range(5)] + [946 + 80 * k for k in range(5)]:
        wall = cleaned.ink[int(215 * factor):int(245 * factor), int((x - 1) * factor):int((x + 2) * factor) + 1]
        assert wall.mean() < 0.05, x
    kept, wanted = int(cleaned.ink.sum()), int(digits_alone.ink.sum())
    assert 0.9 * wanted <= kept <= 1.1 * wanted


def test_boxes_printed_apart_are_furniture_and_their_digits_stay(mnist_digits):
    """A code written digit by digit into boxes printed apart (too short for a rule each)."""
    page = _page()
    box, pitch, x0, y0 = 46, 80, 400, 300
    for k, d in enumerate((2, 0, 9, 9, 7)):
        left = x0 + k * pitch
        cv2.rectangle(page, (left, y0), (left + box, y0 + box + 8), 150, 1)
        _paste_digit(page, mnist_digits[d][2], left + 5, y0 + 6, box - 10)
    ink = clean.ink_mask(page)
    furniture = clean.form_lines(ink)
    for k in range(5):
        left = x0 + k * pitch
        assert furniture[y0, left + 5:left + box - 5].all() and furniture[y0 + box + 8, left + 5:left + box - 5].all()
        assert furniture[y0 + 10:y0 + box, left].all() and furniture[y0 + 10:y0 + box, left + box].all()
        inside = furniture[y0 + 3:y0 + box + 6, left + 3:left + box - 2]
        assert not inside.any()


def test_cells_on_a_page_left_a_degree_off_level_are_furniture(mnist_digits):
    """Deskewing leaves a page a degree or so off level: a row of cells 250 px long then spans
    more rows than its edge is thick, and a box's bottom edge may start left of its top edge.
    Both the row of cells and boxes printed apart are still found, and their digits kept."""
    page = _page()
    cell, x0, y0 = 50, 300, 200
    for k, d in enumerate((2, 6, 7, 0, 8)):
        cv2.rectangle(page, (x0 + k * cell, y0), (x0 + (k + 1) * cell, y0 + cell + 4), 150, 2)
        _paste_digit(page, mnist_digits[d][0], x0 + k * cell + 6, y0 + 6, cell - 10)
    box, pitch, bx = 44, 56, 900
    for k, d in enumerate((3, 8, 7, 5, 0)):
        left = bx + k * pitch
        cv2.rectangle(page, (left, y0), (left + box, y0 + box + 6), 150, 2)
        _paste_digit(page, mnist_digits[d][1], left + 5, y0 + 6, box - 10)
    turn = cv2.getRotationMatrix2D((page.shape[1] / 2, page.shape[0] / 2), -1.0, 1.0)
    page = cv2.warpAffine(page, turn, page.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=255)
    ink = clean.ink_mask(page)
    furniture = clean.form_lines(ink)

    def frame_found(left: int, width: int, height: int) -> float:
        """Share of a frame's turned outline that was taken as furniture (near it, 2 px)."""
        outline = np.zeros(page.shape, np.uint8)
        cv2.rectangle(outline, (left, y0), (left + width, y0 + height), 1, 2)
        outline = cv2.warpAffine(outline, turn, page.shape[::-1], flags=cv2.INTER_NEAREST).astype(bool)
        near = cv2.dilate(furniture.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        return float((near & outline & ink).sum()) / max(1, int((outline & ink).sum()))

    assert frame_found(x0, 5 * cell, cell + 4) >= 0.9
    for k in range(5):
        assert frame_found(bx + k * pitch, box, box + 6) >= 0.9, k
    grey, kept = clean.without_form_lines(page, ink)
    digits = ink & ~cv2.dilate(furniture.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert kept[digits].mean() >= 0.97


def test_a_comb_s_teeth_are_furniture_and_a_row_of_ones_on_a_rule_is_not(mnist_digits):
    """Forms print a code's cells as a comb: a writing line with short teeth between the digits.
    The teeth go with the line, the digits stay, also on a page turned by a degree; 1s written
    standing on a plain rule are no teeth."""
    for turn in (0.0, 1.0):
        page = comb_page([mnist_digits[d][0] for d in (8, 6, 5, 2, 3)], size=(600, 1800), x0=400, base=300,
                         paper=255)
        if turn:
            m = cv2.getRotationMatrix2D((page.shape[1] / 2, page.shape[0] / 2), turn, 1.0)
            page = cv2.warpAffine(page, m, page.shape[::-1], borderValue=255)
        ink = clean.ink_mask(page)
        furniture = clean.form_lines(page < 229)
        # Every tooth's middle is furniture (turned with the page).
        for k in range(6):
            point = np.array([400 + 56 * k, 300 - 9, 1.0])
            if turn:
                point = np.array([*(m @ point), 1.0])
            x, y = int(round(point[0])), int(round(point[1]))
            assert furniture[y - 2:y + 3, x - 2:x + 3].any(), (turn, k)
        grey, kept = clean.without_form_lines(page, ink)
        assert kept.sum() >= 0.9 * (ink & ~cv2.dilate(furniture.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)).sum()
        assert (kept[:, :] & ~ink).sum() == 0
    ones = comb_page([mnist_digits[1][k % 3] for k in range(5)], size=(600, 1800), x0=400, base=300, paper=255,
                     teeth=False, lift=0)
    furniture = clean.form_lines(ones < 229)
    assert not furniture[250:297].any()  # the rule alone, none of the 1s standing on it


def test_a_frame_drawn_round_a_code_goes_and_its_digits_stay(mnist_digits):
    """A ring or a box drawn by hand round a code is painted out whole; the digits it holds stay.
    A large handwritten 0 is an outline too, but holds nothing: it stays."""
    digits = [mnist_digits[d][1] for d in (3, 0, 5, 2, 8)]
    for shape in ("ring", "box"):
        for seed in range(3):
            page = hand_framed_page(digits, np.random.default_rng(seed), shape)
            plain = comb_page(digits, pitch=52, teeth=False, lift=0, print_grey=250)
            ink, digit_ink = clean.ink_mask(page), clean.ink_mask(plain)
            frame = clean.hand_frames(ink)
            assert frame.sum() >= 0.8 * (ink & ~digit_ink).sum(), (shape, seed)
            grey, kept = clean.without_form_lines(page, ink)
            assert (kept & digit_ink).sum() >= 0.97 * digit_ink.sum(), (shape, seed)
            assert (kept & ~digit_ink).sum() <= 0.02 * digit_ink.sum(), (shape, seed)
    zero = np.full((600, 1800), 255, np.uint8)
    cv2.ellipse(zero, (900, 300), (70, 50), 0, 0, 360, 30, 4)
    assert not clean.hand_frames(clean.ink_mask(zero)).any()


def test_real_handwriting_holds_no_hand_drawn_frame(dhsd_dir):
    """Two hundred words of writers never seen (loops, ovals, big capitals, dots inside an O's
    bowl): none is taken for a frame drawn round a code."""
    words = word_fields(dhsd_dir, dhsd_writer_split().validation, 200, seed=5)
    for start in range(0, len(words), 40):
        page = _words_page(words[start:start + 40])
        assert not clean.hand_frames(clean.ink_mask(page)).any(), start


def test_a_stroke_through_a_rule_keeps_its_crossing():
    page = _page()
    cv2.line(page, (200, 300), (900, 300), 0, 2)
    cv2.line(page, (500, 250), (502, 350), 0, 3)  # a down stroke through the rule
    grey, ink = clean.without_form_lines(page, clean.ink_mask(page))
    assert ink[250:350, 501].all()
    assert not ink[300, 300:450].any() and (grey[300, 300:450] == 255).all()


def test_real_handwriting_is_no_form_line(dhsd_dir):
    """Words of writers never seen, set on a page as an address would be: only the rules of the
    forms they were written on go (the crops carry some), never a part of the writing, not even
    the level bottom of a cursive word."""
    page = _words_page(word_fields(dhsd_dir, dhsd_writer_split().validation, 40, seed=21))
    ink = clean.ink_mask(page)
    _, kept = clean.without_form_lines(page, ink)
    removed = ink & ~kept
    assert removed.any()  # the forms' rules
    assert kept.sum() >= 0.95 * ink.sum()
    count, _, stats = clean.components(removed)
    # What goes is level runs a few pixels high (a rule, faint ones in pieces), never a letter.
    assert all(stats[i][3] <= clean.RULE_MAX_THICKNESS + 2 for i in range(1, count))


def test_a_cramped_address_beside_a_sender_s_block_is_levelled_by_its_own_lines(mnist_dir, dhsd_dir):
    """A printed sender's block top left, a cramped handwritten address lower down: over the
    whole width, the two blocks' lines line up with each other 15 degrees off and outscore each
    block's own lines (the page was turned 17 degrees, its printed block read as handwriting).
    Judged strip by strip, the tilt found is the scan's, within a degree."""
    from docsort.training.samples import POSITIONS, TRAINING_LAYOUTS, HandwritingCorpus, make_envelope

    corpus = HandwritingCorpus.cached(mnist_dir.parent, "test")
    # Envelope 85 of ``docsort samples --seed 2025 --tight-lines 1.0`` (as write_samples draws it).
    i = 84
    page, truth = make_envelope(np.random.default_rng([2025, i]), corpus=corpus, layout=TRAINING_LAYOUTS[i % len(TRAINING_LAYOUTS)],
                                position=POSITIONS[i % len(POSITIONS)], tight_lines=1.0)
    assert truth.tight_lines_hand
    ink = clean.ink_mask(clean.denoise(clean.flatten(clean.to_grey(page))), pencil=False)
    assert abs(clean.estimate_skew(ink) - truth.tilt_degrees) < 1.0
    with pytest.MonkeyPatch.context() as m:
        m.setattr(clean, "SKEW_STRIPS", 1)
        assert abs(clean.estimate_skew(ink) - truth.tilt_degrees) > 10.0


def test_a_pencil_s_grainy_strokes_are_ink_and_a_pale_printed_rule_is_not():
    """Graphite on paper: strokes of a mid grey broken by the paper's grain, so few of their
    pixels are as dark as ink. At the ink depth alone a pencil's digit falls apart into specks;
    it is one whole mark. A pen's stroke gains no faint edge, and a pale printed rule (a form's
    line in a light colour) stays paper."""
    rng = np.random.default_rng(0)
    page = np.full((900, 1800), 250, np.uint8)  # an envelope's page: a 0 is a tenth of it tall
    stroke = np.zeros(page.shape, np.uint8)
    cv2.ellipse(stroke, (150, 150), (22, 40), 0, 0, 360, 1, 4)  # a pencil's 0
    grain = rng.uniform(0.45, 1.0, page.shape)
    page = np.where(stroke > 0, 250 - (250 - 165) * grain, page).astype(np.uint8)
    cv2.ellipse(page, (400, 150), (22, 40), 0, 0, 360, 30, 4)  # a pen's 0
    cv2.line(page, (550, 200), (850, 200), 215, 2)  # a pale printed rule

    plain = page < int(255 * (1.0 - clean.INK_DEPTH))
    mask = clean.ink_mask(page)
    pencil = mask[:, 100:200]
    assert clean.components(plain[:, 100:200])[0] - 1 > 5  # specks, at the ink depth alone
    count, _, stats = clean.components(pencil)
    assert count - 1 == 1 and stats[1, cv2.CC_STAT_AREA] > 0.9 * (stroke[:, 100:200] > 0).sum()
    assert np.array_equal(mask[:, 300:500], plain[:, 300:500])  # the pen's stroke as it was
    assert not mask[:, 520:].any()


def test_a_broad_pencil_s_full_strokes_are_ink_and_a_pale_patch_is_not():
    """A soft pencil or a broad grey pen writes a 1 or a 7 whose strokes fill half its box or
    more: still strokes, narrow for the mark's height, so ink. A pale solid patch of the same
    size (a stamp's picture, a tint) is as thick as it is high, and stays paper."""
    rng = np.random.default_rng(1)
    page = np.full((900, 1800), 250, np.uint8)
    stroke = np.zeros(page.shape, np.uint8)
    cv2.line(stroke, (150, 110), (146, 160), 1, 11)  # a broad 1: it fills most of its box
    cv2.line(stroke, (300, 110), (334, 110), 1, 12)  # a broad 7, its bar and its stem
    cv2.line(stroke, (334, 110), (324, 158), 1, 12)
    cv2.rectangle(stroke, (500, 110), (540, 160), 1, -1)  # a pale patch
    grain = rng.uniform(0.45, 1.0, page.shape)
    page = np.where(stroke > 0, 250 - (250 - 165) * grain, page).astype(np.uint8)

    plain = page < int(255 * (1.0 - clean.INK_DEPTH))
    mask = clean.ink_mask(page)
    for x0, x1 in ((120, 180), (280, 360)):
        count, _, stats = clean.components(mask[:, x0:x1])
        filled = stats[1, cv2.CC_STAT_AREA] / (stats[1, cv2.CC_STAT_WIDTH] * stats[1, cv2.CC_STAT_HEIGHT])
        assert count - 1 == 1 and filled > clean.PENCIL_MAX_FILL
        assert stats[1, cv2.CC_STAT_AREA] > 0.9 * (stroke[:, x0:x1] > 0).sum()
    assert np.array_equal(mask[:, 480:560], plain[:, 480:560])  # its darkest specks, nothing more


def test_an_address_label_on_a_dark_envelope_leaves_no_ink_round_it():
    """A white label on a green card: the paper's level steps at the label's edge. Flattening
    divides the paper out on both sides of the step, so neither the card beside the label nor
    the label's edge becomes ink (a mean of the background smears the step, and a band of card
    as dark as ink rings the label); the words on the label are ink as on white paper."""
    page = np.full((900, 1800), 80, np.uint8)  # a green card's grey
    cv2.rectangle(page, (600, 400), (1200, 650), 245, -1)  # the label
    cv2.putText(page, "21709", (700, 560), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 25, 5)
    flat = clean.flatten(page)
    ink = clean.ink_mask(flat, pencil=False)
    ring = np.zeros(page.shape, bool)
    ring[360:691, 560:1241] = True  # the card up to 40 px from the label ...
    ring[397:654, 597:1204] = False  # ... but for the edge's own 3 px (a thin line, a form's rule)
    assert ink[ring].mean() < 0.002, ink[ring].mean()
    inside = np.zeros(page.shape, bool)
    inside[403:648, 603:1198] = True
    inside[500:580, 690:1000] = False
    assert not ink[inside].any()  # the label's paper
    assert ink[500:580, 690:1000].sum() > 1000  # the code
