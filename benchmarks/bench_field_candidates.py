"""Where number fields are lost: no reader proposes the truth, or the combination passes it over.

``read-digits`` takes, of the readings its three readers propose (segmenting, whole-field,
line reader), the one the fitted combination finds most likely right (``reading.digits.combine``).
A field it misreads is lost in one of two places, and they call for different work:

- *candidates*: no reader proposes the truth. Each reader can also be asked for its next-best
  readings (a CTC prefix beam search over its column probabilities, ``--paths`` per member, view
  and reader); if the truth is among those, more candidates could find it;
- *choice*: the truth is a candidate, but the readers' probabilities rank it below the reading
  taken. Then the question is which reader prefers the truth, and whether any fit over their
  probabilities could follow it there.

For number fields of the training families in MNIST validation digits (``--fields``, selection
data: what the combination is fitted on) and for the held-out ``cheque`` family in MNIST test
digits (``--held-out``, seeded as ``bench_strings.py`` seeds it), this prints the share read
right, the share whose truth some reader proposes, the share whose truth is among the readers'
next-best paths, and for the misses whose truth is a candidate which readers rank it above the
reading taken. It then refits the shipped combination's inputs (``combine.candidate_features``)
on the first half of the selection fields with every next-best path as a candidate too, and
reads the second half and the held-out fields with that fit: whether more candidates pay, with
the readers as they are.

    python benchmarks/bench_field_candidates.py --data ../shared/datasets/mnist --fields 1200 --held-out 210
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from docsort.reading.digits.strings import BLANK  # noqa: E402


def next_best(probs: np.ndarray, paths: int, width: int = 8, branches: int = 3) -> list[str]:
    """The ``paths`` most probable digit strings of (T, 11) CTC column probabilities, by prefix
    beam search (``width`` prefixes kept, each extended by a column's ``branches`` likeliest digits)."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    beams: dict[tuple, tuple[float, float]] = {(): (1.0, 0.0)}  # prefix -> (P ending in blank, in its digit)
    for column in p:
        grown: dict[tuple, tuple[float, float]] = {}
        likeliest = np.argsort(column[:10])[::-1][:branches]
        for prefix, (blank, digit) in beams.items():
            b, d = grown.get(prefix, (0.0, 0.0))
            b += (blank + digit) * column[BLANK]
            if prefix:
                d += digit * column[prefix[-1]]
            grown[prefix] = (b, d)
            for c in map(int, likeliest):
                longer = prefix + (c,)
                b2, d2 = grown.get(longer, (0.0, 0.0))
                d2 += (blank if prefix and prefix[-1] == c else blank + digit) * column[c]
                grown[longer] = (b2, d2)
        beams = dict(sorted(grown.items(), key=lambda kv: -sum(kv[1]))[:width])
    ranked = sorted(beams.items(), key=lambda kv: -sum(kv[1]))
    return ["".join(map(str, prefix)) for prefix, _ in ranked if prefix][:paths]


def field_candidates(analysis, paths: int):
    """The readers' own proposals, and those with every reader's next-best paths added."""
    from docsort.reading.digits import combine

    proposed = combine.proposals(analysis.splits, analysis.whole, analysis.line, None)
    own = list(dict.fromkeys(proposed.values()))
    columns = list(analysis.whole.columns) + (list(analysis.line.columns) if analysis.line is not None else [])
    more = [s for cols in columns for s in next_best(cols, paths)]
    return proposed, own, list(dict.fromkeys(own + more))


def examine(name: str, inks, truths, paths: int) -> list:
    """Print where the set's fields are lost; return (candidates, features, truth, reading taken)
    for refitting."""
    from docsort.reading.digits import combine, confidence

    analyses = combine.analyse_fields(inks, None)
    calibration = confidence.shipped_calibration()
    answers = [confidence.judge(a, a, ink, None, calibration).reading.digits for a, ink in zip(analyses, inks)]
    counts = Counter()
    preferring = Counter()
    rows = []
    for a, truth, answer in zip(analyses, truths, answers):
        proposed, own, every = field_candidates(a, paths)
        taken = a.reading.digits
        counts["answer"] += answer == truth
        counts["right"] += taken == truth
        counts["not_a_number"] += taken == truth and not answer
        counts["proposed"] += truth in own
        counts["next_best"] += truth in every
        features = np.array([combine.candidate_features(a.splits, a.whole, a.line, c, proposed) for c in every])
        if taken != truth and truth in every and taken in every:
            t, k = every.index(truth), every.index(taken)
            above = [reader for i, reader in enumerate(combine.READERS) if features[t, 1 + i] > features[k, 1 + i]]
            preferring[", ".join(above) or "none"] += 1
        rows.append((every, features, truth, taken))
    n = len(truths)
    print(f"\n{name}: {n} fields")
    print(f"  read right by read-digits:                    {100 * counts['answer'] / n:5.1f} %")
    print(f"  read right by the combination:                {100 * counts['right'] / n:5.1f} %"
          f" ({counts['not_a_number']} of them judged no number by read-digits)")
    print(f"  truth proposed by some reader:                {100 * counts['proposed'] / n:5.1f} %")
    print(f"  truth among the readers' {paths} best paths too:   {100 * counts['next_best'] / n:5.1f} %")
    print("  misses whose truth is a candidate, by the readers that rank it above the reading taken:")
    for readers, k in preferring.most_common():
        print(f"    {readers:<24} {k}")
    return rows


def refit(fit_rows, sets: dict) -> None:
    """The combination's inputs refitted with every candidate; each set read with the fit."""
    from docsort.training.train.digit_strings import fit_logistic

    x = np.vstack([f for _, f, _, _ in fit_rows])
    y = np.concatenate([[float(c == t) for c in every] for every, _, t, _ in fit_rows])
    weights = fit_logistic(x, y)
    print("\nthe combination's inputs refitted on the first half with the next-best paths as candidates,")
    print("against the combination as shipped on the same fields (both before read-digits' number judgement):")
    for name, rows in sets.items():
        right = np.mean([every[int(np.argmax(f @ weights))] == t for every, f, t, _ in rows])
        shipped = np.mean([taken == t for _, _, t, taken in rows])
        print(f"  {name:<50} refitted {100 * right:5.1f} %, shipped {100 * shipped:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/mnist", help="folder with the MNIST IDX files")
    parser.add_argument("--fields", type=int, default=1200, help="training-family fields of validation digits")
    parser.add_argument("--held-out", type=int, default=210, help="held-out cheque fields of test digits")
    parser.add_argument("--paths", type=int, default=3, help="next-best paths per member, view and reader")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--held-out-seed", type=int, default=2031, help="bench_strings.py's seed")
    args = parser.parse_args()

    from docsort.reading.digits.segmenting import ink_of
    from docsort.training.datasets import mnist
    from docsort.training.synth import fields as field_synth
    from docsort.training.train.digit_strings import family_fields_for_fitting

    data = mnist.load(args.data)
    _, validation = mnist.train_validation_split(data.train)
    fields, truths = family_fields_for_fitting(validation.images, validation.labels, args.fields, args.seed)
    rows = examine("training families, MNIST validation digits (selection data)", [ink_of(f) for f in fields],
                   truths, args.paths)
    held = field_synth.held_out_fields(data.test.images, data.test.labels, args.held_out, args.held_out_seed)
    held_rows = examine(f"held-out family '{field_synth.HELD_OUT_FAMILY}', MNIST test digits",
                        [ink_of(f.image) for f in held], [f.digits for f in held], args.paths)
    half = len(rows) // 2
    refit(rows[:half], {"training families, second half (selection data)": rows[half:],
                        f"held-out '{field_synth.HELD_OUT_FAMILY}'": held_rows})


if __name__ == "__main__":
    main()
