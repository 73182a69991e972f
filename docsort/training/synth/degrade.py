"""Scanner degradations applied to paper-like images (dark ink on light paper, uint8 grey).

Training and test data pass through the same degradations so the models see what a real
scanner produces: blur, sensor noise, JPEG blocking, low resolution, faint or heavy ink,
binarisation and slight tilt.
"""

from __future__ import annotations

import cv2
import numpy as np


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma)


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    if std <= 0:
        return img
    noisy = img.astype(np.float32) + rng.normal(0.0, std, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Scan at lower resolution and scale back: loses fine detail like a cheap scanner."""
    if factor >= 1.0:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def ink_level(img: np.ndarray, ink: float, paper: float) -> np.ndarray:
    """Map pure black/white to the given ink and paper grey levels (faint or heavy ink)."""
    f = img.astype(np.float32) / 255.0
    return np.clip(ink + f * (paper - ink), 0, 255).astype(np.uint8)


def binarise(img: np.ndarray) -> np.ndarray:
    _, out = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return out


def rotate(img: np.ndarray, degrees: float, fill: int = 255) -> np.ndarray:
    if abs(degrees) < 1e-3:
        return img
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill)


def stroke_width(img: np.ndarray, pixels: int) -> np.ndarray:
    """Thicken (pixels > 0) or thin (pixels < 0) dark strokes on light paper."""
    if pixels == 0:
        return img
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1, 2 * abs(pixels) + 1))
    return cv2.erode(img, k) if pixels > 0 else cv2.dilate(img, k)


def random_scan(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A random plausible scan of ``img`` (uint8 grey, dark ink on light paper)."""
    out = img
    if rng.random() < 0.3 * strength:
        out = rotate(out, rng.uniform(-3, 3) * strength, fill=int(np.median(out)))
    if rng.random() < 0.5:
        out = ink_level(out, rng.uniform(0, 90 * strength), rng.uniform(255 - 60 * strength, 255))
    if rng.random() < 0.3 * strength:
        out = resample(out, rng.uniform(0.45, 0.9))
    if rng.random() < 0.5:
        out = blur(out, rng.uniform(0.2, 1.3 * strength))
    if rng.random() < 0.5:
        out = gaussian_noise(out, rng, rng.uniform(1, 14 * strength))
    if rng.random() < 0.15 * strength:
        out = binarise(out)
    if rng.random() < 0.5:
        out = jpeg(out, int(rng.integers(max(15, int(90 - 70 * strength)), 96)))
    return out
