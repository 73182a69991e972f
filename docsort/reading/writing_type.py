"""Printed or handwritten? One probability per word crop, for all crops of a page at once.

A crop is normalised before the network sees it, the same way in training and at run time:
grey, paper white and ink black whatever the pen, scanner or exposure (contrast stretched
between paper and darkest ink), cut to the ink's bounding box with a small margin and scaled
to a fixed height keeping its aspect. So the network judges the shapes of the strokes, not
the ink colour, canvas size or resolution of the data it was trained on.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from docsort.errors import InputError

HEIGHT = 32
MAX_WIDTH = 256
# Crops are padded to the smallest of these widths that holds them, so a batch costs
# what its crops need and the model sees a handful of input shapes only.
WIDTH_BUCKETS = (32, 48, 64, 96, 128, 160, 192, 256)
MAX_ASPECT = MAX_WIDTH / HEIGHT
BATCH_SIZE = 512
# Ink must differ from paper by this many grey levels, else the crop is blank paper.
MIN_CONTRAST = 24.0
# Crops on which the main model is this sure (p below it or above 1 minus it) keep its
# probability. The others, a few in a hundred, get a second look by the further members of the
# ensemble: the looks change almost none of the sure crops and would cost most of the time.
DOUBT = 0.01
# Wider crops are doubted only when the main model is less sure than this: a look at a long
# word costs up to eight times one at a lone character, and the looks change few of them: on
# the validation set and four further draws, gating wide crops at 0.05 rather than 0.01 cost two
# decisions in 27,000 and made the classifier about 14 % faster.
WIDE_DOUBT = 0.05
# Further main models beside ``writing_type.keras`` are named ``writing_type_2.keras``, ``_3``...
# Crops this narrow once normalised (lone characters, slivers) that the main model doubts are
# also judged by wider networks of their own, kept beside it under this name. They are where
# the errors are, and cheap to look at closely: a 32-column crop costs an eighth of a long word.
LONE_CHARACTER_MODEL = "writing_type_chars"
LONE_CHARACTER_WIDTH = 48
INK_THRESHOLD = 0.35
MARGIN_PX = 2
# Runs of inked rows/columns holding less than SPECK_SHARE of the ink and further than SPECK_GAP
# of the text's extent from it are specks, left out of the ink box.
SPECK_SHARE = 0.02
SPECK_GAP = 0.3


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
        return np.zeros((HEIGHT, WIDTH_BUCKETS[0]), np.float32)
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
    out[top:top + new_h, MARGIN_PX:MARGIN_PX + new_w] = np.clip(
        (paper - body.astype(np.float32)) * (1.0 / contrast), 0.0, 1.0)
    return out


def ink_box(grey: np.ndarray) -> Optional[tuple[tuple[int, int, int, int], float, float]]:
    """The ink's box (x0, y0, x1, y1) in a grey crop, with the paper level and the contrast.

    Paper is the brightest tenth of the pixels, ink the darkest; None when the crop has too
    little contrast to hold ink at all.
    """
    import cv2

    cdf = np.cumsum(cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()) / grey.size
    paper = float(np.searchsorted(cdf, 0.90))
    darkest = float(np.searchsorted(cdf, 0.005))
    contrast = paper - darkest
    if contrast < MIN_CONTRAST:
        return None
    return _ink_box(grey < paper - INK_THRESHOLD * contrast), paper, contrast


def _ink_span(profile: np.ndarray) -> tuple[int, int]:
    """First and last+1 index of the ink along one axis, leaving out specks.

    A run of inked rows/columns is a speck when it holds little ink and lies far from the
    text; i-dots and umlauts hold little ink too, but sit close to it.
    """
    inked = profile > 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.view(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    if len(starts) == 1:
        return int(starts[0]), int(ends[0])
    mass = np.add.reduceat(profile, starts)
    heavy = np.flatnonzero(mass >= SPECK_SHARE * mass.max())
    first, last = heavy[0], heavy[-1]
    reach = SPECK_GAP * (ends[last] - starts[first])
    while first > 0 and starts[first] - ends[first - 1] <= reach:
        first -= 1
    while last < len(starts) - 1 and starts[last + 1] - ends[last] <= reach:
        last += 1
    return int(starts[first]), int(ends[last])


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around the ink; isolated specks at the edges are left out."""
    x0, x1 = _ink_span(mask.sum(axis=0, dtype=np.int32))
    y0, y1 = _ink_span(mask[:, x0:x1].sum(axis=1, dtype=np.int32))
    return x0, y0, x1, y1


def bucket_width(width: int) -> int:
    for bucket in WIDTH_BUCKETS:
        if width <= bucket:
            return bucket
    return WIDTH_BUCKETS[-1]


def pad_to(prepared: np.ndarray, width: int) -> np.ndarray:
    """Centre a prepared crop on blank paper ``width`` columns wide."""
    out = np.zeros((HEIGHT, width), np.float32)
    w = min(prepared.shape[1], width)
    left = (width - w) // 2
    out[:, left:left + w] = prepared[:, :w]
    return out


def batches(prepared: Sequence[np.ndarray], batch_size: int = BATCH_SIZE):
    """Yield ``(indices, tensor (n, HEIGHT, bucket, 1))`` grouping crops of similar width."""
    by_bucket: dict[int, list[int]] = {}
    for i, p in enumerate(prepared):
        by_bucket.setdefault(bucket_width(p.shape[1]), []).append(i)
    for width in sorted(by_bucket):
        members = by_bucket[width]
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            x = np.stack([pad_to(prepared[i], width) for i in chunk])[..., None]
            yield np.asarray(chunk), x


class WritingTypeClassifier:
    """The shipped printed/handwritten model, loaded once per process.

    ``p_handwritten`` is calibrated (temperature scaling on held-out writers and fonts is part
    of the saved model), so 0.5 is the decision threshold and values read as probabilities.
    """

    def __init__(self, model_file: Optional[str] = None, ensemble: bool = True):
        """``ensemble``: also use the further main models and the lone-character models that lie
        beside the model (False: the model alone, as when measuring one member)."""
        from pathlib import Path

        from docsort.reading import manifest

        self.model_file = str(model_file or manifest.model_path(manifest.WRITING_TYPE))
        self.model = manifest.load_model(self.model_file)
        main, folder = Path(self.model_file).resolve(), Path(self.model_file).parent
        further = ensemble_files(folder, Path(self.model_file).stem) if ensemble else []
        self.second_look_files: list[str] = [str(f) for f in further if f.resolve() != main]
        lone = lone_character_files(folder) if ensemble else []
        self.lone_character_files: list[str] = [str(f) for f in lone
                                                if f.resolve() != main and str(f) not in self.second_look_files]
        self.second_look_models = [manifest.load_model(f) for f in self.second_look_files]
        self.lone_character_models = [manifest.load_model(f) for f in self.lone_character_files]
        self._predict: dict[int, object] = {}

    def _predict_fn(self, model=None):
        model = self.model if model is None else model
        if id(model) not in self._predict:
            if getattr(model, "runtime", None) == "numpy":
                self._predict[id(model)] = model.predict_on_batch
            else:
                from docsort.training.tf import tensorflow

                tf = tensorflow()
                self._predict[id(model)] = tf.function(
                    lambda x: model(x, training=False),
                    input_signature=[tf.TensorSpec((None, HEIGHT, None, 1), tf.float32)],
                    reduce_retracing=True,
                )
        return self._predict[id(model)]

    @staticmethod
    def prepare(crop: np.ndarray) -> np.ndarray:
        return prepare(crop)

    def p_handwritten_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for already prepared crops (see ``prepare``)."""
        out = np.zeros(len(prepared), np.float32)
        if not len(prepared):
            return out
        predict = self._predict_fn()
        for index, x in batches(prepared):
            out[index] = np.asarray(predict(x)).reshape(-1)
        if not (self.second_look_models or self.lone_character_models):
            return out
        # The doubted crops of all batches are looked at again together: the few of each batch
        # would make small batches that keep one core idle.
        narrow = np.array([bucket_width(x.shape[1]) <= LONE_CHARACTER_WIDTH for x in prepared])
        band = np.where(narrow, DOUBT, WIDE_DOUBT)
        doubted = np.flatnonzero((out >= band) & (out <= 1.0 - band))
        for index, x in batches([prepared[i] for i in doubted]):
            looks = list(self.second_look_models)
            if x.shape[2] <= LONE_CHARACTER_WIDTH:
                looks += self.lone_character_models
            if looks:
                chosen = doubted[index]
                out[chosen] = combine_looks(out[chosen], [np.asarray(self._predict_fn(m)(x)).reshape(-1)
                                                          for m in looks])
        return out

    def p_handwritten(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """P(handwritten) for each crop (uint8 grey or BGR, dark ink on light paper)."""
        return self.p_handwritten_prepared([prepare(c) for c in crops])

    def classify(self, crops: Sequence[np.ndarray], threshold: float = 0.5) -> list[tuple[str, float]]:
        """``("printed"|"handwritten", p_handwritten)`` for each crop."""
        p = self.p_handwritten(crops)
        return [("handwritten" if v >= threshold else "printed", float(v)) for v in p]


def combine_looks(p_main: np.ndarray, p_looks: Sequence[np.ndarray]) -> np.ndarray:
    """P(handwritten) of a crop the main model doubts: the mean of the calibrated probabilities
    of the main model and every further look (the other main models; for lone characters also
    the lone-character models). Doubted crops are where the models err most and disagree most,
    so averaging independently trained looks pays off."""
    return np.mean([p_main, *p_looks], axis=0)


def ensemble_files(folder, name: str) -> list:
    """``NAME.keras`` in a folder, then the further members of its ensemble (``NAME_2.keras``,
    ``_3``, ...) in order."""
    import re
    from pathlib import Path

    pattern = re.compile(rf"{re.escape(name)}(?:_(\d+))?\.keras")
    found = [(int(m.group(1) or 1), f) for f in Path(folder).glob(f"{name}*.keras")
             if (m := pattern.fullmatch(f.name))]
    return [f for _, f in sorted(found)]


def lone_character_files(folder) -> list:
    """The lone-character models in a folder: ``writing_type_chars.keras``, then ``_2``, ``_3``..."""
    return ensemble_files(folder, LONE_CHARACTER_MODEL)


def kind_of(p_handwritten: float, threshold: float = 0.5) -> str:
    return "handwritten" if p_handwritten >= threshold else "printed"
