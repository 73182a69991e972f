"""Where the shipped models live, and loading them once per process.

Models ship inside the installed package (``docsort/models``, copied from the repository's
top-level ``models/`` at build time). In a source checkout or editable install they are read
from ``models/`` beside the package. ``DOCSORT_MODELS`` overrides both.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from docsort.errors import MissingDependencyError

DIGITS = "digits"
WRITING_TYPE = "writing_type"
DIGIT_STRINGS = "digit_strings"


def models_dir() -> Path:
    """The folder holding the shipped ``*.keras`` and ``*.metrics.json`` files."""
    override = os.environ.get("DOCSORT_MODELS")
    if override:
        return Path(override)
    package_dir = Path(__file__).resolve().parents[1]
    for candidate in (package_dir / "models", package_dir.parent / "models"):
        if candidate.is_dir():
            return candidate
    return package_dir / "models"


def model_path(name: str) -> Path:
    return models_dir() / f"{name}.keras"


def metrics_path(name: str) -> Path:
    return models_dir() / f"{name}.metrics.json"


def load_metrics(name: str) -> dict:
    """The shipped model's measured metrics, or ``{}`` when none are shipped."""
    path = metrics_path(name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"model metrics {path} cannot be read: {exc}") from exc


def string_model_files() -> list[Path]:
    """The whole-field models: ``digit_strings.keras`` and the other members of its ensemble
    named in its metrics (models trained alike from other seeds)."""
    names = load_metrics(DIGIT_STRINGS).get("ensemble") or [model_path(DIGIT_STRINGS).name]
    return [models_dir() / name for name in names]


def code_reader_models(digit_model: Path | None = None) -> dict[str, dict]:
    """``{name: {"file", "sha256"}}`` of the model files a postal code's reading and confidence
    come from: the digit CNN (``digit_model``, default the installed one) and every whole-field
    model. A measured accept threshold holds for exactly these files; results.json's ``models``
    block has the same form. A missing file has ``sha256`` None."""
    files = {DIGITS: Path(digit_model) if digit_model is not None else model_path(DIGITS)}
    files.update((path.stem, path) for path in string_model_files())
    return {name: {"file": path.name,
                   "sha256": file_sha256(str(path.resolve())) if path.is_file() else None}
            for name, path in files.items()}


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256, hashed once per process while its size and time are unchanged."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_loaded: dict[str, object] = {}
_runtime_models: dict[str, object] = {}


def inference_runtime() -> str:
    """``numpy`` (default: no TensorFlow in workers) or ``keras`` (``DOCSORT_RUNTIME=keras``)."""
    runtime = os.environ.get("DOCSORT_RUNTIME", "numpy").strip().lower() or "numpy"
    if runtime not in ("numpy", "keras"):
        raise MissingDependencyError(f"DOCSORT_RUNTIME must be 'numpy' or 'keras', not {runtime!r}")
    return runtime


def load_model(path: str | os.PathLike):
    """A shipped model for inference, loaded once per process.

    Runs on the numpy engine (``docsort.reading.engine``), which starts in milliseconds and keeps a
    worker's memory small; a model with a layer that engine lacks, or ``DOCSORT_RUNTIME=keras``,
    loads with Keras instead. Either way the object answers ``predict_on_batch(x)``.
    """
    if inference_runtime() == "keras":
        return load_keras_model(path)
    key = str(Path(path).resolve())
    if key in _runtime_models:
        return _runtime_models[key]
    if not Path(key).is_file():
        raise MissingDependencyError(f"model file not found: {path}")
    from docsort.reading import engine as runtime

    try:
        model = runtime.load(key, threads=_model_threads())
    except runtime.UnsupportedModel:
        return load_keras_model(path)
    except Exception as exc:  # zip, JSON and HDF5 errors for a damaged archive
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingDependencyError(f"model file {path} is corrupt or unreadable: {first_line}") from exc
    _runtime_models[key] = model
    return model


def _model_threads() -> int:
    """Threads for the numpy engine: ``DOCSORT_TF_THREADS`` (a worker's share of the cores, set
    by the executor) or all cores. The engine parallelises over chunks of a batch, so BLAS is
    kept to one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    threads = int(os.environ.get("DOCSORT_TF_THREADS", "0") or 0)
    return threads if threads > 0 else len(os.sched_getaffinity(0))


def load_keras_model(path: str | os.PathLike):
    """Load a model with Keras (training, reports), once per process; a missing or corrupt
    file is a dependency error."""
    key = str(Path(path).resolve())
    if key in _loaded:
        return _loaded[key]
    if not Path(key).is_file():
        raise MissingDependencyError(f"model file not found: {path}")
    from docsort.training.tf import keras

    try:
        model = keras().models.load_model(key, compile=False)
    except Exception as exc:  # keras raises many types for a broken archive
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingDependencyError(f"model file {path} is corrupt or unreadable: {first_line}") from exc
    _loaded[key] = model
    return model
