"""The printed/handwritten classifier as the pipeline and users meet it: real crops, CLI, training."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli
from docsort.reading import manifest
from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd
from docsort.reading.writing_type import HEIGHT, LONE_CHARACTER_WIDTH, MAX_WIDTH, WritingTypeClassifier, prepare
from docsort.training.datasets.writing_type_crops import shows_writing


@pytest.fixture(scope="module")
def classifier():
    return WritingTypeClassifier()


@pytest.fixture(scope="module")
def unseen_handwriting(dhsd_dir):
    """Real DHSD words by writers the shipped model never saw in training."""
    words = load_dhsd(dhsd_dir, dhsd_writer_split(0).validation)
    return [img for img, _, _ in words[::4]]


@pytest.fixture(scope="module")
def real_printed_crops(tesseract_pages):
    """Words Tesseract cuts from real printed scans, as the pipeline cuts them."""
    from docsort.page import tesseract

    crops = []
    for name in ("phototest.tif", "eurotext.tif"):
        page = cv2.imread(str(tesseract_pages / name), cv2.IMREAD_GRAYSCALE)
        for word in tesseract.words(page):
            x, y, w, h = word.bbox
            crops.append(page[y:y + h, x:x + w])
    assert len(crops) > 100
    return crops


def test_unseen_writers_are_handwritten(classifier, unseen_handwriting):
    p = classifier.p_handwritten(unseen_handwriting)
    assert p.shape == (len(unseen_handwriting),)
    assert np.mean(p >= 0.5) >= 0.98


def test_real_printed_scans_are_printed(classifier, real_printed_crops):
    p = classifier.p_handwritten(real_printed_crops)
    assert np.mean(p < 0.5) >= 0.98


def test_printed_words_with_brackets_and_marks_stay_printed(classifier):
    """Tesseract leaves brackets, quotes and marks on the word: "<lazy>", "#90", "12.5%"."""
    from docsort.training.synth import degrade
    from docsort.training.synth.printed import font_split, render_text

    words = ("<lazy>", "<23>", "(quick)", "[brown]", "{fox}", "«rapide»", "„Hund“", "#90", "12.5%", "goose,")
    fonts = [f for f in font_split(0).held_out if "Bold" in f.path or "Regular" in f.path]
    rng = np.random.default_rng(0)
    crops = [render_text(word, font.path, 40, rng) for word in words for font in fonts]
    crops += [degrade.binarise(degrade.blur(c, 1.0)) for c in crops]
    p = classifier.p_handwritten(crops)
    assert len(crops) >= 100
    assert np.mean(p < 0.5) >= 0.97, [words[i % (len(crops) // 2) // len(fonts)] for i in np.flatnonzero(p >= 0.5)]


def test_probabilities_do_not_depend_on_batch_company(classifier, unseen_handwriting, real_printed_crops):
    crops = unseen_handwriting[:5] + real_printed_crops[:5]
    together = classifier.p_handwritten(crops)
    alone = np.array([classifier.p_handwritten([c])[0] for c in crops])
    assert np.allclose(together, alone, atol=1e-4)
    assert ((together >= 0) & (together <= 1)).all()


def test_doubted_crops_are_the_mean_of_every_look(classifier, unseen_handwriting, real_printed_crops):
    """On real crops, the shipped classifier keeps the main model's p where it is sure and takes
    the mean of the further main models (and, for lone characters, the lone-character models)
    where it doubts, with the narrower band for wide crops."""
    # Whole words and their first letters cut out, as Tesseract cuts joined handwriting.
    crops = unseen_handwriting + [w[:, :max(4, w.shape[0] // 2)] for w in unseen_handwriting] + real_printed_crops
    prepared = [prepare(c) for c in crops]
    narrow = np.array([p.shape[1] <= LONE_CHARACTER_WIDTH for p in prepared])

    def alone(f):
        return WritingTypeClassifier(f, ensemble=False).p_handwritten_prepared(prepared)

    p_main = alone(classifier.model_file)
    mains = [p_main] + [alone(f) for f in classifier.second_look_files]
    lone = [alone(f) for f in classifier.lone_character_files]
    band = np.where(narrow, *classifier.doubt[:2])  # the bands the manifest ships
    doubted = (band <= p_main) & (p_main <= 1 - band)
    expected = np.where(doubted, np.where(narrow, np.mean(mains + lone, axis=0), np.mean(mains, axis=0)), p_main)
    if len(mains) > 1 and lone:
        assert (doubted & narrow).any() and (doubted & ~narrow).any(), "both kinds of second look are exercised"
    assert np.allclose(classifier.p_handwritten_prepared(prepared), expected, atol=1e-5)


def test_prepare_normalises_any_crop(unseen_handwriting):
    grey = unseen_handwriting[0]
    out = prepare(grey)
    assert out.shape[0] == HEIGHT and 1 <= out.shape[1] <= MAX_WIDTH
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    assert np.allclose(prepare(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)), out, atol=0.02)
    # The same word at another resolution and ink level looks the same to the network.
    faint_small = cv2.resize((grey * 0.5 + 127).astype(np.uint8), None, fx=0.5, fy=0.5,
                             interpolation=cv2.INTER_AREA)
    assert abs(prepare(faint_small).shape[1] - out.shape[1]) <= 0.1 * out.shape[1]
    assert not prepare(np.full((20, 60), 250, np.uint8)).any(), "blank paper has no ink"
    very_long = np.full((30, 4000), 255, np.uint8)
    very_long[10:20, 5:3995] = 0
    assert prepare(very_long).shape[1] == MAX_WIDTH


def test_ink_is_what_lies_below_the_level_between_paper_and_darkest_ink():
    from docsort.reading.writing_type import INK_THRESHOLD, ink_box

    # Paper 240 and ink 40: the level is 240 - 0.35 * 200 = 170, a whole grey level. A mark at
    # 170 is paper, one at 169 ink, as the float comparison the network was trained with has it.
    crop = np.full((40, 200), 240, np.uint8)
    crop[10:30, 20:40] = 40
    crop[10:30, 100:110] = 169
    crop[10:30, 150:160] = 170
    (x0, _, x1, _), paper, contrast = ink_box(crop)
    assert (paper, contrast) == (240.0, 200.0) and paper - INK_THRESHOLD * contrast == 170.0
    assert (x0, x1) == (20, 110), "169 is ink, 170 is not"
    # The same at a level between two grey levels (240 - 0.35 * 201 = 169.65): 169 is ink.
    crop[10:30, 20:40] = 39
    (x0, _, x1, _), _, contrast = ink_box(crop)
    assert contrast == 201.0 and (x0, x1) == (20, 110)


def _with_rules(crop: np.ndarray, left: bool, right: bool, specks: bool = False) -> np.ndarray:
    """The crop as Tesseract cuts it beside a table rule or fax streak: a line taller than the
    word, a few pixels apart from it; with ``specks``, a 1-bit scan's noise just outside it."""
    h, w = crop.shape[:2]
    out = np.full((h + 16, w + 24), int(np.percentile(crop, 90)), np.uint8)
    out[8:8 + h, 12:12 + w] = crop
    ink = int(np.percentile(crop, 1))  # the rule in the scan's own ink
    if left:
        out[:, 3:5] = ink
    if right:
        out[:, -5:-3] = ink
    if specks:
        out[h // 3, 1] = out[2 * h // 3, 0] = ink
        out[h // 2, -2] = ink
    return out


def test_a_rule_beside_a_word_is_no_part_of_it(classifier, unseen_handwriting, real_printed_crops):
    words = [c for c in real_printed_crops if c.shape[1] > 2 * c.shape[0]][:6] + unseen_handwriting[2:8]
    assert len(words) == 12
    for word in words:
        alone = prepare(_with_rules(word, False, False))
        for sides in ((True, False), (False, True), (True, True)):
            ruled = prepare(_with_rules(word, *sides))
            # The same ink box, up to a pixel or two where the rule's ink moves the ink level.
            assert abs(ruled.shape[1] - alone.shape[1]) <= max(2, 0.03 * alone.shape[1])
            same = cv2.resize(ruled, alone.shape[::-1], interpolation=cv2.INTER_AREA)
            assert np.abs(same - alone).mean() < 0.05
    p = classifier.p_handwritten([_with_rules(w, True, True) for w in words])
    assert (p[:6] < 0.5).all() and (p[6:] > 0.5).all()
    # Specks just outside the rules, inside the ink box, as on a fax or 1-bit scan.
    for word in words:
        alone = prepare(_with_rules(word, False, False))
        ruled = prepare(_with_rules(word, True, True, specks=True))
        assert abs(ruled.shape[1] - alone.shape[1]) <= max(2, 0.03 * alone.shape[1])
        same = cv2.resize(ruled, alone.shape[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(same - alone).mean() < 0.05
    # The sides of a closed box are kept: a digit in a cell is judged in its cell.
    cell = np.full((40, 40), 255, np.uint8)
    cv2.rectangle(cell, (3, 3), (36, 36), 0, 1)
    cv2.putText(cell, "7", (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    assert prepare(cell).shape[1] == HEIGHT
    # A rule alone is still ink to judge.
    rule = np.full((40, 30), 255, np.uint8)
    rule[2:38, 10:12] = 0
    assert prepare(rule).any()


def test_classify_cli_json_and_unreadable_input(tmp_path, unseen_handwriting, real_printed_crops):
    hand, printed, broken = tmp_path / "hand.png", tmp_path / "printed.png", tmp_path / "broken.png"
    cv2.imwrite(str(hand), unseen_handwriting[1])
    cv2.imwrite(str(printed), max(real_printed_crops, key=lambda c: c.shape[1]))
    broken.write_bytes(b"not an image")
    done = run_cli("classify", hand, broken, printed, "--json")
    assert done.returncode == 3
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    results = json.loads(done.stdout)
    assert [r["file"] for r in results] == [str(hand), str(printed)]
    assert [r["kind"] for r in results] == ["handwritten", "printed"]
    assert results[0]["p_handwritten"] > 0.5 > results[1]["p_handwritten"]


def test_shipped_metrics_describe_the_shipped_model():
    metrics = manifest.load_metrics(manifest.WRITING_TYPE)
    assert metrics["sha256"] == manifest.file_sha256(str(manifest.keras_path(manifest.WRITING_TYPE)))
    assert metrics["n"] == sum(map(sum, metrics["confusion_matrix"]))
    assert metrics["accuracy"] >= 0.97
    assert metrics["real_scans"]["original"]["printed_rate"] >= 0.995
    assert metrics["accuracy"] > metrics["tesseract_confidence_baseline"]["accuracy"]
    assert not set(metrics["writer_split"]["train"]) & set(metrics["writer_split"]["validation"])
    assert not set(metrics["font_split"]["train"]) & set(metrics["font_split"]["held_out"])
    shipped = WritingTypeClassifier()  # the ensemble the manifest lists, each network exported from the measured .keras
    assert [m["sha256"] for m in metrics.get("lone_character_models", [])] == [
        n.source["sha256"] for n in shipped.lone_character_models]
    assert [m["sha256"] for m in metrics.get("second_look_models", [])] == [
        n.source["sha256"] for n in shipped.second_look_models]
    # The held-out family (fonts, 1-bit 200 dpi, writers and MNIST test digits no training or
    # selection touched) as measured for the shipped classifier, and the real scans as a fax.
    family = metrics["held_out_family"]
    assert family["n"] == sum(map(sum, family["confusion_matrix"])) > 4000
    assert min(family["per_class_accuracy"].values()) >= 0.97
    # The real scans as 1-bit pages at 200 and 300 dpi and re-set in italic: the 99.5 %.
    variants = metrics["tesseract_page_variants"]["variants"]
    assert len(variants) == 4 and all(v["printed_rate"] >= 0.995 for v in variants.values())
    # The network it replaced stays on record beside it, for the comparison the model card makes.
    previous = metrics["previous_network"]
    assert previous["sha256"] != metrics["sha256"]
    assert previous["command"] != metrics["training"]["command"]
    # ... with the figures it was replaced on: validation, and the held-out family no worse in
    # either class on the draw it was replaced on; on the family as drawn now (a seed per crop),
    # both sets read on the same crops, no worse overall.
    before = previous["with_second_look"]
    assert metrics["accuracy"] >= before["validation"]["accuracy"]
    earlier = metrics["held_out_family_earlier_draw"]["per_class_accuracy"]
    assert all(earlier[c] >= before["held_out_family_earlier_draw"][c] for c in ("printed", "handwritten"))
    assert family["accuracy"] >= before["held_out_family_accuracy"]


def test_handwriting_is_cut_into_pieces_at_ink_gaps_not_at_specks():
    from docsort.training.datasets.writing_type_crops import ink_pieces

    word = np.full((40, 120), 255, np.uint8)
    word[5:35, 10:30] = 0   # a letter
    word[8:35, 36:70] = 0   # two joined letters
    word[20:21, 100:101] = 0  # dust
    assert ink_pieces(word) == [(10, 30), (36, 70)]


def test_crops_without_writing_are_drawn_again(real_printed_crops):
    from docsort.training.datasets.writing_type_crops import drawn, shows_writing

    paper = np.full((40, 120), 235, np.uint8)
    blob = paper.copy()
    blob[4:36, 10:110] = 20  # a lone period blown up to the crop's height
    sliver = paper.copy()
    sliver[18:22, 30:90] = 20  # a piece of a connecting stroke: 4 px of ink, no letter's shape
    assert not shows_writing(paper) and not shows_writing(blob) and not shows_writing(sliver)
    assert all(shows_writing(c) for c in real_printed_crops[:20])
    made = iter([blob, paper, sliver, real_printed_crops[0]])
    assert drawn(lambda: next(made)) is real_printed_crops[0]


def test_a_piece_of_a_word_keeps_the_words_scale():
    """A sliver cut from a word is scanned at the word's scale, not blown up to a word's size."""
    from docsort.training.datasets.writing_type_crops import scan_like
    from docsort.reading.writing_type import ink_box

    word = np.full((60, 200), 255, np.uint8)
    word[10:50, 20:180] = 0
    sliver = word[:, 100:104].copy()
    sliver[:25] = 255
    sliver[29:] = 255  # 4 px of ink left, a tenth of the word's height

    def ink_heights(text_height):
        heights = []
        for seed in range(40):
            found = ink_box(scan_like(sliver, np.random.default_rng(seed), text_height=text_height))
            heights.append(0 if found is None else found[0][3] - found[0][1])
        return np.array(heights)

    # Text heights run 14-100 px: a tenth of that is at most 10 px, plus what blur adds.
    assert ink_heights(40).max() <= 16
    assert np.median(ink_heights(None)) >= 14


def test_faint_ink_and_lone_punctuation_keep_their_lines_scale():
    """A pale word's height is its whole ink, and a printed hyphen stays the size it has in its line."""
    from docsort.training.synth.printed import font_split, render_text
    from docsort.training.datasets.writing_type_crops import ink_height, scan_like, type_height
    from docsort.reading.writing_type import ink_box

    pale = np.full((64, 200), 255, np.uint8)
    pale[12:52, 20:180] = 190  # pencil: no pixel darker than grey 190
    pale[30, 100] = 150        # one darker speck, which a fixed grey cut would take for the word
    assert ink_height(pale) == 40

    font = font_split(0).held_out[0]
    hyphen = render_text("-", font.path, 40, np.random.default_rng(0))
    heights = []
    for seed in range(30):
        found = ink_box(scan_like(hyphen, np.random.default_rng(seed), type_height(40)))
        heights.append(0 if found is None else found[0][3] - found[0][1])
    # Line scales run up to 100 px for a capital; a hyphen is a small fraction of that.
    assert np.median(heights) < 20


def test_batchnorm_statistics_are_measured_with_the_final_weights():
    from docsort.training.tf import keras, tensorflow
    from docsort.training.train.writing_type import build_model, recalibrate_batchnorm

    k, tf = keras(), tensorflow()
    model = build_model(k)
    rng = np.random.default_rng(0)
    batches = [(rng.random((8, HEIGHT, width, 1), dtype=np.float32), None) for width in (32, 96, 256)]
    recalibrate_batchnorm(tf, k, model, lambda: iter(batches))
    first = next(layer for layer in model.layers if isinstance(layer, k.layers.BatchNormalization))
    conv = k.Model(model.input, first.input)
    expected = np.mean([np.asarray(conv(x)).mean(axis=(0, 1, 2)) for x, _ in batches], axis=0)
    assert np.allclose(np.asarray(first.moving_mean), expected, atol=1e-5)
    assert not np.allclose(np.asarray(first.moving_variance), 1.0), "the initial statistics were replaced"


def test_a_stride_two_stem_runs_nothing_at_full_resolution():
    from docsort.training.tf import keras
    from docsort.training.train.writing_type import build_model

    k = keras()
    for stride, filters in ((1, (4, 8, 16, 16, 24, 32)), (2, (8, 16, 16, 24, 32))):
        model = build_model(k, filters, stem_stride=stride)
        convs = [layer for layer in model.layers if isinstance(layer, k.layers.Conv2D)]
        assert [c.filters for c in convs] == list(filters)
        assert convs[0].output.shape[1] == HEIGHT // stride, "the first convolution's rows"
        assert convs[-1].output.shape[1] == 1, "five halvings of the 32 rows either way"
        assert model(np.zeros((2, HEIGHT, 96, 1), np.float32)).shape == (2, 1)


@pytest.mark.parametrize("args, word", [
    (("--filters", "4,8,16,16,24,32", "--stem-stride", "2"), "2 to 5"),
    (("--stem-stride", "2"), "--filters"),
    (("--teacher", "no/such/models"), "teacher"),
])
def test_training_options_that_cannot_work_are_one_line_usage_errors(tmp_path, args, word):
    done = run_cli("train", "writing-type", "--data", tmp_path, "--out", tmp_path / "out", *args)
    assert done.returncode == 2 and not (tmp_path / "out").exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], done.stderr


def test_distilled_targets_lie_between_the_label_and_the_teacher():
    from docsort.training.train.writing_type import distilled

    y = np.array([[0.0], [1.0], [1.0]], np.float32)
    teacher = np.array([0.8, 0.1, 1.0], np.float32)
    assert np.allclose(distilled(y, teacher, 0.5), [[0.4], [0.55], [1.0]])
    assert np.array_equal(distilled(y, teacher, 0.0), y), "share 0: the labels alone"


def test_rescanned_crops_keep_their_writing_and_the_input_range(unseen_handwriting, real_printed_crops):
    """Each epoch's new scan look changes crops of both classes, keeps them inputs the network
    reads (same shape, ink in [0, 1]) and never scans a word away."""
    from docsort.reading import engine, writing_type
    from docsort.training.train.writing_type import rescan

    crops = [prepare(c) for c in list(unseen_handwriting[:32]) + list(real_printed_crops[:32])]
    x = engine.stack(crops, MAX_WIDTH, writing_type.INPUT)
    seen = [rescan(x, np.random.default_rng(seed)) for seed in range(4)]
    for y in seen:
        assert y.shape == x.shape and y.dtype == np.float32
        assert y.min() >= 0.0 and y.max() <= 1.0
        assert (y.sum(axis=(1, 2, 3)) >= 0.3 * x.sum(axis=(1, 2, 3))).all(), "a crop lost most of its ink"
    changed = np.mean([~np.isclose(y, x).all(axis=(1, 2, 3)) for y in seen], axis=0)
    assert 0.2 < changed[:32].mean() < 0.9 and 0.2 < changed[32:].mean() < 0.9, "both classes, not every crop"
    assert not np.allclose(seen[0], seen[1]), "a new look each time"


def test_jittered_crops_move_a_pixel_or_two_and_keep_all_their_ink(unseen_handwriting, real_printed_crops):
    """``--jitter`` moves half of a batch by up to 2 columns and 1 row, paper filling in: no ink
    wraps round from the other edge, and none is lost where the crop has its margin."""
    from docsort.reading import engine, writing_type
    from docsort.training.train.writing_type import shifted

    crops = [prepare(c) for c in list(unseen_handwriting[:16]) + list(real_printed_crops[:16])]
    x = engine.stack(crops, MAX_WIDTH, writing_type.INPUT)
    y = shifted(x, np.random.default_rng(3))
    moved = ~np.isclose(y, x).all(axis=(1, 2, 3))
    assert 0.25 < moved.mean() < 0.75
    assert np.allclose(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.05)
    for a, b in zip(x[moved], y[moved]):
        rows_a, cols_a = np.flatnonzero(a.any(axis=(1, 2))), np.flatnonzero(a.any(axis=(0, 2)))
        rows_b, cols_b = np.flatnonzero(b.any(axis=(1, 2))), np.flatnonzero(b.any(axis=(0, 2)))
        assert abs(int(rows_b[0]) - int(rows_a[0])) <= 1 and abs(int(cols_b[0]) - int(cols_a[0])) <= 2
        assert cols_b[-1] - cols_b[0] <= cols_a[-1] - cols_a[0], "nothing wrapped round"


def test_framed_fields_come_in_pairs_cut_as_tesseract_cuts_them(mnist_dir):
    """Both classes get the same frames; fields in cells are often cut down to one cell."""
    from docsort.training.datasets import mnist
    from docsort.training.datasets.framed_fields import cell_cut, framed_field_pair
    from docsort.training.synth import fields
    from docsort.training.synth.printed import font_split

    data = mnist.load(mnist_dir)
    images, labels = data.train.images[:2000], data.train.labels[:2000]
    fonts = list(font_split(0).train)
    rng = np.random.default_rng(8)
    pairs = [framed_field_pair(rng, fonts, images, labels) for _ in range(30)]
    for printed, handwritten in pairs:
        for crop in (printed, handwritten):
            assert crop.dtype == np.uint8 and crop.ndim == 2 and min(crop.shape) >= 2
    assert sum(shows_writing(p) and shows_writing(h) for p, h in pairs) >= 27
    field = fields.compose_field("form-comb", images, labels, np.random.default_rng(9), 6)
    one = cell_cut(field, 2, 1, np.random.default_rng(10))
    a, b = field.cells[2]
    assert one.shape[0] == field.image.shape[0] and b - a - 12 <= one.shape[1] <= b - a + 6


def test_tiny_training_run_writes_a_working_model(tmp_path, dhsd_dir, mnist_dir, tesseract_pages):
    out = tmp_path / "model"
    done = run_cli("train", "writing-type", "--dhsd", dhsd_dir, "--mnist", mnist_dir, "--pages", tesseract_pages,
                   "--out", out, "--limit", 300, "--epochs", 1, "--no-baseline", "--cache", tmp_path / "cache",
                   "--filters", "8,16,16,24,32", "--stem-stride", 2, "--rescan", "--framed-fields", 40)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "writing_type.metrics.json").read_text())
    assert metrics["filters"] == [8, 16, 16, 24, 32] and metrics["stem_stride"] == 2, \
        "the network trained is the one asked for (the shipped main network's kind)"
    assert metrics["rescan"] is True and metrics["jitter"] is True, "the shipped recipe's defaults"
    assert metrics["train_sources"]["framed_fields"]["printed"] == metrics["train_sources"]["framed_fields"][
        "handwritten"] > 0, "framed fields come in pairs, one of each class"
    for key in ("accuracy", "n", "confusion_matrix", "per_class_accuracy", "temperature", "real_scans",
                "writer_split", "font_split", "dataset_sha256", "training"):
        assert key in metrics
    assert metrics["training"]["limit"] == 300 and metrics["training"]["seed"] == 0
    assert len(json.loads((out / "writing_type.history.json").read_text())["loss"]) == 1
    p = WritingTypeClassifier(str(out / "writing_type.keras")).p_handwritten([np.full((30, 90), 255, np.uint8)])
    assert 0.0 <= float(p[0]) <= 1.0

    done = run_cli("train", "writing-type", "--lone-characters", "--dhsd", dhsd_dir, "--mnist", mnist_dir,
                   "--out", out, "--limit", 300, "--epochs", 1, "--no-baseline", "--cache", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    lone = json.loads((out / "writing_type_chars.metrics.json").read_text())
    assert lone["input"]["max_width"] == LONE_CHARACTER_WIDTH and lone["n"] > 0
    # A second member of the lone-character ensemble: its own training crops, the same validation.
    done = run_cli("train", "writing-type", "--lone-characters", "--member", 1, "--dhsd", dhsd_dir,
                   "--mnist", mnist_dir, "--out", out, "--limit", 300, "--epochs", 1, "--no-baseline",
                   "--cache", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    second = json.loads((out / "writing_type_chars_2.metrics.json").read_text())
    assert second["training"]["member"] == 1 and second["n"] == lone["n"]
    assert second["train_sources"] != lone["train_sources"] or second["sha256"] != lone["sha256"]
    # A second main model: its own training crops, the same validation; it looks again at the
    # crops of any width that the first one doubts.
    done = run_cli("train", "writing-type", "--member", 1, "--dhsd", dhsd_dir, "--mnist", mnist_dir,
                   "--pages", tesseract_pages, "--out", out, "--limit", 300, "--epochs", 1, "--no-baseline",
                   "--cache", tmp_path / "cache", "--no-jitter", "--teacher", out / "writing_type.keras")
    assert done.returncode == 0, done.stderr
    second_main = json.loads((out / "writing_type_2.metrics.json").read_text())
    assert second_main["jitter"] is False
    assert second_main["teacher"] == {"from": str(out / "writing_type.keras"), "share": 0.5}
    ensemble = WritingTypeClassifier(str(out / "writing_type.keras"))
    # The ensemble is what the folder's manifest (written by each training run) lists.
    assert ensemble.second_look_files == [str((out / "writing_type_2.onnx").resolve())]
    assert ensemble.lone_character_files == [str((out / "writing_type_chars.onnx").resolve()),
                                             str((out / "writing_type_chars_2.onnx").resolve())]
    dot, word = np.full((30, 30), 255, np.uint8), np.full((30, 150), 255, np.uint8)
    dot[10:20, 10:20] = 0
    word[10:20, 10:140:6] = 0

    def alone(f):
        return WritingTypeClassifier(str(f), ensemble=False).p_handwritten([dot, word])

    p_all, p_main, p_second = ensemble.p_handwritten([dot, word]), alone(out / "writing_type.keras"), \
        alone(out / "writing_type_2.keras")
    p_lone = [alone(f)[0] for f in ensemble.lone_character_files]
    band = np.array(ensemble.doubt[:2])  # the dot is a narrow crop, the word a wide one
    doubted = (band <= p_main) & (p_main <= 1 - band)
    expected_dot = (p_main[0] + p_second[0] + sum(p_lone)) / 4 if doubted[0] else p_main[0]
    expected_word = (p_main[1] + p_second[1]) / 2 if doubted[1] else p_main[1]
    assert np.isclose(p_all[0], expected_dot, atol=1e-5)
    assert np.isclose(p_all[1], expected_word, atol=1e-5), "words: the main models only"


def test_evaluate_cli_json_reports_both_classes_and_real_scans(tmp_path, dhsd_dir, mnist_dir, tesseract_pages):
    done = run_cli("evaluate", "writing-type", "--dhsd", dhsd_dir, "--mnist", mnist_dir, "--pages", tesseract_pages,
                   "--limit", 300, "--no-baseline", "--json", "--cache", tmp_path / "cache", "--draw", 5)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n"] == sum(map(sum, result["confusion_matrix"])) > 50
    further = result["further_draws"]
    assert further["seeds"] == [5] and further["n"] == sum(map(sum, further["confusion_matrix"])) > 20
    assert further["per_class_n"]["printed"] and further["per_class_n"]["handwritten"]
    pooled = further["pooled_with_validation"]
    assert pooled["n"] == result["n"] + further["n"]
    assert np.isclose(pooled["accuracy"], 1 - pooled["errors"] / pooled["n"])
    assert set(result["per_class_accuracy"]) == {"printed", "handwritten"}
    assert result["accuracy"] >= 0.9
    assert result["real_scans"]["original"]["n"] > 100
    assert result["model"]["sha256"] == manifest.file_sha256(str(manifest.keras_path(manifest.WRITING_TYPE)))
    # The held-out family (fonts, 1-bit 200 dpi scans, writers no training or selection touches),
    # measured apart, with a row per condition; and the real scans as 1-bit and italic pages.
    family = result["held_out_family"]
    assert family["per_class_n"]["printed"] and family["per_class_n"]["handwritten"]
    assert family["n"] == sum(map(sum, family["confusion_matrix"]))
    assert {"1-bit 200 dpi", "italic"} <= {row["condition"] for row in family["conditions"]}
    assert {"pencil", "short words (1-3 characters)"} <= {row["condition"] for row in result["validation_conditions"]}
    variants = result["tesseract_page_variants"]["variants"]
    assert {"1-bit 200 dpi", "1-bit 300 dpi"} <= set(variants) and all(v["n"] > 100 for v in variants.values())
