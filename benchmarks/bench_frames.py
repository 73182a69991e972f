"""Codes in frames the envelope generator never draws, read by docsort and by the peers.

``--frame comb``: a form's comb, a writing line with short teeth rising between a code's cells
(customs declarations, registered-mail slips, order forms), five MNIST *test* digits one to a
cell (``docsort.training.synth.forms.comb_page``). ``--frame ring`` or ``box``: a frame drawn
by hand round the code, as people ring or box the code on an envelope (``hand_framed_page``).
``--frame groups``: no frame, the code written in two groups a word space apart (``114 55``, as
Sweden, Czechia, Slovakia and Greece write it; ``written_code_page``).
Each on an otherwise empty page, read by the real pipeline three ways:

- as shipped (the comb's teeth painted out with its line, ``page.clean._comb_teeth``; a frame
  drawn by hand painted out whole, ``page.clean.hand_frames``; two groups joined into one field,
  ``page.pipeline._two_groups``);
- with that step turned off, as the pipeline read them before;
- the same digits without the teeth or the frame, or evenly spaced: what the readers do then;

and by RapidOCR and Tesseract alone on the shipped pages (every answer counts as sent).

    python benchmarks/bench_frames.py --count 200 --frame comb
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


def pages(count: int, seed: int, frame: str):
    """``count`` (code, framed page, the same digits without the frame) of MNIST test digits."""
    from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
    from docsort.training.synth.forms import comb_page, hand_framed_page, written_code_page

    images = read_idx_images(DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(DATASETS / "mnist" / "t10k-labels-idx1-ubyte.gz")
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        code = "".join(str(d) for d in rng.integers(0, 10, 5))
        digits = [images[rng.choice(by_digit[int(d)])] for d in code]
        if frame == "groups":
            space = int(rng.uniform(0.8, 1.3) * 40)
            out.append((code, written_code_page(digits, [8, 8, 8 + space, 8]), written_code_page(digits, [8] * 4)))
        elif frame == "comb":
            tooth = int(rng.integers(10, 28))
            kw = dict(pitch=int(rng.integers(50, 66)), tooth=tooth, lift=int(rng.integers(3, 9)),
                      print_grey=int(rng.integers(90, 180)))
            out.append((code, comb_page(digits, **kw), comb_page(digits, teeth=False, **kw)))
        else:
            pitch = int(rng.integers(46, 60))
            framed = hand_framed_page(digits, np.random.default_rng(rng.integers(1 << 31)), frame, pitch=pitch)
            plain = comb_page(digits, pitch=pitch, teeth=False, lift=0, print_grey=250)
            out.append((code, framed, plain))
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
    parser.add_argument("--frame", choices=("comb", "ring", "box", "groups"), default="comb")
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    args = parser.parse_args()

    from docsort.page import clean
    from docsort.page.pipeline import Settings, read_page, warm_up

    made = pages(args.count, args.seed, args.frame)
    codes = [c for c, _, _ in made]
    settings = Settings()
    warm_up(settings)
    print(f"{args.count} pages, {args.frame} (seed {args.seed}), accept threshold {settings.threshold():.3f}")

    def read(index: int):
        start = time.perf_counter()
        found = [read_page(m[index], 1, settings)[0].postal_code for m in made]
        seconds = (time.perf_counter() - start) / len(made)
        return [f.value if f else None for f in found], [f.decision if f else None for f in found], seconds

    shipped = read(1)
    from docsort.page import pipeline

    module, step, off = {
        "comb": (clean, "_comb_teeth", lambda mask, rule, furniture, scale=1.0: None),
        "groups": (pipeline, "_two_groups", lambda boxes, following, count: False),
    }.get(args.frame, (clean, "hand_frames", lambda ink, printed=None: np.zeros(ink.shape, bool)))
    kept = getattr(module, step)
    setattr(module, step, off)
    left = read(1)
    setattr(module, step, kept)
    plain = read(2)
    what = {"comb": "teeth", "groups": "groups"}.get(args.frame, "frame")
    labels = (("groups joined (shipped)", "groups read apart", "the digits evenly spaced") if args.frame == "groups"
              else (f"{what} painted out (shipped)", f"{what} left on the page", f"the digits without {what}"))
    print(f"docsort, {labels[0]}: {shares(shipped[0], codes, shipped[1])} ({shipped[2]:.3f} s a page)")
    print(f"docsort, {labels[1]}: {shares(left[0], codes, left[1])}")
    print(f"docsort, {labels[2]}: {shares(plain[0], codes, plain[1])}")
    if args.peers:
        from peers import rapidocr_code, tesseract_code

        for name, peer in (("RapidOCR", rapidocr_code), ("Tesseract alone", tesseract_code)):
            answers = [peer(np.dstack([m[1]] * 3)) for m in made]
            print(f"{name} (every answer sent):   {shares(answers, codes)}")


if __name__ == "__main__":
    sys.exit(main())
