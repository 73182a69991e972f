"""Reading runs every network with ONNX Runtime; the answers are Keras', the manifest guards the
files, and the thread setting holds.

The metrics and thresholds were measured on the trained ``.keras`` models; workers run the
``.onnx`` files exported from them. If the two ever disagreed, a batch would read differently from
the measurements. So every shipped network is run both ways on real crops of the kind it reads:
MNIST test digits, DHSD words of held-out writers, Tesseract's crops of real printed scans, and
digit strings composed from MNIST test digits. Without the datasets folder the crops come from the
sample envelopes in ``sample_docs`` (cut at their true boxes), so nothing is skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import DATASETS, REPO, run_cli
from docsort.errors import ExitCode
from docsort.reading import engine, manifest
from docsort.reading.digits import mnist_model, strings
from docsort.reading import writing_type

TOLERANCE = 1e-4
SAMPLES = REPO / "sample_docs"


def _sample_elements():
    """(grey crop, kind, text) of every text element of the sample envelopes, cut at its true box."""
    truth = json.loads((SAMPLES / "truth.json").read_text())
    found = []
    for envelope in truth["envelopes"]:
        page = cv2.imread(str(SAMPLES / envelope["file"]), cv2.IMREAD_GRAYSCALE)
        for element in envelope["elements"]:
            x, y, w, h = element["bbox"]
            found.append((page[y:y + h, x:x + w], element["kind"], element["text"]))
    return found


def _sample_numbers():
    return [(crop, text) for crop, kind, text in _sample_elements() if kind == "handwritten" and text.isdigit()]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """(n, 28, 28) float digits: MNIST test digits, or the sample envelopes' handwritten codes cut
    into as many equal pieces as they have digits."""
    if (DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        from docsort.training.datasets import mnist

        return mnist.load(DATASETS / "mnist").test.images[:600].astype(np.float32) / 255.0
    from docsort.reading.digits.mnist_format import to_mnist_batch

    pieces = []
    for crop, text in _sample_numbers():
        step = crop.shape[1] / len(text)
        pieces += [crop[:, int(k * step):int((k + 1) * step)] for k in range(len(text))]
    return to_mnist_batch(pieces)


@pytest.fixture(scope="module")
def word_crops() -> list[np.ndarray]:
    """Prepared printed/handwritten crops: DHSD words of held-out writers and their first letters
    (lone characters), and Tesseract's word crops of the real printed scans; or every text
    element of the sample envelopes and their first letters."""
    if (DATASETS / "dhsd" / "data.csv").exists() and (DATASETS / "tesseract-pages").is_dir():
        from docsort.training.evaluate.writing_type import real_scan_crops
        from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd

        words = [img for img, _, _ in load_dhsd(DATASETS / "dhsd", dhsd_writer_split(0).validation)[::30]]
        printed = [c["image"] for c in real_scan_crops(DATASETS / "tesseract-pages")][::2]
    else:
        words = [crop for crop, kind, _ in _sample_elements() if kind == "handwritten"]
        printed = [crop for crop, kind, _ in _sample_elements() if kind == "printed"]
    letters = [w[:, :max(4, w.shape[0] // 2)] for w in words]
    return [writing_type.prepare(c) for c in words + letters + printed]


@pytest.fixture(scope="module")
def fields() -> list[np.ndarray]:
    """Prepared whole-field strips: 5-digit strings composed from MNIST test digits with touching
    neighbours, or the sample envelopes' handwritten codes."""
    if (DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        from docsort.training.datasets import mnist
        from docsort.training.synth.handwriting import compose_digit_string

        test = mnist.load(DATASETS / "mnist").test
        rng = np.random.default_rng(7)
        inks = [(255 - compose_digit_string(list(test.images[k:k + 5]), rng)[0].astype(np.float32)) / 255.0
                for k in range(0, 300, 5)]
    else:
        from docsort.reading.digits.combine import as_ink

        inks = [as_ink(crop) for crop, _ in _sample_numbers()]
    return [strings.prepare(ink) for ink in inks]


@pytest.fixture(scope="module")
def keras_model():
    """The trained ``.keras`` of a shipped network, loaded with Keras (once each)."""
    from docsort.training.tf import keras

    loaded = {}

    def load(name: str):
        if name not in loaded:
            loaded[name] = keras().models.load_model(manifest.keras_path(name), compile=False)
        return loaded[name]

    return load


def _compare(name: str, crops, spec, keras_model) -> int:
    """Run one network on the engine and on Keras, batch by batch as the engine batches; the
    number of crops compared."""
    network = manifest.shipped().network(name, spec)
    compared = 0
    for _, x in engine.batches(crops, spec):
        ours = network(x)
        theirs = np.asarray(keras_model(name)(x, training=False), np.float32)
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < TOLERANCE, name
        if ours.shape[-1] == 1:
            assert ((ours > 0.5) == (theirs > 0.5)).all(), name
        else:
            assert (ours.argmax(-1) == theirs.argmax(-1)).all(), name
        compared += len(x)
    return compared


def test_every_shipped_network_is_in_the_manifest_with_its_kind_of_input():
    models = manifest.shipped()
    onnx = sorted(path.name for path in manifest.models_dir().glob("*.onnx"))
    assert sorted(entry["file"] for entry in models.models.values()) == onnx
    assert models.names(manifest.ROLE_DIGITS) == ["digits"]
    assert models.writing_type()["main"] == "writing_type"
    # Three printed/handwritten networks ship: the main one, with a first convolution that steps
    # two pixels, and two second looks for the crops it doubts; no lone-character models (model card).
    assert models.writing_type()["second_looks"] == ["writing_type_2", "writing_type_3"]
    assert models.writing_type()["lone_characters"] == []
    assert models.string_members() == ["digit_strings"]
    assert models.names(manifest.ROLE_LINE_READER) == ["PP-OCRv6_rec_small"]


def test_digit_network_answers_as_keras_on_real_digits(digits, keras_model):
    assert _compare("digits", digits, mnist_model.INPUT, keras_model) == len(digits) > 30
    # The reader batches the same way whatever company a digit keeps.
    reader = mnist_model.DigitReader()
    together = reader.predict_proba(digits[:50])
    alone = np.concatenate([reader.predict_proba(d[None]) for d in digits[:5]])
    assert np.abs(together[:5] - alone).max() < 1e-5


def test_printed_handwritten_networks_answer_as_keras_on_real_crops(word_crops, keras_model):
    models = manifest.shipped()
    ensemble = models.writing_type()
    names = [ensemble["main"], *ensemble["second_looks"], *ensemble["lone_characters"]]
    narrow = [c for c in word_crops if writing_type.INPUT.bucket(c.shape[1]) <= ensemble["doubt"]["narrow_width"]]
    assert len(narrow) > 20 and len(word_crops) - len(narrow) > 20
    for name in names:
        crops = narrow if name in ensemble["lone_characters"] else word_crops
        assert _compare(name, crops, writing_type.INPUT, keras_model) == len(crops)


def test_whole_field_networks_answer_as_keras_on_real_fields(fields, keras_model):
    for name in manifest.shipped().string_members():
        assert _compare(name, fields, strings.INPUT, keras_model) == len(fields) > 5


def test_one_batching_for_every_reader():
    """Crops of many widths go to the smallest bucket that holds them, centred or left as the
    network was trained, in calls of at most ``batch`` crops, and come back in their order."""
    spec = engine.InputSpec("crop", 4, width_buckets=(8, 16), align="centre", batch=2)
    crops = [np.full((4, w), float(w), np.float32) for w in (3, 12, 8, 30, 5)]
    seen = []
    for index, x in engine.batches(crops, spec):
        assert x.shape[0] <= 2 and x.shape[1:] == (4, x.shape[2], 1)
        for i, row in zip(index, x[..., 0]):
            seen.append(int(i))
            w = min(crops[i].shape[1], x.shape[2])
            columns = np.flatnonzero(row[0])
            left = (x.shape[2] - w) // 2
            assert columns.tolist() == list(range(left, left + w))
    assert sorted(seen) == list(range(len(crops)))
    left = engine.InputSpec("field", 4, width_buckets=(8, 16), align="left")
    (_, x), = engine.batches([np.ones((4, 5), np.float32)], left)
    assert np.flatnonzero(x[0, 0, :, 0]).tolist() == [0, 1, 2, 3, 4]


def test_wide_crops_go_in_fewer_per_call_and_read_the_same(fields):
    """A column bound keeps a large network's activations small: wide lines go a few per call,
    narrow ones more, and every reading is what one call on all of them gives."""
    spec = engine.InputSpec("x", 4, width_buckets=(8, 32), batch=16, columns=64)
    crops = [np.ones((4, w), np.float32) for w in [5] * 10 + [20] * 5]
    sizes = {x.shape[2]: [] for _, x in engine.batches(crops, spec)}
    for _, x in engine.batches(crops, spec):
        sizes[x.shape[2]].append(x.shape[0])
    assert sizes == {8: [8, 2], 32: [2, 2, 1]}
    from docsort.reading.digits import ppocr

    reader = ppocr.shared_reader()
    inks = fields[:24]
    bounded = reader.columns(inks)
    original = ppocr.INPUT
    try:
        ppocr.INPUT = dataclasses.replace(original, columns=None)
        unbounded = reader.columns(inks)
    finally:
        ppocr.INPUT = original
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(bounded, unbounded))


def _models_copy(tmp_path, change):
    """A models folder like the shipped one (files linked, not copied), changed by ``change``."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in manifest.models_dir().iterdir():
        if path.is_file():
            (folder / path.name).symlink_to(path.resolve())
    change(folder)
    return folder


def _process(tmp_path, folder):
    envelope = tmp_path / "in"
    envelope.mkdir()
    shutil.copy(SAMPLES / "envelope_0001.jpg", envelope)
    out = tmp_path / "out"
    done = run_cli("process", envelope, "--out", out, "--jobs", "1", env={"DOCSORT_MODELS": str(folder)})
    assert done.returncode == ExitCode.MISSING_DEPENDENCY, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (out / "results.json").exists()
    return done.stderr


def test_a_model_file_the_manifest_does_not_list_is_refused(tmp_path):
    def extra_member(folder):
        shutil.copy(folder / "writing_type.onnx", folder / "writing_type_5.onnx")

    said = _process(tmp_path, _models_copy(tmp_path, extra_member))
    assert "writing_type_5.onnx" in said and "not listed" in said


def test_a_model_file_that_is_not_the_listed_one_is_refused(tmp_path):
    def replaced(folder):
        target = folder / "PP-OCRv6_rec_small.onnx"
        data = target.read_bytes()
        target.unlink()
        target.write_bytes(data[:-64] + bytes(64))

    said = _process(tmp_path, _models_copy(tmp_path, replaced))
    assert "PP-OCRv6_rec_small.onnx" in said and "sha256" in said


def test_a_missing_model_file_or_manifest_is_refused(tmp_path):
    said = _process(tmp_path, _models_copy(tmp_path, lambda folder: (folder / "digit_strings.onnx").unlink()))
    assert "digit_strings.onnx" in said and "not found" in said
    other = tmp_path / "other"
    other.mkdir()
    said = _process(other, _models_copy(other, lambda folder: (folder / "manifest.json").unlink()))
    assert "manifest.json" in said and "docsort train export" in said


def test_model_card_lists_every_shipped_network_with_its_sha256():
    card = (manifest.models_dir() / "MODEL_CARD.md").read_text()
    models = manifest.shipped()
    assert f"Manifest version {models.version}" in card
    for name, entry in models.models.items():
        assert f"| {name} | {entry['role']} | `{entry['file']}` | `{entry['sha256']}` |" in card


def test_the_manifest_is_what_the_generator_writes_for_the_shipped_folder():
    """Nothing in the manifest is edited by hand or stale: generated again, it is the same."""
    from docsort.training.manifest import build

    shipped = json.loads((manifest.models_dir() / "manifest.json").read_text())
    assert build(manifest.models_dir(), shipped) == shipped


def _thread_probe(threads: str) -> dict:
    script = (
        "import json, os\n"
        "import onnxruntime\n"
        "from docsort.reading import manifest\n"
        "from docsort.reading.digits.mnist_model import INPUT\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "network = manifest.shipped().network('digits', INPUT)\n"
        "options = network.session.get_session_options()\n"
        "print(json.dumps({'threads': network.threads, 'intra': options.intra_op_num_threads,\n"
        "                  'inter': options.inter_op_num_threads,\n"
        "                  'started': len(os.listdir('/proc/self/task')) - before}))\n"
    )
    env = {**os.environ, "DOCSORT_THREADS": threads}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_networks_run_on_the_threads_docsort_threads_gives_them():
    one = _thread_probe("1")
    assert one == {"threads": 1, "intra": 1, "inter": 1, "started": 0}
    three = _thread_probe("3")
    assert (three["threads"], three["intra"], three["inter"]) == (3, 3, 1)
    assert three["started"] == 2  # the calling thread and two of ONNX Runtime's own


def test_reading_mail_imports_neither_tensorflow_nor_training():
    """A worker answers with every network loaded and no TensorFlow, Keras or training code."""
    script = (
        "import sys, json\n"
        "from docsort.page.pipeline import Settings, process_document, warm_up\n"
        "warm_up(Settings())\n"
        "doc = process_document('sample_docs/envelope_0002.jpg', Settings()).to_dict()\n"
        "print(json.dumps({'code': doc['pages'][0]['postal_code']['value'],\n"
        "                  'loaded': sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'docsort.training',\n"
        "                                               'onnxruntime') if m in sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    truth = json.loads((SAMPLES / "truth.json").read_text())
    expected = next(e["destination_code"] for e in truth["envelopes"] if e["file"] == "envelope_0002.jpg")
    assert answer == {"code": expected, "loaded": ["onnxruntime"]}


def test_a_large_network_is_kept_optimised_for_the_next_worker_and_reads_the_same(fields, tmp_path, monkeypatch):
    """PP-OCR's recogniser is optimised once and the optimised copy opened by later workers; it
    reads exactly as the original, a broken copy is made again, and a cache folder that cannot
    be written costs only the time."""
    from docsort.reading.digits import ppocr

    monkeypatch.setenv("DOCSORT_CACHE", str(tmp_path / "cache"))
    path = ppocr.model_path()
    _, x = next(engine.batches([ppocr.line_image(f) for f in fields[:8]], ppocr.INPUT))
    x = np.repeat(x[:, None], 3, axis=1)  # the three colour planes, as the reader feeds them

    stale = tmp_path / "cache" / "onnx" / f"{path.stem}.0123456789abcdef.onnx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"the copy of an earlier version")
    first = engine.Network.load(path, cached=False)
    copies = list((tmp_path / "cache" / "onnx").glob("*.onnx"))  # the earlier copy is gone
    assert len(copies) == 1 and copies[0].stat().st_size > 1e6
    assert not list((tmp_path / "cache" / "onnx").glob("*.tmp"))
    opened = []
    real = engine.session_options

    def watched(count, optimise=True):
        opened.append(optimise)
        return real(count, optimise)

    monkeypatch.setattr(engine, "session_options", watched)
    second = engine.Network.load(path, cached=False)
    assert opened == [False]  # the copy, not optimised again
    assert np.array_equal(first(x), second(x))
    assert second.session.get_modelmeta().custom_metadata_map["character"]  # its character list kept

    copies[0].write_bytes(b"not a network")
    third = engine.Network.load(path, cached=False)
    assert opened == [False, False, True] and np.array_equal(first(x), third(x))
    assert copies[0].stat().st_size > 1e6  # made again

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DOCSORT_CACHE", str(blocked))
    assert np.array_equal(first(x), engine.Network.load(path, cached=False)(x))
