"""The destination picker is fitted on pages of the training layouts, never by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np

from conftest import run_cli
from docsort.page import destination
from docsort.reading import manifest
from docsort.training.train.destination import fit_conditional_logit


def test_the_fit_learns_which_evidence_marks_the_right_candidate():
    """Pages whose right candidate is the one with the higher first feature, against a second
    feature that is noise: the fitted picker weighs the first and picks right on new pages."""
    rng = np.random.default_rng(0)

    def page():
        x = np.column_stack([rng.normal(size=4), rng.normal(size=4)])
        return x, int(np.argmax(x[:, 0] + 0.3 * rng.normal(size=4)))

    w = fit_conditional_logit([page() for _ in range(300)])
    assert w[0] > 3 * abs(w[1])
    checked = [page() for _ in range(200)]
    assert np.mean([np.argmax(x @ w) == r for x, r in checked]) > 0.8


def test_train_destination_fits_on_generated_pages_and_the_manifest_ships_it(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for path in manifest.models_dir().iterdir():
        if path.is_file():
            shutil.copy(path, models / path.name)
    out = models / "destination.metrics.json"
    done = run_cli("train", "destination", "--envelopes", "24", "--seed", "3", "--out", out,
                   env={"DOCSORT_MODELS": str(models)})
    assert done.returncode == 0, done.stderr
    picker = json.loads(out.read_text())["picker"]
    assert picker["features"] == list(destination.PICK_FEATURES)
    assert len(picker["weights"]) == len(destination.PICK_FEATURES)
    assert picker["fit"]["layouts"] and "boxed" not in picker["fit"]["layouts"]
    assert picker["fit"]["check"]["pages"] > 0
    shipped = json.loads((models / manifest.MANIFEST_FILE).read_text())["destination"]
    assert shipped["weights"] == picker["weights"]
