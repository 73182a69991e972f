"""docsort for Python callers: the same batch as ``docsort process``, raising instead of exiting.

    from docsort.api import process
    summary = process(["scans/"], "out", jobs=2)
    if not summary.ok: ...

Failures that stop a batch raise ``docsort.errors.DocsortError`` subclasses (each carries the
exit code the command line would use); inputs that cannot be read do not raise: they are error
records in the results, counted in ``summary.errors``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

from docsort.batch.runner import BatchOptions, Progress, run_batch
from docsort.errors import UsageError
from docsort.batch.results import BatchSummary

__all__ = ["BatchOptions", "BatchSummary", "process"]


def process(inputs: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
            progress: Optional[Progress] = None, **options) -> BatchSummary:
    """Process files and folders into ``out_dir`` (results.json, results.csv).

    ``options`` are the fields of ``BatchOptions``: ``jobs``, ``scheduler``, ``scheduler_timeout``,
    ``code_length``, ``accept_threshold``, ``overlays``, ``overlay_size``, ``force``, ``fail_fast``, ``wait``,
    ``max_megapixels``, ``page_timeout``, ``document_timeout``.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    known = {f.name for f in dataclasses.fields(BatchOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown option(s) for process: {', '.join(unknown)}")
    return run_batch(list(inputs), out_dir, BatchOptions(**options), progress=progress)
