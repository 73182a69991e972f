"""How well docsort reads envelopes, next to Tesseract alone.

Generates envelopes with real handwriting (``docsort samples --handwriting``: MNIST test digits,
DHSD held-out writers), runs the real pipeline (``process_document``) over the files with at
most two worker processes, and prints per source the share of destination codes read right
and sent automatically, wrong codes sent automatically, sender codes picked, crop kinds
against the ground truth, and side by side the peers a user would pick instead (``peers.py``):
RapidOCR (PP-OCR on ONNX Runtime, one thread) and Tesseract alone, each as right, wrong and
none (neither has a calibrated confidence, so every answer counts as sent automatically), raw
and with look-alike characters read as digits. ``--no-peers`` skips both for quick runs. With
``--strings N`` it also measures ``read-digits`` on N composed strings of MNIST test digits
with touching and overlapping neighbours.

With ``--country CC`` the envelopes carry real codes and places of that country, and the same
envelopes are read without and with its postal directory, side by side (and, for each, at the
lowest threshold whose wrong ``auto`` codes stay within ``--wrong-auto-cap`` of all envelopes).

``--scan-scale F`` gives the generated envelopes (training layouts and held-out families alike)
as a scanner at F times the generator's 200 dpi would: 0.75 is 150 dpi, 1.5 is 300 dpi.

``--held-out N`` also measures N envelopes of each held-out layout family (``boxed``: codes in
pre-printed boxes or on a rule, a phone number beside them; ``international``: a country line
under the place, the code on top of the block, a reference number line, CEDEX), each drawn on a
seed of its own, and reports them apart, with the same figures and peers as the main set and
how often a phone number was taken for the code. No training, fitting or threshold choice ever
sees those families, so their figures are what a new convention of mail gets; ``--count 0``
measures them alone, ``--held-out-layouts`` picks them. Each envelope has a seed of its own, so
``--held-out-first K`` reads envelopes K+1 on: pages no failure gallery has shown yet.

    python benchmarks/bench_envelopes.py --count 200 --handwriting ../shared/datasets \
        --strings 1000 --jobs 2
    python benchmarks/bench_envelopes.py --count 300 --country US --layout code-alone \
        --handwriting ../shared/datasets --jobs 2
    python benchmarks/bench_envelopes.py --count 200 --held-out 100 --handwriting ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

os.environ["OMP_THREAD_LIMIT"] = "1"
os.environ.setdefault("DOCSORT_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

_SETTINGS = None


def _init(settings) -> None:
    global _SETTINGS
    from docsort.page.pipeline import warm_up

    _SETTINGS = settings
    warm_up(settings)


def _process(path: str):
    from docsort.page.pipeline import process_document

    start = time.perf_counter()
    doc = process_document(path, _SETTINGS)
    return Path(path).name, doc.to_dict(), time.perf_counter() - start


def _peer_init() -> None:
    """Load RapidOCR's models before the clock runs (its engine loads them on first use)."""
    import cv2

    from peers import rapidocr_page

    page = np.full((120, 400, 3), 255, np.uint8)
    cv2.putText(page, "Berlin 10115", (10, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    rapidocr_page(page)


def _peer_page(peer: str, path: str):
    """One peer's lines of one envelope, the page size, and its seconds (file read included)."""
    from PIL import Image

    from peers import rapidocr_page, tesseract_page

    with Image.open(path) as im:
        size = im.size
    start = time.perf_counter()
    lines = (rapidocr_page if peer == "rapidocr" else tesseract_page)(path)
    return Path(path).name, lines, size, time.perf_counter() - start


def _tesseract_alone(path: str):
    return _peer_page("tesseract", path)


def _rapidocr(path: str):
    return _peer_page("rapidocr", path)


def _overlap(a, b) -> float:
    """Share of box ``a`` covered by box ``b``."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, iw) * max(0, ih) / max(1, a[2] * a[3])


# The held-out family's envelopes are drawn on the main seed plus this, so they never repeat
# envelopes of the main set.
HELD_OUT_SEED_OFFSET = 1_000_000


def _generate(args, count: int, seed: int, layout: str, prefix: str, first: int = 0) -> Path:
    from docsort.training.samples import write_samples

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    t0 = time.perf_counter()
    write_samples(folder, count=count, seed=seed, handwriting=args.handwriting,
                  handwritten_share=0.7, code_length=args.code_length, mnist_split=args.mnist_split,
                  layout=layout, country=args.country, continental=args.continental, pen_digits=args.pen_digits,
                  close_words=args.close_words, barcode=args.barcode, tight_lines=args.tight_lines,
                  block_tilt=args.block_tilt, pencil=args.pencil, coloured=args.coloured,
                  label=args.label, first=first)
    print(f"generated {count} {layout} envelopes in {time.perf_counter() - t0:.1f} s -> {folder}", file=sys.stderr)
    if args.scan_scale != 1.0:
        rescan(folder, args.scan_scale)
    return folder


def rescan(folder: Path, factor: float) -> None:
    """The envelopes of ``folder`` as a scanner at ``factor`` times their resolution would give
    them (the generator draws at 200 dpi: 1.5 is 300 dpi, 0.75 is 150 dpi), truth boxes scaled
    alike. JPEG files are written again at quality 90, PNG files stay lossless."""
    import cv2

    from docsort.training.samples import TRUTH_FILE

    truth_file = folder / TRUTH_FILE
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    for envelope in truth["envelopes"]:
        path = folder / envelope["file"]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        image = cv2.resize(image, None, fx=factor, fy=factor,
                           interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix.lower() in (".jpg", ".jpeg") else []
        cv2.imwrite(str(path), image, params)
        for element in envelope["elements"]:
            element["bbox"] = [int(round(v * factor)) for v in element["bbox"]]
    truth["scan_scale"] = factor
    truth_file.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def envelopes(args) -> dict:
    """The main set: ``--samples``, or ``--count`` envelopes of ``--layout``."""
    folder = Path(args.samples) if args.samples else _generate(args, args.count, args.seed, args.layout,
                                                                 "docsort-bench-")
    return measure(args, folder, args.details, args.overlays)


def held_out(args, layout: str, offset: int) -> dict:
    """``--held-out`` envelopes of a family no fitting sees, measured like the main set."""
    seed = args.seed + offset
    folder = _generate(args, args.held_out, seed, layout, f"docsort-bench-{layout}-", args.held_out_first)
    overlays = args.overlays and str(Path(args.overlays) / layout)
    return {"layout": layout, "seed": seed, "first": args.held_out_first + 1,
            **measure(args, folder, args.details and f"{args.details}.{layout}", overlays, layout)}


def measure(args, folder: Path, details, overlays, folder_label: Optional[str] = None) -> dict:
    """The pipeline (and the peers) on the envelopes of ``folder``, against their truth: one
    report, or with ``--country`` one without and one with the postal directory."""
    from docsort.cost.model import default_accept_threshold
    from docsort.page.pipeline import Settings
    from docsort.training.samples import load_truth

    truth = load_truth(folder)
    files = [str(folder / name) for name in sorted(truth)]
    ctx = get_context("spawn")
    peer_pages = {}
    if args.peers:
        start = time.perf_counter()
        with ctx.Pool(args.jobs) as pool:
            peer_pages["tesseract"] = pool.map(_tesseract_alone, files, chunksize=1)
        peer_pages["tesseract_wall"] = time.perf_counter() - start
        start = time.perf_counter()
        with ctx.Pool(args.jobs, initializer=_peer_init) as pool:
            peer_pages["rapidocr"] = pool.map(_rapidocr, files, chunksize=1)
        peer_pages["rapidocr_wall"] = time.perf_counter() - start
    runs = [(None, args.threshold if args.threshold is not None else default_accept_threshold())]
    if args.country:
        runs.append((args.country, args.threshold if args.threshold is not None
                     else default_accept_threshold(args.country, directory=True)))
    reports = {}
    for country, threshold in runs:
        settings = Settings(code_length=args.code_length, accept_threshold=threshold,
                            overlays_dir=Path(overlays) if overlays else None, country=country)
        start = time.perf_counter()
        with ctx.Pool(args.jobs, initializer=_init, initargs=(settings,)) as pool:
            results = pool.map(_process, files, chunksize=1)
        pipeline_wall = time.perf_counter() - start
        report = _report(args, truth, results, peer_pages, country, threshold, pipeline_wall,
                         details and (details if country is None else f"{details}.{country}"))
        if args.gallery:
            name = (folder_label or "main") + (f".{country}" if country else "")
            report["gallery"] = _gallery(folder, truth, results, Path(args.gallery) / f"{name}.png",
                                         f"Destination codes not right and automatic ({name})")
        if not args.country:
            return report
        reports["with_directory" if country else "without_directory"] = report
    return reports


def _destination(doc: dict) -> tuple:
    """``(page, postal_code, value, sent automatically)`` of a one-page document's result."""
    page = doc["pages"][0] if doc["pages"] else None
    code = page["postal_code"] if page else None
    return page, code, code["value"] if code else None, bool(code and code["decision"] == "auto")


def _gallery(folder: Path, truth: dict, results, path: Path, title: str) -> str:
    """Every destination code not read right and sent automatically, cut from its envelope at
    the code's true box: wrong and `auto` first, then wrong and manual, then right but manual
    (surest first in each), captioned "truth -> reading, decision (P)". What the readers saw,
    for a person to judge whether the page could be read better."""
    import cv2

    from docsort.training.evaluate import plots

    items = []
    for name, doc, _ in results:
        t = truth[name]
        _, code, value, auto = _destination(doc)
        if value == t["destination_code"] and auto:
            continue
        group = 0 if auto else (1 if value != t["destination_code"] else 2)
        confidence = float(code["confidence"]) if code else 0.0
        box = next((e["bbox"] for e in t["elements"] if e["role"] == "destination_code"), None)
        image = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        if box is None or image is None:
            continue
        x, y, w, h = box
        pad = h // 3
        crop = image[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
        items.append((group, -confidence, crop, t["destination_code"],
                      f"{value or 'none'} {'auto' if auto else 'manual'}", confidence))
    items.sort(key=lambda item: item[:2])
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(plots.save_failure_gallery([i[2] for i in items], [i[3] for i in items], [i[4] for i in items],
                                          [i[5] for i in items], path, title=title, ink_dark=True))


# The peers' answers side by side with docsort's: each engine raw, and with look-alike characters
# (O, S, I, l, B, Z, /, |) read as digits in runs that hold a digit (``peers.pick_code``).
PEERS = {"rapidocr": ("rapidocr", True), "rapidocr_raw": ("rapidocr", False),
         "tesseract_alone": ("tesseract", True), "tesseract_alone_raw": ("tesseract", False)}
ENGINE_LABELS = {"tesseract": "tesseract_alone", "rapidocr": "rapidocr"}  # seconds are one thread each


def _peer_answers(peer_pages: dict, country, code_length: int) -> dict:
    """{file: {peer: code or None}}; with a country, codes that do not exist are dropped."""
    from peers import pick_code, printed_code_tokens

    from docsort.page import directory as directories

    directory = directories.load(country) if country else None
    length = directory.length if directory else code_length
    answers: dict = {}
    for peer, (engine, confusions) in PEERS.items():
        for name, lines, size, _ in peer_pages.get(engine, []):
            answers.setdefault(name, {})[peer] = pick_code(lines, size, length, confusions, directory)
    for name, lines, _, _ in peer_pages.get("tesseract", []):
        answers[name]["tesseract_tokens"] = printed_code_tokens(lines, length)
    return answers


def _peer_shares(rows: list[dict]) -> dict:
    """Right, wrong and none per peer: every answer a peer gives counts as sent automatically."""
    out = {}
    for peer in PEERS:
        if not rows or peer not in rows[0]["peers"]:
            continue
        answers = [(r["peers"][peer], r["truth"]) for r in rows]
        out[peer] = {"right": round(np.mean([a == t for a, t in answers]), 4),
                     "wrong": round(np.mean([a is not None and a != t for a, t in answers]), 4),
                     "none": round(np.mean([a is None for a, _ in answers]), 4)}
    return out


def _phone(truth: dict) -> tuple[list[str], list]:
    """The digit groups of the destination's phone number (or reference, customer or P.O. box
    number: a number beside the code that is none), and the boxes of its words ("Tel" and the
    groups); none where the envelope has no such number."""
    words = [e for e in truth["elements"] if e["role"] in ("destination_phone", "destination_reference")]
    digits = ["".join(ch for ch in e["text"] if ch.isdigit()) for e in words]
    return [d for d in digits if d], [e["bbox"] for e in words]


def _is_phone(value, groups: list[str], boxes=(), bbox=None) -> bool:
    """Whether a code answer is the phone number: a run of its digits, or (where the answer has
    a box) read from the phone's line."""
    if value is None or not groups:
        return False
    if any(value in g for g in groups) or value in "".join(groups):
        return True
    if bbox is None:
        return False
    cx, cy = bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2
    return any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes)


def _report(args, truth, results, peer_pages, country, threshold, pipeline_wall, details) -> dict:
    """The measures of one reading of the envelopes, against their truth."""
    peer_answers = _peer_answers(peer_pages, country, args.code_length)

    rows = []
    kind_right = kind_total = unmatched = 0
    for name, doc, seconds in results:
        t = truth[name]
        page, code, value, auto = _destination(doc)
        for element in t["elements"]:
            best, share = None, 0.0
            for crop in (page["crops"] if page else []):
                s = _overlap(element["bbox"], crop["bbox"])
                if s > share:
                    best, share = crop, s
            if best is None or share < 0.3:
                unmatched += 1
                continue
            kind_total += 1
            kind_right += best["kind"] == element["kind"]
        answers = dict(peer_answers.get(name, {}))
        tokens = answers.pop("tesseract_tokens", [])
        phone, phone_boxes = _phone(t)
        rows.append({
            "file": name, "source": t["destination_source"], "truth": t["destination_code"],
            "layout": t.get("layout"), "position": t.get("position"),
            "continental_hand": t.get("continental_hand", False),
            "pen_digits_hand": t.get("pen_digits_hand", False),
            "close_words_hand": t.get("close_words_hand", False),
            "tight_lines_hand": t.get("tight_lines_hand", False),
            "block_tilt_degrees": t.get("block_tilt_degrees", 0.0),
            "pencil_hand": t.get("pencil_hand", False),
            "paper_colour": t.get("paper_colour"),
            "label": t.get("label", False),
            "barcode": t.get("barcode", False),
            "sender": t["sender_code"], "value": value, "auto": auto,
            "confidence": code["confidence"] if code else None,
            "valid": code.get("valid", True) if code else False,
            "place_match": code.get("place_match") if code else None,
            "read_source": code["source"] if code else None,
            "tesseract_last": tokens[-1] if tokens else None,
            "tesseract_any": t["destination_code"] in tokens, "seconds": seconds,
            "peers": answers, "phone": phone,
            "phone_picked": value != t["destination_code"] and _is_phone(value, phone, phone_boxes,
                                                                          code["bbox"] if code else None),
        })

    n = len(rows)
    report = {"envelopes": n, "accept_threshold": threshold, "jobs": args.jobs,
              "pipeline_wall_s": round(pipeline_wall, 1)}
    for engine, label in ENGINE_LABELS.items():
        if f"{engine}_wall" in peer_pages:
            report[f"{label}_wall_s"] = round(peer_pages[f"{engine}_wall"], 1)
    for source in ("handwritten", "printed"):
        sel = [r for r in rows if r["source"] == source]
        if not sel:
            continue
        report[source] = {
            "n": len(sel),
            "right_and_auto": round(np.mean([r["value"] == r["truth"] and r["auto"] for r in sel]), 4),
            "right_any_decision": round(np.mean([r["value"] == r["truth"] for r in sel]), 4),
            "wrong_and_auto": round(np.mean([r["value"] != r["truth"] and r["auto"] for r in sel]), 4),
            "auto": round(np.mean([r["auto"] for r in sel]), 4),
            "no_code": round(np.mean([r["value"] is None for r in sel]), 4),
        }
        if peer_pages:
            report[source].update({
                "tesseract_alone_last_token_right": round(np.mean([r["tesseract_last"] == r["truth"] for r in sel]), 4),
                "tesseract_alone_any_token_right": round(np.mean([r["tesseract_any"] for r in sel]), 4),
                "peers": _peer_shares(sel)})
    # Per address layout family and block position: a reader that only knows one convention
    # shows here, whatever its total.
    for key in ("layout", "position"):
        groups = sorted({r[key] for r in rows if r[key]})
        report[f"by_{key}"] = {g: {
            "n": sum(r[key] == g for r in rows),
            "right_and_auto": round(np.mean([r["value"] == r["truth"] and r["auto"] for r in rows if r[key] == g]), 4),
            "wrong_auto": int(sum(r["auto"] and r["value"] != r["truth"] for r in rows if r[key] == g)),
            **({"peers": _peer_shares([r for r in rows if r[key] == g])} if peer_pages else {}),
        } for g in groups}
    report["wrong_auto_share_of_all"] = round(np.mean([r["auto"] and r["value"] != r["truth"] for r in rows]), 4)
    report["sender_code_picked"] = int(sum(r["value"] is not None and r["value"] == r["sender"] for r in rows))
    if peer_pages:
        report["tesseract_alone_sender_code_last"] = int(sum(r["tesseract_last"] is not None and r["tesseract_last"] == r["sender"] for r in rows))
        report["peers_sender_code_picked"] = {
            peer: int(sum(r["peers"][peer] is not None and r["peers"][peer] == r["sender"] for r in rows))
            for peer in PEERS}
    if any(r["phone"] for r in rows):
        report["phone_number_picked"] = int(sum(r["phone_picked"] for r in rows))
        report["phone_number_picked_auto"] = int(sum(r["phone_picked"] and r["auto"] for r in rows))
        if peer_pages:
            report["peers_phone_number_picked"] = {
                peer: int(sum(r["peers"][peer] != r["truth"] and _is_phone(r["peers"][peer], r["phone"])
                              for r in rows))
                for peer in PEERS}
    report["crop_kinds_right"] = round(kind_right / max(1, kind_total), 4)
    report["crop_kinds_measured"] = kind_total
    report["truth_elements_without_crop"] = unmatched
    report["seconds_per_envelope_pipeline"] = round(float(np.mean([r["seconds"] for r in rows])), 3)
    for engine, label in ENGINE_LABELS.items():
        if peer_pages.get(engine):
            report[f"seconds_per_envelope_{label}"] = round(float(np.mean([p[3] for p in peer_pages[engine]])), 3)
    conf = np.array([r["confidence"] if r["confidence"] is not None else -1 for r in rows])
    right = np.array([r["value"] == r["truth"] for r in rows])
    calib = []
    for lo, hi in ((0, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01)):
        sel = (conf >= lo) & (conf < hi)
        if sel.any():
            calib.append({"range": [lo, hi], "n": int(sel.sum()), "right": round(float(right[sel].mean()), 4),
                          "mean_confidence": round(float(conf[sel].mean()), 4)})
    report["calibration"] = calib
    report["at_wrong_auto_cap"] = _at_wrong_auto_cap(rows, args.wrong_auto_cap)
    if any(r["place_match"] is not None for r in rows):
        printed = [r for r in rows if r["source"] == "printed"]
        report["printed_place_match"] = round(np.mean([r["place_match"] is True for r in printed]), 4) if printed else None
    if details:
        Path(details).write_text(json.dumps(rows, indent=1))
    return report


def _at_wrong_auto_cap(rows: list[dict], cap: float) -> dict:
    """The lowest accept threshold whose wrong ``auto`` codes stay within ``cap`` of all
    envelopes (a code that does not exist is never auto), and what each source gets there."""
    conf = np.array([r["confidence"] if r["confidence"] is not None and r["valid"] else -1.0 for r in rows])
    right = np.array([r["value"] == r["truth"] for r in rows])
    best = None
    for t in sorted(set(conf[conf >= 0].tolist()) | {1.01}):
        auto = conf >= t
        if (auto & ~right).mean() <= cap:
            best = t
            break
    auto = conf >= best
    out = {"cap": cap, "threshold": round(float(best), 6), "wrong_auto_share_of_all": round(float((auto & ~right).mean()), 4)}
    for source in ("handwritten", "printed"):
        sel = np.array([r["source"] == source for r in rows])
        if sel.any():
            out[source] = {"n": int(sel.sum()), "right_and_auto": round(float((auto & right)[sel].mean()), 4),
                           "right_and_auto_count": int((auto & right)[sel].sum())}
    return out


def strings(args) -> dict:
    """read-digits on composed strings of MNIST test digits (touching and overlapping)."""
    from docsort.reading.digits.combine import read_fields
    from docsort.training.samples import HandwritingCorpus
    from docsort.training.synth.handwriting import compose_digit_string

    corpus = HandwritingCorpus.load(Path(args.handwriting), args.mnist_split)
    rng = np.random.default_rng(args.seed + 1)
    images, truths = [], []
    for _ in range(args.strings):
        text = "".join(str(int(d)) for d in rng.integers(0, 10, args.code_length))
        picks = [corpus.mnist_images[rng.choice(corpus.digit_indices[int(c)])] for c in text]
        image, _ = compose_digit_string(picks, rng, gap=(args.gap_min, args.gap_max),
                                        height=float(rng.uniform(28, 56)), stroke=int(rng.integers(0, 2)))
        images.append(image)
        truths.append(text)
    start = time.perf_counter()
    read = read_fields(images, args.code_length)
    elapsed = time.perf_counter() - start
    right = np.array([r.digits == t for r, t in zip(read, truths)])
    conf = np.array([r.confidence for r in read])
    return {"strings": len(truths), "gap": [args.gap_min, args.gap_max],
            "exact": round(float(right.mean()), 4),
            "ms_per_string": round(1000 * elapsed / len(truths), 1),
            "right_at_conf_0.9": round(float((right & (conf >= 0.9)).mean()), 4),
            "wrong_at_conf_0.9": round(float((~right & (conf >= 0.9)).mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="envelopes of the main set (0: none)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--handwriting", required=True, help="folder with MNIST IDX files and DHSD data.csv")
    parser.add_argument("--samples", help="use an existing samples folder instead of generating one")
    parser.add_argument("--layout", default="mixed",
                        help="address layout family of generated envelopes (mixed: the training families)")
    parser.add_argument("--held-out", type=int, default=0, metavar="COUNT",
                        help="also measure COUNT envelopes of each held-out family, on seeds of their own, "
                             "reported apart")
    parser.add_argument("--held-out-first", type=int, default=0, metavar="K",
                        help="skip each held-out family's first K envelopes (the same seeds draw the same pages): "
                             "a family's first envelopes stop being an unseen measure once their failures have "
                             "been looked at (benchmarks/RESULTS.md, \"Held-out envelopes: 1,000 of each family\")")
    parser.add_argument("--held-out-layouts", default="boxed,international",
                        help="the held-out families to measure with --held-out, comma-separated")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--code-length", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--strings", type=int, default=0, help="also measure read-digits on N composed strings")
    parser.add_argument("--gap-min", type=float, default=-0.3)
    parser.add_argument("--gap-max", type=float, default=0.5)
    parser.add_argument("--skip-envelopes", action="store_true")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="skip the peers (RapidOCR and Tesseract alone): docsort's figures only")
    parser.add_argument("--mnist-split", choices=("test", "train"), default="test",
                        help="train: development runs that must not look at the test set")
    parser.add_argument("--continental", type=float, default=0.0,
                        help="share of hands writing 1s with the up-stroke and crossed 7s (synth.digit_styles)")
    parser.add_argument("--pen-digits", type=float, default=0.0,
                        help="share of hands whose digits are drawn by a pen writer (synth.pen_digits), not MNIST's")
    parser.add_argument("--close-words", type=float, default=0.0,
                        help="share of hands leaving narrow word spaces (a fifth to half their height), so the code "
                             "and the place beside it may come as one ink region")
    parser.add_argument("--tight-lines", type=float, default=0.0,
                        help="share of hands writing their lines close, one line's descenders touching the next "
                             "line, so the code may come joined to the place above it")
    parser.add_argument("--block-tilt", type=float, default=0.0,
                        help="share of hands writing the address at an angle of its own to the envelope (3-8 degrees)")
    parser.add_argument("--pencil", type=float, default=0.0,
                        help="share of hands writing the address in pencil (graphite grey, grainy)")
    parser.add_argument("--coloured", type=float, default=0.0,
                        help="share of envelopes that are not white (manila, kraft, greeting-card colours)")
    parser.add_argument("--label", type=float, default=0.0,
                        help="share of envelopes whose address is on a stuck-on white label")
    parser.add_argument("--barcode", type=float, default=0.0,
                        help="share of envelopes with a four-state postal barcode printed under the destination block")
    parser.add_argument("--overlays")
    parser.add_argument("--scan-scale", type=float, default=1.0,
                        help="scan the generated envelopes at this times their 200 dpi (1.5: 300 dpi)")
    parser.add_argument("--details", help="write per-envelope rows as JSON here")
    parser.add_argument("--gallery", help="folder for a picture per set of every code not right and `auto`, "
                                          "cut from its envelope")
    parser.add_argument("--country", help="real codes and places of this country, read without and with its "
                                          "postal directory")
    parser.add_argument("--wrong-auto-cap", type=float, default=0.005,
                        help="share of all envelopes wrong and auto at which both readings are compared")
    args = parser.parse_args()
    args.jobs = max(1, min(2, args.jobs))
    report = {"scan_scale": args.scan_scale} if args.scan_scale != 1.0 else {}
    if not args.skip_envelopes and (args.samples or args.count > 0):
        report["envelopes"] = envelopes(args)
    if not args.skip_envelopes and args.held_out > 0:
        from docsort.training.samples import HELD_OUT_LAYOUTS

        for layout in args.held_out_layouts.split(","):
            if layout not in HELD_OUT_LAYOUTS:
                parser.error(f"--held-out-layouts: {layout!r} is not one of {', '.join(HELD_OUT_LAYOUTS)}")
            # Each family on a seed of its own (boxed keeps the seed it always had).
            offset = HELD_OUT_SEED_OFFSET * (1 + HELD_OUT_LAYOUTS.index(layout))
            report["held_out" if layout == "boxed" else f"held_out_{layout}"] = held_out(args, layout, offset)
    if args.strings:
        report["read_digits"] = strings(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
