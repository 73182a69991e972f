"""The demo a new user runs first (``scripts/demo.sh``): ``docsort process sample_docs``.

It must show the product fairly: every destination code right, and the real handwriting on the
envelopes labelled handwritten, in every address layout family the samples hold.
"""

from __future__ import annotations

import json

from conftest import REPO, run_cli

SAMPLES = REPO / "sample_docs"


def _holders(crops, bbox):
    x, y, w, h = bbox
    cx, cy = x + w / 2, y + h / 2
    return [c for c in crops if c["bbox"][0] <= cx <= c["bbox"][0] + c["bbox"][2]
            and c["bbox"][1] <= cy <= c["bbox"][1] + c["bbox"][3]]


def test_the_demo_reads_every_sample_envelope_right(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("process", SAMPLES, "--out", out, "--jobs", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    truth = {e["file"]: e for e in json.loads((SAMPLES / "truth.json").read_text())["envelopes"]}
    results = json.loads((out / "results.json").read_text())
    assert len(results["documents"]) == len(truth) == 8
    assert {e["layout"] for e in truth.values()} == {"code-first", "code-last", "code-alone", "prefixed"}
    assert {e["destination_source"] for e in truth.values()} == {"handwritten", "printed"}
    handwritten_words = 0
    for doc in results["documents"]:
        expected = truth[doc["file"].split("/")[-1]]
        page = doc["pages"][0]
        code = page["postal_code"]
        assert code is not None and code["value"] == expected["destination_code"], doc["file"]
        assert code["source"] == expected["destination_source"] and code["decision"] == "auto", doc["file"]
        for element in expected["elements"]:
            if element["kind"] != "handwritten":
                continue
            holders = _holders(page["crops"], element["bbox"])
            if not holders:  # a faint word Tesseract cut no crop for: nothing to label
                continue
            assert all(c["kind"] == "handwritten" for c in holders), f"{doc['file']}: {element['role']}"
            handwritten_words += 1
    assert handwritten_words >= 12
    assert results["summary"]["auto"] == 8
