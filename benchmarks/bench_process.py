"""Throughput, memory and start-up of ``docsort process``, next to Tesseract alone.

    python benchmarks/bench_process.py --count 200

On N synthetic envelopes (``docsort.training.samples``) it measures, each on the same files:
- Tesseract alone (``tesseract IMAGE stdout --psm 11 tsv``), 1 and 2 processes at a time;
- ``docsort process --jobs 1`` and ``--jobs 2`` (wall time of the whole command), and the
  ratio ``--jobs 1`` / Tesseract alone: reading a page costs at most what Tesseract alone
  costs on it (target <= 1.0), wall time and CPU time (all processes of the command, from
  /proc, so that other work on the machine does not blur it);
- ``docsort process --scheduler`` on a local Dask cluster of 2 single-threaded workers,
  checking that its documents equal the ``--jobs 2`` run's;
- peak RSS of every worker process (VmHWM, polled from /proc);
- crops/s of every shipped network on one thread (whole batches, as the pipeline calls them):
  ONNX Runtime as reading runs them, Keras, and the numpy engine reading used before
  (``--models-only`` measures this alone);
- cold start of ``docsort --help`` and of one ``process`` call on one envelope, and the time
  two runs that cannot start (no models, no scheduler) take to fail.

Each run is made ``--repeat`` times (default 2), interleaved; a time is the fastest of its runs
and a peak memory the largest. It prints a table and writes ``benchmarks/RESULTS.md`` with the
machine it ran on. Run it on an otherwise idle machine: every figure but CPU time is wall-clock
time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import psutil

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_THREAD_LIMIT": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
DOCSORT = [sys.executable, "-m", "docsort"]


class ProcessTree:
    """Polls VmHWM (the kernel's own peak RSS) of every process below ``pid``, their USS, and
    the CPU time of ``pid`` and every process below it.

    RSS counts TensorFlow's shared-library pages in every worker; USS (memory unique to the
    process) is what each additional worker really costs. CPU time is each process's own
    (utime + stime) as last seen: a batch kills its workers, so their Tesseract processes are
    never waited for and ``RUSAGE_CHILDREN`` would leave them out.
    """

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self.uss: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self._polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                children = psutil.Process(self.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            for pid in [self.pid, *(child.pid for child in children)]:
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    self.cpu[pid] = seconds
            for child in children:
                try:
                    with open(f"/proc/{child.pid}/status") as fh:
                        fields = dict(line.split(":", 1) for line in fh)
                    peak = int(fields["VmHWM"].split()[0]) * 1024
                    name = " ".join(child.cmdline()[:3])
                except (OSError, KeyError, ValueError, psutil.Error):
                    continue
                self.peaks[child.pid] = (name, max(peak, self.peaks.get(child.pid, ("", 0))[1]))
                if self._polls % 10 == 0 and "tesseract" not in name:
                    try:
                        uss = child.memory_full_info().uss
                    except psutil.Error:
                        continue
                    self.uss[child.pid] = max(uss, self.uss.get(child.pid, 0))
            self._polls += 1
            self._stop.wait(self.interval)

    def stop(self) -> dict[int, tuple[str, int]]:
        self._stop.set()
        self._thread.join()
        return self.peaks

    def max_uss_mib(self) -> float:
        return max(self.uss.values(), default=0) / 2**20

    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int):
    """utime + stime of one process (not of its children), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def timed(command: list[str], env=None) -> tuple[float, subprocess.CompletedProcess, ProcessTree]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or ENV)
    tree = ProcessTree(process.pid)
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    tree.stop()
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if process.returncode not in (0, 3):
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}\n{stderr}")
    return elapsed, result, tree


def worker_peak_mib(peaks: dict[int, tuple[str, int]]) -> float:
    """Largest peak RSS among docsort's worker processes (not Tesseract, not the parent)."""
    workers = [peak for name, peak in peaks.values() if "tesseract" not in name]
    return max(workers, default=0) / 2**20


def tesseract_alone(images: list[Path], processes: int) -> tuple[float, float]:
    """Wall time and CPU time of Tesseract on every image, one process per image."""
    def one(image: Path) -> None:
        subprocess.run(["tesseract", str(image), "stdout", "--psm", "11", "tsv"], env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(one, images))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def docsort_run(inputs: Path, out: Path, *options: str, env: Optional[dict] = None
                ) -> tuple[float, tuple[float, float], dict, float]:
    """Wall time, (peak RSS, peak USS) of the largest worker in MiB, the results, and the CPU
    time of all the command's processes."""
    shutil.rmtree(out, ignore_errors=True)
    elapsed, _, tree = timed([*DOCSORT, "process", str(inputs), "--out", str(out), "-q", *options],
                             env={**ENV, **env} if env else None)
    memory_mib = (worker_peak_mib(tree.peaks), tree.max_uss_mib())
    return elapsed, memory_mib, json.loads((out / "results.json").read_text()), tree.cpu_seconds()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A Dask cluster as the README starts it: without the workers' statistical profiler, which
# samples the stack of the running task every 10 ms, and with the event-loop watchdog and the
# system monitor of scheduler and workers at 1 s and 5 s instead of 20 ms and 0.5 s (measured
# beside a cluster with Dask's defaults).
AS_THE_README_SAYS = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                      "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
                      "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s"}


def dask_run(inputs: Path, out: Path, workers: int = 2, cluster_env: Optional[dict] = None
             ) -> tuple[float, tuple[float, float], dict]:
    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{free_port()}"
    logs = open(os.devnull, "wb")
    cluster = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                 "--no-dashboard"], stdout=logs, stderr=logs, env={**ENV, **(cluster_env or {})},
                                start_new_session=True)]
    for _ in range(workers):
        cluster.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                                         "--no-dashboard", "--host", "127.0.0.1"],
                                        stdout=logs, stderr=logs, env={**ENV, **(cluster_env or {})},
                                        start_new_session=True))
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        shutil.rmtree(out, ignore_errors=True)
        elapsed, _, _ = timed([*DOCSORT, "process", str(inputs), "--out", str(out), "-q", "--scheduler", address])
        peaks, uss = {}, []
        for process in cluster[1:]:
            with open(f"/proc/{process.pid}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh)
            peaks[process.pid] = ("dask worker", int(fields["VmHWM"].split()[0]) * 1024)
            uss.append(psutil.Process(process.pid).memory_full_info().uss / 2**20)
    finally:
        for process in cluster:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in cluster:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    return elapsed, (worker_peak_mib(peaks), max(uss)), json.loads((out / "results.json").read_text())


# The numpy engine reading used before ONNX Runtime, as it was at this commit (benchmark only).
NUMPY_ENGINE_COMMIT = "02d9219"
# Input width per role for the throughput figures: a typical word, a lone character, a 5-digit
# field; and the batch every runtime gets (whole batches, as the earlier figures were measured).
ROLE_WIDTHS = {"writing_type": 96, "writing_type.second_look": 96, "writing_type.lone_characters": 48,
               "digit_strings.member": 192}
ROLE_BATCHES = {"digit_strings.member": 64}
BATCH = 256

MODEL_THROUGHPUT = """
import json, os, sys, time
import numpy as np
from docsort.reading import engine, manifest
from docsort.reading.digits import mnist_model, strings
from docsort.reading import writing_type
from docsort.training.tf import keras
sys.path.insert(0, {scratch!r})
import numpy_engine

specs = {{"digits": mnist_model.INPUT, "digit_strings.member": strings.INPUT}}
widths = {widths!r}
batches = {batches!r}
models = manifest.shipped()
out = {{}}


def rate(call, x, seconds=0.5):
    runs, started = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - started < seconds:
        call(x)
        runs += 1
    return len(x) * runs / (time.perf_counter() - started)


for name, entry in models.models.items():
    if entry["role"] == manifest.ROLE_LINE_READER:  # shipped as published: no Keras model to compare
        continue
    spec = specs.get(entry["role"], writing_type.INPUT)
    width = widths.get(entry["role"], spec.width)
    rng = np.random.default_rng(0)
    crops = [rng.random((spec.height, width), dtype=np.float32) for _ in range(batches.get(entry["role"], {batch}))]
    x = engine.stack(crops, spec.bucket(width), spec)
    network = models.network(name, spec)
    # ONNX Runtime as reading runs it: the crops batched by the engine; the others on the whole batch.
    runners = {{"onnx": lambda _: network.run(crops, spec),
               "keras": keras().models.load_model(manifest.keras_path(name), compile=False).predict_on_batch}}
    try:  # the old engine knows only the layers the networks of its day used
        runners["numpy"] = numpy_engine.load(manifest.keras_path(name), threads=1).predict_on_batch
    except numpy_engine.UnsupportedModel:
        pass
    for run in runners.values():
        run(x)
    # Rounds in turn, the best of each: other work on the machine slows a round, never speeds one.
    best = {{engine_name: 0.0 for engine_name in runners}}
    for _ in range({rounds}):
        for engine_name, run in runners.items():
            best[engine_name] = max(best[engine_name], rate(run, x))
    out[name] = {{"input": "x".join(map(str, x.shape)), "numpy": None, **best}}
print(json.dumps(out))
"""


def model_throughput(rounds: int = 6) -> dict[str, dict]:
    """Crops per second of every shipped network on 256 crops (64 fields) of a typical width, on
    one thread, as workers are deployed: ONNX Runtime as reading runs it (the engine stacks and
    batches the crops, ``InputSpec.batch`` at a time), and the whole batch at once on the same
    network in Keras and on the numpy engine reading used before; half-second runs of each in
    turn, the best of ``rounds``."""
    with tempfile.TemporaryDirectory(prefix="docsort-bench-models-") as scratch:
        old = subprocess.run(["git", "show", f"{NUMPY_ENGINE_COMMIT}:docsort/runtime.py"], cwd=HERE.parent,
                             capture_output=True, text=True, check=True).stdout
        Path(scratch, "numpy_engine.py").write_text(old)
        code = MODEL_THROUGHPUT.format(scratch=scratch, widths=ROLE_WIDTHS, batches=ROLE_BATCHES, batch=BATCH,
                                       rounds=rounds)
        env = {**ENV, "DOCSORT_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if result.returncode:
            raise SystemExit(f"model throughput failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def throughput_table(crops: dict[str, dict]) -> str:
    """The throughput per network, with the targets: ONNX >= Keras and >= 2.5x the numpy engine."""
    lines = ["| network | crops (whole batch) | ONNX Runtime crops/s | Keras crops/s | numpy engine crops/s "
             "| ONNX / Keras (target >= 1) | ONNX / numpy (target >= 2.5) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in crops.items():
        # None: a network the numpy engine cannot run (a stride-2 convolution, which it never had).
        numpy_rate, numpy_ratio = ((f"{r['numpy']:,.0f}", f"{r['onnx'] / r['numpy']:.2f}") if r["numpy"]
                                   else ("-", "-"))
        lines.append(f"| {name} | {r['input']} | {r['onnx']:,.0f} | {r['keras']:,.0f} | {numpy_rate} "
                     f"| {r['onnx'] / r['keras']:.2f} | {numpy_ratio} |")
    return "\n".join(lines)


def cold_starts(envelope: Path, work: Path) -> dict[str, float]:
    helps = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([*DOCSORT, "--help"], stdout=subprocess.DEVNULL, env=ENV, check=True)
        helps.append(time.perf_counter() - started)
    single = work / "single"
    single.mkdir(exist_ok=True)
    shutil.copy(envelope, single / envelope.name)
    processes, tesseracts = [], []
    for _ in range(3):
        # Not watched by a ProcessTree: its polling of /proc takes a core from a start-up that
        # lasts well under a second.
        shutil.rmtree(work / "single-out", ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([*DOCSORT, "process", str(single), "--out", str(work / "single-out"), "-q", "--jobs", "1"],
                       env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(time.perf_counter() - started)
        tesseracts.append(tesseract_alone([envelope], 1)[0])
    # Runs that cannot start: a models folder without its manifest, a scheduler port where
    # nothing listens. Each must fail with its one line in about the time --help takes.
    errors = {}
    for name, options, env in (("missing models", [], {"DOCSORT_MODELS": str(work / "no-models")}),
                               ("dead scheduler", ["--scheduler", f"tcp://127.0.0.1:{free_port()}"], {})):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run([*DOCSORT, "process", str(single), "--out", str(work / "error-out"), *options],
                                  env={**ENV, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
            if done.returncode != 4:
                raise SystemExit(f"{name}: exit {done.returncode}, expected 4")
        errors[name] = statistics.median(times)
    return {"help_s": statistics.median(helps), "process_one_s": statistics.median(processes),
            "tesseract_one_s": statistics.median(tesseracts), "errors_s": errors}


def replace_section(results: Path, section: str) -> None:
    """Put ``section`` in place of this benchmark's latest figures in ``results``: from its
    heading to the next heading (earlier runs kept under "##" headings and the other
    benchmarks' sections stay as they are)."""
    heading = section.split("\n", 1)[0]
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    start = text.find(heading + "\n")
    if start < 0:
        results.write_text(section + ("\n" + text if text else ""), encoding="utf-8")
        return
    rest = text[start + len(heading) + 1:]
    ends = [i for i in (rest.find("\n# "), rest.find("\n## ")) if i >= 0]
    end = start + len(heading) + 1 + (min(ends) + 1 if ends else len(rest))
    results.write_text(text[:start] + section + ("\n" if ends else "") + text[end:], encoding="utf-8")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores available, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {tesseract}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="envelopes to generate (default 200)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask measurement")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each kind, interleaved; times are the fastest run, memory the largest "
                             "(default 2)")
    parser.add_argument("--handwriting", type=Path, default=HERE.parent.parent / "shared" / "datasets",
                        help="folder with MNIST IDX files and DHSD data.csv (default: ../shared/datasets)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--models-only", action="store_true",
                        help="print only every network's throughput (ONNX Runtime, Keras, the numpy engine); "
                             "writes nothing")
    args = parser.parse_args()
    if args.models_only:
        print(throughput_table(model_throughput()))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="docsort-bench-"))
    envelopes = work / "envelopes"
    if not envelopes.is_dir() or len(list(envelopes.glob("envelope_*"))) != args.count:
        from docsort.training.samples import write_samples

        shutil.rmtree(envelopes, ignore_errors=True)
        write_samples(envelopes, count=args.count, seed=args.seed, handwriting=args.handwriting)
    images = sorted(envelopes.glob("envelope_*"))
    n = len(images)
    print(f"{n} envelopes in {envelopes}", file=sys.stderr)

    # Every run ``--repeat`` times, interleaved, so that a burst of other work on shared cores
    # slows one run of each kind, not all runs of one kind: a time is the fastest of its runs
    # (other work only ever adds time), a peak memory the largest.
    runs: dict[str, list] = {}
    dask_same = None
    for _ in range(args.repeat):
        runs.setdefault("t1", []).append(tesseract_alone(images, 1))
        runs.setdefault("t2", []).append(tesseract_alone(images, 2))
        runs.setdefault("j1", []).append(docsort_run(envelopes, work / "out-j1", "--jobs", "1"))
        # Each worker runs on one thread; with DOCSORT_THREADS=2 the one worker of --jobs 1 also uses
        # the spare core for its network calls.
        runs.setdefault("j1t", []).append(
            docsort_run(envelopes, work / "out-j1t", "--jobs", "1", env={"DOCSORT_THREADS": "2"}))
        runs.setdefault("j2", []).append(docsort_run(envelopes, work / "out-j2", "--jobs", "2"))
        if not args.no_dask:
            runs.setdefault("d0", []).append(dask_run(envelopes, work / "out-dask-defaults"))
            runs.setdefault("d2", []).append(dask_run(envelopes, work / "out-dask", cluster_env=AS_THE_README_SAYS))
            same = runs["d2"][-1][2]["documents"] == runs["j2"][-1][2]["documents"]
            dask_same = same if dask_same is None else dask_same and same

    def fastest(key: str) -> float:
        return min(run[0] for run in runs[key])

    def memory(key: str) -> tuple[float, float]:
        return max(run[1][0] for run in runs[key]), max(run[1][1] for run in runs[key])

    def cpu(key: str) -> float:
        return min(run[-1] if key.startswith("j") else run[1] for run in runs[key])

    rows = []
    t1, t1_cpu = fastest("t1"), cpu("t1")
    rows.append(("Tesseract alone, 1 process", t1, None, t1_cpu))
    rows.append(("Tesseract alone, 2 processes", fastest("t2"), None, cpu("t2")))
    j1, j1_cpu = fastest("j1"), cpu("j1")
    rows.append(("docsort process --jobs 1", j1, memory("j1"), j1_cpu))
    j1t = fastest("j1t")
    rows.append(("docsort process --jobs 1, DOCSORT_THREADS=2", j1t, memory("j1t"), cpu("j1t")))
    j2 = fastest("j2")
    rows.append(("docsort process --jobs 2", j2, memory("j2"), cpu("j2")))
    if not args.no_dask:
        d0, d2 = fastest("d0"), fastest("d2")
        rows.append(("docsort process --scheduler (Dask, 2 workers, Dask's defaults)", d0, memory("d0"), None))
        rows.append(("docsort process --scheduler (Dask, 2 workers as the README starts them)", d2, memory("d2"), None))
    every_run = {key: [round(run[0], 1) for run in found] for key, found in runs.items()}
    crops = model_throughput()
    cold = cold_starts(images[0], work)

    lines = ["| run | wall s | CPU s | envelopes/s | peak RSS per worker MiB | peak USS per worker MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, seconds, memory, cpu in rows:
        rss, uss = ("", "") if memory is None else (f"{memory[0]:.0f}", f"{memory[1]:.0f}")
        cpu = "" if cpu is None else f"{cpu:.1f}"
        lines.append(f"| {name} | {seconds:.1f} | {cpu} | {n / seconds:.2f} | {rss} | {uss} |")
    checks = [
        ("docsort --jobs 1 / Tesseract alone, wall time (target <= 1.0)", f"{j1 / t1:.2f}"),
        ("docsort --jobs 1 / Tesseract alone, CPU time (target <= 1.0)", f"{j1_cpu / t1_cpu:.2f}"),
        ("--jobs 2 speed-up over --jobs 1 (target >= 1.8)", f"{j1 / j2:.2f}x"),
        ("--jobs 2 speed-up over --jobs 1 with two threads (DOCSORT_THREADS=2)", f"{j1t / j2:.2f}x"),
    ]
    if not args.no_dask:
        checks.append(("Dask 2 workers as the README starts them vs --jobs 2 (target within 10%)",
                       f"{(d2 - j2) / j2:+.1%}"))
        checks.append(("Dask 2 workers with Dask's defaults (its profiler on) vs --jobs 2", f"{(d0 - j2) / j2:+.1%}"))
        checks.append(("Dask documents identical to --jobs 2", str(dask_same)))
    checks += [
        ("peak RSS per worker (target <= 250 MiB)", f"{max(r[2][0] for r in rows if r[2]):.0f} MiB"),
        ("digit network crops/s (1 thread; ONNX Runtime / Keras)",
         f"{crops['digits']['onnx']:.0f} / {crops['digits']['keras']:.0f}"),
        ("main writing-type network crops/s (1 thread; ONNX Runtime / Keras)",
         f"{crops['writing_type']['onnx']:.0f} / {crops['writing_type']['keras']:.0f}"),
        ("cold `docsort --help`", f"{cold['help_s']:.2f} s"),
        *((f"`docsort process` that cannot start: {name} (target < 0.3 s)", f"{seconds:.2f} s")
          for name, seconds in cold["errors_s"].items()),
        ("cold `docsort process` on one envelope", f"{cold['process_one_s']:.2f} s"),
        ("Tesseract alone on that envelope", f"{cold['tesseract_one_s']:.2f} s"),
        ("cold process - Tesseract (target <= 0.6 s)", f"{cold['process_one_s'] - cold['tesseract_one_s']:.2f} s"),
    ]
    lines += ["", "| measure | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in checks]
    lines += ["", throughput_table(crops)]
    table = "\n".join(lines)
    print(table)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    section = (
        f"# docsort process benchmark\n\n`OMP_THREAD_LIMIT=1 python benchmarks/bench_process.py --count {args.count} "
        f"--seed {args.seed}{' --no-dask' if args.no_dask else ''} --repeat {args.repeat}` on {stamp}.\n\nMachine: {machine()}.\n\n"
        f"Load average (1, 5, 15 min) when it finished: {load} (other work on the machine inflates "
        "wall times).\n\n"
        f"{n} synthetic envelopes (`docsort.training.samples`, seed {args.seed}); Tesseract runs with "
        "`OMP_THREAD_LIMIT=1` and `--psm 11` as in the pipeline; wall times include start-up. "
        f"Each run {args.repeat} times, interleaved: times are the fastest run, peak memory the "
        f"largest. Every run's wall seconds: {json.dumps(every_run)}.\n\n"
        f"{table}\n")
    replace_section(args.results, section)
    print(f"written {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
