"""The whole-field reader read in several views: which ink heights (and strokes, widths) to read at.

Reads validation strings (the 5,000 MNIST training digits held out of training, composed as the
reader's checkpoint strings are: touching 5-digit codes and fields of the training families, in
``--field-share``) with one whole-field network at each view alone, then with sets of views as
one ensemble (each view proposes its best path; a string's probability is the geometric mean of
the views' CTC probabilities: ``strings.StringReader.read_inks``), and prints the share read
exactly right. This is how ``strings.VIEWS`` was chosen; it reads no held-out family. With
``--model`` given more than once, the networks read as one ensemble: each set of views is read
by every network, and every network's views propose and weigh.

    python benchmarks/bench_string_views.py --data ../shared/datasets/mnist --count 1200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A view: (ink height in rows of 32, stroke change in px, width factor, slant: horizontal shift per row
# of height, positive leaning the tops right).
VIEWS = {"22": (22, 0, 1.0, 0.0), "24": (24, 0, 1.0, 0.0), "26": (26, 0, 1.0, 0.0), "28": (28, 0, 1.0, 0.0),
         "30": (30, 0, 1.0, 0.0), "24 thick": (24, 1, 1.0, 0.0), "24 thin": (24, -1, 1.0, 0.0),
         "24 narrow": (24, 0, 0.85, 0.0), "24 wide": (24, 0, 1.15, 0.0),
         "26 upright": (26, 0, 1.0, -0.2), "26 leaning": (26, 0, 1.0, 0.2)}
# The font-hand digits are the same for every run, so networks compare on them.
FONT_HANDS_SEED = 2029
SETS = (("22", "24", "26"), ("24", "26", "28"), ("26", "28", "30"), ("24", "26", "28", "30"), ("24", "24 thick", "24 thin"),
        ("24", "24 narrow", "24 wide"), ("24", "26 upright", "26 leaning"), ("24", "26", "28", "26 upright", "26 leaning"),
        ("24", "28", "26 upright", "26 leaning"),
        tuple(name for name in VIEWS if name not in ("28", "30")))


def view_strip(ink: np.ndarray, height: int, stroke: int, width: float, slant: float = 0.0) -> np.ndarray:
    from docsort.reading.digits import strings

    if slant:
        h, w = ink.shape
        shift = abs(slant) * h
        matrix = np.float32([[1, -slant, shift if slant > 0 else 0.0], [0, 1, 0]])
        ink = cv2.warpAffine(ink, matrix, (w + int(np.ceil(shift)), h), flags=cv2.INTER_LINEAR, borderValue=0)

    kernel = np.ones((2, 2), np.uint8)
    if stroke > 0:
        ink = cv2.dilate(ink, kernel)
    elif stroke < 0:
        ink = cv2.erode(ink, kernel)
    strip = strings.prepare(ink, height)
    if width != 1.0:
        strip = cv2.resize(strip, (max(8, int(strip.shape[1] * width)), strip.shape[0]), interpolation=cv2.INTER_AREA)
    return strip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/mnist", help="MNIST folder")
    parser.add_argument("--model", action="append", default=None,
                        help="whole-field network (repeat for an ensemble; default: the shipped one)")
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--field-share", type=float, default=0.6)
    parser.add_argument("--convention-share", type=float, default=0.0,
                        help="share of the strings written by continental writers (1s flagged, 7s crossed)")
    parser.add_argument("--pen-share", type=float, default=0.0,
                        help="share of the strings drawn by pen writers of many digit shapes (synth.pen_digits)")
    parser.add_argument("--font-hands", default=None, metavar="training|held-out|HAND",
                        help="every digit written in a handwriting font's hand (synth.font_hands) instead of "
                             "MNIST's: the training hands, the held-out ones no training or selection sees, or "
                             "one hand by name")
    args = parser.parse_args(argv)

    from docsort.reading.digits import strings
    from docsort.reading.digits.segmenting import ink_of
    from docsort.training.datasets import mnist
    from docsort.training.train.digit_strings import validation_fields

    _, val = mnist.train_validation_split(mnist.load(args.data).train)
    images = val.images
    if args.font_hands:
        from docsort.training.synth import font_hands

        every = {**font_hands.TRAINING_HANDS, **font_hands.HELD_OUT_HANDS}
        if args.font_hands not in ("training", "held-out", *every):
            parser.error(f"--font-hands takes training, held-out or one of {', '.join(every)}")
        one = args.font_hands in every
        which = ("training" if args.font_hands in font_hands.TRAINING_HANDS else "held-out") if one else args.font_hands
        hands = font_hands.hand_fonts(which)
        hands = {args.font_hands: hands[args.font_hands]} if one else hands
        images = font_hands.draw_like(val.labels, np.random.default_rng(FONT_HANDS_SEED), hands=hands)
    fields, truths = validation_fields(images, val.labels, args.count, args.field_share, args.convention_share,
                                       args.pen_share)
    inks = [ink_of(f).astype(np.float32) for f in fields]
    reader = strings.StringReader(args.model or strings.shipped_members()[:1], views=[24])
    columns = {}  # (network, view) -> per field column probabilities
    print(f"{len(truths)} validation strings; exactly right")
    for m, model in enumerate(reader.models):
        for name, view in VIEWS.items():
            start = time.perf_counter()
            columns[m, name] = reader.column_probabilities([view_strip(ink, *view) for ink in inks], model)
            seconds = (time.perf_counter() - start) / len(inks)
            right = np.mean([''.join(map(str, strings.best_path(c)[0])) == t
                             for c, t in zip(columns[m, name], truths)])
            print(f"  network {m} view {name:<10} {100 * right:5.1f} %   {1000 * seconds:.1f} ms a field")
    sets = [(m, views) for m in range(len(reader.models)) for views in SETS]
    if len(reader.models) > 1:
        sets += [(None, views) for views in SETS]
    for m, views in sets:
        nets = range(len(reader.models)) if m is None else [m]
        right = 0
        for i, truth in enumerate(truths):
            members = [columns[n, name][i] for n in nets for name in views]
            best, best_p = "", -1.0
            for probs in members:
                digits = strings.best_path(probs)[0]
                if digits and (p := strings.ensemble_probability(members, digits)) > best_p:
                    best, best_p = "".join(map(str, digits)), p
            right += best == truth
        who = "every network" if m is None else f"network {m}"
        print(f"  {who}, views {' + '.join(views):<60} {100 * right / len(truths):5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
