"""Digits in real people's hands from Debian's handwriting fonts: a training source and a held-out measure."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from docsort.errors import DatasetError
from docsort.reading.digits.mnist_format import BOX
from docsort.training.synth import font_hands


def test_training_and_held_out_hands_are_different_writers_and_all_installed():
    training, held_out = font_hands.hand_fonts("training"), font_hands.hand_fonts("held-out")
    assert set(training) == set(font_hands.TRAINING_HANDS) and set(held_out) == set(font_hands.HELD_OUT_HANDS)
    training_files = {p.name for paths in training.values() for p in paths}
    held_out_files = {p.name for paths in held_out.values() for p in paths}
    assert training_files and held_out_files and not training_files & held_out_files


def test_the_install_script_installs_every_font_package_the_hands_come_from():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "scripts" / "install.sh").read_text()
    assert [p for p in font_hands.PACKAGES if p not in script.split()] == []


def test_font_hand_digits_come_in_mnists_format_and_vary_each_time():
    labels = np.arange(60) % 10
    images = font_hands.draw_like(labels, np.random.default_rng(1))
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    for image in images:
        # Ink high on a dark background (now and then specked, as scans are), the strokes
        # within MNIST's 20 px box give or take the writer's variation.
        ys, xs = np.nonzero(image > 128)
        assert image.max() >= 200 and (image > 128).mean() < 0.4
        assert BOX - 8 <= max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) <= BOX + 4
    path = font_hands.hand_fonts("training")["breip"][0]
    again = [font_hands.draw_digit(4, path, np.random.default_rng(seed)) for seed in (2, 3)]
    assert not np.array_equal(*again)  # one writer writing twice, not one picture


def test_the_shipped_digit_reader_reads_font_hand_digits_as_their_labels():
    """The labels are right: MNIST's reader, which never saw these hands, reads them."""
    from docsort.reading.digits.mnist_model import DigitReader

    labels = np.arange(200) % 10
    for which in ("training", "held-out"):
        images = font_hands.draw_like(labels, np.random.default_rng(4), which)
        read = DigitReader().predict_proba(images.astype(np.float32) / 255.0).argmax(axis=1)
        assert (read == labels).mean() >= 0.9, which


def test_a_handwriting_font_is_never_taken_for_print(monkeypatch):
    """Even a handwriting font that drew every glyph print needs stays out of the printed fonts."""
    from pathlib import Path

    from docsort.training.synth import printed

    monkeypatch.setattr(printed, "_draws_latin", lambda path: printed.Font(str(path), path.stem, "Regular"))
    scanned = [Path(f.path).name for f in printed._scan_fonts.__wrapped__(printed.FONT_DIRS)]
    assert "DejaVuSans.ttf" in scanned
    assert not set(scanned) & font_hands.ALL_FILES


def test_without_the_fonts_the_error_names_the_packages(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install fonts-bwht"):
        font_hands.hand_fonts("training", dirs=[tmp_path])


def test_training_strings_are_drawn_from_the_font_pool_at_its_share(mnist_dir):
    from docsort.training.datasets import mnist
    from docsort.training.train import digit_strings as ds

    train, val = mnist.train_validation_split(mnist.load(mnist_dir).train)

    class Counting(ds.FontPool):
        def digits(self):
            self.calls = getattr(self, "calls", 0) + 1
            self.given = getattr(self, "given", []) + [super().digits()]
            return self.given[-1]

    fonts = Counting(np.random.default_rng(5), size=100)
    x, _, _ = ds.training_batch(train.images[:500], train.labels[:500], np.random.default_rng(6),
                                fonts=fonts, font_share=1.0)
    assert x.shape[0] == ds.BATCH_SIZE and fonts.calls == ds.BATCH_SIZE
    # Each string is written by one hand, as a field is by one writer: every draw is one hand's
    # digits, and the batch's strings come from many hands.
    assert len(fonts.hands) == len(font_hands.TRAINING_HANDS)
    hand_of = [next(k for k, h in enumerate(fonts.hands) if h[0] is images) for images, _ in fonts.given]
    assert len(set(hand_of)) >= 8
    # Validation holds the same share of training hands, and the MNIST part is the same draw.
    plain, _ = ds.validation_fields(val.images, val.labels, 40, 0.5)
    mixed, _ = ds.validation_fields(val.images, val.labels, 40, 0.5, font_share=0.25)
    assert 25 <= sum(np.array_equal(a, b) for a, b in zip(plain, mixed)) <= 32


def test_a_training_run_with_font_hands_records_their_share(mnist_dir, tmp_path):
    import json

    proc = run_cli("train", "digit-strings", "--data", mnist_dir, "--steps", "2", "--validation-strings", "10",
                   "--test-strings", "10", "--combination-strings", "0", "--font-share", "0.5",
                   "--out", str(tmp_path / "m"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "m" / "digit_strings.metrics.json").read_text())
    assert metrics["font_share"] == 0.5 and "--font-share 0.5" in metrics["command"]
    refused = run_cli("train", "digit-strings", "--pen-share", "0.6", "--font-share", "0.6",
                      "--out", str(tmp_path / "n"))
    assert refused.returncode == 2 and "together must not pass 1" in refused.stderr
