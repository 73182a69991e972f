"""Digit augmentation: other writers, other pens, other scanners.

Everything works on uint8 28x28 MNIST digits (ink high) in numpy/OpenCV, one epoch at a time,
so it costs little next to the network. Two kinds:

* ``writer_variation``: affine (rotation, shear, scale, shift), elastic deformation, pen width,
  blur and noise -- the handwriting itself varies.
* ``scanned_look``: the digit printed dark on light paper at 3x size, pen width changed, blurred,
  noised and JPEG-compressed like a scan, then brought back through ``to_mnist`` -- so the reader
  learns exactly what ``to_mnist`` makes of a real scan. Evaluation uses it too (seeded):
  ``scanned_test_set`` is the test set every measurement of the digit reader shares.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsort.reading.digits.mnist_format import to_mnist
from docsort.training.datasets import mnist
from docsort.training.synth import degrade

SCAN_SCALE = 3
SCANNED_SEED = 7


def writer_variation(images: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A randomly varied copy of each uint8 (n, 28, 28) digit."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = _vary_one(img, rng, strength)
    return out


def _vary_one(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    angle = np.deg2rad(rng.uniform(-12, 12) * strength)
    shear = rng.uniform(-0.25, 0.25) * strength
    scale = np.exp(rng.uniform(-0.12, 0.10) * strength)
    aspect = np.exp(rng.uniform(-0.1, 0.1) * strength)
    shift = rng.uniform(-2.0, 2.0, 2) * strength
    cos, sin = np.cos(angle), np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    linear = linear @ np.diag([scale * aspect, scale / aspect])
    centre = np.array([13.5, 13.5])
    offset = centre + shift - linear @ centre
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float32)
    use_elastic = rng.random() < 0.5 * strength
    if use_elastic:
        out = _elastic(img, matrix, rng, alpha=rng.uniform(1.0, 2.2) * strength, sigma=rng.uniform(3.5, 5.0))
    else:
        out = cv2.warpAffine(img, matrix, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    pen = rng.random()
    if pen < 0.15 * strength:
        out = cv2.dilate(out, _KERNELS[rng.integers(len(_KERNELS))])
    elif pen < 0.3 * strength:
        out = cv2.erode(out, _KERNELS[0]) if np.count_nonzero(out > 128) > 140 else out
    if rng.random() < 0.15 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 0.9))
    if rng.random() < 0.1 * strength:
        noisy = out.astype(np.float32) + rng.normal(0, rng.uniform(4, 20), out.shape)
        out = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


_KERNELS = [np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8), np.ones((2, 2), np.uint8)]


def _elastic(img: np.ndarray, matrix: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float
             ) -> np.ndarray:
    """Affine plus a smooth random displacement field (Simard et al. 2003), one remap."""
    field = rng.uniform(-1, 1, (2, 28, 28)).astype(np.float32)
    dx = cv2.GaussianBlur(field[0], (0, 0), sigma)
    dy = cv2.GaussianBlur(field[1], (0, 0), sigma)
    norm = max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    dx, dy = dx / norm * alpha, dy / norm * alpha
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.indices((28, 28), dtype=np.float32)
    xd, yd = xs + dx, ys + dy
    map_x = inverse[0, 0] * xd + inverse[0, 1] * yd + inverse[0, 2]
    map_y = inverse[1, 0] * xd + inverse[1, 1] * yd + inverse[1, 2]
    return cv2.remap(img, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR, borderValue=0)


def scanned_paper(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit as a scanner would deliver it cut from a page: dark ink on light paper at 3x."""
    big = cv2.resize(img, (28 * SCAN_SCALE, 28 * SCAN_SCALE), interpolation=cv2.INTER_CUBIC)
    pad = int(rng.integers(0, 3 * SCAN_SCALE))
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    paper = 255 - big
    paper = degrade.stroke_width(paper, int(rng.choice([-2, -1, 0, 0, 1, 2, 3])))
    ink, light = rng.uniform(0, 110), rng.uniform(170, 255)
    paper = degrade.ink_level(paper, ink, light)
    if rng.random() < 0.3:
        paper = degrade.rotate(paper, rng.uniform(-4, 4), fill=int(light))
    paper = degrade.blur(paper, rng.uniform(0.3, 2.0))
    paper = degrade.gaussian_noise(paper, rng, rng.uniform(2, 16))
    if rng.random() < 0.08:
        paper = degrade.binarise(paper)
    if rng.random() < 0.15:
        paper = _speckle(paper, rng)
    return degrade.jpeg(paper, int(rng.integers(20, 95)))


def _speckle(paper: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few dust specks, which ``to_mnist`` must ignore."""
    out = paper.copy()
    h, w = out.shape
    for _ in range(int(rng.integers(1, 6))):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        cv2.circle(out, (x, y), int(rng.integers(1, 3)), int(rng.uniform(0, 120)), -1)
    return out


def scanned_look(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each uint8 MNIST digit -> scanned on paper -> back through ``to_mnist`` (uint8 28x28)."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = np.round(to_mnist(scanned_paper(img, rng)) * 255).astype(np.uint8)
    return out


def scanned_test_set(test: mnist.Split, limit: int | None = None, seed: int = SCANNED_SEED) -> mnist.Split:
    """The test digits made to look scanned and read back through ``to_mnist`` (seeded, so
    training's final check and ``evaluate digits`` measure on the same images)."""
    split = test if limit is None else mnist.Split(test.images[:limit], test.labels[:limit])
    return mnist.Split(scanned_look(split.images, np.random.default_rng(seed)), split.labels)
