"""``docsort process`` as cron runs it: results files, re-runs, kill -9, Ctrl-C, locks, exit codes.

Every test runs the real command (real Tesseract, real models) on envelopes made by
``docsort.training.samples``; the 40-envelope reference run is shared by the tests that compare with it.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO, run_cli

from docsort.errors import ExitCode
from docsort.training.samples import write_samples

BATCH_SIZE = 40
CSV_HEADER = "file,page,status,postal_code,source,confidence,decision,printed_crops,handwritten_crops,error"


def docsort_command(*args) -> list[str]:
    return [sys.executable, "-m", "docsort", *map(str, args)]


def load_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def stored_records(out: Path) -> dict[str, int]:
    """The per-document results a run has finished so far: {file name: modification time}."""
    folder = out / ".docsort" / "docs"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} if folder.is_dir() else {}


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def wait_for(condition, timeout: float = 120.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the batch")
        time.sleep(interval)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="session")
def envelopes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("envelopes")
    write_samples(folder, count=BATCH_SIZE, seed=11)
    return folder


@pytest.fixture(scope="session")
def few_envelopes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("few")
    write_samples(folder, count=3, seed=12)
    return folder


@pytest.fixture(scope="session")
def reference(envelopes, tmp_path_factory):
    """One uninterrupted run over the 40 envelopes, as a cron job would start it."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = run_cli("process", envelopes, "--out", out, "--jobs", "2")
    assert result.returncode == ExitCode.OK, result.stderr
    return out, result


def test_results_follow_the_interface(reference, envelopes):
    out, result = reference
    assert result.stdout == ""
    assert "\x1b[" not in result.stderr  # no progress bar or colours when stderr is not a terminal
    results = load_results(out)
    for key in ("docsort_version", "tesseract_version", "models", "documents", "summary"):
        assert key in results
    from docsort.schema import results_schema
    import jsonschema

    jsonschema.validate(results, results_schema())
    # Every network the pipeline reads is named with its hash, ensemble members included, and
    # the manifest they were taken from with its hash and version.
    from docsort.reading import manifest

    shipped = sorted(p.name for p in manifest.models_dir().glob("*.onnx"))
    assert sorted(m["file"] for m in results["models"].values()) == shipped
    for model in results["models"].values():
        assert model["sha256"] == manifest.file_sha256(manifest.models_dir() / model["file"])
    listed = json.loads((manifest.models_dir() / "manifest.json").read_text())
    assert results["manifest"] == {"file": "manifest.json", "version": listed["version"],
                                   "sha256": manifest.file_sha256(manifest.models_dir() / "manifest.json")}
    files = [d["file"] for d in results["documents"]]
    assert files == sorted(files) and len(files) == BATCH_SIZE
    assert all(f.startswith(str(envelopes)) for f in files)
    summary = results["summary"]
    assert summary["documents"] == BATCH_SIZE and summary["errors"] == 0
    assert summary["skipped"] == 1  # truth.json is not a scan
    assert summary["auto"] + summary["manual"] == summary["pages"]  # every piece goes one way or the other
    assert summary["cost"]
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert ",".join(rows[0]) == CSV_HEADER
    assert len(rows) - 1 == summary["pages"]
    assert temp_files(out) == []


def test_rerun_skips_unchanged_documents(reference, envelopes):
    out, _ = reference
    before = stored_records(out)
    again = run_cli("process", envelopes, "--out", out, "--jobs", "2", "-v")
    assert again.returncode == ExitCode.OK, again.stderr
    assert stored_records(out) == before  # nothing redone
    assert load_results(out)["summary"]["reused"] == BATCH_SIZE
    assert "0 to process" in again.stderr


def test_changed_document_and_force_are_redone(few_envelopes, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(few_envelopes, inputs)
    out = tmp_path / "out"
    assert run_cli("process", inputs, "--out", out, "--jobs", "1").returncode == ExitCode.OK
    first = stored_records(out)
    changed = sorted(inputs.glob("envelope_*"))[0]
    shutil.copy(sorted(inputs.glob("envelope_*"))[1], changed)
    assert run_cli("process", inputs, "--out", out, "--jobs", "1").returncode == ExitCode.OK
    second = stored_records(out)
    redone = [name for name in first if first[name] != second[name]]
    assert len(redone) == 1 and load_results(out)["summary"]["reused"] == 2
    assert run_cli("process", inputs, "--out", out, "--jobs", "1", "--force").returncode == ExitCode.OK
    third = stored_records(out)
    assert all(third[name] != second[name] for name in second)


def test_kill_9_midway_loses_nothing(reference, envelopes, tmp_path):
    out = tmp_path / "out"
    batch = subprocess.Popen(docsort_command("process", envelopes, "--out", out, "--jobs", "2", "-q"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: len(stored_records(out)) >= BATCH_SIZE // 3 or batch.poll() is not None)
    workers = descendants(batch.pid)
    batch.send_signal(signal.SIGKILL)
    batch.wait(timeout=30)
    assert batch.returncode == -signal.SIGKILL
    psutil.wait_procs(workers, timeout=30)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finished = stored_records(out)
    assert BATCH_SIZE // 3 <= len(finished) < BATCH_SIZE
    assert not (out / "results.json").exists()

    rerun = run_cli("process", envelopes, "--out", out, "--jobs", "2")
    assert rerun.returncode == ExitCode.OK, rerun.stderr
    after = stored_records(out)
    assert all(after[name] == mtime for name, mtime in finished.items())  # finished ones not redone
    results, expected = load_results(out), load_results(reference[0])
    assert results["documents"] == expected["documents"]  # each document once, as uninterrupted
    assert results["summary"]["reused"] == len(finished)
    assert temp_files(out) == []


def test_ctrl_c_exits_130_and_keeps_finished_documents(envelopes, tmp_path):
    out = tmp_path / "out"
    # As from a terminal: Ctrl-C handled, even when the suite itself runs in the background
    # (a shell starts background jobs with SIGINT ignored, and children inherit that).
    batch = subprocess.Popen(docsort_command("process", envelopes, "--out", out, "--jobs", "1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: len(stored_records(out)) >= 2 or batch.poll() is not None)
    workers = descendants(batch.pid)
    batch.send_signal(signal.SIGINT)
    stdout, stderr = batch.communicate(timeout=60)
    assert batch.returncode == ExitCode.INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and stdout == ""
    psutil.wait_procs(workers, timeout=30)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert len(stored_records(out)) >= 2
    assert temp_files(out) == []
    for record in (out / ".docsort" / "docs").glob("*.json"):
        assert json.loads(record.read_text())["document"]["status"] == "ok"


def test_two_batches_on_one_folder(few_envelopes, tmp_path):
    out = tmp_path / "out"
    command = docsort_command("process", few_envelopes, "--out", out, "--jobs", "1")
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / ".docsort" / "lock"
    wait_for(lambda: (lock.exists() and lock.read_text().strip() == str(first.pid)) or first.poll() is not None)
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.wait(timeout=300) == ExitCode.OK
    assert second.returncode == ExitCode.LOCKED
    assert "in use by another docsort batch" in second.stderr and str(first.pid) in second.stderr
    assert load_results(out)["summary"]["documents"] == 3


def test_locked_folder_fails_at_once_or_waits(few_envelopes, tmp_path):
    out = tmp_path / "out"
    (out / ".docsort").mkdir(parents=True)
    with open(out / ".docsort" / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        refused = run_cli("process", few_envelopes, "--out", out, timeout=60)
        assert refused.returncode == ExitCode.LOCKED
        assert "--wait" in refused.stderr and not (out / "results.json").exists()
        waiting = subprocess.Popen(docsort_command("process", few_envelopes, "--out", out, "--wait", "-j", "1"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None
    assert waiting.wait(timeout=300) == ExitCode.OK
    assert "waiting for" in waiting.stderr.read()


def test_usage_errors_exit_2(few_envelopes, tmp_path):
    assert run_cli("process", few_envelopes, "--out", tmp_path / "o", "--jobs", "0").returncode == ExitCode.USAGE
    assert run_cli("process", "--out", tmp_path / "o").returncode == ExitCode.USAGE
    result = run_cli("process", few_envelopes, "--out", tmp_path / "o", "--accept-threshold", "1.5")
    assert result.returncode == ExitCode.USAGE and "--accept-threshold" in result.stderr


def test_output_not_writable_exits_6(few_envelopes, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("process", few_envelopes, "--out", blocker)
    assert result.returncode == ExitCode.OUTPUT_NOT_WRITABLE and "not a folder" in result.stderr
    read_only = tmp_path / "read_only"
    read_only.mkdir(mode=0o555)
    result = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
         *docsort_command("process", few_envelopes, "--out", read_only / "out")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == ExitCode.OUTPUT_NOT_WRITABLE, result.stderr
    assert "permission denied" in result.stderr.lower()


def test_missing_tesseract_stops_before_any_work(few_envelopes, tmp_path):
    out = tmp_path / "out"
    no_tesseract = tmp_path / "bin"
    no_tesseract.mkdir()
    result = run_cli("process", few_envelopes, "--out", out, env={"PATH": str(no_tesseract)})
    assert result.returncode == ExitCode.MISSING_DEPENDENCY
    assert "Tesseract" in result.stderr and "Traceback" not in result.stderr
    assert stored_records(out) == {} and not (out / "results.json").exists()


def test_corrupt_model_stops_before_any_work(few_envelopes, tmp_path):
    from docsort.reading import manifest

    models = tmp_path / "models"
    shutil.copytree(manifest.models_dir(), models)
    digits = models / "digits.onnx"
    digits.write_bytes(digits.read_bytes()[: digits.stat().st_size // 2])
    out = tmp_path / "out"
    result = run_cli("process", few_envelopes, "--out", out, env={"DOCSORT_MODELS": str(models)})
    assert result.returncode == ExitCode.MISSING_DEPENDENCY
    assert "digits.onnx" in result.stderr and "corrupt" in result.stderr
    assert stored_records(out) == {}


def test_json_log_lines(few_envelopes, tmp_path):
    result = run_cli("process", few_envelopes, "--out", tmp_path / "out", "--jobs", "1", "--log-json", "-v")
    assert result.returncode == ExitCode.OK, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events and all({"time", "level", "message"} <= set(e) for e in events)
    assert result.stdout == ""


def test_python_api_raises_instead_of_exiting(few_envelopes, tmp_path):
    from docsort.api import process
    from docsort.errors import OutputLockedError, UsageError

    with pytest.raises(UsageError):
        process([few_envelopes], tmp_path / "out", jobs=0)
    with pytest.raises(UsageError):
        process([few_envelopes], tmp_path / "out", colour="blue")
    (tmp_path / "out" / ".docsort").mkdir(parents=True)
    with open(tmp_path / "out" / ".docsort" / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(OutputLockedError) as caught:
            process([few_envelopes], tmp_path / "out", jobs=1)
    assert caught.value.exit_code == ExitCode.LOCKED


def test_folder_walk_order_hidden_entries_links_and_output_folder(tmp_path):
    from docsort.batch.runner import collect_documents

    root = tmp_path / "scans"
    for name in ("b.png", "a/c.JPG", "a/d.tiff", ".hidden/x.png", ".dot.png", "notes.txt", "out/overlays/z.png",
                 "z/e.pdf", "z/readme.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "z" / "loop").symlink_to(root, target_is_directory=True)
    collected = collect_documents([root, root / "b.png", tmp_path / "missing.png"], exclude=[root / "out"])
    documents = collected.documents
    assert [Path(d.path).relative_to(tmp_path).as_posix() for d in documents] == [
        "scans/a/c.JPG", "scans/a/d.tiff", "scans/b.png", "scans/z/e.pdf", "missing.png"]
    assert [(Path(s.file).name, s.reason) for s in collected.skipped] == [
        ("notes.txt", "not a readable kind (.txt)"), ("readme.md", "not a readable kind (.md)")]
    assert documents[0].file == str(root / "a" / "c.JPG")
    # A pattern (quoted, or left as it is by a shell that matched nothing) stands for its matches.
    matched = collect_documents([str(root / "a" / "*.tiff"), str(root / "**" / "*.pdf"), str(root / "*.gif")])
    assert [Path(d.path).name for d in matched.documents] == ["d.tiff", "e.pdf"]
    assert matched.unmatched == [str(root / "*.gif")]


def test_fail_fast_stops_at_the_first_failed_document(few_envelopes, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    result = run_cli("process", empty, few_envelopes, "--out", out, "--fail-fast")
    assert result.returncode == ExitCode.INPUTS_FAILED
    documents = load_results(out)["documents"]
    assert [(d["file"], d["status"], d["error"]) for d in documents] == [
        (str(empty), "error", "file is empty (0 bytes)")]


def test_end_of_run_line_counts_a_page_without_a_code_as_manual(tmp_path):
    """The README's rule, said the same way on the terminal and in results.json: every page goes
    to automatic or to manual sorting, and a page where no code was found goes to a person."""
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(REPO / "sample_docs" / "envelope_0001.jpg", inputs)
    Image.new("L", (1800, 900), 255).save(inputs / "blank.png")
    (inputs / "notes.txt").write_text("not a scan")
    out = tmp_path / "out"
    result = run_cli("process", inputs, inputs / "*.gif", "--out", out, "--jobs", "1")
    assert result.returncode == ExitCode.OK, result.stderr
    assert (f"docsort: 2 documents, 2 pages: 1 auto, 1 manual (1 with no code found), 0 errors, 1 skipped file; "
            f"results in {out / 'results.json'}") in result.stderr.splitlines()
    assert f"docsort: warning: no file matches {inputs / '*.gif'}" in result.stderr.splitlines()
    assert "notes.txt" not in result.stderr  # without -v, skipped files are only counted
    summary = load_results(out)["summary"]
    assert {key: summary[key] for key in ("pages", "postal_codes", "auto", "manual", "no_code", "skipped")} == {
        "pages": 2, "postal_codes": 1, "auto": 1, "manual": 1, "no_code": 1, "skipped": 1}
    verbose = run_cli("process", inputs, "--out", out, "-v")
    assert verbose.returncode == ExitCode.OK, verbose.stderr
    assert f"docsort: debug: skipped {inputs / 'notes.txt'}: not a readable kind (.txt)" in verbose.stderr.splitlines()


def test_one_failed_document_is_counted_in_the_singular(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    result = run_cli("process", empty, "--out", tmp_path / "out")
    assert result.returncode == ExitCode.INPUTS_FAILED
    lines = result.stderr.splitlines()
    assert any(line.startswith("docsort: 1 document, 0 pages: 0 auto, 0 manual, 1 error, 0 skipped files;")
               for line in lines), result.stderr
    assert lines[-1].startswith("docsort: error: 1 of 1 document failed; see ")
