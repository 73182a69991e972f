"""Handwritten number fields as the printed/handwritten classifier sees them, by pre-printed frame.

Fields of the training field families (``synth.fields.training_field``: underlines, boxes, combs,
cells, patterned papers) written with MNIST validation digits: the share called handwritten, for
each frame. A frame is printed; the hand inside it must still be called handwritten. Run from the
repository root:

    python benchmarks/bench_writing_type_fields.py [--count 1500] [--model FILE ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DOCSORT_DATASETS", REPO.parent / "shared" / "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--model", action="append", default=[],
                        help="A writing_type .keras or .onnx file to measure beside the shipped classifier (repeatable).")
    args = parser.parse_args()

    from docsort.reading.writing_type import WritingTypeClassifier
    from docsort.training.datasets import mnist
    from docsort.training.synth import fields

    _, validation = mnist.train_validation_split(mnist.load(DATASETS / "mnist").train)
    rng = np.random.default_rng(args.seed)
    drawn = [fields.training_field(validation.images, validation.labels, rng) for _ in range(args.count)]
    crops = [f.image for f in drawn]
    frames = np.array([f.frame for f in drawn])
    names = sorted(set(frames))
    print(f"{args.count} handwritten fields of the training families (MNIST validation digits), seed {args.seed}")
    print("classifier".ljust(40) + "all".rjust(9) + "".join(f"{n} ({(frames == n).sum()})".rjust(16) for n in names))
    for label, model in [("shipped", None)] + [(m, m) for m in args.model]:
        classifier = WritingTypeClassifier(model, ensemble=False) if model else WritingTypeClassifier()
        handwritten = classifier.p_handwritten(crops) >= 0.5
        print(str(label)[-40:].ljust(40) + f"{100 * handwritten.mean():8.2f}%"
              + "".join(f"{100 * handwritten[frames == n].mean():15.1f}%" for n in names))


if __name__ == "__main__":
    sys.exit(main())
