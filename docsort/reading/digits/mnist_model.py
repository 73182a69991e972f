"""The handwritten digit reader: the shipped MNIST model behind a batched, calibrated interface.

The shipped ``digits.keras`` already ends in temperature scaling and a softmax, so its outputs
are calibrated probabilities: a 0.99 means right about 99 times in 100. Callers hand over whole
batches; the reader cuts them into chunks so memory stays bounded however many digits a page has.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from docsort.reading import manifest
from docsort.reading.digits.mnist_format import to_mnist_batch

CHUNK = 1024


class DigitReader:
    """Reads 28x28 MNIST-format digits (or any digit images, via ``read_digit_images``)."""

    def __init__(self, model=None):
        """``model``: a loaded model (Keras or ``docsort.reading.engine``), a path to a ``.keras`` file,
        or None for the shipped one."""
        if model is None or isinstance(model, (str, os.PathLike)):
            path = manifest.model_path(manifest.DIGITS) if model is None else model
            self.path = str(path)
            model = manifest.load_model(path)
        else:
            self.path = None
        self.model = model

    def predict_proba(self, digits: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(n, 28, 28) digits, ink high (uint8 0-255 or float 0-1) -> (n, 10) probabilities."""
        batch = np.asarray(digits)
        if batch.ndim == 2:
            batch = batch[None]
        if batch.shape[1:] != (28, 28):
            raise ValueError(f"digits must be (n, 28, 28) MNIST-format arrays, got {batch.shape}")
        x = batch.astype(np.float32) / 255.0 if batch.dtype == np.uint8 else batch.astype(np.float32)
        if len(x) == 0:
            return np.zeros((0, 10), np.float32)
        chunks = []
        for start in range(0, len(x), CHUNK):
            part = x[start:start + CHUNK]
            size = len(part) if getattr(self.model, "runtime", None) == "numpy" else _padded_size(len(part))
            if size > len(part):
                part = np.concatenate([part, np.zeros((size - len(part), 28, 28), np.float32)])
            probs = np.asarray(self.model.predict_on_batch(part), dtype=np.float32)
            chunks.append(probs[:min(CHUNK, len(x) - start)])
        return np.concatenate(chunks)

    def read(self, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MNIST-format digits -> (predicted digit, its probability) per digit."""
        probs = self.predict_proba(digits)
        return probs.argmax(axis=1), probs.max(axis=1)

    def read_digit_images(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """Digit images as cut from a page (any polarity, size, colour) -> (n, 10) probabilities."""
        return self.predict_proba(to_mnist_batch(images))


def _padded_size(n: int) -> int:
    """Keras batches are padded to a few fixed sizes so the compiled graph is not rebuilt per
    size; the numpy engine takes any size, and padding would only cost time."""
    size = 16
    while size < n:
        size *= 2
    return min(size, max(n, CHUNK))


_shared: DigitReader | None = None


def shared_reader() -> DigitReader:
    """The shipped reader, loaded once per process (worker processes each load their own)."""
    global _shared
    if _shared is None:
        _shared = DigitReader()
    return _shared
