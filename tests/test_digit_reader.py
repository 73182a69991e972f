"""Reading handwritten number fields: real MNIST digits composed into strings."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli
from docsort.reading.digits import segmenting
from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
from docsort.training.synth.handwriting import compose_digit_string


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return (read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz"),
            read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz"))


def _field(mnist_test, text, rng, gap=(-0.05, 0.4)):
    images, labels = mnist_test
    picks = [images[rng.choice(np.flatnonzero(labels == int(c)))] for c in text]
    image, _ = compose_digit_string(picks, rng, gap=gap, height=float(rng.uniform(30, 48)))
    return image


def test_read_digits_cli_reads_postal_codes(mnist_test, tmp_path):
    rng = np.random.default_rng(5)
    codes = ["62704", "10115", "80331", "50667", "20095", "01067"]
    files = []
    for code in codes:
        path = tmp_path / f"{code}.png"
        cv2.imwrite(str(path), _field(mnist_test, code, rng))
        files.append(path)
    proc = run_cli("read-digits", *files, "--json", "--code-length", "5")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    right = [r["digits"] == code for r, code in zip(rows, codes)]
    assert sum(right) >= 5
    for row in rows:
        assert len(row["digit_confidences"]) == len(row["digits"]) == 5
        assert 0.0 <= row["confidence"] <= min(row["digit_confidences"]) + 1e-9


def test_any_length_without_code_length(mnist_test):
    rng = np.random.default_rng(9)
    texts = ["7", "42", "913", "2024", "31415926"]
    readings = segmenting.read_fields([_field(mnist_test, t, rng, gap=(0.1, 0.4)) for t in texts])
    assert sum(r.digits == t for r, t in zip(readings, texts)) >= 4


def test_touching_digits_are_split(mnist_test):
    rng = np.random.default_rng(2)
    texts = [f"{n:05d}" for n in rng.integers(0, 100000, 12)]
    fields = [_field(mnist_test, t, rng, gap=(-0.2, 0.05)) for t in texts]
    readings = segmenting.read_fields(fields, code_length=5)
    assert sum(r.digits == t for r, t in zip(readings, texts)) >= 8


def test_confidence_is_low_when_the_field_is_doubtful(mnist_test):
    rng = np.random.default_rng(4)
    clean = segmenting.read_field(_field(mnist_test, "4711", rng, gap=(0.2, 0.4)), code_length=4)
    smudged = _field(mnist_test, "4711", rng, gap=(0.2, 0.4))
    smudged[:, smudged.shape[1] // 3: smudged.shape[1] // 2] = 40  # a blot over the middle digits
    doubtful = segmenting.read_field(smudged, code_length=4)
    assert doubtful.confidence < clean.confidence


def test_blank_field_reads_nothing():
    reading = segmenting.read_field(np.full((40, 120), 250, np.uint8), code_length=5)
    assert reading.digits == "" and reading.confidence == 0.0


def test_unreadable_image_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    proc = run_cli("read-digits", bad, "--json")
    assert proc.returncode == 3
    assert "bad.png" in proc.stderr and "Traceback" not in proc.stderr
