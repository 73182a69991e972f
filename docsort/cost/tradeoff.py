"""The accept/error trade-off of a set of labelled reads, and the accept threshold of least cost.

For every accept threshold t, the share of letters accepted automatically and the share accepted
with a wrong code give the annual cost ``volume x (reject(t) x manual_cost + error(t) x
missort_cost)`` (``model.threshold_cost``). ``fit_threshold`` finds the cheapest threshold on one
set of reads; ``check_threshold`` compares what it promised with a fresh set, with 95 %
intervals. ``docsort evaluate tradeoff`` and ``train directory-reading`` measure the curves that
ship as ``models/digits.tradeoff*.json`` (``write_tradeoff``); ``model`` reads them back.
Pure numpy: no model, no dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from docsort.cost import model as cost_model
from docsort.errors import OutputNotWritableError


def curve_thresholds(extra: Sequence[float] = ()) -> np.ndarray:
    """Thresholds the stored curve is sampled at (``cost.curve_grid``) plus ``extra`` ones."""
    return np.unique(np.concatenate([cost_model.curve_grid(), np.asarray(extra, float)]))


def tradeoff_curve(confidences: np.ndarray, correct: np.ndarray, thresholds: Sequence[float]) -> list[dict]:
    """Accept rate and error rate (wrong and accepted, as a share of all letters) at each threshold."""
    conf = np.asarray(confidences, float)
    wrong = ~np.asarray(correct, bool)
    n = len(conf)
    curve = []
    for t in thresholds:
        accepted = conf >= t
        curve.append({"threshold": float(t), "accept_rate": float(accepted.sum() / n),
                      "error_rate": float((accepted & wrong).sum() / n)})
    return curve


def fit_threshold(confidences: np.ndarray, correct: np.ndarray, manual_cost: float, missort_cost: float) -> float:
    """The accept threshold of least cost on labelled reads.

    Every distinct confidence is a candidate (accept it and everything above). The returned
    threshold lies half-way between the chosen confidence and the next lower one, so a new
    sample's confidence is not decided by a hair's breadth on the fitted set.
    """
    conf = np.asarray(confidences, float)
    wrong = ~np.asarray(correct, bool)
    order = np.argsort(-conf, kind="stable")
    conf_sorted, wrong_sorted = conf[order], wrong[order]
    # Accepting the top j reads: j reads accepted, errors = wrong among them.
    errors = np.concatenate([[0], np.cumsum(wrong_sorted)])
    accepted = np.arange(len(conf) + 1)
    # Only cut between different confidences: ties are accepted or rejected together.
    valid = np.ones(len(conf) + 1, bool)
    valid[1:-1] = conf_sorted[1:] < conf_sorted[:-1]
    costs = (len(conf) - accepted) * manual_cost + errors * missort_cost
    costs = np.where(valid, costs, np.inf)
    j = len(costs) - 1 - int(np.argmin(costs[::-1]))  # of equal costs, accept the most letters
    if j == 0:  # rejecting everything is cheapest: a threshold above every confidence
        return float(np.nextafter(conf_sorted[0], 2.0)) if len(conf) else 1.0
    lowest_accepted = conf_sorted[j - 1]
    below = conf_sorted[j] if j < len(conf) else 0.0
    return float((lowest_accepted + below) / 2)


def operating_threshold(confidences: np.ndarray, correct: np.ndarray, manual_cost: float,
                        missort_cost: float) -> tuple[float, float]:
    """(the threshold ``process`` runs at, the fitted optimum it comes from).

    The confidences are calibrated, so accepting a code below 1 - manual/missort costs more on
    average than sorting it by hand; a fitted optimum below that only says the fit set had too
    few errors there to show it, and is raised to it.
    """
    fitted = fit_threshold(confidences, correct, manual_cost, missort_cost)
    return max(fitted, cost_model.bayes_threshold(manual_cost, missort_cost)), fitted


def near_optimal_range(curve: list[dict], volume: float, manual_cost: float, missort_cost: float,
                       within: float = 0.05) -> dict:
    """The thresholds around the optimum whose cost stays within ``within`` of it.

    The cost curve is usually flat near its minimum, so any threshold in this range is as good
    as the fitted one within the measurement's resolution.
    """
    costs = [cost_model.threshold_cost(p["accept_rate"], p["error_rate"], volume, manual_cost, missort_cost)
             for p in curve]
    best = int(np.argmin(costs))
    limit = costs[best] * (1.0 + within)
    lo = hi = best
    while lo > 0 and costs[lo - 1] <= limit:
        lo -= 1
    while hi < len(curve) - 1 and costs[hi + 1] <= limit:
        hi += 1
    return {"within": within, "from": curve[lo]["threshold"], "to": curve[hi]["threshold"]}


def check_threshold(threshold: float, fit: tuple[np.ndarray, np.ndarray],
                    fresh: tuple[np.ndarray, np.ndarray]) -> dict:
    """Compare what the fitted set promised at ``threshold`` with a fresh set, with 95 % intervals."""
    def counts(conf, correct):
        accepted = np.asarray(conf) >= threshold
        return int(len(conf)), int(accepted.sum()), int((accepted & ~np.asarray(correct, bool)).sum())

    n_fit, acc_fit, err_fit = counts(*fit)
    n, acc, err = counts(*fresh)
    diff_lo, diff_hi = cost_model.difference_interval(err_fit, n_fit, err, n)
    conf = np.asarray(fresh[0], float)
    accepted = conf >= threshold
    return {
        "threshold": threshold,
        "n": n,
        "accepted": acc,
        "errors": err,
        "accept_rate": acc / n,
        "accept_rate_ci95": list(cost_model.wilson_interval(acc, n)),
        "error_rate": err / n,
        "error_rate_ci95": list(cost_model.wilson_interval(err, n)),
        "promised_error_rate": err_fit / n_fit,
        "promised_accept_rate": acc_fit / n_fit,
        "difference_ci95": [diff_lo, diff_hi],
        "consistent": bool(diff_lo <= 0.0 <= diff_hi),
        # Calibration: the errors a batch projection would expect from the confidences alone.
        "expected_errors_from_confidence": float((1.0 - conf[accepted]).sum()),
        "code_accuracy": float(np.mean(fresh[1])),
    }


def write_tradeoff(result: dict, path: Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
