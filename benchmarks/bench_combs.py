"""Codes written into a form's comb, read by docsort and by the peers.

A comb is a writing line with short teeth rising between a code's cells (customs declarations,
registered-mail slips, order forms); the envelope generator draws none, so these pages are made
here (``docsort.training.synth.forms.comb_page``): five MNIST *test* digits one to a cell, on an
otherwise empty page. Each page is read by the real pipeline three ways:

- as shipped (the comb's teeth painted out with its line, ``page.clean._comb_teeth``);
- with the teeth left on the page (``_comb_teeth`` turned off), what the pipeline did before;
- the same digits on the line alone, without teeth: what the readers do with no comb at all;

and by RapidOCR and Tesseract alone on the shipped pages (every answer counts as sent).

    python benchmarks/bench_combs.py --count 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
os.environ.setdefault("DOCSORT_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DOCSORT_DATASETS", REPO.parent / "shared" / "datasets"))


def pages(count: int, seed: int):
    """``count`` (code, comb page, the same without teeth) of MNIST test digits."""
    from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
    from docsort.training.synth.forms import comb_page

    images = read_idx_images(DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(DATASETS / "mnist" / "t10k-labels-idx1-ubyte.gz")
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        code = "".join(str(d) for d in rng.integers(0, 10, 5))
        digits = [images[rng.choice(by_digit[int(d)])] for d in code]
        tooth = int(rng.integers(10, 28))
        kw = dict(pitch=int(rng.integers(50, 66)), tooth=tooth, lift=int(rng.integers(3, 9)),
                  print_grey=int(rng.integers(90, 180)))
        out.append((code, comb_page(digits, **kw), comb_page(digits, teeth=False, **kw)))
    return out


def shares(answers, codes, decisions=None) -> str:
    right = [a == c for a, c in zip(answers, codes)]
    if decisions is None:
        wrong = [a is not None and a != c for a, c in zip(answers, codes)]
        return f"right {np.mean(right):.1%}, wrong {np.mean(wrong):.1%}, none {np.mean([a is None for a in answers]):.1%}"
    auto = [r and d == "auto" for r, d in zip(right, decisions)]
    wrong_auto = [a is not None and a != c and d == "auto" for a, c, d in zip(answers, codes, decisions)]
    return f"right and auto {np.mean(auto):.1%}, right at any decision {np.mean(right):.1%}, wrong auto {np.mean(wrong_auto):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    args = parser.parse_args()

    from docsort.page import clean
    from docsort.page.pipeline import Settings, read_page, warm_up

    made = pages(args.count, args.seed)
    codes = [c for c, _, _ in made]
    settings = Settings()
    warm_up(settings)
    print(f"{args.count} comb pages (seed {args.seed}), accept threshold {settings.threshold():.3f}")

    def read(index: int):
        start = time.perf_counter()
        found = [read_page(m[index], 1, settings)[0].postal_code for m in made]
        seconds = (time.perf_counter() - start) / len(made)
        return [f.value if f else None for f in found], [f.decision if f else None for f in found], seconds

    shipped = read(1)
    teeth_on = clean._comb_teeth
    clean._comb_teeth = lambda mask, rule, furniture: None
    left = read(1)
    clean._comb_teeth = teeth_on
    plain = read(2)
    print(f"docsort, teeth painted out (shipped): {shares(shipped[0], codes, shipped[1])} ({shipped[2]:.3f} s a page)")
    print(f"docsort, teeth left on the page:      {shares(left[0], codes, left[1])}")
    print(f"docsort, the line without teeth:      {shares(plain[0], codes, plain[1])}")
    if args.peers:
        from peers import rapidocr_code, tesseract_code

        for name, peer in (("RapidOCR", rapidocr_code), ("Tesseract alone", tesseract_code)):
            answers = [peer(np.dstack([m[1]] * 3)) for m in made]
            print(f"{name} (every answer sent):   {shares(answers, codes)}")


if __name__ == "__main__":
    sys.exit(main())
