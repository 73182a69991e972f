"""A user installs the package outside the repository and it still finds the shipped models."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_ships_models_and_installed_package_finds_them(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = wheel_dir.glob("docsort-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("docsort/models/digits.keras", "docsort/models/digits.metrics.json",
                    "docsort/models/writing_type.keras", "docsort/models/writing_type.metrics.json",
                    "docsort/models/writing_type_chars.keras", "docsort/models/writing_type_chars.metrics.json",
                    "docsort/models/writing_type_chars_2.keras", "docsort/models/writing_type_chars_3.keras",
                    "docsort/models/digit_strings.keras", "docsort/models/digit_strings.metrics.json",
                    "docsort/models/digit_strings_2.keras", "docsort/models/digit_strings_2.metrics.json",
                    "docsort/models/digit_strings_3.keras", "docsort/models/digit_strings_3.metrics.json",
                    "docsort/models/MODEL_CARD.md"):
        assert shipped in names

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DOCSORT_MODELS")}
    env["PYTHONPATH"] = str(target)
    probe = ("import os, docsort, docsort.reading.manifest as m, docsort.reading.digits.strings as s; "
             "print(docsort.__file__); print(m.model_path('digits')); print(m.model_path('digits').is_file()); "
             "members = s.shipped_members(); print(len(members), all(os.path.isfile(p) for p in members))")
    out = subprocess.run([sys.executable, "-c", probe],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    package_file, digits_model, exists, members = out.stdout.split("\n")[:4]
    assert package_file.startswith(str(target))
    assert digits_model.startswith(str(target))
    assert exists == "True"
    assert members == "3 True"  # the whole-field reader's ensemble
