"""The mail-sorting cost model: what reading errors and manual sorting cost a sorting centre a year.

Two views of the same money:

* The classic estimate. A k-digit postal code is read correctly with probability P^k when each
  digit is read correctly with probability P; every letter whose code is not read correctly is
  assumed to be caught and sorted by hand. Small gains in per-digit accuracy are worth a lot
  because they are raised to the k-th power and multiplied by the annual volume.
* The measured trade-off. A real reader cannot catch every error: it accepts a code when its
  calibrated confidence reaches the accept threshold and sends the rest to manual sorting.
  Raising the threshold trades missorted letters (accepted but wrong) for manual sorts, so the
  threshold that minimises ``volume x (reject x manual_cost + error x missort_cost)`` is the
  one a sorting line should run at. The curve is measured by ``docsort evaluate tradeoff`` and
  shipped as ``models/digits.tradeoff.json`` next to the digit model.

All arithmetic is exact floating point; rounding happens only when a report is produced
(``round_report``): probabilities and rates to 6 decimal places, thresholds to 10, letter counts
to whole letters, money to the cent, hours to a tenth. This module stays free of heavy imports so
``docsort cost`` answers instantly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from docsort import settings
from docsort.reading import manifest as modelstore
from docsort.errors import MissingDependencyError, UsageError

DEFAULT_VOLUME = 100_000_000
DEFAULT_MANUAL_COST = 0.10
DEFAULT_ACCURACY_DELTA = 0.001

# A missorted letter is not just sorted again: it travels to the wrong delivery office, is
# noticed there by a carrier, sent back, sorted by hand and delivered a day or more late (with
# the customer complaints and service-level penalties that brings). That is several handlings
# plus transport and delay, so we price it at ten manual sorts. Users set their own figure
# with ``--missort-cost``.
DEFAULT_MISSORT_COST = 1.00

# When no measured trade-off is shipped, use the rule that is optimal for calibrated
# confidences: accepting a code of confidence c costs (1 - c) x missort_cost on average and
# rejecting it costs manual_cost, so accept when c >= 1 - manual_cost / missort_cost
# (0.9 for the default costs).
FALLBACK_ACCEPT_THRESHOLD = 0.9

TRADEOFF_SUFFIX = ".tradeoff.json"
# The measured directory whose threshold serves countries and users' lists measured with none.
CAUTIOUS_DIRECTORY = "US"


# --------------------------------------------------------------------------- validation

def check_accuracy(value: float, option: str = "--accuracy") -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 1.0):
        raise UsageError(f"{option} must be a per-digit accuracy in (0, 1], e.g. 0.9903 (got {value})")
    return float(value)


def check_non_negative(value: float, option: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise UsageError(f"{option} must be a non-negative number (got {value})")
    return float(value)


def check_code_length(value: int) -> int:
    return settings.check_code_length(value)


def check_keying_rate(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"--keying-rate must be a positive number of letters per hour (got {value})")
    return float(value)


# --------------------------------------------------------------------------- basic maths

def p_code_correct(per_digit_accuracy: float, code_length: int) -> float:
    """P(all k digits read correctly), digits read independently."""
    return per_digit_accuracy ** code_length


def threshold_cost(accept_rate: float, error_rate: float, volume: float,
                   manual_cost: float, missort_cost: float) -> float:
    """Annual cost at one accept threshold: rejected letters are keyed, accepted wrong ones missorted.

    ``error_rate`` is the share of *all* letters that are accepted with a wrong code.
    """
    return volume * ((1.0 - accept_rate) * manual_cost + error_rate * missort_cost)


def bayes_threshold(manual_cost: float, missort_cost: float) -> float:
    """The cost-optimal threshold for perfectly calibrated confidences: 1 - manual/missort."""
    if missort_cost <= manual_cost:
        return 0.0  # a missort costs no more than keying: accept everything
    return 1.0 - manual_cost / missort_cost


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); good for rare events."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def difference_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe's 95 % interval for p2 - p1 from two independent samples (Wilson bounds)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1)
    l2, u2 = wilson_interval(x2, n2)
    d = p2 - p1
    return (d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


# --------------------------------------------------------------------------- classic estimate

@dataclass
class ClassicEstimate:
    """The classic P^k estimate and what a small accuracy gain is worth."""

    per_digit_accuracy: float
    code_length: int
    volume: float
    manual_cost: float
    accuracy_delta: float = DEFAULT_ACCURACY_DELTA
    keying_rate: Optional[float] = None

    @property
    def p_code_correct(self) -> float:
        return p_code_correct(self.per_digit_accuracy, self.code_length)

    @property
    def manual_sorts(self) -> float:
        return self.volume * (1.0 - self.p_code_correct)

    @property
    def annual_cost(self) -> float:
        return self.manual_sorts * self.manual_cost

    @property
    def improved(self) -> "ClassicEstimate":
        better = min(1.0, self.per_digit_accuracy + self.accuracy_delta)
        return ClassicEstimate(better, self.code_length, self.volume, self.manual_cost,
                               self.accuracy_delta, self.keying_rate)

    def to_dict(self) -> dict:
        better = self.improved
        out = {
            "per_digit_accuracy": self.per_digit_accuracy,
            "code_length": self.code_length,
            "p_code_correct": self.p_code_correct,
            "volume": self.volume,
            "manual_cost": self.manual_cost,
            "manual_share": 1.0 - self.p_code_correct,
            "manual_sorts": self.manual_sorts,
            "annual_cost": self.annual_cost,
            "improvement": {
                "accuracy_delta": self.accuracy_delta,
                "per_digit_accuracy": better.per_digit_accuracy,
                "p_code_correct": better.p_code_correct,
                "manual_sorts": better.manual_sorts,
                "annual_cost": better.annual_cost,
                "savings": self.annual_cost - better.annual_cost,
            },
        }
        if self.keying_rate:
            out["keying_rate"] = self.keying_rate
            out["manual_hours"] = self.manual_sorts / self.keying_rate
            out["improvement"]["manual_hours_saved"] = (self.manual_sorts - better.manual_sorts) / self.keying_rate
        return out


# --------------------------------------------------------------------------- measured trade-off

def tradeoff_path_for(metrics_file: Path) -> Path:
    """``digits.metrics.json`` -> ``digits.tradeoff.json`` beside it."""
    name = metrics_file.name
    stem = name[: -len(".metrics.json")] if name.endswith(".metrics.json") else metrics_file.stem
    return metrics_file.with_name(stem + TRADEOFF_SUFFIX)


def tradeoff_path(name: str = modelstore.DIGITS, country: Optional[str] = None) -> Path:
    """The shipped trade-off, or with ``country`` the one measured without and with its postal
    directory (``digits.tradeoff.US.json``)."""
    if country:
        return modelstore.models_dir() / f"{name}.tradeoff.{country}.json"
    return modelstore.models_dir() / f"{name}{TRADEOFF_SUFFIX}"


def load_tradeoff(path: Optional[Path] = None) -> Optional[dict]:
    """The measured trade-off curve, or None when none is shipped.

    A curve holds only for the models it was measured with, so a file whose recorded models
    (``models``: the sha256 of every file the code reader uses) are not the installed ones is
    refused (MissingDependencyError, exit code 4) rather than quietly moving the threshold.
    """
    path = Path(path) if path is not None else tradeoff_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"trade-off file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("curve"), list):
        raise MissingDependencyError(f"trade-off file {path} has no curve")
    check_measured_models(data, path)
    return data


def models_mismatch(recorded: Any, installed: Mapping[str, Mapping]) -> Optional[str]:
    """What differs between a trade-off's recorded models and the installed ones, or None."""
    if not isinstance(recorded, Mapping) or not recorded:
        return "no models recorded"
    differ = []
    for name in sorted(set(recorded) | set(installed)):
        mine, theirs = recorded.get(name), installed.get(name)
        if theirs is None:
            differ.append(f"{name} not installed")
        elif not isinstance(mine, Mapping):
            differ.append(f"{theirs['file']} not measured")
        elif theirs["sha256"] is None:
            differ.append(f"{theirs['file']} missing")
        elif mine.get("sha256") != theirs["sha256"]:
            differ.append(f"{theirs['file']} differs")
    return ", ".join(differ) or None


def check_measured_models(data: Mapping, path: Path) -> None:
    """Refuse a trade-off measured with other model files than the installed code reader's."""
    problem = models_mismatch(data.get("models"), modelstore.code_reader_models())
    if problem:
        raise MissingDependencyError(
            f"trade-off file {path} was not measured with the installed models ({problem}); restore the shipped file "
            f"or re-measure it (docsort evaluate tradeoff --out {path}), or give process --accept-threshold")


def default_accept_threshold(country: Optional[str] = None, directory: bool = False) -> float:
    """The accept threshold ``process`` runs at: the measured cost optimum of the shipped models.

    With a postal directory (``directory``) codes are read against it and their confidences mean
    P(code right) among the codes that exist, so the optimum measured with the country's
    directory is taken (``digits.tradeoff.CC.json``), or, for a country or a user's list without
    one, the optimum of the most similar measured directory: the densest one (US), which is the
    cautious choice. Falls back to ``FALLBACK_ACCEPT_THRESHOLD`` (the calibrated-confidence
    optimum for the default costs) when no trade-off file is shipped. A file that cannot be read
    or was measured with other models stops the run (exit code 4): a threshold must not change
    behind the user's back.
    """
    if directory:
        path = tradeoff_path(country=country) if country else None
        if path is None or not path.is_file():
            path = tradeoff_path(country=CAUTIOUS_DIRECTORY)
        data = load_tradeoff(path) if path.is_file() else None
    else:
        data = load_tradeoff()
    if data:
        threshold = data.get("optimal", {}).get("threshold")
        if isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0:
            return float(threshold)
    return FALLBACK_ACCEPT_THRESHOLD


def best_point(curve: Sequence[Mapping[str, float]], volume: float, manual_cost: float,
               missort_cost: float) -> dict:
    """The curve point of least annual cost (ties: the lower threshold, which accepts more)."""
    if not curve:
        raise ValueError("empty trade-off curve")
    best = None
    for point in curve:
        cost = threshold_cost(point["accept_rate"], point["error_rate"], volume, manual_cost, missort_cost)
        if best is None or cost < best[0] - 1e-9 * max(1.0, abs(best[0])):
            best = (cost, point)
    cost, point = best
    return {"threshold": point["threshold"], "accept_rate": point["accept_rate"],
            "error_rate": point["error_rate"], "expected_cost": cost}


def tradeoff_fields(tradeoff: Optional[Mapping], code_length: int, volume: float,
                    manual_cost: float, missort_cost: float, tradeoff_file: Optional[Path] = None) -> dict:
    """Cost-optimal operating point of a measured curve, re-optimised for these costs."""
    empty = {"threshold": None, "accept_rate": None, "error_rate": None,
             "expected_missorts": None, "expected_cost": None}
    if not tradeoff or tradeoff.get("code_length", code_length) != code_length:
        return empty
    stored = tradeoff.get("costs") or {}
    optimal = tradeoff.get("optimal") or {}
    if (stored.get("manual_cost"), stored.get("missort_cost")) == (manual_cost, missort_cost) and optimal:
        # The measured optimum itself (the threshold ``process`` runs at); volume only scales the cost.
        point = {key: optimal[key] for key in ("threshold", "accept_rate", "error_rate")}
        point["expected_cost"] = threshold_cost(point["accept_rate"], point["error_rate"], volume,
                                                manual_cost, missort_cost)
    else:
        # As when it was measured (cost.tradeoff.operating_threshold): never below the rule for
        # calibrated confidences at these costs.
        floor = bayes_threshold(manual_cost, missort_cost)
        allowed = [p for p in tradeoff["curve"] if p["threshold"] >= floor - 1e-9] or tradeoff["curve"]
        point = best_point(allowed, volume, manual_cost, missort_cost)
    point["expected_missorts"] = volume * point["error_rate"]
    point["tradeoff"] = {
        "file": str(tradeoff_file) if tradeoff_file else None,
        "measured_on": tradeoff.get("fit", {}).get("data"),
        "n": tradeoff.get("fit", {}).get("n"),
        "near_optimal": tradeoff.get("near_optimal"),
        "check": tradeoff.get("check"),
    }
    return point


def curve_grid() -> list[float]:
    """Thresholds a curve is sampled at: coarse up to 0.9, then log-spaced towards 1."""
    coarse = [i * 0.05 for i in range(19)]
    fine = [1.0 - 10 ** (-1 - 5 * i / 50) for i in range(51)]
    return sorted(set(round(t, 12) for t in coarse + fine + [1.0]))


def expected_curve(results: Any, thresholds: Optional[Sequence[float]] = None) -> list[dict]:
    """A batch's trade-off as its calibrated confidences predict it (no truth needed)."""
    pages, failed, _ = _pieces(results)
    pieces = len(pages) + failed
    confidences = [float(p["postal_code"].get("confidence") or 0.0)
                   for p in pages if p.get("postal_code") and not p.get("error")]
    curve = []
    for t in thresholds if thresholds is not None else curve_grid():
        accepted = [c for c in confidences if c >= t]
        curve.append({"threshold": t, "accept_rate": len(accepted) / pieces if pieces else 0.0,
                      "error_rate": sum(1.0 - c for c in accepted) / pieces if pieces else 0.0})
    return curve


def curve_of(report: Mapping) -> Optional[list]:
    """The curve behind a report's operating point, for plotting: measured, or a batch's expected one."""
    source = report.get("source") or {}
    if source.get("kind") == "results":
        return expected_curve(json.loads(Path(source["file"]).read_text()))
    file = (report.get("tradeoff") or {}).get("file")
    data = load_tradeoff(Path(file)) if file else None
    return data["curve"] if data else None


# --------------------------------------------------------------------------- the three estimates

def estimate_from_accuracy(per_digit_accuracy: float, *, code_length: int = settings.CODE_LENGTH,
                           volume: float = DEFAULT_VOLUME, manual_cost: float = DEFAULT_MANUAL_COST,
                           missort_cost: float = DEFAULT_MISSORT_COST,
                           accuracy_delta: float = DEFAULT_ACCURACY_DELTA,
                           keying_rate: Optional[float] = None,
                           tradeoff: Optional[Mapping] = None, tradeoff_file: Optional[Path] = None) -> dict:
    """The classic estimate for a given per-digit accuracy, plus a measured trade-off if given."""
    check_accuracy(per_digit_accuracy)
    _check_common(code_length, volume, manual_cost, missort_cost, accuracy_delta, keying_rate)
    report = ClassicEstimate(per_digit_accuracy, code_length, volume, manual_cost,
                             accuracy_delta, keying_rate).to_dict()
    report["missort_cost"] = missort_cost
    report.update(tradeoff_fields(tradeoff, code_length, volume, manual_cost, missort_cost, tradeoff_file))
    report["source"] = {"kind": "accuracy"}
    return round_report(report)


def estimate_from_metrics(metrics_file: Optional[Path] = None, **options) -> dict:
    """The classic estimate from a model's measured ``test_accuracy`` and its measured trade-off."""
    path = Path(metrics_file) if metrics_file is not None else modelstore.metrics_path(modelstore.DIGITS)
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        if metrics_file is None:
            raise MissingDependencyError(
                f"no digit model metrics installed at {path}; pass --accuracy or --metrics") from None
        raise UsageError(f"metrics file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"metrics file {path} cannot be read: {exc}") from None
    accuracy = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
    if not isinstance(accuracy, (int, float)):
        raise UsageError(f"metrics file {path} has no numeric test_accuracy")
    check_accuracy(float(accuracy), option=f"test_accuracy in {path}")
    tradeoff_file = tradeoff_path_for(path)
    report = estimate_from_accuracy(float(accuracy), tradeoff=load_tradeoff(tradeoff_file),
                                    tradeoff_file=tradeoff_file, **options)
    report["source"] = {"kind": "metrics", "file": str(path)}
    return report


def with_directory(report: dict, country: str, volume: float = DEFAULT_VOLUME,
                   manual_cost: float = DEFAULT_MANUAL_COST, missort_cost: float = DEFAULT_MISSORT_COST) -> dict:
    """``report`` at the operating point measured with ``country``'s postal directory (the one
    ``process --country`` runs at), and the same codes' operating point without it beside it
    (``without_directory``), from ``digits.tradeoff.CC.json``."""
    from docsort.page import directory as directories

    cc = directories.check_country(country)
    path = tradeoff_path(country=cc)
    if not path.is_file():
        measured = sorted(p.name.split(".")[-2] for p in path.parent.glob(f"{modelstore.DIGITS}.tradeoff.*.json"))
        raise UsageError(f"no trade-off measured with the {cc} postal directory ({path} does not exist; measured: "
                         f"{', '.join(measured) or 'none'}); measure it with docsort evaluate tradeoff --country {cc} "
                         f"--out {path}")
    data = load_tradeoff(path)
    code_length = int(data.get("code_length", report["code_length"]))
    if code_length != report["code_length"]:
        raise UsageError(f"--code-length {report['code_length']} does not fit the {cc} postal directory, whose codes "
                         f"have {code_length} digits")
    without = dict(data["without_directory"], costs=data.get("costs"), code_length=code_length)
    report = dict(report)
    report.update(tradeoff_fields(data, code_length, volume, manual_cost, missort_cost, path))
    report["without_directory"] = tradeoff_fields(without, code_length, volume, manual_cost, missort_cost, path)
    report["without_directory"].pop("tradeoff", None)
    report["directory"] = data.get("directory") or {"country": cc}
    return round_report(report)


def estimate_from_results(results_dir: Path, **options) -> dict:
    """A processed batch's observed manual share and expected missorts, scaled to the volume."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UsageError(f"results folder does not exist: {results_dir}")
    results_file = results_dir / "results.json"
    if not results_file.is_file():
        raise UsageError(f"no results.json in {results_dir} (run `docsort process ... --out {results_dir}` first)")
    try:
        results = json.loads(results_file.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{results_file} cannot be read: {exc}") from None
    report = batch_projection(results, **options)
    report["source"] = {"kind": "results", "file": str(results_file)}
    return report


# --------------------------------------------------------------------------- batch projection

def _as_dict(item: Any) -> Mapping:
    return item.to_dict() if hasattr(item, "to_dict") else item


def _pieces(results: Any) -> tuple[list[Mapping], int, Optional[float]]:
    """Pages (one mail piece each) and the number of unreadable documents, from any results form."""
    threshold = None
    if isinstance(results, Mapping) and "documents" in results:
        run = results.get("settings") or {}
        threshold = run.get("accept_threshold", results.get("accept_threshold"))
        items: Iterable = results["documents"]
    elif isinstance(results, Mapping):
        items = [results]
    else:
        items = results
    pages: list[Mapping] = []
    failed = 0
    for item in items:
        item = _as_dict(item)
        if "pages" in item:
            if item.get("status") == "error":
                failed += 1
            pages.extend(_as_dict(p) for p in item.get("pages") or [])
        else:
            pages.append(item)
    return pages, failed, threshold if isinstance(threshold, (int, float)) else None


def batch_projection(results: Any, volume: float = DEFAULT_VOLUME, manual_cost: float = DEFAULT_MANUAL_COST,
                     missort_cost: float = DEFAULT_MISSORT_COST, *, code_length: int = settings.CODE_LENGTH,
                     accuracy_delta: float = DEFAULT_ACCURACY_DELTA, keying_rate: Optional[float] = None,
                     accept_threshold: Optional[float] = None) -> dict:
    """Project a processed batch to a year's volume (``summary.cost`` of results.json).

    ``results`` is a results.json dict, or a list of documents or of pages (dicts or records).
    Every page is one mail piece. A piece goes to manual sorting when its code was decided
    ``manual``, when no code was found, or when its page or document could not be read. Auto-sorted
    pieces are missorted with probability 1 - confidence (the code confidence is calibrated), so
    their sum is the expected number of missorts. The per-digit accuracy is estimated as the mean
    calibrated digit confidence; the improvement is the classic P^k gain on that estimate, saved
    on manual sorts and missorts in the batch's proportion (``savings`` counts both).

    The batch is a sample of the year's mail, so every projected rate and the counts and costs
    scaled from it carry a 95 % Wilson score interval (``<key>_interval``, see ``batch_intervals``).
    """
    _check_common(code_length, volume, manual_cost, missort_cost, accuracy_delta, keying_rate)
    pages, failed, stored_threshold = _pieces(results)
    pieces = len(pages) + failed  # every page, plus one piece per unreadable document
    auto = manual = no_code = 0
    expected_errors = 0.0
    digit_conf: list[float] = []
    code_conf: list[float] = []
    digit_codes = 0  # codes with digit confidences: the per-digit accuracy's sample size
    for page in pages:
        code = page.get("postal_code")
        if page.get("error"):
            failed += 1
            continue
        if not code:
            no_code += 1
            continue
        confidence = float(code.get("confidence") or 0.0)
        code_conf.append(confidence)
        digit_conf.extend(float(c) for c in code.get("digit_confidences") or [])
        digit_codes += bool(code.get("digit_confidences"))
        if code.get("decision") == "auto":
            auto += 1
            expected_errors += 1.0 - confidence
        else:
            manual += 1
    manual_pieces = manual + no_code + failed
    accept_rate = auto / pieces if pieces else 0.0
    manual_share = manual_pieces / pieces if pieces else 0.0
    error_rate = expected_errors / pieces if pieces else 0.0
    per_digit = sum(digit_conf) / len(digit_conf) if digit_conf else None
    mean_code_conf = sum(code_conf) / len(code_conf) if code_conf else None

    manual_sorts = volume * manual_share
    annual_cost = manual_sorts * manual_cost
    missorts = volume * error_rate
    improvement = None
    if per_digit is not None and per_digit > 0:
        improvement = _batch_improvement(per_digit, code_length, volume, manual_cost, missort_cost,
                                         accuracy_delta, manual_sorts, missorts)
    report = {
        "per_digit_accuracy": per_digit,
        "code_length": code_length,
        "p_code_correct": p_code_correct(per_digit, code_length) if per_digit is not None else None,
        "volume": volume,
        "manual_cost": manual_cost,
        "missort_cost": missort_cost,
        "manual_share": manual_share,
        "manual_sorts": manual_sorts,
        "annual_cost": annual_cost,
        "improvement": improvement,
        "threshold": accept_threshold if accept_threshold is not None else stored_threshold,
        "accept_rate": accept_rate,
        "error_rate": error_rate,
        "expected_missorts": missorts,
        "expected_cost": annual_cost + missorts * missort_cost,
        "batch": {"pieces": pieces, "auto": auto, "manual": manual, "no_code": no_code,
                  "unreadable": failed, "expected_errors": expected_errors,
                  "mean_code_confidence": mean_code_conf},
    }
    report.update(batch_intervals(pieces, auto, manual_pieces, expected_errors, per_digit, digit_codes,
                                  code_length, volume, manual_cost, missort_cost))
    if improvement:
        improvement.update(_improvement_intervals(report["per_digit_accuracy_interval"], code_length, volume,
                                                  manual_cost, missort_cost, accuracy_delta, manual_sorts, missorts))
    if keying_rate:
        report["keying_rate"] = keying_rate
        report["manual_hours"] = manual_sorts / keying_rate
        report["manual_hours_interval"] = [x / keying_rate for x in report["manual_sorts_interval"]]
        if improvement:
            improvement["manual_hours_saved"] = (manual_sorts - improvement["manual_sorts"]) / keying_rate
    if improvement:
        report["improvement"] = _intervals_beside_values(improvement)
    return round_report(_intervals_beside_values(report))


def _intervals_beside_values(values: dict) -> dict:
    """The same mapping with each ``<key>_interval`` right after ``<key>``, for people reading the JSON."""
    out = {}
    for key, value in values.items():
        if not (key.endswith("_interval") and key[: -len("_interval")] in values):
            out[key] = value
            if f"{key}_interval" in values:
                out[f"{key}_interval"] = values[f"{key}_interval"]
    return out


# A batch projection is flagged when the share of letters sorted automatically is uncertain by
# more than 10 points (the full width of its 95 % interval): at 100 million letters that is 10
# million letters more or fewer to sort by hand, more than the difference between two readers
# worth comparing. Wilson's interval is that narrow at a 50 % auto rate from 381 pieces, at 90 %
# from 141, at 99 % from 43.
WIDE_INTERVAL = 0.10


def small_sample_warning(report: Mapping) -> Optional[str]:
    """One line saying a batch is too small for its projection to mean much, or None."""
    interval = report.get("accept_rate_interval")
    if not interval or interval[1] - interval[0] <= WIDE_INTERVAL:
        return None
    pieces, rate = report["batch"]["pieces"], report["accept_rate"]
    needed = pieces_for_width(rate, WIDE_INTERVAL)
    return (f"only {pieces} piece{'s' if pieces != 1 else ''} in the batch: the share sorted automatically "
            f"could be anywhere from {100 * interval[0]:.0f} to {100 * interval[1]:.0f} % (95 % interval), and every "
            f"figure scaled to {report['volume']:,.0f} letters is as uncertain; about {needed} pieces at this rate "
            f"narrow it to {100 * WIDE_INTERVAL:.0f} points")


def pieces_for_width(rate: float, width: float) -> int:
    """The fewest pieces whose Wilson interval around ``rate`` is at most ``width`` wide."""
    n = 1
    while True:
        lo, hi = wilson_interval(rate * n, n)
        if hi - lo <= width:
            return n
        n += 1


def _batch_improvement(per_digit: float, code_length: int, volume: float, manual_cost: float,
                       missort_cost: float, accuracy_delta: float, manual_sorts: float, missorts: float) -> dict:
    """What a per-digit gain saves on a batch's projection.

    A gain turns volume x ((P+d)^k - P^k) wrong codes into right ones. Wrong codes end up either
    in manual sorting or missorted, so the gain is shared between the two in the proportion the
    batch shows.
    """
    now = ClassicEstimate(per_digit, code_length, volume, manual_cost, accuracy_delta)
    better = now.improved
    wrong = manual_sorts + missorts
    moved = min(wrong, now.manual_sorts - better.manual_sorts)
    from_manual = moved * manual_sorts / wrong if wrong else 0.0
    from_missorts = moved - from_manual
    return {
        "accuracy_delta": accuracy_delta,
        "per_digit_accuracy": better.per_digit_accuracy,
        "p_code_correct": better.p_code_correct,
        "manual_sorts": manual_sorts - from_manual,
        "annual_cost": (manual_sorts - from_manual) * manual_cost,
        "expected_missorts": missorts - from_missorts,
        "expected_cost": (manual_sorts - from_manual) * manual_cost + (missorts - from_missorts) * missort_cost,
        "savings": from_manual * manual_cost + from_missorts * missort_cost,
    }


def batch_intervals(pieces: int, auto: int, manual_pieces: int, expected_errors: float,
                    per_digit: Optional[float], digit_codes: int, code_length: int, volume: float,
                    manual_cost: float, missort_cost: float) -> dict:
    """95 % Wilson score intervals of a batch's rates and of the counts and costs scaled from them.

    Auto and manual shares are proportions of the batch's pieces. The expected error rate is a
    mean of 1 - confidence over pieces, the per-digit accuracy a mean of each code's digit
    confidences over codes (a code's digits share a writer and a scan, so codes are the
    independent draws), and the expected cost a mean of each piece's cost divided by the dearer
    unit cost: all means of values in [0, 1], whose variance is at most that of a proportion with
    the same mean, so Wilson's interval covers them as it covers a proportion.
    """
    accept = wilson_interval(auto, pieces)
    manual = wilson_interval(manual_pieces, pieces)
    error = wilson_interval(expected_errors, pieces)
    dearer = max(manual_cost, missort_cost)
    if dearer > 0:
        per_piece = wilson_interval((manual_pieces * manual_cost + expected_errors * missort_cost) / dearer, pieces)
        cost = [volume * dearer * bound for bound in per_piece]
    else:
        cost = [0.0, 0.0]
    digit = list(wilson_interval(per_digit * digit_codes, digit_codes)) if per_digit is not None else None
    return {
        "intervals": {"level": 0.95, "method": "Wilson score", "pieces": pieces},
        "per_digit_accuracy_interval": digit,
        "p_code_correct_interval": [p_code_correct(b, code_length) for b in digit] if digit else None,
        "manual_share_interval": list(manual),
        "manual_sorts_interval": [volume * b for b in manual],
        "annual_cost_interval": [volume * b * manual_cost for b in manual],
        "accept_rate_interval": list(accept),
        "error_rate_interval": list(error),
        "expected_missorts_interval": [volume * b for b in error],
        "expected_cost_interval": cost,
    }


def _improvement_intervals(digit: Optional[list[float]], code_length: int, volume: float, manual_cost: float,
                           missort_cost: float, accuracy_delta: float, manual_sorts: float, missorts: float) -> dict:
    """The improvement's P(code correct) and savings over the per-digit accuracy's interval.

    The savings grow with the gain min(1, P+d)^k - P^k, which rises with P up to P = 1 - d and
    falls after it (P+d cannot pass 1), so over P's interval they are least at one of its ends and
    most at 1 - d when that lies inside it.
    """
    if not digit:
        return {}
    lo, hi = digit
    candidates = {lo, hi, min(hi, max(lo, 1.0 - accuracy_delta))}
    savings = [_batch_improvement(p, code_length, volume, manual_cost, missort_cost, accuracy_delta,
                                  manual_sorts, missorts)["savings"] for p in candidates if p > 0]
    better = [p_code_correct(min(1.0, b + accuracy_delta), code_length) for b in digit]
    return {"p_code_correct_interval": better,
            "savings_interval": [min(savings), max(savings)] if savings else None}


def _check_common(code_length, volume, manual_cost, missort_cost, accuracy_delta, keying_rate) -> None:
    check_code_length(code_length)
    check_non_negative(volume, "--volume")
    check_non_negative(manual_cost, "--manual-cost")
    check_non_negative(missort_cost, "--missort-cost")
    check_non_negative(accuracy_delta, "--accuracy-delta")
    check_keying_rate(keying_rate)


# --------------------------------------------------------------------------- reporting

_MONEY = {"manual_cost", "missort_cost", "annual_cost", "savings", "expected_cost"}
_COUNTS = {"manual_sorts", "expected_missorts", "volume"}
_HOURS = {"manual_hours", "manual_hours_saved"}
_THRESHOLDS = {"threshold", "from", "to"}  # thresholds live close to 1: keep them exact enough to re-apply


def round_report(obj: Any, key: str = "") -> Any:
    """Round for reporting: letters to whole letters, money to cents, hours to 0.1, rates to 1e-6."""
    if isinstance(obj, Mapping):
        return {k: round_report(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [round_report(v, key) for v in obj]
    if isinstance(obj, bool) or not isinstance(obj, float):
        return obj
    key = key[: -len("_interval")] if key.endswith("_interval") else key  # an interval rounds as its value
    if key in _COUNTS:
        return int(round(obj))
    if key in _MONEY:
        return round(obj, 2)
    if key in _HOURS:
        return round(obj, 1)
    if key in _THRESHOLDS:
        return round(obj, 10)
    return round(obj, 6)
