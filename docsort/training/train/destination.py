"""Fit the destination picker: which code candidate on a page is the destination's code.

Envelopes of every training layout (``samples`` with ``--layout mixed``: code first, last,
alone, prefixed; three block positions; printed and handwritten; sender blocks with their own
code) are generated with MNIST validation digits, read by the real pipeline up to the choice,
and every candidate it could choose is described by ``destination.candidate_features``. The
picker is a conditional logit over a page's candidates (the right one against the others),
fitted by Newton's method; pages with no right candidate teach nothing about choosing and are
left out. The held-out layout ``boxed`` is never drawn.

The fit is checked on a share of the pages it did not see, against the hand-set rule it
replaces, and written to ``models/destination.metrics.json`` (``picker``), which the manifest
ships.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from docsort.page import destination
from docsort.training.manifest import refresh as refresh_manifest

L2 = 0.1


def page_candidates(job: tuple[str, str]) -> Optional[list[tuple[list[float], bool, list[float]]]]:
    """One envelope read by the pipeline up to the choice: ``(features, right, rule)`` of every
    candidate the picker may choose, where ``rule`` is the hand-set rule's score."""
    from docsort.page import ingest
    from docsort.page import pipeline

    path, truth = job
    page = next(iter(ingest.iter_pages(path)), None)
    if page is None or not page.ok:
        return None
    found: list = []
    pipeline.read_page(page.image, page.number, pipeline.Settings(accept_threshold=0.5), candidates_out=found)
    candidates, lay, size = found[0]
    rows = []
    for c in candidates:
        if destination.in_zone(lay.blocks[lay.block_of[c.region]].bbox, size) is not None:
            continue
        rows.append((destination.candidate_features(c, lay, size), c.value == truth,
                     destination.rule_score(c, lay, size)))
    return rows


def fit_conditional_logit(pages: list[tuple[np.ndarray, int]], l2: float = L2, iterations: int = 50) -> np.ndarray:
    """Weights that make each page's right candidate (index) the likeliest of its candidates."""
    dims = pages[0][0].shape[1]
    w = np.zeros(dims)
    for _ in range(iterations):
        grad = l2 * w
        hess = l2 * np.eye(dims)
        for x, right in pages:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            mean = p @ x
            grad -= x[right] - mean
            hess += (x * p[:, None]).T @ x - np.outer(mean, mean)
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if np.abs(delta).max() < 1e-8:
            break
    return w


def _picked_right(pages: list[tuple[np.ndarray, int, np.ndarray]], w: Optional[np.ndarray]) -> float:
    """Share of pages whose pick is the right candidate: by ``w``, or by the rule (None)."""
    right = 0
    for x, r, rule in pages:
        scores = rule if w is None else x @ w
        right += int(np.argmax(scores) == r)
    return right / max(1, len(pages))


def fit_picker(handwriting: str, envelopes: int, seed: int, jobs: int = 1, check_share: float = 0.3,
               progress: Callable[[str], None] = lambda line: None) -> dict:
    """Generate, read, fit and check; the ``picker`` entry of ``destination.metrics.json``."""
    from docsort.training import samples

    with tempfile.TemporaryDirectory() as tmp:
        truths = samples.write_samples(tmp, count=envelopes, seed=seed, handwriting=handwriting,
                                       mnist_split="validation", image_format="png")
        progress(f"{len(truths)} envelopes written; reading them")
        work = [(str(Path(tmp) / t.file), t.destination_code) for t in truths]
        if jobs > 1:
            with get_context("spawn").Pool(jobs) as pool:
                read = pool.map(page_candidates, work, chunksize=4)
        else:
            read = [page_candidates(job) for job in work]
    pages, sources = [], []
    for truth, rows in zip(truths, read):
        if not rows or not any(right for _, right, _ in rows):
            continue
        x = np.array([f for f, _, _ in rows], float)
        pages.append((x, int(next(i for i, (_, right, _) in enumerate(rows) if right)),
                      np.array([r for _, _, r in rows], float)))
        sources.append(truth.destination_source)
    cut = int(len(pages) * (1.0 - check_share))
    fitted_on, checked_on = pages[:cut], pages[cut:]
    w_check = fit_conditional_logit([(x, r) for x, r, _ in fitted_on])
    w = fit_conditional_logit([(x, r) for x, r, _ in pages])
    several = [p for p in checked_on if len(p[0]) > 1]
    fit = {
        "envelopes": envelopes, "seed": seed, "layouts": list(samples.TRAINING_LAYOUTS),
        "digits": "MNIST validation digits", "pages_with_a_right_candidate": len(pages),
        "check": {"pages": len(checked_on), "pages_with_several_candidates": len(several),
                  "picked_right_fitted": round(_picked_right(checked_on, w_check), 4),
                  "picked_right_rule": round(_picked_right(checked_on, None), 4),
                  "fitted_on_pages": cut},
        "l2": L2,
    }
    progress(f"check on {len(checked_on)} unseen pages: fitted picker right {fit['check']['picked_right_fitted']:.2%}, "
             f"rule {fit['check']['picked_right_rule']:.2%}")
    return {"features": list(destination.PICK_FEATURES), "weights": [round(float(v), 6) for v in w], "fit": fit}


def write_picker(out: str | Path, picker: dict, command: str) -> None:
    picker["fit"].update(command=command, python=platform.python_version(),
                         date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), argv=" ".join(sys.argv[1:]))
    path = Path(out)
    path.write_text(json.dumps({"picker": picker}, indent=1) + "\n")
    refresh_manifest(path)
