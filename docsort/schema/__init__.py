"""The JSON Schema of ``results.json``, shipped with the package so users can validate output."""

from __future__ import annotations

import functools
import json
from importlib import resources

RESULTS_SCHEMA = "results.schema.json"


@functools.lru_cache(maxsize=1)
def results_schema() -> dict:
    """The schema of ``results.json`` (JSON Schema draft 2020-12)."""
    return json.loads(resources.files(__package__).joinpath(RESULTS_SCHEMA).read_text(encoding="utf-8"))
