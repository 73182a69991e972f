"""Reading MNIST from where users keep it: a folder of the four IDX files, or keras' ``mnist.npz``.

The loader checks what it reads (IDX magic numbers, dimensions, label/image counts) so a
truncated download or a wrong file gives a one-line ``DatasetError`` instead of a model trained
on garbage. The file hashes go into the model's metrics so a result can be traced to its data.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docsort import settings
from docsort.errors import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
VALIDATION_SIZE = 5000
VALIDATION_SEED = 20240601


@dataclass
class Split:
    """Images as uint8 (n, 28, 28), ink high (MNIST polarity), and int labels 0-9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Mnist:
    train: Split
    test: Split
    source: str
    sha256: dict[str, str] = field(default_factory=dict)


def default_location() -> Path | None:
    """``$DOCSORT_MNIST`` if set, else ``$DOCSORT_DATASETS/mnist`` (the folder every dataset
    command reads), else keras' cache ``~/.keras/datasets/mnist.npz`` if present."""
    chosen = settings.mnist_location()
    if chosen is not None:
        return chosen
    datasets = settings.datasets_folder()
    if datasets is not None and (datasets / "mnist").is_dir():
        return datasets / "mnist"
    cached = Path.home() / ".keras" / "datasets" / "mnist.npz"
    return cached if cached.exists() else None


def load(location: str | os.PathLike | None = None) -> Mnist:
    """Load MNIST from a folder of IDX files (gzip or not) or an ``mnist.npz``."""
    path = Path(location) if location is not None else default_location()
    if path is None:
        raise DatasetError(
            f"no MNIST data given: pass --data DIR (the four IDX files or mnist.npz), set ${settings.MNIST_VAR} "
            f"or ${settings.DATASETS_VAR}, or keep keras' ~/.keras/datasets/mnist.npz")
    if not path.exists():
        raise DatasetError(f"MNIST data not found: {path}")
    if path.is_dir():
        npz = path / "mnist.npz"
        if not _find_idx(path, FILES["train_images"]) and npz.is_file():
            return _load_npz(npz)
        return _load_idx_folder(path)
    if path.suffix == ".npz":
        return _load_npz(path)
    raise DatasetError(f"{path} is neither a folder of MNIST IDX files nor an mnist.npz")


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _load_idx_folder(folder: Path) -> Mnist:
    paths = {}
    for key, stem in FILES.items():
        found = _find_idx(folder, stem)
        if found is None:
            raise DatasetError(f"MNIST file missing in {folder}: {stem} (or {stem}.gz)")
        paths[key] = found
    train = Split(read_idx_images(paths["train_images"]), read_idx_labels(paths["train_labels"]))
    test = Split(read_idx_images(paths["test_images"]), read_idx_labels(paths["test_labels"]))
    for name, split in (("train", train), ("test", test)):
        if len(split.images) != len(split.labels):
            raise DatasetError(
                f"MNIST {name} set has {len(split.images)} images but {len(split.labels)} labels")
    return Mnist(train, test, str(folder), {p.name: _sha256(p) for p in paths.values()})


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def read_idx_images(path: Path) -> np.ndarray:
    data = _read_bytes(Path(path))
    if len(data) < 16:
        raise DatasetError(f"{path} is too short to be an IDX image file")
    magic, count, rows, cols = np.frombuffer(data[:16], ">u4")
    if magic != IMAGES_MAGIC:
        raise DatasetError(f"{path} is not an IDX image file (magic {magic}, expected {IMAGES_MAGIC})")
    if (rows, cols) != (28, 28):
        raise DatasetError(f"{path} holds {rows}x{cols} images, expected 28x28")
    expected = int(count) * 28 * 28
    if len(data) - 16 != expected:
        raise DatasetError(f"{path} is truncated or padded: {len(data) - 16} image bytes, expected {expected}")
    return np.frombuffer(data, np.uint8, offset=16).reshape(int(count), 28, 28).copy()


def read_idx_labels(path: Path) -> np.ndarray:
    data = _read_bytes(Path(path))
    if len(data) < 8:
        raise DatasetError(f"{path} is too short to be an IDX label file")
    magic, count = np.frombuffer(data[:8], ">u4")
    if magic != LABELS_MAGIC:
        raise DatasetError(f"{path} is not an IDX label file (magic {magic}, expected {LABELS_MAGIC})")
    if len(data) - 8 != int(count):
        raise DatasetError(f"{path} is truncated or padded: {len(data) - 8} labels, expected {count}")
    labels = np.frombuffer(data, np.uint8, offset=8).astype(np.int64)
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{path} holds labels outside 0-9")
    return labels


def _load_npz(path: Path) -> Mnist:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise DatasetError(f"{path} is not keras' mnist.npz (missing array {exc})") from None
    except Exception as exc:  # zipfile/ValueError/OSError for a broken archive
        raise DatasetError(f"cannot read {path}: {exc}") from None
    for prefix in ("train", "test"):
        x, y = arrays[f"x_{prefix}"], arrays[f"y_{prefix}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError(f"{path}: {prefix} arrays have shapes {x.shape} and {y.shape}, "
                               "expected (n, 28, 28) and (n,)")
    train = Split(arrays["x_train"].astype(np.uint8), arrays["y_train"].astype(np.int64))
    test = Split(arrays["x_test"].astype(np.uint8), arrays["y_test"].astype(np.int64))
    return Mnist(train, test, str(path), {path.name: _sha256(path)})


def _sha256(path: Path) -> str:
    from docsort.reading.manifest import file_sha256

    return file_sha256(str(path.resolve()))


def validation_indices(n: int, size: int = VALIDATION_SIZE, seed: int = VALIDATION_SEED) -> np.ndarray:
    """Which of the ``n`` training digits are held out for validation (fixed by the seed)."""
    return np.random.default_rng(seed).permutation(n)[:size]


def train_validation_split(train: Split, size: int = VALIDATION_SIZE, seed: int = VALIDATION_SEED
                           ) -> tuple[Split, Split]:
    """A fixed, seeded validation set carved out of the training set (the test set stays untouched)."""
    val = validation_indices(len(train), size, seed)
    rest = np.setdiff1d(np.arange(len(train)), val)
    return (Split(train.images[rest], train.labels[rest]), Split(train.images[val], train.labels[val]))


def stratified_head(split: Split, limit: int) -> Split:
    """The first ``limit`` samples, taken evenly across the ten digits (the small-data comparison)."""
    if limit >= len(split):
        return split
    per_class = np.full(10, limit // 10)
    per_class[: limit % 10] += 1
    chosen = []
    for digit in range(10):
        chosen.append(np.flatnonzero(split.labels == digit)[: per_class[digit]])
    index = np.sort(np.concatenate(chosen))
    return Split(split.images[index], split.labels[index])
