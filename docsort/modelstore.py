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


def models_dir() -> Path:
    """The folder holding the shipped ``*.keras`` and ``*.metrics.json`` files."""
    override = os.environ.get("DOCSORT_MODELS")
    if override:
        return Path(override)
    package_dir = Path(__file__).resolve().parent
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


@functools.lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_loaded: dict[str, object] = {}


def load_keras_model(path: str | os.PathLike):
    """Load a Keras model once per process; a missing or corrupt file is a dependency error."""
    key = str(Path(path).resolve())
    if key in _loaded:
        return _loaded[key]
    if not Path(key).is_file():
        raise MissingDependencyError(f"model file not found: {path}")
    from docsort.tfsetup import keras

    try:
        model = keras().models.load_model(key, compile=False)
    except Exception as exc:  # keras raises many types for a broken archive
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingDependencyError(f"model file {path} is corrupt or unreadable: {first_line}") from exc
    _loaded[key] = model
    return model
