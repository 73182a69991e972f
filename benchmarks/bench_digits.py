"""Digit reader throughput: digits per second for the model alone and for to_mnist + model.

    python benchmarks/bench_digits.py [--data DIR] [--count N] [--repeats R]

Prints one line per measurement. The model-only figure feeds batches of already-MNIST-format
test digits to ``DigitReader.predict_proba``; the full figure starts from digits as a scanner
cuts them from a page (dark ink on light paper at 3x, degraded) and includes ``to_mnist``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def best_rate(run, count: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST folder or mnist.npz (default: the usual places)")
    parser.add_argument("--count", type=int, default=20000, help="digits per model-only run")
    parser.add_argument("--scanned", type=int, default=3000, help="digits per to_mnist + model run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from docsort.training.datasets import mnist
    from docsort.reading.digits.mnist_model import DigitReader
    from docsort.reading.digits.mnist_format import to_mnist_batch
    from docsort.training.datasets.augment import scanned_paper

    test = mnist.load(args.data).test
    digits = np.concatenate([test.images] * (args.count // len(test) + 1))[: args.count]
    reader = DigitReader()
    reader.predict_proba(digits[:2048])

    rate = best_rate(lambda: reader.predict_proba(digits), len(digits), args.repeats)
    print(f"predict_proba (batched, MNIST-format): {rate:,.0f} digits/s over {len(digits):,} digits")

    page = digits[:5]
    reader.predict_proba(page)
    page_rate = best_rate(lambda: reader.predict_proba(page), 5 * 1, args.repeats * 5)
    print(f"predict_proba (one 5-digit postal code): {page_rate:,.0f} digits/s "
          f"({5 / page_rate * 1000:.1f} ms per code)")

    rng = np.random.default_rng(0)
    papers = [scanned_paper(img, rng) for img in digits[: args.scanned]]
    prep_rate = best_rate(lambda: to_mnist_batch(papers), len(papers), args.repeats)
    print(f"to_mnist alone (scanned 84x84 crops): {prep_rate:,.0f} digits/s")
    full_rate = best_rate(lambda: reader.read_digit_images(papers), len(papers), args.repeats)
    print(f"to_mnist + predict_proba (scanned crops): {full_rate:,.0f} digits/s over {len(papers):,} digits")
    print(f"cpu cores: {os.cpu_count()}, DOCSORT_THREADS={os.environ.get('DOCSORT_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
