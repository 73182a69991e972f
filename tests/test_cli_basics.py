"""The command line's contract: fast help, stable exit codes, no heavy imports for --help."""

from __future__ import annotations

import subprocess
import sys

from conftest import run_cli

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
        "import sys; from docsort.cli import app; "
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
