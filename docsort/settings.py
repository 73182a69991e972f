"""Defaults every command shares, defined once: the command line shows them in ``--help``
without importing the pipeline, and the library uses the same values.

The environment variables docsort reads:

| variable | what it sets |
| --- | --- |
| ``DOCSORT_MODELS`` | folder of the model files (default: the shipped ``models/``) |
| ``DOCSORT_DATASETS`` | folder with ``mnist/``, ``dhsd/``, ``tesseract-pages/`` for ``train``, ``evaluate``, ``samples`` |
| ``DOCSORT_MNIST`` | the MNIST files alone (``train digits``, ``evaluate digits``) |
| ``DOCSORT_CACHE`` | where training keeps generated crops between runs, and postal directories their compact form |
| ``DOCSORT_TF_THREADS`` | threads per worker for the networks (set per worker by ``process``) |
"""

from __future__ import annotations

CODE_LENGTH = 5  # digits in a postal code (US ZIP, DE PLZ, FR code postal)
# The digit strings any command reads: a postal code of 1 (a district) to 12 digits, a number
# field (an amount, a house or customer number) as long.
CODE_LENGTH_MIN, CODE_LENGTH_MAX = 1, 12
PAGE_TIMEOUT_S = 60.0  # seconds Tesseract may spend on one page
SCHEDULER_TIMEOUT_S = 60.0  # connecting to a Dask scheduler and waiting for its first worker
MAX_MEGAPIXELS = 150.0  # 600 dpi A3 is about 70 MP; anything far beyond is not a scan


def check_code_length(value: int, option: str = "--code-length") -> int:
    """The one range for every ``--code-length``."""
    from docsort.errors import UsageError

    if not (isinstance(value, int) and CODE_LENGTH_MIN <= value <= CODE_LENGTH_MAX):
        raise UsageError(f"{option} must be between {CODE_LENGTH_MIN} and {CODE_LENGTH_MAX} digits (got {value})")
    return value
