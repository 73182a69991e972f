"""The same batch on a real Dask cluster: a scheduler and two workers on 127.0.0.1.

The cluster is started the way the README tells users to (``dask scheduler``, ``dask worker``
with one process and one thread each); the results must equal a local run's, and a worker
killed mid-batch must cost no document and duplicate none.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
from conftest import REPO, run_cli

from docsort.errors import ExitCode
from docsort.training.samples import write_samples

DASK = str(Path(sys.executable).with_name("dask"))
COUNT = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The settings the README starts scheduler and workers with (profiler off, quieter monitors).
AS_THE_README_SAYS = {"DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
                      "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s"}
WORKER_ENV = {**AS_THE_README_SAYS, "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}


def start_worker(address: str, log: Path, nanny: bool = False, env: Optional[dict] = None) -> subprocess.Popen:
    """One single-threaded worker process; with ``nanny``, as the README starts them, one that is
    started again when it dies."""
    return subprocess.Popen(
        [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", *([] if nanny else ["--no-nanny"]),
         "--no-dashboard", "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True,
        env={**os.environ, **WORKER_ENV, **(env or {})})


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask-logs")
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start_scheduler(address, logs / "scheduler.log")
    workers = [start_worker(address, logs / f"worker{i}.log") for i in range(2)]
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield address, workers, logs
    for process in [*workers, scheduler]:
        stop(process)


def start_scheduler(address: str, log: Path, env: Optional[dict] = None) -> subprocess.Popen:
    return subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True,
        env={**os.environ, **AS_THE_README_SAYS, **(env or {})})


@pytest.fixture(scope="module")
def lonely_scheduler(tmp_path_factory):
    """A real scheduler that no worker has joined."""
    logs = tmp_path_factory.mktemp("dask-lonely")
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start_scheduler(address, logs / "scheduler.log")
    from distributed import Client

    with Client(address, timeout=60):
        pass
    yield address, logs
    stop(scheduler)


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dask-envelopes")
    write_samples(folder, count=COUNT, seed=21)
    return folder


@pytest.fixture(scope="module")
def local_run(envelopes, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    result = run_cli("process", envelopes, "--out", out, "--jobs", "2", "-q")
    assert result.returncode == ExitCode.OK, result.stderr
    return load(out)


def load(out: Path) -> dict:
    import json

    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_dask_run_equals_local_run(cluster, envelopes, local_run, tmp_path):
    address, _, _ = cluster
    out = tmp_path / "out"
    result = run_cli("process", envelopes, "--out", out, "--scheduler", address)
    assert result.returncode == ExitCode.OK, result.stderr
    assert result.stdout == ""
    results = load(out)
    assert results["documents"] == local_run["documents"]
    for key in ("docsort_version", "tesseract_version", "models", "settings"):
        assert results[key] == local_run[key]
    rerun = run_cli("process", envelopes, "--out", out, "--scheduler", address)
    assert rerun.returncode == ExitCode.OK and load(out)["summary"]["reused"] == COUNT
    from distributed import Client

    with Client(address, timeout=60) as client:
        # Workers started with --nthreads 1 run their models on one thread, not on every core.
        threads = client.run(os.getenv, "DOCSORT_THREADS")
    assert set(threads.values()) == {os.environ.get("DOCSORT_THREADS") or "1"}


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(cluster, envelopes, local_run, tmp_path):
    """Kill one of the two workers once a few documents are done; the other finishes the batch."""
    from docsort.api import process

    address, workers, logs = cluster
    victim = workers[0]

    class KillAfterTwo:
        done = 0

        def start(self, total, done):
            pass

        def advance(self, document):
            self.done += 1
            if self.done == 2:
                os.killpg(victim.pid, signal.SIGKILL)

        def finish(self):
            pass

    summary = process([envelopes], tmp_path / "out", scheduler=address, progress=KillAfterTwo())
    assert victim.wait(timeout=30) == -signal.SIGKILL
    results = load(tmp_path / "out")
    files = [d["file"] for d in results["documents"]]
    assert len(files) == len(set(files)) == COUNT
    assert results["documents"] == local_run["documents"]
    assert summary.errors == 0
    workers[0] = start_worker(address, logs / "worker0-restarted.log")


def test_scheduler_without_workers_says_so_and_gives_up_at_the_timeout(lonely_scheduler, tmp_path):
    """Even a quiet run says at once why it waits; it fails at --scheduler-timeout, writing nothing."""
    address, _ = lonely_scheduler
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("process", REPO / "sample_docs", "--out", out, "--scheduler", address,
                     "--scheduler-timeout", "3", "-q", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == ExitCode.MISSING_DEPENDENCY, result.stderr
    assert result.stderr.splitlines() == [
        f"docsort: warning: connected to the Dask scheduler at {address}; it has no workers yet, "
        "waiting up to 3 s for one (--scheduler-timeout)",
        f"docsort: error: no Dask worker joined the scheduler at {address} within 3 s (--scheduler-timeout)"]
    assert 3 <= elapsed < 30
    assert not out.exists()


def test_a_worker_that_joins_while_the_batch_waits_gets_the_documents(lonely_scheduler, tmp_path):
    address, logs = lonely_scheduler
    out = tmp_path / "out"
    batch = subprocess.Popen(
        [sys.executable, "-m", "docsort", "process", REPO / "sample_docs" / "envelope_0001.jpg", "--out", out,
         "--scheduler", address, "--scheduler-timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = batch.stderr.readline()
    assert "it has no workers yet, waiting up to" in first_line
    assert not out.exists()
    worker = start_worker(address, logs / "late-worker.log")
    try:
        assert batch.wait(timeout=300) == ExitCode.OK, batch.stderr.read()
    finally:
        stop(worker)
    assert load(out)["summary"]["auto"] == 1


def test_unreachable_scheduler_is_a_dependency_error(tmp_path):
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("process", REPO / "sample_docs", "--out", out, "--scheduler", address,
                     "--scheduler-timeout", "3", timeout=120)
    assert result.returncode == ExitCode.MISSING_DEPENDENCY
    assert result.stderr.splitlines() == [
        f"docsort: error: cannot connect to the Dask scheduler at {address}: Connection refused"]
    assert time.monotonic() - started < 30
    assert not out.exists()


def test_a_document_that_kills_its_workers_costs_only_itself(tmp_path, monkeypatch):
    """Large batches go to Dask a few documents per task; a document that kills every worker
    it reaches must fail alone, and the documents sent in its task must still be read."""
    from test_pool import FAULTY_PIPELINE, marked_copy

    from docsort.api import process

    site = tmp_path / "site"
    site.mkdir()
    (site / "dask_faulty_pipeline.py").write_text(FAULTY_PIPELINE)
    worker_log = tmp_path / "documents.log"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "POOL_TEST_LOG": str(worker_log),
           # Dask gives a task up after the first worker it kills, so the test needs no more; and
           # a worker holds only the task it runs, so a worker's death counts against no other.
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
           "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start_scheduler(address, tmp_path / "scheduler.log", env=env)
    workers = [start_worker(address, tmp_path / f"worker{i}.log", nanny=True, env=env) for i in range(2)]
    try:
        write_samples(tmp_path / "in", count=19, seed=23)
        envelopes = sorted(p for p in (tmp_path / "in").iterdir() if p.suffix != ".json")
        kill = marked_copy(envelopes[0], tmp_path / "marked", "kill-worker")
        monkeypatch.syspath_prepend(str(site))  # the batch takes its settings from the pipeline module
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        summary = process([envelopes[0], kill, *envelopes[1:]], tmp_path / "out", scheduler=address,
                          pipeline="dask_faulty_pipeline")
    finally:
        for started in [*workers, scheduler]:
            stop(started)
    documents = load(tmp_path / "out")["documents"]
    found = {Path(d["file"]).name: d for d in documents}
    assert len(found) == len(documents) == 20  # each once
    assert found[kill.name]["status"] == "error"
    assert found[kill.name]["error"] == (
        "the worker process died while reading this document (on every Dask worker tried)")
    assert all(found[e.name]["status"] == "ok" for e in envelopes), found
    assert summary.errors == 1
    read = [line.split()[1] for line in worker_log.read_text().splitlines()]
    # The document sent with it in one task was read again on its own, and the killer twice. (A
    # result a dying worker still held, not yet fetched, is computed again elsewhere: others may
    # be read twice too, and still come out once.)
    assert read.count(envelopes[0].name) >= 2 and read.count(kill.name) == 2
    assert all(read.count(e.name) >= 1 for e in envelopes[1:])


def test_large_batches_go_a_few_documents_per_task_and_end_with_single_documents():
    from docsort.batch.executors import dask_task_sizes

    sizes = dask_task_sizes(200, threads=2)
    assert sum(sizes) == 200 and len(sizes) == 44
    assert sizes[0] == 8 and sizes[-8:] == [1] * 8
    assert sizes == sorted(sizes, reverse=True)
    assert dask_task_sizes(10, threads=2) == [1] * 10
    assert dask_task_sizes(0, threads=2) == []
    assert max(dask_task_sizes(10_000, threads=64)) == 8
