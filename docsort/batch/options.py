"""The options of a batch run and their checks, apart from the runner so that the command line
can refuse a bad option before it loads the pipeline (a usage error answers at once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from docsort import settings
from docsort.errors import UsageError


@dataclass
class BatchOptions:
    """Options of a batch run, shared by the ``process`` command and ``docsort.api.process``."""

    jobs: Optional[int] = None  # local worker processes; None = all cores
    scheduler: Optional[str] = None  # Dask scheduler address; overrides jobs
    scheduler_timeout: float = settings.SCHEDULER_TIMEOUT_S  # to connect and find a first worker
    code_length: int = settings.CODE_LENGTH
    accept_threshold: Optional[float] = None  # None = the cost model's default
    overlays: bool = False
    overlay_size: str = "small"  # docsort.page.overlay.SIZES: reduced JPEG, or "full" (page-size PNG)
    force: bool = False
    fail_fast: bool = False
    wait: bool = False  # wait for another batch on the same output folder instead of failing
    max_megapixels: float = settings.MAX_MEGAPIXELS
    page_timeout: float = settings.PAGE_TIMEOUT_S  # Tesseract, per page
    document_timeout: float = settings.DOCUMENT_TIMEOUT_S  # a whole document, local workers
    pipeline: str = "docsort.page.pipeline"  # module with Settings, process_document, warm_up
    country: Optional[str] = None  # a postal directory (docsort.page.directory): only its codes are auto
    directory: Optional[str] = None  # a user's own directory file (CSV of code, place)

    def check(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1 (got {self.jobs})")
        settings.check_code_length(self.code_length)
        self.check_directory()
        if self.accept_threshold is not None and not 0.0 <= self.accept_threshold <= 1.0:
            raise UsageError(f"--accept-threshold must be between 0 and 1 (got {self.accept_threshold})")
        if self.overlay_size not in ("small", "full"):
            raise UsageError(f"--overlay-size must be small or full (got {self.overlay_size})")
        if not self.max_megapixels > 0:
            raise UsageError(f"--max-megapixels must be positive (got {self.max_megapixels})")
        if not self.page_timeout > 0:
            raise UsageError(f"--page-timeout must be positive (got {self.page_timeout:g})")
        if not self.document_timeout > 0:
            raise UsageError(f"document_timeout must be positive (got {self.document_timeout:g})")
        if not self.scheduler_timeout > 0:
            raise UsageError(f"--scheduler-timeout must be positive (got {self.scheduler_timeout:g})")

    def check_directory(self) -> None:
        """Load the postal directory now (a bad country or file is a usage error before anything
        is written); its code length is the batch's, and a different ``--code-length`` is refused."""
        if not self.country and not self.directory:
            return
        from docsort.page import directory as directories

        found = directories.load(self.country, self.directory)
        if found is None:
            return
        if self.country:
            self.country = found.country
        if self.directory:
            self.directory = str(Path(self.directory).expanduser().resolve())
        if self.code_length != found.length:
            if self.code_length != settings.CODE_LENGTH:
                raise UsageError(f"--code-length {self.code_length} does not fit the postal directory of "
                                 f"{found.name}, whose codes have {found.length} digits")
            self.code_length = found.length
