"""Every option's default and every ``DOCSORT_*`` environment variable, defined once.

The command line shows these defaults in ``--help`` without importing the pipeline, and the
library uses the same values; no other module reads a ``DOCSORT_*`` variable itself. Variables
are read when asked for, not at import: batch workers get theirs set by the parent process, and
tests change them between calls.

The environment variables docsort reads (README's table says the same, and a test keeps the two
in step):

| variable | what it sets |
| --- | --- |
| ``DOCSORT_MODELS`` | folder of the model files (default: the shipped ``models/``) |
| ``DOCSORT_THREADS`` | threads each network runs on (ONNX Runtime; TensorFlow when training); default all cores; one per worker in ``process``, a Dask worker's ``--nthreads`` there |
| ``DOCSORT_TF_LOG`` | ``1`` shows TensorFlow's own start-up messages |
| ``DOCSORT_DATASETS`` | folder with ``mnist/``, ``dhsd/``, ``tesseract-pages/`` for ``train``, ``evaluate``, ``samples`` |
| ``DOCSORT_MNIST`` | the MNIST files alone (``train digits``, ``evaluate digits``) |
| ``DOCSORT_CACHE`` | where training keeps generated crops between runs, postal directories their compact form, and large networks their optimised form |
| ``DOCSORT_WORKER_START_TIMEOUT`` | seconds a local worker may take to load the models before it is stopped |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

# --------------------------------------------------------------------------- option defaults

CODE_LENGTH = 5  # digits in a postal code (US ZIP, DE PLZ, FR code postal)
# The digit strings any command reads: a postal code of 1 (a district) to 12 digits, a number
# field (an amount, a house or customer number) as long.
CODE_LENGTH_MIN, CODE_LENGTH_MAX = 1, 12
PAGE_TIMEOUT_S = 60.0  # seconds Tesseract may spend on one page
SCHEDULER_TIMEOUT_S = 60.0  # connecting to a Dask scheduler and waiting for its first worker
DOCUMENT_TIMEOUT_S = 1800.0  # one whole document on a local worker (``docsort.api``; a hung worker is replaced)
WORKER_START_TIMEOUT_S = 120.0  # a local worker loading the models (about a second; more on a loaded machine)
MAX_MEGAPIXELS = 150.0  # 600 dpi A3 is about 70 MP; anything far beyond is not a scan


def check_code_length(value: int, option: str = "--code-length") -> int:
    """The one range for every ``--code-length``."""
    from docsort.errors import UsageError

    if not (isinstance(value, int) and CODE_LENGTH_MIN <= value <= CODE_LENGTH_MAX):
        raise UsageError(f"{option} must be between {CODE_LENGTH_MIN} and {CODE_LENGTH_MAX} digits (got {value})")
    return value


# --------------------------------------------------------------------------- environment variables

MODELS_VAR = "DOCSORT_MODELS"
MODEL_THREADS_VAR = "DOCSORT_THREADS"
TF_LOG_VAR = "DOCSORT_TF_LOG"
DATASETS_VAR = "DOCSORT_DATASETS"
MNIST_VAR = "DOCSORT_MNIST"
CACHE_VAR = "DOCSORT_CACHE"
WORKER_START_TIMEOUT_VAR = "DOCSORT_WORKER_START_TIMEOUT"
ENVIRONMENT = (MODELS_VAR, MODEL_THREADS_VAR, TF_LOG_VAR, DATASETS_VAR, MNIST_VAR, CACHE_VAR,
               WORKER_START_TIMEOUT_VAR)


def _path(variable: str) -> Optional[Path]:
    value = os.environ.get(variable)
    return Path(value) if value else None


def models_folder() -> Optional[Path]:
    """``$DOCSORT_MODELS``: the model files to use instead of the shipped ones (None: shipped)."""
    return _path(MODELS_VAR)


def model_threads() -> int:
    """``$DOCSORT_THREADS``: threads each network runs on; 0 when unset (the engine then uses every core)."""
    value = (os.environ.get(MODEL_THREADS_VAR) or "").strip()
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        from docsort.errors import UsageError

        raise UsageError(f"{MODEL_THREADS_VAR} must be a whole number of threads, not {value!r}") from None


def model_threads_set() -> bool:
    """Whether the user (or the parent batch) chose the model threads."""
    return bool(os.environ.get(MODEL_THREADS_VAR))


def worker_environment(model_threads: int) -> dict[str, str]:
    """What a batch sets in each worker's environment: the threads of its networks,
    and Tesseract's OpenMP clamped to one thread (workers are parallel processes already)."""
    return {MODEL_THREADS_VAR: str(max(1, int(model_threads))), "OMP_THREAD_LIMIT": "1"}


def worker_start_timeout() -> float:
    """``$DOCSORT_WORKER_START_TIMEOUT``: seconds a local worker may take to get ready, else
    ``WORKER_START_TIMEOUT_S``; a worker that hangs while loading must not hold the batch."""
    value = (os.environ.get(WORKER_START_TIMEOUT_VAR) or "").strip()
    if not value:
        return WORKER_START_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        from docsort.errors import UsageError

        raise UsageError(f"{WORKER_START_TIMEOUT_VAR} must be a positive number of seconds, not {value!r}")
    return seconds


def show_tensorflow_log() -> bool:
    """``DOCSORT_TF_LOG=1``: let TensorFlow's start-up chatter through (debugging)."""
    return os.environ.get(TF_LOG_VAR) == "1"


def datasets_folder() -> Optional[Path]:
    """``$DOCSORT_DATASETS``: the folder holding ``mnist/``, ``dhsd/`` and ``tesseract-pages/``."""
    return _path(DATASETS_VAR)


def mnist_location() -> Optional[Path]:
    """``$DOCSORT_MNIST``: MNIST's four IDX files (a folder) or ``mnist.npz``."""
    return _path(MNIST_VAR)


def cache_folder() -> Path:
    """``$DOCSORT_CACHE``, else ``$XDG_CACHE_HOME/docsort``, else ``~/.cache/docsort``."""
    chosen = _path(CACHE_VAR)
    if chosen is not None:
        return chosen
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docsort"
