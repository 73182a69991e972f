"""Number fields as people write them (``synth.fields``): truth, drawn marks, the held-out family."""

from __future__ import annotations

import numpy as np
import pytest

from docsort.training.synth import fields as field_synth


@pytest.fixture(scope="module")
def digits(mnist_dir):
    from docsort.training.datasets import mnist

    data = mnist.load(mnist_dir)
    return data.train.images[:3000], data.train.labels[:3000]


def test_truth_is_the_written_digits_and_nothing_else(digits):
    images, labels = digits
    rng = np.random.default_rng(1)
    for family in field_synth.FAMILIES:
        for length in field_synth.FAMILIES[family].lengths:
            field = field_synth.compose_field(family, images, labels, rng, length)
            assert field.digits.isdigit() and len(field.digits) == length, (family, field.text)
            assert "".join(c for c in field.text if c.isdigit()) == field.digits, field.text


def test_separators_and_marks_are_drawn_in_ink(digits):
    images, labels = digits
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(60):
        family = str(rng.choice(["amount", "date", "phone", "zip4", field_synth.HELD_OUT_FAMILY]))
        length = int(rng.choice([n for n in field_synth.FAMILIES[family].lengths if n >= 6]))
        field = field_synth.compose_field(family, images, labels, rng, length, keep_layers=True, scan=False)
        drawn = [c for c in field.text if not c.isdigit() and c != " "]
        if not drawn:
            continue
        seen.update(drawn)
        mark = field.mark_ink > 0.5 * field.mark_ink.max()  # a pencil is light
        assert mark.sum() >= 3, field.text
        # Where a mark's ink is, the image is darker than the paper around it.
        paper = float(np.median(field.image[(field.digit_ink < 0.05) & (field.mark_ink < 0.05)]))
        assert float(np.mean(field.image[mark])) < paper - 20, field.text
        # Marks stand beside the digits (a broad pen may make them touch), not hidden under them.
        assert (field.digit_ink[mark] > 0.5 * field.digit_ink.max()).mean() < 0.8, field.text
    assert {".", ",", "-", "$"} <= seen


def test_training_entry_never_writes_the_held_out_family(digits):
    images, labels = digits
    with pytest.raises(ValueError, match="held out"):
        field_synth.training_field(images, labels, np.random.default_rng(0), family=field_synth.HELD_OUT_FAMILY)
    assert field_synth.HELD_OUT_FAMILY not in field_synth.TRAINING_FAMILIES
    for name in field_synth.TRAINING_FAMILIES:
        family = field_synth.FAMILIES[name]
        assert not set(family.papers) & set(field_synth.HELD_OUT_PAPERS), name
        assert not set(family.pens) & set(field_synth.HELD_OUT_PENS), name
    rng = np.random.default_rng(3)
    lengths = set()
    for _ in range(120):
        field = field_synth.training_field(images, labels, rng)
        assert field.family in field_synth.TRAINING_FAMILIES
        assert field.paper not in field_synth.HELD_OUT_PAPERS and field.pen not in field_synth.HELD_OUT_PENS
        lengths.add(len(field.digits))
    assert lengths == set(range(1, 11))


def test_fields_are_grey_uint8_images_with_dark_ink(digits):
    images, labels = digits
    fields = field_synth.held_out_fields(images, labels, 14, seed=4)
    assert [len(f.digits) for f in fields] == [3, 4, 5, 6, 7, 8, 9] * 2
    for f in fields + [field_synth.training_field(images, labels, np.random.default_rng(s)) for s in range(14)]:
        assert f.image.dtype == np.uint8 and f.image.ndim == 2
        assert f.image.shape[0] >= 16 and f.image.shape[1] >= f.image.shape[0] // 2
        paper = float(np.percentile(f.image, 75))
        assert paper - float(np.percentile(f.image, 1)) > 40, (f.family, f.pen, f.paper)


def test_printed_fields_share_the_frames_and_papers_of_handwritten_ones():
    from docsort.training.synth.printed import font_split

    fonts = list(font_split(0).train)
    rng = np.random.default_rng(6)
    frames, papers = set(), set()
    for _ in range(40):
        f = field_synth.printed_field(fonts, rng)
        assert f.printed and f.pen == "print" and f.family in field_synth.TRAINING_FAMILIES
        assert f.digits.isdigit() and "".join(c for c in f.text if c.isdigit()) == f.digits
        assert f.image.dtype == np.uint8 and float(np.percentile(f.image, 75)) - float(f.image.min()) > 40
        frames.add(f.frame)
        papers.add(f.paper)
    assert {"box", "underline"} <= frames and len(papers) >= 4
    with pytest.raises(ValueError, match="held out"):
        field_synth.printed_field(fonts, rng, family=field_synth.HELD_OUT_FAMILY)


def test_cells_are_where_the_printed_walls_are(digits):
    """A field written one digit to a cell knows its cells: each holds one digit's ink, and the
    printed walls stand on the cell edges."""
    images, labels = digits
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 12:
        f = field_synth.compose_field("form-comb", images, labels, rng, int(rng.integers(2, 8)), keep_layers=True,
                                      scan=False)
        assert len(f.cells) == len(f.digits)
        if f.frame != "cells":
            continue
        # Each column's grey away from the digits' ink: the paper, and the walls where they stand.
        away = np.where(f.digit_ink < 0.05, f.image.astype(np.float32), np.nan)
        columns = np.nanmean(away, axis=0)
        paper = float(np.nanmedian(columns))
        for a, b in f.cells:
            near = [columns[x] for x in range(a - 2, a + 3) if 0 <= x < f.image.shape[1]]
            assert np.nanmin(near) < paper - 15, (a, f.frame)
            assert f.digit_ink[:, a:b].max() > 0.5, "every cell holds a digit"
        checked += 1
