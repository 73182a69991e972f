"""MNIST loading from the places users keep it, and clear messages when the files are wrong."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from conftest import run_cli
from docsort import settings
from docsort.training.datasets import mnist
from docsort.errors import DatasetError, ExitCode

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TRAIN_IMAGES_SHA256 = "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"


@pytest.fixture(scope="module")
def real(mnist_dir):
    return mnist.load(mnist_dir)


def test_gzip_folder_loads_all_digits(real):
    assert real.train.images.shape == (60000, 28, 28) and real.train.images.dtype == np.uint8
    assert real.test.images.shape == (10000, 28, 28)
    assert np.bincount(real.train.labels).tolist() == TRAIN_COUNTS
    # MNIST polarity: paper is 0, ink is high.
    assert real.train.images[:, 0, :].mean() < 0.1 and real.train.images.max() == 255
    assert set(real.sha256) == {name + ".gz" for name in mnist.FILES.values()}


def test_uncompressed_folder_gives_the_same_digits(real, mnist_dir, tmp_path):
    for stem in mnist.FILES.values():
        with gzip.open(mnist_dir / f"{stem}.gz") as src, open(tmp_path / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = mnist.load(tmp_path)
    assert np.array_equal(plain.train.images, real.train.images)
    assert np.array_equal(plain.test.labels, real.test.labels)
    assert plain.sha256["train-images-idx3-ubyte"] == TRAIN_IMAGES_SHA256


def test_keras_npz_loads_from_file_and_from_env(real, tmp_path, monkeypatch):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=real.train.images, y_train=real.train.labels.astype(np.uint8),
             x_test=real.test.images, y_test=real.test.labels.astype(np.uint8))
    loaded = mnist.load(npz)
    assert np.array_equal(loaded.test.images, real.test.images)
    assert loaded.train.labels.tolist() == real.train.labels.tolist()
    monkeypatch.setenv(settings.MNIST_VAR, str(npz))
    assert len(mnist.load().train) == 60000


def test_validation_is_carved_from_train_fixed_and_disjoint(real):
    train_a, val_a = mnist.train_validation_split(real.train)
    train_b, val_b = mnist.train_validation_split(real.train)
    assert len(val_a) == mnist.VALIDATION_SIZE and len(train_a) == 60000 - mnist.VALIDATION_SIZE
    assert np.array_equal(val_a.images, val_b.images)
    assert len(np.unique(np.bincount(val_a.labels))) > 1  # a random draw, not the first rows
    small = mnist.stratified_head(train_a, 1000)
    assert len(small) == 1000 and np.bincount(small.labels).tolist() == [100] * 10


def _broken_copy(mnist_dir, tmp_path):
    for stem in mnist.FILES.values():
        shutil.copy(mnist_dir / f"{stem}.gz", tmp_path / f"{stem}.gz")
    return tmp_path


@pytest.mark.parametrize("damage, words", [
    ("missing", "missing"),
    ("bad_magic", "not an IDX image file"),
    ("truncated", "truncated"),
    ("not_gzip", "cannot read"),
])
def test_broken_data_gives_one_line_error_and_usage_exit(mnist_dir, tmp_path, damage, words):
    folder = _broken_copy(mnist_dir, tmp_path)
    target = folder / "t10k-images-idx3-ubyte.gz"
    with gzip.open(target) as fh:
        raw = fh.read()
    if damage == "missing":
        target.unlink()
    elif damage == "bad_magic":
        target.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + raw[4:]))
    elif damage == "truncated":
        target.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    else:
        target.write_bytes(b"this is not gzip data")
    result = run_cli("evaluate", "digits", "--data", folder, "--json")
    assert result.returncode == ExitCode.USAGE
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("docsort:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_nonexistent_location_and_wrong_npz(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        mnist.load(tmp_path / "nowhere")
    bad = tmp_path / "mnist.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(DatasetError, match="not keras' mnist.npz"):
        mnist.load(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cannot read"):
        mnist.load(bad)
