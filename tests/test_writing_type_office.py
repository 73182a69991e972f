"""Office print for the printed/handwritten classifier: the held-out family stays out of training,
office scans are what they say, and the shipped classifier calls real scans printed as a fax and in
italic."""

from pathlib import Path

import numpy as np
import pytest

from docsort.training.datasets import office_crops
from docsort.training.synth import office
from docsort.training.synth.handwriting import dhsd_writer_split
from docsort.training.synth.printed import SEALED_FAMILIES, font_split, sealed_fonts

PAGES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tesseract-pages"


def test_held_out_family_is_in_no_training_or_validation_split():
    split = font_split(0)
    families = {f.family for f in split.train} | {f.family for f in split.held_out}
    assert not families & set(SEALED_FAMILIES)
    assert {f.family for f in sealed_fonts()} == set(SEALED_FAMILIES)
    assert {office.style_of(f) for f in sealed_fonts()} >= {"italic", "bold-italic", "roman", "bold"}
    writers = dhsd_writer_split(0)
    assert writers.sealed and not set(writers.sealed) & set(writers.selection)
    assert set(writers.sealed) | set(writers.selection) == set(writers.validation)
    assert not set(writers.sealed) & set(writers.train)


def test_training_scans_keep_out_of_the_held_out_resolution():
    rng = np.random.default_rng(0)
    dpis = [office.random_office_scan(rng).dpi for _ in range(2000)]
    low, high = office.SEALED_DPI_BAND
    assert not any(low <= d <= high for d in dpis)
    assert min(dpis) < 160 and max(dpis) > 380
    sealed = office.random_office_scan(rng, sealed=True)
    assert sealed.dpi == office.SEALED_DPI and sealed.bilevel


def test_office_print_on_a_1_bit_scan_is_bilevel_and_tagged():
    rng = np.random.default_rng(3)
    fonts = list(font_split(0).train)
    seen = set()
    for _ in range(60):
        made = office.office_printed_crop(rng, fonts, office.random_office_scan(rng, sealed=True))
        assert set(np.unique(made.image)) <= {0, 255}
        assert "1-bit 200 dpi" in made.tags and "printed" in made.tags
        seen.update(made.tags)
    assert {"italic", "bold", "short word"} <= seen


def test_condition_table_counts_each_class_apart():
    labels = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.9, 0.8, 0.2])
    tags = [("italic", "1-bit"), ("bold-italic",), ("pencil", "1-bit"), ("pencil",)]
    rows = {r["condition"]: r for r in office_crops.condition_table(labels, p, tags)}
    assert rows["italic"]["printed"] == {"n": 2, "accuracy": 0.5}
    assert rows["pencil"]["handwritten"] == {"n": 2, "accuracy": 0.5}
    assert rows["1-bit"]["n"] == 2 and rows["1-bit"]["errors"] == 0
    assert "thermal" not in rows


@pytest.mark.skipif(not PAGES.is_dir(), reason="tesseract-pages not available")
def test_shipped_classifier_calls_real_scans_printed_as_1_bit_and_in_italic():
    from docsort.reading.writing_type import WritingTypeClassifier
    from docsort.training.evaluate.writing_type_office import page_variant_check

    result = page_variant_check(WritingTypeClassifier(), PAGES)
    assert set(result["variants"]) >= {"1-bit 200 dpi", "1-bit 300 dpi", "italic (Liberation Serif Italic)"}
    assert result["n"] > 400
    assert result["printed_rate"] >= 0.995, result["failures"]


def test_a_crop_drawn_again_leaves_every_other_held_out_crop_as_it_was():
    """The held-out family draws each crop on a seed of its own: when the writing check refuses
    one crop (as a change to the ink box may), that crop is drawn again and no other moves."""
    fonts = list(sealed_fonts())
    words = {0: [np.full((40, 120), 255, np.uint8)]}
    words[0][0][12:28, 10:110] = 0
    digits = np.zeros((4, 28, 28), np.uint8)
    digits[:, 6:22, 12:16] = 255

    def family(keep):
        return office_crops.office_crops(np.random.default_rng(0), 6, 6, fonts, words, digits, sealed=True,
                                         keep=keep, crop_seed=7)

    first = family(lambda crop: True)
    refused = first[2][0]
    again = family(lambda crop: not (crop.shape == refused.shape and np.array_equal(crop, refused)))
    moved = [i for i, (a, b) in enumerate(zip(first, again)) if a[0].shape != b[0].shape or not np.array_equal(a[0], b[0])]
    assert moved == [2]
    assert [label for _, label, _ in first] == [label for _, label, _ in again]
