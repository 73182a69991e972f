"""``to_mnist``: any digit a page yields comes out the way MNIST digits look."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from docsort.training.datasets import mnist
from docsort.reading.digits.mnist_format import to_mnist, to_mnist_batch
from docsort.training.synth import degrade


@pytest.fixture(scope="module")
def digits(mnist_dir):
    return mnist.load(mnist_dir).test


def _centre_of_mass(img):
    rows, cols = np.indices(img.shape)
    total = img.sum()
    return (rows * img).sum() / total, (cols * img).sum() / total


def _ink_box(img, level=0.3):
    ys, xs = np.nonzero(img > level)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def _on_paper(digit, scale=4, pad=10):
    """An MNIST digit drawn dark on light paper, bigger, as a scanner cuts it from a page."""
    big = cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    return 255 - big


def test_mnist_digits_come_back_nearly_unchanged(digits):
    original = digits.images[:300].astype(np.float32) / 255
    again = to_mnist_batch(digits.images[:300])
    assert again.shape == (300, 28, 28) and again.dtype == np.float32
    assert np.abs(again - original).mean() < 0.02


def test_polarity_is_detected_either_way(digits):
    digit = digits.images[0]
    light_on_dark = to_mnist(255 - _on_paper(digit))
    dark_on_light = to_mnist(_on_paper(digit))
    assert np.abs(light_on_dark - dark_on_light).max() < 0.02
    assert dark_on_light[0].max() == 0 and dark_on_light.max() == pytest.approx(1.0)
    assert np.abs(dark_on_light - digit / 255).mean() < 0.05


def test_grey_paper_colour_and_transparency(digits):
    paper = degrade.ink_level(_on_paper(digits.images[1]), ink=60, paper=190)
    reference = to_mnist(paper)
    rgb = np.dstack([paper, paper, paper])
    assert np.abs(to_mnist(rgb) - reference).max() < 0.02
    rgba = np.dstack([np.zeros_like(paper)] * 3 + [255 - paper])  # black ink on transparent
    assert np.abs(to_mnist(rgba) - to_mnist(_on_paper(digits.images[1]))).mean() < 0.02
    assert to_mnist(paper < 128).max() == pytest.approx(1.0)  # bool mask, True = ink


@pytest.mark.parametrize("shape", [(30, 12), (400, 150), (60, 500), (9, 7)])
def test_longer_side_is_twenty_pixels_and_aspect_kept(shape):
    h, w = shape
    img = np.full(shape, 255, np.uint8)
    cv2.rectangle(img, (w // 6, h // 6), (w - 1 - w // 6, h - 1 - h // 6), 0, max(1, min(h, w) // 8))
    out = to_mnist(img)
    box_h, box_w = _ink_box(out)
    assert max(box_h, box_w) in (19, 20, 21)
    expected = (h - 2 * (h // 6)) / (w - 2 * (w // 6))
    assert box_h / box_w == pytest.approx(expected, rel=0.35)


def test_centre_of_mass_is_mnist_centre(digits):
    for digit in digits.images[:20]:
        shifted = np.zeros((120, 200), np.uint8)
        shifted[5:33, 160:188] = digit
        cy, cx = _centre_of_mass(to_mnist(255 - shifted))
        assert abs(cy - 14) < 1 and abs(cx - 14) < 1


def test_speckle_and_jpeg_noise_are_ignored(digits):
    paper = _on_paper(digits.images[2])
    clean = to_mnist(paper)
    noisy = paper.copy()
    for x, y in [(3, 3), (120, 5), (4, 110), (118, 117)]:
        cv2.circle(noisy, (x, y), 1, 0, -1)
    noisy = degrade.jpeg(degrade.gaussian_noise(noisy, np.random.default_rng(0), 8), 40)
    out = to_mnist(noisy)
    assert _ink_box(out) == pytest.approx(_ink_box(clean), abs=1)
    assert np.abs(out - clean).mean() < 0.05


def test_heavy_pen_is_thinned_towards_mnist_stroke(digits):
    paper = degrade.stroke_width(_on_paper(digits.images[3]), 6)
    out = to_mnist(paper)
    assert (out > 0.5).mean() < 2.2 * (digits.images[3] > 128).mean()


@pytest.mark.parametrize("empty", [
    np.zeros((0, 0), np.uint8), np.zeros((40, 30), np.uint8), np.full((40, 30), 255, np.uint8),
    np.full((5, 5, 3), 128, np.uint8), np.zeros((1, 1), bool),
])
def test_empty_input_gives_blank(empty):
    out = to_mnist(empty)
    assert out.shape == (28, 28) and not out.any()
    assert to_mnist_batch([]).shape == (0, 28, 28)


def test_blank_scanned_paper_is_not_a_digit():
    rng = np.random.default_rng(3)
    for std in (3, 8, 16):
        paper = np.full((90, 70), 205, np.uint8)
        paper = degrade.jpeg(degrade.gaussian_noise(paper, rng, std), 40)
        assert not to_mnist(paper).any()
        assert not to_mnist(255 - paper).any()


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80))))
def test_any_grey_image_gives_a_valid_mnist_array(img):
    out = to_mnist(img)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
