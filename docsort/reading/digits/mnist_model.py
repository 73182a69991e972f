"""The handwritten digit reader: the shipped MNIST network behind a batched, calibrated interface.

The shipped network already ends in temperature scaling and a softmax, so its outputs are
calibrated probabilities: a 0.99 means right about 99 times in 100. Callers hand over whole
batches; the engine cuts them into calls of ``INPUT.batch`` digits so memory stays bounded however
many digits a page has.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from docsort.reading import engine, manifest
from docsort.reading.digits.mnist_format import to_mnist_batch

INPUT = engine.InputSpec("digit", height=28, width=28, channel=False, batch=64)


class DigitReader:
    """Reads 28x28 MNIST-format digits (or any digit images, via ``read_digit_images``)."""

    def __init__(self, model=None):
        """``model``: a model file (``.onnx``, or a ``.keras`` with its exported ``.onnx`` beside
        it), a loaded ``engine.Network``, or None for the shipped one."""
        if model is None:
            self.network = manifest.shipped().network(manifest.DIGITS, INPUT)
        elif isinstance(model, (str, os.PathLike)):
            self.network = engine.load(model)
        else:
            self.network = model
        self.path = str(self.network.path)

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
        return np.stack(self.network.run(x, INPUT))

    def read(self, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MNIST-format digits -> (predicted digit, its probability) per digit."""
        probs = self.predict_proba(digits)
        return probs.argmax(axis=1), probs.max(axis=1)

    def read_digit_images(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """Digit images as cut from a page (any polarity, size, colour) -> (n, 10) probabilities."""
        return self.predict_proba(to_mnist_batch(images))


_shared: DigitReader | None = None


def shared_reader() -> DigitReader:
    """The shipped reader, loaded once per process (worker processes each load their own)."""
    global _shared
    if _shared is None:
        _shared = DigitReader()
    return _shared
