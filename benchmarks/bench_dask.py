"""Dask against local workers, repeated and interleaved: one run of each is too noisy to tell 10 %.

On N synthetic envelopes it runs, ``--repeats`` times in turn: ``docsort process --jobs 2``, the
same on a fresh Dask cluster of two single-threaded workers with Dask's defaults, and on one with
the cluster started as the README says (no statistical profiler, quieter monitors). It prints each
run's wall time and the medians (``bench_process.py`` gives the single-run figures and memory).

    OMP_THREAD_LIMIT=1 python benchmarks/bench_dask.py --count 200 --seed 5 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_process import AS_THE_README_SAYS, dask_run, docsort_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--handwriting", type=Path,
                        default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets",
                        help="real handwriting for the envelopes (MNIST and DHSD)")
    args = parser.parse_args()
    from docsort.training.samples import write_samples

    runs: dict[str, list[float]] = {"--jobs 2": [], "Dask, Dask's defaults": [], "Dask as the README starts it": []}
    with tempfile.TemporaryDirectory(prefix="docsort-bench-dask-") as tmp:
        work = Path(tmp)
        envelopes = work / "envelopes"
        write_samples(envelopes, count=args.count, seed=args.seed, handwriting=args.handwriting)
        for repeat in range(args.repeats):
            runs["--jobs 2"].append(docsort_run(envelopes, work / "out-j2", "--jobs", "2")[0])
            runs["Dask, Dask's defaults"].append(dask_run(envelopes, work / "out-d0")[0])
            runs["Dask as the README starts it"].append(
                dask_run(envelopes, work / "out-d1", cluster_env=AS_THE_README_SAYS)[0])
            print(f"round {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in runs.items()), flush=True)
    base = statistics.median(runs["--jobs 2"])
    print(f"\n{args.count} envelopes (seed {args.seed}), {args.repeats} rounds; medians:\n")
    print("| run | median wall s | runs | vs --jobs 2 |\n|---|---:|---|---:|")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {', '.join(f'{v:.1f}' for v in values)} | {(median - base) / base:+.1%} |")


if __name__ == "__main__":
    main()
