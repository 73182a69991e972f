"""Commands of the cost area: ``docsort cost`` and ``docsort evaluate tradeoff``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from docsort.cost import model as cost_model
from docsort import settings
from docsort.reading import manifest
from docsort.cli.app import app, evaluate_app, handles_errors, print_json, stderr, stdout
from docsort.errors import UsageError


@app.command("cost")
@handles_errors
def cost_command(
    accuracy: Optional[float] = typer.Option(
        None, "--accuracy", help="Per-digit accuracy P in (0, 1], e.g. 0.9903. Default: the digit model's measured accuracy."),
    metrics: Optional[Path] = typer.Option(
        None, "--metrics", help="A model's metrics JSON (key test_accuracy). Default: the shipped digit model's."),
    results: Optional[Path] = typer.Option(
        None, "--results", help="A folder written by `docsort process` (reads its results.json)."),
    code_length: int = typer.Option(settings.CODE_LENGTH, "--code-length", min=settings.CODE_LENGTH_MIN,
                                    max=settings.CODE_LENGTH_MAX, help="Digits per postal code."),
    volume: float = typer.Option(cost_model.DEFAULT_VOLUME, "--volume", help="Letters sorted per year."),
    manual_cost: float = typer.Option(cost_model.DEFAULT_MANUAL_COST, "--manual-cost",
                                      help="Cost of sorting one letter by hand."),
    missort_cost: float = typer.Option(cost_model.DEFAULT_MISSORT_COST, "--missort-cost",
                                       help="Cost of one missorted letter (re-handling, forwarding, delay)."),
    accuracy_delta: float = typer.Option(cost_model.DEFAULT_ACCURACY_DELTA, "--accuracy-delta",
                                         help="Per-digit accuracy gain to price (0.001 = +0.1 point)."),
    keying_rate: Optional[float] = typer.Option(None, "--keying-rate",
                                                help="Letters per hour one person sorts by hand; adds manual hours."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG: cost vs threshold, accept vs error, cost vs accuracy."),
    country: Optional[str] = typer.Option(
        None, "--country", metavar="CC",
        help="Show what reading against this country's postal directory changes: the cost-optimal threshold, "
             "accept and error rates with and without it (measured on the same codes)."),
) -> None:
    """The mail-sorting cost estimate: P(code correct) = P^k, manual sorts and their yearly cost."""
    if sum(x is not None for x in (accuracy, metrics, results)) > 1:
        raise UsageError("give at most one of --accuracy, --metrics and --results")
    if country is not None and results is not None:
        raise UsageError("--country measures the reader with and without a directory; a processed batch "
                         "(--results) was already read with or without one: give one of them")
    options = dict(code_length=code_length, volume=volume, manual_cost=manual_cost, missort_cost=missort_cost,
                   accuracy_delta=accuracy_delta, keying_rate=keying_rate)
    if accuracy is not None:
        report = cost_model.estimate_from_accuracy(accuracy, **options)
    elif results is not None:
        report = cost_model.estimate_from_results(results, **options)
    else:
        report = cost_model.estimate_from_metrics(metrics, **options)
    if country is not None:
        report = cost_model.with_directory(report, country, volume=volume, manual_cost=manual_cost,
                                           missort_cost=missort_cost)
    warning = cost_model.small_sample_warning(report)
    if warning:
        stderr.print(f"docsort: warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if plot is not None:
        from docsort.cost.plot import plot_cost

        plot_cost(report, plot, curve=cost_model.curve_of(report))
    if as_json:
        print_json(report)
    else:
        stdout.print(_cost_table(report))
        if plot is not None:
            stdout.print(f"plot written to {plot}", highlight=False)


def _money(value) -> str:
    return "n/a" if value is None else f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def _count(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _pct(value, places: int = 3) -> str:
    return "n/a" if value is None else f"{100 * value:.{places}f} %"


def _with_interval(text: str, interval, fmt) -> str:
    """``value (low–high)``: a batch projection with its 95 % interval; the value alone otherwise."""
    if not interval:
        return text
    return f"{text} ({fmt(interval[0]).rstrip(' %')}–{fmt(interval[1])})"


def _cost_table(report: dict):
    from rich.table import Table

    source = report.get("source", {})
    title = {"accuracy": "Sorting cost for a given per-digit accuracy",
             "metrics": "Sorting cost of the digit model",
             "results": "Sorting cost projected from a processed batch"}.get(source.get("kind"), "Sorting cost")
    notes = [f"from {source['file']}"] if source.get("file") else []
    if "intervals" in report:
        pieces = report["intervals"]["pieces"]
        notes.append(f"in brackets: 95 % interval (Wilson score) from the batch's {pieces} "
                     f"piece{'s' if pieces != 1 else ''}")
    table = Table(title=title, caption="; ".join(notes) or None, show_header=False, title_justify="left",
                  caption_justify="left")
    table.add_column("quantity")
    table.add_column("value", justify="right")

    def row(label, key, fmt, where=report):
        table.add_row(label, _with_interval(fmt(where[key]), where.get(f"{key}_interval"), fmt))

    batch = "batch" in report
    k = report["code_length"]
    row("per-digit accuracy P", "per_digit_accuracy", _pct)
    row(f"P(code correct) = P^{k}", "p_code_correct", _pct)
    table.add_row("letters per year", _count(report["volume"]))
    if batch:
        b = report["batch"]
        table.add_row("batch: pieces / auto / manual / no code / unreadable",
                      f"{b['pieces']} / {b['auto']} / {b['manual']} / {b['no_code']} / {b['unreadable']}")
        row("sent to manual sorting", "manual_share", lambda v: _pct(v, 2))
    classic = "" if batch else " (classic: every wrong code caught)"
    row(f"manual sorts per year{classic}", "manual_sorts", _count)
    row(f"manual sorting cost per year (at {_money(report['manual_cost'])})", "annual_cost", _money)
    if "manual_hours" in report:
        row(f"manual hours per year (at {report['keying_rate']:,.0f} letters/h)", "manual_hours", _count)
    imp = report.get("improvement")
    if imp:
        row(f"with +{100 * imp['accuracy_delta']:g} point per digit: P(code correct)", "p_code_correct", _pct, imp)
        if not batch:
            table.add_row("   manual sorting cost per year", _money(imp["annual_cost"]))
        else:
            # Only the lines the gain changes, from -> to: a batch sorted all automatically saves
            # only missorts, and "manual cost $0 -> $0" would hide where its saving comes from.
            for label, key, fmt in (("   manual sorting cost per year", "annual_cost", _money),
                                    ("   missorts per year", "expected_missorts", _count),
                                    ("   expected cost per year (manual + missorts)", "expected_cost", _money)):
                if imp[key] != report[key] or key == "expected_cost":
                    table.add_row(label, f"{fmt(report[key])} → {fmt(imp[key])}")
        row("   saving per year", "savings", _money, imp)
        if "manual_hours_saved" in imp:
            table.add_row("   manual hours saved per year", _count(imp["manual_hours_saved"]))
    directory = report.get("directory")
    if report.get("threshold") is not None or batch:
        label = "accept threshold of the batch" if batch else "cost-optimal accept threshold (measured)"
        if directory:
            label = f"cost-optimal accept threshold with the {directory.get('country')} postal directory"
        table.add_row(label, "n/a" if report.get("threshold") is None else f"{report['threshold']:.4g}")
        row("   accepted automatically", "accept_rate", lambda v: _pct(v, 2))
        if not batch:
            table.add_row("   manual sorts per year", _count(report["volume"] * (1 - report["accept_rate"])))
        row("   accepted with a wrong code", "error_rate", _pct)
        row(f"   missorts per year (at {_money(report['missort_cost'])})", "expected_missorts", _count)
        row("   expected cost per year (manual + missorts)", "expected_cost", _money)
    without = report.get("without_directory")
    if without and without.get("threshold") is not None:
        table.add_row("the same codes without the directory: cost-optimal threshold", f"{without['threshold']:.4g}")
        table.add_row("   accepted automatically", _pct(without["accept_rate"], 2))
        table.add_row("   accepted with a wrong code", _pct(without["error_rate"]))
        table.add_row("   expected cost per year (manual + missorts)", _money(without["expected_cost"]))
    return table


@evaluate_app.command("tradeoff")
@handles_errors
def evaluate_tradeoff_command(
    count: int = typer.Option(2000, "--count", help="Composed 5-digit strings per set (fit and check)."),
    missort_cost: float = typer.Option(cost_model.DEFAULT_MISSORT_COST, "--missort-cost",
                                       help="Cost of one missorted letter."),
    manual_cost: float = typer.Option(cost_model.DEFAULT_MANUAL_COST, "--manual-cost",
                                      help="Cost of sorting one letter by hand."),
    volume: float = typer.Option(cost_model.DEFAULT_VOLUME, "--volume", help="Letters sorted per year."),
    data: Optional[Path] = typer.Option(None, "--data", help="MNIST folder (default: the usual places)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Digit model (default: the shipped one)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the composed strings."),
    reader: str = typer.Option("field", "--reader", help="field: the pipeline's whole-field reader; "
                               "boxes: digits cut at their known boxes (perfect segmentation)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the trade-off JSON to this file. Nothing is "
                                       "written without it; --out models/digits.tradeoff.json replaces the "
                                       "shipped one and with it process's default accept threshold."),
    as_json: bool = typer.Option(False, "--json", help="Print the trade-off JSON to stdout."),
    report_dir: Optional[Path] = typer.Option(
        None, "--report", metavar="DIR",
        help="Also write DIR/tradeoff.json and DIR/tradeoff.png (cost vs threshold, accept vs error rate)."),
    country: Optional[str] = typer.Option(
        None, "--country", metavar="CC",
        help="Measure on real codes of this country, read without and with its postal directory "
             "(--out models/digits.tradeoff.CC.json is what cost --country and process --country use)."),
) -> None:
    """Measure the accept/error trade-off of the digit reader and its cost-optimal threshold.

    Fits on strings composed from held-out MNIST training digits, then checks the promised
    error rate on fresh strings composed from MNIST test digits. Writes only where --out says.
    """
    from docsort.cost.tradeoff import write_tradeoff
    from docsort.training.evaluate import tradeoff
    from docsort.training.manifest import refresh as refresh_manifest

    if out is None and not as_json and report_dir is None:
        raise UsageError("give --out FILE to keep the trade-off, --report DIR for it with its picture, or --json "
                         "to print it "
                         f"(--out {cost_model.tradeoff_path()} replaces process's default accept threshold)")
    if count < 50:
        raise UsageError(f"--count must be at least 50 strings (got {count})")
    if reader not in tradeoff.READERS:
        raise UsageError(f"--reader must be one of {', '.join(tradeoff.READERS)} (got {reader})")
    cost_model.check_non_negative(missort_cost, "--missort-cost")
    cost_model.check_non_negative(manual_cost, "--manual-cost")
    cost_model.check_non_negative(volume, "--volume")
    if country is not None:
        _directory_tradeoff(country, count, seed, data, out, as_json, report_dir, volume=volume,
                            manual_cost=manual_cost, missort_cost=missort_cost)
        return
    installed = cost_model.tradeoff_path()
    replaces_installed = out is not None and out.resolve() == installed.resolve()
    if replaces_installed:
        problem = cost_model.models_mismatch(tradeoff.measured_models(reader, model),
                                             manifest.code_reader_models())
        if problem:
            raise UsageError(f"not replacing {installed}: this measurement's models are not the installed ones "
                             f"({problem}), so process would refuse it; write it elsewhere with --out")
    result = tradeoff.measure_tradeoff(count=count, manual_cost=manual_cost, missort_cost=missort_cost,
                                       volume=volume, data_dir=data, model_path=model, seed=seed,
                                       reader=reader)
    if out is not None:
        before = _stored_threshold(out) if replaces_installed else None
        write_tradeoff(result, out)
        refresh_manifest(out)  # a models folder's manifest states its accept threshold
    if report_dir is not None:
        _tradeoff_report(result, Path(report_dir), volume=volume, manual_cost=manual_cost, missort_cost=missort_cost)
    if as_json:
        print_json(result)
        return
    opt, check = result["optimal"], result["check"]
    stdout.print(f"cost-optimal threshold {opt['threshold']:.4g}{_raised(opt)}: accepts {_pct(opt['accept_rate'], 2)}, "
                 f"wrong codes {_pct(opt['error_rate'])} of letters, expected cost {_money(opt['expected_cost'])} "
                 f"per {_count(volume)} letters", highlight=False)
    lo, hi = check["error_rate_ci95"]
    stdout.print(f"check on fresh MNIST-test strings (n={check['n']}): wrong codes {_pct(check['error_rate'])} "
                 f"(95 % CI {_pct(lo)} to {_pct(hi)}), accepts {_pct(check['accept_rate'], 2)}; "
                 f"{'consistent with' if check['consistent'] else 'DIFFERS from'} the fitted curve", highlight=False)
    if out is not None:
        stdout.print(f"written to {out}", highlight=False)
    if report_dir is not None:
        stdout.print(f"report written to {report_dir}", highlight=False)
    if replaces_installed:
        was = "no readable trade-off before" if before is None else f"was {before:.4g}"
        stdout.print(f"process's default accept threshold is now {opt['threshold']:.4g} ({was})", highlight=False)


def _directory_tradeoff(country: str, count: int, seed: int, data: Optional[Path], out: Optional[Path], as_json: bool,
                        report_dir: Optional[Path], *, volume: float, manual_cost: float, missort_cost: float) -> None:
    """``evaluate tradeoff --country``: the same real codes read without and with the directory."""
    from docsort.page import directory as directories
    from docsort.cli.app import progress_lines
    from docsort.cost.tradeoff import write_tradeoff
    from docsort.training.manifest import refresh as refresh_manifest
    from docsort.training.train.directory_reading import measure_tradeoff

    cc = directories.check_country(country)
    if report_dir is not None:
        raise UsageError("--report is not available with --country; give --out FILE or --json")
    command = (f"docsort evaluate tradeoff --country {cc} --count {count}" + (f" --seed {seed}" if seed else "")
               + (f" --data {data}" if data else "") + (f" --out {out}" if out else ""))
    result = measure_tradeoff(cc, str(data) if data else None, count, seed, command, manual_cost=manual_cost,
                              missort_cost=missort_cost, volume=volume,
                              progress=progress_lines(as_json and out is None))
    if out is not None:
        write_tradeoff(result, out)
        refresh_manifest(out)  # a models folder's manifest states its accept threshold
    if as_json:
        print_json(result)
        return
    for label, point in (("without the directory", result["without_directory"]["optimal"]),
                         (f"with the {cc} directory", result["optimal"])):
        stdout.print(f"{label}: cost-optimal threshold {point['threshold']:.4g}{_raised(point)}, "
                     f"accepts {_pct(point['accept_rate'], 2)}, "
                     f"wrong codes {_pct(point['error_rate'])} of letters, codes right {_pct(point['code_accuracy'], 2)}",
                     highlight=False)
    check = result["check"]
    stdout.print(f"check on fresh MNIST-test codes (n={check['n']}), with the directory: wrong codes "
                 f"{_pct(check['error_rate'])}, accepts {_pct(check['accept_rate'], 2)}", highlight=False)
    if out is not None:
        stdout.print(f"written to {out}", highlight=False)


def _raised(point: dict) -> str:
    """Says when the fitted optimum lay below 1 - manual/missort and was raised to it."""
    fitted = point.get("fitted_threshold")
    if fitted is None or fitted >= point["threshold"] - 1e-6:  # the stored figures are rounded
        return ""
    return f" (fitted {fitted:.4g}, raised to 1 - manual/missort)"


def _stored_threshold(path: Path) -> Optional[float]:
    """The optimum a trade-off file holds now, whatever its state (to say what a new one replaces)."""
    try:
        return float(json.loads(path.read_text())["optimal"]["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tradeoff_report(result: dict, folder: Path, *, volume: float, manual_cost: float, missort_cost: float) -> None:
    """The measured trade-off as a person looks at it: its JSON and the cost picture of ``cost --plot``."""
    from docsort.cost.plot import plot_cost
    from docsort.cost.tradeoff import write_tradeoff
    from docsort.errors import OutputNotWritableError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot create report folder {folder}: {exc.strerror or exc}") from None
    path = write_tradeoff(result, folder / "tradeoff.json")
    accuracy = float(result["model"]["test_accuracy"])  # the digit model the curve was measured with
    report = cost_model.estimate_from_accuracy(accuracy, code_length=int(result.get("code_length", 5)),
                                               volume=volume, manual_cost=manual_cost, missort_cost=missort_cost,
                                               tradeoff=result, tradeoff_file=path)
    plot_cost(report, folder / "tradeoff.png", curve=result["curve"])
