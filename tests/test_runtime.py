"""The numpy inference engine gives the answers Keras gives, on the shipped models and real data.

Workers read mail with ``docsort.reading.engine`` instead of TensorFlow; if the two ever disagreed, a
batch would read differently from the evaluation that measured the model. So each shipped model
is run both ways on real crops, and a small model using every supported layer checks the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from docsort.reading import manifest
from docsort.reading import engine as runtime
from docsort.errors import MissingDependencyError

TOLERANCE = 1e-4


def _keras_outputs(path, x):
    model = manifest.load_keras_model(path)
    return np.asarray(model.predict_on_batch(x), np.float32)


def test_digit_model_matches_keras_on_real_mnist_digits(mnist_dir):
    from docsort.training.datasets import mnist

    digits = mnist.load(mnist_dir).test.images[:600].astype(np.float32) / 255.0
    path = manifest.model_path(manifest.DIGITS)
    ours = runtime.load(path).predict_on_batch(digits)
    theirs = _keras_outputs(path, digits)
    assert ours.shape == (600, 10)
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    # Chunks of the batch on two threads give exactly the same answers.
    assert np.array_equal(runtime.load(path, threads=2).predict_on_batch(digits), ours)


def test_writing_type_model_matches_keras_on_real_crops(dhsd_dir, tesseract_pages):
    import cv2

    from docsort.page import tesseract
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd
    from docsort.reading.writing_type import batches, prepare

    crops = [img for img, _, _ in load_dhsd(dhsd_dir, dhsd_writer_split(0).validation)[::40]]
    page = cv2.imread(str(tesseract_pages / "phototest.tif"), cv2.IMREAD_GRAYSCALE)
    for word in tesseract.words(page):
        x, y, w, h = word.bbox
        crops.append(page[y:y + h, x:x + w])
    prepared = [prepare(c) for c in crops]
    path = manifest.model_path(manifest.WRITING_TYPE)
    engine = runtime.load(path)
    compared = 0
    for _, x in batches(prepared):
        ours = engine.predict_on_batch(x)
        theirs = _keras_outputs(path, x)
        assert np.abs(ours - theirs).max() < TOLERANCE
        assert ((ours > 0.5) == (theirs > 0.5)).all()
        compared += len(x)
    assert compared == len(crops) > 50


def test_string_model_matches_keras_on_real_composed_fields(mnist_dir):
    from docsort.training.datasets import mnist
    from docsort.reading.digits.strings import bucket_width, pad_to, prepare, shipped_members
    from docsort.training.synth.handwriting import compose_digit_string

    test = mnist.load(mnist_dir).test
    rng = np.random.default_rng(7)
    strips = []
    for start in range(0, 40 * 5, 5):
        image, _ = compose_digit_string(list(test.images[start:start + 5]), rng)
        strips.append(prepare((255 - image.astype(np.float32)) / 255.0))
    width = max(bucket_width(s.shape[1]) for s in strips)
    x = pad_to(strips, width)
    members = shipped_members()
    assert len(members) >= 1 and members[0] == str(manifest.model_path(manifest.DIGIT_STRINGS))
    for path in members:  # every model of the whole-field ensemble
        ours = runtime.load(path).predict_on_batch(x)
        theirs = _keras_outputs(path, x)
        assert ours.shape == theirs.shape and ours.shape[0] == 40
        assert np.abs(ours - theirs).max() < TOLERANCE
        assert (ours.argmax(-1) == theirs.argmax(-1)).all()


def _every_layer_model(keras):
    """A small graph touching each layer type the engine implements, with non-trivial weights."""
    layers = keras.layers
    inputs = keras.Input((12, None, 1), name="crop")
    x = layers.Rescaling(1 / 2.0, offset=0.1)(inputs)
    x = layers.Conv2D(6, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    a = layers.Conv2D(6, (3, 5), padding="same", activation="relu")(x)
    b = layers.Conv2D(6, 1, padding="valid", activation="tanh")(x)
    x = layers.Add()([a, b])
    x = layers.GroupNormalization(groups=3)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.AveragePooling2D((2, 1))(x)
    x = layers.Conv2D(8, 3, padding="valid")(x)
    x = layers.LayerNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((-1, 8))(x)  # (width, height x channels): a sequence over columns
    x = layers.Conv1D(10, 3, padding="same", activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    seq = layers.Dense(11)(x)
    pooled = layers.Concatenate()([layers.GlobalAveragePooling1D()(seq), layers.GlobalMaxPooling1D()(seq)])
    x = layers.Dense(4, activation="sigmoid")(pooled)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs)


def test_every_supported_layer_matches_keras(tmp_path):
    from docsort.training.tf import keras as get_keras

    keras = get_keras()
    keras.utils.set_random_seed(3)
    model = _every_layer_model(keras)
    rng = np.random.default_rng(3)
    for layer in model.layers:  # move batch-norm statistics away from the identity
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * 1.5, beta + 0.2, rng.normal(size=mean.shape), rng.random(var.shape) + 0.5])
    path = tmp_path / "every_layer.keras"
    model.save(path)

    x = rng.random((5, 12, 28, 1), dtype=np.float32)
    ours = runtime.load(path).predict_on_batch(x)
    theirs = np.asarray(model.predict_on_batch(x))
    assert ours.shape == theirs.shape == (5, 4)
    assert np.abs(ours - theirs).max() < TOLERANCE


def test_unsupported_layer_falls_back_to_keras(tmp_path):
    from docsort.training.tf import keras as get_keras

    keras = get_keras()
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Flatten()(keras.layers.UpSampling2D()(inputs))
    path = tmp_path / "upsampling.keras"
    keras.Model(inputs, outputs).save(path)

    with pytest.raises(runtime.UnsupportedModel, match="UpSampling2D"):
        runtime.load(path)
    model = manifest.load_model(path)
    assert getattr(model, "runtime", "keras") == "keras"
    assert np.asarray(model.predict_on_batch(np.ones((2, 8, 8, 1), np.float32))).shape == (2, 256)


def test_damaged_model_file_is_a_dependency_error(tmp_path):
    path = tmp_path / "digits.keras"
    with zipfile.ZipFile(manifest.model_path(manifest.DIGITS)) as src, zipfile.ZipFile(path, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
        dst.writestr("model.weights.h5", b"not hdf5 at all")
    with pytest.raises(MissingDependencyError, match="corrupt or unreadable"):
        manifest.load_model(path)


def test_reading_mail_never_imports_tensorflow():
    """A worker answers with both models loaded and TensorFlow never imported (fast, small)."""
    script = (
        "import sys, json\n"
        "from docsort.page.pipeline import Settings, process_document, warm_up\n"
        "warm_up(Settings())\n"
        "doc = process_document('sample_docs/envelope_0002.jpg', Settings()).to_dict()\n"
        "print(json.dumps({'code': doc['pages'][0]['postal_code']['value'],\n"
        "                  'tensorflow': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))\n"
    )
    from conftest import REPO

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    truth = json.loads((REPO / "sample_docs" / "truth.json").read_text())
    expected = next(e["destination_code"] for e in truth["envelopes"] if e["file"] == "envelope_0002.jpg")
    assert answer == {"code": expected, "tensorflow": False, "keras": False}
