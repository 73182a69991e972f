"""read-digits' confidence: P(the string is right) for fields of 1-10 digits, and words are no numbers.

Measured on what the calibration never saw: number fields composed from MNIST *test* digits and
words by the DHSD writers held out of every model's training.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import DATASETS, run_cli
from docsort.reading.digits import confidence as field_confidence
from docsort.reading import manifest
from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
from docsort.training.synth.handwriting import dhsd_writer_split
from docsort.training.datasets.digit_fields import number_fields
from docsort.training.datasets.non_number_crops import NOT_NUMBER_KINDS, word_fields


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return (read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz"),
            read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz"))


def _measure(mnist_test, length: int, count: int, seed: int, code_length: bool = False) -> tuple[float, float]:
    """Accuracy and mean confidence of read-digits on ``count`` fields of ``length`` test digits."""
    images, labels = mnist_test
    fields, truths = number_fields(images, labels, count, seed, lengths=(length,))
    answers = field_confidence.read_number_fields(fields, length if code_length else None)
    right = [a.reading.digits == t for a, t in zip(answers, truths)]
    return float(np.mean(right)), float(np.mean([a.reading.confidence for a in answers]))


def test_single_digits_are_as_sure_as_they_are_right(mnist_test):
    accuracy, confidence = _measure(mnist_test, 1, 300, seed=31)
    assert accuracy > 0.95
    assert abs(confidence - accuracy) < 0.05, (accuracy, confidence)


@pytest.mark.slow
@pytest.mark.parametrize("length", [1, 3, 7, 10])
def test_strings_of_any_length_are_as_sure_as_they_are_right(mnist_test, length):
    for code_length in (False, True):
        accuracy, confidence = _measure(mnist_test, length, 50, seed=40 + length, code_length=code_length)
        assert abs(confidence - accuracy) < 0.07, (length, code_length, accuracy, confidence)


@pytest.mark.slow
def test_held_out_writers_words_are_no_numbers(dhsd_dir):
    crops = word_fields(dhsd_dir, dhsd_writer_split().validation, 120, seed=5)
    answers = field_confidence.read_number_fields(crops)
    # A word is never a number anyone would act on, and almost every word is judged no number.
    assert max(a.reading.confidence for a in answers) < 0.5, [a.to_dict() for a in answers]
    rejected = [not a.is_number and a.reading.confidence < 0.05 for a in answers]
    assert np.mean(rejected) >= 0.95, [a.to_dict() for a, ok in zip(answers, rejected) if not ok]
    assert all(a.to_dict()["digits"] is None for a in answers if not a.is_number)


def test_read_digits_says_whether_each_field_is_a_number(mnist_test, dhsd_dir, tmp_path):
    images, labels = mnist_test
    fields, truths = number_fields(images, labels, 2, seed=7, lengths=(5,))
    word = word_fields(dhsd_dir, dhsd_writer_split().validation, 1, seed=3)[0]
    files = []
    for name, image in (("code_a", fields[0]), ("code_b", fields[1]), ("word", word),
                        ("blank", np.full((40, 160), 245, np.uint8))):
        files.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(files[-1]), image)
    proc = run_cli("read-digits", *files, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert all({"file", "digits", "confidence", "digit_confidences", "is_number", "p_number"} <= set(r) for r in rows)
    for row, truth in zip(rows[:2], truths):
        assert row["is_number"] and row["p_number"] >= 0.5 and row["digits"] == truth
    for row in rows[2:]:
        assert row["is_number"] is False and row["digits"] is None and row["confidence"] == 0.0
        assert row["digit_confidences"] == [] and row["p_number"] < 0.5
    table = run_cli("read-digits", *files, "--code-length", "5")
    assert table.returncode == 0, table.stderr
    lines = [line.split("\t") for line in table.stdout.strip().splitlines()]
    assert lines[0] == ["file", "digits", "confidence", "is_number", "p_number"]
    assert [line[3] for line in lines[1:]] == ["yes", "yes", "no", "no"]
    assert [line[1] for line in lines[3:]] == ["", ""]


def test_shipped_calibration_is_fitted_on_the_shipped_combination():
    metrics = manifest.load_metrics(manifest.DIGIT_STRINGS)
    fit = metrics["field_calibration"]["fit"]
    assert fit["combination_sha256"] == field_confidence.combination_digest(metrics)
    assert fit["command"].startswith("docsort train field-calibration") and fit["numbers"] >= 1000
    assert set(fit["not_number_kinds"]) == set(NOT_NUMBER_KINDS)


def test_calibration_command_writes_its_fit_where_asked(tmp_path):
    out = tmp_path / "digit_strings.metrics.json"
    missing = run_cli("train", "field-calibration", "--data", tmp_path / "absent", "--out", out)
    assert missing.returncode != 0 and "absent" in missing.stderr and "Traceback" not in missing.stderr
    proc = run_cli("train", "field-calibration", "--data", DATASETS, "--numbers", "30", "--not-numbers", "12",
                   "--out", out, "-q", env={"DOCSORT_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    written = json.loads(out.read_text())
    calibration = written["field_calibration"]
    assert calibration["fit"]["numbers"] == 30 and calibration["fit"]["not_numbers"] == 12
    assert len(calibration["number"]["weights"]) == len(calibration["number"]["features"]) + len(
        calibration["number"]["products"])
    assert written["combination"] == manifest.load_metrics(manifest.DIGIT_STRINGS)["combination"]


def test_evaluate_digits_report_draws_the_field_reliability(mnist_dir, tmp_path):
    report = tmp_path / "report"
    proc = run_cli("evaluate", "digits", "--data", mnist_dir, "--report", report, "--fields", "2", "--words", "6",
                   "--handwriting", DATASETS, "--json")
    assert proc.returncode == 0, proc.stderr
    calibration = json.loads((report / "metrics.json").read_text())["calibration"]
    assert 0.0 <= calibration["ece"] <= 1.0 and calibration["n"] == 2 * (20 + 6)
    assert sum(b["n"] for b in calibration["bins"]) == calibration["n"]
    assert set(calibration["without_code_length"]["by_length"]) == {str(n) for n in range(1, 11)}
    assert calibration["words"]["n"] == 6 and "before" in calibration
    assert (report / "field_reliability.png").stat().st_size > 10_000
    assert json.loads(proc.stdout)["calibration"]["ece"] == calibration["ece"]
