"""Fitting what ``read-digits`` says about a field: P(it is a number) and P(its reading is right).

The combination of the two readers (``field_reader``) was fitted on 5-digit codes, the fields the
pipeline meets. ``read-digits`` is handed fields of any length, and crops that hold no number at
all. So its confidence is calibrated again here, on fields it is really handed:

- numbers of 1 to 10 digits composed from the MNIST digits held out of every model's training
  (``mnist.train_validation_split``), written several ways (apart, touching, scanned at envelope
  sizes, a lone MNIST digit as it comes), each read with and without the code length;
- crops that are not numbers: real handwritten words and bits of words by DHSD *training*
  writers, hand-printed capitals and letters, rules and lines, blank paper, smudges and blots.

MNIST test digits and the DHSD validation writers are never fitted on: ``evaluate digits``
measures on them with the same recipes (``number_fields``, ``word_fields``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from docsort.errors import DatasetError

LENGTHS = tuple(range(1, 11))
# Letters whose hand-printed capital is drawn like a digit (O 0, I 1, Z 2, S 5, B 8, G 6, Q 9,
# D 0, L and T 1 or 7): a lone one is a number field's reading, not a negative.
DIGIT_LIKE_LETTERS = set("OIZSBGQDLT")
NOT_NUMBER_KINDS = ("word", "letters", "capitals", "capital", "rule", "blank", "smudge")
# The share of crops handed to read-digits that are numbers, as the models are fitted: most are.
NUMBER_SHARE = 0.7


# ---------------------------------------------------------------- numbers


def number_fields(images: np.ndarray, labels: np.ndarray, count: int, seed: int,
                  lengths: Sequence[int] = LENGTHS) -> tuple[list[np.ndarray], list[str]]:
    """``count`` number fields (grey, dark on light) and their digits, the lengths taken in turn.

    Each field is written one of four ways, drawn at random: as on an envelope (apart, scanned,
    30-80 px tall), touching and overlapping (the ``read-digits`` benchmark), any writer's habit
    (spacing, size, pen, slant, scanner: the whole-field reader's training mix), or, for a lone
    digit now and then, the MNIST image itself (either polarity, some paper around it).
    """
    from docsort.training.synth import degrade
    from docsort.training.train.digit_strings import compose_field

    rng = np.random.default_rng(seed)
    fields, truths = [], []
    for n in range(count):
        length = int(lengths[n % len(lengths)])
        style = rng.random()
        if length == 1 and style < 0.2:
            k = int(rng.integers(0, len(images)))
            digit = images[k] if rng.random() < 0.3 else 255 - images[k]
            image = np.pad(digit, int(rng.integers(0, 12)), constant_values=int(digit[0, 0]))
            fields.append(image.astype(np.uint8))
            truths.append(str(int(labels[k])))
            continue
        if style < 0.35:
            image, text = compose_field(images, labels, rng, length, (-0.1, 0.6), float(rng.uniform(30, 80)),
                                        int(rng.random() < 0.3))
            image = degrade.random_scan(image, rng, strength=0.6)
        elif style < 0.6:
            image, text = compose_field(images, labels, rng, length, (-0.3, 0.5), float(rng.uniform(28, 56)),
                                        int(rng.integers(0, 2)))
        else:
            lo = float(rng.uniform(-0.35, 0.6))
            slant = float(rng.uniform(0.0, 0.35))
            height = float(rng.uniform(18, 80))
            image, text = compose_field(
                images, labels, rng, length, (lo, lo + float(rng.uniform(0.05, 0.9))), height,
                int(rng.choice([-1, 0, 0, 0, 1, 1, 2])) if height > 36 else int(rng.choice([0, 0, 0, 1])),
                scan=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 0.0, slant=(-slant, slant),
                baseline_jitter=float(rng.uniform(0.0, 0.12)), scale_jitter=float(rng.uniform(0.05, 0.18)),
                ink=int(rng.uniform(0, 90)), paper=int(rng.uniform(190, 256)))
        fields.append(image)
        truths.append(text)
    return fields, truths


# ---------------------------------------------------------------- not numbers


def load_words(dhsd_dir: str | Path, writers: Sequence[int]) -> list[np.ndarray]:
    """The DHSD words of ``writers`` as grey images (names that hold a digit are left out)."""
    from docsort.training.synth.handwriting import load_dhsd

    return [image for image, text, _ in load_dhsd(dhsd_dir, writers=writers)
            if not any(c.isdigit() for c in text)]


def word_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A DHSD word as someone would cut it from a scan: the form's frame dropped, cropped to the
    ink with some paper, dark ink, at a scan's size; or, now and then, the file as it is."""
    if rng.random() < 0.25:
        return image
    ink = 255.0 - image.astype(np.float32)
    ink = np.clip(ink / max(1.0, float(ink.max())), 0, 1)
    ink[:, :4] = ink[:, -4:] = 0  # some scans carry the frame of the writing box at the edges
    ink[:3, :] = ink[-3:, :] = 0
    ys, xs = np.nonzero(ink > 0.3)
    if len(xs) == 0:
        return image
    pad = int(rng.integers(2, 12))
    ink = ink[max(0, ys.min() - pad):ys.max() + pad + 1, max(0, xs.min() - pad):xs.max() + pad + 1]
    scale = float(rng.uniform(30, 90)) / max(12, ys.max() - ys.min() + 1)
    ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return (255.0 * (1.0 - np.clip(ink * float(rng.uniform(1.0, 1.6)), 0, 1))).astype(np.uint8)


def _letters(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three letters of a word: a window of its ink about as wide as it is tall."""
    ys, xs = np.nonzero(word < 160)
    if len(xs) < 10:
        return word
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    width = int(min(x1 - x0, max(4, (y1 - y0) * rng.uniform(0.4, 1.6))))
    start = int(rng.integers(x0, max(x0 + 1, x1 - width + 1)))
    pad = 4
    return word[max(0, y0 - pad):y1 + pad, max(0, start - pad):start + width + pad]


def _capitals(words: Sequence[str], rng: np.random.Generator, single: bool) -> np.ndarray:
    """Hand-printed capitals (the project's pen): a word, or one letter that looks like no digit."""
    from docsort.training.synth import pen

    if single:
        letters = [c for c in "ACEFHJKMNPRUVWXY" if c not in DIGIT_LIKE_LETTERS]
        text = letters[int(rng.integers(0, len(letters)))]
    else:
        text = pen.supported(words[int(rng.integers(0, len(words)))]) or "STRASSE"
    image, _ = pen.write(text, float(rng.uniform(20, 70)), rng)
    return image


def _rule(rng: np.random.Generator) -> np.ndarray:
    """Lines that are no writing: a rule, an underline, a dashed line, an empty box, a wave."""
    h, w = int(rng.integers(24, 90)), int(rng.integers(40, 400))
    page = np.full((h, w), 255, np.uint8)
    thick = int(rng.integers(1, 5))
    shade = int(rng.integers(0, 120))
    kind = rng.integers(0, 5)
    y = int(rng.integers(h // 4, 3 * h // 4 + 1))
    if kind == 0:  # a straight rule, maybe tilted
        cv2.line(page, (2, y), (w - 3, y + int(rng.integers(-h // 4, h // 4 + 1))), shade, thick, cv2.LINE_AA)
    elif kind == 1:  # a dashed or dotted line
        step = int(rng.integers(6, 20))
        for x in range(2, w - 3, step):
            cv2.line(page, (x, y), (min(w - 3, x + step // 2), y), shade, thick, cv2.LINE_AA)
    elif kind == 2:  # an empty box or the bottom of one
        cv2.rectangle(page, (2, 2), (w - 3, h - 3), shade, thick)
    elif kind == 3:  # a wavy line
        xs = np.arange(2, w - 2)
        ys = y + (h / 6) * np.sin(xs / float(rng.uniform(5, 20)) + float(rng.uniform(0, 6)))
        cv2.polylines(page, [np.stack([xs, ys], 1).astype(np.int32)], False, shade, thick, cv2.LINE_AA)
    else:  # two or three parallel rules
        for k in range(int(rng.integers(2, 4))):
            yy = int((k + 1) * h / 4)
            cv2.line(page, (2, yy), (w - 3, yy), shade, thick, cv2.LINE_AA)
    return page


def _blank(rng: np.random.Generator) -> np.ndarray:
    """Empty paper: grain, uneven light, maybe a faint speck."""
    h, w = int(rng.integers(20, 100)), int(rng.integers(20, 300))
    paper = np.full((h, w), float(rng.uniform(180, 255)), np.float32)
    paper += np.linspace(0, float(rng.uniform(-30, 30)), w)[None, :]
    paper += rng.normal(0, float(rng.uniform(0, 10)), (h, w))
    if rng.random() < 0.4:
        cv2.circle(paper, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 3)),
                   float(rng.uniform(60, 160)), -1)
    return np.clip(paper, 0, 255).astype(np.uint8)


def _smudge(rng: np.random.Generator) -> np.ndarray:
    """A smudge, a blot, a scribble or a stain: ink that is no digit."""
    h, w = int(rng.integers(24, 100)), int(rng.integers(24, 260))
    ink = np.zeros((h, w), np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # soft smudges
        for _ in range(int(rng.integers(1, 4))):
            cv2.circle(ink, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(4, max(5, h // 2))),
                       float(rng.uniform(0.4, 1.0)), -1)
        ink = cv2.GaussianBlur(ink, (0, 0), float(rng.uniform(2, 8)))
    elif kind == 1:  # solid blots
        for _ in range(int(rng.integers(1, 3))):
            cv2.ellipse(ink, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                        (int(rng.integers(3, max(4, w // 3))), int(rng.integers(3, max(4, h // 2)))),
                        float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    elif kind == 2:  # a scribble: a pen wandering over the paper
        steps = int(rng.integers(20, 80))
        pts = np.cumsum(rng.normal(0, max(2.0, h / 8), (steps, 2)), axis=0)
        pts -= pts.min(axis=0)
        pts *= np.array([w - 6, h - 6]) / np.maximum(pts.max(axis=0), 1)
        cv2.polylines(ink, [(pts + 3).astype(np.int32)], False, 1.0, int(rng.integers(1, 5)), cv2.LINE_AA)
    else:  # a stain: a large faint blob with a darker rim
        centre = (w // 2 + int(rng.integers(-w // 4, w // 4 + 1)), h // 2)
        axes = (int(rng.integers(max(4, w // 5), max(5, w // 2))), int(rng.integers(max(4, h // 5), max(5, h // 2))))
        cv2.ellipse(ink, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.2, 0.5)), -1)
        cv2.ellipse(ink, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.5, 0.9)), 2)
        ink = cv2.GaussianBlur(ink, (0, 0), 1.5)
    return (255.0 * (1.0 - np.clip(ink, 0, 1))).astype(np.uint8)


def not_number_fields(words: Sequence[np.ndarray], texts: Sequence[str], count: int, seed: int
                      ) -> tuple[list[np.ndarray], list[str]]:
    """``count`` crops that hold no number, and their kinds (``NOT_NUMBER_KINDS``): about half
    real handwritten words, the rest bits of words, hand-printed capitals, lines, blanks and smudges."""
    from docsort.training.synth import degrade

    rng = np.random.default_rng(seed)
    shares = np.array([0.45, 0.15, 0.1, 0.06, 0.08, 0.06, 0.1])
    crops, kinds = [], []
    for _ in range(count):
        kind = NOT_NUMBER_KINDS[int(rng.choice(len(shares), p=shares / shares.sum()))]
        if kind == "word":
            crop = word_crop(words[int(rng.integers(0, len(words)))], rng)
        elif kind == "letters":
            crop = _letters(word_crop(words[int(rng.integers(0, len(words)))], rng), rng)
        elif kind in ("capitals", "capital"):
            crop = _capitals(texts, rng, single=kind == "capital")
        elif kind == "rule":
            crop = _rule(rng)
        elif kind == "blank":
            crop = _blank(rng)
        else:
            crop = _smudge(rng)
        if kind in ("capitals", "capital", "rule", "smudge") and rng.random() < 0.5:
            crop = degrade.random_scan(crop, rng, strength=0.6)
        crops.append(crop)
        kinds.append(kind)
    return crops, kinds


def word_fields(dhsd_dir: str | Path, writers: Sequence[int], count: int, seed: int) -> list[np.ndarray]:
    """``count`` real handwritten words of ``writers``, cut as ``word_crop`` cuts them."""
    rng = np.random.default_rng(seed)
    words = load_words(dhsd_dir, writers)
    picks = rng.choice(len(words), size=min(count, len(words)), replace=False)
    return [word_crop(words[int(i)], rng) for i in picks]


# ---------------------------------------------------------------- reading and fitting


def read_for_calibration(job: tuple[list[np.ndarray], list[Optional[int]]]) -> list[dict]:
    """Read fields as ``read-digits`` does, at their own length and, where given, at the asked
    length; per field the features of both models and what was read (small, picklable rows)."""
    from docsort.reading.digits import confidence as field_confidence
    from docsort.reading.digits import combine
    from docsort.reading.digits.strings import shared_reader

    fields, code_lengths = job
    inks = [combine.as_ink(f) for f in fields]
    wholes = shared_reader().read_inks(inks)
    free = combine.analyse_fields(inks, None, wholes=wholes)
    rows = [{"number": field_confidence.number_features(a, ink), "read": a.reading.digits,
             "combined": a.reading.confidence,
             "right": field_confidence.right_features(a, len(a.reading.digits), None)}
            for a, ink in zip(free, inks)]
    for length in sorted({n for n in code_lengths if n}):
        chosen = [i for i, n in enumerate(code_lengths) if n == length]
        read = combine.analyse_fields([inks[i] for i in chosen], length, wholes=[wholes[i] for i in chosen])
        for i, a in zip(chosen, read):
            rows[i]["known"] = {"length": length, "read": a.reading.digits, "combined": a.reading.confidence,
                                "right": field_confidence.right_features(a, len(free[i].reading.digits), length)}
    return rows


def read_all(fields: list[np.ndarray], code_lengths: list[Optional[int]], jobs: int = 1, progress=None,
             chunk: int = 50) -> list[dict]:
    """``read_for_calibration`` over many fields, in ``jobs`` worker processes."""
    from multiprocessing import get_context

    say = progress or (lambda line: None)
    parts = [(fields[k:k + chunk], code_lengths[k:k + chunk]) for k in range(0, len(fields), chunk)]
    rows: list[dict] = []
    if jobs > 1:
        with get_context("spawn").Pool(jobs) as pool:
            for part in pool.imap(read_for_calibration, parts):
                rows.extend(part)
                say(f"read {len(rows)}/{len(fields)} fields")
    else:
        for part in parts:
            rows.extend(read_for_calibration(part))
            say(f"read {len(rows)}/{len(fields)} fields")
    return rows


def asked_lengths(truths: Sequence[str], rng: np.random.Generator, other_share: float = 0.15) -> list[int]:
    """The code length a user gives with each field: its own, or now and then another one."""
    lengths = []
    for text in truths:
        n = len(text)
        if rng.random() < other_share:
            n = int(np.clip(n + rng.choice([-2, -1, 1, 2]), 1, max(LENGTHS)))
        lengths.append(n)
    return lengths


def _standardised_fit(rows: Sequence[dict], names: Sequence[str], products: Sequence[tuple[str, str]],
                      y: np.ndarray, weights: np.ndarray, l2: float) -> dict:
    """A logistic model on standardised features (and their products), as ``field_confidence``
    reads it: intercept, weights, and the mean and scale of each input."""
    from docsort.reading.digits.confidence import model_inputs
    from docsort.training.train.digit_strings import fit_logistic

    model = {"features": list(names), "products": [list(p) for p in products]}
    width = len(names) + len(products)
    raw = np.array([model_inputs({**model, "mean": np.zeros(width), "scale": np.ones(width)}, r) for r in rows])
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale[scale < 1e-9] = 1.0
    x = np.hstack([np.ones((len(rows), 1)), (raw - mean) / scale])
    w = fit_logistic(x, y, weights * len(y) / weights.sum(), l2=l2, iterations=200)
    model.update({"intercept": round(float(w[0]), 6), "weights": [round(float(v), 6) for v in w[1:]],
                  "mean": [round(float(v), 6) for v in mean], "scale": [round(float(v), 6) for v in scale]})
    return model


def fit_models(number_rows: list[dict], truths: list[str], other_rows: list[dict],
               number_share: float = NUMBER_SHARE, number_l2: float = 10.0, right_l2: float = 1.0) -> dict:
    """The two models from read rows.

    P(number): number fields against the rest, weighted as if ``number_share`` of the crops
    were numbers (its 69 inputs are held in by a stronger ridge). P(right): on every reading
    judged a number, of number fields (right when it is the truth) and of the rest (never
    right), weighted alike.
    """
    from itertools import combinations_with_replacement

    from docsort.reading.digits.confidence import NUMBER_PRODUCTS, NUMBER_THRESHOLD, probability

    rows = [r["number"] for r in number_rows + other_rows]
    y = np.r_[np.ones(len(number_rows)), np.zeros(len(other_rows))]
    weights = np.r_[np.full(len(number_rows), number_share / len(number_rows)),
                    np.full(len(other_rows), (1 - number_share) / len(other_rows))]
    number = _standardised_fit(rows, list(rows[0]), list(combinations_with_replacement(NUMBER_PRODUCTS, 2)),
                               y, weights, number_l2)
    p_number = np.array([probability(number, r) for r in rows])

    readings, right, reading_weights = [], [], []
    for k, row in enumerate(number_rows + other_rows):
        if p_number[k] < NUMBER_THRESHOLD:
            continue
        truth = truths[k] if k < len(number_rows) else None
        for read in [row] + ([row["known"]] if "known" in row else []):
            if read["read"]:  # no reading: confidence 0, nothing to fit
                readings.append({**read["right"], "number": _log_odds(p_number[k])})
                right.append(float(read["read"] == truth))
                reading_weights.append(weights[k])
    right_model = _standardised_fit(readings, list(readings[0]), [], np.array(right), np.array(reading_weights),
                                   right_l2)
    fitted = {"ridge": {"number": number_l2, "right": right_l2}, "readings": len(readings),
              "numbers_judged_not_numbers": float(np.mean(p_number[:len(number_rows)] < NUMBER_THRESHOLD)),
              "not_numbers_judged_numbers": float(np.mean(p_number[len(number_rows):] >= NUMBER_THRESHOLD))}
    return {"threshold": NUMBER_THRESHOLD, "number_share": number_share, "number": number, "right": right_model,
            "fit": fitted}


def _log_odds(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, float(p)))
    return float(np.log(p / (1 - p)))


def find_datasets(folder: str | Path) -> tuple[Path, Path]:
    """The MNIST folder and the DHSD folder under ``folder`` (as ``samples --handwriting`` finds them)."""
    folder = Path(folder)
    images = next(iter(sorted(folder.rglob("train-images-idx3-ubyte*"))), None)
    index = next(iter(sorted(folder.rglob("data.csv"))), None)
    if images is None:
        raise DatasetError(f"no MNIST training images (train-images-idx3-ubyte[.gz]) under {folder}")
    if index is None:
        raise DatasetError(f"no DHSD data.csv under {folder}")
    return images.parent, index.parent


def calibrate(data: str | Path, metrics_path: Path, out: Path, numbers: int = 2000, not_numbers: int = 800,
              seed: int = 11, jobs: int = 1, command: str = "", progress=None) -> dict:
    """Fit the field calibration on validation digits and DHSD training writers and write the
    metrics of ``metrics_path`` with it to ``out`` (``field_calibration``)."""
    from docsort.training.datasets import mnist
    from docsort.errors import OutputNotWritableError
    from docsort.reading.digits.confidence import combination_digest
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd

    say = progress or (lambda line: None)
    started = time.time()
    metrics = json.loads(Path(metrics_path).read_text())
    mnist_dir, dhsd_dir = find_datasets(data)
    dataset = mnist.load(mnist_dir)
    _, validation = mnist.train_validation_split(dataset.train)
    writers = dhsd_writer_split().train
    dhsd = load_dhsd(dhsd_dir, writers=writers)
    words = [image for image, text, _ in dhsd if not any(c.isdigit() for c in text)]
    rng = np.random.default_rng(seed + 2)
    fields, truths = number_fields(validation.images, validation.labels, numbers, seed)
    others, kinds = not_number_fields(words, [text for _, text, _ in dhsd], not_numbers, seed + 1)
    # Half the crops that are no number are read with a code length too, as a user may ask.
    other_lengths = [int(rng.integers(1, max(LENGTHS) + 1)) if rng.random() < 0.5 else None for _ in others]
    say(f"reading {numbers} number fields of MNIST validation digits and {not_numbers} crops that are no number")
    rows = read_all(fields + others, asked_lengths(truths, rng) + other_lengths, jobs, say)
    calibration = fit_models(rows[:numbers], truths, rows[numbers:])
    calibration["fit"] = {
        **calibration["fit"],
        "command": command,
        "data": (f"{numbers} number fields of 1-{max(LENGTHS)} digits composed from the {len(validation)} MNIST "
                 f"training digits held out for validation, each read without a code length and with one (its "
                 f"own, or 15 % of the time another); "
                 f"{not_numbers} crops that are no number: DHSD words of training writers {list(writers)}, "
                 "bits of them, hand-printed capitals, rules, blanks and smudges"),
        "numbers": numbers, "not_numbers": not_numbers,
        "not_number_kinds": {k: kinds.count(k) for k in NOT_NUMBER_KINDS},
        "seed": seed,
        "mnist_sha256": dataset.sha256,
        "combination_sha256": combination_digest(metrics),
        "seconds": round(time.time() - started, 1),
    }
    metrics["field_calibration"] = calibration
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(metrics, indent=2) + "\n")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {out}: {exc.strerror or exc}") from None
    return calibration
