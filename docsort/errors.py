"""Exit codes and the exceptions that carry them.

The exit codes are a stable interface (cron jobs and sorting-line scripts branch on them);
the README publishes the table. Library code raises these exceptions; only the CLI exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL_ERROR = 1
    USAGE = 2
    INPUTS_FAILED = 3
    MISSING_DEPENDENCY = 4
    LOCKED = 5
    OUTPUT_NOT_WRITABLE = 6
    INTERRUPTED = 130


class DocsortError(Exception):
    """Base class: a failure with a one-line, human-readable message and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR


class UsageError(DocsortError):
    exit_code = ExitCode.USAGE


class InputError(DocsortError):
    """One input (file, page) cannot be read; the batch goes on and records it."""

    exit_code = ExitCode.INPUTS_FAILED


class MissingDependencyError(DocsortError):
    """Tesseract or a model file is missing or broken: nothing can be processed."""

    exit_code = ExitCode.MISSING_DEPENDENCY


class DatasetError(DocsortError):
    """A training/evaluation dataset is missing or corrupt."""

    exit_code = ExitCode.USAGE


class OutputLockedError(DocsortError):
    exit_code = ExitCode.LOCKED


class OutputNotWritableError(DocsortError):
    exit_code = ExitCode.OUTPUT_NOT_WRITABLE
