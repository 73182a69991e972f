"""How a batch starts quickly: the checks that fail it at once, and a worker started early.

A one-document ``docsort process`` from cron spends most of its time starting up: the command
line (Typer, Rich) takes about 0.15 s to import, and a worker about 0.4 s to start an
interpreter, import the pipeline and open its networks. ``start_early_worker`` runs the second
beside the first: the command starts one local worker before it imports its command line, and
the batch adopts it (``LocalExecutor``) once its options are known. Only this module and the
executors are imported before that, both light.
"""

from __future__ import annotations

import shutil
from typing import Optional

from docsort import settings
from docsort.errors import DocsortError, MissingDependencyError

PIPELINE = "docsort.page.pipeline"


def worker_env() -> dict:
    """One thread per worker: ``--jobs N`` uses N cores, as ``make -j`` does. A worker reads one
    page at a time and Tesseract runs on one thread in it, so a spare core would serve only its
    network calls; left free it serves another worker (``--jobs`` defaults to every core) or the
    machine's other work, which is what a batch run from cron on a shared machine should leave
    it to. ``DOCSORT_THREADS`` set by the user gives each worker more."""
    return settings.worker_environment(1)


def quick_checks(scheduler: Optional[str] = None, scheduler_timeout: float = settings.SCHEDULER_TIMEOUT_S) -> None:
    """What makes a run impossible and shows in milliseconds, checked before a worker starts or
    the pipeline is imported, so that such a run fails at once: no Tesseract on the PATH, a
    models folder without its manifest or a listed file, a tcp:// scheduler where nothing
    listens. The full checks (Tesseract's English data, every model's sha256, a scheduler that
    answers as one) follow as the run starts (``runner.run_information``, the executors)."""
    from docsort.reading import manifest

    if scheduler:
        from docsort.batch.executors import check_scheduler_reachable

        check_scheduler_reachable(scheduler, scheduler_timeout)
    if shutil.which("tesseract") is None:
        raise MissingDependencyError("Tesseract is not installed or not on PATH (install the 'tesseract-ocr' package)")
    models = manifest.shipped()
    for name in models.models:
        if not models.path(name).is_file():
            models.check_file(name)  # says which file is missing, as the full check would


def runs_a_local_batch(args: list[str]) -> bool:
    """Whether a command line (without the program name) is a ``docsort process`` run on local
    workers that an early worker serves: not ``--help``, not a Dask run, and not ``--verbose``
    (whose workers show their libraries' start-up output, decided as they start). A wrong
    guess costs nothing but the time saved: an unused early worker is stopped."""
    if not args or args[0] != "process":
        return False
    for arg in args[1:]:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in ("--help", "--scheduler", "--verbose"):
            return False
        if arg.startswith("-") and not arg.startswith("--") and ("v" in arg or "h" in arg):
            return False  # -v, -h, or short options run together with them
    return True


def start_early_worker() -> bool:
    """Start one local worker now, with the run's settings to follow; False when the quick
    checks fail (the batch then says why, with no worker started)."""
    from docsort.batch.executors import DocumentProcessor, start_early_worker as start

    try:
        quick_checks()
    except DocsortError:
        return False
    start(DocumentProcessor(settings=None, pipeline=PIPELINE, env=worker_env()))
    return True
