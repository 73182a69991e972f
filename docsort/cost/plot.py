"""The sorting-cost picture: where the money goes as the threshold and the accuracy move.

Three panels a person reads left to right: annual cost against the accept threshold (with the
cost-optimal point), the accept rate against the error rate it buys, and the classic annual
manual-sorting cost against per-digit accuracy. For a processed batch the first two panels show
the trade-off its calibrated confidences predict; without any curve they say so. matplotlib is imported here only, with the Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from docsort.cost import model as cost_model
from docsort.errors import OutputNotWritableError


def plot_cost(report: Mapping, path: Path, curve: Optional[Sequence[Mapping]] = None) -> Path:
    """Write the three-panel PNG for a ``docsort cost`` report; ``curve`` is the measured trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    path = Path(path)
    volume, manual, missort = report["volume"], report["manual_cost"], report["missort_cost"]
    fig, (ax_cost, ax_roc, ax_acc) = plt.subplots(1, 3, figsize=(15, 4.5))

    measured = (report.get("source") or {}).get("kind") != "results"
    if curve:
        inner = [p for p in curve if 0.0 < p["threshold"] < 1.0]  # the logit axis excludes 0 and 1
        thresholds = [p["threshold"] for p in inner]
        costs = [cost_model.threshold_cost(p["accept_rate"], p["error_rate"], volume, manual, missort)
                 for p in inner]
        keyed = [volume * (1 - p["accept_rate"]) * manual for p in inner]
        missorted = [volume * p["error_rate"] * missort for p in inner]
        ax_cost.plot(thresholds, costs, label="total", color="black")
        ax_cost.plot(thresholds, keyed, label="manual sorting", linestyle="--")
        ax_cost.plot(thresholds, missorted, label="missorts", linestyle=":")
        if report.get("threshold") is not None and 0.0 < report["threshold"] < 1.0:
            label = "cost optimum" if measured else "batch threshold"
            ax_cost.plot([report["threshold"]], [report["expected_cost"]], "o", color="red",
                         label=f"{label} t={report['threshold']:.4g}")
        ax_cost.set_xscale("logit")
        ticks = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999]
        ax_cost.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=35, fontsize=8)
        ax_cost.minorticks_off()
        ax_cost.set_ylim(0, max(costs) * 1.05 if costs and max(costs) > 0 else 1)
        ax_cost.legend(fontsize=8)
        ax_roc.plot([100 * p["error_rate"] for p in curve], [100 * p["accept_rate"] for p in curve], color="black")
        if report.get("threshold") is not None:
            ax_roc.plot([100 * report["error_rate"]], [100 * report["accept_rate"]], "o", color="red")
    else:
        for ax in (ax_cost, ax_roc):
            ax.text(0.5, 0.5, "no measured trade-off", ha="center", va="center", transform=ax.transAxes)
    ax_cost.set_xlabel("accept threshold (code confidence)")
    ax_cost.set_ylabel(f"cost per year for {volume:,.0f} letters")
    ax_cost.set_title("Cost vs accept threshold" + ("" if measured else " (expected)"))
    ax_roc.set_xlabel("accepted with a wrong code (% of letters)")
    ax_roc.set_ylabel("accepted automatically (% of letters)")
    ax_roc.set_title("Accept rate vs error rate")

    p = report.get("per_digit_accuracy")
    k = report["code_length"]
    if p:
        lo, hi = max(0.0, p - 0.03), min(1.0, p + 0.01)
        grid = [lo + (hi - lo) * i / 200 for i in range(201)]
        ax_acc.plot([100 * g for g in grid], [volume * (1 - g ** k) * manual for g in grid], color="black")
        ax_acc.plot([100 * p], [volume * (1 - p ** k) * manual], "o", color="red", label=f"P={100 * p:.2f} %")
        ax_acc.legend(fontsize=8)
    ax_acc.set_xlabel("per-digit accuracy (%)")
    ax_acc.set_ylabel("manual sorting cost per year")
    ax_acc.set_title(f"Classic estimate, {k}-digit codes")

    dollars = matplotlib.ticker.FuncFormatter(_dollars)
    ax_cost.yaxis.set_major_formatter(dollars)
    ax_acc.yaxis.set_major_formatter(dollars)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, format="png")
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def _dollars(value: float, _position=None) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:g}{unit}"
    return f"${value:g}"
