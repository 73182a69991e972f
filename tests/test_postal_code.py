"""Choosing the destination's code by layout, never the sender's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docsort.page import destination as pc
from docsort.reading import manifest


def _shipped_picker():
    picker = manifest.shipped().destination
    assert picker and picker["features"] == list(pc.PICK_FEATURES)
    return picker["weights"]


# Every choice is checked with the fitted picker the manifest ships and with the rule it replaced.
PICKERS = pytest.mark.parametrize("weights", [None, "shipped"], ids=["rule", "fitted"])


def _weights(weights):
    return _shipped_picker() if weights == "shipped" else None

PAGE = (1800, 900)


def _envelope_boxes():
    """Return address top-left (3 lines), destination block centre (3 lines)."""
    sender = [(60, 50, 120, 25), (200, 50, 130, 25), (60, 90, 180, 25), (60, 130, 90, 25), (170, 130, 140, 25)]
    dest = [(700, 380, 200, 45), (700, 440, 260, 45), (980, 440, 60, 45), (700, 500, 150, 45), (880, 500, 220, 45)]
    return sender + dest


def _candidate(region, value, conf=0.99, source="printed"):
    return pc.CodeCandidate(region, value, source, conf, [conf] * 5, _envelope_boxes()[region])


def test_layout_finds_two_address_blocks():
    lay = pc.layout(_envelope_boxes())
    assert len(lay.blocks) == 2
    assert lay.block_of[3] != lay.block_of[8]
    assert lay.line_of[3] == lay.line_of[4]


@PICKERS
def test_destination_code_wins_over_a_more_confident_sender_code(weights):
    lay = pc.layout(_envelope_boxes())
    chosen = pc.pick_destination([_candidate(3, "11111", 0.999), _candidate(8, "22222", 0.6)], lay, PAGE,
                                 _weights(weights))
    assert chosen.value == "22222"


@PICKERS
def test_a_sender_code_alone_is_never_picked(weights):
    lay = pc.layout(_envelope_boxes())
    assert pc.pick_destination([_candidate(3, "11111", 0.999)], lay, PAGE, _weights(weights)) is None


@PICKERS
def test_the_code_line_beats_the_house_number_line(weights):
    lay = pc.layout(_envelope_boxes())
    chosen = pc.pick_destination([_candidate(2, "12345", 0.99), _candidate(8, "54321", 0.95)], lay, PAGE,
                                 _weights(weights))
    assert chosen.value == "54321"


@PICKERS
@settings(max_examples=60, deadline=None)
@given(sender_conf=st.floats(0.0, 1.0), dest_conf=st.floats(0.0, 1.0), dest_present=st.booleans())
def test_sender_code_never_chosen(weights, sender_conf, dest_conf, dest_present):
    lay = pc.layout(_envelope_boxes())
    candidates = [_candidate(3, "11111", sender_conf)]
    if dest_present:
        candidates.append(_candidate(8, "22222", dest_conf))
    chosen = pc.pick_destination(candidates, lay, PAGE, _weights(weights))
    assert chosen is None or chosen.value != "11111"


def test_printed_code_tokens():
    assert pc.printed_code("D-12345", 5) == "12345"
    assert pc.printed_code("12345 Berlin", 5) == "12345"
    assert pc.printed_code("Tel. 123456", 5) is None
    assert pc.printed_code("1234", 5) is None
    assert pc.printed_code(None, 5) is None
    assert pc.printed_code("9021", 4) == "9021"
    assert pc.printed_code("65 = 710", 5) == "65710"
    assert pc.printed_code("65 Main 710", 5) is None
    # A code in two groups, as Sweden, Czechia, Slovakia and Greece write it; never a phone's.
    assert pc.printed_code("114 55 Stockholm", 5) == "11455"
    assert pc.printed_code("110 00 Praha 1", 5) == "11000"
    assert pc.printed_code("Tel 030 555 0134", 5) is None
    assert pc.printed_code("Box 12 3456", 5) is None
    # Joined by a hyphen, as Poland, Portugal, Brazil and Japan write it, with or without a prefix.
    assert pc.printed_code("00-950", 5) == "00950"
    assert pc.printed_code("PL-31-234 Kraków", 5) == "31234"
    assert pc.printed_code("PT-1000-001 LISBOA", 7) == "1000001"
    assert pc.printed_code("01310-100", 8) == "01310100"
    assert pc.printed_code("62704-1234", 5) == "62704"
    assert pc.printed_code("12-05-2024", 5) is None
    assert pc.printed_code("555-0134", 5) is None


@PICKERS
@settings(max_examples=60, deadline=None)
@given(word_conf=st.floats(0.0, 0.9), margin=st.floats(0.01, 0.5))
def test_a_word_read_as_digits_never_beats_a_surer_code_at_the_end_of_its_line(weights, word_conf, margin):
    """"Springfield, IL 62704": the word at the start of the line misread as five digits wins
    only by being read more surely than the code itself, never by standing first."""
    lay = pc.layout(_envelope_boxes())
    code_conf = min(1.0, word_conf + margin)
    word = _candidate(8, "31337", word_conf, "handwritten")
    code = _candidate(9, "62704", code_conf, "handwritten")
    assert lay.line_of[8] == lay.line_of[9] and lay.lines[lay.line_of[8]].members[0] == 8
    assert pc.pick_destination([word, code], lay, PAGE, _weights(weights)).value == "62704"
    assert pc.pick_destination([code, word], lay, PAGE, _weights(weights)).value == "62704"


def test_zip_plus_4_reads_as_the_five_digit_code():
    assert pc.printed_code("62704-1234", 5) == "62704"
    assert pc.printed_code("IL 62704-1234", 5) == "62704"
    assert pc.printed_code("DE-10115", 5) == "10115"
    assert pc.printed_code("62704-12", 5) is None


def test_plus4_is_the_four_digits_after_the_code():
    assert pc.printed_plus4("62704-1234", 5) == "1234"
    assert pc.printed_plus4("IL 62704-1234", 5) == "1234"
    assert pc.printed_plus4("62704", 5) is None
    assert pc.printed_plus4("162704-12345", 5) is None
    assert pc.printed_plus4(None, 5) is None


def test_a_phone_line_holds_no_postal_code():
    assert pc.phone_line(["Tel.", "048211", "63393"], 5)
    assert pc.phone_line(["Fax:", "55501"], 5)
    assert pc.phone_line(["030", "555", "01345"], 5)  # more digits than a ZIP+4
    assert not pc.phone_line(["Springfield,", "IL", "62704-1234"], 5)
    assert not pc.phone_line(["12345", "Berlin"], 5)
    assert not pc.phone_line(["Telgte", "48291"], 5)  # a town, not a phone word


def test_two_printed_readers_agree_disagree_or_read_alone():
    """Tesseract's code and PP-OCR's text of the same printed word: agreement is as sure as the
    surer reader, disagreement never sure enough to sort, a code only PP-OCR reads is capped."""
    from docsort.page.pipeline import DISAGREEING, LONE_SECOND_READING, printed_reading

    # Tesseract unsure of a code after a mark ("_ 45406"), PP-OCR sure of the same: sure.
    assert printed_reading("45406", 0.25, ("45406", 0.9999), 5) == ("45406", 0.998)
    # A country prefix is part of the word for both readers.
    assert printed_reading("80767", 0.987, ("D-80767", 0.9998), 5) == ("80767", 0.998)
    # Italic 09276 that Tesseract reads as 99276: the surer reading, sent to a person.
    value, conf = printed_reading("99276", 0.98, ("09276", 0.9995), 5)
    assert value == "09276" and conf == DISAGREEING < 0.899
    value, conf = printed_reading("99276", 0.98, ("09276", 0.7), 5)
    assert value == "99276" and conf == DISAGREEING
    # A code in a printed box that Tesseract reads as "g9352": PP-OCR alone, capped.
    assert printed_reading(None, 0.0, ("80352", 0.9999), 5) == ("80352", LONE_SECOND_READING)
    assert printed_reading(None, 0.0, ("Bremen", 0.99), 5) == (None, 0.0)
    # PP-OCR unsure of anything, or not asked: Tesseract as it was.
    assert printed_reading("12345", 0.97, ("12845", 0.3), 5) == ("12345", 0.97)
    assert printed_reading("12345", 0.97, None, 5) == ("12345", 0.97)
    # A ZIP+4 read by both.
    assert printed_reading("62704", 0.99, ("62704-1234", 0.999), 5) == ("62704", 0.998)
    # A Polish code read by both, and PP-OCR handed only the part after the hyphen (the word's
    # region cut there): no disagreement, Tesseract's reading as it was.
    assert printed_reading("98240", 0.993, ("PL-98-240", 0.9999), 5) == ("98240", 0.998)
    assert printed_reading("98240", 0.993, ("240", 0.9999), 5) == ("98240", 0.993)
    assert printed_reading("98240", 0.993, ("241", 0.9999), 5) == ("98240", DISAGREEING)


def test_printed_words_that_may_be_codes_are_read_again_and_only_they():
    """Words Tesseract read as mostly digits or their look-alikes ("g9352" for a boxed 80352,
    "D-80767"), or as a few digits in a code's shape ("9 7" for 92797), are read again by PP-OCR
    where a destination code may stand; names and streets are not, nor the sender's code in its
    corner or a phone number on its line."""
    from types import SimpleNamespace

    import cv2
    import numpy as np

    from docsort.page import destination
    from docsort.page.pipeline import _printed_second_readings

    page = np.full((1000, 1400), 245, np.uint8)
    lines = [
        (60, 40, [("10115", "10115"), ("Berlin", "Berlin")]),  # the sender's corner
        (560, 300, [("80352", "g9352"), ("D-80767", "D-80767")]),
        (560, 380, [("Berlin", "Berlin"), ("Hauptstrasse", "Hauptstrasse")]),
        (560, 460, [("Tel", "Tel"), ("030", "030"), ("5550134", "5550134")]),
        # Tesseract dropped digits (print just above a barcode): a code's shape, digits, no letter.
        (560, 540, [("92797", "9 7")]),
    ]
    regions = []
    for x, y, words in lines:
        for written, read in words:
            (w, h), _ = cv2.getTextSize(written, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
            cv2.putText(page, written, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2, cv2.LINE_AA)
            regions.append(SimpleNamespace(text=read, bbox=(x - 4, y - h - 6, w + 8, h + 16)))
            x += w + 24
    lay = destination.layout([r.bbox for r in regions])
    second = _printed_second_readings(page, regions, ["printed"] * len(regions), lay, (1400, 1000), 5)
    assert set(second) == {2, 3, 9}
    assert second[2][0] == "80352" and second[3][0].replace(" ", "") == "D-80767" and second[9][0] == "92797"
    assert min(second[2][1], second[3][1]) > 0.5


def test_a_code_in_boxes_holds_together_when_the_classifier_doubts_a_box():
    """A code written digit by digit into boxes is five regions. A box the classifier calls
    printed by a narrow margin still joins its handwritten neighbours (first box included), so
    one doubtful call does not lose the code; a box called printed with confidence, or a run of
    doubtful boxes with no handwriting among them, does not make a handwritten field."""
    from types import SimpleNamespace

    from docsort.page import destination
    from docsort.page.pipeline import _number_fields

    boxes = [(600 + 60 * n, 500, 40, 48) for n in range(5)]  # five cells, 20 px apart
    above = [(600, 380, 180, 40), (600, 440, 220, 40)]  # name and street lines of the block
    regions = [SimpleNamespace(bbox=b) for b in above + boxes]
    lay = destination.layout([r.bbox for r in regions])
    cells = list(range(2, 7))
    whole = destination.union_box(boxes)

    def fields(kinds, doubtful=()):
        return {bbox for _, bbox in _number_fields(regions, kinds, lay, (1800, 900), 5, set(doubtful))}

    handwritten = ["handwritten"] * 7
    assert whole in fields(handwritten)
    for doubted in cells:  # any one box, the first and the last too
        kinds = list(handwritten)
        kinds[doubted] = "printed"
        assert whole not in fields(kinds)  # called printed with confidence: the code breaks
        assert whole in fields(kinds, {doubted})  # doubted: it holds
    printed = ["printed"] * 7
    assert not fields(printed, set(cells))  # doubt alone never makes handwriting


def test_the_field_readers_decide_between_two_printed_readers_who_disagree():
    """Hand-printed digits taken for print are read two ways by the printed readers: the
    handwritten-field readers' reading decides only when it is one of the two codes."""
    from docsort.page.pipeline import DISAGREEING, printed_reading, readers_disagree
    from docsort.reading.digits.segmenting import DigitString

    def field(digits, p):
        return DigitString(digits, p, [p ** 0.2] * len(digits))

    assert readers_disagree("31572", ("31512", 0.9), 5)
    assert not readers_disagree("31572", ("31572", 0.9), 5)
    assert not readers_disagree("31572", ("31512", 0.3), 5)  # PP-OCR unsure: no dispute
    assert not readers_disagree("98240", ("98", 0.9), 5)  # a part of Tesseract's code
    assert not readers_disagree(None, ("31512", 0.9), 5)
    # The third reader agrees with PP-OCR, or with Tesseract: that code, at its P.
    assert printed_reading("31512", 0.9, ("31572", 0.95), 5, field("31572", 0.97)) == ("31572", 0.97)
    assert printed_reading("31512", 0.9, ("31572", 0.95), 5, field("31512", 0.96)) == ("31512", 0.96)
    # It agrees, unsure: no surer than a disagreement.
    assert printed_reading("31512", 0.9, ("31572", 0.95), 5, field("31572", 0.2)) == ("31572", DISAGREEING)
    # A third code, or no reading: sent to a person as before.
    value, conf = printed_reading("31512", 0.9, ("31572", 0.95), 5, field("37572", 0.99))
    assert conf == DISAGREEING
    assert printed_reading("31512", 0.9, ("31572", 0.95), 5, field("", 0.0))[1] == DISAGREEING
    # No dispute: the third reading changes nothing.
    assert printed_reading("12345", 0.97, ("12345", 0.999), 5, field("12845", 0.99)) == ("12345", 0.998)
