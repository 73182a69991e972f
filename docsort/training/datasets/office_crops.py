"""Office print and office scans for the printed/handwritten classifier, and its held-out family.

Real office scans (fax, copier, multifunction scanner) are mostly 1-bit at 150-400 dpi with
body text in italic, bold and roman serif type: the printed words the classifier missed were
italic and bold-italic serif words, short words and words bound to a hyphen or quote, all from
1-bit scans. This module adds such print (``synth.office``) to training and validation, puts
real handwriting (DHSD words, block capitals cut from DHSD words, MNIST digits in pencil and thin
pen) through the same scans, and cuts words from pages of mixed roman and italic paragraphs with
Tesseract as the pipeline does.

**The held-out family** (``sealed_family``): fonts (``printed.SEALED_FAMILIES``: P052 with its
true italic, Nimbus Sans Narrow), a scan condition (1-bit at 200 dpi, ``office.SEALED_DPI``),
DHSD writers (``WriterSplit.sealed``) and MNIST *test* digits that no training and no model
selection (epoch, temperature, ensemble) touches; it is measured on its own.

Every crop carries tags (``italic``, ``bold``, ``1-bit``, ``short word``, ``pencil``...) for the
per-condition table of ``docsort evaluate writing-type``.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from docsort.training.synth import office
from docsort.training.synth.printed import Font

PRINTED, HANDWRITTEN = 0, 1
# The rows of the per-condition table: a name and the tags a crop needs to count in it.
CONDITIONS = (
    ("italic", ("italic", "bold-italic")),
    ("bold", ("bold", "bold-italic")),
    ("bold italic", ("bold-italic",)),
    ("condensed", ("condensed",)),
    ("small caps", ("small caps",)),
    ("typewriter", ("typewriter",)),
    ("dot-matrix", ("dot-matrix",)),
    ("thermal", ("thermal",)),
    ("1-bit", ("1-bit",)),
    ("1-bit 200 dpi", ("1-bit 200 dpi",)),
    ("dithered", ("dither",)),
    ("fax", ("fax",)),
    ("photocopy", ("photocopy",)),
    ("toner dropout", ("toner dropout",)),
    ("short words (1-3 characters)", ("short word",)),
    ("punctuation-bound", ("punctuation-bound",)),
    ("Tesseract's cuts of paragraphs", ("paragraph page",)),
    ("pencil", ("pencil",)),
    ("thin pen", ("thin pen",)),
    ("block capitals", ("block capitals",)),
    ("digits", ("digits",)),
)


def capitals_word(rng: np.random.Generator, words: Sequence[np.ndarray]) -> Optional[np.ndarray]:
    """Block capitals in one writer's hand: the first letter of 2-7 of their DHSD words (street and
    place names start with a capital), cut at the first gap in the ink and set side by side."""
    from docsort.training.datasets.writing_type_crops import ink_mask, ink_pieces

    letters = []
    for i in rng.integers(0, len(words), size=int(rng.integers(2, 8))):
        img = words[int(i)]
        pieces = ink_pieces(img)
        if not pieces:
            continue
        a, b = pieces[0]
        rows = np.flatnonzero(ink_mask(img[:, a:b]).any(axis=1))
        if len(rows) < 4 or b - a > 1.4 * (rows[-1] - rows[0]):
            continue  # joined to the next letters: not a lone capital
        letters.append(img[rows[0]:rows[-1] + 1, a:b])
    if len(letters) < 2:
        return None
    height = int(np.median([l.shape[0] for l in letters]))
    gap = int(height * rng.uniform(0.1, 0.5))
    scaled = [cv2.resize(l, (max(1, int(l.shape[1] * height / l.shape[0])), height), interpolation=cv2.INTER_AREA)
              for l in letters]
    row = [np.full((height, gap), 255, np.uint8)]
    for l in scaled:
        row += [l, np.full((height, gap + int(rng.integers(0, max(1, gap)))), 255, np.uint8)]
    body = np.hstack(row)
    return cv2.copyMakeBorder(body, gap, gap, 0, 0, cv2.BORDER_CONSTANT, value=255)


def handwritten_source(rng: np.random.Generator, words_by_writer: dict[int, list[np.ndarray]],
                       digits: np.ndarray) -> tuple[np.ndarray, str]:
    """A clean handwritten item: a DHSD word, block capitals of one writer, or a digit string."""
    from docsort.training.synth.handwriting import compose_digit_string

    roll = rng.random()
    writers = sorted(words_by_writer)
    words = words_by_writer[writers[int(rng.integers(len(writers)))]]
    if roll < 0.25:
        capitals = capitals_word(rng, words)
        if capitals is not None:
            return capitals, "block capitals"
    if roll < 0.6:
        length = int(rng.choice([1, 2, 3, 4, 5, 5, 6, 8]))
        chosen = [digits[i] for i in rng.integers(0, len(digits), size=length)]
        img, _ = compose_digit_string(chosen, rng, gap=(-0.1, 0.6), height=float(rng.uniform(28, 64)),
                                      stroke=int(rng.integers(-1, 2)), ink=int(rng.integers(0, 60)))
        return img, "digits"
    return words[int(rng.integers(len(words)))], "dhsd"


def office_crops(rng: np.random.Generator, printed: int, handwritten: int, fonts: Sequence[Font],
                 words_by_writer: dict[int, list[np.ndarray]], digits: np.ndarray, *, sealed: bool = False,
                 keep: Callable[[np.ndarray], bool] = lambda c: True, crop_seed: Optional[int] = None):
    """(crop, class, tags) of office-printed words in ``fonts`` and handwriting through the same
    scans; with ``sealed`` every scan is the held-out one (1-bit at 200 dpi).

    A crop ``keep`` refuses is drawn again. With ``crop_seed`` every crop is drawn from a seed of
    its own (``crop_seed``, class, index) instead of from ``rng``: a change to ``keep`` (the
    ink box behind ``shows_writing``) then draws again only the crops whose verdict it changes,
    and the rest of a measuring set stays the same crops."""
    def draws(kind: int, i: int) -> np.random.Generator:
        return rng if crop_seed is None else np.random.default_rng([crop_seed, kind, i])

    out = []
    for i in range(printed):
        r = draws(0, i)
        for _ in range(8):
            made = office.office_printed_crop(r, fonts, office.random_office_scan(r, sealed))
            if keep(made.image):
                break
        out.append((made.image, PRINTED, made.tags))
    for i in range(handwritten):
        r = draws(1, i)
        for _ in range(8):
            img, kind = handwritten_source(r, words_by_writer, digits)
            made = office.office_handwritten_crop(r, img, kind, office.random_office_scan(r, sealed))
            if keep(made.image):
                break
        out.append((made.image, HANDWRITTEN, made.tags))
    return out


# --- Tesseract's cuts of paragraph pages -------------------------------------------------------------

def _paragraph_page_crops(job: tuple[int, tuple[Font, ...], bool]) -> list[tuple[np.ndarray, int, float, tuple]]:
    from docsort.page import tesseract as segment

    seed, fonts, sealed = job
    rng = np.random.default_rng(seed)
    page, scan, _ = office.paragraph_page(rng, fonts, office.random_office_scan(rng, sealed))
    tags = ("printed", "paragraph page", *scan.tags())
    crops = []
    for word in segment.words(page):
        x, y, w, h = word.bbox
        if w < 2 or h < 2:
            continue
        text = (word.text or "").strip()
        extra = ("short word",) if 0 < len(text) <= 3 else ()
        crops.append((page[y:y + h, x:x + w].copy(), PRINTED, float(word.conf), tags + extra))
    return crops


def paragraph_crops(fonts: Sequence[Font], seeds: Sequence[int], workers: int, cache: Optional[Path],
                    log: Callable[[str], None], sealed: bool = False, per_page: int = 120):
    """Words Tesseract cuts from pages of mixed roman and italic paragraphs (cached), at most
    ``per_page`` of each page (drawn at random), so pages of small type do not swamp the rest."""
    from docsort.training.datasets.writing_type_crops import load_cached_crops, save_cached_crops

    cached = load_cached_crops(cache)
    if cached is not None:
        return cached
    started = time.time()
    jobs = [(int(s), tuple(fonts), sealed) for s in seeds]
    crops: list = []
    pages = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            pages = list(pool.map(_paragraph_page_crops, jobs))
    else:
        pages = [_paragraph_page_crops(j) for j in jobs]
    for seed, page in zip(seeds, pages):
        order = np.random.default_rng(int(seed)).permutation(len(page))[:per_page]
        crops.extend(page[i] for i in sorted(order))
    log(f"tesseract: {len(seeds)} paragraph pages -> {len(crops)} printed crops in {time.time() - started:.0f} s")
    save_cached_crops(cache, crops)
    return crops


# --- The held-out family ----------------------------------------------------------------------------

SEALED_PRINTED = 2000
SEALED_HANDWRITTEN = 1500
SEALED_PAGES = 8


def sealed_family(dhsd_dir: Path, mnist_dir: Path, *, seed: int = 0, cache_dir: Optional[Path] = None,
                  workers: int = 2, printed: int = SEALED_PRINTED, handwritten: int = SEALED_HANDWRITTEN,
                  pages: int = SEALED_PAGES, words_per_writer: Optional[int] = None,
                  log: Callable[[str], None] = lambda m: None):
    """The held-out family as a ``CropSet`` with tags: office print in the sealed fonts, 1-bit at
    200 dpi (words alone and Tesseract's cuts of paragraph pages), and every word of the sealed
    DHSD writers once, their block capitals and MNIST test digits in pencil, thin pen and pen,
    through the same scans. Fixed by ``seed``."""
    from docsort.training.datasets import mnist
    from docsort.training.datasets.writing_type_crops import CropSet, shows_writing
    from docsort.training.synth.handwriting import dhsd_writer_split, load_dhsd
    from docsort.training.synth.printed import sealed_fonts

    writers = dhsd_writer_split(seed)
    fonts = sealed_fonts()
    test_digits = mnist.load(mnist_dir).test.images
    by_writer: dict[int, list[np.ndarray]] = {}
    for img, _, w in load_dhsd(dhsd_dir, writers.sealed):
        by_writer.setdefault(w, []).append(img)
    # Each crop on a seed of its own, so a change to the ink box redraws only the crops it turns.
    crop_seed = seed + 424_242
    family = CropSet()
    for crop, label, tags in office_crops(np.random.default_rng(crop_seed), printed, handwritten, fonts, by_writer,
                                          test_digits, sealed=True, keep=shows_writing, crop_seed=crop_seed):
        family.add(crop, label, "held_out_family", tags=tags)
    # Every sealed writer's word once, as written.
    for w in sorted(by_writer):
        for j, img in enumerate(by_writer[w][:words_per_writer]):
            rng = np.random.default_rng([crop_seed, 2, w, j])
            for _ in range(8):
                made = office.office_handwritten_crop(rng, img, "dhsd", office.random_office_scan(rng, True))
                if shows_writing(made.image):
                    break
            family.add(made.image, HANDWRITTEN, "held_out_family", tags=made.tags)
    cache = (Path(cache_dir) / f"writing_type_sealed_pages_v1_{seed}_{pages}.pkl") if cache_dir else None
    seeds = [seed * 1_000_003 + 900_000 + i for i in range(pages)]
    for crop, label, conf, tags in paragraph_crops(fonts, seeds, workers, cache, log, sealed=True):
        if shows_writing(crop):
            family.add(crop, label, "held_out_family_pages", conf, tags=tags)
    return family


def condition_table(labels: np.ndarray, p: np.ndarray, tags: Sequence[Sequence[str]]) -> list[dict]:
    """Accuracy per condition row (``CONDITIONS``), for each class that has crops in it."""
    labels = np.asarray(labels).astype(int)
    correct = (np.asarray(p) >= 0.5).astype(int) == labels
    rows = []
    for name, wanted in CONDITIONS:
        sel = np.array([any(t in crop_tags for t in wanted) for crop_tags in tags], bool)
        if not sel.any():
            continue
        row = {"condition": name, "n": int(sel.sum()), "accuracy": float(correct[sel].mean()),
               "errors": int((~correct[sel]).sum())}
        for k, cls in enumerate(("printed", "handwritten")):
            s = sel & (labels == k)
            row[cls] = {"n": int(s.sum()), "accuracy": float(correct[s].mean()) if s.any() else None}
        rows.append(row)
    return rows
