"""PP-OCR's recogniser, shipped in models/ and read over digits only (docsort.reading.digits.ppocr).

The real shipped network, on number fields drawn here: printed and written with separators and
marks, and a word that holds no digit; and its place in the manifest and the combination.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from docsort.reading import manifest
from docsort.reading.digits import ppocr
from docsort.reading.digits.combine import as_ink


def field(text: str, scale: float = 1.4, thickness: int = 3) -> np.ndarray:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    page = np.full((h + base + 24, w + 24), 255, np.uint8)
    cv2.putText(page, text, (12, h + 12), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thickness, cv2.LINE_AA)
    return page


@pytest.fixture(scope="module")
def reader():
    return ppocr.shared_reader()


def test_digit_classes_are_the_digits_of_the_models_own_character_list(reader):
    characters = reader.network.session.get_modelmeta().custom_metadata_map["character"].split("\n")
    labels = ["<blank>", *characters, " "]
    assert [labels[i] for i in reader.digits] == list("0123456789")
    gap_labels = {labels[i] for i in reader.gaps}
    assert {"<blank>", " ", ".", ",", "-", "/", "$", "*"} <= gap_labels
    assert not gap_labels & set("0123456789SOlIB")


def test_reads_fields_through_separators_and_marks(reader):
    texts = {"60311": "60311", "1.250,00": "125000", "$ 75-": "75", "**4711**": "4711", "12/03/2024": "12032024"}
    readings = reader.read_inks([as_ink(field(t)) for t in texts])
    assert [r.digits for r in readings] == list(texts.values())
    assert all(r.confidence > 0.5 for r in readings), [r.confidence for r in readings]


def test_any_string_has_a_probability_and_its_own_reading_is_the_likeliest(reader):
    [reading] = reader.read_inks([as_ink(field("48201"))])
    assert reading.digits == "48201"
    assert reading.probability("48201") == pytest.approx(reading.confidence)
    assert reading.probability("48207") < 0.1 * reading.confidence
    assert reading.probability("4820") < 0.1 * reading.confidence
    assert reading.probability("") == 0.0


def test_a_word_without_digits_is_no_confident_number(reader):
    readings = reader.read_inks([as_ink(field(w)) for w in ("Berlin", "Hamburg", "Street")])
    assert all(r.confidence < 0.5 or not r.digits for r in readings), [(r.digits, r.confidence) for r in readings]


def test_a_blank_field_reads_as_nothing(reader):
    [reading] = reader.read_inks([np.zeros((40, 120), np.float32)])
    assert reading.digits == "" and reading.confidence == 0.0


def test_the_line_reader_ships_in_the_manifest_with_its_licence(reader):
    models = manifest.shipped()
    name = models.line_reader()
    assert name is not None and models.entry(name)["role"] == manifest.ROLE_LINE_READER
    assert ppocr.model_path() == models.path(name) and reader.network.path.resolve() == models.path(name).resolve()
    assert models.entry(name)["sha256"] == manifest.file_sha256(models.path(name))
    assert "Apache" in (models.folder / "licenses" / "PP-OCR-Apache-2.0.txt").read_text()
    assert "PP-OCRv6_rec_small.onnx" in (models.folder / "licenses" / "PP-OCR-MODEL_LICENSES.md").read_text()
    # The combination weighs it, and the pipeline's code reading depends on it.
    assert "line" in models.combination["readers"]
    assert name in models.code_reader_models()


def test_reads_printed_words_whole_with_their_letters(reader):
    """As the second reader of print it keeps what is no digit: a country prefix stays a prefix
    (read over digits only, its "D" would come out as a digit), a place name stays a word."""
    words = {"D-80767": "D-80767", "62704-1234": "62704-1234", "Berlin": "Berlin"}
    readings = reader.read_text([as_ink(field(w)) for w in words])
    for (word, expected), (text, p) in zip(words.items(), readings):
        assert text.replace(" ", "") == expected, (word, text)
        assert 0.5 < p <= 1.0
    assert reader.read_text([np.zeros((32, 120), np.float32)]) == [("", 0.0)]
