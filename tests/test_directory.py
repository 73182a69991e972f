"""Postal directories: codes that exist, read against the directory, checked against the city.

Real packages (zipcodes, countrystatecity-postal-codes), real Tesseract, the shipped models.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from conftest import run_cli

from docsort.page import directory
from docsort.errors import ExitCode, UsageError
from docsort.training.samples import load_truth, write_samples
from docsort.schema import results_schema


def test_us_and_de_directories_hold_their_codes_and_places():
    us, de = directory.load("US"), directory.load("de")
    assert us.place("62704") == "Springfield, IL" and "62704" in us
    assert de.place("10115") == "Berlin" and de.place("01067") == "Dresden"
    assert "00000" not in us and "99999" not in de and "1011" not in de
    assert 40_000 < len(us) < 45_000 and 8_000 < len(de) < 8_500
    assert us.describe()["package"] == "zipcodes" and us.describe()["licence"] == "MIT"
    assert de.describe()["package"] == "countrystatecity-postal-codes" and de.describe()["licence"] == "ODbL-1.0"
    assert directory.load("US") is us  # loaded once per process
    started = time.perf_counter()
    for code in ("62704", "10001", "99999", "00501") * 250:
        _ = code in us, us.place(code)
    assert (time.perf_counter() - started) / 1000 < 1e-3


def test_other_countries_with_digit_codes_and_their_lengths():
    assert {"US", "DE", "FR", "AT", "CH", "IT", "ES"} <= set(directory.countries())
    assert directory.load("AT").length == 4 and directory.load("FR").length == 5
    assert "GB" not in directory.countries()  # letters in its codes: no directory


def test_countries_that_write_their_codes_in_two_groups():
    """Poland 00-950, Portugal 1000-001, Brazil 01310-100, Sweden 114 55: read as their digits,
    written back in their groups."""
    for cc, length, example in (("PL", 5, "00-950"), ("PT", 7, "1000-001"), ("BR", 8, "01310-100"),
                                ("JP", 7, "100-0001"), ("SE", 5, "114 55"), ("CZ", 5, "110 00")):
        found = directory.load(cc)
        assert found.length == length and found.describe()["code_format"] == "".join(
            "#" if c.isdigit() else c for c in example)
        code = found.codes()[len(found) // 2]
        assert code.isdigit() and len(code) == length and found.place(code)
        assert found.format.written(code).replace("-", "").replace(" ", "") == code
    assert directory.load("PL").place("00950") == "Warszawa"
    assert directory.load("PL").format.written("00950") == "00-950"
    assert directory.load("SE").format.written("11455") == "114 55"
    assert directory.load("DE").format.written("10115") == "10115"
    assert directory.code_groups("#####") == ((5,), "")
    assert directory.code_groups("####-###") == ((4, 3), "-")
    assert directory.code_groups("#####-####") is None  # a ZIP+4: the US territories, in the US directory
    assert directory.code_groups("@# #@@") is None and directory.code_groups("##-##-##") is None


def test_countries_measured_with_their_directory_run_at_their_own_threshold():
    from docsort.cost.model import default_accept_threshold, tradeoff_path

    for cc in ("PL", "PT", "BR", "JP", "SE", "CZ", "SK", "GR"):
        measured = json.loads(tradeoff_path(country=cc).read_text())
        assert measured["country"] == cc and measured["code_length"] == directory.load(cc).length
        assert default_accept_threshold(cc, directory=True) == measured["optimal"]["threshold"] >= 0.9
    # A country not measured with its directory: the cautious US threshold.
    assert not tradeoff_path(country="FR").is_file()
    assert default_accept_threshold("FR", directory=True) == default_accept_threshold("US", directory=True)


def test_a_users_own_directory_of_codes_written_in_groups(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code,place\n00-950,Warszawa\n31-234,Kraków\n", encoding="utf-8")
    own = directory.load("PL", file=path)
    assert own.codes() == ["00950", "31234"] and own.format.written("31234") == "31-234"


def test_a_users_own_directory(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("\ufeffcode,place\n12345,Musterstadt\n12345,Beispieldorf\n54321,\"Neustadt, Weinstr.\"\n\n",
                    encoding="utf-8")
    own = directory.load(file=path)
    assert len(own) == 2 and own.length == 5
    assert own.places("12345") == ("Musterstadt", "Beispieldorf") and own.place("54321") == "Neustadt, Weinstr."
    assert own.describe()["file"] == str(path.resolve())


@pytest.mark.parametrize("content, message", [
    ("code,place\n12a45,Foo\n", "line 2"),
    ("12345,Foo\n1234,Bar\n", "line 2: code 1234 has 4 digits"),
    ("code,place\n", "holds no postal codes"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_a_malformed_directory_file_says_where(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UsageError, match=message):
        directory.read_directory_file(path)


def test_place_names_match_through_case_accents_abbreviations_and_ocr_noise():
    assert directory.matches_place("MUNCHEN", ["München"])
    assert directory.matches_place("St. Louis", ["Saint Louis"])
    assert directory.matches_place("Frankfurt a. Main", ["Frankfurt am Main"])
    assert directory.matches_place("Frankfurt", ["Frankfurt am Main"])
    assert directory.matches_place("Dresdcn", ["Dresden"])
    assert directory.matches_place("Ho6rnum (Sylt)", ["Hörnum (Sylt)"])  # OCR took an ö for a 6
    assert not directory.matches_place("Hamburg", ["Berlin"])
    # Letters whose mark Unicode does not take off, as an English OCR reads them.
    assert directory.matches_place("Lodz", ["Łódź"]) and directory.matches_place("Tromso", ["Tromsø"])
    us = directory.load("US")
    assert directory.check_place(us, "62704", ["Springfield,", "IL"]).match is True
    assert directory.check_place(us, "62704", ["Springfield,", "MA"]).match is False
    assert directory.check_place(us, "62704", []).read is None
    # Words that name no place (a street on the line above, a name OCR mangled) say nothing;
    # another real place contradicts the code.
    pl, de = directory.load("PL"), directory.load("DE")
    assert directory.check_place(pl, "93636", ["Bergstrasze"]) == directory.PlaceCheck("Bergstrasze", None)
    assert directory.check_place(pl, "80870", ["Gdarisk"]).match is None
    assert directory.check_place(pl, "80870", ["Gdansk"]).match is True
    assert directory.check_place(pl, "80870", ["Warszawa"]).match is False
    assert directory.check_place(de, "10115", ["München"]).match is False


@pytest.mark.parametrize("args", [
    ["process", "{folder}", "--out", "{out}", "--country", "XX"],
    ["process", "{folder}", "--out", "{out}", "--directory", "{bad}"],
    ["read-digits", "{image}", "--country", "XX"],
    ["cost", "--country", "XX"],
])
def test_bad_directory_options_are_one_line_usage_errors(tmp_path, args):
    folder = tmp_path / "in"
    folder.mkdir()
    image = folder / "field.png"
    cv2.imwrite(str(image), np.full((40, 120), 255, np.uint8))
    bad = tmp_path / "bad.csv"
    bad.write_text("code,place\nnot-a-code,Foo\n")
    out = tmp_path / "out"
    filled = [a.format(folder=folder, out=out, bad=bad, image=image) for a in args]
    result = run_cli(*filled)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("docsort: error:")
    assert not out.exists()


def test_read_digits_with_a_country_takes_the_valid_second_best_reading(tmp_path, mnist_dir):
    """A German code written with MNIST test digits whose last digit the readers take for an 8:
    35268 does not exist, so read against the directory it is 35260 (Stadtallendorf)."""
    from docsort.training.datasets import mnist
    from docsort.training.train.directory_reading import compose_codes

    test = mnist.load(mnist_dir).test
    field = tmp_path / "field.png"
    cv2.imwrite(str(field), compose_codes(test.images, test.labels, ["35260"], seed=19)[0])
    plain = json.loads(run_cli("read-digits", field, "--code-length", "5", "--json").stdout)[0]
    assert plain["digits"] == "35268" and "35268" not in directory.load("DE")
    result = run_cli("read-digits", field, "--country", "DE", "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["digits"] == "35260" and row["valid"] is True and row["place"] == "Stadtallendorf"
    assert row["written"] == "35260"
    assert row["without_directory"]["digits"] == "35268" and row["without_directory"]["valid"] is False
    assert row["confidence"] > plain["confidence"]
    assert row["is_number"] is True and row["p_number"] > 0.5
    # Poland writes its codes in two groups: the same field read as a Polish code says so.
    polish = json.loads(run_cli("read-digits", field, "--country", "PL", "--json").stdout)[0]
    assert polish["valid"] is True and polish["written"] == polish["digits"][:2] + "-" + polish["digits"][2:]


def test_read_digits_with_a_country_gives_a_word_no_code(dhsd_dir):
    word = sorted(dhsd_dir.rglob("*.png"))[0]
    result = run_cli("read-digits", word, "--country", "US", "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["is_number"] is False and row["digits"] is None and row["confidence"] == 0.0
    assert row["valid"] is False and row["place"] is None


def _printed_envelope(path: Path, lines: list[str]) -> None:
    """A clean printed envelope: a destination block of ``lines`` near the centre."""
    from docsort.training.synth.printed import available_fonts, render_text

    font = next(f.path for f in available_fonts() if f.family == "DejaVu Sans" and f.style == "Book")
    page = np.full((900, 1800), 245, np.uint8)
    y = 380
    for line in lines:
        piece = render_text(line, font, 38, margin=0.1)
        h, w = piece.shape
        page[y:y + h, 700:700 + w] = np.minimum(page[y:y + h, 700:700 + w], piece)
        y += int(h * 1.3)
    cv2.imwrite(str(path), page)


@pytest.fixture(scope="module")
def de_batch(tmp_path_factory):
    """Real German codes and places on sample envelopes, and a printed letter whose city
    contradicts its code beside one whose city agrees, read with --country DE."""
    folder = tmp_path_factory.mktemp("de")
    write_samples(folder, count=4, seed=11, country="DE", handwritten_share=0.5)
    _printed_envelope(folder / "zz_agrees.png", ["Erika Mustermann", "Hauptstraße 5", "10115 Berlin"])
    _printed_envelope(folder / "zz_contradicts.png", ["Erika Mustermann", "Hauptstraße 5", "10115 München"])
    out = tmp_path_factory.mktemp("de_out")
    result = run_cli("process", folder, "--out", out, "--country", "DE", "-q")
    assert result.returncode == 0, result.stderr
    return folder, json.loads((out / "results.json").read_text()), (out / "results.csv").read_text()


def _codes(results: dict) -> dict[str, dict]:
    return {Path(d["file"]).name: d["pages"][0]["postal_code"] for d in results["documents"]}


def test_process_with_a_country_reads_real_codes_and_their_places(de_batch):
    folder, results, csv_text = de_batch
    jsonschema.validate(results, results_schema())
    assert results["directory"]["country"] == "DE" and results["directory"]["licence"] == "ODbL-1.0"
    assert results["directory"]["codes"] == len(directory.load("DE"))
    codes = _codes(results)
    for name, truth in load_truth(folder).items():
        code = codes[name]
        assert code["value"] == truth["destination_code"] and code["valid"] is True
        assert code["place"] == truth["destination_place"]
        if truth["destination_source"] == "printed":
            assert code["place_match"] is True, code
    assert csv_text.splitlines()[0].endswith(",error,valid,place,place_read,place_match,written")


def test_a_printed_city_that_contradicts_the_code_sends_the_letter_to_a_person(de_batch):
    codes = _codes(de_batch[1])
    agrees, contradicts = codes["zz_agrees.png"], codes["zz_contradicts.png"]
    assert agrees["value"] == contradicts["value"] == "10115"
    assert agrees["place_match"] is True and agrees["decision"] == "auto"
    assert contradicts["place"] == "Berlin" and directory.fold(contradicts["place_read"]) == "munchen"
    assert contradicts["place_match"] is False and contradicts["decision"] == "manual"
    assert contradicts["confidence"] < agrees["confidence"]


def test_process_reads_codes_written_in_groups_printed_and_by_hand(tmp_path):
    """Real Polish codes, printed behind a country prefix (PL-31-234) or written by hand with a
    dash between the groups: the value is the code's digits, ``written`` the code as Poland
    writes it, and the code exists."""
    folder, out = tmp_path / "pl", tmp_path / "out"
    write_samples(folder, count=8, seed=5, country="PL", handwritten_share=0.5, layout="prefixed")
    truth = load_truth(folder)
    assert {t["destination_source"] for t in truth.values()} == {"printed", "handwritten"}
    result = run_cli("process", folder, "--out", out, "--country", "PL", "-q")
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, results_schema())
    codes = _codes(results)
    right = 0
    for name, t in truth.items():
        code = codes[name]
        if code is None or code["value"] != t["destination_code"]:
            continue
        right += 1
        assert code["written"] == t["destination_code"][:2] + "-" + t["destination_code"][2:] and code["valid"]
    assert right >= 7, codes
    assert results["directory"]["code_format"] == "##-###"


def test_no_code_outside_the_directory_is_auto(tmp_path):
    own = tmp_path / "codes.csv"
    own.write_text("code,place\n10115,Berlin\n")
    _printed_envelope(tmp_path / "in.png", ["Erika Mustermann", "Hauptstraße 5", "10117 Berlin"])
    out = tmp_path / "out"
    result = run_cli("process", tmp_path / "in.png", "--out", out, "--directory", own, "-q")
    assert result.returncode == 0, result.stderr
    code = json.loads((out / "results.json").read_text())["documents"][0]["pages"][0]["postal_code"]
    assert code["value"] == "10117" and code["valid"] is False and code["decision"] == "manual"


@pytest.mark.parametrize("country", ["US", "DE"])
def test_cost_shows_what_the_directory_changes(country):
    result = run_cli("cost", "--country", country, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with_directory, without = report, report["without_directory"]
    assert report["directory"]["country"] == country
    # Measured on the same codes: reading against the directory sorts more letters automatically
    # without missorting more of them.
    assert with_directory["accept_rate"] > without["accept_rate"]
    assert with_directory["error_rate"] <= without["error_rate"]
    table = run_cli("cost", "--country", country).stdout
    assert f"with the {country} postal directory" in table and "without the directory" in table


def test_samples_with_a_country_draw_real_codes_places_and_states(tmp_path):
    us = directory.load("US")
    truths = write_samples(tmp_path, count=3, seed=5, country="US", layout="code-last", handwritten_share=0)
    for truth in truths:
        assert truth.destination_code in us and truth.destination_place == us.place(truth.destination_code)
        assert truth.sender_code is None or truth.sender_code in us
        state = next(e.text for e in truth.elements if e.role == "destination_state")
        assert state == us.states[truth.destination_code]
    assert json.loads((tmp_path / "truth.json").read_text())["generator"]["directory"]["package"] == "zipcodes"


def test_directory_reading_calibration_is_reproduced_where_asked(tmp_path, mnist_dir, dhsd_dir):
    from docsort.reading import manifest

    shipped = (manifest.models_dir() / "directory_reading.json").read_bytes()
    out = tmp_path / "directory_reading.json"
    result = run_cli("train", "directory-reading", "--data", mnist_dir, "--handwriting", dhsd_dir,
                     "--count", "50", "--words", "10", "--out", out)
    assert result.returncode == 0, result.stderr
    fit = json.loads(out.read_text())
    assert set(fit["directories"]) == {"US", "DE"} and set(fit["weights"]) >= {"bias", "renormalised"}
    assert all(np.isfinite(v) for v in [*fit["score"].values(), *fit["weights"].values()])
    assert "--out" in fit["command"] and fit["fit"]["countries"] == ["US", "DE"]
    assert (manifest.models_dir() / "directory_reading.json").read_bytes() == shipped
