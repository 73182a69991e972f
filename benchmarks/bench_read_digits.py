"""Whole number fields: docsort's ``read-digits`` next to Tesseract alone and RapidOCR.

The fields are strings of real MNIST test digits composed by the project's own composer, in
two styles, each length in turn:

- ``apart``: codes as they stand on envelopes (``digit_fields.compose_strings``: digits apart,
  sometimes touching, 30-80 px tall, scanned), the strings the shipped trade-off is measured on;
- ``touching``: touching and overlapping neighbours, 28-56 px, unscanned
  (``compose_digit_string`` as in ``bench_envelopes.py --strings``).

Only plain digit strings are measured here. Fields with separators, marks, frames and
patterned paper (the held-out ``cheque`` family among them) are ``bench_strings.py``'s.

Readers, each given the crop alone (no length, no directory):

- docsort ``read-digits`` (``read_number_fields``, batched as the command reads its files), and
  with ``--code-length`` set to the field's length;
- Tesseract alone: ``--psm 7`` with a digits whitelist;
- RapidOCR as called by default (detection, then recognition) and recognition alone
  (``use_det=False``: the whole crop as one line), one thread, no angle classifier.

Exactly right is the reader's digits equal to the truth. For the peers: ``raw`` is the text as
recognised (spaces or letters make it wrong), ``digits`` that text with non-digits removed,
``mapped`` with the look-alikes O, S, I, l, B, Z, / and | read as digits first (``peers.FieldText``).

    python benchmarks/bench_read_digits.py --count 300 --data ../shared/datasets/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
os.environ.setdefault("DOCSORT_TF_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

STYLES = ("apart", "touching")


def compose(style: str, images: np.ndarray, labels: np.ndarray, count: int, length: int,
            seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``count`` fields of ``length`` MNIST digits in one style, and their digits."""
    if style == "apart":
        try:
            from docsort.training.datasets.digit_fields import compose_strings
        except ImportError:  # before the number-field datasets moved out of the trade-off
            from docsort.training.evaluate.tradeoff import compose_strings
        fields, _, truths = compose_strings(images, labels, count, seed, length)
        return fields, truths
    from docsort.training.synth.handwriting import compose_digit_string

    rng = np.random.default_rng(seed)
    fields, truths = [], []
    for _ in range(count):
        idx = rng.integers(0, len(labels), size=length)
        image, _ = compose_digit_string([images[i] for i in idx], rng, gap=(-0.3, 0.5),
                                        height=float(rng.uniform(28, 56)), stroke=int(rng.integers(0, 2)))
        fields.append(image)
        truths.append("".join(str(int(labels[i])) for i in idx))
    return fields, truths


def read_all(fields: list[np.ndarray], length: int, detect: bool) -> tuple[dict, dict]:
    """Every reader's answers ({variant: [digits]}) and its seconds for the fields."""
    from peers import rapidocr_string, tesseract_string

    from docsort.reading.digits.confidence import read_number_fields

    answers: dict = {}
    seconds: dict = {}
    start = time.perf_counter()
    answers["docsort_read_digits"] = [a.reading.digits for a in read_number_fields(fields)]
    seconds["docsort_read_digits"] = time.perf_counter() - start
    start = time.perf_counter()
    answers["docsort_read_digits_code_length"] = [a.reading.digits for a in read_number_fields(fields, length)]
    seconds["docsort_read_digits_code_length"] = time.perf_counter() - start
    peers = [("tesseract_alone", tesseract_string), ("rapidocr_rec_only", lambda f: rapidocr_string(f, detect=False))]
    if detect:
        peers.append(("rapidocr", rapidocr_string))
    for name, read in peers:
        start = time.perf_counter()
        texts = [read(f) for f in fields]
        seconds[name] = time.perf_counter() - start
        answers[f"{name}_raw"] = [t.raw for t in texts]
        answers[f"{name}_digits"] = [t.digits for t in texts]
        if name != "tesseract_alone":  # its whitelist leaves no letters to map
            answers[f"{name}_mapped"] = [t.mapped for t in texts]
    return answers, seconds


def warm_up(images: np.ndarray, labels: np.ndarray) -> None:
    """Load every model before the clock runs."""
    fields, _ = compose("apart", images, labels, 2, 5, 0)
    read_all(fields, 5, detect=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="fields in all, shared by styles and lengths")
    parser.add_argument("--lengths", default="1,3,5,7,10", help="digits per field, comma-separated")
    parser.add_argument("--styles", default=",".join(STYLES), help="apart, touching or both")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--data", default=None, help="MNIST folder or mnist.npz (default: the usual places)")
    parser.add_argument("--no-detect", dest="detect", action="store_false",
                        help="skip RapidOCR's default call (detection first), by far the slowest reader")
    args = parser.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    styles = [s for s in args.styles.split(",") if s]
    if any(s not in STYLES for s in styles):
        parser.error(f"--styles takes {', '.join(STYLES)}")

    from docsort.training.datasets import mnist

    test = mnist.load(args.data).test
    warm_up(test.images, test.labels)
    per_cell = max(1, args.count // (len(styles) * len(lengths)))
    report: dict = {"fields_per_style_and_length": per_cell, "data": "MNIST test digits",
                    "separators": "none: the project has no generator of strings with separators or marks"}
    seconds: dict = {}
    n_all = 0
    for style in styles:
        rows: dict = {}
        by_length = {}
        for length in lengths:
            fields, truths = compose(style, test.images, test.labels, per_cell, length, args.seed * 100 + length)
            answers, took = read_all(fields, length, args.detect)
            for name, s in took.items():
                seconds[name] = seconds.get(name, 0.0) + s
            n_all += len(fields)
            right = {name: [a == t for a, t in zip(got, truths)] for name, got in answers.items()}
            for name, hits in right.items():
                rows.setdefault(name, []).extend(hits)
            by_length[length] = {name: round(float(np.mean(hits)), 4) for name, hits in right.items()}
        report[style] = {"n": sum(len(v) for v in rows.values()) // len(rows),
                         "exact": {name: round(float(np.mean(hits)), 4) for name, hits in rows.items()},
                         "exact_by_length": by_length}
    report["ms_per_field_one_thread"] = {name: round(1000 * s / n_all, 1) for name, s in seconds.items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
