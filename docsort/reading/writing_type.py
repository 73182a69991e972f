"""Printed or handwritten? One probability per word crop, for all crops of a page at once.

A crop is normalised before the network sees it, the same way in training and at run time:
grey, paper white and ink black whatever the pen, scanner or exposure (contrast stretched
between paper and darkest ink), cut to the ink's bounding box with a small margin and scaled
to a fixed height keeping its aspect. So the network judges the shapes of the strokes, not
the ink colour, canvas size or resolution of the data it was trained on.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from docsort.errors import InputError
from docsort.reading import engine, manifest

HEIGHT = 32
MAX_WIDTH = 256
MAX_ASPECT = MAX_WIDTH / HEIGHT
# Crops are padded (centred) to the smallest of these widths that holds them, so a batch costs
# what its crops need and the network sees a handful of input shapes only. A call holds at most
# 2,048 input columns (8 crops of the widest bucket): ONNX Runtime runs the first convolution's
# output padded to 16 channels at full resolution, 33 MB for 64 wide crops, which is allocated
# and faulted in again on every call. In calls of 2,048 columns the network runs 1.5 times as
# fast, the classifier with its preprocessing 1.4 times (``benchmarks/bench_writing_type.py``).
INPUT = engine.InputSpec("crop", HEIGHT, width_buckets=(32, 48, 64, 96, 128, 160, 192, 256), align="centre",
                         batch=64, columns=2048)
# Ink must differ from paper by this many grey levels, else the crop is blank paper.
MIN_CONTRAST = 24.0
# The lone-character networks' widest input: crops this narrow once normalised (lone characters,
# slivers) are where the errors are, and cheap to look at closely.
LONE_CHARACTER_WIDTH = 48
INK_THRESHOLD = 0.35
MARGIN_PX = 2
# Runs of inked rows/columns holding less than SPECK_SHARE of the ink and further than SPECK_GAP
# of the text's extent from it are specks, left out of the ink box.
SPECK_SHARE = 0.02
SPECK_GAP = 0.3
# A rule beside a word (``_within_edge_rules``): it inks at least RULE_COVER of the crop's rows
# in at most RULE_WIDTH of its height, an empty column (at most RULE_GAP_COVER inked, and none of
# the RULE_END_ROWS rows at either end) parts it from the word, and the word spans at most
# RULE_WORD_SHARE of the rule's rows. Crops under RULE_MIN_HEIGHT rows are left as they are.
RULE_COVER = 0.9
RULE_WIDTH = 0.1
RULE_GAP_COVER = 0.05
RULE_END_ROWS = 3
RULE_WORD_SHARE = 0.85
RULE_MIN_HEIGHT = 12
_GREY_LEVELS = np.arange(256, dtype=np.float32)


def as_grey(image: np.ndarray) -> np.ndarray:
    """Any crop (grey, BGR, BGRA, bool, 16-bit, float) as uint8 grey."""
    import cv2

    img = np.asarray(image)
    if img.size == 0 or img.ndim not in (2, 3):
        raise InputError(f"crop has an unsupported shape {img.shape}")
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        scale = 255.0 if f.max(initial=0.0) <= 1.0 else 1.0
        img = np.clip(f * scale, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        elif img.shape[2] == 4:
            alpha = img[..., 3:4].astype(np.float32) / 255.0
            colour = img[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
            img = cv2.cvtColor(colour.astype(np.uint8), cv2.COLOR_BGR2GRAY)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)
        else:
            raise InputError(f"crop has {img.shape[2]} channels")
    return np.ascontiguousarray(img)


def prepare(crop: np.ndarray) -> np.ndarray:
    """One crop -> float32 (HEIGHT, width <= MAX_WIDTH), ink 1 on paper 0.

    Paper is the brightest tenth of the crop's pixels, ink the darkest (crops are dark on light).
    Lines longer than ``MAX_ASPECT`` are scaled down whole rather than cut.
    """
    grey = as_grey(crop)
    return normalise(grey, ink_box(grey))


def normalise(grey: np.ndarray, found) -> np.ndarray:
    """``prepare`` for a grey crop whose ``ink_box`` is already known (blank when it is None)."""
    import cv2

    if found is None:
        return np.zeros((HEIGHT, INPUT.width_buckets[0]), np.float32)
    (x0, y0, x1, y1), paper, contrast = found
    h, w = y1 - y0, x1 - x0
    # The margin is fixed in output pixels, so the same word at any resolution looks the same.
    inner_h, inner_w = HEIGHT - 2 * MARGIN_PX, MAX_WIDTH - 2 * MARGIN_PX
    scale = min(inner_h / h, inner_w / w)
    new_h = min(inner_h, max(1, int(round(h * scale))))
    new_w = min(inner_w, max(1, int(round(w * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    body = cv2.resize(grey[y0:y1, x0:x1], (new_w, new_h), interpolation=interpolation)
    out = np.zeros((HEIGHT, new_w + 2 * MARGIN_PX), np.float32)
    top = (HEIGHT - new_h) // 2
    # Ink's darkness is a function of the grey level alone: one table of the 256 levels, in the
    # float32 arithmetic the network was trained with.
    levels = np.minimum(np.maximum((paper - _GREY_LEVELS) * (1.0 / contrast), 0.0), 1.0)
    out[top:top + new_h, MARGIN_PX:MARGIN_PX + new_w] = cv2.LUT(body, levels)
    return out


def ink_box(grey: np.ndarray) -> Optional[tuple[tuple[int, int, int, int], float, float]]:
    """The ink's box (x0, y0, x1, y1) in a grey crop, with the paper level and the contrast.

    Paper is the brightest tenth of the pixels, ink the darkest; None when the crop has too
    little contrast to hold ink at all.
    """
    import cv2

    cdf = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel().cumsum() / grey.size
    paper = float(np.searchsorted(cdf, 0.90))
    darkest = float(np.searchsorted(cdf, 0.005))
    contrast = paper - darkest
    if contrast < MIN_CONTRAST:
        return None
    # Grey levels are whole numbers: below the level is below its ceiling, compared in uint8.
    below = np.uint8(math.ceil(paper - INK_THRESHOLD * contrast))
    return _ink_box(grey < below), paper, contrast


def _ink_span(profile: np.ndarray) -> tuple[int, int]:
    """First and last+1 index of the ink along one axis, leaving out specks.

    A run of inked rows/columns is a speck when it holds little ink and lies far from the
    text; i-dots and umlauts hold little ink too, but sit close to it.
    """
    # (Array methods, not numpy's wrappers: every crop of a page comes through here twice.)
    inked = profile.nonzero()[0]
    if inked[-1] - inked[0] + 1 == len(inked):  # one run, as most rows of a word are
        return int(inked[0]), int(inked[-1]) + 1
    bounded = np.zeros(len(profile) + 2, np.int8)
    bounded[1:-1] = profile > 0
    edges = (bounded[1:] != bounded[:-1]).nonzero()[0]
    starts, ends = edges[0::2], edges[1::2]
    mass = np.add.reduceat(profile, starts)
    heavy = (mass >= SPECK_SHARE * mass.max()).nonzero()[0]
    first, last = heavy[0], heavy[-1]
    reach = SPECK_GAP * (ends[last] - starts[first])
    while first > 0 and starts[first] - ends[first - 1] <= reach:
        first -= 1
    while last < len(starts) - 1 and starts[last + 1] - ends[last] <= reach:
        last += 1
    return int(starts[first]), int(ends[last])


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around the ink; isolated specks at the edges and a rule standing
    beside the word are left out."""
    x0, x1 = _ink_span(_inked(mask, axis=0))
    y0, y1 = _ink_span(_inked(mask[:, x0:x1], axis=1))
    inner = _within_edge_rules(mask[y0:y1], x0, x1)
    if inner != (x0, x1):
        x0, x1 = inner
        y0, y1 = _ink_span(_inked(mask[:, x0:x1], axis=1))
    return x0, y0, x1, y1


def _inked(mask: np.ndarray, axis: int) -> np.ndarray:
    """Inked pixels of each column (``axis`` 0) or row (1) of a boolean mask, as int32.

    numpy's sum, not OpenCV's reduction: that one runs on OpenCV's thread pool and, for a crop,
    costs a second core as much time again as it saves on the first.
    """
    return mask.sum(axis=axis, dtype=np.int32)


def _within_edge_rules(band: np.ndarray, x0: int, x1: int) -> tuple[int, int]:
    """The columns of a word without a rule standing beside it.

    Tesseract's word boxes take in a table rule, a form's box edge or a fax streak that runs
    past the word: a straight vertical line taller than the word, apart from it, at one end of
    the crop. It says nothing about the hand and stretches the crop, so the word is judged
    without it. A rule must ink nearly every row of the crop in at most ``RULE_WIDTH`` of its
    height, with an empty column between it and the word (free at its ends too: the side of a
    closed box is kept), and the word must be clearly shorter than the rule.
    """
    h = band.shape[0]
    if h < RULE_MIN_HEIGHT or x1 - x0 < 4:
        return x0, x1
    cover = _inked(band[:, x0:x1], axis=0) / h
    widest = max(2, int(round(RULE_WIDTH * h)))

    def inner_start(cover: np.ndarray, cols: np.ndarray) -> Optional[int]:
        """Offset of the word's first column past a rule at the start of ``cover``, else None."""
        # A 1-bit scan's specks may stand just outside the rule, inside the ink box.
        lead = 0
        while lead < min(widest, len(cover)) and cover[lead] <= RULE_GAP_COVER:
            lead += 1
        rule = lead
        while rule < len(cover) and cover[rule] >= RULE_COVER:
            rule += 1
        if not 1 <= rule - lead <= widest:
            return None
        gap = rule
        while gap < len(cover) and cover[gap] < RULE_COVER and gap < rule + 2 * widest:
            ends_free = not (cols[:RULE_END_ROWS, gap].any() or cols[-RULE_END_ROWS:, gap].any())
            if cover[gap] <= RULE_GAP_COVER and ends_free:
                word = gap + 1
                while word < len(cover) and cover[word] == 0:
                    word += 1
                if word >= len(cover):
                    return None
                # The word's rows, leaving out a rule at the far end too.
                rows = np.flatnonzero(cols[:, word:][:, cover[word:] < RULE_COVER].any(axis=1))
                return word if len(rows) and rows[-1] - rows[0] + 1 <= RULE_WORD_SHARE * h else None
            gap += 1
        return None

    cols = band[:, x0:x1]
    start = inner_start(cover, cols)
    if start is not None:
        x0, cover, cols = x0 + start, cover[start:], cols[:, start:]
    end = inner_start(cover[::-1], cols[:, ::-1])
    if end is not None:
        x1 -= end
    return x0, x1


class WritingTypeClassifier:
    """The shipped printed/handwritten ensemble (or one network), loaded once per process.

    ``p_handwritten`` is calibrated (temperature scaling on held-out writers and fonts is part
    of each network), so 0.5 is the decision threshold and values read as probabilities.
    """

    def __init__(self, model_file: Optional[str] = None, ensemble: bool = True):
        """``model_file``: a network (``.onnx``, or a ``.keras`` with its exported ``.onnx`` beside
        it); default the shipped main model. ``ensemble``: also use the further looks the manifest
        of the model's folder lists for it (False: the network alone, as when measuring one member)."""
        if model_file is None:
            models, name = manifest.shipped(), manifest.WRITING_TYPE
        elif ensemble:
            models, name = _listed(model_file)
        else:
            models, name = None, None
        ensemble_entry = models.writing_type() if models is not None and ensemble else None
        if ensemble_entry is not None and ensemble_entry["main"] != name:
            ensemble_entry = None
        self.model = models.network(name, INPUT) if models is not None else engine.load(model_file)
        self.model_file = str(self.model.path)
        looks = ensemble_entry or {"second_looks": [], "lone_characters": []}
        self.second_look_models = [models.network(n, INPUT) for n in looks["second_looks"]]
        self.lone_character_models = [models.network(n, INPUT) for n in looks["lone_characters"]]
        self.second_look_files = [str(m.path) for m in self.second_look_models]
        self.lone_character_files = [str(m.path) for m in self.lone_character_models]
        # Bands of doubt: (narrow crops, wider crops, widest narrow crop).
        doubt = ensemble_entry["doubt"] if ensemble_entry else {"narrow": 0.0, "wide": 0.0, "narrow_width": 0}
        self.doubt = (doubt["narrow"], doubt["wide"], doubt["narrow_width"])

    @staticmethod
    def prepare(crop: np.ndarray) -> np.ndarray:
        return prepare(crop)

    def p_handwritten_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for already prepared crops (see ``prepare``)."""
        out = _probabilities(self.model, prepared)
        if not (self.second_look_models or self.lone_character_models) or not len(prepared):
            return out
        # The doubted crops of all batches are looked at again together: the few of each batch
        # would make small batches.
        narrow_band, wide_band, narrow_width = self.doubt
        narrow = np.array([INPUT.bucket(x.shape[1]) <= narrow_width for x in prepared])
        band = np.where(narrow, narrow_band, wide_band)
        doubted = (out >= band) & (out <= 1.0 - band)
        for chosen, looks in ((np.flatnonzero(doubted & narrow), self.second_look_models + self.lone_character_models),
                              (np.flatnonzero(doubted & ~narrow), self.second_look_models)):
            if len(chosen) and looks:
                crops = [prepared[i] for i in chosen]
                out[chosen] = combine_looks(out[chosen], [_probabilities(m, crops) for m in looks])
        return out

    def p_handwritten(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """P(handwritten) for each crop (uint8 grey or BGR, dark ink on light paper)."""
        return self.p_handwritten_prepared([prepare(c) for c in crops])

    def classify(self, crops: Sequence[np.ndarray], threshold: float = 0.5) -> list[tuple[str, float]]:
        """``("printed"|"handwritten", p_handwritten)`` for each crop."""
        p = self.p_handwritten(crops)
        return [("handwritten" if v >= threshold else "printed", float(v)) for v in p]


def _probabilities(network, prepared: Sequence[np.ndarray]) -> np.ndarray:
    return np.asarray(network.run(prepared, INPUT), np.float32).reshape(len(prepared))


def _listed(model_file) -> tuple[Optional["manifest.Manifest"], Optional[str]]:
    """The manifest of the folder holding ``model_file`` and the model's name in it, where the
    folder has a manifest that lists it."""
    from pathlib import Path

    folder = Path(model_file).parent
    if not (folder / manifest.MANIFEST_FILE).is_file():
        return None, None
    models = manifest.load(folder)
    name = models.name_of(model_file)
    return (models, name) if name is not None else (None, None)


def combine_looks(p_main: np.ndarray, p_looks: Sequence[np.ndarray]) -> np.ndarray:
    """P(handwritten) of a crop the main model doubts: the mean of the calibrated probabilities
    of the main model and every further look (the other main models; for lone characters also
    the lone-character models). Doubted crops are where the models err most and disagree most,
    so averaging independently trained looks pays off."""
    return np.mean([p_main, *p_looks], axis=0)


def kind_of(p_handwritten: float, threshold: float = 0.5) -> str:
    return "handwritten" if p_handwritten >= threshold else "printed"
