"""A user installs the package outside the repository and it still finds the shipped models; and
the base install (no training extra) reads mail, while training says which extra it needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

SAMPLES = REPO / "sample_docs"
# A sitecustomize.py that makes Python behave as a base install: the training extra's packages
# (and matplotlib, which reading mail never needs) cannot be imported, in every worker too.
BASE_INSTALL = """
import sys

ABSENT = {"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib"}


class TrainingExtraAbsent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (a base install)", name=name)
        return None


sys.meta_path.insert(0, TrainingExtraAbsent())
"""


def test_wheel_ships_models_and_installed_package_finds_them(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = wheel_dir.glob("docsort-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("docsort/models/manifest.json", "docsort/models/digits.onnx", "docsort/models/writing_type.onnx",
                    "docsort/models/digit_strings.onnx", "docsort/models/PP-OCRv6_rec_small.onnx",
                    "docsort/models/licenses/PP-OCR-Apache-2.0.txt",
                    "docsort/models/digits.keras", "docsort/models/digits.metrics.json",
                    "docsort/models/writing_type.keras", "docsort/models/writing_type.metrics.json",
                    "docsort/models/digit_strings.keras", "docsort/models/digit_strings.metrics.json",
                    "docsort/models/MODEL_CARD.md"):
        assert shipped in names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DOCSORT_MODELS")}
    env["PYTHONPATH"] = str(target)
    probe = ("import os, docsort, docsort.reading.manifest as m, docsort.reading.digits.strings as s; "
             "m.shipped().verify(); "
             "print(docsort.__file__); print(m.shipped().path('digits')); print(m.shipped().path('digits').is_file()); "
             "members = s.shipped_members(); print(len(members), all(os.path.isfile(p) for p in members))")
    out = subprocess.run([sys.executable, "-c", probe],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    package_file, digits_model, exists, members = out.stdout.split("\n")[:4]
    assert package_file.startswith(str(target))
    assert digits_model.startswith(str(target))
    assert exists == "True"
    assert members == "1 True"  # the whole-field reader


@pytest.fixture
def base_install(tmp_path):
    """The environment of a Python that cannot import the training extra."""
    site = tmp_path / "base_install"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BASE_INSTALL)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "a base install" in probe.stderr
    return env


def test_the_base_install_reads_every_sample_envelope(tmp_path, base_install):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "docsort", "process", str(SAMPLES), "--out", str(out),
                           "--jobs", "2", "-q"], env=base_install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    truth = {e["file"]: e["destination_code"] for e in json.loads((SAMPLES / "truth.json").read_text())["envelopes"]}
    results = json.loads((out / "results.json").read_text())
    read = {d["file"].split("/")[-1]: (d["status"], (d["pages"][0]["postal_code"] or {}).get("value"))
            for d in results["documents"]}
    assert read == {name: ("ok", code) for name, code in truth.items()}
    assert len(read) == 8


@pytest.mark.parametrize("command", [["digits", "--data", "DATA", "--out", "RUN"],
                                     ["digit-strings", "--data", "DATA", "--out", "RUN"],
                                     ["writing-type", "--data", "DATA", "--out", "RUN"],
                                     ["export", "RUN"]], ids=lambda c: c[0])
def test_training_on_the_base_install_names_the_extra(tmp_path, base_install, mnist_dir, command):
    args = [{"DATA": str(mnist_dir.parent), "RUN": str(tmp_path / "run")}.get(a, a) for a in command]
    done = subprocess.run([sys.executable, "-m", "docsort", "train", *args], env=base_install,
                          capture_output=True, text=True)
    assert done.returncode == 4
    assert done.stderr.splitlines() == ["docsort: error: docsort train needs the training extra: "
                                        "pip install 'docsort[train]'"]
    assert not (tmp_path / "run").exists()
