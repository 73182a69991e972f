"""``docsort train directory-reading``: how a code read against a postal directory says P(right)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from docsort.cli.app import handles_errors, progress_lines, stdout, train_app
from docsort import settings
from docsort.errors import UsageError


@train_app.command("directory-reading")
@handles_errors
def train_directory_reading(
    data: Optional[Path] = typer.Option(
        None, "--data", help="MNIST: a folder with the four IDX files or mnist.npz (default: $DOCSORT_MNIST, then "
                             "$DOCSORT_DATASETS/mnist)."),
    handwriting: Optional[Path] = typer.Option(
        None, "--handwriting", help="Folder with DHSD's data.csv (handwritten words that hold no code) "
                                    "[default: $DOCSORT_DATASETS]."),
    count: int = typer.Option(1500, "--count", min=50, help="Real codes per directory (US and DE) to fit on."),
    words: int = typer.Option(1000, "--words", min=0, help="Handwritten words to fit on (alone and joined to a code)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the codes and their writing."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the fit here (required; --out "
                                       "models/directory_reading.json replaces the shipped one)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress lines on stderr."),
) -> None:
    """Refit how a handwritten code read against a postal directory says P(code right).

    Real US and DE codes are written with the MNIST training digits held out of training and
    read by both number-field readers; never MNIST test digits.
    """
    from docsort.training.train.directory_reading import train

    if out is None:
        raise UsageError("give --out FILE for the fit (--out models/directory_reading.json replaces the shipped one)")
    if handwriting is None:
        handwriting = settings.datasets_folder()
        if handwriting is None:
            raise UsageError("give --handwriting DIR (DHSD's words) or set DOCSORT_DATASETS")
    command = ("docsort train directory-reading" + (f" --data {data}" if data else "")
               + f" --handwriting {handwriting} --count {count} --words {words}"
               + (f" --seed {seed}" if seed else "") + f" --out {out}")
    result = train(str(data) if data else None, handwriting, count, words, seed, out, command,
                   progress=progress_lines(quiet))
    fit = result["fit"]
    stdout.print(f"best code right on {100 * fit['top_right']:.2f} % of {fit['n']} fields; written to {out}",
                 highlight=False)
