"""Number fields as people write them: ``read-digits`` next to Tesseract alone and RapidOCR.

Real fields carry separators (``1,234.50``, ``12.03.2024``, ``555-0134``), marks (``$``, ``***``,
``=``), printed underlines, boxes and combs, patterned paper and every kind of pen; the fields
here are composed of real MNIST test digits by ``synth.fields`` (plain digit strings are
``bench_read_digits.py``'s). Three sections, in one process:

1. The held-out family (``synth.fields.HELD_OUT_FAMILY``: cheque amounts on rosette guilloche
   paper, often in felt tip; no training or fit sees it), lengths 3-9 in turn: the share read
   exactly right (the digits and nothing else) by ``read-digits`` (the command's own code path:
   each field written to a PNG, read back with ``ingest.read_image``, all read by
   ``confidence.read_number_fields`` in one batch, no ``--code-length``), by Tesseract alone
   (``--psm 7``, digits whitelist) and by RapidOCR (its text with non-digits removed; called
   as by default, detection then recognition, and recognition alone on the crop as one line),
   per length and per condition, and seconds per string (one thread each).
2. The same per training family: MNIST test digits, but families the generator trains on, so
   not a held-out measure.
3. Continental writers (``--continental``): fields of the training families and plain 5-digit
   codes, MNIST test digits with every 1 written with the up-stroke and most 7s crossed
   (``synth.digit_styles``), as much of the world writes them and MNIST's writers never do.
   The convention is a training option (``--convention-share``), so not a held-out measure.
   Pen-drawn hands (``--pen``) likewise: digits drawn by ``synth.pen_digits`` in shapes MNIST's
   writers did not use (open 4s, hooked or upright 9s, looped 2s, flat-topped 3s, slashed 0s),
   a training option (``--pen-share``) drawn here on a seed of its own.
   Font hands (``--font-hands``): digits in the hands of real people digitised as handwriting
   fonts (``synth.font_hands``), the *held-out* writers only, each field by one writer: a
   held-out measure of hands, with each writer's fields apart.
4. Not a code: words of DHSD's held-out writers given to ``read-digits --code-length 5``: the
   share read as a code with confidence >= 0.5 and >= the accept threshold ``process`` runs at
   (the ``optimal`` threshold of ``models/digits.tradeoff.json``).

    python benchmarks/bench_strings.py --data ../shared/datasets --count 1000 --family-count 100

``--keep DIR`` keeps the held-out fields as PNG files with a ``truth.csv`` (file, digits, text as
written, conditions, each reader's digits) to run ``docsort read-digits`` on by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
os.environ.setdefault("DOCSORT_TF_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

READERS = ("docsort", "docsort_whole", "ppocr_digits", "tesseract", "rapidocr", "rapidocr_line")
READER_NAMES = {"docsort": "docsort read-digits", "tesseract": "Tesseract alone (psm 7, digits)",
                "rapidocr": "RapidOCR (detection + recognition)", "rapidocr_line": "RapidOCR (recognition, one line)",
                "docsort_whole": "docsort's whole-field networks alone (docsort.reading.digits.strings)",
                "ppocr_digits": "PP-OCR recogniser over digits alone (docsort.reading.digits.ppocr)"}
# RapidOCR's detection costs over a second a string; --no-detection leaves that reader out.
DETECTION = True
CONDITIONS = ("pen", "frame", "separators", "marks", "touching", "broken", "raised cents")


def read_fields(fields, folder: Path, peers: bool) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Each reader's digits for each field and its seconds per field (reading the file included)."""
    from docsort.page.ingest import read_image
    from docsort.reading.digits.confidence import read_number_fields

    paths = []
    for i, f in enumerate(fields):
        paths.append(folder / f"field_{i:04d}.png")
        cv2.imwrite(str(paths[-1]), f.image)
    reads: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    reads["docsort"] = [a.reading.digits for a in read_number_fields([read_image(p) for p in paths])]
    seconds["docsort"] = (time.perf_counter() - start) / len(paths)
    from docsort.reading.digits import ppocr, strings
    from docsort.reading.digits.combine import as_ink

    for name, reader in (("docsort_whole", strings.shared_reader()), ("ppocr_digits", ppocr.shared_reader())):
        start = time.perf_counter()
        reads[name] = [r.digits for r in reader.read_inks([as_ink(read_image(p)) for p in paths])]
        seconds[name] = (time.perf_counter() - start) / len(paths)
    if not peers:
        return reads, seconds
    from peers import rapidocr_string, tesseract_string

    peer_readers = [("tesseract", tesseract_string), ("rapidocr_line", lambda p: rapidocr_string(p, detect=False))]
    if DETECTION:
        peer_readers.insert(1, ("rapidocr", lambda p: rapidocr_string(p, detect=True)))
    for name, read in peer_readers:
        start = time.perf_counter()
        reads[name] = [read(str(p)).digits for p in paths]
        seconds[name] = (time.perf_counter() - start) / len(paths)
    return reads, seconds


def warm_up(peers: bool) -> None:
    """Load every model before a clock runs."""
    from docsort.reading.digits.confidence import read_number_fields

    page = np.full((60, 200), 255, np.uint8)
    cv2.putText(page, "1234", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 0, 3)
    read_number_fields([page])
    if peers:
        from peers import rapidocr_string, tesseract_string

        from docsort.reading.digits import ppocr

        ppocr.shared_reader()
        rapidocr_string(page, detect=True)
        rapidocr_string(page, detect=False)
        tesseract_string(page)


def share(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def breakdown(fields, reads: dict[str, list[str]], key) -> dict[str, dict]:
    """Exactly right per reader for each value of ``key(field)``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(fields):
        groups[str(key(f))].append(i)
    return {value: {"n": len(idx), **{r: share(reads[r][i] == fields[i].digits for i in idx) for r in reads}}
            for value, idx in sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0]))}


def table(title: str, rows: dict[str, dict], readers) -> str:
    lines = [f"| {title} | n | " + " | ".join(READER_NAMES[r] for r in readers) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in readers) + " |"]
    for value, row in rows.items():
        lines.append(f"| {value} | {row['n']} | " + " | ".join(f"{100 * row[r]:.1f} %" for r in readers) + " |")
    return "\n".join(lines)


def held_out(args, test, peers: bool) -> dict:
    from docsort.training.synth import fields as field_synth

    fields = field_synth.held_out_fields(test.images, test.labels, args.count, args.seed)
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        reads, seconds = read_fields(fields, folder, peers)
    if keep:
        with (keep / "truth.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "digits", "text", *fields[0].conditions(), *(f"read_{r}" for r in reads)])
            for i, f in enumerate(fields):
                writer.writerow([f"field_{i:04d}.png", f.digits, f.text, *f.conditions().values(),
                                 *(reads[r][i] for r in reads)])
    readers = [r for r in READERS if r in reads]
    return {
        "family": field_synth.HELD_OUT_FAMILY, "n": len(fields), "seed": args.seed, "digits": "MNIST test",
        "exact": {r: share(a == f.digits for a, f in zip(reads[r], fields)) for r in readers},
        "seconds_per_string": {r: round(seconds[r], 4) for r in readers},
        "by_length": breakdown(fields, reads, lambda f: len(f.digits)),
        "by_condition": {name: breakdown(fields, reads, lambda f, name=name: f.conditions()[name])
                         for name in CONDITIONS},
        "docsort_failures": [{"digits": f.digits, "text": f.text, "read": reads["docsort"][i]}
                             for i, f in enumerate(fields) if reads["docsort"][i] != f.digits][:50],
    }


def training_families(args, test, peers: bool) -> dict:
    from docsort.training.synth import fields as field_synth

    out = {}
    for n, family in enumerate(field_synth.TRAINING_FAMILIES):
        fields = field_synth.family_fields(family, test.images, test.labels, args.family_count,
                                           args.seed + 1 + n, lengths=range(3, 10))
        with tempfile.TemporaryDirectory() as tmp:
            reads, _ = read_fields(fields, Path(tmp), peers)
        out[f"{family} (training family)"] = {
            "n": len(fields), **{r: share(a == f.digits for a, f in zip(reads[r], fields)) for r in reads}}
    return out


def continental(args, test, peers: bool) -> dict:
    """Plain 5-digit codes and training-family fields (lengths 3-9) from the test digits with
    every 1 and 7 restyled as continental writers write them; with a 1 or 7 apart."""
    import numpy as np

    from docsort.training.synth import digit_styles

    rng = np.random.default_rng(args.seed + 50)
    images = digit_styles.restyle_many(test.images, test.labels, rng, share=1.0)
    return other_hands(images, test.labels, args.continental, rng, peers, "17")


def pen_hands(args, test, peers: bool) -> dict:
    """Plain 5-digit codes and training-family fields (lengths 3-9) of pen-drawn digits
    (``synth.pen_digits``), a writer of their own for each digit, on a seed no training or fit
    uses; with an open-or-closed 4, a 9 or a 2 apart (the digits drawn in most ways)."""
    import numpy as np

    from docsort.training.synth import pen_digits

    rng = np.random.default_rng(args.seed + 60)
    images = pen_digits.draw_like(test.labels, rng)
    return other_hands(images, test.labels, args.pen, rng, peers, "249")


def font_hands(args, test, peers: bool) -> dict:
    """Plain 5-digit codes and training-family fields (lengths 3-9) in the held-out font hands
    (``synth.font_hands.HELD_OUT_HANDS``: real people's handwriting digitised as fonts, writers
    no training, fit or selection sees), each field by one writer, the hands in turn; with a 1,
    4, 7 or 9 apart (the digits whose shapes hands differ on most), and per hand."""
    import numpy as np

    from docsort.training.synth import font_hands as hands

    rng = np.random.default_rng(args.seed + 70)
    writers = hands.hand_fonts("held-out")
    images = [hands.draw_like(test.labels, rng, hands={name: paths}) for name, paths in writers.items()]
    return other_hands(images, test.labels, args.font_hands, rng, peers, "1479", list(writers))


def other_hands(images, labels, count: int, rng, peers: bool, marked: str, writers=None) -> dict:
    """``count`` fields of ``images`` (digits in MNIST's format standing in for its test digits),
    half plain 5-digit codes as the envelope benchmark writes them, half training-family fields;
    per group also the fields holding one of the ``marked`` digits. With ``writers`` (names),
    ``images`` is one array per writer, each field is written by one of them in turn, and each
    writer's fields are a group too."""
    from docsort.training.synth import fields as field_synth
    from docsort.training.train.digit_strings import compose_field

    sources = list(images) if writers else [images]
    half = count // 2
    fields, hand = [], []
    for n in range(half):  # a code as the envelope benchmark writes it, touching and overlapping
        image, text = compose_field(sources[n % len(sources)], labels, rng, 5, (-0.3, 0.5),
                                    float(rng.uniform(28, 56)), int(rng.integers(0, 2)))
        fields.append(_Field(image, text))
        hand.append(n % len(sources))
    for n in range(count - half):
        family = field_synth.TRAINING_FAMILIES[n % len(field_synth.TRAINING_FAMILIES)]
        usable = [k for k in field_synth.FAMILIES[family].lengths if 3 <= k <= 9]
        composed = field_synth.compose_field(family, sources[n % len(sources)], labels, rng, usable[n % len(usable)])
        fields.append(_Field(composed.image, composed.digits))
        hand.append(n % len(sources))
    with tempfile.TemporaryDirectory() as tmp:
        reads, _ = read_fields(fields, Path(tmp), peers)
    groups = {}
    for name, idx in (("5-digit codes", range(half)), ("training-family fields", range(half, len(fields)))):
        groups[name] = list(idx)
        groups[f"{name} with a {' or '.join(marked)}"] = [i for i in idx if set(fields[i].digits) & set(marked)]
    for k, writer in enumerate(writers or []):
        groups[f"written by {writer}"] = [i for i in range(len(fields)) if hand[i] == k]
    groups["all"] = list(range(len(fields)))
    return {name: {"n": len(idx), **{r: share(reads[r][i] == fields[i].digits for i in idx) for r in reads}}
            for name, idx in groups.items()}


class _Field:
    """A composed field as ``read_fields`` takes it: its image and its digits."""

    def __init__(self, image, digits: str):
        self.image, self.digits = image, digits


def not_a_code(args) -> dict:
    """Held-out writers' words read as 5-digit codes: how many come out as a confident code."""
    from docsort.cost.model import default_accept_threshold
    from docsort.reading.digits.confidence import read_number_fields
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd

    writers = dhsd_writer_split().validation
    words = [(image, text) for image, text, _ in load_dhsd(Path(args.data) / "dhsd", writers)
             if not any(c.isdigit() for c in text)]
    if args.words and args.words < len(words):
        pick = np.random.default_rng(args.seed).choice(len(words), args.words, replace=False)
        words = [words[i] for i in sorted(pick)]
    threshold = default_accept_threshold()
    start = time.perf_counter()
    answers = read_number_fields([image for image, _ in words], code_length=5)
    seconds = (time.perf_counter() - start) / len(words)
    confidences = np.array([a.reading.confidence if a.reading.digits else 0.0 for a in answers])
    return {"writers": list(writers), "n": len(words), "threshold": threshold,
            "judged_number": share(a.is_number for a in answers),
            "code_at_0.5": share(confidences >= 0.5), "code_at_threshold": share(confidences >= threshold),
            "seconds_per_word": round(seconds, 4),
            "confident_codes": [(text, a.reading.digits, round(float(c), 3))
                                for (_, text), a, c in zip(words, answers, confidences) if c >= 0.5][:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("DOCSORT_DATASETS", "../shared/datasets"),
                        help="folder with mnist/ and dhsd/ (default: $DOCSORT_DATASETS, then ../shared/datasets)")
    parser.add_argument("--count", type=int, default=1000, help="held-out fields, lengths 3-9 in turn (0: none)")
    parser.add_argument("--family-count", type=int, default=100, help="fields per training family (0: none)")
    parser.add_argument("--continental", type=int, default=0,
                        help="fields written by continental writers, half codes, half training-family fields (0: none)")
    parser.add_argument("--pen", type=int, default=0,
                        help="fields of pen-drawn digits (synth.pen_digits), half codes, half training-family fields "
                             "(0: none)")
    parser.add_argument("--font-hands", type=int, default=0,
                        help="fields in the held-out handwriting-font hands (synth.font_hands), half codes, half "
                             "training-family fields (0: none)")
    parser.add_argument("--words", type=int, default=None,
                        help="held-out writers' words for the not-a-code section (default: all; 0: none)")
    parser.add_argument("--seed", type=int, default=2031)
    parser.add_argument("--no-peers", action="store_true", help="docsort only (quick runs)")
    parser.add_argument("--no-detection", action="store_true",
                        help="leave out RapidOCR with its detection (over a second a string); keep it on one line")
    parser.add_argument("--keep", default=None, help="keep the held-out fields and truth.csv in this folder")
    parser.add_argument("--json", default=None, help="also write the whole report to this file")
    args = parser.parse_args()

    from docsort.training.datasets import mnist

    peers = not args.no_peers
    global DETECTION
    DETECTION = not args.no_detection
    test = mnist.load(Path(args.data) / "mnist").test
    warm_up(peers)
    report: dict = {"command": " ".join(["python benchmarks/bench_strings.py", *sys.argv[1:]])}
    if args.count:
        h = report["held_out"] = held_out(args, test, peers)
        readers = list(h["exact"])
        print(f"## Held-out family '{h['family']}': {h['n']} fields of MNIST test digits, lengths 3-9\n")
        print(table("exactly right", {"all": {"n": h["n"], **h["exact"]}}, readers))
        print("\nseconds per string: " + ", ".join(f"{READER_NAMES[r]} {s:.3f}"
                                                  for r, s in h["seconds_per_string"].items()))
        print("\n" + table("digits", h["by_length"], readers))
        for name, rows in h["by_condition"].items():
            print("\n" + table(name, rows, readers))
    if args.family_count:
        rows = report["training_families"] = training_families(args, test, peers)
        readers = [r for r in READERS if r in next(iter(rows.values()))]
        print(f"\n## Training families (the generator trains on them; MNIST test digits), "
              f"{args.family_count} fields each, lengths 3-9\n")
        print(table("family", rows, readers))
    for key, count, section, title in (
            ("continental", args.continental, continental,
             "Continental writers (1s with the up-stroke, 7s crossed; MNIST test digits)"),
            ("pen", args.pen, pen_hands, "Pen-drawn hands (open and closed 4s, hooked 9s, looped 2s, ...; synth.pen_digits)"),
            ("font_hands", args.font_hands, font_hands,
             "Held-out font hands (real people's handwriting fonts no training or fit sees)")):
        if count:
            rows = report[key] = section(args, test, peers)
            readers = [r for r in READERS if r in next(iter(rows.values()))]
            print(f"\n## {title}\n")
            print(table("fields", rows, readers))
    if args.words != 0:
        w = report["not_a_code"] = not_a_code(args)
        print(f"\n## Not a code: {w['n']} words of held-out DHSD writers {w['writers']}, "
              f"read-digits --code-length 5\n")
        print(f"judged a number {100 * w['judged_number']:.1f} %; read as a code with confidence >= 0.5: "
              f"{100 * w['code_at_0.5']:.1f} %, >= the accept threshold {w['threshold']:.3f}: "
              f"{100 * w['code_at_threshold']:.1f} % ({w['seconds_per_word']:.3f} s per word)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
