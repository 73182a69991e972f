"""Number fields in pre-printed frames as the printed/handwritten classifier sees them, by frame.

Fields of the training field families (``synth.fields``: underlines, boxes, combs, cells,
patterned papers), handwritten with MNIST validation digits and printed in the held-out fonts
of the training split: the share called right, for each frame, whole and (for combs and cells)
cut one cell at a time, as Tesseract cuts a code written one digit to a box. A frame is printed;
the hand inside it must still be called handwritten, and print inside it printed. The last
column is the share of lone cells at or above the pipeline's band of doubt
(``Settings.doubtful_handwriting``), where a cell still joins a handwritten neighbour: for
handwritten cells the share a code keeps, for printed ones the share that could join a hand
beside it. Run from the repository root:

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


def single_cells(drawn) -> list:
    """Each field in cells cut at every cell, its walls just inside the cut (deterministic)."""
    cuts = []
    for f in drawn:
        for a, b in f.cells:
            cuts.append(f.image[:, max(0, a - 1):min(f.image.shape[1], b + 1)])
    return cuts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--model", action="append", default=[],
                        help="A writing_type .keras or .onnx file to measure beside the shipped classifier (repeatable).")
    args = parser.parse_args()

    from docsort.page.pipeline import Settings
    from docsort.reading.writing_type import WritingTypeClassifier
    from docsort.training.datasets import mnist
    from docsort.training.synth import fields
    from docsort.training.synth.printed import font_split

    _, validation = mnist.train_validation_split(mnist.load(DATASETS / "mnist").train)
    rng = np.random.default_rng(args.seed)
    held_out_fonts = list(font_split(0).held_out)
    sets = {}
    for name, make in (("handwritten", lambda: fields.training_field(validation.images, validation.labels, rng)),
                       ("printed", lambda: fields.printed_field(held_out_fonts, rng))):
        drawn = [make() for _ in range(args.count)]
        cells = [f for f in drawn if f.cells]
        sets[name] = ([f.image for f in drawn], np.array([f.frame for f in drawn]), single_cells(cells))
    names = sorted(set(sets["handwritten"][1]) | set(sets["printed"][1]))
    print(f"{args.count} handwritten fields of the training families (MNIST validation digits) and {args.count} "
          f"printed ones (held-out fonts of the training split), seed {args.seed}: share called right")
    header = "classifier".ljust(34) + "class".ljust(12) + "all".rjust(8) + "".join(n.rjust(10) for n in names)
    doubt = Settings().doubtful_handwriting
    print(header + "one cell".rjust(12) + " " * 9 + f"cell p >= {doubt}")
    for label, model in [("shipped", None)] + [(m, m) for m in args.model]:
        classifier = WritingTypeClassifier(model, ensemble=False) if model else WritingTypeClassifier()
        for name, (crops, frames, cells) in sets.items():
            right = (classifier.p_handwritten(crops) >= 0.5) == (name == "handwritten")
            p_cells = classifier.p_handwritten(cells)
            cell_right = (p_cells >= 0.5) == (name == "handwritten")
            print(str(label)[-34:].ljust(34) + name.ljust(12) + f"{100 * right.mean():7.2f}%"
                  + "".join(f"{100 * right[frames == n].mean():9.1f}%" if (frames == n).any() else " " * 10
                            for n in names)
                  + f"{100 * cell_right.mean():10.2f}% of {len(cells)}"
                  + f"{100 * (p_cells >= doubt).mean():14.2f}%")


if __name__ == "__main__":
    sys.exit(main())
