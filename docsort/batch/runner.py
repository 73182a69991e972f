"""The batch runner behind ``docsort process``: inputs in, results.json/results.csv out.

A run reads like this:

1. check the options and walk the inputs into a list of documents (none at all is a usage error);
2. check the dependencies (Tesseract, model files, the Dask cluster and its workers) before
   anything is written, so a run that cannot start leaves no output folder;
3. prepare the output folder and lock it (one batch per folder), hash each document;
4. reuse the stored result of every document whose content, settings and models are unchanged;
5. send the rest to the executor (local processes or Dask) and store each result atomically
   the moment it comes back, so a killed run loses none of the documents it finished;
6. assemble results.json and results.csv, atomically, from the stored results.

Layout of the output folder: ``results.json``, ``results.csv``, ``overlays/`` (with
``--overlays``) and ``.docsort/`` (the lock file and one stored result per document).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import importlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Protocol, Sequence

from docsort import __version__
from docsort import settings
from docsort.errors import InputError, MissingDependencyError, OutputLockedError, OutputNotWritableError, UsageError
from docsort.batch.options import BatchOptions
from docsort.batch import startup
from docsort.batch.executors import DaskExecutor, DocumentProcessor, DocumentTask, Executor, make_executor
from docsort.page.ingest import SUPPORTED_SUFFIXES, check_readable
from docsort.log import current_config, get_logger, one_line
from docsort.batch.records import DocumentResult
from docsort.batch.results import TEMP_SUFFIX, BatchSummary, atomic_write_json, build_results, plural, summarise, write_results

log = get_logger("batch")

STATE_DIR = startup.STATE_DIR
RECORDS_DIR = "docs"
LOCK_FILE = startup.LOCK_FILE
OVERLAYS_DIR = "overlays"
_HASH_BLOCK = 1 << 20


class Progress(Protocol):
    """Receives progress events; the CLI shows a bar on a terminal, plain lines otherwise."""

    def start(self, total: int, done: int) -> None:
        """``done`` of ``total`` documents need no processing (unchanged, or unreadable)."""

    def advance(self, document: dict) -> None:
        """One document finished (its results.json record)."""

    def finish(self) -> None:
        """The batch is over (also when it stops early)."""


class LogProgress:
    """Plain progress lines on the log, at most every ``interval`` seconds."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.total = self.done = self.errors = 0
        self._last = 0.0

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self._last = time.monotonic()
        if total:
            log.info("%s, %d to process", plural(total, "document"), total - done)

    def advance(self, document: dict) -> None:
        self.done += 1
        self.errors += document.get("status") != "ok"
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            log.info("%d/%d documents done (%s)", self.done, self.total, plural(self.errors, "error"))

    def finish(self) -> None:
        pass


# Inputs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputDocument:
    """A document of this batch: ``file`` as results show it, ``path`` as workers open it."""

    file: str
    path: str
    error: Optional[str] = None  # known unreadable before any worker sees it

    @property
    def key(self) -> str:
        return hashlib.sha256(self.file.encode("utf-8")).hexdigest()


def display_name(path: str) -> str:
    """The path as given, made valid text (undecodable bytes in names are escaped)."""
    return os.path.normpath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class SkippedFile:
    """A file in a walked folder that is not a readable kind; named with ``-v``."""

    file: str
    reason: str


@dataclass
class CollectedInputs:
    """What the inputs hold: the documents in order, and what gave none."""

    documents: list[InputDocument]
    skipped: list[SkippedFile]  # files of other kinds in walked folders
    empty_folders: list[str]  # folders given (or matched) that hold no file at all
    unmatched: list[str]  # patterns that matched nothing

    def nothing_to_read(self) -> str:
        """The one-line usage error for inputs that hold no document: what was found and skipped."""
        parts = [f"{folder} holds no files" for folder in self.empty_folders]
        if self.skipped:
            kinds = Counter(Path(s.file).suffix.lower() or "no extension" for s in self.skipped)
            listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
            parts.append(f"{plural(len(self.skipped), 'file')} found, none of a readable kind (skipped {listed}; "
                         f"docsort reads {' '.join(sorted(SUPPORTED_SUFFIXES))})")
        parts += [f"no file matches {pattern}" for pattern in self.unmatched]
        return "no documents to read: " + "; ".join(parts or ["the inputs hold no files"])


def _is_pattern(item: str) -> bool:
    """A glob pattern docsort expands itself: quoted, or left unexpanded by a shell that matched nothing."""
    return any(char in item for char in "*?[") and not os.path.lexists(item)


def collect_documents(inputs: Sequence[str | os.PathLike], exclude: Iterable[Path] = ()) -> CollectedInputs:
    """The documents named by ``inputs``, in order, each once; and what gave no document.

    Folders are walked recursively in sorted order; hidden entries and ``exclude`` (the output
    folder) are left out; files of other kinds are skipped and counted. A named file is always
    a document, whatever its name, so that one that cannot be read gets its own error record.
    A glob pattern (``scans/*.png``, ``**`` for any depth) stands for the paths it matches, as
    if each had been named.
    """
    excluded = {os.path.realpath(p) for p in exclude}
    collected = CollectedInputs(documents=[], skipped=[], empty_folders=[], unmatched=[])
    seen: set[str] = set()

    def add(path: str, error: Optional[str] = None) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        collected.documents.append(InputDocument(file=display_name(path), path=os.path.abspath(path), error=error))

    def take(item: str) -> None:
        if not os.path.isdir(item):
            add(item)
            return
        if os.path.realpath(item) in excluded:
            return
        found = False
        for path, error in _walk(item, excluded, visited=set()):
            found = True
            if error is not None or Path(path).suffix.lower() in SUPPORTED_SUFFIXES:
                add(path, error)
            else:
                suffix = Path(path).suffix.lower() or "no extension"
                collected.skipped.append(SkippedFile(display_name(path), f"not a readable kind ({suffix})"))
        if not found:
            collected.empty_folders.append(display_name(item))

    for item in inputs:
        item = os.fspath(item)
        if not _is_pattern(item):
            take(item)
            continue
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            collected.unmatched.append(display_name(item))
        for match in matches:
            take(match)
    return collected


def _walk(folder: str, excluded: set[str], visited: set[str]) -> Iterable[tuple[str, Optional[str]]]:
    """Files under ``folder`` in sorted order; an unreadable sub-folder is yielded with its error.

    Symbolic links to folders are followed once (``visited`` stops link loops).
    """
    real = os.path.realpath(folder)
    if real in visited:
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        yield folder, f"cannot read folder: {exc.strerror or exc}"
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = os.path.join(folder, entry.name)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if os.path.realpath(path) not in excluded:
                yield from _walk(path, excluded, visited)
        else:
            yield path, None


def _content_sha256_or_none(path: str) -> Optional[str]:
    try:
        return content_sha256(path)
    except OSError:
        return None


def content_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


# The output folder -----------------------------------------------------------------------------


class OutputFolder:
    """The batch's output folder: its lock, its stored per-document results, its result files."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.state = self.root / STATE_DIR
        self.records = self.state / RECORDS_DIR
        self._lock_fd: Optional[int] = None

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise OutputNotWritableError(f"output {self.root} exists and is not a folder")
        try:
            self.records.mkdir(parents=True, exist_ok=True)
            probe = self.state / f".probe-{os.getpid()}{TEMP_SUFFIX}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputNotWritableError(
                f"cannot write to output folder {self.root}: {exc.strerror or exc}") from None

    def check_early(self, wait: bool) -> None:
        """What shows without writing anything, before the batch starts a worker or imports the
        pipeline: a file where the folder should be, a folder (or the nearest existing parent)
        this user may not write or on a read-only file system, and a folder another batch holds
        (taken now unless ``wait``). What only writing shows, ``prepare`` finds later."""
        fault = startup.output_fault(self.root)
        if fault is not None:
            raise OutputNotWritableError(fault)
        path = self.state / LOCK_FILE
        if wait or self._lock_fd is not None or not path.is_file():
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return  # ``lock`` says why
        self._take_lock(fd, path, wait=False)

    def lock(self, wait: bool) -> None:
        """Take the folder's lock; the kernel releases it when this process ends, however it ends."""
        if self._lock_fd is not None:  # taken by ``check_early``
            return
        path = self.state / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputNotWritableError(f"cannot create lock file {path}: {exc.strerror or exc}") from None
        self._take_lock(fd, path, wait)

    def _take_lock(self, fd: int, path: Path, wait: bool) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            if not wait:
                os.close(fd)
                raise OutputLockedError(
                    f"output folder {self.root} is in use by another docsort batch (pid {holder}); "
                    "use --wait to queue behind it") from None
            log.info("waiting for the docsort batch (pid %s) using %s to finish", holder, self.root)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            raise OutputNotWritableError(f"cannot lock {path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove_temp_files(self) -> None:
        """Temporary files of a run that was killed mid-write (never complete results)."""
        for folder in (self.root, self.records, self.root / OVERLAYS_DIR):
            if folder.is_dir():
                for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
                    leftover.unlink(missing_ok=True)

    def record_path(self, key: str) -> Path:
        return self.records / f"{key}.json"

    def load_record(self, key: str) -> Optional[dict]:
        try:
            return json.loads(self.record_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_record(self, key: str, fingerprint: str, document: dict) -> None:
        try:
            atomic_write_json(self.record_path(key), {"fingerprint": fingerprint, "document": document})
        except OSError as exc:
            raise OutputNotWritableError(
                f"cannot write to output folder {self.root}: {exc.strerror or exc}") from None


# Dependencies and run information --------------------------------------------------------------


def run_information() -> dict:
    """Versions, the model manifest and every network's hash for results.json; raises
    MissingDependencyError when Tesseract or a listed model is missing or not the listed file."""
    from docsort.reading import manifest
    from docsort.page.tesseract import check_tesseract

    tesseract = check_tesseract()
    models = manifest.shipped()
    models.verify()
    return {"docsort_version": __version__, "tesseract_version": tesseract, "manifest": models.describe(),
            "models": models.run_models()}


def resolve_accept_threshold(options: BatchOptions) -> float:
    if options.accept_threshold is not None:
        return float(options.accept_threshold)
    from docsort.cost.model import default_accept_threshold

    return float(default_accept_threshold(options.country if options.country or options.directory else None,
                                          directory=bool(options.country or options.directory)))


def pipeline_settings(options: BatchOptions, out: OutputFolder, accept_threshold: float):
    """The pipeline's own settings object, built from the batch options."""
    pipeline = importlib.import_module(options.pipeline)
    return pipeline.Settings(
        code_length=options.code_length,
        accept_threshold=accept_threshold,
        max_megapixels=options.max_megapixels,
        tesseract_timeout=options.page_timeout,
        overlays_dir=str((out.root / OVERLAYS_DIR).resolve()) if options.overlays else None,
        overlay_size=options.overlay_size,
        country=options.country,
        directory_file=options.directory,
    )


def settings_fingerprint(info: dict, run_settings) -> str:
    """Changes whenever a stored result could differ: versions, models or settings."""
    if dataclasses.is_dataclass(run_settings):
        described = dataclasses.asdict(run_settings)
    else:
        described = repr(run_settings)
    blob = json.dumps({"run": info, "settings": described}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# The run ---------------------------------------------------------------------------------------


def _consistent(result: DocumentResult) -> DocumentResult:
    """A document with a failed page is not fully processed: its status says so."""
    failed = [page for page in result.pages if page.error]
    if result.status == "ok" and failed:
        result.status = "error"
        result.error = f"page {failed[0].page}: {failed[0].error}"
        if len(failed) > 1:
            result.error += f" (and {len(failed) - 1} more failed pages)"
    if result.status == "error" and not result.error:
        result.error = "could not be processed"
    return result


def run_batch(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
              options: Optional[BatchOptions] = None, progress: Optional[Progress] = None) -> BatchSummary:
    """Process ``inputs`` into ``out_dir``; see the module docstring for the steps.

    Nothing is written until the inputs hold a document and the dependencies (and the Dask
    cluster, if one is named) are usable: a run that cannot start leaves no output folder.
    """
    options = options or BatchOptions()
    options.check()
    if not inputs:
        raise UsageError("no inputs given")
    progress = progress or LogProgress()
    out = OutputFolder(out_dir)
    collected = collect_documents(inputs, exclude=[out.root])
    _log_inputs(collected)
    if not collected.documents:
        raise UsageError(collected.nothing_to_read())
    startup.quick_checks(options.scheduler, options.scheduler_timeout)
    try:
        out.check_early(wait=options.wait)
        with _workers(options, collected.documents, out) as workers:
            accept_threshold = resolve_accept_threshold(options)
            run_settings = pipeline_settings(options, out, accept_threshold)
            if workers is not None:
                workers.configure(run_settings)
            run = _prepare_run(options, accept_threshold, run_settings)
            if workers is not None:
                workers.ready()  # a Dask cluster: connected, with a worker, the models loaded
            out.prepare()
            out.lock(wait=options.wait)
            return _run_locked(collected, out, options, progress, run, workers)
    finally:
        out.unlock()


def _log_inputs(collected: CollectedInputs) -> None:
    for skipped in collected.skipped:
        log.debug("skipped %s: %s", one_line(skipped.file), skipped.reason,
                  extra={"fields": {"file": skipped.file, "skipped": skipped.reason}})
    if collected.documents:
        for pattern in collected.unmatched:
            log.warning("no file matches %s", one_line(pattern))


@contextlib.contextmanager
def _workers(options: BatchOptions, documents: list[InputDocument], out: OutputFolder):
    """The executor, started as soon as the documents are listed, so that it starts up while this
    process builds the settings (sent to it by ``configure``), checks Tesseract and the models and
    looks for finished documents; closed when the batch ends, however it ends.

    Local workers load their models meanwhile. A Dask cluster (``--scheduler``) is connected, a
    worker waited for and the models loaded on a thread (``DaskExecutor.start``); ``ready`` then
    raises what makes the cluster unusable, before the output folder is touched. None when
    every document has a stored record and most likely no local worker is needed (workers then
    start when the tasks are known); documents known to be unreadable or missing need none.
    """
    if options.scheduler:
        executor = DaskExecutor(_processor(None, options), options.scheduler,
                                timeout=options.scheduler_timeout, connect_now=False)
    else:
        readable = [d for d in documents if not d.error and os.path.isfile(d.path)]
        if not readable or (not options.force and all(out.record_path(d.key).is_file() for d in readable)):
            yield None
            return
        jobs = min(options.jobs or default_jobs(), len(readable))
        executor = make_executor(_processor(None, options), jobs, None, options.document_timeout)
    try:
        executor.start()
        yield executor
    finally:
        executor.close()


def _processor(run_settings, options: BatchOptions) -> DocumentProcessor:
    return DocumentProcessor(settings=run_settings, pipeline=options.pipeline, env=startup.worker_env(),
                             log_config=current_config())


@dataclass(frozen=True)
class _Run:
    """What every document of this run is processed with, and its fingerprint."""

    info: dict  # versions and models, for results.json
    accept_threshold: float
    settings: object  # the pipeline's Settings
    fingerprint: str


def _run_locked(collected: CollectedInputs, out: OutputFolder, options: BatchOptions, progress: Progress,
                run: _Run, workers: Optional[Executor]) -> BatchSummary:
    out.remove_temp_files()
    documents = collected.documents
    finished, tasks, shas = _take_known_results(documents, out, run.fingerprint, options.force,
                                                options.overlay_size if options.overlays else None)
    reused = sum(1 for record in finished.values() if record.get("status") == "ok")
    progress.start(len(documents), len(finished))
    try:
        complete = _process(tasks, shas, out, run, options, progress, finished, workers)
    finally:
        progress.finish()
    ordered = [finished[d.key] for d in documents if d.key in finished]
    _remove_stale_overlays(out, documents, finished, shas, options)
    summary = summarise(ordered, skipped=len(collected.skipped), reused=reused)
    summary.complete = complete and len(ordered) == len(documents)
    summary.cost = _cost(ordered, options, run.accept_threshold)
    _write(out, ordered, summary, run, options)
    return summary


def _prepare_run(options: BatchOptions, accept_threshold: float, run_settings) -> _Run:
    info = run_information()
    directory = _directory_information(options)
    if directory is not None:  # results.json names it; a changed directory is a changed setting
        info["directory"] = directory
    return _Run(info, accept_threshold, run_settings, settings_fingerprint(info, run_settings))


def _directory_information(options: BatchOptions) -> Optional[dict]:
    """The postal directory of the run as ``results.json`` names it (a user's file with its hash)."""
    from docsort.page import directory as directories

    found = directories.load(options.country, options.directory)
    if found is None:
        return None
    described = found.describe()
    if options.directory:
        described["sha256"] = hashlib.sha256(Path(options.directory).read_bytes()).hexdigest()
    from docsort.reading import manifest
    from docsort.reading.digits.directory_reader import CALIBRATION_FILE

    calibration = manifest.models_dir() / CALIBRATION_FILE
    if calibration.is_file():  # how handwritten codes are read against it: a changed file is a changed reading
        described["reading"] = {"file": CALIBRATION_FILE,
                                "sha256": hashlib.sha256(calibration.read_bytes()).hexdigest()}
    return described


def _take_known_results(documents: list[InputDocument], out: OutputFolder, fingerprint: str, force: bool,
                        overlay_size: Optional[str] = None):
    """Results known without processing (reused, or unreadable inputs), the tasks left, the hashes.

    With overlays (``overlay_size``), a stored result is reused only while its overlays are there.
    """
    finished: dict[str, dict] = {}
    tasks: list[DocumentTask] = []
    shas: dict[str, Optional[str]] = {}
    for document in documents:
        record, shas[document.key] = _known_result(document, out, fingerprint, force)
        if isinstance(record, dict) and not _overlays_missing(out, document, record, overlay_size):
            finished[document.key] = record
        elif isinstance(record, DocumentResult):
            _log_document(_store(out, document.key, fingerprint, record, finished))
        else:
            tasks.append(DocumentTask(key=document.key, path=document.path, file=document.file))
    return finished, tasks, shas


def _process(tasks: list[DocumentTask], shas: dict, out: OutputFolder, run: _Run, options: BatchOptions,
             progress: Progress, finished: dict, workers: Optional[Executor] = None) -> bool:
    """Send the tasks to the executor, store each result as it comes; False if stopped early."""
    if options.scheduler and options.jobs:
        log.info("--jobs is ignored: documents go to the Dask cluster at %s", options.scheduler)
    if not tasks:
        return True
    if options.fail_fast and any(record["status"] != "ok" for record in finished.values()):
        return False
    if workers is not None:
        executor = contextlib.nullcontext(workers)  # started and closed by run_batch
    else:
        jobs = min(options.jobs or default_jobs(), len(tasks))
        executor = make_executor(_processor(run.settings, options), jobs, None, options.document_timeout)
    with executor as executor:
        for task, result in executor.run(tasks):
            if result.sha256 is None:  # the worker died or ran out of time before it read the file
                result.sha256 = shas[task.key] or _content_sha256_or_none(task.path)
            record = _store(out, task.key, run.fingerprint, _consistent(result), finished)
            _log_document(record)
            progress.advance(record)
            if options.fail_fast and record["status"] != "ok":
                return False
    return True


def _write(out: OutputFolder, ordered: list[dict], summary: BatchSummary, run: _Run, options: BatchOptions) -> None:
    header = dict(run.info)
    header["settings"] = {"code_length": options.code_length, "accept_threshold": run.accept_threshold,
                          "max_megapixels": options.max_megapixels}
    if options.country or options.directory:
        header["settings"].update(country=options.country, directory=options.directory)
    try:
        json_path, csv_path = write_results(out.root, build_results(ordered, summary, header))
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write results to {out.root}: {exc.strerror or exc}") from None
    summary.results_json, summary.results_csv = str(json_path), str(csv_path)
    log.info("%s; results in %s", summary.describe(), json_path)


def _known_result(document: InputDocument, out: OutputFolder, fingerprint: str, force: bool):
    """(what is known before processing, the content hash).

    What is known: a stored result dict to reuse, an error DocumentResult for an input that
    cannot be read at all, or None (the document has to be processed).
    """
    if document.error:
        return DocumentResult(file=document.file, sha256=None, status="error", error=document.error), None
    try:
        check_readable(document.path)
        stored = None if force else out.load_record(document.key)
        if not stored or stored.get("fingerprint") != fingerprint:
            # Nothing to compare the content with: the worker hashes the bytes it reads, and
            # the batch does not read every document once more before the first one starts.
            return None, None
        sha = content_sha256(document.path)
    except InputError as exc:
        return DocumentResult(file=document.file, sha256=None, status="error", error=str(exc)), None
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        return DocumentResult(file=document.file, sha256=None, status="error", error=message), None
    record = stored.get("document") or {}
    if record.get("status") == "ok" and record.get("sha256") == sha and record.get("file") == document.file:
        return record, sha
    return None, sha


def _store(out: OutputFolder, key: str, fingerprint: str, result: DocumentResult, finished: dict) -> dict:
    record = result.to_dict()
    out.save_record(key, fingerprint, record)
    finished[key] = record
    return record


def _overlays_missing(out: OutputFolder, document: InputDocument, record: dict, overlay_size: Optional[str]) -> bool:
    if overlay_size is None:
        return False
    from docsort.page.overlay import expected_files

    folder = out.root / OVERLAYS_DIR
    return any(not (folder / name).is_file() for name in expected_files(document.path, record, overlay_size))


def _remove_stale_overlays(out: OutputFolder, documents: list[InputDocument], finished: dict, shas: dict,
                           options: BatchOptions) -> None:
    """Delete the overlays of this run's documents that no longer show their result: all of them
    when the run has no --overlays, otherwise those of pages gone or of the other size.
    Documents not in this run (or not finished) keep theirs."""
    folder = out.root / OVERLAYS_DIR
    if not folder.is_dir():
        return
    from docsort.page.overlay import OverlayFolder, expected_files

    found = OverlayFolder(folder)
    removed = 0
    for document in documents:
        record = finished.get(document.key)
        if record is None:
            continue
        keep = expected_files(document.path, record, options.overlay_size) if options.overlays else set()
        try:
            removed += len(found.remove_stale(document.path, keep, shas.get(document.key)))
        except OSError as exc:
            log.warning("cannot remove an old overlay of %s: %s", one_line(document.file), exc.strerror or exc)
    if removed:
        log.info("removed %d old overlay file%s from %s", removed, "" if removed == 1 else "s", folder)


def _log_document(record: dict) -> None:
    name = one_line(record["file"])
    fields = {"file": record["file"], "status": record["status"]}
    if record["status"] != "ok":
        fields["error"] = record.get("error")
        log.warning("%s: %s", name, one_line(record.get("error") or ""), extra={"fields": fields})
        return
    codes = [p["postal_code"] for p in record["pages"] if p.get("postal_code")]
    fields["postal_codes"] = [c["value"] for c in codes]
    described = ", ".join(f"{c['value']} ({c['decision']})" for c in codes) or "no postal code"
    log.debug("%s: %s, %s", name, plural(len(record["pages"]), "page"), described, extra={"fields": fields})


def _cost(documents: list[dict], options: BatchOptions, accept_threshold: float) -> Optional[dict]:
    from docsort.cost.model import batch_projection

    if not documents:
        return None
    return batch_projection(documents, code_length=options.code_length, accept_threshold=accept_threshold)
