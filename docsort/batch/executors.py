"""Where documents are processed: local worker processes or a Dask cluster.

One task is one document. Both executors take the same ``DocumentProcessor`` (the pipeline
settings, picklable and small) and yield ``(task, DocumentResult)`` as documents finish; the
batch runner in the client process writes every result, so a local run and a cluster run leave
identical output.

Models are loaded once per worker process (``warm_up`` before the first document, kept in a
module-level cache, never pickled). Local workers may start before the run's settings are known
(``DocumentProcessor.settings`` None): they load the networks while the batch process still
prepares, and take the settings (``configure``) before they say "ready". Each worker runs Tesseract single-threaded
(``OMP_THREAD_LIMIT=1``) and runs the networks on ``DOCSORT_THREADS`` threads (read by
``docsort.reading.engine``; one unless the user sets it), so ``--jobs N`` uses N cores.

Local workers are managed here rather than by ``concurrent.futures``: a pool there is broken
for good when one worker dies, while here the document that worker held fails with a message,
a fresh worker takes its place and the other documents go on. A document that runs past
``document_timeout`` has its worker killed the same way, and so has a worker not ready within
``start_timeout`` (model loading that hangs). A worker that dies before it took the document sent
to it (the send fails, or it never says "started") has not begun it: the document goes back to
the queue. Workers that keep failing before their first document (``_STARTUP_FAILURES_ALLOWED`` + 1
in a row: dead, hung, or dead just after "ready") stop the batch with MissingDependencyError: the
machine cannot run them, and retrying would loop for ever.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Iterable, Iterator, Optional

from docsort import settings
from docsort.errors import DocsortError, InputError, MissingDependencyError, UsageError
from docsort.log import get_logger, native_stderr_silenced, one_line, setup_logging
from docsort.batch.records import DocumentResult

log = get_logger("executor")

DOCUMENTS_PER_WORKER = 500  # then the worker is replaced (long cron batches, slow memory growth)
_STARTUP_FAILURES_ALLOWED = 3
_POLL_S = 0.5


@dataclass(frozen=True)
class DocumentTask:
    """One document to process: ``path`` is what workers open, ``file`` what results show."""

    key: str
    path: str
    file: str


@dataclass(frozen=True)
class DocumentProcessor:
    """Everything a worker needs to process documents, sent once to each worker.

    ``pipeline`` names a module with ``process_document(path, settings) -> DocumentResult``
    and ``warm_up(settings)``.
    """

    settings: Any  # None: sent later (``LocalExecutor.configure``); the worker warms up without it
    pipeline: str = "docsort.page.pipeline"
    env: dict = field(default_factory=dict)
    log_config: dict = field(default_factory=dict)  # level and format of the batch's log

    def prepare_worker(self) -> None:
        """Thread limits and model loading, once per worker process."""
        for name, value in self.env.items():
            os.environ.setdefault(name, value)
        os.environ["OMP_THREAD_LIMIT"] = "1"
        key = (self.pipeline, repr(self.settings))
        if key not in _warm:
            importlib.import_module(self.pipeline).warm_up(self.settings)
            _warm.add(key)

    def process(self, task: DocumentTask) -> DocumentResult:
        """Process one document; only a missing dependency escapes, anything else is its record."""
        self.prepare_worker()
        pipeline = importlib.import_module(self.pipeline)
        try:
            result = pipeline.process_document(task.path, self.settings)
        except MissingDependencyError:
            raise
        except DocsortError as exc:
            result = error_result(task, str(exc))
        except Exception as exc:  # a bug must cost one document, not the batch
            log.debug("unexpected error on %s", one_line(task.file), exc_info=True)
            result = error_result(task, f"internal error: {type(exc).__name__}: {_first_line(exc)}")
        result.file = task.file
        return result


_warm: set = set()


def error_result(task: DocumentTask, message: str) -> DocumentResult:
    return DocumentResult(file=task.file, sha256=None, status="error", error=message)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Executor:
    """Runs document tasks somewhere and yields each result once, as it finishes."""

    def start(self) -> None:
        """Begin starting up now, before the run's settings are known (``configure``)."""

    def configure(self, run_settings) -> None:
        """The run's settings, for an executor started without them."""
        self.processor = dataclasses.replace(self.processor, settings=run_settings)

    def ready(self) -> None:
        """Wait until documents can be sent; raise what makes that impossible."""

    def run(self, tasks: Iterable[DocumentTask]) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop all work now (also on Ctrl-C); safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# Local worker processes ----------------------------------------------------------------------


def _set_parent_death_signal() -> None:
    """Linux: die with the batch process, so a killed batch leaves no worker behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn, processor: DocumentProcessor) -> None:
    """A local worker: warm up, then process one document per request until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch process's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _set_parent_death_signal()
    raw_allowed = _log_like_the_batch(processor.log_config)
    try:
        with native_stderr_silenced(not raw_allowed):
            processor.prepare_worker()
            if processor.settings is None:  # the networks are open; the run's settings follow
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                if message is None:
                    return
                _, run_settings, log_config = message
                if log_config != processor.log_config:  # an early worker, started before the options were parsed
                    _log_like_the_batch(log_config)
                processor = dataclasses.replace(processor, settings=run_settings, log_config=log_config)
                processor.prepare_worker()
    except DocsortError as exc:
        conn.send(("fatal", type(exc).__name__, str(exc)))
        return
    except Exception as exc:
        conn.send(("fatal", "MissingDependencyError", f"worker cannot start: {_first_line(exc)}"))
        return
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        task = request
        try:
            conn.send(("started", task.key))  # from here a death is this document's
        except (BrokenPipeError, OSError):
            return
        try:
            result = processor.process(task)
        except MissingDependencyError as exc:
            conn.send(("fatal", type(exc).__name__, str(exc)))
            return
        try:
            conn.send(("done", task.key, result))
        except (BrokenPipeError, OSError):
            return


def _log_like_the_batch(config: dict) -> bool:
    """Worker log lines look like the batch's; library chatter only shows with --verbose.

    Returns whether raw output of libraries may reach stderr (never in JSON-lines mode).
    """
    level = config.get("level", logging.INFO)
    json_lines = config.get("json_lines", False)
    setup_logging(level, json_lines=json_lines)
    raw_allowed = level <= logging.DEBUG and not json_lines
    if not raw_allowed:
        warnings.simplefilter("ignore")
    return raw_allowed


@contextlib.contextmanager
def _main_module_hidden(processor: DocumentProcessor):
    """A spawned worker first re-runs the caller's main module, unless it is hidden from it.

    A worker needs only the pipeline module, and re-running ``docsort``'s own command line
    (Typer, Rich, every command) costs each worker about 0.15 s; a script read from stdin cannot
    be re-run at all. The main module stays visible only when the pipeline or its settings are
    defined there.
    """
    main = sys.modules.get("__main__")
    if main is None or "__main__" in (processor.pipeline, type(processor.settings).__module__):
        yield
        return
    hidden = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(hidden)


@dataclass
class _Worker:
    process: Any
    conn: Any
    ready: bool = False
    task: Optional[DocumentTask] = None
    task_taken: bool = False  # the worker said "started": a death now is the document's fault
    started_at: float = 0.0
    documents_done: int = 0
    configured: bool = True  # it has the run's settings


def _how_it_ended(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exit status {exitcode}"


def _death_message(exitcode: Optional[int]) -> str:
    return f"the worker process died while reading this document ({_how_it_ended(exitcode)})"


class LocalExecutor(Executor):
    """``jobs`` worker processes on this machine, replaced when one dies or has done
    ``DOCUMENTS_PER_WORKER`` documents."""

    def __init__(self, processor: DocumentProcessor, jobs: int,
                 document_timeout: float = settings.DOCUMENT_TIMEOUT_S,
                 start_timeout: Optional[float] = None):
        """``start_timeout``: seconds a worker may take to get ready (None: ``$DOCSORT_WORKER_START_TIMEOUT``
        or ``settings.WORKER_START_TIMEOUT_S``)."""
        self.processor = processor
        self.jobs = max(1, int(jobs))
        self.document_timeout = document_timeout
        self.start_timeout = settings.worker_start_timeout() if start_timeout is None else start_timeout
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._startup_failures = 0

    def start(self) -> None:
        """Start the workers now, before the tasks are known, so they load their models while
        the batch prepares (``run`` starts them otherwise)."""
        for _ in range(self.jobs - len(self._workers)):
            self._start_worker()

    def configure(self, run_settings) -> None:
        """The run's settings, for workers started without them (and every later one)."""
        self.processor = dataclasses.replace(self.processor, settings=run_settings)
        for worker in self._workers:
            if not worker.configured:
                self._send_settings(worker)

    def _send_settings(self, worker: _Worker) -> None:
        try:
            worker.conn.send(("settings", self.processor.settings, self.processor.log_config))
        except (BrokenPipeError, OSError):
            pass  # it died: ``run`` finds out and starts another
        worker.configured = True

    def _start_worker(self) -> _Worker:
        worker = _adopt_early_worker(self.processor)
        if worker is not None:
            self._workers.append(worker)
            if self.processor.settings is not None:
                self._send_settings(worker)
            return worker
        return self._spawn_worker()

    def _spawn_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(child_conn, self.processor),
                                        name="docsort-worker", daemon=True)
        # Born with Ctrl-C ignored (an ignored signal stays ignored across exec, and Python then
        # installs no handler), so a Ctrl-C on the terminal cannot interrupt a worker, even while
        # it starts: only the batch process handles it.
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
        try:
            with _main_module_hidden(self.processor):
                process.start()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
        child_conn.close()
        worker = _Worker(process=process, conn=parent_conn, started_at=time.monotonic(),
                         configured=self.processor.settings is not None)
        self._workers.append(worker)
        return worker

    def _stop_worker(self, worker: _Worker, kill: bool = False) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        _stop(worker, kill)

    def run(self, tasks: Iterable[DocumentTask]) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        if self.processor.settings is None:
            raise RuntimeError("LocalExecutor.run before configure: the workers have no settings")
        pending = deque(tasks)
        if not pending:
            return
        for _ in range(min(self.jobs, len(pending)) - len(self._workers)):
            self._start_worker()
        while pending or any(w.task is not None for w in self._workers):
            if not self._workers:
                self._start_worker()
            sources = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            ready = wait(sources, timeout=_POLL_S)
            for worker in list(self._workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    yield from self._handle(worker, pending)
            yield from self._enforce_timeout(pending)

    def _handle(self, worker: _Worker, pending: deque) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        message = None
        try:
            if worker.conn.poll():
                message = worker.conn.recv()
        except (EOFError, OSError):
            message = None
        if message is None:
            if worker.process.is_alive():
                return
            yield from self._worker_died(worker, pending)
            return
        kind = message[0]
        if kind == "fatal":
            _, name, text = message
            raise (MissingDependencyError if name == "MissingDependencyError" else DocsortError)(text)
        if kind == "started":
            worker.task_taken = True
            if worker.documents_done == 0:
                self._startup_failures = 0  # the limit is on failures in a row, not over a long batch
            return
        if kind == "done":
            task = worker.task
            worker.task = None
            worker.task_taken = False
            worker.documents_done += 1
            if worker.documents_done >= DOCUMENTS_PER_WORKER and pending:
                self._stop_worker(worker, kill=True)  # a fresh process bounds memory creep
                self._start_worker()
                yield task, message[2]
                return
            # The next document first: the worker reads it while this one's record is written.
            worker.ready = True
            assigned = self._assign(worker, pending)
            yield task, message[2]
            if not assigned:
                yield from self._worker_died(worker, pending)
            return
        elif kind == "ready":
            log.debug("worker %d ready (models loaded) after %.1f s", worker.process.pid,
                      time.monotonic() - worker.started_at)
        worker.ready = True
        if not self._assign(worker, pending):
            yield from self._worker_died(worker, pending)

    def _assign(self, worker: _Worker, pending: deque) -> bool:
        """Send the worker the next document; False when the worker is gone (the send failed)."""
        if not pending:
            # Nothing left for it: a worker holds no state worth a graceful exit, and
            # TensorFlow's shutdown would cost seconds.
            self._stop_worker(worker, kill=True)
            return True
        worker.task = pending.popleft()
        worker.task_taken = False
        worker.started_at = time.monotonic()
        try:
            worker.conn.send(worker.task)
        except (BrokenPipeError, EOFError, OSError):
            return False  # it died after its last message; _worker_died puts the document back
        return True

    def _worker_died(self, worker: _Worker, pending: deque,
                     how: Optional[str] = None) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        """Fail the document the worker had begun, or put back the one it never took; count a
        worker that died before its first document as a failed start."""
        self._stop_worker(worker, kill=how is not None)
        how = how or _how_it_ended(worker.process.exitcode)
        task, worker.task = worker.task, None
        if task is not None and worker.task_taken:
            yield task, error_result(task, _death_message(worker.process.exitcode))
        else:
            if task is not None:
                pending.appendleft(task)
                log.debug("worker %d died before it took %s (%s); it goes to another worker",
                          worker.process.pid, one_line(task.file), how)
            if worker.documents_done == 0:
                self._startup_failures += 1
                if self._startup_failures > _STARTUP_FAILURES_ALLOWED:
                    raise MissingDependencyError(
                        f"worker processes cannot start: {self._startup_failures} in a row failed "
                        f"before their first document (the last {how})")
        if pending and len(self._workers) < self.jobs:
            self._start_worker()

    def _enforce_timeout(self, pending: deque) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        now = time.monotonic()
        for worker in list(self._workers):
            if not worker.ready and now - worker.started_at > self.start_timeout:
                log.info("a worker process was not ready after %g s (%s); stopped",
                         self.start_timeout, settings.WORKER_START_TIMEOUT_VAR)
                yield from self._worker_died(
                    worker, pending, how=f"was not ready within {self.start_timeout:g} s, "
                                         f"{settings.WORKER_START_TIMEOUT_VAR}")
                continue
            if worker.task is not None and now - worker.started_at > self.document_timeout:
                task = worker.task
                self._stop_worker(worker, kill=True)
                yield task, error_result(
                    task, f"processing took longer than {self.document_timeout:g} s; stopped")
                if pending and len(self._workers) < self.jobs:
                    self._start_worker()

    def close(self) -> None:
        for worker in list(self._workers):
            self._stop_worker(worker, kill=True)


def _stop(worker: _Worker, kill: bool = False) -> None:
    if kill and worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5)
    worker.conn.close()


# Workers started by ``start_early_worker``, each with the processor it was started with (no
# settings yet), until a LocalExecutor adopts it.
_early_workers: list[tuple[DocumentProcessor, _Worker]] = []


def start_early_worker(processor: DocumentProcessor) -> None:
    """Start a local worker before the batch that will use it exists (``docsort.batch.startup``).

    It loads its models and waits for its settings; the first LocalExecutor whose processor has
    the same pipeline and environment adopts it instead of starting one. One not adopted is
    stopped at exit (and dies with this process in any case).
    """
    worker = LocalExecutor(processor, 1)._spawn_worker()
    if not _early_workers:
        atexit.register(stop_early_workers)
    _early_workers.append((processor, worker))


def _adopt_early_worker(processor: DocumentProcessor) -> Optional[_Worker]:
    for i, (started_with, worker) in enumerate(_early_workers):
        if (started_with.pipeline, started_with.env) == (processor.pipeline, processor.env):
            del _early_workers[i]
            worker.configured = False  # its settings and the batch's log format follow
            return worker
    return None


def stop_early_workers() -> None:
    while _early_workers:
        _stop(_early_workers.pop()[1], kill=True)


# Dask ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fatal:
    message: str


_one_document_at_a_time = threading.Lock()


def _dask_documents(tasks: tuple[DocumentTask, ...], processor: DocumentProcessor):
    """A few documents on a Dask worker, one after the other: their results, or ``_Fatal``.

    A worker started with several threads still runs one document at a time (PDF rendering
    and the model cache are not thread-safe; use processes to scale)."""
    results = []
    for task in tasks:
        with _one_document_at_a_time:
            _match_dask_worker_threads()
            try:
                results.append(processor.process(task))
            except MissingDependencyError as exc:
                return _Fatal(str(exc))
    return results


MOST_DOCUMENTS_PER_DASK_TASK = 8
_DASK_TASKS_PER_THREAD_AHEAD = 4


def dask_task_sizes(documents: int, threads: int, most: int = MOST_DOCUMENTS_PER_DASK_TASK) -> list[int]:
    """How many documents each Dask task takes, in the order they are sent.

    Each task costs the scheduler and the client a few milliseconds, a tenth of what a
    document costs its worker; on a small cluster sharing its cores that is several per cent
    of a batch. Tasks therefore take up to ``most`` documents while many remain, and shrink to
    single documents towards the end (guided self-scheduling), so no worker idles while
    another finishes a large last task. 200 envelopes on two threads go as 44 tasks.
    """
    sizes = []
    remaining = documents
    per_round = _DASK_TASKS_PER_THREAD_AHEAD * max(1, threads)
    while remaining > 0:
        size = max(1, min(most, remaining // per_round))
        sizes.append(size)
        remaining -= size
    return sizes


def _match_dask_worker_threads(worker=None) -> None:
    """Run the models on as many threads as the Dask worker was given (``--nthreads``).

    Workers are separate processes the user started, often one per core; a model running on
    every core in each of them oversubscribes the machine (two single-thread workers on two
    cores ran about a fifth slower than ``--jobs 2``). ``DOCSORT_THREADS`` set by the user
    wins. ``worker``: the Dask worker, where ``get_worker`` cannot find it (``Client.run``)."""
    if settings.model_threads_set():
        return
    try:
        from distributed import get_worker

        threads = int((worker or get_worker()).state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return
    os.environ[settings.MODEL_THREADS_VAR] = str(max(1, threads))


def _dask_warm_up(processor: DocumentProcessor, dask_worker=None) -> Optional[str]:
    """Load the models on a worker before the first document (``Client.run`` passes ``dask_worker``)."""
    _match_dask_worker_threads(dask_worker)
    try:
        processor.prepare_worker()
    except DocsortError as exc:
        return str(exc)
    return None


def check_scheduler_reachable(address: str, timeout: float) -> None:
    """A one-line error at once when a tcp:// scheduler address is malformed or nothing listens
    there (Dask itself would retry until its timeout); a silent host fails at ``timeout``. Needs
    no Dask import, so a batch can check it before anything else."""
    import socket
    from urllib.parse import urlsplit

    full = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(full)
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise UsageError(f"not a Dask scheduler address: {address} (expected tcp://HOST:PORT)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.timeout:
        raise MissingDependencyError(
            f"cannot connect to the Dask scheduler at {address}: no answer within {timeout:g} s "
            "(--scheduler-timeout)") from None
    except OSError as exc:
        raise MissingDependencyError(
            f"cannot connect to the Dask scheduler at {address}: {exc.strerror or exc}") from None


def _connect(address: str, timeout: float):
    """A Dask client of the scheduler at ``address``, or a one-line error within ``timeout`` seconds.

    A tcp:// address where nothing listens fails at once; a silent host or a port that does not
    answer like a scheduler fails at ``timeout``.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise MissingDependencyError("dask.distributed is not installed") from exc
    deadline = time.monotonic() + timeout
    check_scheduler_reachable(address, timeout)
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.ERROR)  # rescheduling notes are routine
    remaining = max(1.0, deadline - time.monotonic())
    try:
        return Client(address, timeout=remaining, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise MissingDependencyError(f"cannot connect to the Dask scheduler at {address}: "
                                     f"{_first_line(exc)}") from exc
    except ValueError as exc:
        raise UsageError(f"not a Dask scheduler address: {address} ({_first_line(exc)})") from exc


class DaskExecutor(Executor):
    """Documents as tasks on an existing Dask cluster (``dask scheduler`` + ``dask worker``).

    Workers read the documents themselves, so the input paths must be readable by every
    worker under the same names (shared storage). A worker lost mid-task has its task
    rescheduled by Dask (``retries`` more covers exceptions); a document that keeps killing
    workers fails with a message once Dask gives up on it.
    """

    def __init__(self, processor: DocumentProcessor, address: str, retries: int = 2,
                 timeout: float = settings.SCHEDULER_TIMEOUT_S, connect_now: bool = True):
        """Connect, wait for a first worker and load the models on every worker, all within
        ``timeout`` seconds for the connection and the wait; raises MissingDependencyError when
        the cluster is not usable, so the batch can fail before it touches its output folder.
        ``connect_now`` False: that happens on a thread of its own from ``start``, and ``ready``
        waits for it."""
        self.processor = processor
        self.address = address
        self.retries = retries
        self.timeout = timeout
        self.client = None
        self._futures: list = []
        self._starting: Optional[threading.Thread] = None
        self._start_error: Optional[BaseException] = None
        self._warm_settings: Any = None
        self._closed = False
        self._lock = threading.Lock()
        if connect_now:
            self._connect_and_warm()
            self.ready()

    def start(self) -> None:
        """Import Dask, connect, wait for a worker and load the models on a thread of its own.

        Importing ``distributed`` alone takes about half a second and loading the models on the
        workers a quarter more: begun as soon as the documents are listed, as local workers are
        started, this overlaps the batch's own preparation instead of following it.
        """
        if self.client is None and self._starting is None:
            self._starting = threading.Thread(target=self._connect_in_background,
                                              name="docsort-dask-start", daemon=True)
            self._starting.start()

    def _connect_in_background(self) -> None:
        try:
            self._connect_and_warm()
        except BaseException as exc:  # re-raised by ``ready`` in the batch's thread
            self._start_error = exc

    def _connect_and_warm(self) -> None:
        deadline = time.monotonic() + self.timeout
        client = _connect(self.address, self.timeout)
        with self._lock:
            if self._closed:  # the batch ended (Ctrl-C) while this thread connected
                client.close()
                return
            self.client = client
        try:
            self._wait_for_a_worker(self.timeout, deadline)
            self.warm_up()
        except BaseException:
            self.close()
            raise

    def ready(self) -> None:
        """Wait for ``start``; raise what it met. Workers warmed before the run's settings were
        known warm again with them (the models stay loaded: a round trip of milliseconds), so a
        worker that cannot run these settings fails the batch before it writes anything."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            raise error
        if self.client is None:
            raise MissingDependencyError(f"not connected to the Dask scheduler at {self.address}")
        if self.processor.settings is not None and self._warm_settings is None:
            self.warm_up()

    def _wait_for_a_worker(self, timeout: float, deadline: float) -> None:
        workers = len(self.client.scheduler_info().get("workers") or {})
        if workers:
            log.info("documents go to the Dask cluster at %s (%d worker%s)", self.address, workers,
                     "" if workers == 1 else "s")
            return
        # A warning, so that even a quiet run says why it sits there.
        log.warning("connected to the Dask scheduler at %s; it has no workers yet, waiting up to %g s "
                    "for one (--scheduler-timeout)", self.address, timeout)
        try:
            self.client.wait_for_workers(1, timeout=max(0.1, deadline - time.monotonic()))
        except (TimeoutError, OSError):
            raise MissingDependencyError(
                f"no Dask worker joined the scheduler at {self.address} within {timeout:g} s "
                "(--scheduler-timeout)") from None
        log.info("a Dask worker joined the scheduler at %s", self.address)

    def warm_up(self) -> None:
        """Load models on every worker before any document is sent; fail early if one cannot."""
        processor = self.processor
        failures = self.client.run(_dask_warm_up, processor)
        for worker, message in sorted(failures.items()):
            if message:
                raise MissingDependencyError(f"Dask worker {worker}: {message}")
        self._warm_settings = processor.settings

    def run(self, tasks: Iterable[DocumentTask]) -> Iterator[tuple[DocumentTask, DocumentResult]]:
        from distributed import as_completed

        tasks = list(tasks)
        if not tasks:
            return
        self.ready()
        run_id = uuid.uuid4().hex[:12]
        threads = sum(self.client.nthreads().values())
        groups, start = [], 0
        for size in dask_task_sizes(len(tasks), threads):
            groups.append(tuple(tasks[start:start + size]))
            start += size
        # One graph for the whole batch: the scheduler takes one update instead of one per
        # task, and the processor is sent once. Keys sort in sending order, which is the order
        # the scheduler runs independent tasks in: the large groups first.
        keys = [f"docsort-{run_id}-{i:06d}-{group[0].key[:24]}" for i, group in enumerate(groups)]
        futures = self.client.map(_dask_documents, groups, processor=self.processor, key=keys,
                                  retries=self.retries, pure=False)
        by_key = {future.key: group for future, group in zip(futures, groups)}
        self._futures.extend(futures)
        # Results are fetched by the client's own thread as tasks finish, not one round trip
        # at a time by this one.
        finished = as_completed(futures, with_results=True, raise_errors=False, loop=self.client.loop)
        for future, outcome in finished:
            group = by_key.pop(future.key)
            done = future.status == "finished"
            future.release()
            if done:
                if isinstance(outcome, _Fatal):
                    raise MissingDependencyError(outcome.message)
                yield from zip(group, outcome)
                continue
            if len(group) > 1:
                # A document that kills its worker, or a task that keeps failing, must cost
                # that document only: its group goes again, one document per task.
                singles = self.client.map(_dask_documents, [(task,) for task in group],
                                          processor=self.processor, retries=self.retries, pure=False,
                                          key=[f"{future.key}-{j:02d}" for j in range(len(group))])
                by_key.update({single.key: (task,) for single, task in zip(singles, group)})
                self._futures.extend(singles)
                finished.update(singles)
                continue
            # KilledWorker, or an error after all retries
            exc = outcome[1] if isinstance(outcome, tuple) else outcome
            if type(exc).__name__ == "KilledWorker":
                message = "the worker process died while reading this document (on every Dask worker tried)"
            else:
                message = f"the Dask task failed: {type(exc).__name__}: {_first_line(exc)}"
            yield group[0], error_result(group[0], message)
        self._futures = []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self.client = self.client, None
        if client is None:
            return
        if self._futures:
            client.cancel(self._futures)
            self._futures = []
        client.close()


def make_executor(processor: DocumentProcessor, jobs: int, scheduler: Optional[str],
                  document_timeout: float = settings.DOCUMENT_TIMEOUT_S,
                  scheduler_timeout: float = settings.SCHEDULER_TIMEOUT_S) -> Executor:
    """Local workers, or a Dask cluster that is already connected, has a worker and loaded the models."""
    if scheduler:
        return DaskExecutor(processor, scheduler, timeout=scheduler_timeout)
    return LocalExecutor(processor, jobs, document_timeout=document_timeout)
