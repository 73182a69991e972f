"""``docsort samples``: envelope scans with a ground truth a benchmark can trust."""

from __future__ import annotations

import json

import cv2

from conftest import DATASETS, run_cli


def test_pen_envelopes_and_truth(tmp_path):
    out = tmp_path / "env"
    proc = run_cli("samples", "--out", out, "--count", "3", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    envelopes = truth["envelopes"]
    assert len(envelopes) == 3 and truth["generator"]["handwriting"] == "pen"
    for env in envelopes:
        image = cv2.imread(str(out / env["file"]))
        assert image is not None and image.shape[:2] == (900, 1800)
        code = env["destination_code"]
        assert len(code) == 5 and code.isdigit() and code != env["sender_code"]
        roles = {e["role"] for e in env["elements"]}
        assert {"destination_code", "destination_city", "sender_name"} <= roles
        dest = next(e for e in env["elements"] if e["role"] == "destination_code")
        assert dest["kind"] == env["destination_source"]
        x, y, w, h = dest["bbox"]
        assert 0 <= x and x + w <= 1800 and 0 <= y and y + h <= 900 and w > 0 and h > 0


def test_same_seed_same_envelopes(tmp_path):
    for name in ("a", "b"):
        assert run_cli("samples", "--out", tmp_path / name, "--count", "2", "--seed", "3").returncode == 0
    a = json.loads((tmp_path / "a" / "truth.json").read_text())
    b = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert a == b


def test_real_handwriting_from_datasets(tmp_path):
    out = tmp_path / "real"
    proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "1", "--handwriting", DATASETS,
                   "--handwritten-share", "1.0")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["generator"]["handwriting"] == "datasets"
    assert all(env["destination_source"] == "handwritten" for env in truth["envelopes"])


def test_missing_handwriting_folder_is_a_clear_error(tmp_path):
    proc = run_cli("samples", "--out", tmp_path / "x", "--handwriting", tmp_path / "nothing")
    assert proc.returncode == 2
    assert "MNIST" in proc.stderr and "Traceback" not in proc.stderr
