"""A batch full of broken inputs and failing tools: each failure stays in its own record.

The batch runs without root's power to read any file (its DAC capabilities dropped), so the
unreadable file is unreadable as it would be for a user. Tesseract faults are injected with a
``tesseract`` earlier on PATH that crashes its caller or hangs on marked pages.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from test_ingest import A3_600DPI, BAD_INPUTS, make_bad_input

from docsort.errors import ExitCode
from docsort.training.samples import write_samples

UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def docsort(*args, env: dict | None = None, unprivileged: bool = False, timeout: float = 600):
    command = [*(UNPRIVILEGED if unprivileged else []), sys.executable, "-m", "docsort", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def records_by_name(out: Path) -> dict[str, dict]:
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {Path(d["file"]).name: d for d in results["documents"]}


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("good")
    write_samples(folder, count=3, seed=31)
    return sorted(folder.glob("envelope_*"))


def tiff_with_corrupt_middle_page(envelope: Path, path: Path) -> None:
    page = Image.open(envelope).convert("L")
    page.save(path, save_all=True, append_images=[page, page], compression="tiff_lzw")
    with Image.open(path) as image:
        image.seek(1)
        offsets, counts = image.tag_v2[273], image.tag_v2[279]
    data = bytearray(path.read_bytes())
    for offset, count in zip(offsets, counts):
        data[offset:offset + count] = b"\xff" * count
    path.write_bytes(bytes(data))


def test_every_bad_input_gets_its_record_and_the_good_ones_are_processed(envelopes, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    for envelope in envelopes[:2]:
        shutil.copy(envelope, good / envelope.name)
    (good / "notes.txt").write_text("not a scan")
    awkward = tmp_path / "awkward"
    awkward.mkdir()
    names = ["scan with spaces.jpg", "Übersee_東京.jpg", "two\nlines.jpg"]
    for name in names:
        shutil.copy(envelopes[2], awkward / name)
    bad = tmp_path / "bad"
    bad.mkdir()
    bad_paths = {kind: make_bad_input(kind, bad) for kind in BAD_INPUTS}
    private = bad / "private.png"
    shutil.copy(envelopes[0], private)
    private.chmod(0)
    tiff = bad / "three_pages.tif"
    tiff_with_corrupt_middle_page(envelopes[1], tiff)
    cv2.imwrite(str(bad / "blank.png"), np.full((900, 1800), 255, np.uint8))
    cv2.imwrite(str(bad / "black.png"), np.zeros((900, 1800), np.uint8))

    out = tmp_path / "out"
    inputs = [good, awkward, *bad_paths.values(), private, tiff, bad / "blank.png", bad / "black.png"]
    result = docsort("process", *inputs, "--out", out, "--jobs", "2", unprivileged=True)
    assert result.returncode == ExitCode.INPUTS_FAILED, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""

    records = records_by_name(out)
    for kind, expected in BAD_INPUTS.items():
        if kind == "folder_named_png":
            continue  # a folder is walked, not read: it holds no documents
        record = records[bad_paths[kind].name]
        assert record["status"] == "error" and record["pages"] == []
        assert expected in record["error"] and "\n" not in record["error"], (kind, record["error"])
    assert records["private.png"]["error"] == "permission denied"
    for name in [p.name for p in envelopes[:2]] + names:
        assert records[name]["status"] == "ok", records[name]
        assert records[name]["pages"][0]["postal_code"] is not None
    multi = records["three_pages.tif"]
    assert multi["status"] == "error" and multi["error"].startswith("page 2:")
    assert [p["error"] is None for p in multi["pages"]] == [True, False, True]
    assert multi["pages"][0]["postal_code"] is not None
    for name in ("blank.png", "black.png"):
        assert records[name]["status"] == "ok"
        assert records[name]["pages"][0]["postal_code"] is None  # nothing to read: manual sorting
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["skipped"] == 1
    # Pages without a code (blank, black) and the corrupt TIFF page go to manual sorting too.
    assert summary["unreadable_pages"] == 1 and summary["no_code"] >= 2
    assert summary["auto"] + summary["manual"] == summary["pages"]
    assert summary["errors"] == len(BAD_INPUTS) - 1 + 2  # + unreadable file + corrupt TIFF page


def test_600dpi_a3_scan_through_the_pipeline_stays_under_2_gib(tmp_path):
    """Peak RSS of every process of a batch (the batch, its worker, Tesseract) on one huge page."""
    width, height = A3_600DPI
    page = np.full((height, width, 3), 245, np.uint8)
    cv2.putText(page, "Erika Mustermann", (3000, 4600), cv2.FONT_HERSHEY_SIMPLEX, 9, (20, 20, 20), 22)
    cv2.putText(page, "10115 Berlin", (3000, 5200), cv2.FONT_HERSHEY_SIMPLEX, 9, (20, 20, 20), 22)
    scan = tmp_path / "a3_600dpi.jpg"
    cv2.imwrite(str(scan), page, [cv2.IMWRITE_JPEG_QUALITY, 90])
    del page
    measure = textwrap.dedent("""
        import resource, subprocess, sys
        code = subprocess.run(sys.argv[1:]).returncode
        print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """)
    result = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "docsort", "process", str(scan),
                             "--out", str(tmp_path / "out"), "--jobs", "1", "-q"],
                            capture_output=True, text=True, timeout=600)
    code, peak_kib = map(int, result.stdout.split())
    assert code == ExitCode.OK, result.stderr
    assert peak_kib * 1024 <= 2 * 1024 ** 3, f"peak RSS {peak_kib / 1024:.0f} MiB"
    [record] = records_by_name(tmp_path / "out").values()
    assert record["status"] == "ok"


FAKE_TESSERACT = """#!{python}
# Tesseract with one injected fault: the first page it is given crashes, hangs or kills its caller.
import os, signal, sys, time

real, fault, marker = os.environ["REAL_TESSERACT"], os.environ["TESSERACT_FAULT"], os.environ["TESSERACT_MARKER"]
if len(sys.argv) > 2 and not sys.argv[1].startswith("-"):
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass
    else:
        if sys.argv[1] == "stdin":  # a reader that is handed page after page: the fault is on the first
            sys.stdin.readline()
        if fault == "hang":
            time.sleep(3600)
        elif fault == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif fault == "kill-worker":
            os.kill(os.getppid(), signal.SIGKILL)
            sys.exit(1)
os.execv(real, [real, *sys.argv[1:]])
"""

FAULT_MESSAGES = {
    "hang": "Tesseract took longer than",
    "crash": "Tesseract failed",
    "kill-worker": "worker process died",
}


@pytest.mark.parametrize("fault", sorted(FAULT_MESSAGES))
def test_tesseract_fault_costs_one_document(envelopes, tmp_path, fault):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tesseract"
    fake.write_text(FAKE_TESSERACT.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "REAL_TESSERACT": shutil.which("tesseract"),
           "TESSERACT_FAULT": fault, "TESSERACT_MARKER": str(tmp_path / "fault-injected")}
    out = tmp_path / "out"
    result = docsort("process", *envelopes, "--out", out, "--jobs", "2", "--page-timeout", "5", env=env)
    assert (tmp_path / "fault-injected").exists()
    assert result.returncode == ExitCode.INPUTS_FAILED, result.stderr
    assert "Traceback" not in result.stderr
    records = list(records_by_name(out).values())
    failed = [r for r in records if r["status"] == "error"]
    assert len(records) == len(envelopes) and len(failed) == 1
    assert FAULT_MESSAGES[fault] in failed[0]["error"], failed[0]["error"]


def test_inputs_that_hold_no_document_are_a_usage_error(tmp_path):
    """An empty folder, a folder of other files, a pattern that matched nothing: exit 2 at once,
    one line that says what was found, and no output folder."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.png").write_bytes(b"x")  # hidden entries are never read
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    (notes / "b.txt").write_text("y")
    (notes / "truth.json").write_text("{}")
    expected = {
        (empty,): f"{empty} holds no files",
        (notes,): "3 files found, none of a readable kind (skipped 1 .json, 2 .txt; docsort reads .bmp .jpeg",
        (tmp_path / "scans" / "*.png",): f"no file matches {tmp_path / 'scans' / '*.png'}",
        (empty, notes): f"{empty} holds no files; 3 files found",
    }
    out = tmp_path / "out"
    for inputs, message in expected.items():
        result = docsort("process", *inputs, "--out", out, timeout=60)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert result.stderr.startswith("docsort: error: no documents to read: ")
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert not out.exists()
    verbose = docsort("process", notes, "--out", out, "-v", timeout=60)
    assert f"docsort: debug: skipped {notes / 'a.txt'}: not a readable kind (.txt)" in verbose.stderr.splitlines()


def test_tesseract_without_english_data_stops_the_batch(envelopes, tmp_path):
    """No language data: one line saying what to install, exit 4, no output folder."""
    empty = tmp_path / "tessdata"
    empty.mkdir()
    out = tmp_path / "out"
    result = docsort("process", envelopes[0], "--out", out, env={"TESSDATA_PREFIX": str(empty)})
    assert result.returncode == ExitCode.MISSING_DEPENDENCY, result.stderr
    assert "tesseract-ocr-eng" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_worker_warm_up_finds_tesseract_that_cannot_start(tmp_path):
    """A worker (a Dask worker on another machine, say) whose Tesseract has no language data
    says so when it warms up, before it is given a document."""
    empty = tmp_path / "tessdata"
    empty.mkdir()
    check = textwrap.dedent("""
        from docsort.errors import MissingDependencyError
        from docsort.page import pipeline
        try:
            pipeline.warm_up()
        except MissingDependencyError as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TESSDATA_PREFIX": str(empty)})
    assert result.stdout.startswith("Tesseract cannot start"), result.stdout + result.stderr
    assert "tesseract-ocr-eng" in result.stdout
