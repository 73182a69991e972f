"""The local worker pool behind ``docsort process --jobs N``: what happens when a worker hangs,
is replaced, is killed, or cannot start at all.

Faults are injected from outside the product code: a pipeline module that wraps the real one
(``process_document`` hangs or kills its worker on documents named for it, and logs which worker
read which document), and a ``sitecustomize`` that gives worker processes a fault as they start
(killed, hung, or gone right after a message). Both reach the spawned workers through the module
search path. Every other document goes through the
real pipeline in real worker processes and must come out exactly as in an undisturbed run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import run_cli

from docsort.api import process
from docsort.batch import executors
from docsort.errors import ExitCode
from docsort.training.samples import write_samples

FAULTY_PIPELINE = '''
"""The real pipeline, with a fault on documents named for it; logs "pid file-name" per document."""
import os, signal, time
from pathlib import Path

from docsort.page import pipeline as real
from docsort.page.pipeline import Settings  # noqa: F401  (the batch builds its settings with it)


def warm_up(settings):
    real.warm_up(settings)


def process_document(path, settings, name=None):
    document = Path(path).name
    with open(os.environ["POOL_TEST_LOG"], "a") as log:
        log.write(f"{os.getpid()} {document}\\n")
    if "hang" in document:
        time.sleep(90)  # far past the test's timeout; a pool that never stops it fails, not hangs
    if "kill-worker" in document:
        os.kill(os.getpid(), signal.SIGKILL)
    return real.process_document(path, settings, name)
'''

# Imported by every Python process started with this folder on PYTHONPATH; only multiprocessing's
# spawned workers carry --multiprocessing-fork, so the batch process itself runs normally. Each
# worker start is logged; with POOL_TEST_EVERY=N, every Nth start is spared, with
# POOL_TEST_FAULTY_STARTS=N all but the first N. POOL_TEST_FAULT says what happens to the others:
# "die" (killed at once, the default), "hang" (never gets ready), "after-ready" / "after-done"
# (exits right after sending that message, having stopped reading first, so the batch's next send
# to it fails for certain), "on-document" (exits as the first document reaches it).
WORKERS_DIE_AT_START = '''
import os, signal, socket, sys, time

if "--multiprocessing-fork" in sys.argv:
    log = os.environ["POOL_TEST_LOG"]
    before = len(open(log).read().split()) if os.path.exists(log) else 0
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    every = int(os.environ.get("POOL_TEST_EVERY", "0"))
    first = int(os.environ.get("POOL_TEST_FAULTY_STARTS", "0"))
    faulty = before < first if first else (not every or (before + 1) % every)
    fault = os.environ.get("POOL_TEST_FAULT", "die")
    if faulty and fault == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    elif faulty and fault == "hang":
        time.sleep(90)  # far past the test's start timeout
    elif faulty:
        from multiprocessing import connection

        send, recv = connection.Connection.send, connection.Connection.recv

        def send_then_exit(self, message):
            if isinstance(message, tuple) and fault == "after-" + message[0]:
                socket.socket(fileno=os.dup(self.fileno())).shutdown(socket.SHUT_RD)
                send(self, message)
                os._exit(0)
            send(self, message)

        def recv_then_exit(self):
            message = recv(self)
            if fault == "on-document" and message is not None and not isinstance(message, tuple):
                os._exit(0)
            return message

        connection.Connection.send, connection.Connection.recv = send_then_exit, recv_then_exit
'''


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pool-envelopes")
    write_samples(folder, count=4, seed=41)
    return sorted(folder.glob("envelope_*"))


@pytest.fixture(scope="module")
def reference(envelopes, tmp_path_factory) -> dict[str, dict]:
    """The envelopes' records from an undisturbed run of the real pipeline, by file name."""
    out = tmp_path_factory.mktemp("pool-reference") / "out"
    summary = process(envelopes, out, jobs=2)
    assert summary.errors == 0
    return records(out)


@pytest.fixture(scope="module")
def faulty_pipeline(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("pool-modules")
    (folder / "pool_faulty_pipeline.py").write_text(FAULTY_PIPELINE)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))  # spawned workers start with the batch's sys.path
        yield "pool_faulty_pipeline"


@pytest.fixture
def worker_log(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "documents.log"
    monkeypatch.setenv("POOL_TEST_LOG", str(log))
    return log


def records(out: Path) -> dict[str, dict]:
    import json

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {Path(d["file"]).name: d for d in results["documents"]}


def documents_by_worker(log: Path) -> dict[int, list[str]]:
    """Which worker process read which documents, in the order they started."""
    workers: dict[int, list[str]] = {}
    for line in log.read_text().splitlines():
        pid, name = line.split(" ", 1)
        workers.setdefault(int(pid), []).append(name)
    return workers


def marked_copy(envelope: Path, folder: Path, stem: str) -> Path:
    """A copy of ``envelope`` whose name asks the faulty pipeline for a fault."""
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(envelope, folder / f"{stem}{envelope.suffix}"))


def assert_gone(pids) -> None:
    still_there = [pid for pid in pids if psutil.pid_exists(pid)]
    assert still_there == [], f"worker processes left behind: {still_there}"


def test_a_document_past_the_timeout_fails_alone_and_the_batch_goes_on(
        envelopes, reference, faulty_pipeline, worker_log, tmp_path):
    hang = marked_copy(envelopes[0], tmp_path / "in", "hang")
    out = tmp_path / "out"
    started = time.monotonic()
    summary = process([envelopes[0], hang, *envelopes[1:]], out, jobs=2, document_timeout=6,
                      pipeline=faulty_pipeline)
    took = time.monotonic() - started

    found = records(out)
    assert found[hang.name]["status"] == "error"
    assert found[hang.name]["error"] == "processing took longer than 6 s; stopped"
    assert found[hang.name]["pages"] == []
    assert {name: found[name] for name in reference} == reference  # the others as undisturbed
    assert summary.errors == 1 and summary.documents == len(envelopes) + 1
    assert took < 6 + 20  # stopped at the timeout, not when the hang ends
    assert_gone(documents_by_worker(worker_log))  # the hung worker was killed, the others stopped


def test_workers_are_replaced_after_their_quota_of_documents(
        envelopes, reference, faulty_pipeline, worker_log, tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "DOCUMENTS_PER_WORKER", 1)
    out = tmp_path / "out"
    summary = process(envelopes, out, jobs=2, pipeline=faulty_pipeline)

    workers = documents_by_worker(worker_log)
    assert len(workers) == len(envelopes)  # a fresh process for every document
    assert all(len(read) == 1 for read in workers.values())
    assert records(out) == reference  # each document once, as in an undisturbed run
    assert summary.errors == 0
    assert_gone(workers)


def test_a_worker_killed_mid_document_is_replaced_and_the_rest_are_read(
        envelopes, reference, faulty_pipeline, worker_log, tmp_path):
    kill = marked_copy(envelopes[0], tmp_path / "in", "kill-worker")
    out = tmp_path / "out"
    # One job: no other worker could carry the batch on, a replacement has to.
    summary = process([envelopes[0], kill, *envelopes[1:]], out, jobs=1, pipeline=faulty_pipeline)

    found = records(out)
    assert found[kill.name]["status"] == "error"
    assert found[kill.name]["error"] == (
        "the worker process died while reading this document (killed by SIGKILL)")
    assert {name: found[name] for name in reference} == reference
    assert summary.errors == 1
    first, second = documents_by_worker(worker_log).values()
    assert first == [envelopes[0].name, kill.name]
    assert second == [e.name for e in envelopes[1:]]
    assert_gone(documents_by_worker(worker_log))


def python_path_killing_workers_at_start(tmp_path) -> str:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WORKERS_DIE_AT_START)
    return os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))


def test_workers_that_die_as_they_start_stop_the_run_with_one_line(envelopes, worker_log, tmp_path):
    path = python_path_killing_workers_at_start(tmp_path)
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("process", *envelopes, "--out", out, "--jobs", "2", "-q", env={"PYTHONPATH": path},
                     timeout=120)
    took = time.monotonic() - started

    assert result.returncode == ExitCode.MISSING_DEPENDENCY, result.stderr
    assert result.stderr.splitlines() == [
        "docsort: error: worker processes cannot start: 4 in a row failed before their first document "
        "(the last killed by SIGKILL)"]
    assert result.stdout == ""
    tries = [int(pid) for pid in worker_log.read_text().split()]
    # The allowed failures and one more; a worker started alongside the last may have begun too.
    assert executors._STARTUP_FAILURES_ALLOWED + 1 <= len(tries) <= executors._STARTUP_FAILURES_ALLOWED + 2
    assert took < 60
    assert not (out / "results.json").exists()
    assert list((out / ".docsort" / "docs").glob("*.json")) == []
    assert_gone(tries)


def test_start_failures_are_counted_in_a_row_not_over_the_whole_batch(
        envelopes, reference, worker_log, tmp_path, monkeypatch):
    """Three of every four worker starts die; with a fresh worker per document a long batch meets
    many such failures, but never four in a row, so it must finish."""
    monkeypatch.setenv("PYTHONPATH", python_path_killing_workers_at_start(tmp_path))
    monkeypatch.setenv("POOL_TEST_EVERY", str(executors._STARTUP_FAILURES_ALLOWED + 1))
    monkeypatch.setattr(executors, "DOCUMENTS_PER_WORKER", 1)
    out = tmp_path / "out"
    summary = process(envelopes, out, jobs=1)

    assert records(out) == reference
    assert summary.errors == 0
    tries = [int(pid) for pid in worker_log.read_text().split()]
    assert len(tries) == len(envelopes) * (executors._STARTUP_FAILURES_ALLOWED + 1)
    assert_gone(tries)


def test_workers_that_hang_as_they_start_are_stopped_and_stop_the_run_with_one_line(
        envelopes, worker_log, tmp_path):
    path = python_path_killing_workers_at_start(tmp_path)
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("process", *envelopes, "--out", out, "--jobs", "2", "-q", timeout=120,
                     env={"PYTHONPATH": path, "POOL_TEST_FAULT": "hang", "DOCSORT_WORKER_START_TIMEOUT": "1"})
    took = time.monotonic() - started

    assert result.returncode == ExitCode.MISSING_DEPENDENCY, result.stderr
    assert result.stderr.splitlines() == [
        "docsort: error: worker processes cannot start: 4 in a row failed before their first document "
        "(the last was not ready within 1 s, DOCSORT_WORKER_START_TIMEOUT)"]
    assert result.stdout == ""
    tries = [int(pid) for pid in worker_log.read_text().split()]
    assert executors._STARTUP_FAILURES_ALLOWED + 1 <= len(tries) <= executors._STARTUP_FAILURES_ALLOWED + 2
    assert took < 40  # two rounds of 1 s waits, not the 90 s hang
    assert not (out / "results.json").exists()
    assert_gone(tries)  # the hung workers were killed


@pytest.mark.parametrize("fault", ["after-ready", "after-done", "on-document"])
def test_a_worker_gone_before_it_took_its_next_document_loses_nothing(
        fault, envelopes, reference, worker_log, tmp_path, monkeypatch):
    """The first worker exits right after "ready" or its first "done" (sending it the next document
    fails), or as a document reaches it (before it begins): that document goes to a new worker."""
    monkeypatch.setenv("PYTHONPATH", python_path_killing_workers_at_start(tmp_path))
    monkeypatch.setenv("POOL_TEST_FAULT", fault)
    monkeypatch.setenv("POOL_TEST_FAULTY_STARTS", "1")
    out = tmp_path / "out"
    summary = process(envelopes, out, jobs=1)

    assert records(out) == reference  # every document once, none failed for the worker's death
    assert summary.errors == 0
    tries = [int(pid) for pid in worker_log.read_text().split()]
    assert len(tries) == 2  # the faulty worker and one replacement
    assert_gone(tries)


def test_a_batch_starts_its_workers_only_when_there_is_work(envelopes, reference, worker_log, tmp_path, monkeypatch):
    """Workers start before the batch knows which documents are done (to load their models while
    it prepares), but not for a rerun over a folder whose every document has its record, nor
    for inputs that are all missing; a changed document brings them back."""
    monkeypatch.setenv("PYTHONPATH", python_path_killing_workers_at_start(tmp_path))
    monkeypatch.setenv("POOL_TEST_EVERY", "1")  # every start logged, none harmed
    out = tmp_path / "out"
    assert process(envelopes, out, jobs=2).errors == 0
    started = worker_log.read_text().split()
    assert len(started) == 2 and records(out) == reference

    again = process(envelopes, out, jobs=2)
    assert again.reused == len(envelopes) and worker_log.read_text().split() == started
    missing = process([tmp_path / "no-such-scan.png"], tmp_path / "out-missing", jobs=2)
    assert missing.errors == 1 and worker_log.read_text().split() == started

    changed = tmp_path / "changed"
    changed.mkdir()
    for envelope in envelopes:
        shutil.copy(envelope, changed / envelope.name)
    assert process(sorted(changed.iterdir()), out, jobs=1).errors == 0
    assert len(worker_log.read_text().split()) == len(started) + 1


LATE_SETTINGS_PIPELINE = '''
"""Logs what the worker warms up with and what each document is read with."""
import os
from pathlib import Path

from docsort.page import pipeline as real
from docsort.page.pipeline import Settings  # noqa: F401


def _log(line):
    with open(os.environ["POOL_TEST_LOG"], "a") as log:
        log.write(line + "\\n")


def warm_up(settings):
    _log(f"warm {None if settings is None else settings.code_length}")
    real.warm_up(settings)


def process_document(path, settings, name=None):
    _log(f"read {Path(path).name} {settings.code_length}")
    return real.process_document(path, settings, name)
'''


def test_workers_start_before_the_settings_and_read_with_them(envelopes, worker_log, tmp_path, monkeypatch):
    """A worker starts loading its networks before the run's settings are known (the batch
    process builds them meanwhile); it reads no document before it has them."""
    (tmp_path / "late_settings_pipeline.py").write_text(LATE_SETTINGS_PIPELINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from docsort.page.pipeline import Settings

    processor = executors.DocumentProcessor(settings=None, pipeline="late_settings_pipeline")
    tasks = [executors.DocumentTask(key=str(i), path=str(e), file=e.name) for i, e in enumerate(envelopes[:2])]
    with executors.LocalExecutor(processor, jobs=1) as pool:
        pool.start()
        with pytest.raises(RuntimeError, match="configure"):
            list(pool.run(tasks))
        pool.configure(Settings(code_length=4))
        results = dict((task.file, result) for task, result in pool.run(tasks))
    assert [r.status for r in results.values()] == ["ok", "ok"]
    assert worker_log.read_text().splitlines() == [
        "warm None", "warm 4", f"read {envelopes[0].name} 4", f"read {envelopes[1].name} 4"]
    # Read with four digits a code: every code found has four.
    codes = [p.postal_code.value for r in results.values() for p in r.pages if p.postal_code]
    assert codes and all(len(c) == 4 for c in codes)


THREADS_PIPELINE = '''
"""The real pipeline; logs the threads the worker's networks and OpenCV run on."""
import os

import cv2

from docsort.page import pipeline as real
from docsort.page.pipeline import Settings  # noqa: F401
from docsort.reading import engine


def warm_up(settings):
    real.warm_up(settings)


def process_document(path, settings, name=None):
    result = real.process_document(path, settings, name)
    with open(os.environ["POOL_TEST_LOG"], "a") as log:
        log.write(f"{engine.threads()} {cv2.getNumThreads()}\\n")
    return result
'''


def test_each_worker_runs_on_one_core_unless_docsort_threads_says_more(envelopes, worker_log, tmp_path, monkeypatch):
    """``--jobs N`` uses N cores: one worker's networks and OpenCV run on one thread, even with
    a core to spare (a cron batch leaves it to the machine); ``DOCSORT_THREADS`` gives more."""
    (tmp_path / "threads_pipeline.py").write_text(THREADS_PIPELINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DOCSORT_THREADS", raising=False)
    summary = process(envelopes[:1], tmp_path / "one", jobs=1, pipeline="threads_pipeline")
    assert summary.errors == 0
    assert worker_log.read_text().split() == ["1", "1"]
    worker_log.unlink()
    monkeypatch.setenv("DOCSORT_THREADS", "2")
    summary = process(envelopes[:1], tmp_path / "two", jobs=1, pipeline="threads_pipeline")
    assert summary.errors == 0
    assert worker_log.read_text().split() == ["2", "2"]


EARLY_WORKER_PROBE = '''
import json, sys
from docsort.batch import executors

spawned = []
real_spawn = executors.LocalExecutor._spawn_worker


def spawn(self):
    worker = real_spawn(self)
    spawned.append({"pid": worker.process.pid, "command_line_imported": "typer" in sys.modules})
    return worker


executors.LocalExecutor._spawn_worker = spawn
sys.argv = ["docsort", *sys.argv[1:]]
from docsort.cli import main

try:
    main()
finally:
    print(json.dumps(spawned), file=sys.stderr)
'''


def test_the_command_starts_a_worker_before_its_command_line_and_the_batch_adopts_it(
        envelopes, reference, tmp_path):
    """``docsort process`` starts its first local worker before it imports its command line;
    the batch reads with that worker (no second start for ``--jobs 1``) and its results are an
    undisturbed run's. ``--verbose`` starts none early; a rerun with nothing to read leaves the
    early worker unused and stopped."""
    import json
    import subprocess

    def run(*args) -> list[dict]:
        done = subprocess.run([sys.executable, "-c", EARLY_WORKER_PROBE, "process", *map(str, args)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == ExitCode.OK, done.stderr
        spawned = json.loads(done.stderr.strip().splitlines()[-1])
        assert_gone(w["pid"] for w in spawned)
        return [w["command_line_imported"] for w in spawned]

    one = tmp_path / "one"
    assert run(envelopes[0], "--out", one, "-q", "--jobs", "1") == [False]
    assert records(one) == {envelopes[0].name: reference[envelopes[0].name]}
    two = tmp_path / "two"
    assert run(*envelopes[:2], "--out", two, "-q", "--jobs", "2") == [False, True]
    assert records(two) == {e.name: reference[e.name] for e in envelopes[:2]}
    assert run(envelopes[0], "--out", tmp_path / "verbose", "-v", "--jobs", "1") == [True]
    assert run(envelopes[0], "--out", one, "-q", "--jobs", "1") == [False]  # nothing left to read
    assert records(one) == {envelopes[0].name: reference[envelopes[0].name]}
