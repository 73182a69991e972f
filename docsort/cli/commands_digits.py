"""``docsort train digits``, ``docsort train digit-strings`` and ``docsort evaluate digits``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from docsort.cli.app import evaluate_app, handles_errors, needs_training_extra, print_json, progress_lines, stdout, train_app
from docsort import settings
from docsort.errors import UsageError

DATA_HELP = ("MNIST: a folder with the four IDX files (gzip or not) or keras' mnist.npz. "
             "Default: $DOCSORT_MNIST, then $DOCSORT_DATASETS/mnist, then ~/.keras/datasets/mnist.npz.")
ENVELOPE_HANDWRITING_HELP = ("Folder with MNIST and DHSD (as for samples) to generate envelopes from "
                             "[default: $DOCSORT_DATASETS].")


@train_app.command("digits")
@handles_errors
@needs_training_extra
def train_digits(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    arch: str = typer.Option("cnn", "--arch", help="cnn (the shipped reader) or mlp (flat 784-100-10 reference)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=10,
                                        help="Train on only the first N training digits (evenly per digit)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1,
                                         help="Epochs (default 20; 40 when --limit is under 20000)."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment",
                                           help="Writer and scanner augmentation (default: on for cnn, off for mlp)."),
    seed: int = typer.Option(1, "--seed", help="Seed for weights, augmentation and shuffling."),
    epoch_size: int = typer.Option(10000, "--epoch-size", min=10,
                                   help="Digits per epoch: a smaller training set is repeated, freshly varied, "
                                        "up to this many (quick trial runs: fewer)."),
    scanned_test: Optional[int] = typer.Option(None, "--scanned-test", min=10,
                                               help="Test digits also measured in the scanned look (default: all)."),
    convention_share: float = typer.Option(
        0.0, "--convention-share", min=0.0, max=1.0,
        help="Share of training and validation digits written as continental writers write: 1s with the "
             "up-stroke, 7s crossed (MNIST's writers never do)."),
    pen_share: float = typer.Option(
        0.0, "--pen-share", min=0.0, max=1.0,
        help="Share of training and validation digits drawn by pen writers in shapes MNIST's writers did not "
             "use (open 4s, hooked 9s, looped 2s, slashed 0s); the continental share applies to the rest."),
    out: Path = typer.Option(Path("runs/digits"), "--out",
                             help="Folder for digits.keras, digits.metrics.json and digits.history.json."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Train the handwritten digit reader on MNIST (reproduces models/digits.keras with --out models)."""
    if arch not in ("cnn", "mlp"):
        raise UsageError(f"--arch must be cnn or mlp, not {arch!r}")
    if convention_share + pen_share > 1:
        raise UsageError("--convention-share and --pen-share together must not pass 1")
    from docsort.training.train.digits import TrainingConfig, train

    config = TrainingConfig(data=str(data) if data else None, arch=arch, limit=limit, epochs=epochs,
                            seed=seed, augment=augment, epoch_size=epoch_size,
                            scanned_test_limit=scanned_test, convention_share=convention_share,
                            pen_share=pen_share, out=out)
    progress = progress_lines(quiet)
    metrics = train(config, progress=progress)
    stdout.print(f"test accuracy {100 * metrics['test_accuracy']:.2f}% "
                 f"(scanned look {100 * metrics['scanned_test_accuracy']:.2f}%), "
                 f"ECE {100 * metrics['ece']:.2f}%, model written to {out / metrics['model_file']}",
                 highlight=False)


@train_app.command("digit-strings")
@handles_errors
@needs_training_extra
def train_digit_strings(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    steps: int = typer.Option(4000, "--steps", min=1, help="Training steps of 32 composed strings each."),
    seed: int = typer.Option(1, "--seed", help="Seed for weights, string composition and shuffling."),
    validation_strings: int = typer.Option(600, "--validation-strings", min=10,
                                           help="Strings of held-out training digits for checkpoints and calibration."),
    test_strings: int = typer.Option(1000, "--test-strings", min=0,
                                     help="Strings of MNIST test digits measured once at the end (0: none)."),
    combination_strings: int = typer.Option(
        2000, "--combination-strings", min=0,
        help="Validation codes the combination with the segmenting reader is fitted on (0: none)."),
    learning_rate: float = typer.Option(2e-3, "--learning-rate", min=1e-6, help="Peak learning rate."),
    init: Optional[Path] = typer.Option(None, "--init",
                                        help="Continue from a trained digit_strings.keras instead of random weights."),
    field_share: float = typer.Option(
        0.0, "--field-share", min=0.0, max=1.0,
        help="Share of training and validation strings drawn as number fields of the training families "
             "(separators, marks, frames, patterned paper, pens); the held-out family is never drawn."),
    writer_share: float = typer.Option(
        0.0, "--writer-share", min=0.0, max=1.0,
        help="Share of training strings composed from writer-varied digits (rotated, sheared, elastically "
             "bent, other pen widths): hands MNIST's writers do not have. Validation strings stay plain."),
    convention_share: float = typer.Option(
        0.0, "--convention-share", min=0.0, max=1.0,
        help="Share of training and validation strings written as continental writers write: 1s with the "
             "up-stroke, 7s crossed (MNIST's writers never do)."),
    pen_share: float = typer.Option(
        0.0, "--pen-share", min=0.0, max=1.0,
        help="Share of training and validation strings drawn by pen writers of many digit shapes (open 4s, "
             "hooked 9s, looped 2s, flat-topped 3s, slashed 0s): hands that are not MNIST's."),
    font_share: float = typer.Option(
        0.0, "--font-share", min=0.0, max=1.0,
        help="Share of training and validation strings written in real people's hands digitised as "
             "handwriting fonts (the Debian packages scripts/install.sh installs; the held-out hands are "
             "never drawn)."),
    block_convs: str = typer.Option(
        "0,0,0,0", "--block-convs",
        help="Residual 3x3 convolutions added inside each of the four conv blocks, comma-separated. With "
             "--init from a shallower reader the new ones start as no-ops: the network grows from it."),
    context_blocks: int = typer.Option(2, "--context-blocks", min=0,
                                       help="Residual 1x5 convolutions over the columns."),
    fine_blocks: int = typer.Option(
        0, "--fine-blocks", min=0,
        help="Double the output columns (one per 2 px) and add this many residual 1x3 convolutions over "
             "them, so equal digits side by side keep a blank between them. With --init from a reader "
             "without them it starts reading as that reader."),
    data_workers: int = typer.Option(
        0, "--data-workers", min=0,
        help="Processes composing training strings while the network trains (0: in the training process)."),
    out: Path = typer.Option(Path("runs/digit_strings"), "--out",
                             help="Folder for digit_strings.keras and digit_strings.metrics.json."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Train the whole-field digit string reader (CTC) on strings composed from MNIST training digits."""
    from docsort.training.train.digit_strings import StringTrainingConfig, train

    if convention_share + pen_share + font_share > 1.0:
        raise UsageError("--convention-share, --pen-share and --font-share together must not pass 1")
    config = StringTrainingConfig(data=str(data) if data else None, steps=steps, seed=seed, out=out,
                                  validation_strings=validation_strings, test_strings=test_strings,
                                  combination_strings=combination_strings, learning_rate=learning_rate,
                                  init=str(init) if init else None, field_share=field_share,
                                  writer_share=writer_share, convention_share=convention_share,
                                  pen_share=pen_share, font_share=font_share,
                                  block_convs=_block_convs(block_convs),
                                  context_blocks=context_blocks, fine_blocks=fine_blocks,
                                  data_workers=data_workers)
    progress = progress_lines(quiet)
    metrics = train(config, progress=progress)
    exact = metrics["test_accuracy"]
    measured = f"test strings exact {100 * exact:.2f}%, " if exact is not None else ""
    stdout.print(f"validation strings exact {100 * metrics['validation_exact']:.2f}%, {measured}"
                 f"model written to {out / metrics['model_file']}", highlight=False)


def _block_convs(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if len(counts) != 4 or min(counts) < 0:
        raise UsageError(f"--block-convs takes four counts like 0,0,1,1, not {text!r}")
    return counts


@train_app.command("field-combination")
@handles_errors
def train_field_combination(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    handwriting: Optional[Path] = typer.Option(None, "--handwriting", help=ENVELOPE_HANDWRITING_HELP),
    envelopes: int = typer.Option(600, "--envelopes", min=0,
                                  help="Envelopes with validation digits read by the pipeline (0: none)."),
    envelope_seed: int = typer.Option(7001, "--envelope-seed", help="Seed of those envelopes."),
    envelope_weight: float = typer.Option(3.0, "--envelope-weight", min=0.0,
                                          help="How many composed codes one envelope field counts as."),
    composed: int = typer.Option(2000, "--composed", min=0, help="Composed validation codes fitted on too."),
    family_fields: int = typer.Option(
        1500, "--family-fields", min=0,
        help="Number fields of the training families (separators, marks, frames, paper; validation digits) "
             "fitted on too, read at their own length."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes reading the envelopes."),
    metrics: Optional[Path] = typer.Option(None, "--metrics",
                                           help="digit_strings.metrics.json to refit. Default: the shipped one."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the refitted metrics to this file (required; "
                                       "--out models/digit_strings.metrics.json replaces the shipped combination, "
                                       "and with it every code confidence)."),
    members: Optional[list[str]] = typer.Option(
        None, "--member", help="A whole-field model of the ensemble, a file beside the metrics (repeat; its own "
                               "model first). Default: the members the metrics name."),
    views: Optional[list[int]] = typer.Option(
        None, "--view", min=8, max=32,
        help="An ink height (rows of 32) each member reads a field at (repeat). Default: 24, 26 and 28."),
    convention_share: float = typer.Option(
        0.0, "--convention-share", min=0.0, max=1.0,
        help="Share of the composed codes and family fields written by continental writers (1s with the "
             "up-stroke, 7s crossed)."),
    pen_share: float = typer.Option(
        0.0, "--pen-share", min=0.0, max=1.0,
        help="Share of them drawn by pen writers of many digit shapes (open 4s, hooked 9s, looped 2s, ...)."),
    font_share: float = typer.Option(
        0.0, "--font-share", min=0.0, max=1.0,
        help="Share of them written in real people's hands digitised as handwriting fonts (the training hands)."),
) -> None:
    """Refit P(reading right) of the number-field readers together, on composed codes, number fields of the
    training families and fields the pipeline cuts from envelopes."""
    from docsort.reading import manifest
    from docsort.training.train.digit_strings import refit_combination

    path = metrics or manifest.metrics_path(manifest.DIGIT_STRINGS)
    handwriting = handwriting or settings.datasets_folder()
    if out is None:
        raise UsageError(f"give --out FILE for the refitted metrics (--out {path} replaces the ones refitted)")
    if convention_share + pen_share + font_share > 1.0:
        raise UsageError("--convention-share, --pen-share and --font-share together must not pass 1")
    command = (f"docsort train field-combination --data {data} --handwriting {handwriting} --envelopes {envelopes} "
               f"--envelope-seed {envelope_seed} --envelope-weight {envelope_weight:g} --composed {composed} "
               f"--family-fields {family_fields}"
               + "".join(f" --member {m}" for m in members or [])
               + "".join(f" --view {v}" for v in views or [])
               + (f" --convention-share {convention_share:g}" if convention_share else "")
               + (f" --pen-share {pen_share:g}" if pen_share else "")
               + (f" --font-share {font_share:g}" if font_share else "") + f" --out {out}")
    fit = refit_combination(Path(path), str(data) if data else None, str(handwriting) if handwriting else None,
                            envelopes, envelope_seed, envelope_weight, composed, jobs, command=command,
                            progress=progress_lines(),
                            members=members, out=out, family_count=family_fields, views=views,
                            convention_share=convention_share, pen_share=pen_share,
                            font_share=font_share)["fit"]
    stdout.print(f"combined right {100 * fit['combined_right']:.2f}% on {fit['n']} fields "
                 f"({fit['envelope_fields']} from envelopes), written to {out}", highlight=False)


@train_app.command("destination")
@handles_errors
def train_destination(
    handwriting: Optional[Path] = typer.Option(None, "--handwriting", help=ENVELOPE_HANDWRITING_HELP),
    envelopes: int = typer.Option(800, "--envelopes", min=20,
                                  help="Envelopes of the training layouts (validation digits) read by the pipeline."),
    seed: int = typer.Option(7101, "--seed", help="Seed of those envelopes."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes reading the envelopes."),
    out: Path = typer.Option(..., "--out", help="Write the fitted picker here (--out models/destination.metrics.json "
                                                "replaces the shipped one, and the manifest with it)."),
) -> None:
    """Fit which code candidate on a page is the destination's, on envelopes of every training layout."""
    from docsort.training.train.destination import fit_picker, write_picker

    handwriting = handwriting or settings.datasets_folder()
    if handwriting is None:
        raise UsageError("give --handwriting DIR (MNIST and DHSD) or set DOCSORT_DATASETS")
    command = (f"docsort train destination --handwriting {handwriting} --envelopes {envelopes} --seed {seed} "
               f"--jobs {jobs} --out {out}")
    picker = fit_picker(str(handwriting), envelopes, seed, jobs, progress=progress_lines())
    write_picker(out, picker, command)
    check = picker["fit"]["check"]
    stdout.print(f"picked right on {check['pages']} unseen pages: fitted {100 * check['picked_right_fitted']:.1f}%, "
                 f"rule {100 * check['picked_right_rule']:.1f}%; written to {out}", highlight=False)


@train_app.command("field-calibration")
@handles_errors
def train_field_calibration(
    data: Optional[Path] = typer.Option(
        None, "--data", help="Folder with MNIST (IDX files) and DHSD (data.csv). Default: $DOCSORT_DATASETS."),
    out: Path = typer.Option(..., "--out", help="Write the metrics with the fitted calibration to this file "
                                                "(--out models/digit_strings.metrics.json replaces the shipped one)."),
    metrics: Optional[Path] = typer.Option(None, "--metrics",
                                           help="digit_strings.metrics.json to start from. Default: the shipped one."),
    numbers: int = typer.Option(2000, "--numbers", min=20, help="Number fields of MNIST validation digits."),
    not_numbers: int = typer.Option(800, "--not-numbers", min=10,
                                    help="Crops that are no number (DHSD training writers' words and others)."),
    seed: int = typer.Option(11, "--seed", help="Seed of the composed fields and crops."),
    family_share: float = typer.Option(
        0.5, "--family-share", min=0.0, max=1.0,
        help="Share of the number fields drawn from the training families (separators, marks, frames, paper)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes reading the fields."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Fit read-digits' confidence for fields of any length, and P(a field is a number at all)."""
    from docsort.reading import manifest
    from docsort.training.train.field_calibration import calibrate

    folder = data or settings.datasets_folder()
    if not folder:
        raise UsageError("give --data DIR (the folder with MNIST and DHSD) or set $DOCSORT_DATASETS")
    path = metrics or manifest.metrics_path(manifest.DIGIT_STRINGS)
    command = (f"docsort train field-calibration --data {folder} --numbers {numbers} --not-numbers {not_numbers} "
               f"--seed {seed} --family-share {family_share:g} --out {out}")
    fit = calibrate(folder, Path(path), out, numbers, not_numbers, seed, jobs, command,
                    progress_lines(quiet), family_share=family_share)["fit"]
    stdout.print(f"field calibration fitted on {fit['numbers']} number fields and {fit['not_numbers']} crops "
                 f"that are no number in {fit['seconds']:.0f} s, written to {out}", highlight=False)


@evaluate_app.command("digits")
@handles_errors
def evaluate_digits(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    model: Optional[Path] = typer.Option(None, "--model", help="A digits .keras file (exported to .onnx beside it when it "
                                         "has none). Default: the shipped model."),
    report: Optional[Path] = typer.Option(None, "--report",
                                          help="Write metrics.json, confusion_matrix.png, failures.png, "
                                               "learning_curve.png and field_reliability.png to this folder."),
    scanned: bool = typer.Option(False, "--scanned",
                                 help="Also read the test digits as scanned from paper (through to_mnist)."),
    fields: Optional[int] = typer.Option(
        None, "--fields", min=0,
        help="Number fields of each length 1-10 (MNIST test digits) to measure read-digits' confidence on "
             "(default: 100 with --report, else 0)."),
    words: int = typer.Option(300, "--words", min=0,
                              help="DHSD words of held-out writers measured with them (not numbers)."),
    handwriting: Optional[Path] = typer.Option(
        None, "--handwriting", help="Folder with DHSD (data.csv) for those words. Default: $DOCSORT_DATASETS."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes reading the fields."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object to stdout."),
) -> None:
    """Accuracy, confusion matrix and calibration of the digit reader on the 10,000 MNIST test digits,
    and the reliability of read-digits' field confidence."""
    from docsort.training.evaluate.digits import evaluate

    per_length = fields if fields is not None else (100 if report is not None else 0)
    result = evaluate(str(data) if data else None, str(model) if model else None,
                      str(report) if report else None, scanned=scanned,
                      handwriting=str(handwriting) if handwriting else None, fields_per_length=per_length,
                      words=words, jobs=jobs, progress=progress_lines(as_json))
    if as_json:
        print_json(result)
        return
    stdout.print(f"Digit reader on {result['n']:,} MNIST test digits: accuracy {100 * result['accuracy']:.2f} %, "
                 f"expected calibration error {100 * result['ece']:.2f} %", highlight=False, soft_wrap=True)
    if "scanned_test_accuracy" in result:
        stdout.print(f"Same digits scanned from paper: accuracy {100 * result['scanned_test_accuracy']:.2f} % "
                     f"on {result['scanned_n']:,}", highlight=False, soft_wrap=True)
    if "calibration" in result:
        calibration = result["calibration"]
        stdout.print(f"read-digits confidence on {calibration['n']:,} readings of number fields (1-10 digits) and "
                     f"held-out words: expected calibration error {100 * calibration['ece']:.2f} % "
                     f"(combination alone {100 * calibration['before']['ece']:.2f} %); words called numbers "
                     f"{100 * calibration['words'].get('called_numbers', 0.0):.1f} %", highlight=False, soft_wrap=True)
    stdout.print(_per_digit_table(result))
    if report is not None:
        stdout.print(f"report written to {report}", highlight=False)


def _per_digit_table(result: dict):
    from rich.table import Table

    table = Table(show_header=True)
    table.add_column("digit", justify="right")
    table.add_column("accuracy", justify="right")
    for digit, accuracy in result["per_class_accuracy"].items():
        table.add_row(digit, f"{100 * accuracy:.2f} %")
    return table
