"""Writing a batch's results: ``results.json``, ``results.csv`` and the summary.

This is the one place that lays out the output files from document records (each record's own
layout comes from ``DocumentResult.to_dict``). Every file is written atomically: a temporary
file in the same folder, flushed to disk, then renamed over the old one, so a reader (or a run
that is killed half-way) sees either the previous complete file or the new complete file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

CSV_HEADER = ("file", "page", "status", "postal_code", "source", "confidence", "decision",
              "printed_crops", "handwritten_crops", "error")
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
# With a postal directory (--country / --directory), after the columns above.
CSV_DIRECTORY_COLUMNS = ("valid", "place", "place_read", "place_match", "written")
TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that no reader ever sees a partial file."""
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class BatchSummary:
    """What a batch did; ``results.json``'s ``summary`` plus where the files are.

    ``skipped`` counts files in walked folders that are not a readable kind; ``reused`` counts
    documents whose unchanged result was taken from an earlier run of the same output folder.
    Every page is one mail piece and goes either to automatic sorting (``auto``: a code at or
    above the accept threshold) or to a person (``manual``: a code below it, no code found
    (``no_code``) or a page that could not be read (``unreadable_pages``)), so
    ``auto + manual == pages``. ``postal_codes`` counts the pages where a code was found.
    """

    documents: int = 0
    pages: int = 0
    errors: int = 0
    skipped: int = 0
    reused: int = 0
    postal_codes: int = 0
    auto: int = 0
    manual: int = 0
    no_code: int = 0
    unreadable_pages: int = 0
    cost: Optional[dict] = None
    results_json: Optional[str] = None
    results_csv: Optional[str] = None
    complete: bool = True
    failed_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.complete

    def to_dict(self) -> dict:
        """The ``summary`` object of results.json."""
        keys = ("documents", "pages", "errors", "skipped", "reused", "postal_codes", "auto", "manual", "no_code",
                "unreadable_pages", "cost")
        data = asdict(self)
        return {key: data[key] for key in keys}

    def describe(self) -> str:
        """The end-of-run line: '3 documents, 3 pages: 1 auto, 2 manual (1 with no code found), ...'."""
        why = []
        if self.no_code:
            why.append(f"{self.no_code} with no code found")
        if self.unreadable_pages:
            why.append(f"{self.unreadable_pages} not readable")
        manual = f"{self.manual} manual" + (f" ({', '.join(why)})" if why else "")
        return (f"{plural(self.documents, 'document')}, {plural(self.pages, 'page')}: {self.auto} auto, {manual}, "
                f"{plural(self.errors, 'error')}, {plural(self.skipped, 'skipped file')}")


def plural(count: int, noun: str) -> str:
    """'1 document', '2 documents'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summarise(documents: Sequence[Mapping], skipped: int, reused: int) -> BatchSummary:
    """Counts over document dicts (as written in results.json)."""
    summary = BatchSummary(documents=len(documents), skipped=skipped, reused=reused)
    for document in documents:
        if document.get("status") != "ok":
            summary.errors += 1
            summary.failed_files.append(document.get("file", ""))
        for page in document.get("pages") or []:
            summary.pages += 1
            code = page.get("postal_code")
            summary.postal_codes += bool(code)
            if page.get("error"):
                summary.unreadable_pages += 1
            elif not code:
                summary.no_code += 1
            elif code.get("decision") == "auto":
                summary.auto += 1
                continue
            summary.manual += 1
    return summary


def build_results(documents: Sequence[Mapping], summary: BatchSummary, header: Mapping) -> dict:
    """The results.json object: run information, the documents in input order, the summary."""
    results = dict(header)
    results["documents"] = list(documents)
    results["summary"] = summary.to_dict()
    return results


def csv_rows(documents: Iterable[Mapping], directory: bool = False) -> Iterable[tuple]:
    """One row per page; one row (no page) per document that could not be read. With a postal
    ``directory`` each row ends with the code's ``CSV_DIRECTORY_COLUMNS``."""
    for document in documents:
        pages = document.get("pages") or []
        if not pages:
            yield (document.get("file"), "", document.get("status"), "", "", "", "", "", "",
                   document.get("error") or "") + (("",) * len(CSV_DIRECTORY_COLUMNS) if directory else ())
            continue
        for page in pages:
            crops = page.get("crops") or []
            code = page.get("postal_code") or {}
            page_error = page.get("error")
            confidence = code.get("confidence")
            checked = ()
            if directory:
                checked = tuple(_csv_value(code.get(name)) for name in CSV_DIRECTORY_COLUMNS)
            yield (
                document.get("file"),
                page.get("page"),
                "error" if page_error else "ok",
                code.get("value", ""),
                code.get("source", ""),
                "" if confidence is None else f"{confidence:.6f}",
                code.get("decision", ""),
                sum(1 for crop in crops if crop.get("kind") == "printed"),
                sum(1 for crop in crops if crop.get("kind") == "handwritten"),
                page_error or "",
            ) + checked


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_csv(documents: Iterable[Mapping], directory: bool = False) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER + (CSV_DIRECTORY_COLUMNS if directory else ()))
    writer.writerows(csv_rows(documents, directory))
    return buffer.getvalue().encode("utf-8")


def write_results(out_dir: Path, results: Mapping) -> tuple[Path, Path]:
    """Write results.json and results.csv atomically; returns their paths."""
    out_dir = Path(out_dir)
    json_path, csv_path = out_dir / RESULTS_JSON, out_dir / RESULTS_CSV
    atomic_write_json(json_path, results)
    atomic_write_bytes(csv_path, render_csv(results["documents"], directory=bool(results.get("directory"))))
    return json_path, csv_path
