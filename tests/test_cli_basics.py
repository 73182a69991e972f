"""The command line's contract: fast help, stable exit codes, no heavy imports for --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, run_cli

from docsort.errors import ExitCode


def test_help_lists_commands_and_exits_zero():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("process", "read-digits", "classify", "cost", "evaluate", "train", "samples"):
        assert command in result.stdout


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("docsort ")


def test_unknown_command_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == ExitCode.USAGE


def test_help_imports_no_heavy_libraries():
    """--help must stay instant: TensorFlow, OpenCV and NumPy are imported only by commands that need them."""
    code = (
        "import sys; from docsort.cli.app import app; "
        "heavy = [m for m in ('tensorflow', 'keras', 'cv2', 'numpy', 'matplotlib', 'dask') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_exit_codes_are_stable():
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "INTERNAL_ERROR": 1, "USAGE": 2, "INPUTS_FAILED": 3, "MISSING_DEPENDENCY": 4,
        "LOCKED": 5, "OUTPUT_NOT_WRITABLE": 6, "INTERRUPTED": 130,
    }


def test_help_lists_process_first_and_shows_the_default_threshold_as_a_number():
    listed = [line.split()[0] for line in run_cli("--help").stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed[:5] == ["process", "read-digits", "classify", "cost", "samples"]
    shown = " ".join(run_cli("process", "--help").stdout.split())
    shipped = json.loads((REPO / "models" / "digits.tradeoff.json").read_text())["optimal"]["threshold"]
    assert f"[default: {shipped:.3f}," in shown


@pytest.mark.parametrize("command", [["process", "x", "--out", "o"], ["read-digits", "x"], ["cost", "--accuracy", "0.99"],
                                     ["samples", "--out", "o"]])
def test_every_code_length_has_the_same_range(command, tmp_path):
    for length, ok in (("0", False), ("13", False)):
        result = run_cli(*command, "--code-length", length, cwd=tmp_path)
        assert result.returncode == ExitCode.USAGE, (command, result.stderr)
        assert "1<=x<=12" in result.stderr or "less than or equal to 12" in result.stderr \
            or "greater than or equal to 1" in result.stderr or "between 1 and 12" in result.stderr
    assert not (tmp_path / "o").exists()


def test_list_commands_print_tab_separated_lines_when_piped(tmp_path):
    import cv2
    import numpy as np

    name = tmp_path / ("a-rather-long-file-name-that-a-table-would-have-to-cut-short-" * 2 + ".png")
    crop = np.full((40, 160), 255, np.uint8)
    cv2.putText(crop, "Berlin", (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    cv2.imwrite(str(name), crop)
    for command in ("classify", "read-digits"):
        result = run_cli(command, name)  # stdout is a pipe here, as under cron or in a shell pipeline
        assert result.returncode == 0, result.stderr
        header, row = result.stdout.rstrip("\n").split("\n")
        assert header.split("\t")[0] == "file" and row.split("\t")[0] == str(name), command
        assert "…" not in result.stdout and "..." not in result.stdout


def test_option_names_in_error_messages(tmp_path):
    result = run_cli("process", tmp_path, "--out", tmp_path / "o", "--page-timeout", "0")
    assert result.returncode == ExitCode.USAGE and "--page-timeout must be positive" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", ["no tesseract", "no models", "no scheduler", "output is a file",
                                  "output not writable", "output in use"])
def test_a_run_that_cannot_start_fails_before_any_heavy_import(case, tmp_path):
    """No Tesseract on the PATH, a models folder without its manifest, a scheduler port where
    nothing listens, an output that is a file, in a folder no one may write or held by another batch:
    one line, its exit code, no output folder (or the one there untouched), and no worker
    started and no NumPy imported first (the message comes in the time ``--help`` takes)."""
    import fcntl
    import os
    import shutil

    env = dict(os.environ)
    out = tmp_path / "out"
    args = ["process", str(REPO / "sample_docs"), "--out", str(out)]
    expected = ExitCode.MISSING_DEPENDENCY
    held = None
    if case == "output is a file":
        out.write_text("not a folder")
        expected = ExitCode.OUTPUT_NOT_WRITABLE
    elif case == "output not writable":
        args[-1] = "/proc/sys/docsort-out"  # a folder no one may write in, root included
        expected = ExitCode.OUTPUT_NOT_WRITABLE
    elif case == "output in use":
        (out / ".docsort").mkdir(parents=True)
        held = open(out / ".docsort" / "lock", "a+")
        fcntl.flock(held, fcntl.LOCK_EX)
        expected = ExitCode.LOCKED
    elif case == "no tesseract":
        bare = tmp_path / "bin"
        bare.mkdir()
        (bare / "python").symlink_to(sys.executable)
        env["PATH"] = str(bare)
        assert shutil.which("tesseract", path=env["PATH"]) is None
    elif case == "no models":
        env["DOCSORT_MODELS"] = str(tmp_path / "no-models")
    else:
        args += ["--scheduler", f"tcp://127.0.0.1:{_free_port()}"]
    code = ("import sys, runpy; sys.argv = ['docsort', *sys.argv[1:]]\n"
            "from docsort.batch import executors\n"
            "spawned, spawn = [], executors.LocalExecutor._spawn_worker\n"
            "executors.LocalExecutor._spawn_worker = lambda self: spawned.append(1) or spawn(self)\n"
            "try:\n    runpy.run_module('docsort', run_name='__main__')\n"
            "finally:\n    print('numpy imported' if 'numpy' in sys.modules else 'no numpy',\n"
            "          f'{len(spawned)} workers started', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    if held is not None:
        held.close()
    assert done.returncode == expected, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("docsort: error: "), lines
    assert lines[1] == "no numpy 0 workers started"
    if case == "output is a file":
        assert out.read_text() == "not a folder"
    elif case == "output in use":
        assert sorted(p.name for p in out.rglob("*")) == [".docsort", "lock"]
    else:
        assert not out.exists()


@pytest.mark.parametrize("filters", ["4,x,16", "8", "4,8,16,32,64,128,256", "4,0,8"])
def test_a_network_shape_that_cannot_be_trained_is_a_usage_error(filters, tmp_path):
    """``train writing-type --filters`` says in one line what it takes, before any data is made."""
    result = run_cli("train", "writing-type", "--out", tmp_path / "o", "--filters", filters)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "--filters" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
