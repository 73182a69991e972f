"""The ``docsort`` command line: argument parsing, terminal output and exit codes only.

Each command parses its options, calls the library (``docsort.api`` and the stage modules)
and turns ``DocsortError`` into a one-line message on stderr and its documented exit code.
Heavy imports (numpy, OpenCV, TensorFlow) happen inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from docsort import __version__
from docsort.errors import DocsortError, ExitCode

app = typer.Typer(
    name="docsort",
    help="Read destination postal codes from scanned mail and estimate sorting costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
train_app = typer.Typer(help="Train a model from data (reproduces the shipped models).", no_args_is_help=True)
evaluate_app = typer.Typer(help="Measure a model's accuracy on a test set.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")

stdout = Console()
stderr = Console(stderr=True)


def fail(message: str, code: ExitCode) -> "typer.Exit":
    """Print a one-line error on stderr and return the Exit to raise."""
    stderr.print(f"docsort: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def handles_errors(command):
    """Turn library exceptions into one-line messages and documented exit codes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DocsortError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", ExitCode.INTERRUPTED) from None

    return wrapper


def needs_training_extra(command):
    """For the commands that train a network: on a base install (no TensorFlow) one line and exit
    code 4 before any work, instead of a traceback after the data is made."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from docsort.training import tf

        if not tf.installed():
            raise fail(f"docsort train needs the training extra: {tf.TRAINING_EXTRA}", ExitCode.MISSING_DEPENDENCY)
        return command(*args, **kwargs)

    return wrapper


def progress_lines(quiet: bool = False):
    """Where long commands (training, evaluation) report progress: plain lines on stderr, so
    stdout keeps only the result; ``quiet`` drops them."""
    if quiet:
        return lambda line: None
    return lambda line: stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def print_json(obj) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    import json

    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_rows(columns: list[str], rows: list[list], right: tuple[str, ...] = ()) -> None:
    """A list answer on stdout: a table on a terminal; tab-separated lines with a header line
    when piped, one row per line and nothing cut short, for ``cut``, ``awk`` and spreadsheets."""
    if not stdout.is_terminal:
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join("" if v is None else str(v) for v in row) + "\n")
        sys.stdout.flush()
        return
    from rich.table import Table

    table = Table(title_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    stdout.print(table)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"docsort {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """docsort reads folders of scanned pages and envelopes."""


def main() -> None:
    try:
        app()
    except DocsortError as exc:  # raised outside a wrapped command
        stderr.print(f"docsort: error: {exc}", markup=False, highlight=False)
        sys.exit(int(exc.exit_code))


# Command modules register themselves on the apps above.
from docsort.cli import commands_cost  # noqa: E402,F401
from docsort.cli import commands_digits  # noqa: E402,F401
from docsort.cli import commands_directory  # noqa: E402,F401
from docsort.cli import commands_models  # noqa: E402,F401
from docsort.cli import commands_pipeline  # noqa: E402,F401
from docsort.cli import commands_process  # noqa: E402,F401
from docsort.cli import commands_writing_type  # noqa: E402,F401

# `docsort --help` lists what a user reaches for first, first: the batch, then the single-image
# readers, the cost estimate, and the tools for data and models.
_COMMAND_ORDER = ("process", "read-digits", "classify", "cost", "samples")
app.registered_commands.sort(
    key=lambda c: _COMMAND_ORDER.index(c.name) if c.name in _COMMAND_ORDER else len(_COMMAND_ORDER))
