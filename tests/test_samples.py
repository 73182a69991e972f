"""``docsort samples``: envelope scans with a ground truth a benchmark can trust."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import DATASETS, run_cli


def test_envelopes_and_truth(tmp_path):
    out = tmp_path / "env"
    proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    envelopes = truth["envelopes"]
    assert len(envelopes) == 4 and truth["generator"]["handwriting"] == "datasets"
    # A mixed batch shows every layout family in turn.
    assert [env["layout"] for env in envelopes] == ["code-first", "code-last", "code-alone", "prefixed"]
    for env in envelopes:
        image = cv2.imread(str(out / env["file"]))
        assert image is not None and image.shape[:2] == (900, 1800)
        code = env["destination_code"]
        assert len(code) == 5 and code.isdigit() and code != env["sender_code"]
        roles = {e["role"] for e in env["elements"]}
        assert {"destination_code", "destination_city", "sender_name"} <= roles
        dest = next(e for e in env["elements"] if e["role"] == "destination_code")
        assert dest["kind"] == env["destination_source"]
        x, y, w, h = dest["bbox"]
        assert 0 <= x and x + w <= 1800 and 0 <= y and y + h <= 900 and w > 0 and h > 0


def test_same_seed_same_envelopes(tmp_path):
    for name in ("a", "b"):
        assert run_cli("samples", "--out", tmp_path / name, "--count", "2", "--seed", "3").returncode == 0
    a = json.loads((tmp_path / "a" / "truth.json").read_text())
    b = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert a == b


def test_real_handwriting_from_datasets(tmp_path):
    out = tmp_path / "real"
    proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "1", "--handwriting", DATASETS,
                   "--handwritten-share", "1.0")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["generator"]["handwriting"] == "datasets"
    assert all(env["destination_source"] == "handwritten" for env in truth["envelopes"])


def test_continental_hands_write_their_ones_and_sevens_otherwise(tmp_path):
    """--continental 1 gives every hand the flagged 1 or the crossed 7; without it no hand has
    them (and the envelopes are the ones every earlier benchmark drew)."""
    from docsort.training.samples import write_samples

    plain = write_samples(tmp_path / "plain", count=6, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                          image_format="png")
    styled = write_samples(tmp_path / "styled", count=6, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                           image_format="png", continental=1.0)
    assert not any(t.continental_hand for t in plain) and all(t.continental_hand for t in styled)
    assert [t.layout for t in plain] == [t.layout for t in styled]
    truth = json.loads((tmp_path / "styled" / "truth.json").read_text())
    assert truth["generator"]["continental"] == 1.0
    again = write_samples(tmp_path / "again", count=6, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                          image_format="png", continental=0.0)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in plain]
    for t in plain:
        a = cv2.imread(str(tmp_path / "plain" / t.file))
        b = cv2.imread(str(tmp_path / "again" / t.file))
        assert np.array_equal(a, b)


def test_pen_drawn_hands_write_their_own_digits_and_only_when_asked(tmp_path):
    """--pen-digits 1 gives every hand digits drawn by a pen writer, not MNIST's; the layouts
    stay, and without it the envelopes are the ones every earlier benchmark drew."""
    from docsort.training.samples import write_samples

    plain = write_samples(tmp_path / "plain", count=4, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                          image_format="png")
    drawn = write_samples(tmp_path / "drawn", count=4, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                          image_format="png", pen_digits=1.0)
    assert not any(t.pen_digits_hand for t in plain) and all(t.pen_digits_hand for t in drawn)
    assert not any(t.continental_hand for t in drawn)
    assert [t.layout for t in plain] == [t.layout for t in drawn]
    truth = json.loads((tmp_path / "drawn" / "truth.json").read_text())
    assert truth["generator"]["pen_digits"] == 1.0
    assert all(env["pen_digits_hand"] for env in truth["envelopes"])
    # The destination code's pixels differ: another hand wrote it.
    for a, b in zip(plain, drawn):
        code = next(e for e in a.elements if e.role == "destination_code")
        x, y, w, h = (int(v) for v in code.bbox)
        pa = cv2.imread(str(tmp_path / "plain" / a.file))[y:y + h, x:x + w]
        pb = cv2.imread(str(tmp_path / "drawn" / b.file))[y:y + h, x:x + w]
        assert pa.shape != pb.shape or not np.array_equal(pa, pb)
    again = write_samples(tmp_path / "again", count=4, seed=4, handwriting=DATASETS, handwritten_share=1.0,
                          image_format="png", pen_digits=0.0)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in plain]


def _line_of(env, role):
    element = next(e for e in env["elements"] if e["role"] == role)
    x, y, w, h = element["bbox"]
    return element, y + h / 2


@pytest.mark.parametrize("layout", ["code-first", "code-last", "code-alone", "prefixed"])
def test_each_layout_family_writes_its_convention(tmp_path, layout):
    out = tmp_path / layout
    proc = run_cli("samples", "--out", out, "--count", "3", "--seed", "5", "--layout", layout,
                   "--handwritten-share", "0.5", "--max-tilt", "0")
    assert proc.returncode == 0, proc.stderr
    for env in json.loads((out / "truth.json").read_text())["envelopes"]:
        assert env["layout"] == layout
        code, code_y = _line_of(env, "destination_code")
        city, city_y = _line_of(env, "destination_city")
        same_line = abs(code_y - city_y) < 0.5 * code["bbox"][3]
        if layout == "code-alone":
            assert code_y > city_y and not same_line
        elif layout == "code-last":
            assert same_line and code["bbox"][0] > city["bbox"][0]
        else:
            assert same_line and code["bbox"][0] < city["bbox"][0]
        if layout == "prefixed" and env["destination_source"] == "printed":
            assert code["text"].endswith(env["destination_code"]) and "-" in code["text"]


def test_printed_only_envelopes_need_no_handwriting(tmp_path):
    env = {"DOCSORT_DATASETS": ""}
    proc = run_cli("samples", "--out", tmp_path / "p", "--count", "2", "--handwritten-share", "0", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("samples", "--out", tmp_path / "h", "--count", "2", env=env)
    assert proc.returncode == 2 and "--handwriting" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_handwriting_folder_is_a_clear_error(tmp_path):
    proc = run_cli("samples", "--out", tmp_path / "x", "--handwriting", tmp_path / "nothing")
    assert proc.returncode == 2
    assert "MNIST" in proc.stderr and "Traceback" not in proc.stderr


def test_mixed_never_draws_a_held_out_family(tmp_path):
    """No fitting that draws ``mixed`` may see the held-out families."""
    from docsort.training.samples import HELD_OUT_LAYOUTS, MIXED, TRAINING_LAYOUTS, make_envelope, write_samples

    truths = write_samples(tmp_path, count=12, seed=2, handwriting=DATASETS, handwritten_share=0.5,
                           layout="mixed", image_format="png")
    assert set(HELD_OUT_LAYOUTS) == {"boxed", "international"}
    assert not set(HELD_OUT_LAYOUTS) & set(TRAINING_LAYOUTS)
    assert {t.layout for t in truths} == set(TRAINING_LAYOUTS)
    drawn = {make_envelope(np.random.default_rng([9, i]), corpus=None, handwritten_share=0.0, layout=MIXED)[1].layout
             for i in range(12)}
    assert not drawn & set(HELD_OUT_LAYOUTS) and drawn <= set(TRAINING_LAYOUTS)


def test_the_international_family_puts_the_code_where_the_others_never_do():
    """A country line under the code, the code on top of the block, a reference number line, a
    CEDEX district: the code's line is not among the last two of its block on some envelopes,
    and the numbers beside it are never the code."""
    from docsort.training.samples import make_envelope

    not_last_two, orders = 0, set()
    for i in range(40):
        _, truth = make_envelope(np.random.default_rng([11, i]), corpus=None, handwritten_share=0.0,
                                 layout="international")
        dest = [e for e in truth.elements if e.role.startswith("destination_")]
        rows = sorted({e.bbox[1] for e in dest})  # printed lines: one top edge per line
        lines = []
        for y in rows:
            if not lines or y - lines[-1] > 15:
                lines.append(y)
        code = next(e for e in dest if e.role == "destination_code")
        index = max(j for j, y in enumerate(lines) if y <= code.bbox[1] + 15)
        not_last_two += index < len(lines) - 2
        roles = {e.role for e in dest}
        orders |= {r for r in ("destination_country", "destination_reference") if r in roles}
        orders |= {"top"} if index == 0 else set()
        for e in dest:
            if e.role in ("destination_reference", "destination_city") and e.text.isdigit():
                assert e.text != truth.destination_code
    assert not_last_two >= 5
    assert orders == {"destination_country", "destination_reference", "top"}


def _digit_groups(elements, role):
    return ["".join(ch for ch in e["text"] if ch.isdigit()) for e in elements if e["role"] == role
            and any(ch.isdigit() for ch in e["text"])]


def test_held_out_family_writes_a_phone_number_that_is_not_the_code(tmp_path):
    out = tmp_path / "boxed"
    proc = run_cli("samples", "--out", out, "--count", "6", "--seed", "5", "--layout", "boxed",
                   "--handwritten-share", "0.5", "--max-tilt", "0")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["generator"]["layout"] == "boxed"
    envelopes = truth["envelopes"]
    assert {env["destination_source"] for env in envelopes} == {"handwritten", "printed"}
    phone_below = []
    for env in envelopes:
        assert env["layout"] == "boxed"
        code = env["destination_code"]
        assert len(code) == 5 and code.isdigit() and code != env["sender_code"]
        element, code_y = _line_of(env, "destination_code")
        assert element["text"] == code and element["kind"] == env["destination_source"]
        assert element["bbox"][2] > 0 and element["bbox"][3] > 0
        groups = _digit_groups(env["elements"], "destination_phone")
        assert len(groups) >= 2 and "".join(groups) != code
        assert all(len(g) != len(code) for g in groups)
        phone_ys = [e["bbox"][1] + e["bbox"][3] / 2 for e in env["elements"] if e["role"] == "destination_phone"]
        phone_below.append(min(phone_ys) > code_y)
        assert max(phone_ys) < code_y or min(phone_ys) > code_y  # a line of its own
    # The phone stands below the code line on some envelopes and above it on others.
    assert any(phone_below) and not all(phone_below)


def test_a_postal_barcode_is_drawn_under_the_block_and_changes_nothing_else(tmp_path):
    """``--barcode 1`` prints a four-state barcode under each destination block: the same
    envelopes otherwise (codes, tilt, elements), the bars below the block's last line."""
    plain, barred = tmp_path / "plain", tmp_path / "barred"
    assert run_cli("samples", "--out", plain, "--count", "3", "--seed", "4").returncode == 0
    proc = run_cli("samples", "--out", barred, "--count", "3", "--seed", "4", "--barcode", "1")
    assert proc.returncode == 0, proc.stderr
    before = {e["file"]: e for e in json.loads((plain / "truth.json").read_text())["envelopes"]}
    after = {e["file"]: e for e in json.loads((barred / "truth.json").read_text())["envelopes"]}
    assert before.keys() == after.keys()
    for name, env in after.items():
        assert env["barcode"] and not before[name]["barcode"]
        assert {k: v for k, v in env.items() if k != "barcode"} == {k: v for k, v in before[name].items() if k != "barcode"}
        a = cv2.imread(str(plain / name), cv2.IMREAD_GRAYSCALE).astype(int)
        b = cv2.imread(str(barred / name), cv2.IMREAD_GRAYSCALE).astype(int)
        ys, xs = np.nonzero(np.abs(a - b) > 60)
        block = [e["bbox"] for e in env["elements"] if e["role"].startswith("destination")]
        assert len(ys) > 1000 and np.median(ys) > max(y + h for _, y, _, h in block) - 10


def test_hands_that_write_askew_cramped_or_in_pencil_are_drawn_only_when_asked(tmp_path):
    """``--block-tilt 1`` writes every handwritten address at 3-8 degrees of its own to the
    envelope, its boxes turned with it (each holds ink); ``--tight-lines 1`` writes every hand's
    lines closer than the default draw; ``--pencil 1`` writes every address in grey, grainy
    strokes, paler than a pen's. Unasked, none is drawn."""
    from docsort.training.samples import BLOCK_TILT_DEGREES

    plain, askew, cramped = tmp_path / "plain", tmp_path / "askew", tmp_path / "cramped"
    pencil = tmp_path / "pencil"
    for out, extra in ((plain, ()), (askew, ("--block-tilt", "1")), (cramped, ("--tight-lines", "1")),
                       (pencil, ("--pencil", "1"))):
        proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "9", "--handwritten-share", "1", *extra)
        assert proc.returncode == 0, proc.stderr
    load = lambda out: json.loads((out / "truth.json").read_text())["envelopes"]
    assert all(e["block_tilt_degrees"] == 0 and not e["tight_lines_hand"] and not e["pencil_hand"]
               for e in load(plain))
    assert all(e["pencil_hand"] for e in load(pencil))

    def darkest_ink(out, env) -> float:
        page = cv2.imread(str(out / env["file"]), cv2.IMREAD_GRAYSCALE)
        x, y, w, h = next(e["bbox"] for e in env["elements"] if e["role"] == "destination_code")
        return float(np.percentile(page[y:y + h, x:x + w], 1))

    assert min(darkest_ink(pencil, e) for e in load(pencil)) > max(darkest_ink(plain, e) for e in load(plain))
    assert all(e["tight_lines_hand"] and e["block_tilt_degrees"] == 0 for e in load(cramped))
    for env in load(askew):
        assert BLOCK_TILT_DEGREES[0] <= abs(env["block_tilt_degrees"]) <= BLOCK_TILT_DEGREES[1]
        page = cv2.imread(str(askew / env["file"]), cv2.IMREAD_GRAYSCALE)
        for element in env["elements"]:
            if element["role"].startswith("destination"):
                x, y, w, h = element["bbox"]
                assert (page[y:y + h, x:x + w] < 140).sum() > 20, (env["file"], element)

    def line_pitch(envelopes) -> float:
        """Median step between the centres of consecutive destination lines, in word heights."""
        steps = []
        for env in envelopes:
            boxes = [e["bbox"] for e in env["elements"] if e["role"].startswith("destination")]
            height = float(np.median([h for _, _, _, h in boxes]))
            centres = sorted(y + h / 2 for _, y, _, h in boxes)
            lines = [centres[0]]
            for c in centres[1:]:
                if c - lines[-1] > 0.5 * height:
                    lines.append(c)
            steps += [(b - a) / height for a, b in zip(lines, lines[1:])]
        return float(np.median(steps))

    assert line_pitch(load(cramped)) < 0.95 * line_pitch(load(plain))


def test_coloured_envelopes_are_drawn_only_when_asked_and_leave_the_other_pages_as_they_were(tmp_path):
    """``--coloured 1`` puts every envelope on a manila, kraft or greeting-card paper, recorded
    in truth.json and seen in the scan's paper; unasked, the envelopes are white and byte for
    byte those of a run without the option (it draws from a stream of its own)."""
    from docsort.training.samples import PAPER_COLOURS, PAPER_JITTER

    plain, again, coloured = tmp_path / "plain", tmp_path / "again", tmp_path / "coloured"
    for out, extra in ((plain, ()), (again, ("--coloured", "0")), (coloured, ("--coloured", "1"))):
        proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "9", "--format", "png", *extra)
        assert proc.returncode == 0, proc.stderr
    load = lambda out: json.loads((out / "truth.json").read_text())["envelopes"]
    assert all(e["paper_colour"] is None for e in load(plain))
    for env in load(plain):
        assert (plain / env["file"]).read_bytes() == (again / env["file"]).read_bytes()
    for env in load(coloured):
        rgb = np.asarray(env["paper_colour"])
        assert min(np.abs(rgb - np.asarray(shade)).max() for shade in PAPER_COLOURS.values()) <= PAPER_JITTER
        page = cv2.imread(str(coloured / env["file"]))
        paper = np.median(page[400:500, 40:240].reshape(-1, 3), axis=0)[::-1]  # below the sender, RGB
        assert np.abs(paper - rgb).max() < 60, (env["file"], paper, rgb)  # uneven light dims it a little


def test_address_labels_are_stuck_on_only_when_asked(tmp_path):
    """``--label 1`` lays every destination address on a white label stuck on the envelope:
    paper of the label shows just round the block, whiter than the envelope far from it (here
    kraft or a greeting card, ``--coloured 1``). Unasked, the pages are those of a run without
    the option."""
    plain, again, labelled = tmp_path / "plain", tmp_path / "again", tmp_path / "labelled"
    for out, extra in ((plain, ("--coloured", "1")), (again, ("--coloured", "1", "--label", "0")),
                       (labelled, ("--coloured", "1", "--label", "1"))):
        proc = run_cli("samples", "--out", out, "--count", "4", "--seed", "9", "--format", "png", *extra)
        assert proc.returncode == 0, proc.stderr
    load = lambda out: json.loads((out / "truth.json").read_text())["envelopes"]
    assert not any(e["label"] for e in load(plain)) and all(e["label"] for e in load(labelled))
    for env in load(plain):
        assert (plain / env["file"]).read_bytes() == (again / env["file"]).read_bytes()
    for env in load(labelled):
        page = cv2.imread(str(labelled / env["file"]), cv2.IMREAD_GRAYSCALE).astype(np.float64)
        boxes = np.array([e["bbox"] for e in env["elements"] if e["role"].startswith("destination")])
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        between = page[y0:y1, x0:x1]
        label_paper = np.percentile(between, 90)  # most of the block is the label's paper
        envelope = np.median(page[400:500, 40:240]) if x0 > 300 else np.median(page[400:500, 1500:1700])
        assert label_paper > envelope + 15, (env["file"], label_paper, envelope)


def test_a_batch_may_start_further_on_and_draws_the_same_envelopes(tmp_path):
    """Each envelope has a seed of its own: envelopes 4-5 drawn alone are envelopes 4-5 of a
    batch of five, page for page and in their truth (how a benchmark reads fresh envelopes)."""
    from docsort.training.samples import write_samples

    whole = write_samples(tmp_path / "whole", count=5, seed=9, handwritten_share=0.0, layout="boxed")
    later = write_samples(tmp_path / "later", count=2, seed=9, handwritten_share=0.0, layout="boxed", first=3)
    assert [t.file for t in later] == [t.file for t in whole[3:]]
    assert [t.to_dict() for t in later] == [t.to_dict() for t in whole[3:]]
    for t in later:
        a = cv2.imread(str(tmp_path / "whole" / t.file), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "later" / t.file), cv2.IMREAD_UNCHANGED)
        assert a is not None and np.array_equal(a, b)
    assert json.loads((tmp_path / "later" / "truth.json").read_text())["generator"]["first"] == 3
