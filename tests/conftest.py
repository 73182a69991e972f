"""Shared test fixtures: the real datasets beside the checkout and helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DOCSORT_DATASETS", REPO.parent / "shared" / "datasets"))
MNIST_DIR = DATASETS / "mnist"
DHSD_DIR = DATASETS / "dhsd"
TESSERACT_PAGES = DATASETS / "tesseract-pages"

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# Where ``docsort samples`` and the dataset commands find real handwriting, as a user sets it.
os.environ.setdefault("DOCSORT_DATASETS", str(DATASETS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(*args: str, timeout: float = 600, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``docsort`` as a user would: a separate process, real exit code, real streams."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "docsort", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd,
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found at {MNIST_DIR} (set DOCSORT_DATASETS)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def dhsd_dir() -> Path:
    if not (DHSD_DIR / "data.csv").exists():
        pytest.fail(f"DHSD not found at {DHSD_DIR} (set DOCSORT_DATASETS)")
    return DHSD_DIR


@pytest.fixture(scope="session")
def tesseract_pages() -> Path:
    return TESSERACT_PAGES
