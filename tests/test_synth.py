"""The project's own data makers: composed digit strings, DHSD by writer, rendered printed text."""

from __future__ import annotations

import re

import numpy as np
import pytest

from docsort.training.synth.handwriting import compose_digit_string, dhsd_writer_split, load_dhsd
from docsort.training.synth.printed import available_fonts, font_split, random_address_line, random_postal_code, random_printed_text, render_text


def ring(size: int = 28) -> np.ndarray:
    """A hollow '0' in MNIST format (ink high), so pasting a box over it would show."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, (xx - size / 2) * 1.6)
    return ((r > 6) & (r < 10)).astype(np.uint8) * 255


@pytest.fixture(scope="module")
def mnist_digits(mnist_dir):
    from docsort.training.datasets import mnist

    data = mnist.load(mnist_dir)
    return data.train.images[:200]


def test_composed_string_has_one_box_per_digit_in_reading_order(mnist_digits):
    rng = np.random.default_rng(3)
    image, boxes = compose_digit_string(list(mnist_digits[:5]), rng)
    assert image.dtype == np.uint8 and image.ndim == 2
    assert len(boxes) == 5
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
        assert image[y:y + h, x:x + w].min() < 64, "every box holds dark ink"


def test_dark_ink_on_light_paper_at_requested_levels(mnist_digits):
    image, _ = compose_digit_string(list(mnist_digits[:3]), np.random.default_rng(0), ink=40, paper=230)
    assert image[0, 0] == 230 and image[-1, -1] == 230
    assert 40 <= image.min() < 60


def test_height_sets_digit_size_for_envelope_scale(mnist_digits):
    _, boxes = compose_digit_string(list(mnist_digits[:6]), np.random.default_rng(1), height=90,
                                    scale_jitter=0.0, baseline_jitter=0.0)
    heights = [h for _, _, _, h in boxes]
    assert 75 <= np.median(heights) <= 105


def test_thicker_stroke_means_more_ink(mnist_digits):
    digits = list(mnist_digits[:4])
    thin, _ = compose_digit_string(digits, np.random.default_rng(5), height=60, stroke=0)
    thick, _ = compose_digit_string(digits, np.random.default_rng(5), height=60, stroke=3)
    assert (thick < 128).sum() > 1.3 * (thin < 128).sum()


def test_negative_gap_overlaps_neighbours_and_keeps_both_inks():
    image, boxes = compose_digit_string([ring(), ring()], np.random.default_rng(0), gap=(-0.3, -0.3),
                                        scale_jitter=0.0, baseline_jitter=0.0, slant=(0.0, 0.0), height=40)
    (x1, y1, w1, h1), (x2, y2, w2, h2) = boxes
    assert x2 < x1 + w1, "touching digits overlap"
    # The first ring's right-hand stroke lies inside the second digit's box and must still show.
    right_stroke = image[y1 + h1 // 3: y1 + 2 * h1 // 3, x1 + w1 - 3: x1 + w1]
    assert right_stroke.min() < 80


def test_positive_gap_leaves_paper_between_digits(mnist_digits):
    image, boxes = compose_digit_string(list(mnist_digits[:4]), np.random.default_rng(2), gap=(0.6, 0.8))
    for (xa, _, wa, _), (xb, _, _, _) in zip(boxes, boxes[1:]):
        assert xb >= xa + wa
        assert image[:, xa + wa:xb].min() >= 250 if xb > xa + wa else True


def test_writer_split_is_disjoint_fixed_and_complete():
    split = dhsd_writer_split(0)
    assert len(split.train) == 20 and len(split.validation) == 7
    assert not set(split.train) & set(split.validation)
    assert set(split.train) | set(split.validation) == set(range(1, 28))
    assert dhsd_writer_split(0) == split


def test_dhsd_words_are_grey_dark_on_white_for_the_chosen_writers(dhsd_dir):
    writers = dhsd_writer_split(0).validation[:1]
    words = load_dhsd(dhsd_dir, writers)
    assert len(words) > 100
    image, text, writer = words[0]
    assert image.shape == (64, 256) and image.dtype == np.uint8
    assert np.median(image) > 200 and image.min() < 150
    assert text and writer in writers
    assert {w for _, _, w in words} == set(writers)


def test_fonts_split_by_family():
    fonts = available_fonts()
    assert len(fonts) >= 20
    split = font_split(0)
    train, held_out = {f.family for f in split.train}, {f.family for f in split.held_out}
    assert train and held_out and not train & held_out


def test_extra_fonts_are_training_print_only():
    """The extra families widen training print; the core split, validation and the held-out family
    stay as they were, and no face that copies a validation or held-out design comes in."""
    from docsort.training.synth.printed import CORE_FAMILIES, EXTRA_PACKAGES, SEALED_FAMILIES, extra_fonts

    split = font_split(0)
    assert {f.family for f in split.held_out} == {"FreeSerif", "Liberation Mono", "Liberation Serif", "Nimbus Sans",
                                                 "Noto Sans", "Noto Sans Display", "URW Bookman"}
    assert split.training[:len(split.train)] == split.train
    extra = {f.family for f in split.extra}
    assert not extra & (CORE_FAMILIES | set(SEALED_FAMILIES))
    assert not any(name.startswith(("TeX Gyre Pagella", "TeX Gyre Heros", "Tinos", "Open Sans")) for name in extra)
    assert split.families() == split.without_extra().families()
    per_family: dict = {}
    for font in extra_fonts():
        per_family[font.family] = per_family.get(font.family, 0) + 1
    assert all(n <= 8 for n in per_family.values())
    assert all(pkg.startswith("fonts-") for pkg in EXTRA_PACKAGES)


def test_rendered_text_is_dark_on_light():
    font = available_fonts()[0]
    image = render_text("Postfach 12 34", font.path, 32, np.random.default_rng(0))
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image[0, 0] == 255 and image.min() < 60
    assert image.shape[1] > 3 * image.shape[0]


def test_random_mail_text_looks_like_mail():
    rng = np.random.default_rng(0)
    codes = [random_postal_code(rng) for _ in range(50)]
    assert any(re.fullmatch(r"D-\d{5}", c) for c in codes)
    assert all(any(ch.isdigit() for ch in c) for c in codes)
    assert all(random_address_line(rng).strip() for _ in range(50))
    assert all(random_printed_text(rng).strip() for _ in range(50))
