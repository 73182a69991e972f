"""The ``docsort`` command.

``main`` starts the local worker a ``docsort process`` run will need before it imports the
command line itself (``docsort.cli.app``: Typer, Rich and every command), so that the worker's
start-up runs beside the command's own (``docsort.batch.startup``).
"""

from __future__ import annotations

import sys


def main() -> None:
    from docsort.batch import startup

    if startup.runs_a_local_batch(sys.argv[1:]):
        startup.start_early_worker(sys.argv[2:])
    from docsort.cli.app import main as run_command

    run_command()
