"""Throughput of the printed/handwritten classifier: crops per second, batched, preprocessing included.

The crops are what the pipeline hands over: Tesseract's word boxes from the real printed scans
and DHSD words, mixed. Run from the repository root:

    python benchmarks/bench_writing_type.py [--crops 4000] [--model FILE] [--against DIR]

``--against DIR`` also times the classifier of another models folder (DIR/writing_type.onnx and
the looks its manifest lists) in the same process, in alternating rounds, and prints the ratio of
each round, their median, and the ratio of each set's best round (the least disturbed, as timeit
takes it): on a shared virtual machine, two sets timed minutes apart in separate runs differ by
as much as the load did.
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
    parser.add_argument("--against", type=Path, default=None,
                        help="a models folder whose classifier is timed alongside, round by round")
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
    if args.against is not None:
        compare(classifier, WritingTypeClassifier(str(args.against / "writing_type.onnx")), crops, args.repeats,
                args.against)


def compare(ours, theirs, crops, rounds: int, folder: Path) -> None:
    """Both classifiers timed in alternating rounds; the ratio of each round and the median."""
    theirs.p_handwritten(crops[:600])
    looks = 1 + len(theirs.second_look_models) + len(theirs.lone_character_models)
    ratios, best = [], {"ours": float("inf"), "theirs": float("inf")}
    for i in range(rounds):
        times = {}
        for name, classifier in (("ours", ours), ("theirs", theirs)) if i % 2 == 0 else (("theirs", theirs),
                                                                                         ("ours", ours)):
            t0 = time.perf_counter()
            classifier.p_handwritten(crops)
            times[name] = time.perf_counter() - t0
            best[name] = min(best[name], times[name])
        ratios.append(times["theirs"] / times["ours"])
        print(f"round {i + 1}: {len(crops) / times['ours']:,.0f} crops/s against {len(crops) / times['theirs']:,.0f} "
              f"({folder}, {looks} networks): {ratios[-1]:.2f}x")
    print(f"median of {rounds} rounds: {float(np.median(ratios)):.2f}x the throughput of {folder}'s classifier; "
          f"best round of each: {len(crops) / best['ours']:,.0f} against {len(crops) / best['theirs']:,.0f} crops/s, "
          f"{best['theirs'] / best['ours']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
