"""Which models ship and how they combine: ``manifest.json`` in the models folder.

The manifest (written by ``docsort train export``, ``docsort.training.manifest``) lists every
network by its role: its ``.onnx`` file with sha256, input and version, and the ``.keras`` it was
exported from; the printed/handwritten ensemble and its bands of doubt; the members of the
whole-field ensemble; the weights that combine the two digit readers and the field
calibration; the accept threshold and the file it was measured in. Readers ask the manifest
for their networks and parameters; nothing finds a model by its file name.

A folder holding a model file the manifest does not list, or missing a listed file, or with a
file whose sha256 is not the listed one, is refused with a ``MissingDependencyError`` (exit code
4): a batch must run on exactly the models that were measured.

Models ship inside the installed package (``docsort/models``, copied from the repository's
top-level ``models/`` at build time). In a source checkout or editable install they are read
from ``models/`` beside the package. ``DOCSORT_MODELS`` overrides both.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Optional

from docsort import settings
from docsort.errors import MissingDependencyError

MANIFEST_FILE = "manifest.json"
FORMAT = 1
# Model files: what reading runs, and what training made (kept to reproduce and measure).
MODEL_SUFFIXES = (".onnx", ".keras")

DIGITS = "digits"
WRITING_TYPE = "writing_type"
DIGIT_STRINGS = "digit_strings"
# Roles of the networks in the manifest.
ROLE_DIGITS = "digits"
ROLE_WRITING_TYPE = "writing_type"
ROLE_SECOND_LOOK = "writing_type.second_look"
ROLE_LONE_CHARACTERS = "writing_type.lone_characters"
ROLE_DIGIT_STRINGS = "digit_strings.member"
# PP-OCR's text recogniser, shipped as its authors publish it (no .keras: not trained here).
ROLE_LINE_READER = "line_reader"
LINE_READER_FILE = "PP-OCRv6_rec_small.onnx"


def models_dir() -> Path:
    """The folder holding ``manifest.json`` and the files it lists."""
    override = settings.models_folder()
    if override is not None:
        return override
    package_dir = Path(__file__).resolve().parents[1]
    for candidate in (package_dir / "models", package_dir.parent / "models"):
        if candidate.is_dir():
            return candidate
    return package_dir / "models"


def keras_path(name: str) -> Path:
    """A trained model's ``.keras`` file (training and evaluation; reading runs the ``.onnx``)."""
    return models_dir() / f"{name}.keras"


def metrics_path(name: str) -> Path:
    return models_dir() / f"{name}.metrics.json"


def load_metrics(name: str) -> dict:
    """A model's measured metrics (training and evaluation), or ``{}`` when none are shipped."""
    path = metrics_path(name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"model metrics {path} cannot be read: {exc}") from exc


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


class Manifest:
    """A models folder as its ``manifest.json`` describes it."""

    def __init__(self, folder: Path, data: dict, sha256: str):
        self.folder = folder
        self.data = data
        self.sha256 = sha256

    @property
    def version(self) -> int:
        return self.data["version"]

    @property
    def models(self) -> dict[str, dict]:
        return self.data["models"]

    def names(self, role: str) -> list[str]:
        """The models of a role, in the manifest's order."""
        return [name for name, entry in self.models.items() if entry["role"] == role]

    def entry(self, name: str) -> dict:
        try:
            return self.models[name]
        except KeyError:
            raise MissingDependencyError(f"{self.folder / MANIFEST_FILE} lists no model {name!r}") from None

    def path(self, name: str) -> Path:
        return self.folder / self.entry(name)["file"]

    def name_of(self, path: str | os.PathLike) -> Optional[str]:
        """The listed model whose ``.onnx`` or ``.keras`` is ``path``, or None."""
        target = Path(path).resolve()
        for name, entry in self.models.items():
            if target in ((self.folder / entry["file"]).resolve(), (self.folder / entry["source"]["file"]).resolve()):
                return name
        return None

    def network(self, name: str, spec):
        """The listed network, checked against its sha256 and the input its reader feeds it."""
        from docsort.reading import engine

        entry = self.entry(name)
        fed = spec.describe()
        if {key: entry["input"].get(key) for key in fed} != fed:
            raise MissingDependencyError(
                f"{self.folder / MANIFEST_FILE} describes another input for {entry['file']} than this docsort "
                f"feeds it ({entry['input']} vs {fed}); install the models made for this version")
        self.check_file(name)
        return engine.Network.load(self.path(name))

    def check_file(self, name: str) -> None:
        """Refuse a listed ``.onnx`` that is missing or not the file that was listed."""
        entry = self.entry(name)
        path = self.folder / entry["file"]
        if not path.is_file():
            raise MissingDependencyError(f"model file not found: {path} (listed in {MANIFEST_FILE})")
        if file_sha256(path) != entry["sha256"]:
            raise MissingDependencyError(
                f"model file {path} is corrupt or replaced: its sha256 is not the one {MANIFEST_FILE} lists; restore "
                f"it, or write the manifest again for new models (docsort train export {self.folder})")

    def verify(self) -> None:
        """Check every listed network before any work."""
        for name in self.models:
            self.check_file(name)

    def writing_type(self) -> Optional[dict]:
        """The printed/handwritten ensemble: ``main``, ``second_looks``, ``lone_characters``, ``doubt``."""
        return self.data.get("ensembles", {}).get(WRITING_TYPE)

    def string_members(self) -> list[str]:
        """The whole-field ensemble's members, its first model first."""
        ensemble = self.data.get("ensembles", {}).get(DIGIT_STRINGS)
        return list(ensemble["members"]) if ensemble else []

    def string_views(self) -> list[int]:
        """The ink heights the whole-field ensemble reads a field at (one, 24 rows, before views)."""
        ensemble = self.data.get("ensembles", {}).get(DIGIT_STRINGS) or {}
        return list(ensemble.get("views") or [24])

    def line_reader(self) -> Optional[str]:
        """The line reader's name (PP-OCR's recogniser), or None when the folder ships none."""
        names = self.names(ROLE_LINE_READER)
        return names[0] if names else None

    @property
    def combination(self) -> Optional[dict]:
        """The logistic model that combines the digit readers (None: not shipped)."""
        return self.data.get("field_reading", {}).get("combination")

    @property
    def destination(self) -> Optional[dict]:
        """The fitted destination picker: ``features`` and their ``weights`` (None: not shipped)."""
        return self.data.get("destination")

    @property
    def field_calibration(self) -> Optional[dict]:
        """Whether a field is a number and P(its reading is right) (None: not shipped)."""
        return self.data.get("field_reading", {}).get("field_calibration")

    def describe(self) -> dict:
        """The manifest as ``results.json`` names it."""
        return {"file": MANIFEST_FILE, "sha256": self.sha256, "version": self.version}

    def run_models(self) -> dict[str, dict]:
        """``results.json``'s ``models`` block: every network that reads, as run."""
        return {name: {"file": entry["file"], "sha256": entry["sha256"], "test_accuracy": entry.get("test_accuracy"),
                       "role": entry["role"], "version": entry["version"]}
                for name, entry in self.models.items()}

    def code_reader_models(self) -> dict[str, dict]:
        """``{name: {"file", "sha256"}}`` of the trained models a code's reading and confidence come
        from: the digit network and every whole-field member, named by the ``.keras`` each was
        exported from (as measured trade-offs record them)."""
        names = self.names(ROLE_DIGITS) + self.string_members()
        found = {name: dict(self.entry(name)["source"]) for name in names}
        line = self.line_reader()
        if line is not None:
            found[line] = {"file": self.entry(line)["file"], "sha256": self.entry(line)["sha256"]}
        return found


_manifests: dict[tuple, Manifest] = {}
_lock = threading.Lock()


def load(folder: str | os.PathLike | None = None) -> Manifest:
    """The manifest of ``folder`` (default: the installed models), read once per process.

    Refuses (``MissingDependencyError``) a folder without a readable manifest or holding a model
    file it does not list."""
    folder = Path(folder) if folder is not None else models_dir()
    path = folder / MANIFEST_FILE
    try:
        stat = path.stat()
    except OSError:
        raise MissingDependencyError(
            f"no {MANIFEST_FILE} in the models folder {folder}; write it with: docsort train export {folder}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _manifests:
            return _manifests[key]
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
            raise ValueError(f"not a docsort model manifest of format {FORMAT}")
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"model manifest {path} cannot be read: {exc}") from None
    manifest = Manifest(folder, data, file_sha256(path))
    listed = {entry["file"] for entry in manifest.models.values()}
    listed |= {entry["source"]["file"] for entry in manifest.models.values()}
    unlisted = sorted(p.name for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES and p.name not in listed)
    if unlisted:
        raise MissingDependencyError(
            f"model file {', '.join(unlisted)} in {folder} is not listed in {MANIFEST_FILE}; remove it, or write the "
            f"manifest again to ship it (docsort train export {folder})")
    with _lock:
        _manifests[key] = manifest
    return manifest


def shipped() -> Manifest:
    """The installed models' manifest."""
    return load()


def code_reader_models(digit_model: Optional[Path] = None) -> dict[str, dict]:
    """The trained models a postal code's reading and confidence come from, as ``{name: {"file",
    "sha256"}}``: the digit model (``digit_model``, a ``.keras`` file, default the installed one)
    and every whole-field member. A measured accept threshold holds for exactly these."""
    models = shipped().code_reader_models()
    if digit_model is not None:
        models[DIGITS] = {"file": Path(digit_model).name, "sha256": file_sha256(digit_model)}
    return models
