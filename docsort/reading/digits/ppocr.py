"""PP-OCR's text recogniser, read over digits only: a reader of number fields trained on other data.

Our own readers learnt digits from MNIST; real fields (cheque amounts, forms) are written by
other hands on other paper, and there PP-OCR's recogniser, trained on a large mix of real
printed and handwritten text, reads many that ours miss. It is the recogniser the ``rapidocr``
wheel ships (``PP-OCRv6_rec_small.onnx``, Apache-2.0, its character list inside the file),
shipped in ``models/`` with its licence and listed in the manifest like every other network,
and run by ONNX Runtime (``docsort.reading.engine``): no download, and nothing of RapidOCR's
own pipeline.

Its raw text reads a 5 as "S" or a 1 as "l", and separators and marks ("1.250,00", "$ 75-")
as what they are. So each output column is reduced to the eleven classes of our whole-field
reader: the ten digits, and "no digit here" (the CTC blank, a space, and every separator or
mark), the letters' share of the column being dropped. The result is a ``StringReading`` whose
columns the whole-field reader's own decoding and CTC scoring (``docsort.reading.digits.strings``)
read as they read the ensemble's, so any string's probability under this reader is known.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.errors import MissingDependencyError
from docsort.reading import engine
from docsort.reading.digits.strings import BLANK, StringReading, best_path, ensemble_probability

MODEL_FILE = "PP-OCRv6_rec_small.onnx"
# Text lines 48 px high, batched by width (8 input columns per output column) as every network
# is (``engine.batches``); the padding is 0, the mid-grey PP-OCR pads its lines with.
INPUT = engine.InputSpec("x", 48, width_buckets=(96, 160, 240, 320, 480, 640, 960), align="left",
                         channel=False, batch=16, columns=320)
# Characters that stand between or around digits and are not digits: read as "no digit here".
SEPARATORS = set(" .,;:-_/\\'\"`~=+*#$€£¥%()[]{}<>|!?")
# Paper around the ink, as a share of the ink's height (at least 2 px). Chosen on the training
# families of ``docsort.training.synth.fields`` (420 fields of MNIST training digits): exactly
# right 61.4 / 61.2 / 60.7 / 59.3 / 55.2 % at 0 / 0.05 / 0.1 / 0.15 / 0.25.
MARGIN = 0.05


def model_path() -> Path:
    """The shipped recogniser, as the manifest lists it; without one, the file inside an installed
    ``rapidocr`` wheel (where the shipped copy comes from: see the model card)."""
    from docsort.reading import manifest

    models = manifest.shipped()
    name = models.line_reader()
    if name is not None:
        models.check_file(name)
        return models.path(name)
    return wheel_model_path()


def wheel_model_path() -> Path:
    """The recogniser inside the installed ``rapidocr`` wheel (located without importing it)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the PP-OCR reader needs the rapidocr package (pip install rapidocr)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise MissingDependencyError(f"the rapidocr package has no {MODEL_FILE} (installed version too old or new)")
    return path


def digit_classes(characters: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each digit 0-9, indices of the "no digit here" classes) in the model's output.

    The output is ordered: 0 = CTC blank, then the file's characters, then a space.
    """
    labels = ["<blank>", *characters, " "]
    digits = np.array([labels.index(str(d)) for d in range(10)])
    gaps = np.array([0] + [i for i, c in enumerate(labels) if i and c in SEPARATORS])
    return digits, gaps


class DigitLineReader:
    """PP-OCR's recogniser over whole-field inks, giving ``StringReading``s over digits only."""

    def __init__(self, path: Optional[Path] = None):
        self.network = engine.Network.load(path or model_path())
        meta = self.network.session.get_modelmeta().custom_metadata_map
        characters = meta.get("character", "").split("\n")
        if not characters or len(characters) < 10:
            raise MissingDependencyError(f"{self.network.path.name} carries no character list")
        self.digits, self.gaps = digit_classes(characters)
        self.labels = ["", *characters, " "]

    def columns(self, inks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Ink-high fields -> per field (T, 11) column probabilities: digits 0-9, then "no digit"."""
        return [self._reduce(p) for p in self._raw_columns(inks)]

    def _raw_columns(self, inks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Ink-high fields -> per field (T, classes): the recogniser's own output columns."""
        lines = [line_image(ink) for ink in inks]
        out: list[Optional[np.ndarray]] = [None] * len(lines)
        for index, x in engine.batches(lines, INPUT):
            probs = self.network(np.repeat(x[:, None], 3, axis=1))  # the three colour planes alike
            for i, p in zip(index, probs):
                out[i] = p[:min(len(p), math.ceil(lines[i].shape[1] / 8) + 1)]
        return out  # type: ignore[return-value]

    def read_text(self, inks: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Ink-high words -> each one's text as the recogniser reads it, letters and marks
        included (a printed "D-80767" keeps its prefix), with the product of its characters'
        peak probabilities: a second reader of printed words beside Tesseract."""
        texts = []
        for probs in self._raw_columns(inks):
            best = probs.argmax(axis=1)
            chars, p, previous = [], 1.0, 0
            for t, label in enumerate(best):
                if label and label != previous:
                    chars.append(self.labels[label] if label < len(self.labels) else "")
                    p *= float(probs[t, label])
                previous = label
            texts.append(("".join(chars).strip(), p if chars else 0.0))
        return texts

    def _reduce(self, probs: np.ndarray) -> np.ndarray:
        """(T, classes) -> (T, 11): the digits' and the gaps' shares of what is digit or gap."""
        reduced = np.empty((len(probs), BLANK + 1), np.float32)
        reduced[:, :10] = probs[:, self.digits]
        reduced[:, BLANK] = probs[:, self.gaps].sum(axis=1)
        total = reduced.sum(axis=1, keepdims=True)
        return reduced / np.maximum(total, 1e-12)

    def read_inks(self, inks: Sequence[np.ndarray]) -> list[StringReading]:
        """Ink-high fields (float 0..1) -> the best digit string of each, with its probability."""
        readings = []
        for probs in self.columns(inks):
            digits, peaks = best_path(probs)
            if not digits:
                readings.append(StringReading("", 0.0, [], [probs]))
                continue
            readings.append(StringReading("".join(map(str, digits)), ensemble_probability([probs], digits),
                                          peaks, [probs]))
        return readings


def line_image(ink: np.ndarray) -> np.ndarray:
    """An ink-high field -> (48, width) float32 as the recogniser takes a text line: dark ink on
    white paper, scaled to its height with a margin, normalised to -1..1."""
    ink = np.clip(np.asarray(ink, np.float32), 0.0, 1.0)
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    if rows.size:
        ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    margin = max(2, int(round(MARGIN * ink.shape[0])))
    ink = cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    width = min(max(8, math.ceil(INPUT.height * ink.shape[1] / ink.shape[0])), INPUT.width_buckets[-1])
    grey = 1.0 - cv2.resize(ink, (width, INPUT.height), interpolation=cv2.INTER_AREA)
    return (grey - 0.5) / 0.5


@functools.lru_cache(maxsize=1)
def shared_reader() -> DigitLineReader:
    """The PP-OCR digit reader, loaded once per process."""
    return DigitLineReader()
