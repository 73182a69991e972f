"""Would a richer combination tell right codes from wrong ones better than the shipped one?

The shipped combination (``docsort.reading.digits.combine``) gives P(candidate right) from seven
inputs: a bias, each reader's log-odds of the candidate and which readers proposed it. This
reads the 5-digit codes it is fitted on (selection data only: MNIST validation digits, composed
as ``train field-combination`` composes them, in its shares of continental and pen-drawn hands,
and the destination fields the pipeline cuts from 600 envelopes of the training layouts), then
compares, by 5-fold cross-validation over fields, the seven inputs with richer sets:

- ``views``: how many of the whole-field reader's views read the candidate as their best path
  (all of them, none of them);
- ``segmenting``: the segmenting reader's least sure digit, and whether the readers proposed
  only one candidate;
- ``interactions``: all three readers proposing it, and the whole-field log-odds where it
  proposed it;
- ``clean split`` (instead of the three above): the segmenting reader's log-odds where it
  proposed the candidate and its split of the field was clean, one connected piece of ink a
  digit and none cut (``clean_split``): a strong digit model on digits written apart.

For each it prints, apart for envelope fields and composed codes, the share right, the log loss
of the chosen candidate's P, the shares right and wrong at P >= 0.9 and 0.95, and the share sent
right at the lowest threshold whose wrong share stays within 0.5 % and 1 %. No held-out family
is read.

    DOCSORT_THREADS=2 OMP_THREAD_LIMIT=1 python benchmarks/bench_combination_features.py \
        --data ../shared/datasets --cache runs/combination_rows.pkl
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

VARIANTS = ("shipped (7 inputs)", "+ views", "+ views, segmenting", "+ views, segmenting, interactions",
            "+ clean split")
CLEAN_SPLIT = len(VARIANTS) - 1
CODE_LENGTH = 5


def read_rows(data: str, envelopes: int, jobs: int) -> list:
    """Per field: (truth, 'composed' or 'envelope', [(candidate, shipped inputs, views proposing,
    least sure segmented digit, distinct proposals, clean split)])."""
    from docsort.reading.digits import combine
    from docsort.reading.digits import segmenting as digit_reader
    from docsort.reading.digits.ppocr import shared_reader as line_reader
    from docsort.reading.digits.strings import best_path, shared_reader
    from docsort.training.datasets import mnist
    from docsort.training.train import digit_strings as ds

    _, val = mnist.train_validation_split(mnist.load(str(Path(data) / "mnist")).train)
    # The codes of the shipped combination's fit: 2,000, seed 7, a quarter continental, a fifth pen-drawn.
    fields, truths = ds.combination_codes(val.images, val.labels, 2000, 7, CODE_LENGTH, 0.25, 0.2)
    cut, cut_truths = ds.envelope_fields(data, envelopes, 7001, jobs=jobs)
    inks = [digit_reader.ink_of(f) for f in fields] + list(cut)
    kinds = ["composed"] * len(fields) + ["envelope"] * len(cut)
    truths = list(truths) + list(cut_truths)
    rows = []
    for splits, whole, line, truth, kind in zip(digit_reader.analyse_fields(inks, CODE_LENGTH),
                                                shared_reader().read_inks(inks), line_reader().read_inks(inks),
                                                truths, kinds):
        proposed = combine.proposals(splits, whole, line, CODE_LENGTH)
        candidates = []
        for candidate in dict.fromkeys(proposed.values()):
            views = sum("".join(map(str, best_path(c)[0])) == candidate for c in whole.columns)
            least = (min(splits.reading.digit_confidences)
                     if proposed.get("segmented") == candidate and splits.reading.digit_confidences else 0.0)
            candidates.append((candidate, combine.candidate_features(splits, whole, line, candidate, proposed),
                               views, least, len(set(proposed.values())), clean_split(splits)))
        rows.append((truth, kind, candidates))
    return rows


def clean_split(splits) -> float:
    """1 when the segmenting reader's reading took each digit as one whole connected piece of
    ink (no piece cut, none joined to another), else 0."""
    field = splits.field
    if field is None or not splits.path:
        return 0.0
    pieces = []
    for s in splits.path:
        i, j = field.segments[s]
        own = {atom.component for atom in field.atoms[i:j]}
        if len(own) != 1:
            return 0.0
        pieces.append(own.pop())
    return float(len(set(pieces)) == len(pieces) == len({atom.component for atom in field.atoms}))


def inputs(candidate, variant: int, views_total: int = 3) -> np.ndarray:
    from docsort.reading.digits import combine

    _, shipped, views, least, distinct = candidate[:5]
    x = list(shipped)
    if variant == CLEAN_SPLIT:
        clean = candidate[5] if len(candidate) > 5 else 0.0
        by_segmented = shipped[4]
        return np.array(x + [clean * by_segmented, clean * by_segmented * shipped[1]], float)
    if variant >= 1:
        x += [float(views == views_total), float(views == 0)]
    if variant >= 2:
        x += [combine._logit(least) if least else 0.0, float(distinct == 1)]
    if variant >= 3:
        by_segmented, by_whole, by_line = shipped[4:7]
        x += [by_segmented * by_whole * by_line, shipped[2] * by_whole]
    return np.array(x, float)


def cross_validated(rows: list, variant: int, folds: int = 5) -> list[tuple[float, bool, str]]:
    """(P of the chosen candidate, right, kind) for every field, each from a fit without its fold."""
    from docsort.training.train.digit_strings import fit_logistic

    fold = np.random.default_rng(0).integers(0, folds, len(rows))
    out = []
    for f in range(folds):
        x, y, w = [], [], []
        for (truth, kind, candidates), k in zip(rows, fold):
            if k != f:
                for c in candidates:
                    x.append(inputs(c, variant))
                    y.append(float(c[0] == truth))
                    w.append(3.0 if kind == "envelope" else 1.0)  # as --envelope-weight 3
        weights = fit_logistic(np.array(x), np.array(y), np.array(w))
        for (truth, kind, candidates), k in zip(rows, fold):
            if k != f:
                continue
            if not candidates:
                out.append((0.0, False, kind))
                continue
            p, chosen = max((1 / (1 + math.exp(-float(inputs(c, variant) @ weights))), c[0]) for c in candidates)
            out.append((p, chosen == truth, kind))
    return out


def summary(results: list[tuple[float, bool, str]], kind: str) -> str:
    p = np.array([r[0] for r in results if r[2] == kind])
    right = np.array([r[1] for r in results if r[2] == kind])
    n = len(p)
    loss = -np.mean(np.where(right, np.log(np.clip(p, 1e-6, 1)), np.log(np.clip(1 - p, 1e-6, 1))))
    parts = [f"{kind} ({n}): right {100 * right.mean():.2f} %, log loss {loss:.4f}"]
    for threshold in (0.9, 0.95):
        sent = p >= threshold
        parts.append(f"at {threshold}: right {100 * np.mean(right & sent):.2f} / wrong {100 * np.mean(~right & sent):.2f} %")
    order = np.argsort(-p)
    wrong, right_sent = np.cumsum(~right[order]) / n, np.cumsum(right[order]) / n
    for cap in (0.005, 0.01):
        k = int(np.searchsorted(wrong, cap, side="right"))
        parts.append(f"wrong <= {100 * cap:g} %: right {100 * (right_sent[k - 1] if k else 0.0):.2f} %")
    return "; ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets", help="folder with mnist/ and DHSD data.csv")
    parser.add_argument("--envelopes", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="keep the readers' rows here and read them from here next time")
    args = parser.parse_args(argv)
    if args.cache and args.cache.is_file():
        rows = pickle.loads(args.cache.read_bytes())
    else:
        rows = read_rows(args.data, args.envelopes, args.jobs)
        if args.cache:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.cache.write_bytes(pickle.dumps(rows))
    for variant, name in enumerate(VARIANTS):
        results = cross_validated(rows, variant)
        print(f"{name}\n  {summary(results, 'envelope')}\n  {summary(results, 'composed')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
