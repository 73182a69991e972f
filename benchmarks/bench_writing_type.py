"""Throughput of the printed/handwritten classifier: crops per second, batched, preprocessing included.

The crops are what the pipeline hands over: Tesseract's word boxes from the real printed scans
and DHSD words, mixed. Run from the repository root:

    python benchmarks/bench_writing_type.py [--crops 4000] [--model FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DOCSORT_DATASETS", REPO.parent / "shared" / "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=4000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from docsort.training.evaluate.writing_type import real_scan_crops
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd
    from docsort.reading.writing_type import WritingTypeClassifier, prepare

    printed = [c["image"] for c in real_scan_crops(DATASETS / "tesseract-pages", (0.8, 1.0, 1.25))]
    handwritten = [img for img, _, _ in load_dhsd(DATASETS / "dhsd", dhsd_writer_split(0).validation)]
    pool = printed + handwritten
    rng = np.random.default_rng(0)
    crops = [pool[i] for i in rng.integers(0, len(pool), size=args.crops)]
    sizes = np.array([c.shape for c in crops])
    print(f"{len(crops)} crops ({len(printed)} distinct real printed, {len(handwritten)} distinct DHSD), "
          f"median size {int(np.median(sizes[:, 1]))}x{int(np.median(sizes[:, 0]))} px")

    classifier = WritingTypeClassifier(args.model)
    classifier.p_handwritten(crops[:600])  # traces the model once for each width bucket

    t0 = time.perf_counter()
    for _ in range(args.repeats):
        [prepare(c) for c in crops]
    prep_s = (time.perf_counter() - t0) / args.repeats
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        classifier.p_handwritten(crops)
        best = min(best, time.perf_counter() - t0)
    print(f"preprocessing only: {len(crops) / prep_s:,.0f} crops/s")
    print(f"p_handwritten (preprocessing + model, batched): {len(crops) / best:,.0f} crops/s "
          f"(best of {args.repeats}, {os.cpu_count()} CPU cores)")


if __name__ == "__main__":
    sys.exit(main())
