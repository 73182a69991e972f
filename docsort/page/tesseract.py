"""The one wrapper around Tesseract: words with their boxes, text and confidence.

Every Tesseract call in docsort goes through here, so there is one place that clamps its
OpenMP threads (workers are parallel processes; threads inside each would only fight for
the same cores), bounds its run time, and maps its failures to docsort's own errors:
Tesseract missing or broken is a ``MissingDependencyError`` (nothing can be processed), one
page that makes it hang or fail is an ``InputError`` (that document's record, the batch goes on).

Each process keeps one ``tesseract`` running and hands it page after page (its
``stream_filelist`` mode): starting Tesseract costs about 0.1 s of CPU (mostly building its
character ambiguity tables), as much as reading an envelope. A page that makes it hang or die
costs that page, and the next page starts a fresh one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from docsort.errors import InputError, MissingDependencyError
from docsort.settings import PAGE_TIMEOUT_S

# Tesseract is 8x slower with its default OpenMP threading when processes run in parallel.
os.environ["OMP_THREAD_LIMIT"] = "1"

# What Tesseract is told to leave out. ``tessedit_do_invert=0``: Tesseract 5 recognises every
# line it is unsure of a second time, inverted, in case it is white on black; envelopes carry
# no such text, and handwriting lines, always unsure, would pay twice.
CONFIG = ("-c", "tessedit_do_invert=0")
# Printed word boxes (ascender to descender) this tall are what Tesseract reads best; a page
# whose print is taller is reduced to it before Tesseract sees it (never enlarged). On the
# sample envelopes (word boxes 17-30 px, 1800 px wide) reading at 0.75 of that size already
# missed postal codes, so the target stays above what they hold.
READING_WORD_HEIGHT = 32.0
MIN_READING_WORDS = 4
MIN_READING_SCALE = 0.5

from docsort.batch.records import BBox


@dataclass(frozen=True)
class TesseractWord:
    """One word box from Tesseract's layout analysis, in page pixels."""

    bbox: BBox  # x, y, width, height
    text: str
    conf: float  # Tesseract's word confidence 0-100 (-1 when it recognised nothing)
    block: int
    paragraph: int
    line: int
    word: int

    @property
    def line_key(self) -> tuple[int, int, int]:
        """Identifies the text line this word belongs to (block, paragraph, line)."""
        return (self.block, self.paragraph, self.line)


def _pytesseract():
    try:
        import pytesseract
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("the Python package pytesseract is not installed") from exc
    return pytesseract


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str:
    """Tesseract's version string, e.g. ``5.3.0``; raises if Tesseract cannot run."""
    pytesseract = _pytesseract()
    try:
        return str(pytesseract.get_tesseract_version())
    except pytesseract.TesseractNotFoundError as exc:
        raise MissingDependencyError(
            "Tesseract is not installed or not on PATH (install the 'tesseract-ocr' package)"
        ) from exc
    except Exception as exc:
        raise MissingDependencyError(f"Tesseract cannot run: {_first_line(exc)}") from exc


def check_tesseract() -> str:
    """Fail early, before a batch starts, when Tesseract or its English data is missing."""
    version = tesseract_version()
    pytesseract = _pytesseract()
    try:
        languages = pytesseract.get_languages(config="")
    except Exception as exc:
        raise MissingDependencyError(f"Tesseract cannot list its languages: {_first_line(exc)}") from exc
    if "eng" not in languages:
        raise MissingDependencyError(
            "Tesseract's English data is missing (install the 'tesseract-ocr-eng' package)"
        )
    return version


def reading_scale(word_heights) -> float:
    """The factor (1 down to ``MIN_READING_SCALE``) that brings a page's printed words to
    ``READING_WORD_HEIGHT``.

    Tesseract's line recogniser sees every line at one fixed height whatever the scan's
    resolution, but its page analysis (thresholding, blob finding) costs per pixel: a 300 dpi
    scan read at the size its print needs costs less and reads as well. ``word_heights`` are
    the heights of the printed words on the page; a page with fewer than ``MIN_READING_WORDS``
    (a handwritten envelope, whose only "print" may be a stamp's picture) is read as it is.
    """
    heights = [h for h in word_heights if h > 0]
    if len(heights) < MIN_READING_WORDS:
        return 1.0
    return max(MIN_READING_SCALE, min(1.0, READING_WORD_HEIGHT / float(np.median(heights))))


def words(page: np.ndarray, timeout: float = PAGE_TIMEOUT_S, psm: int = 11, scale: float = 1.0,
          areas: Optional[Sequence[BBox]] = None) -> list[TesseractWord]:
    """All word boxes Tesseract finds on ``page`` (uint8 grey or BGR), in reading order.

    ``psm`` 11 (sparse text) suits envelopes, where address blocks, stamps and stray marks
    float on empty paper rather than forming columns. ``areas`` (boxes on ``page``; None: the
    whole page) are the parts worth reading, each handed over as a page of its own, all within
    one ``timeout``. ``scale`` (at most 1, see ``reading_scale``) reduces them before Tesseract
    reads them. The boxes are always in ``page``'s own pixels, and block numbers run on from one
    area to the next. Boxes with no text are kept out; handwriting often comes back as
    low-confidence junk words, which the pipeline judges by their pixels, not by Tesseract's text.
    """
    import cv2

    image = np.ascontiguousarray(page)
    if image.ndim not in (2, 3) or image.size == 0:
        raise InputError("page image is empty or has an unsupported shape")
    height, width = image.shape[:2]
    boxes = []
    for x, y, w, h in [(0, 0, width, height)] if areas is None else areas:
        x0, y0, x1, y1 = max(0, int(x)), max(0, int(y)), min(width, int(x + w)), min(height, int(y + h))
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    if not boxes:
        return []
    scale = min(1.0, float(scale))
    parts = []
    for x, y, w, h in boxes:
        part = image[y:y + h, x:x + w]
        if scale < 1.0:
            part = cv2.resize(part, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        parts.append(np.ascontiguousarray(part))

    found = []
    blocks = 0
    for (x, y, w, h), part, rows in zip(boxes, parts, _reader(int(psm)).read(parts, timeout)):
        sx, sy = w / part.shape[1], h / part.shape[0]
        last_block = 0
        for level, _, block, paragraph, line, word, left, top, bw, bh, conf, text in rows:
            last_block = max(last_block, int(block))
            text = text.strip()
            if level != "5" or not text or int(bw) <= 0 or int(bh) <= 0:
                continue
            x0, y0 = x + math.floor(int(left) * sx), y + math.floor(int(top) * sy)
            x1 = min(x + w, x + math.ceil((int(left) + int(bw)) * sx))
            y1 = min(y + h, y + math.ceil((int(top) + int(bh)) * sy))
            found.append(
                TesseractWord(
                    bbox=(x0, y0, max(1, x1 - x0), max(1, y1 - y0)),
                    text=text,
                    # Whole numbers, as pytesseract gave them when the confidence mappings were measured.
                    conf=float(int(float(conf))),
                    block=blocks + int(block),
                    paragraph=int(paragraph),
                    line=int(line),
                    word=int(word),
                )
            )
        blocks += last_block
    return found


class _Reader:
    """One ``tesseract`` process that reads page files named on its stdin, one after another.

    The images of one call are followed by a blank 8x8 end page: its TSV row (the page number
    after theirs) says that their rows are complete. They are on disk in the reader's folder
    only while Tesseract reads them.
    """

    END_SIZE = 8

    def __init__(self, psm: int):
        import cv2

        self.owner = os.getpid()
        _remove_stale_folders()
        self.folder = tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{self.owner}-")
        self.end_path = os.path.join(self.folder, "end.bmp")
        self.errors_path = os.path.join(self.folder, "stderr.txt")
        cv2.imwrite(self.end_path, np.full((self.END_SIZE, self.END_SIZE), 255, np.uint8))
        command = [_pytesseract().pytesseract.tesseract_cmd, "stdin", "stdout", "-l", "eng", "--psm", str(psm),
                   "-c", "stream_filelist=1", *CONFIG, "tsv"]
        # Appending, so the file can be emptied before each page while Tesseract writes to it.
        with open(self.errors_path, "ab") as errors:
            try:
                self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=errors, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
            except FileNotFoundError as exc:
                self.remove_folder()
                raise MissingDependencyError(
                    "Tesseract is not installed or not on PATH (install the 'tesseract-ocr' package)"
                ) from exc
            except OSError as exc:
                self.remove_folder()
                raise MissingDependencyError(f"Tesseract cannot run: {_first_line(exc)}") from exc
        self.pages = 0  # pages handed over so far, end pages included (Tesseract numbers from 1)
        self.pending = b""  # the start of an output line not complete yet
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_started(self) -> None:
        """Raise ``MissingDependencyError`` if Tesseract stopped as it started (no language data)."""
        if not self.alive():
            raise MissingDependencyError(f"Tesseract cannot start ({self.failure()}); is its English "
                                         "data installed (the 'tesseract-ocr-eng' package)?")

    def read(self, images: Sequence[np.ndarray], timeout: float) -> list[list[list[str]]]:
        """The TSV rows (as fields) of each image, all read within ``timeout``."""
        import cv2

        with self.lock:
            paths = [os.path.join(self.folder, f"page-{i}.bmp") for i in range(len(images))]
            try:
                for path, image in zip(paths, images):
                    if not cv2.imwrite(path, image):
                        raise InputError("page image cannot be handed to Tesseract")
                return self._rows(paths, timeout)
            finally:
                for path in paths:
                    with contextlib.suppress(OSError):
                        os.unlink(path)  # no scan of anyone's mail stays on disk

    def _rows(self, paths: list[str], timeout: float) -> list[list[list[str]]]:
        os.truncate(self.errors_path, 0)
        first, end = self.pages + 1, self.pages + len(paths) + 1
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write("".join(f"{path}\n" for path in [*paths, self.end_path]).encode())
            self.process.stdin.flush()
        except OSError:  # it died before taking the page
            raise InputError(f"Tesseract failed on this page: {self.failure()}") from None
        self.pages = end
        rows: list[list[list[str]]] = [[] for _ in paths]
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.stop()
                    raise InputError(f"Tesseract took longer than {timeout:g} s on this page")
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise InputError(f"Tesseract failed on this page: {self.failure()}")
                lines = (self.pending + chunk).split(b"\n")
                self.pending = lines.pop()
                done = False
                for line in lines:
                    fields = line.decode("utf-8", "replace").split("\t")
                    if len(fields) < 11 or not fields[1].isdigit():
                        continue  # the header, or an end page's remains
                    number = int(fields[1])
                    if first <= number < end:
                        rows[number - first].append(fields[:11] + ["\t".join(fields[11:])])
                    elif number == end:
                        done = True
                if done:
                    return rows

    def failure(self) -> str:
        """Why the process stopped: its last message, or how it ended."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.process.returncode
        try:
            with open(self.errors_path, encoding="utf-8", errors="replace") as fh:
                messages = [line.strip() for line in fh if line.strip()]
        except OSError:
            messages = []
        # Tesseract's progress lines say nothing about the failure.
        messages = [m for m in messages if not m.startswith(("Page ", "Estimating resolution", "Detected "))]
        if messages:
            return messages[-1][:200]
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass

    def close(self) -> None:
        """Let Tesseract finish (end of its file list), then remove the folder."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.stop()
        with contextlib.suppress(OSError):
            self.process.stdout.close()
        self.remove_folder()

    def remove_folder(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


_FOLDER_PREFIX = "docsort-tesseract-"
_readers: dict[int, _Reader] = {}
_readers_lock = threading.Lock()


def start_reader(psm: int = 11) -> _Reader:
    """Start this process's reader now (it loads its data while the caller goes on)."""
    return _reader(int(psm))


def _reader(psm: int) -> _Reader:
    """This process's reader for ``psm``: the running one, or a new one in place of one that
    stopped (after a failed page, which that page already paid for). A forked child never
    uses its parent's reader."""
    with _readers_lock:
        reader = _readers.get(psm)
        if reader is not None and (reader.owner != os.getpid() or not reader.alive()):
            if reader.owner == os.getpid():
                reader.close()
            reader = None
        if reader is None:
            reader = _readers[psm] = _Reader(psm)
        return reader


def _remove_stale_folders() -> None:
    """Folders of readers whose process is gone (a batch kills its workers when it is done)."""
    root = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(_FOLDER_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(_FOLDER_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def close_readers() -> None:
    """Stop this process's Tesseract readers (at exit; also for a caller that counts their CPU)."""
    with _readers_lock:
        for psm, reader in list(_readers.items()):
            if reader.owner == os.getpid():
                reader.close()
            del _readers[psm]


atexit.register(close_readers)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
