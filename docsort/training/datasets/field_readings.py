"""Fields read by the shipped number-field readers, as ``read-digits`` reads them: per field the
features both readers give and what they read, without a code length and with the one asked.

These rows are the data set of the field confidence: ``train field-calibration`` fits on the
rows of fields it composed from validation digits, ``evaluate digits`` measures on the rows of
fields of test digits.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def read_for_calibration(job: tuple[list[np.ndarray], list[Optional[int]]]) -> list[dict]:
    """Read fields as ``read-digits`` does, at their own length and, where given, at the asked
    length; per field the features of both models and what was read (small, picklable rows)."""
    from docsort.reading.digits import confidence as field_confidence
    from docsort.reading.digits import combine
    from docsort.reading.digits.strings import shared_reader

    fields, code_lengths = job
    inks = [combine.as_ink(f) for f in fields]
    wholes = shared_reader().read_inks(inks)
    free = combine.analyse_fields(inks, None, wholes=wholes)
    lines = [a.line for a in free] if free and free[0].line is not None else None
    rows = [{"number": field_confidence.number_features(a, ink), "read": a.reading.digits,
             "combined": a.reading.confidence,
             "right": field_confidence.right_features(a, len(a.reading.digits), None)}
            for a, ink in zip(free, inks)]
    for length in sorted({n for n in code_lengths if n}):
        chosen = [i for i, n in enumerate(code_lengths) if n == length]
        read = combine.analyse_fields([inks[i] for i in chosen], length, wholes=[wholes[i] for i in chosen],
                                      lines=[lines[i] for i in chosen] if lines else None)
        for i, a in zip(chosen, read):
            rows[i]["known"] = {"length": length, "read": a.reading.digits, "combined": a.reading.confidence,
                                "right": field_confidence.right_features(a, len(free[i].reading.digits), length)}
    return rows


def read_all(fields: list[np.ndarray], code_lengths: list[Optional[int]], jobs: int = 1, progress=None,
             chunk: int = 50) -> list[dict]:
    """``read_for_calibration`` over many fields, in ``jobs`` worker processes."""
    from multiprocessing import get_context

    say = progress or (lambda line: None)
    parts = [(fields[k:k + chunk], code_lengths[k:k + chunk]) for k in range(0, len(fields), chunk)]
    rows: list[dict] = []
    if jobs > 1:
        with get_context("spawn").Pool(jobs) as pool:
            for part in pool.imap(read_for_calibration, parts):
                rows.extend(part)
                say(f"read {len(rows)}/{len(fields)} fields")
    else:
        for part in parts:
            rows.extend(read_for_calibration(part))
            say(f"read {len(rows)}/{len(fields)} fields")
    return rows
