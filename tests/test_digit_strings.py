"""The whole-field digit string reader: its decoding, its training command and the shipped model."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATASETS, run_cli
from docsort.reading import manifest
from docsort.reading.digits import strings as string_reader
from docsort.training.datasets.mnist import read_idx_images, read_idx_labels
from docsort.training.synth.handwriting import compose_digit_string

@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return (read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz"),
            read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz"))


def _field(mnist_test, text, rng, gap):
    images, labels = mnist_test
    picks = [images[rng.choice(np.flatnonzero(labels == int(c)))] for c in text]
    image, _ = compose_digit_string(picks, rng, gap=gap, height=float(rng.uniform(28, 56)),
                                    stroke=int(rng.integers(0, 2)))
    return image


def _columns(path: str) -> np.ndarray:
    """Column probabilities spelling ``path`` (one char per column, ``-`` the blank), sure of each."""
    probs = np.full((len(path), 11), 0.01)
    for t, c in enumerate(path):
        probs[t, string_reader.BLANK if c == "-" else int(c)] = 0.9
    return probs / probs.sum(axis=1, keepdims=True)


def test_best_path_merges_repeats_and_keeps_doubled_digits_apart_by_a_blank():
    digits, peaks = string_reader.best_path(_columns("-11-1-0077"))
    assert digits == [1, 1, 0, 7]
    assert len(peaks) == 4


def test_string_probability_sums_over_alignments():
    # Every path through 3 columns spells one string of at most 3 digits: together they make 1.
    probs = np.random.default_rng(0).dirichlet(np.ones(11), size=3)
    total = sum(math.exp(string_reader.string_log_probability(probs, digits))
                for n in range(4) for digits in itertools.product(range(10), repeat=n))
    assert total == pytest.approx(1.0, abs=1e-9)
    ours = math.exp(string_reader.string_log_probability(_columns("-5-"), [5]))
    assert ours > 0.7


def test_shipped_ensemble_is_the_one_its_combination_was_fitted_with():
    """The manifest's whole-field members are the ones digit_strings.metrics.json names, each an
    .onnx exported from that .keras, and the combination it ships is the one fitted there."""
    metrics = manifest.load_metrics(manifest.DIGIT_STRINGS)
    models = manifest.shipped()
    members = string_reader.shipped_members()
    assert [Path(m).name for m in members] == [Path(m).with_suffix(".onnx").name for m in metrics["ensemble"]]
    for name in models.string_members():
        assert models.entry(name)["source"]["sha256"] == manifest.file_sha256(manifest.keras_path(name))
    assert {k: v for k, v in metrics["combination"].items() if k != "fit"} == models.combination
    # The combination was fitted to readings at these ink heights; the shipped reader reads at them.
    assert models.string_views() == metrics["views"] == list(string_reader.VIEWS)
    assert string_reader.shared_reader().views == tuple(metrics["views"])
    assert models.combination["readers"] == ["segmented", "whole", "line"]
    assert len(models.combination["candidate"]) == 7  # bias, three readers' log-odds, three proposers


def test_ensemble_weighs_a_reading_by_every_member():
    sure, unsure = _columns("-3-4-"), _columns("-3-9-")
    # Both members must like a string for the ensemble to: the log-probabilities are averaged.
    alone = math.exp(string_reader.string_log_probability(sure, [3, 4]))
    both = string_reader.ensemble_probability([sure, unsure], [3, 4])
    assert both < alone
    assert both == pytest.approx(math.sqrt(alone * math.exp(string_reader.string_log_probability(unsure, [3, 4]))))
    reading = string_reader.StringReading("34", both, [0.9, 0.9], [sure, unsure])
    assert reading.probability("34") == pytest.approx(both) and reading.probability("") == 0.0


def test_each_view_scales_the_ink_to_its_height_and_reads_the_field(mnist_test):
    """A field is read at several ink heights; every view of every member proposes and weighs."""
    rng = np.random.default_rng(5)
    ink = np.clip((255.0 - _field(mnist_test, "4071", rng, gap=(0.2, 0.4))) / 255.0, 0, 1).astype(np.float32)
    for body in string_reader.VIEWS:
        strip = string_reader.prepare(ink, body)
        rows = np.flatnonzero((strip > string_reader.INK_LEVEL).any(axis=1))
        assert strip.shape[0] == string_reader.HEIGHT and rows[-1] - rows[0] + 1 in (body - 1, body, body + 1)
    one = string_reader.StringReader(string_reader.shipped_members(), views=[24])
    three = string_reader.StringReader(string_reader.shipped_members(), views=string_reader.VIEWS)
    [alone], [together] = one.read_inks([ink]), three.read_inks([ink])
    assert len(alone.columns) == 1 and len(together.columns) == 3
    assert together.digits == alone.digits == "4071"
    assert together.probability("4071") == pytest.approx(together.confidence)
    # The views' geometric mean: never above the surest view's own probability.
    assert together.confidence <= max(math.exp(string_reader.string_log_probability(c, [4, 0, 7, 1]))
                                       for c in together.columns) + 1e-9


def test_spans_of_a_line_are_read_from_one_reading_of_the_whole_line(mnist_test):
    """Two numbers on one line, a wide space between them: each span's reading, taken from the
    columns of one reading of the line, is that number, as a field cut to it reads."""
    rng = np.random.default_rng(11)
    left = _field(mnist_test, "507", rng, gap=(0.15, 0.3))
    right = _field(mnist_test, "9264", rng, gap=(0.15, 0.3))
    height = max(left.shape[0], right.shape[0])
    pad = lambda img: cv2.copyMakeBorder(img, 0, height - img.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=255)
    space = np.full((height, int(0.8 * height)), 255, np.uint8)
    line = np.hstack([pad(left), space, pad(right)])
    ink = np.clip((255.0 - line) / 255.0, 0, 1).astype(np.float32)
    reader = string_reader.StringReader(string_reader.shipped_members())
    spans = [(0, left.shape[1]), (left.shape[1] + space.shape[1], line.shape[1])]
    [[first, second]] = reader.read_spans([ink], [spans])
    assert (first.digits, second.digits) == ("507", "9264")
    assert first.confidence > 0.5 and second.confidence > 0.5
    [[whole]] = reader.read_spans([ink], [[(0, line.shape[1])]])
    assert whole.digits == "5079264"


def test_each_reader_weighs_the_other_readers_answer(mnist_test):
    """The segmenting reader gives its own reading the probability it reports, other strings of
    the same field less, and all strings together at most 1; the whole-field ensemble too."""
    from docsort.reading.digits import segmenting as digit_reader

    rng = np.random.default_rng(11)
    fields = [_field(mnist_test, text, rng, gap=(0.1, 0.4)) for text in ("20761", "58314")]
    inks = [np.clip((255.0 - f) / 255.0, 0, 1).astype(np.float32) for f in fields]
    for splits, whole, text in zip(digit_reader.analyse_fields(inks, 5), string_reader.shared_reader().read_inks(inks),
                                   ("20761", "58314")):
        own = splits.reading
        assert own.digits == text and whole.digits == text
        plain = splits.probability(own.digits)
        assert own.confidence <= plain + 1e-9 and plain > 0.5
        others = [text[:k] + str((int(text[k]) + 1) % 10) + text[k + 1:] for k in range(5)]
        assert all(splits.probability(o) < plain for o in others)
        assert plain + sum(splits.probability(o) for o in others) <= 1.0 + 1e-9
        assert whole.probability(text) == pytest.approx(whole.confidence)
        assert all(whole.probability(o) < whole.confidence for o in others)


def test_read_digits_reads_touching_and_overlapping_codes(mnist_test, tmp_path):
    rng = np.random.default_rng(11)
    codes = [f"{n:05d}" for n in rng.integers(0, 100000, 12)]
    files = []
    for code in codes:
        path = tmp_path / f"{code}.png"
        cv2.imwrite(str(path), _field(mnist_test, code, rng, gap=(-0.3, 0.05)))
        files.append(path)
    proc = run_cli("read-digits", *files, "--json", "--code-length", "5")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    right = [r["digits"] == code for r, code in zip(rows, codes)]
    assert sum(right) >= 10
    for row, ok in zip(rows, right):
        if row["digits"] is None:  # judged no number: a miss, and never a sure one
            assert not row["is_number"] and row["confidence"] == 0.0
            continue
        assert len(row["digit_confidences"]) == len(row["digits"]) == 5
        assert 0.0 <= row["confidence"] <= min(row["digit_confidences"]) + 1e-9
        if not ok:
            assert row["confidence"] < 0.9


def test_read_digits_reads_any_length_without_code_length(mnist_test, tmp_path):
    rng = np.random.default_rng(3)
    texts = ["7", "42", "913", "2024", "8675309", "314159265"]
    files = []
    for n, text in enumerate(texts):
        path = tmp_path / f"field{n}.png"
        cv2.imwrite(str(path), _field(mnist_test, text, rng, gap=(-0.2, 0.4)))
        files.append(path)
    proc = run_cli("read-digits", *files, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert sum(r["digits"] == t for r, t in zip(rows, texts)) >= 5


def test_tiny_training_run_writes_a_model_that_reads(mnist_dir, tmp_path):
    out = tmp_path / "strings"
    proc = run_cli("train", "digit-strings", "--data", mnist_dir, "--steps", "4", "--validation-strings", "16",
                   "--test-strings", "0", "--combination-strings", "8", "--field-share", "0.5",
                   "--writer-share", "0.5", "--data-workers", "1", "--fine-blocks", "1", "--out", out, "-q",
                   env={"DOCSORT_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "digit_strings.metrics.json").read_text())
    assert metrics["steps"] == 4 and 0.0 <= metrics["validation_exact"] <= 1.0
    assert metrics["data_workers"] == 1 and metrics["fine_blocks"] == 1
    # The best network so far is kept where --init can continue from it, outside the model set.
    assert (out / "checkpoint" / "best.keras").is_file()
    assert set(json.loads((out / "manifest.json").read_text())["models"]) == {"digit_strings"}
    assert metrics["writer_share"] == 0.5 and metrics["field_share"] == 0.5
    assert metrics["temperature"] > 0 and "docsort train digit-strings" in metrics["command"]
    assert metrics["combination"]["readers"] == ["segmented", "whole", "line"]
    reader = string_reader.StringReader(str(out / "digit_strings.keras"))
    rng = np.random.default_rng(0)
    images = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    field = compose_digit_string([images[i] for i in range(3)], rng)[0]
    reading = reader.read_inks([np.clip((255.0 - field) / 255.0, 0, 1)])[0]
    assert 0.0 <= reading.confidence <= 1.0 and set(reading.digits) <= set("0123456789")
    # The exported network gives a column per 2 px of the strip, padding cut off at that stride.
    strip = string_reader.prepare(np.clip((255.0 - field) / 255.0, 0, 1))
    (columns,) = reader.column_probabilities([strip])
    width = strip.shape[1]
    assert len(columns) == min(string_reader.INPUT.bucket(width) // 2, -(-(width + string_reader.SIDE_PAD) // 2))


def test_a_deeper_reader_grown_from_the_shipped_one_reads_exactly_as_it_did():
    """Growing the whole-field reader (residual convolutions inside the conv blocks, more over
    the columns) starts from the shipped network's function, not from noise: every new branch
    adds nothing until training moves it."""
    from docsort.training.tf import keras as get_keras
    from docsort.training.train.digit_strings import build_network, grow_from

    keras = get_keras()
    shipped = keras.models.load_model(manifest.keras_path(manifest.DIGIT_STRINGS), compile=False)
    logits = keras.Model(shipped.input, shipped.get_layer("logits").output)
    # One residual convolution more in the second and last conv blocks, one context block more.
    shape = json.loads(manifest.metrics_path(manifest.DIGIT_STRINGS).read_text())
    blocks = list(shape.get("block_convs", [0, 0, 0, 0]))
    context = shape.get("context_blocks", 2)
    deeper = build_network(keras, block_convs=(blocks[0], blocks[1] + 1, blocks[2], blocks[3] + 1),
                           context_blocks=context + 1, fine_blocks=shape.get("fine_blocks", 0))
    new = grow_from(deeper, shipped)
    assert set(new) == {f"conv2_res{blocks[1] + 1}", f"conv2_res{blocks[1] + 1}_bn",
                        f"conv4_res{blocks[3] + 1}", f"conv4_res{blocks[3] + 1}_bn",
                        f"context{context + 1}", f"context_bn{context + 1}"}
    assert deeper.count_params() > logits.count_params()
    strips = np.random.default_rng(0).random((3, string_reader.HEIGHT, 128, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(deeper(strips, training=False)), np.asarray(logits(strips)), atol=1e-4)
    # A network of other widths cannot grow from it: one line saying so, not a shape traceback.
    from docsort.errors import UsageError

    with pytest.raises(UsageError, match="keeps the widths"):
        grow_from(build_network(keras, filters=(16, 32, 48, 64)), shipped)


def test_a_reader_grown_to_finer_columns_starts_by_reading_every_column_twice():
    """--fine-blocks doubles the output columns (one per 2 px): grown from a coarser reader, each
    column's logits come out twice, so the best path and every string's reading are unchanged
    until training puts blanks between equal digits."""
    from docsort.training.tf import keras as get_keras
    from docsort.training.train.digit_strings import build_network, grow_from

    keras = get_keras()
    coarse = build_network(keras, filters=(8, 8, 8, 16), column_filters=16, context_blocks=1)
    strips = np.random.default_rng(1).random((2, string_reader.HEIGHT, 96, 1)).astype("float32")
    fine = build_network(keras, filters=(8, 8, 8, 16), column_filters=16, context_blocks=1, fine_blocks=2)
    assert set(grow_from(fine, coarse)) == {"fine_split", "fine1", "fine_bn1", "fine2", "fine_bn2"}
    before, after = np.asarray(coarse(strips, training=False)), np.asarray(fine(strips, training=False))
    assert after.shape[2] == 2 * before.shape[2] == 96 // 2
    np.testing.assert_allclose(after[:, :, 0::2], before, atol=1e-5)
    np.testing.assert_allclose(after[:, :, 1::2], before, atol=1e-5)
    assert string_reader.column_stride(96, after.shape[2]) == 2 and string_reader.column_stride(96, 24) == 4


def test_block_convs_must_name_four_blocks(tmp_path):
    proc = run_cli("train", "digit-strings", "--block-convs", "1,1", "--steps", "1", "--out", tmp_path)
    assert proc.returncode == 2
    assert "--block-convs takes four counts" in proc.stderr and "Traceback" not in proc.stderr


def test_writer_pool_composes_strings_from_varied_copies_of_training_digits(mnist_test):
    """Writer-varied digits differ from the digits they vary and are drawn afresh; a training
    batch can be composed from them alone."""
    from docsort.training.train.digit_strings import BATCH_SIZE, WriterPool, training_batch

    images, labels = mnist_test[0][:600], mnist_test[1][:600]
    pool = WriterPool(images, labels, np.random.default_rng(0), size=200, refresh=3)
    varied, varied_labels = pool.digits()
    assert varied.shape == (200, 28, 28) and set(varied_labels) <= set(range(10))
    originals = {img.tobytes() for img in images}
    assert sum(v.tobytes() in originals for v in varied) == 0
    pool.digits()
    assert not np.array_equal(pool.digits()[0], varied)  # drawn afresh every `refresh` uses
    x, y, lengths = training_batch(images, labels, np.random.default_rng(1), 0.0, pool, 1.0)
    assert x.shape[0] == BATCH_SIZE and x.shape[1] == string_reader.HEIGHT
    assert all(1 <= n <= 9 for n in lengths) and (y >= 0).all() and (y <= 9).all()


def test_validation_envelopes_draw_only_digits_held_out_of_training(mnist_dir, dhsd_dir):
    from docsort.training.datasets.mnist import VALIDATION_SEED, VALIDATION_SIZE
    from docsort.training.samples import HandwritingCorpus

    corpus = HandwritingCorpus.load(DATASETS, "validation")
    used = np.concatenate(list(corpus.digit_indices.values()))
    held_out = np.random.default_rng(VALIDATION_SEED).permutation(len(corpus.mnist_images))[:VALIDATION_SIZE]
    assert len(used) == VALIDATION_SIZE and set(used) == set(held_out)


def test_combination_refits_on_fields_the_pipeline_cuts_from_envelopes(mnist_dir, dhsd_dir, tmp_path):
    metrics = tmp_path / "digit_strings.metrics.json"
    metrics.write_text(manifest.metrics_path(manifest.DIGIT_STRINGS).read_text())
    shutil.copy(manifest.keras_path(manifest.DIGIT_STRINGS), tmp_path / "digit_strings.keras")
    # A one-model "ensemble" of the shipped whole-field model, under another name.
    shutil.copy(manifest.keras_path(manifest.DIGIT_STRINGS), tmp_path / "member.keras")
    refitted = tmp_path / "refitted.metrics.json"
    no_out = run_cli("train", "field-combination", "--data", mnist_dir, "--metrics", metrics)
    assert no_out.returncode == 2 and "--out" in no_out.stderr and len(no_out.stderr.strip().splitlines()) == 1
    missing = run_cli("train", "field-combination", "--data", mnist_dir, "--metrics", metrics,
                      "--member", "digit_strings.keras", "--member", "absent.keras", "--out", refitted)
    assert missing.returncode == 2 and "absent.keras" in missing.stderr and "Traceback" not in missing.stderr
    before = metrics.read_bytes()
    proc = run_cli("train", "field-combination", "--data", mnist_dir, "--handwriting", DATASETS,
                   "--envelopes", "4", "--composed", "8", "--family-fields", "4", "--metrics", metrics,
                   "--member", "member.keras", "--view", "23", "--view", "25", "--convention-share", "0.25",
                   "--pen-share", "0.25", "--font-share", "0.25",
                   "--out", refitted, env={"DOCSORT_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert metrics.read_bytes() == before  # written only where --out says
    refit = json.loads(refitted.read_text())
    fit = refit["combination"]
    assert refit["ensemble"] == ["member.keras"]
    assert refit["views"] == [23, 25]
    assert fit["fit"]["envelope_fields"] >= 1 and fit["fit"]["n"] == 8 + 4 + fit["fit"]["envelope_fields"]
    assert fit["fit"]["family_fields"] == 4 and len(fit["candidate"]) == 7
    assert fit["fit"]["convention_share"] == 0.25 and "continental writers" in fit["fit"]["data"]
    assert fit["fit"]["pen_share"] == 0.25 and "pen writers" in fit["fit"]["data"]
    assert fit["fit"]["font_share"] == 0.25 and "font hands" in fit["fit"]["data"]
    assert "--convention-share 0.25 --pen-share 0.25 --font-share 0.25" in fit["fit"]["command"]
    assert fit["readers"] == ["segmented", "whole", "line"]


def test_cheaply_first_the_segmenting_reader_reads_only_fields_a_cheap_reader_reads_as_a_code(
        mnist_test, dhsd_dir, monkeypatch):
    """On a page the whole-field reader reads every field first, the line reader only those it
    reads as about a code's length, and the segmenting reader cuts only those where one of them
    proposes a code of the asked length; there the reading is the one every reader together
    gives."""
    from docsort.reading.digits import combine
    from docsort.reading.digits import segmenting as digit_reader
    from docsort.training.datasets.non_number_crops import word_fields
    from docsort.training.synth.handwriting import dhsd_writer_split

    rng = np.random.default_rng(12)
    codes = [_field(mnist_test, text, rng, gap=(0.1, 0.4)) for text in ("20761", "58314")]
    words = word_fields(dhsd_dir, dhsd_writer_split().validation, 6, seed=8)
    inks = [combine.as_ink(f) for f in codes + words]
    full = combine.analyse_fields(inks, 5)

    segmented = []
    real = digit_reader.analyse_fields

    def counting(fields, code_length=None, reader=None):
        segmented.append(len(fields))
        return real(fields, code_length, reader=reader)

    from docsort.reading.digits.ppocr import shared_reader as line_reader

    line_read = []
    real_line = type(line_reader()).read_inks

    def counting_lines(self, fields):
        line_read.append(len(fields))
        return real_line(self, fields)

    monkeypatch.setattr(digit_reader, "analyse_fields", counting)
    monkeypatch.setattr(type(line_reader()), "read_inks", counting_lines)
    cheap = combine.analyse_fields(inks, 5, cheap_first=True)
    # The line reader reads only what the whole-field reader reads as about a code's length.
    near = [i for i, a in enumerate(full) if abs(len(a.whole.digits) - 5) <= combine.LINE_READER_SPAN]
    assert line_read == [len(near)] and len(near) < len(inks)
    assert all(cheap[i].line is None for i in range(len(inks)) if i not in near)
    proposing = [i for i, a in enumerate(full)
                 if len(a.whole.digits) == 5 or (i in near and len(a.line.digits) == 5)]
    assert segmented == [len(proposing)] and len(proposing) < len(inks)
    assert [cheap[i].reading.digits for i in range(2)] == ["20761", "58314"]
    for i, (a, b) in enumerate(zip(full, cheap)):
        if i in proposing:
            assert b.reading.digits == a.reading.digits
            assert b.reading.confidence == pytest.approx(a.reading.confidence)
        else:  # only the segmenting reader could have made a code up here: there is none
            assert b.reading.digits == "" and b.splits.reading.digits == ""
