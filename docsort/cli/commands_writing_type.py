"""``docsort classify``, ``docsort train writing-type`` and ``docsort evaluate writing-type``."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from docsort.cli.app import (app, evaluate_app, handles_errors, needs_training_extra, print_json, print_rows,
                         progress_lines, stderr, stdout, train_app)
from docsort import settings
from docsort.errors import ExitCode, InputError, UsageError

DATA_HELP = ("Folder holding the datasets as dhsd/, mnist/ and tesseract-pages/ "
             "(default: $DOCSORT_DATASETS). --dhsd, --mnist and --pages override single ones.")


@app.command("classify")
@handles_errors
def classify(
    images: list[Path] = typer.Argument(..., help="Word crops (PNG, JPEG, TIFF, BMP), dark ink on light paper."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {file, kind, p_handwritten}."),
    model: Optional[Path] = typer.Option(None, "--model", help="A writing_type .onnx file (or the .keras it was exported "
                                         "from, beside it). Default: the shipped ensemble."),
) -> None:
    """Say for each word crop whether it is printed or handwritten."""
    from docsort.page.ingest import read_image
    from docsort.reading.writing_type import WritingTypeClassifier, kind_of

    crops, names, failed = [], [], 0
    for path in images:
        try:
            crops.append(read_image(path))
            names.append(str(path))
        except InputError as exc:
            failed += 1
            stderr.print(f"docsort: error: {path}: {exc}", markup=False, highlight=False, soft_wrap=True)
    results = []
    if crops:
        p = WritingTypeClassifier(str(model) if model else None).p_handwritten(crops)
        results = [{"file": name, "kind": kind_of(float(v)), "p_handwritten": round(float(v), 6)}
                   for name, v in zip(names, p)]
    if as_json:
        print_json(results)
    elif results:
        print_rows(["file", "kind", "p_handwritten"],
                   [[r["file"], r["kind"], f"{r['p_handwritten']:.3f}"] for r in results], right=("p_handwritten",))
    if failed:
        raise typer.Exit(int(ExitCode.INPUTS_FAILED))


def _data_paths(data: Optional[Path], dhsd: Optional[Path], mnist: Optional[Path],
                pages: Optional[Path]) -> tuple[Path, Path, Optional[Path]]:
    root = data or settings.datasets_folder()
    dhsd = dhsd or (root / "dhsd" if root else None)
    mnist = mnist or (root / "mnist" if root else None)
    pages = pages or (root / "tesseract-pages" if root else None)
    if dhsd is None or mnist is None:
        raise UsageError("no training data given: pass --data DIR (with dhsd/ and mnist/) or --dhsd and --mnist")
    return dhsd, mnist, pages


def _cache_dir(cache: Optional[Path]) -> Path:
    return cache or settings.cache_folder()


def _filters(text: str, stem_stride: int = 1) -> tuple[int, ...]:
    """``--filters 4,16,32`` -> (4, 16, 32); at least two convolutions, and no more halvings than
    the 32-row crop allows (five, a stride-2 first convolution counting as one)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--filters takes comma-separated whole numbers, not {text!r}") from None
    most = 6 if stem_stride == 1 else 5
    if not 2 <= len(values) <= most or min(values) < 1:
        raise UsageError(f"--filters takes 2 to {most} positive numbers"
                         f"{' with --stem-stride 2' if stem_stride != 1 else ''}, not {text!r}")
    return values


@train_app.command("writing-type")
@handles_errors
@needs_training_extra
def train_writing_type(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    dhsd: Optional[Path] = typer.Option(None, "--dhsd", help="DHSD folder (data.csv and the word images)."),
    mnist: Optional[Path] = typer.Option(None, "--mnist", help="MNIST folder (IDX files) or mnist.npz."),
    pages: Optional[Path] = typer.Option(None, "--pages",
                                         help="Real printed scans (tesseract-pages) for the check after training."),
    out: Path = typer.Option(Path("runs/writing_type"), "--out",
                             help="Folder for writing_type.keras, .metrics.json and .history.json."),
    epochs: int = typer.Option(10, "--epochs", min=1,
                               help="Training epochs (the shipped main network: 15; its two looks: 10)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=20, help="Train on about N crops only (quick runs)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the writer/font splits, the data and the weights."),
    cache: Optional[Path] = typer.Option(None, "--cache",
                                         help="Cache for Tesseract's crops and scores (default: ~/.cache/docsort)."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline",
                                  help="Also measure Tesseract's confidence as a classifier (minutes)."),
    lone_characters: bool = typer.Option(
        False, "--lone-characters",
        help="Train the lone-character model (writing_type_chars.keras, used beside writing_type.keras "
             "in the same folder) on the narrow crops only."),
    member: int = typer.Option(
        0, "--member", min=0,
        help="Ensemble member: its own training crops and starting weights, the same held-out split. "
             "Members after the first are written as NAME_2.keras, NAME_3.keras, ..."),
    filters: Optional[str] = typer.Option(
        None, "--filters",
        help="Filters of each 3x3 convolution, comma-separated (all but the last followed by 2x2 "
             "max-pooling); default 4,16,32,96,192,256, the shape of the shipped looks (with "
             "--lone-characters, the lone-character model's). The shipped main network: "
             "--filters 16,32,64,192,256 --stem-stride 2."),
    stem_stride: int = typer.Option(
        1, "--stem-stride", min=1, max=2,
        help="Step of the first convolution: 2 runs nothing at the crop's full resolution (faster on "
             "one core; --filters then takes at most five convolutions)."),
    teacher: Optional[Path] = typer.Option(
        None, "--teacher",
        help="Learn also from a trained classifier's probabilities (a models folder's ensemble, or one "
             ".onnx/.keras network) on every training batch."),
    teacher_share: float = typer.Option(
        0.5, "--teacher-share", min=0.0, max=1.0,
        help="With --teacher: how far each target moves from the label to the teacher's probability."),
    rescan: bool = typer.Option(
        True, "--rescan/--no-rescan",
        help="Give each training crop a new scan's look each epoch (1-bit level, stroke width, ink "
             "darkness, specks), for both classes alike."),
    jitter: bool = typer.Option(
        True, "--jitter/--no-jitter",
        help="Move half of each training batch by up to 2 columns and 1 row, so no call turns on "
             "where the crop's box fell on the word (the shipped main network and writing_type_3: on; writing_type_2: off)."),
    framed_fields: int = typer.Option(
        3000, "--framed-fields", min=0,
        help="Add N pairs of number fields in pre-printed frames (underlines, boxes, combs, cells), "
             "one printed and one handwritten, whole or cut cell by cell (the shipped model: 3000)."),
    extra_fonts: bool = typer.Option(
        False, "--extra-fonts/--core-fonts",
        help="Draw training print also in 70 further text families (book, grotesque, condensed, "
             "typewriter and small-caps faces; apt-get install the packages listed in "
             "docsort.training.synth.printed.EXTRA_PACKAGES), never in validation; default: the core "
             "families alone, as the shipped networks were trained."),
    extra_font_share: Optional[float] = typer.Option(
        None, "--extra-font-share", min=0.05, max=0.95,
        help="With --extra-fonts: the extras' share of the faces training print is drawn in "
             "(default: each face once, about 0.8)."),
    office_handwritten: int = typer.Option(
        9000, "--office-handwritten", min=0,
        help="Handwritten crops through office scans (pencil, thin pen, block capitals, digits; "
             "1-bit, fax, photocopy), the handwriting that looks most like print."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Train the printed/handwritten classifier (reproduces models/writing_type.keras with --out models)."""
    from docsort.reading.writing_type import LONE_CHARACTER_WIDTH
    from docsort.training.datasets.writing_type_crops import TrainingConfig, build_sets
    from docsort.training.evaluate import writing_type as evaluation
    from docsort.training.train import writing_type as training
    from docsort.training.manifest import LONE_CHARACTER_MODEL

    shape = _filters(filters, stem_stride) if filters else None
    dhsd_dir, mnist_dir, pages_dir = _data_paths(data, dhsd, mnist, pages)
    config = TrainingConfig(dhsd_dir=dhsd_dir, mnist_dir=mnist_dir, out_dir=out, cache_dir=_cache_dir(cache),
                            epochs=epochs, limit=limit, seed=seed, member=member, rescan=rescan, jitter=jitter,
                            framed_fields=framed_fields, extra_fonts=extra_fonts,
                            office_handwritten=office_handwritten, extra_font_share=extra_font_share)
    if lone_characters:
        config = replace(config, max_width=LONE_CHARACTER_WIDTH, filters=training.LONE_CHARACTER_FILTERS,
                         name=LONE_CHARACTER_MODEL, **training.LONE_CHARACTER_RECIPE)
    if shape:
        config = replace(config, filters=shape)
    if teacher is not None:
        if not teacher.exists():
            raise UsageError(f"no teacher classifier at {teacher}")
        config = replace(config, teacher=teacher, teacher_share=teacher_share)
    if stem_stride != 1:
        if not shape:
            raise UsageError("--stem-stride 2 needs --filters (at most five convolutions)")
        config = replace(config, stem_stride=stem_stride)
    if member:
        config = replace(config, name=f"{config.name}_{member + 1}")
    log = progress_lines(quiet)
    command = "docsort " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.monotonic()
    # The crops and Tesseract's baseline scores are made (with worker processes) before
    # TensorFlow starts its threads.
    sets = build_sets(config, log)
    validation = sets[1]
    scores = evaluation.tesseract_scores(validation.crops, config.workers, config.cache_dir, log) if baseline else None
    trained = training.train(config, log, sets=sets)
    metrics = evaluation.training_metrics(config, trained, validation,
                                          pages_dir if pages_dir and pages_dir.is_dir() else None,
                                          baseline_scores=scores, command=command,
                                          seconds=time.monotonic() - started, log=log)
    stdout.print(f"validation accuracy {100 * metrics['accuracy']:.2f}% on {metrics['n']} held-out crops, "
                 f"model written to {Path(metrics['model_file'])}", highlight=False)


@evaluate_app.command("writing-type")
@handles_errors
def evaluate_writing_type(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    dhsd: Optional[Path] = typer.Option(None, "--dhsd", help="DHSD folder (data.csv and the word images)."),
    mnist: Optional[Path] = typer.Option(None, "--mnist", help="MNIST folder (IDX files) or mnist.npz."),
    pages: Optional[Path] = typer.Option(None, "--pages", help="Real printed scans (tesseract-pages)."),
    model: Optional[Path] = typer.Option(None, "--model", help="A writing_type .keras file (exported to .onnx beside it "
                                         "when it has none). Default: the shipped ensemble."),
    report: Optional[Path] = typer.Option(None, "--report",
                                          help="Write confusion matrix, failure galleries, learning curve "
                                               "and metrics JSON to this folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the writer/font split the model was trained with."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache for Tesseract's crops and scores."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline",
                                  help="Also measure Tesseract's confidence as a classifier (minutes)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=20, help="A smaller validation set (quick runs)."),
    draws: Optional[list[int]] = typer.Option(
        None, "--draw", help="Also measure on a further draw of the held-out writers, fonts and digits, cut and "
                             "scanned anew with this seed (repeat for more; the model card's figures use 101, "
                             "202, 303 and 404), alone and pooled with the validation set."),
    held_out: bool = typer.Option(
        True, "--held-out/--no-held-out",
        help="Also measure the held-out family (fonts, 1-bit 200 dpi scans, writers and MNIST test digits no "
             "training or selection touches), the per-condition table and the real scans as 1-bit and "
             "italic pages (minutes)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
) -> None:
    """Accuracy of the printed/handwritten classifier on held-out writers, fonts and real scans."""
    from docsort.training.evaluate.writing_type import evaluate

    dhsd_dir, mnist_dir, pages_dir = _data_paths(data, dhsd, mnist, pages)
    if pages_dir is not None and not pages_dir.is_dir():
        raise UsageError(f"real printed scans not found: {pages_dir}")
    log = progress_lines(as_json)
    result = evaluate(str(model) if model else None, dhsd_dir, mnist_dir, pages_dir, seed=seed,
                      report_dir=report, cache_dir=_cache_dir(cache), baseline=baseline, limit=limit,
                      draws=draws or (), held_out=held_out, log=log)
    if as_json:
        print_json(result)
        return
    stdout.print(_evaluation_table(result))
    if result.get("held_out_family"):
        stdout.print(_conditions_table(result))
    if report is not None:
        stdout.print(f"report written to {report}", highlight=False)


def _evaluation_table(result: dict):
    from rich.table import Table

    table = Table(title=f"Printed vs handwritten on {result['n']:,} held-out crops", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("accuracy", f"{100 * result['accuracy']:.2f} %")
    for name, acc in result["per_class_accuracy"].items():
        table.add_row(f"  {name} ({result['per_class_n'][name]})", f"{100 * acc:.2f} %" if acc is not None else "-")
    for name, entry in result.get("per_source", {}).items():
        table.add_row(f"  source {name} ({entry['n']})", f"{100 * entry['accuracy']:.2f} %")
    for name, entry in result.get("by_shape", {}).items():
        if isinstance(entry, dict) and entry.get("n"):
            table.add_row(f"  {name.replace('_', ' ')} ({entry['n']})", f"{100 * entry['accuracy']:.2f} %")
    table.add_row("calibration error (ECE)", f"{100 * result['ece']:.2f} %")
    real = result.get("real_scans")
    if real:
        table.add_row(f"real printed scans called printed ({real['original']['n']})",
                      f"{100 * real['original']['printed_rate']:.2f} %")
        table.add_row(f"  also rescaled ({real['rescaled']['n']})", f"{100 * real['rescaled']['printed_rate']:.2f} %")
    further = result.get("further_draws")
    if further:
        seeds = ", ".join(map(str, further["seeds"]))
        table.add_row(f"further draws, seeds {seeds} ({further['n']:,})", f"{100 * further['accuracy']:.2f} %")
        pooled = further["pooled_with_validation"]
        table.add_row(f"  pooled with validation ({pooled['n']:,}; {pooled['errors']} errors)",
                      f"{100 * pooled['accuracy']:.2f} %")
    for name, entry in result.get("tesseract_page_variants", {}).get("variants", {}).items():
        table.add_row(f"  real scans {name} ({entry['n']})", f"{100 * entry['printed_rate']:.2f} %")
    family = result.get("held_out_family")
    if family:
        table.add_row(f"held-out family ({family['n']:,}; {family['errors']} errors)",
                      f"{100 * family['accuracy']:.2f} %")
        for name, acc in family["per_class_accuracy"].items():
            table.add_row(f"  {name} ({family['per_class_n'][name]})", f"{100 * acc:.2f} %" if acc is not None else "-")
    base = result.get("tesseract_confidence_baseline")
    if base:
        table.add_row(f"Tesseract confidence baseline (threshold {base['threshold']:.0f})",
                      f"{100 * base['accuracy']:.2f} %")
    return table



def _conditions_table(result: dict):
    """Accuracy per condition (italic, bold, 1-bit, short words, pencil...) on the held-out family
    and the validation set, each class apart."""
    from rich.table import Table

    table = Table(title="Per condition: held-out family | validation", title_justify="left")
    table.add_column("condition")
    for column in ("family printed", "family handwritten", "validation printed", "validation handwritten"):
        table.add_column(column, justify="right")
    rows: dict[str, list[str]] = {}
    for offset, key in ((0, "held_out_family"), (2, "validation_conditions")):
        entries = result[key]["conditions"] if key == "held_out_family" else result.get(key, [])
        for row in entries:
            cells = rows.setdefault(row["condition"], ["-"] * 4)
            for k, cls in enumerate(("printed", "handwritten")):
                entry = row[cls]
                if entry["n"]:
                    cells[offset + k] = f"{100 * entry['accuracy']:.2f} % ({entry['n']})"
    for name, cells in rows.items():
        table.add_row(name, *cells)
    return table
