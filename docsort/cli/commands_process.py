"""The ``process`` command: a batch of scanned documents into results.json and results.csv."""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

import typer

from docsort import settings
from docsort.cli.app import app, fail, handles_errors, stderr
from docsort.errors import ExitCode, UsageError



class _TerminalProgress:
    """A progress bar on stderr, only used when stderr is a terminal."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("processing"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[errors]} errors"), TimeRemainingColumn(),
                             console=stderr, transient=True)
        self._task = None
        self._errors = 0

    def start(self, total: int, done: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("documents", total=total, completed=done, errors=0)

    def advance(self, document: dict) -> None:
        self._errors += document.get("status") != "ok"
        self._bar.update(self._task, advance=1, errors=self._errors)

    def finish(self) -> None:
        self._bar.stop()


def _interrupt_on_sigterm() -> None:
    """A batch stopped by SIGTERM (cron timeouts, systemd) ends like Ctrl-C: cleanly, code 130."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _threshold_help() -> str:
    """The accept threshold's help with its default as a number, read from the shipped trade-off
    file without checking it (``process`` itself checks the file before it trusts it)."""
    import json

    from docsort.reading import manifest

    text = "Codes below this confidence go to manual sorting"
    try:
        optimal = json.loads((manifest.models_dir() / "digits.tradeoff.json").read_text())["optimal"]
        return (f"{text} [default: {float(optimal['threshold']):.3f}, the cost-optimal threshold of the shipped models; "
                f"with --country, the one measured with its directory].")
    except (OSError, ValueError, KeyError, TypeError):
        return f"{text} [default: the cost-optimal threshold of the shipped models]."


@app.command("process")
@handles_errors
def process_command(
    inputs: List[str] = typer.Argument(..., help="Files and folders (folders are walked recursively).",
                                       show_default=False, metavar="INPUT"),
    out: str = typer.Option(..., "--out", "-o", metavar="DIR", help="Output folder for results.json, results.csv, overlays/."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Local worker processes, one core each [default: all cores]."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Run on a Dask cluster, e.g. tcp://10.0.0.5:8786."),
    scheduler_timeout: float = typer.Option(
        settings.SCHEDULER_TIMEOUT_S, "--scheduler-timeout", metavar="SECONDS",
        help="With --scheduler: seconds to connect and wait for a first worker before failing (exit 4)."),
    code_length: int = typer.Option(settings.CODE_LENGTH, "--code-length", min=settings.CODE_LENGTH_MIN,
                                    max=settings.CODE_LENGTH_MAX,
                                    help="Digits in a postal code (with --country: the country's)."),
    country: Optional[str] = typer.Option(
        None, "--country", metavar="CC",
        help="Read codes against this country's postal directory (US, DE, FR, AT, ...): only codes that exist "
             "can be sorted automatically, and the printed place beside a code is checked against it."),
    directory: Optional[str] = typer.Option(
        None, "--directory", metavar="FILE",
        help="Read codes against your own postal directory: a CSV of code,place rows."),
    accept_threshold: Optional[float] = typer.Option(
        None, "--accept-threshold",
        help=_threshold_help()),
    overlays: bool = typer.Option(False, "--overlays", help="Write annotated page images to OUT/overlays/."),
    overlay_size: Optional[str] = typer.Option(
        None, "--overlay-size", metavar="small|full",
        help="Overlays as JPEG at most 1600 px long (small, the default) or PNG at page size (full); "
             "implies --overlays."),
    force: bool = typer.Option(False, "--force", help="Redo documents already done in OUT."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first document that fails."),
    wait: bool = typer.Option(False, "--wait", help="If another batch is writing to OUT, wait for it."),
    max_megapixels: float = typer.Option(settings.MAX_MEGAPIXELS, "--max-megapixels",
                                         help="Refuse pages larger than this (decompression bombs)."),
    page_timeout: float = typer.Option(settings.PAGE_TIMEOUT_S, "--page-timeout",
                                       help="Seconds Tesseract may spend on one page."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="One line per document on stderr."),
    log_json: bool = typer.Option(False, "--log-json", help="Log as JSON lines on stderr."),
) -> None:
    """Read the destination postal code of every scanned document; write OUT/results.json and .csv."""
    if quiet and verbose:
        raise UsageError("--quiet and --verbose cannot be used together")
    options = dict(jobs=jobs, scheduler=scheduler, scheduler_timeout=scheduler_timeout, code_length=code_length,
                   accept_threshold=accept_threshold, overlays=overlays or overlay_size is not None,
                   overlay_size=overlay_size or "small", force=force, fail_fast=fail_fast, wait=wait,
                   max_megapixels=max_megapixels, page_timeout=page_timeout, country=country, directory=directory)
    from docsort.batch.options import BatchOptions

    BatchOptions(**options).check()  # a bad option is refused before the pipeline loads
    from docsort import log
    from docsort.api import process
    from docsort.batch.runner import LogProgress
    from docsort.batch.results import plural

    log.setup_logging(log.QUIET if quiet else log.VERBOSE if verbose else log.NORMAL, json_lines=log_json)
    _interrupt_on_sigterm()
    if quiet:
        progress = _SilentProgress()
    elif sys.stderr.isatty() and not log_json:
        progress = _TerminalProgress()
    else:
        progress = LogProgress()
    summary = process(inputs, out, progress=progress, **options)
    if not summary.ok:
        raise fail(f"{summary.errors} of {plural(summary.documents, 'document')} failed; see {summary.results_json}"
                   if summary.errors else "stopped before every document was processed",
                   ExitCode.INPUTS_FAILED)


class _SilentProgress:
    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, document: dict) -> None:
        pass

    def finish(self) -> None:
        pass
