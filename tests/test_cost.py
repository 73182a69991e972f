"""The sorting-cost model: the classic numbers, the measured trade-off and the batch projection."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from conftest import run_cli
from docsort.cost import model as cost
from docsort.reading import manifest
from docsort.errors import ExitCode
from docsort.cost import tradeoff

CLASSIC = ("cost", "--accuracy", "0.9903", "--code-length", "5", "--volume", "100000000", "--manual-cost", "0.10")


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_classic_numbers_through_the_cli():
    report = _json(run_cli(*CLASSIC, "--json"))
    assert round(report["p_code_correct"], 5) == 0.95243
    assert report["manual_sorts"] == 4_756_818
    assert round(report["annual_cost"]) == 475_682
    assert round(report["improvement"]["savings"]) == 48_185
    assert report["improvement"]["accuracy_delta"] == 0.001
    for key in ("per_digit_accuracy", "code_length", "p_code_correct", "volume", "manual_cost", "manual_sorts",
                "annual_cost", "improvement", "threshold", "accept_rate", "error_rate", "expected_cost"):
        assert key in report
    assert set(report["improvement"]) >= {"accuracy_delta", "p_code_correct", "annual_cost", "savings"}


def test_table_for_people_and_keying_hours():
    result = run_cli(*CLASSIC, "--keying-rate", "1100", "--accuracy-delta", "0.002")
    assert result.returncode == 0, result.stderr
    assert "$475,682" in result.stdout and "4,756,818" in result.stdout
    report = _json(run_cli(*CLASSIC, "--keying-rate", "1100", "--json"))
    assert report["manual_hours"] == pytest.approx(4_756_818 / 1100, abs=0.1)


def test_plot_is_a_png(tmp_path):
    target = tmp_path / "cost.png"
    result = run_cli(*CLASSIC, "--plot", target)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, word", [
    (("--accuracy", "1.5"), "--accuracy"),
    (("--accuracy", "0"), "--accuracy"),
    (("--accuracy", "99.03"), "--accuracy"),
    (("--accuracy", "0.99", "--volume", "-5"), "--volume"),
    (("--accuracy", "0.99", "--manual-cost", "-0.1"), "--manual-cost"),
    (("--accuracy", "0.99", "--missort-cost", "-1"), "--missort-cost"),
    (("--accuracy", "0.99", "--results", "."), "at most one"),
    (("--results", "no/such/folder"), "does not exist"),
    (("--metrics", "no/such/digits.metrics.json"), "not found"),
])
def test_bad_input_is_a_one_line_usage_error(args, word):
    result = run_cli("cost", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], result.stderr


def test_results_folder_without_results_json(tmp_path):
    result = run_cli("cost", "--results", tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "results.json" in result.stderr


# --------------------------------------------------------------------------- the trade-off maths

def _synthetic_reads(n=20000, seed=3):
    """Perfectly calibrated reads: a code of confidence c is right with probability c."""
    rng = np.random.default_rng(seed)
    confidences = 1.0 - rng.beta(0.3, 6.0, size=n)
    correct = rng.random(n) < confidences
    return confidences, correct


def test_curve_is_monotone_and_counts_errors_among_all_letters():
    conf = np.array([0.99, 0.95, 0.9, 0.6, 0.3])
    correct = np.array([True, False, True, False, True])
    curve = tradeoff.tradeoff_curve(conf, correct, [0.0, 0.5, 0.92, 0.95, 1.0])
    assert [p["accept_rate"] for p in curve] == [1.0, 0.8, 0.4, 0.4, 0.0]
    assert [p["error_rate"] for p in curve] == [0.4, 0.4, 0.2, 0.2, 0.0]


def test_fitted_threshold_minimises_cost_on_a_small_set():
    conf = np.array([0.99, 0.95, 0.9, 0.6, 0.3])
    correct = np.array([True, False, True, False, True])
    # missort 10x manual: accepting the 0.95 error costs 1.0 but saves 0.1, so reject from there down.
    t = tradeoff.fit_threshold(conf, correct, manual_cost=0.1, missort_cost=1.0)
    assert 0.95 < t <= 0.99
    # missorts as cheap as manual sorting: accepting everything is no worse, so accept all.
    assert tradeoff.fit_threshold(conf, correct, manual_cost=1.0, missort_cost=1.0) <= 0.3


def test_process_never_accepts_below_one_minus_the_cost_ratio():
    """A fit set with no error between 0.8 and 0.9 would fit an optimum near 0.8; calibrated
    confidences say a code at 0.85 is wrong 15 times in 100, which costs more than a hand sort."""
    conf = np.array([0.99, 0.97, 0.95, 0.88, 0.85, 0.82, 0.5, 0.3])
    correct = np.array([True, True, True, True, True, True, False, False])
    fitted = tradeoff.fit_threshold(conf, correct, manual_cost=0.1, missort_cost=1.0)
    threshold, reported = tradeoff.operating_threshold(conf, correct, manual_cost=0.1, missort_cost=1.0)
    assert fitted < 0.82 and reported == fitted
    assert threshold == pytest.approx(cost.bayes_threshold(0.1, 1.0)) == pytest.approx(0.9)
    # Above the floor the fitted optimum stands.
    wrong_high = np.array([True, False, True, True, True, True, False, False])
    threshold, fitted = tradeoff.operating_threshold(conf, wrong_high, manual_cost=0.1, missort_cost=1.0)
    assert threshold == fitted > 0.97


def test_other_costs_are_reoptimised_without_going_below_their_calibrated_rule():
    """A curve whose fit set showed no errors below 0.9 must not lure `cost --manual-cost 0.2`
    below 0.8, nor `--manual-cost 0.05` below 0.95."""
    curve = [{"threshold": t, "accept_rate": a, "error_rate": e} for t, a, e in (
        (0.5, 0.99, 0.004), (0.7, 0.98, 0.004), (0.8, 0.97, 0.004), (0.85, 0.96, 0.004),
        (0.9, 0.95, 0.004), (0.95, 0.93, 0.003), (0.97, 0.90, 0.002))]
    stored = {"code_length": 5, "costs": {"manual_cost": 0.1, "missort_cost": 1.0},
              "optimal": {"threshold": 0.9, "accept_rate": 0.95, "error_rate": 0.004}, "curve": curve}
    assert cost.best_point(curve, 1e6, 0.2, 1.0)["threshold"] == 0.5  # the curve alone says accept all
    for manual, lowest in ((0.2, 0.8), (0.05, 0.95)):
        point = cost.tradeoff_fields(stored, 5, 1e6, manual, 1.0)
        assert point["threshold"] >= lowest
    # The stored costs give the measured optimum itself.
    assert cost.tradeoff_fields(stored, 5, 1e6, 0.1, 1.0)["threshold"] == 0.9


def test_calibrated_confidences_put_the_optimum_at_one_minus_cost_ratio():
    conf, correct = _synthetic_reads()
    t = tradeoff.fit_threshold(conf, correct, manual_cost=0.1, missort_cost=1.0)
    assert abs(t - cost.bayes_threshold(0.1, 1.0)) < 0.04
    curve = tradeoff.tradeoff_curve(conf, correct, tradeoff.curve_thresholds([t]))
    best = cost.best_point(curve, volume=1e6, manual_cost=0.1, missort_cost=1.0)
    assert abs(best["threshold"] - 0.9) < 0.05
    assert best["expected_cost"] == pytest.approx(
        cost.threshold_cost(best["accept_rate"], best["error_rate"], 1e6, 0.1, 1.0))


def test_near_optimal_range_brackets_the_optimum():
    conf, correct = _synthetic_reads()
    curve = tradeoff.tradeoff_curve(conf, correct, tradeoff.curve_thresholds())
    best = cost.best_point(curve, 1e6, 0.1, 1.0)
    flat = tradeoff.near_optimal_range(curve, 1e6, 0.1, 1.0, within=0.05)
    assert flat["from"] <= best["threshold"] <= flat["to"] < 1.0


def test_check_on_a_fresh_sample_agrees_within_sampling_error():
    fit, fresh = _synthetic_reads(seed=1), _synthetic_reads(seed=2)
    t = tradeoff.fit_threshold(*fit, manual_cost=0.1, missort_cost=1.0)
    check = tradeoff.check_threshold(t, fit, fresh)
    lo, hi = check["error_rate_ci95"]
    assert lo <= check["error_rate"] <= hi
    assert check["consistent"]
    assert check["expected_errors_from_confidence"] == pytest.approx(check["errors"], rel=0.15)


def test_wilson_interval_covers_rare_events():
    lo, hi = cost.wilson_interval(0, 1000)
    assert lo == 0.0 and 0.0 < hi < 0.005
    lo, hi = cost.wilson_interval(30, 1000)
    assert lo < 0.03 < hi


def test_measured_tradeoff_is_reoptimised_for_the_users_costs(tmp_path):
    conf, correct = _synthetic_reads()
    curve = tradeoff.tradeoff_curve(conf, correct, tradeoff.curve_thresholds())
    (tmp_path / "digits.metrics.json").write_text(json.dumps({"test_accuracy": 0.99}))
    t = tradeoff.fit_threshold(conf, correct, manual_cost=0.1, missort_cost=1.0)
    optimal = tradeoff.tradeoff_curve(conf, correct, [t])[0]
    (tmp_path / "digits.tradeoff.json").write_text(json.dumps(
        {"code_length": 5, "curve": curve, "optimal": optimal, "models": manifest.code_reader_models(),
         "costs": {"volume": 1e8, "manual_cost": 0.1, "missort_cost": 1.0}}))
    cheap = _json(run_cli("cost", "--metrics", tmp_path / "digits.metrics.json", "--json"))
    dear = _json(run_cli("cost", "--metrics", tmp_path / "digits.metrics.json", "--missort-cost", "10", "--json"))
    assert cheap["per_digit_accuracy"] == 0.99
    assert cheap["threshold"] == pytest.approx(t)  # the stored optimum, the one `process` runs at
    assert dear["threshold"] > cheap["threshold"] and dear["accept_rate"] < cheap["accept_rate"]
    assert cheap["expected_cost"] == pytest.approx(
        cost.threshold_cost(cheap["accept_rate"], cheap["error_rate"], 1e8, 0.1, 1.0), rel=1e-6)
    other_length = _json(run_cli("cost", "--metrics", tmp_path / "digits.metrics.json", "--code-length", "4",
                                 "--json"))
    assert other_length["threshold"] is None  # the curve was measured on 5-digit codes


# --------------------------------------------------------------------------- batch projection

def _page(value, confidence, decision):
    code = None if value is None else {"value": value, "source": "handwritten", "confidence": confidence,
                                       "digit_confidences": [confidence ** 0.2] * 5, "bbox": [0, 0, 1, 1],
                                       "decision": decision}
    return {"page": 1, "width": 10, "height": 10, "crops": [], "postal_code": code}


RESULTS = {"settings": {"accept_threshold": 0.9}, "documents": [
    {"file": "a.png", "sha256": "x", "status": "ok", "error": None, "pages": [_page("12345", 0.99, "auto")]},
    {"file": "b.png", "sha256": "x", "status": "ok", "error": None, "pages": [_page("54321", 0.95, "auto")]},
    {"file": "c.png", "sha256": "x", "status": "ok", "error": None, "pages": [_page("11111", 0.5, "manual")]},
    {"file": "d.png", "sha256": "x", "status": "ok", "error": None, "pages": [_page(None, None, None)]},
    {"file": "e.pdf", "sha256": None, "status": "error", "error": "unreadable", "pages": []},
]}


def test_batch_projection_scales_observed_shares_to_the_volume():
    report = cost.batch_projection(RESULTS, volume=1000, manual_cost=0.1, missort_cost=1.0)
    assert report["batch"] == {"pieces": 5, "auto": 2, "manual": 1, "no_code": 1, "unreadable": 1,
                               "expected_errors": pytest.approx(0.06), "mean_code_confidence": pytest.approx(0.8133333)}
    assert report["accept_rate"] == 0.4
    assert report["manual_sorts"] == 600 and report["annual_cost"] == 60.0
    assert report["error_rate"] == pytest.approx(0.012)
    assert report["expected_missorts"] == 12
    assert report["expected_cost"] == pytest.approx(60.0 + 12.0)
    assert report["threshold"] == 0.9


def test_batch_projection_prices_an_accuracy_gain_on_manual_sorts_and_missorts():
    report = cost.batch_projection(RESULTS, volume=1_000_000, manual_cost=0.1, missort_cost=1.0)
    p = report["per_digit_accuracy"]
    gain = 1_000_000 * ((p + 0.001) ** 5 - p ** 5)
    imp = report["improvement"]
    fewer_manual = report["manual_sorts"] - imp["manual_sorts"]
    fewer_missorts = report["expected_missorts"] - imp["expected_missorts"]
    assert fewer_manual + fewer_missorts == pytest.approx(gain, abs=2)
    assert fewer_manual / fewer_missorts == pytest.approx(600 / 12, rel=0.05)
    assert imp["savings"] == pytest.approx(fewer_manual * 0.1 + fewer_missorts * 1.0, abs=1)


def test_batch_projection_accepts_pages_and_records():
    from docsort.batch.records import PageResult, PostalCode

    page = PageResult(1, 10, 10, postal_code=PostalCode("12345", "printed", 0.98, [0.996] * 5, (0, 0, 1, 1), "auto"))
    failed = PageResult(2, 10, 10, error="page cannot be rasterised")
    report = cost.batch_projection([page, _page(None, None, None), failed], volume=300, manual_cost=0.1,
                                   missort_cost=1.0)
    assert report["batch"]["pieces"] == 3 and report["batch"]["unreadable"] == 1
    assert report["accept_rate"] == pytest.approx(1 / 3) and report["manual_sorts"] == 200
    assert report["per_digit_accuracy"] == pytest.approx(0.996)


def test_cost_from_a_processed_batch(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    report = _json(run_cli("cost", "--results", tmp_path, "--volume", "1000", "--json"))
    assert report["manual_sorts"] == 600 and report["accept_rate"] == 0.4
    table = run_cli("cost", "--results", tmp_path, "--plot", tmp_path / "batch.png")
    assert table.returncode == 0 and "manual sorts per year" in table.stdout
    assert (tmp_path / "batch.png").read_bytes()[:4] == b"\x89PNG"


def _wilson(successes, n, z=1.96):
    """The Wilson score interval as published (Wilson 1927; Newcombe 1998, method 3)."""
    p = successes / n
    centre = (2 * n * p + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(z * z + 4 * n * p * (1 - p)) / (2 * (n + z * z))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_interval_matches_the_published_formula():
    # 0 of 10: the upper bound is z^2 / (n + z^2) = 0.2775.
    assert cost.wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    for x, n in ((1, 10), (2, 5), (81, 263), (0.06, 5)):
        assert cost.wilson_interval(x, n) == pytest.approx(_wilson(x, n), abs=1e-5)


def test_batch_projection_carries_wilson_intervals(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    report = _json(run_cli("cost", "--results", tmp_path, "--volume", "1000", "--json"))
    # 5 pieces: 2 sorted automatically, 3 by hand, 0.06 missorts expected.
    assert report["intervals"] == {"level": 0.95, "method": "Wilson score", "pieces": 5}
    assert report["accept_rate_interval"] == pytest.approx(_wilson(2, 5), abs=1e-5)
    assert report["accept_rate_interval"] == pytest.approx([0.1176, 0.7693], abs=1e-4)
    assert report["manual_share_interval"] == pytest.approx(_wilson(3, 5), abs=1e-5)
    assert report["error_rate_interval"] == pytest.approx(_wilson(0.06, 5), abs=1e-5)
    lo, hi = _wilson(3, 5)
    assert report["manual_sorts_interval"] == [round(1000 * lo), round(1000 * hi)]
    assert report["annual_cost_interval"] == pytest.approx([100 * lo, 100 * hi], abs=0.01)
    lo, hi = _wilson(0.06, 5)
    assert report["expected_missorts_interval"] == [round(1000 * lo), round(1000 * hi)]
    # Three codes with digit confidences: the per-digit accuracy is known to within its interval.
    assert report["per_digit_accuracy_interval"] == pytest.approx(_wilson(3 * report["per_digit_accuracy"], 3),
                                                                  abs=1e-5)
    for key in ("per_digit_accuracy", "p_code_correct", "manual_share", "manual_sorts", "annual_cost",
                "accept_rate", "error_rate", "expected_missorts", "expected_cost"):
        lo, hi = report[f"{key}_interval"]
        assert lo <= report[key] <= hi, key
    saving_lo, saving_hi = report["improvement"]["savings_interval"]
    assert saving_lo <= report["improvement"]["savings"] <= saving_hi
    table = run_cli("cost", "--results", tmp_path, "--volume", "1000", env={"COLUMNS": "200"})
    assert "40.00 % (11.76–76.93 %)" in table.stdout and "95 % interval (Wilson score)" in table.stdout


def _batch(confidences, decision="auto"):
    return {"settings": {"accept_threshold": 0.9}, "documents": [
        {"file": f"{n}.png", "sha256": "x", "status": "ok", "error": None,
         "pages": [_page("12345", c, decision if c >= 0.9 else "manual")]} for n, c in enumerate(confidences)]}


@pytest.mark.parametrize("confidences", [[0.97] * 400, [0.995] * 40])
def test_the_saving_lies_in_its_interval(confidences):
    # Codes of 0.995 have digits of 0.999 = 1 - d, where a further 0.1 point saves the most.
    imp = cost.batch_projection(_batch(confidences))["improvement"]
    lo, hi = imp["savings_interval"]
    assert lo <= imp["savings"] <= hi


def test_small_batch_warns_once_on_stderr_and_a_big_one_does_not(tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir(), big.mkdir()
    (small / "results.json").write_text(json.dumps(RESULTS))
    (big / "results.json").write_text(json.dumps(_batch([0.99] * 900 + [0.5] * 100)))
    for args in ((), ("--json",)):
        warned = run_cli("cost", "--results", small, *args)
        assert warned.returncode == 0
        lines = warned.stderr.strip().splitlines()
        assert len(lines) == 1 and "warning" in lines[0] and "only 5 pieces" in lines[0], warned.stderr
        assert "12 to 77 %" in lines[0]
        quiet = run_cli("cost", "--results", big, *args)
        assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(run_cli("cost", "--results", small, "--json").stdout)["accept_rate"] == 0.4


def test_a_saving_made_only_on_missorts_shows_the_missorts_and_total_that_change(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_batch([0.97] * 400)))
    report = _json(run_cli("cost", "--results", tmp_path, "--json"))
    imp = report["improvement"]
    assert report["annual_cost"] == imp["annual_cost"] == 0 and imp["savings"] > 0
    assert imp["savings_interval"][0] <= imp["savings"] <= imp["savings_interval"][1]
    assert imp["expected_cost"] == pytest.approx(report["expected_cost"] - imp["savings"], abs=0.02)
    table = run_cli("cost", "--results", tmp_path, env={"COLUMNS": "200"}).stdout
    assert "$0.00 → $0.00" not in table
    missorts = next(line for line in table.splitlines() if "   missorts per year" in line and "→" in line)
    assert f"{report['expected_missorts']:,} → {imp['expected_missorts']:,}" in missorts
    total = next(line for line in table.splitlines() if "expected cost per year" in line and "→" in line)
    assert f"${report['expected_cost']:,.0f} → ${imp['expected_cost']:,.0f}" in total


# --------------------------------------------------------------------------- the shipped trade-off

def _folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_evaluate_tradeoff_end_to_end_on_a_small_sample(tmp_path, mnist_dir):
    shipped = _folder_bytes(manifest.models_dir())
    work = tmp_path / "work"
    work.mkdir()
    target = tmp_path / "tradeoff.json"
    result = run_cli("evaluate", "tradeoff", "--count", "60", "--data", mnist_dir, "--out", target,
                     "--report", tmp_path / "report", env={"DOCSORT_THREADS": "1"}, cwd=work)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "cost-optimal threshold" in said and f"written to {target}" in said
    # Written only where --out and --report say: the shipped models and threshold are untouched.
    assert _folder_bytes(manifest.models_dir()) == shipped
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "report", "report/tradeoff.json", "report/tradeoff.png", "tradeoff.json", "work"]
    assert (tmp_path / "report" / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report" / "tradeoff.json").read_text())["optimal"] == \
        json.loads(target.read_text())["optimal"]
    data = json.loads(target.read_text())
    assert data["fit"]["n"] == data["check"]["n"] == 60
    assert 0.0 <= data["optimal"]["threshold"] <= 1.0
    assert data["command"] == "docsort evaluate tradeoff --count 60"
    assert len(data["curve"]) > 50
    # It records the models it was measured with, so process and cost can check them.
    assert set(data["models"]) == {"digits", "digit_strings", "PP-OCRv6_rec_small"}
    for name, entry in data["models"].items():
        path = manifest.models_dir() / entry["file"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), name


def test_evaluate_tradeoff_writes_nothing_unless_told_where():
    result = run_cli("evaluate", "tradeoff", "--count", "60")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "--json" in lines[0] and "--report" in lines[0]


def test_evaluate_tradeoff_will_not_install_a_curve_of_another_digit_model(tmp_path):
    other = tmp_path / "other.keras"
    other.write_bytes(manifest.keras_path(manifest.DIGITS).read_bytes() + b"\0")
    result = run_cli("evaluate", "tradeoff", "--count", "60", "--model", other,
                     "--out", cost.tradeoff_path())
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "digits.keras differs" in result.stderr


def _models_with_tradeoff(tmp_path, edit):
    """A models folder like the shipped one whose trade-off file is edited by ``edit``."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in manifest.models_dir().iterdir():
        if path.name != "digits.tradeoff.json":
            (folder / path.name).symlink_to(path.resolve())
    data = json.loads((manifest.models_dir() / "digits.tradeoff.json").read_text())
    edit(data)
    (folder / "digits.tradeoff.json").write_text(json.dumps(data))
    return folder


def _other_digit_model(data):
    data["models"]["digits"]["sha256"] = "0" * 64


def _no_provenance(data):
    del data["models"]


@pytest.mark.parametrize("edit, says", [(_other_digit_model, "digits.keras differs"),
                                        (_no_provenance, "no models recorded")])
def test_process_and_cost_refuse_a_tradeoff_of_other_models(tmp_path, edit, says):
    import cv2

    models = _models_with_tradeoff(tmp_path, edit)
    tradeoff_file = models / "digits.tradeoff.json"
    envelope = tmp_path / "envelope.png"
    cv2.imwrite(str(envelope), np.full((400, 600), 255, np.uint8))
    env = {"DOCSORT_MODELS": str(models)}
    out = tmp_path / "out"
    for result in (run_cli("process", envelope, "--out", out, env=env), run_cli("cost", env=env)):
        assert result.returncode == ExitCode.MISSING_DEPENDENCY, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert str(tradeoff_file) in lines[0] and says in lines[0] and "evaluate tradeoff --out" in lines[0]
    assert not (out / "results.json").exists()


def test_shipped_tradeoff_has_an_optimal_threshold_and_a_monotone_curve():
    data = cost.load_tradeoff()
    assert data is not None, f"no trade-off shipped at {cost.tradeoff_path()}"
    optimal = data["optimal"]
    assert 0.0 <= optimal["threshold"] <= 1.0
    assert cost.default_accept_threshold() == optimal["threshold"]
    curve = data["curve"]
    thresholds = [p["threshold"] for p in curve]
    assert thresholds == sorted(thresholds)
    for a, b in zip(curve, curve[1:]):
        assert b["accept_rate"] <= a["accept_rate"] and b["error_rate"] <= a["error_rate"]
    # Measured for the model that ships (re-run `docsort evaluate tradeoff` after retraining).
    from docsort.reading import manifest

    shipped = manifest.keras_path(manifest.DIGITS)
    assert data["model"]["sha256"] == manifest.file_sha256(str(shipped.resolve()))
    assert data["models"] == manifest.code_reader_models()
    check = data["check"]
    lo, hi = check["error_rate_ci95"]
    assert lo <= check["error_rate"] <= hi and check["n"] >= 1000
    # The measured optimum is no dearer than the calibrated-confidence rule on fresh data, give or
    # take sampling error.
    assert check["expected_cost"] <= data["calibrated_rule"]["expected_cost"] * 1.25
