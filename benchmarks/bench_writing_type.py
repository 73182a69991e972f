"""Throughput of the printed/handwritten classifier: crops per second, batched, preprocessing included.

The crops are what the pipeline hands over: Tesseract's word boxes from the real printed scans
and DHSD words, mixed. Run from the repository root:

    python benchmarks/bench_writing_type.py [--crops 4000] [--model FILE] [--against DIR] [--int8]

``--against DIR`` also times the classifier of another models folder (DIR/writing_type.onnx and
the looks its manifest lists) in the same process, in alternating rounds, and prints the ratio of
each round, their median, and the ratio of each set's best round (the least disturbed, as timeit
takes it), by wall time and by CPU time: on a shared virtual machine, two sets timed minutes apart
in separate runs differ by as much as the load did. The same rounds are then run on crops
prepared once beforehand, for the ratio of the networks alone: preparing a crop costs both sets
the same, about as much as the shipped networks themselves.
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
    parser.add_argument("--int8", action="store_true",
                        help="also time the main network quantised to 8-bit integers (ONNX Runtime static "
                             "quantisation) against itself in float32, and count the crops it calls otherwise")
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
    if args.int8:
        int8_network(classifier, crops, args.repeats)


def compare(ours, theirs, crops, rounds: int, folder: Path) -> None:
    """Both classifiers timed in alternating rounds; the ratio of each round and the median, by
    wall time and by the process's CPU time (one thread: the networks run on the calling
    thread, so CPU time leaves out what other work on a shared machine took from it)."""
    theirs.p_handwritten(crops[:600])
    looks = 1 + len(theirs.second_look_models) + len(theirs.lone_character_models)
    ratios = {"wall": [], "cpu": []}
    best = {(clock, name): float("inf") for clock in ratios for name in ("ours", "theirs")}
    for i in range(rounds):
        times = {}
        for name, classifier in (("ours", ours), ("theirs", theirs)) if i % 2 == 0 else (("theirs", theirs),
                                                                                         ("ours", ours)):
            w0, c0 = time.perf_counter(), time.process_time()
            classifier.p_handwritten(crops)
            times["wall", name], times["cpu", name] = time.perf_counter() - w0, time.process_time() - c0
        for clock in ratios:
            ratios[clock].append(times[clock, "theirs"] / times[clock, "ours"])
            for name in ("ours", "theirs"):
                best[clock, name] = min(best[clock, name], times[clock, name])
        print(f"round {i + 1}: {len(crops) / times['wall', 'ours']:,.0f} crops/s against "
              f"{len(crops) / times['wall', 'theirs']:,.0f} ({folder}, {looks} networks): "
              f"{ratios['wall'][-1]:.2f}x wall, {ratios['cpu'][-1]:.2f}x CPU")
    for clock in ratios:
        print(f"{clock} time, median of {rounds} rounds: {float(np.median(ratios[clock])):.2f}x the throughput of "
              f"{folder}'s classifier (rounds {min(ratios[clock]):.2f}-{max(ratios[clock]):.2f}x); best round of each: "
              f"{len(crops) / best[clock, 'ours']:,.0f} against {len(crops) / best[clock, 'theirs']:,.0f} crops/s, "
              f"{best[clock, 'theirs'] / best[clock, 'ours']:.2f}x")
    networks_alone(ours, theirs, crops, rounds, folder)


def int8_network(classifier, crops, rounds: int) -> None:
    """The main network quantised to int8 (weights per channel, activations calibrated on 800 of
    the crops), timed against its float32 self on the same prepared crops, by CPU time.

    Whether int8 pays depends on the CPU: without VNNI instructions ONNX Runtime's int8
    convolutions are no faster than float32 ones."""
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from docsort.reading import engine
    from docsort.reading.writing_type import INPUT

    prepared = [classifier.prepare(c) for c in crops]
    source = classifier.model.path
    feed = classifier.model.input_name

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{feed: x} for _, x in engine.batches(prepared[:800], INPUT)])

        def get_next(self):
            return next(self.batches, None)

    def run(session) -> tuple[np.ndarray, float]:
        out = np.zeros(len(prepared), np.float32)
        c0 = time.process_time()
        for idx, x in engine.batches(prepared, INPUT):
            out[idx] = session.run(None, {feed: x})[0].reshape(-1)
        return out, time.process_time() - c0

    with tempfile.TemporaryDirectory() as tmp:
        pre, quantised = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(quantised), Calibration(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=True)
        sessions = {name: ort.InferenceSession(str(path), engine.session_options(1),
                                               providers=["CPUExecutionProvider"])
                    for name, path in (("float32", source), ("int8", quantised))}
        outputs, best = {}, {name: float("inf") for name in sessions}
        for i in range(rounds):
            for name in sorted(sessions, reverse=i % 2 == 1):
                outputs[name], seconds = run(sessions[name])
                best[name] = min(best[name], seconds)
    flips = int(np.sum((outputs["int8"] >= 0.5) != (outputs["float32"] >= 0.5)))
    print(f"main network in int8 against float32, one thread, best of {rounds}: "
          f"{len(crops) / best['int8']:,.0f} against {len(crops) / best['float32']:,.0f} crops/s "
          f"({best['float32'] / best['int8']:.2f}x); {flips} of {len(crops)} crops called otherwise, "
          f"largest change of P {float(np.abs(outputs['int8'] - outputs['float32']).max()):.3f}")


def networks_alone(ours, theirs, crops, rounds: int, folder: Path) -> None:
    """The same rounds with the crops prepared once beforehand: the networks' share alone.

    Both classifiers prepare crops with the same code, so that cost is common to both sides of
    the ratio above and pulls it towards 1; this says what the networks themselves changed."""
    prepared = [ours.prepare(c) for c in crops]
    ratios, best = [], {"ours": float("inf"), "theirs": float("inf")}
    for i in range(rounds):
        times = {}
        for name, classifier in (("ours", ours), ("theirs", theirs)) if i % 2 == 0 else (("theirs", theirs),
                                                                                         ("ours", ours)):
            c0 = time.process_time()
            classifier.p_handwritten_prepared(prepared)
            times[name] = time.process_time() - c0
            best[name] = min(best[name], times[name])
        ratios.append(times["theirs"] / times["ours"])
    print(f"networks alone (crops prepared once), cpu time, median of {rounds} rounds: "
          f"{float(np.median(ratios)):.2f}x {folder}'s networks (rounds {min(ratios):.2f}-{max(ratios):.2f}x); "
          f"best round of each: {len(crops) / best['ours']:,.0f} against {len(crops) / best['theirs']:,.0f} crops/s")


if __name__ == "__main__":
    sys.exit(main())
