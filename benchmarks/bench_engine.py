"""Does reading on ONNX Runtime decide every envelope as reading on Keras would?

    python benchmarks/bench_engine.py --count 200 --seed 2025 --handwriting ../shared/datasets

Generates the envelopes of the envelope benchmark (``docsort samples --layout mixed``), or reads
``--samples DIR``, and runs the real pipeline (``process_document``) over every one twice: with the
engine as shipped (the ``.onnx`` networks on ONNX Runtime) and with each network replaced by the
``.keras`` it was exported from, run by Keras on the same batches. The Keras stand-in exists only
here: it is injected into this benchmark's worker processes, reading never sees it. Prints how
many pages get the same code, decision and code source, and the same printed/handwritten kind for
every crop, and the largest difference of any confidence and p_handwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
os.environ.setdefault("DOCSORT_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
_SETTINGS = None


class KerasNetwork:
    """A shipped network's ``.keras`` run by Keras, answering like ``engine.Network``."""

    def __init__(self, network):
        from docsort.reading import manifest
        from docsort.training.tf import keras

        self.path = network.path
        self.source = network.source
        self.threads = network.threads
        self.model = keras().models.load_model(manifest.models_dir() / network.source["file"], compile=False)

    def __call__(self, x):
        import numpy as np

        return np.asarray(self.model(x, training=False), np.float32)

    def run(self, crops, spec):
        from docsort.reading import engine

        out = [None] * len(crops)
        for index, x in engine.batches(crops, spec):
            for i, y in zip(index, self(x)):
                out[i] = y
        return out


def _use_keras() -> None:
    """Every network the manifest hands out becomes its Keras stand-in (this process only)."""
    from docsort.reading import manifest

    shipped_network = manifest.Manifest.network
    stand_ins = {}

    def network(self, name, spec):
        if name not in stand_ins:
            stand_ins[name] = KerasNetwork(shipped_network(self, name, spec))
        return stand_ins[name]

    manifest.Manifest.network = network


def _init(settings, keras: bool) -> None:
    global _SETTINGS
    if keras:
        _use_keras()
    from docsort.page.pipeline import warm_up

    _SETTINGS = settings
    warm_up(settings)


def _process(path: str):
    from docsort.page.pipeline import process_document

    return Path(path).name, process_document(path, _SETTINGS).to_dict()


def _read_all(files: list[str], settings, keras: bool, jobs: int) -> tuple[dict, float]:
    started = time.perf_counter()
    with get_context("spawn").Pool(jobs, initializer=_init, initargs=(settings, keras)) as pool:
        documents = dict(pool.map(_process, files, chunksize=4))
    return documents, time.perf_counter() - started


def _pages(document: dict) -> list[dict]:
    return document.get("pages") or []


def compare(onnx: dict, keras: dict) -> dict:
    """Pages and crops decided alike, and how far any probability moved."""
    counts = {"pages": 0, "same_code": 0, "same_decision": 0, "same_source": 0, "same_kinds": 0,
              "crops": 0, "same_kind": 0, "identical_pages": 0}
    worst = {"confidence": 0.0, "p_handwritten": 0.0}
    differing = []
    for name in sorted(onnx):
        for ours, theirs in zip(_pages(onnx[name]), _pages(keras[name])):
            counts["pages"] += 1
            code, other = ours.get("postal_code") or {}, theirs.get("postal_code") or {}
            same = {key: code.get(key) == other.get(key) for key in ("value", "decision", "source")}
            counts["same_code"] += same["value"]
            counts["same_decision"] += same["decision"]
            counts["same_source"] += same["source"]
            kinds = [c["kind"] for c in ours["crops"]] == [c["kind"] for c in theirs["crops"]]
            counts["same_kinds"] += kinds
            for a, b in zip(ours["crops"], theirs["crops"]):
                counts["crops"] += 1
                counts["same_kind"] += a["kind"] == b["kind"]
                worst["p_handwritten"] = max(worst["p_handwritten"], abs(a["p_handwritten"] - b["p_handwritten"]))
            if code.get("confidence") is not None and other.get("confidence") is not None:
                worst["confidence"] = max(worst["confidence"], abs(code["confidence"] - other["confidence"]))
            if all(same.values()) and kinds and len(ours["crops"]) == len(theirs["crops"]):
                counts["identical_pages"] += 1
            else:
                differing.append(f"{name} p{ours['page']}: {code.get('value')}/{code.get('decision')} on ONNX, "
                                 f"{other.get('value')}/{other.get('decision')} on Keras")
    return {**counts, "largest_difference": worst, "differing": differing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="envelopes to generate (default 200)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--layout", default="mixed")
    parser.add_argument("--handwriting", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--samples", type=Path, help="read these envelopes instead of generating them")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    from docsort.cost.model import default_accept_threshold
    from docsort.page.pipeline import Settings
    from docsort.training.samples import load_truth, write_samples

    folder = args.samples
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="docsort-bench-engine-"))
        write_samples(folder, count=args.count, seed=args.seed, handwriting=args.handwriting, layout=args.layout)
    files = [str(folder / name) for name in sorted(load_truth(folder))]
    settings = Settings(accept_threshold=default_accept_threshold())
    onnx, onnx_seconds = _read_all(files, settings, keras=False, jobs=args.jobs)
    keras, keras_seconds = _read_all(files, settings, keras=True, jobs=args.jobs)
    result = compare(onnx, keras)
    n = result["pages"]
    print(f"{len(files)} envelopes in {folder} ({n} pages), accept threshold {settings.accept_threshold:g}")
    print(f"pipeline wall time: ONNX Runtime {onnx_seconds:.1f} s, Keras stand-in {keras_seconds:.1f} s "
          f"({args.jobs} worker{'s' if args.jobs > 1 else ''}, DOCSORT_THREADS={os.environ['DOCSORT_THREADS']})")
    print("| measure | same on ONNX Runtime and Keras |\n|---|---:|")
    for key, label in (("same_code", "destination code"), ("same_decision", "decision (auto/manual)"),
                       ("same_source", "code source (printed/handwritten)"),
                       ("same_kinds", "every crop's kind on the page"), ("identical_pages", "all of these")):
        print(f"| {label} | {result[key]} of {n} pages |")
    print(f"| crop kinds | {result['same_kind']} of {result['crops']} crops |")
    print(f"| largest difference of a code confidence | {result['largest_difference']['confidence']:.2g} |")
    print(f"| largest difference of a p_handwritten | {result['largest_difference']['p_handwritten']:.2g} |")
    for line in result["differing"]:
        print("differs:", line)
    sys.exit(0 if result["identical_pages"] == n else 1)


if __name__ == "__main__":
    main()
