"""How a batch starts quickly: the checks that fail it at once, and a worker started early.

A one-document ``docsort process`` from cron spends most of its time starting up: the command
line (Typer, Rich) takes about 0.15 s to import, and a worker about 0.4 s to start an
interpreter, import the pipeline and open its networks. ``start_early_worker`` runs the second
beside the first: the command starts one local worker before it imports its command line, and
the batch adopts it (``LocalExecutor``) once its options are known. Only this module and the
executors are imported before that, both light.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path
from typing import Optional

from docsort import settings
from docsort.errors import DocsortError, MissingDependencyError

PIPELINE = "docsort.page.pipeline"
STATE_DIR = ".docsort"  # in the output folder: the lock and the stored results
LOCK_FILE = "lock"


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


def output_fault(root: Path) -> Optional[str]:
    """Why nothing can be written at the output folder ``root``, where that shows without
    writing: a file in its place, or a folder (or its nearest existing parent) this user may not
    write or on a read-only file system. None otherwise (what only writing shows is found when
    the batch prepares the folder)."""
    root = Path(root)
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing == root and not existing.is_dir():
        return f"output {root} exists and is not a folder"
    if not existing.is_dir():
        fault = errno.ENOTDIR
    elif os.statvfs(existing).f_flag & os.ST_RDONLY:
        fault = errno.EROFS
    elif not os.access(existing, os.W_OK | os.X_OK):
        fault = errno.EACCES
    else:
        return None
    return f"cannot write to output folder {root}: {os.strerror(fault)}"


def output_in_use(lock_file: Path) -> bool:
    """Whether another batch holds the output folder's lock now (looked at, not taken)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _option(args: list[str], *names: str) -> Optional[str]:
    """The value of the last of ``names`` given in ``args`` (``--out DIR``, ``--out=DIR``, ``-o DIR``)."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                value = arg[len(name) + 1:]
    return value


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


def start_early_worker(args: list[str]) -> bool:
    """Start one local worker now, with the run's settings to follow; False when the run is
    bound to fail at once (the quick checks, an output folder that cannot be written or is in
    use): the batch then says why, with no worker started."""
    from docsort.batch.executors import DocumentProcessor, start_early_worker as start

    try:
        quick_checks()
    except DocsortError:
        return False
    out = _option(args, "--out", "-o")
    if out is not None and (output_fault(Path(out)) is not None
                            or output_in_use(Path(out) / STATE_DIR / LOCK_FILE)):
        return False
    start(DocumentProcessor(settings=None, pipeline=PIPELINE, env=worker_env()))
    return True
