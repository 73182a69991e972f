"""Logging for batch runs: everything on stderr, plain lines or JSON lines.

stdout is reserved for machine-readable output, so cron jobs can capture it cleanly; logs,
warnings and progress all go to stderr. ``--log-json`` writes one JSON object a line (for log
collectors); otherwise one plain line a message, with newlines in file names escaped so a line
is always one event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time

LOGGER_NAME = "docsort"

QUIET = logging.WARNING
NORMAL = logging.INFO
VERBOSE = logging.DEBUG


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def one_line(text: str) -> str:
    """A message (or file name) safe to print as a single log line."""
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"docsort: {prefix}{one_line(record.getMessage())}"
        if record.exc_info and record.levelno <= logging.DEBUG:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line; extra fields passed as ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now, so lines show above a live progress bar."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_config = {"level": NORMAL, "json_lines": False}


def current_config() -> dict:
    """The level and format set by ``setup_logging``, for worker processes to log the same way."""
    return dict(_config, level=logging.getLogger(LOGGER_NAME).getEffectiveLevel())


def setup_logging(level: int = NORMAL, json_lines: bool = False, stream=None) -> logging.Logger:
    """Configure the ``docsort`` logger once for this process (the CLI calls it)."""
    _config.update(level=level, json_lines=json_lines)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


@contextlib.contextmanager
def native_stderr_silenced(silence: bool = True):
    """Hide what native libraries print straight to file descriptor 2 (TensorFlow's start-up chatter)."""
    if not silence:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
