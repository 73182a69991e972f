"""``docsort train export``: trained models as the ``.onnx`` files that reading runs, and the
folder's ``manifest.json``."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort.cli.app import handles_errors, needs_training_extra, print_rows, progress_lines, train_app


@train_app.command("export")
@handles_errors
@needs_training_extra
def train_export(
    folder: Path = typer.Argument(..., help="A models folder (the shipped one: models)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Export every .keras in FOLDER to the .onnx beside it (checked against the .keras on probe
    batches) and write FOLDER/manifest.json: which models ship, by role, and how they combine."""
    from docsort.training.export import export_folder
    from docsort.training.manifest import write

    log = progress_lines(quiet)
    results = export_folder(folder, log)
    written = write(folder, log)
    print_rows(["onnx", "from", "largest difference", "sha256", "version"],
               [[r["file"], r["source"]["file"], f"{r['max_difference']:.1e}", r["sha256"],
                 written["models"][r["file"].removesuffix(".onnx")]["version"]] for r in results])
