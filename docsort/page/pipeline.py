"""From a scanned page to its crops, their kinds and the destination postal code.

``process_page`` is the whole job for one page, as a short sequence of stages:

    clean page (clean) -> text regions from the ink (regions) -> printed/handwritten, one
    batch (reading.writing_type) -> Tesseract words of the page without its handwriting, one
    call (tesseract) -> handwritten number fields (regions, regions joined with their close
    neighbours, parts of regions cut at their widest spaces) read, one batch, by the segmenting,
    the whole-field and the line reader (reading.digits); printed words that may be codes read
    again by the line reader's network -> destination code (destination) -> overlay

``process_document`` runs it over every page of a file and never raises for a bad input: the
document (or the page) gets status ``error`` and a one-line message. A missing dependency
(Tesseract, a model file) is not a bad input and propagates, so a batch stops at once.
Worker processes call ``warm_up`` once so models load before the first document.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from docsort.page import clean, destination, regions
from docsort.page import tesseract
from docsort.errors import DocsortError, InputError, MissingDependencyError, OutputNotWritableError
from docsort.batch.records import Crop, DocumentResult, PageResult, PostalCode
from docsort.settings import CODE_LENGTH, PAGE_TIMEOUT_S

if TYPE_CHECKING:
    from docsort.reading.digits.segmenting import DigitString

# A handwritten field is read as a code only if its shape can hold that many digits.
MIN_DIGIT_ASPECT, MAX_DIGIT_ASPECT = 0.22, 1.6


@dataclass
class Settings:
    """What a run is asked to do; the same for every page of a batch."""

    code_length: int = CODE_LENGTH
    accept_threshold: Optional[float] = None  # None: the measured cost optimum (docsort.cost.model)
    overlays_dir: Optional[Path] = None
    overlay_size: str = "small"  # docsort.page.overlay.SIZES: reduced JPEG, or "full" (PNG at page size)
    max_megapixels: Optional[float] = None  # None: ingest's default limit
    tesseract_timeout: float = PAGE_TIMEOUT_S
    handwritten_threshold: float = 0.5
    # A region the classifier doubts (P(handwritten) from here up to the threshold) may still join
    # a handwritten number field beside it: a lone digit in a printed box or a detached stroke is
    # the crop the classifier can least tell, and one such call must not break a code apart.
    doubtful_handwriting: float = 0.2
    country: Optional[str] = None  # a postal directory: only its codes can be auto (docsort.page.directory)
    directory_file: Optional[str] = None  # a user's own directory (CSV of code, place)

    def directory(self):
        """The postal directory the codes are read against, loaded once per process (or None)."""
        from docsort.page import directory

        return directory.load(self.country, self.directory_file)

    def threshold(self) -> float:
        if self.accept_threshold is not None:
            return float(self.accept_threshold)
        from docsort.cost.model import default_accept_threshold

        return default_accept_threshold()


class _Models:
    """The two models, loaded once per process."""

    writing_type = None
    digits = None

    @classmethod
    def get(cls):
        if cls.writing_type is None:
            from docsort.reading.writing_type import WritingTypeClassifier

            cls.writing_type = WritingTypeClassifier()
        if cls.digits is None:
            from docsort.reading.digits.mnist_model import shared_reader

            cls.digits = shared_reader()
        return cls.writing_type, cls.digits


def warm_up(settings: Optional[Settings] = None) -> None:
    """Start Tesseract and load the models now, so the first document pays no start-up cost.

    Tesseract starts first and loads its data on another core while the networks load; a
    Tesseract that cannot start (its English data missing) is a missing dependency. ``settings``
    None: what every run needs (a worker started before its run's settings are known).
    """
    import cv2

    from docsort.reading import engine

    settings = settings or Settings()
    reader = tesseract.start_reader()
    # OpenCV's own thread pool gets the worker's threads, as the networks do: two workers each
    # running a pool over every core would only fight for the same cores.
    cv2.setNumThreads(engine.threads())
    _warm_networks()
    if settings.directory() is not None:  # the directory and its reading calibration, loaded once
        from docsort.reading.digits.directory_reader import shipped_calibration

        shipped_calibration()
    reader.check_started()


def _warm_networks() -> None:
    """Every network's session opened (each loader keeps its own per process). Opening is what
    costs; a first call on a dummy page would only add its reading time to a one-document run.

    The writing-type network is needed before Tesseract reads the page and opens now; the number
    fields' readers (a quarter of a second, most of it the line reader) open on a thread of their
    own while the first page is decoded, cleaned and read by Tesseract, and ``_field_readers``
    waits for them.
    """
    global _opening
    _Models.get()
    if _opening is None:
        _one_malloc_arena()
        _opening = _Opening()
        _opening.start()
        # A process that ends while the thread is still inside ONNX Runtime's session set-up
        # aborts ("terminate called without an active exception"): wait for it at exit.
        atexit.register(_opening.join)


def _one_malloc_arena() -> None:
    """glibc gives a second thread that allocates its own malloc arena, and what the readers'
    sessions leave in it stays with the process: about 20 MB more peak memory per worker over a
    batch. One arena keeps a worker's memory what it is without the opening thread; the worker
    reads one document at a time, so its threads rarely allocate at once."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _open_field_readers() -> None:
    from docsort.reading.digits import combine, strings

    strings.shared_reader()
    if combine.uses_line_reader(combine.combination_weights()):
        from docsort.reading.digits import ppocr

        ppocr.shared_reader()


class _Opening(threading.Thread):
    """The number fields' readers opening in the background; ``wait`` re-raises its failure."""

    def __init__(self):
        super().__init__(name="docsort-open-readers", daemon=True)
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            _open_field_readers()
        except BaseException as exc:  # handed to the first page that needs the readers
            self.error = exc

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            error, self.error = self.error, None
            global _opening
            _opening = None  # the next page tries again, and fails the same way
            raise error


_opening: Optional[_Opening] = None


def _field_readers() -> None:
    """The number fields' readers, open (waits for a warm-up still opening them)."""
    if _opening is not None:
        _opening.wait()
    else:
        _open_field_readers()


def process_page(image: np.ndarray, page_number: int, settings: Settings,
                 overlay_path: Optional[Path] = None) -> PageResult:
    """Read one page image (uint8 grey or BGR). Raises ``InputError`` when the page cannot be read."""
    result, _ = read_page(image, page_number, settings)
    _overlay(image, result, overlay_path, settings.overlay_size)
    return result


def read_page(image: np.ndarray, page_number: int, settings: Settings,
              candidates_out: Optional[list] = None) -> tuple[PageResult, list[tuple[np.ndarray, DigitString]]]:
    """The page's result and every handwritten number field read on it (the crop as cut from
    the clean page, and its reading): the field reader is fitted on these crops, so it learns
    from what the pipeline really hands it. ``candidates_out`` gets ``(candidates, layout,
    page size)``, what the destination picker chose from (it is fitted on them)."""
    from docsort.reading.digits.combine import analyse_fields, as_ink

    if image is None or image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
        raise InputError("page image is empty or too small")
    height, width = image.shape[:2]
    writing_type, digits = _Models.get()

    page = clean.prepare(image)
    # Kinds first, so Tesseract reads only what needs its text: print, not handwriting.
    text_regions = regions.ink_regions(page.ink)
    p_hw = _p_handwritten(writing_type, page.grey, text_regions)
    handwritten = [r.bbox for r, p in zip(text_regions, p_hw) if p >= settings.handwritten_threshold]
    printed = [r.bbox for r, p in zip(text_regions, p_hw) if p < settings.handwritten_threshold]
    to_read = regions.without_handwriting(page.grey, handwritten, printed)
    words = tesseract.words(to_read, timeout=settings.tesseract_timeout,
                            scale=tesseract.reading_scale([h for _, _, _, h in printed]),
                            areas=regions.reading_areas(to_read, printed, [r.bbox[3] for r in text_regions]))
    faint = regions.attach_words(text_regions, words)  # print the ink mask missed
    p_hw = np.concatenate([p_hw, _p_handwritten(writing_type, page.grey, faint)])
    order = regions.reading_order(text_regions)
    text_regions, p_hw = [text_regions[i] for i in order], p_hw[order]
    if not text_regions:
        return PageResult(page=page_number, width=width, height=height), []
    kinds = ["handwritten" if p >= settings.handwritten_threshold else "printed" for p in p_hw]

    directory = settings.directory()
    k = directory.length if directory is not None else settings.code_length
    page_size = page.grey.shape[1], page.grey.shape[0]
    lay = destination.layout([r.bbox for r in text_regions])
    candidates: list[destination.CodeCandidate] = []
    doubtful = {i for i, p in enumerate(p_hw) if settings.doubtful_handwriting <= p < settings.handwritten_threshold}
    doubtful |= {i for i, r in enumerate(text_regions) if kinds[i] == "printed" and _lone_character(r.bbox)}
    second = _printed_second_readings(page.grey, text_regions, kinds, lay, page_size, k)
    disputed = [i for i, r in enumerate(text_regions) if kinds[i] == "printed"
                and readers_disagree(destination.printed_code(r.text, k), second.get(i), k)]
    fields = _number_fields(text_regions, kinds, lay, page_size, k, doubtful)
    parts = _code_parts(page, text_regions, kinds, lay, page_size, k)
    fields += [(i, part) for i, part, _ in parts]
    # Print the two printed readers read as different codes may be hand-printed digits taken for
    # print: the field readers read it too, in the same batch, as the deciding third vote
    # (``printed_reading``).
    field_crops = [regions.cut(page.grey, bbox) for _, bbox in fields]
    field_crops += [regions.cut(page.grey, text_regions[i].bbox) for i in disputed]
    if field_crops:
        _field_readers()
    if directory is None:
        analyses = (analyse_fields([as_ink(c) for c in field_crops], k, reader=digits, cheap_first=True)
                    if field_crops else [])
        field_readings = [a.reading for a in analyses]
        other_numbers = [_holds_another_number(a.whole, a.line, k) for a in analyses]
    else:
        field_readings, other_numbers = _read_against(field_crops, k, directory, digits)
    votes = dict(zip(disputed, field_readings[len(fields):]))
    field_readings, other_numbers = field_readings[:len(fields)], other_numbers[:len(fields)]
    first_part = len(fields) - len(parts)
    # A region that by itself reads as a number of another length (a phone number's group,
    # "063767") yields no code from its parts: its first digit set a little apart is no
    # prefix, and the other five no code.
    numbers = {i for n, (i, bbox) in enumerate(fields[:first_part])
               if other_numbers[n] and bbox == text_regions[i].bbox}
    # A part of a region with digits beside it is a piece of a longer number: no candidate.
    # (Parts of such a region are not asked: the line reader would read their sides for nothing.)
    pieces = _pieces_of_numbers(page, [beside for _, _, beside in parts],
                                [len(r.digits) == k and r.confidence >= PIECE_CHECK_FLOOR and i not in numbers
                                 for (i, _, _), r in zip(parts, field_readings[first_part:])]) if parts else []
    # Per region keep the better reading: of the region alone, or joined with its neighbour.
    readings: dict[int, DigitString] = {}
    field_boxes: dict[int, tuple[int, int, int, int]] = {}
    not_codes: set[int] = set()
    for n, ((i, bbox), reading, other) in enumerate(zip(fields, field_readings, other_numbers)):
        if n >= first_part and (pieces[n - first_part] or i in numbers):
            continue
        if i not in readings or reading.confidence > readings[i].confidence:
            readings[i], field_boxes[i] = reading, bbox
            (not_codes.add if other else not_codes.discard)(i)
    for i, region in enumerate(text_regions):
        if kinds[i] == "printed":
            if _on_phone_line(text_regions, kinds, lay, i, k):
                continue  # a phone or fax number is no postal code
            tesseract_value = destination.printed_code(region.text, k)
            # The word that holds the code, its groups' hyphen aside ("98-240" holds 98240).
            word = next((w for w in region.words if tesseract_value and tesseract_value in w.text.replace("-", "")),
                        None)
            tesseract_conf = (_printed_confidence(word.conf if word else region.tesseract_conf)
                              if tesseract_value else 0.0)
            value, conf = printed_reading(tesseract_value, tesseract_conf, second.get(i), k, votes.get(i))
            if value:
                candidates.append(destination.CodeCandidate(
                    i, value, "printed", conf, [conf] * k, word.bbox if word else region.bbox,
                    {**_validity(directory, value), "plus4": destination.printed_plus4(region.text, k)}))
            split = _split_printed_code(text_regions, kinds, lay, i, k)
            if split is not None and not value:
                j, joined = split
                words = [w for r in (region, text_regions[j]) for w in r.words]
                conf = _printed_confidence(min((w.conf for w in words), default=region.tesseract_conf))
                candidates.append(destination.CodeCandidate(
                    i, joined, "printed", conf, [conf] * k, destination.union_box([region.bbox, text_regions[j].bbox]),
                    {**_validity(directory, joined), "plus4": None}))
        # A doubted region that starts a handwritten field is read both ways; the picker chooses.
        if i in readings and len(readings[i].digits) == k and i not in not_codes:
            reading = readings[i]
            candidates.append(destination.CodeCandidate(
                i, reading.digits, "handwritten", reading.confidence, reading.digit_confidences, field_boxes[i],
                _validity(directory, reading.digits)))
    if candidates_out is not None:
        candidates_out.append((candidates, lay, page_size))
    chosen = destination.pick_destination(candidates, lay, page_size, _picker())

    records = []
    for i, region in enumerate(text_regions):
        reading = readings.get(i)
        records.append(Crop(
            bbox=page.page_bbox(region.bbox),
            kind=kinds[i],
            p_handwritten=float(p_hw[i]),
            # Tesseract's text for print; for handwriting, which Tesseract cannot read, the digits.
            text=region.text if kinds[i] == "printed" else (reading.digits or None if reading else None),
            digits=reading.digits if reading and reading.digits else None,
            confidence=float(reading.confidence) if reading and reading.digits else None,
        ))
    code = None
    if chosen is not None:
        threshold = settings.threshold()
        confidence = float(chosen.confidence)
        checked = {}
        if directory is not None:
            from docsort.page import directory as postal_directory

            words = destination.place_words(lay, [r.text for r in text_regions],
                                            [kind == "printed" for kind in kinds], chosen.region)
            place = postal_directory.check_place(directory, chosen.value, words)
            confidence = postal_directory.with_place(confidence, place.match)
            checked = dict(valid=chosen.value in directory, place=directory.place(chosen.value),
                           place_read=place.read, place_match=place.match,
                           written=directory.format.written(chosen.value))
        code = PostalCode(
            value=chosen.value,
            source=chosen.source,
            confidence=confidence,
            digit_confidences=[float(c) for c in chosen.digit_confidences],
            bbox=page.page_bbox(chosen.bbox),
            plus4=chosen.extras.get("plus4"),
            # A code that does not exist is never sorted automatically.
            decision="auto" if confidence >= threshold and checked.get("valid", True) else "manual",
            **checked,
        )
    result = PageResult(page=page_number, width=width, height=height, crops=records, postal_code=code)
    return result, list(zip(field_crops[:len(fields)], field_readings))


def _picker() -> Optional[list[float]]:
    """The fitted destination picker's weights from the manifest (None: the rule it replaced)."""
    from docsort.reading import manifest

    picker = manifest.shipped().destination
    return list(picker["weights"]) if picker else None


def _p_handwritten(writing_type, grey: np.ndarray, text_regions) -> np.ndarray:
    """P(handwritten) of each region's crop, in one batch."""
    if not text_regions:
        return np.zeros(0, np.float32)
    crops = [regions.cut(grey, r.bbox) for r in text_regions]
    return np.asarray(writing_type.p_handwritten(crops), np.float32)


def _validity(directory, value: str) -> dict:
    """What a code candidate carries with a directory: whether its code exists."""
    return {} if directory is None else {"valid": value in directory}


def _read_against(field_crops, code_length: int, directory, digits) -> tuple[list[DigitString], list[bool]]:
    """Each field read against the directory: its best code that exists, with P(right), and
    whether it holds another number. A field with no candidate code that exists keeps its plain
    reading (it can never be ``auto``)."""
    from docsort.reading.digits import directory_reader

    out, others = [], []
    for field in directory_reader.read_fields(field_crops, code_length, directory, reader=digits):
        against = field.directory
        out.append(against.as_digit_string() if against is not None and against.code else field.plain)
        others.append(_holds_another_number(field.whole, field.line, code_length))
    return out, others


def _holds_another_number(whole, line, code_length: int) -> bool:
    """Whether a field holds a number that is no code: both whole-field readers, which read a
    field at whatever length it holds, read the same count of digits with some confidence, and
    it is neither a code's nor a ZIP+4's (a phone number, an amount, a date). Forcing such a
    field to ``code_length`` digits only makes a code up."""
    if line is None or not whole.digits or not line.digits:
        return False
    count = len(whole.digits)
    return (count == len(line.digits) and count not in (code_length, code_length + 4)
            and min(whole.confidence, line.confidence) >= 0.5)


def _number_fields(text_regions, kinds, lay, page_size, count: int,
                   doubtful: frozenset[int] | set[int] = frozenset()) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Handwritten fields to read as codes: ``(region, box)`` pairs.

    A writer who leaves a wide space inside a code (or writes it into cells) splits it into two
    ink regions, so each region standing where a code can is read alone and, when a
    handwritten neighbour follows it closely on the same line, also joined with it; the better
    reading wins. The whole-field and line readers read every field first, so a joined field
    that holds no code costs little.

    ``doubtful`` regions (printed by a narrow margin, or a lone character called printed) may be
    members of a joined field, its first included, as long as the field holds one region called
    handwritten: a digit alone in its cell is the crop the classifier can least tell, and a code
    written into boxes must not depend on every box's call.
    """
    def joinable(i: int) -> bool:
        return kinds[i] == "handwritten" or i in doubtful

    fields = []
    for i, region in enumerate(text_regions):
        if not joinable(i) or not destination.may_hold_code(lay, i, page_size):
            continue
        if kinds[i] == "handwritten" and _may_hold_digits(region.bbox, count):
            fields.append((i, region.bbox))
        members = lay.lines[lay.line_of[i]].members
        position = members.index(i)
        boxes = [region.bbox]
        any_handwritten = kinds[i] == "handwritten"
        # Joined with the close handwritten neighbours that follow, one more at a time: a code
        # written digit by digit into separate boxes comes apart in as many regions.
        for j in members[position + 1:position + count]:
            x, y, w, h = boxes[-1]
            nx, ny, nw, nh = text_regions[j].bbox
            # Digits written one by one (into boxes printed apart) stand further apart than the
            # letters of a word: two single characters may be one and a half heights apart. A
            # digit is as wide as any one digit can be (a short, broad 3 or 5 in a cell is wider
            # than it is tall).
            single = _one_digit_wide(boxes[-1]) and _one_digit_wide(text_regions[j].bbox)
            groups = _two_groups(boxes, text_regions[j].bbox, count)
            if not joinable(j) or nx - (x + w) > (1.5 if single or groups else 0.9) * max(h, nh):
                break
            boxes.append(text_regions[j].bbox)
            any_handwritten = any_handwritten or kinds[j] == "handwritten"
            joined = destination.union_box(boxes)
            if _may_hold_digits(joined, count):
                if any_handwritten:
                    fields.append((i, joined))
            elif joined[2] / max(joined[3], 1) > MAX_DIGIT_ASPECT * count:
                break
    return fields


# Spaces inside a handwritten region at least this share of its height may part two words
# (letters of one word stand closer, or touch), and at most this many of the widest are cut at.
PART_SPACE = 0.12
PART_CUTS = 4
# A part is read as a code only when the whole-field reader, at one view, reads it as a code's
# length with at least this P, or a digit more or fewer with the second: a cost gate (a page's
# parts are mostly pieces of words, and the full readers cost several times this look).
PART_READING_FLOOR = 0.25
PART_READING_FLOOR_OFF_BY_ONE = 0.6
# What stands beside a part is looked at again (by the line reader) when the whole-field reader
# reads it as digits with at least this P: low, since a missed number beside a part lets a piece
# of a phone number through.
SIDE_DIGITS_FLOOR = 0.1
# What stands beside a part is looked at this many region heights into the rest of the region:
# the digits that would continue a number, not the whole line (the line reader's cost and memory
# grow with the width it reads).
SIDE_REACH = 2.5
# A part is asked whether it is a piece of a longer number once it reads as a code with this P.
PIECE_CHECK_FLOOR = 0.3
# The gate reads each region at one ink height, the best single view (benchmarks/bench_string_views.py).
PART_GATE_VIEW = 26
# Paper kept around a region cut from the page (``regions.cut``'s default).
CUT_MARGIN = 4


def _code_parts(page, text_regions, kinds, lay, page_size, count: int):
    """Parts of handwritten regions to read as codes: ``(region, box, what stands beside it)``.

    A writer who leaves narrow word spaces writes "75008 Paris" or "Springfield IL 62704" as one
    ink region, and the code is one of its parts (``_spaced_parts``). Each region with parts is
    read once by the whole-field reader at one view, and every part gets its reading from those
    columns (``StringReader.read_spans``): the cost of one line, not of every part. Only parts
    read as a code, or nearly, go on (``PART_READING_FLOOR``); whether one is a piece of a longer
    number is asked once it is read (``_pieces_of_numbers``).
    """
    from docsort.reading.digits.combine import as_ink
    from docsort.reading.digits.strings import shared_reader

    split = []  # (region, crop origin x, parts with what stands beside them)
    for i, region in enumerate(text_regions):
        if kinds[i] == "handwritten" and destination.may_hold_code(lay, i, page_size):
            parts = _spaced_parts(page.ink, region.bbox, count)
            if parts:
                split.append((i, max(0, region.bbox[0] - CUT_MARGIN), parts))
    if not split:
        return []
    crops = [as_ink(regions.cut(page.grey, text_regions[i].bbox, CUT_MARGIN)) for i, _, _ in split]
    readings = shared_reader().read_spans(
        crops, [[(part[0] - origin, part[0] + part[2] - origin) for part, _ in parts] for _, origin, parts in split],
        body=PART_GATE_VIEW)
    return [(i, part, beside) for (i, _, parts), field in zip(split, readings)
            for (part, beside), r in zip(parts, field) if _reads_as_code(r, count)]


def _reads_as_code(reading, count: int) -> bool:
    """The gate's look at a part: a code's length at ``PART_READING_FLOOR``, or a digit more or
    fewer at ``PART_READING_FLOOR_OFF_BY_ONE``."""
    off = abs(len(reading.digits) - count)
    return (off == 0 and reading.confidence >= PART_READING_FLOOR) or (
        off == 1 and reading.confidence >= PART_READING_FLOOR_OFF_BY_ONE)


def _pieces_of_numbers(page, besides: Sequence[Sequence[tuple[int, int, int, int]]],
                       asked: Sequence[bool]) -> list[bool]:
    """For each part read as a code (``asked``), whether digits stand beside it in its region:
    then it is a piece of a longer number (a phone number, a reference, the code itself cut
    between two digits), not a code.

    What stands beside a part (its region on either side, ``SIDE_REACH`` heights of it) is read
    by the whole-field reader at one view; of what it reads as digits (P >=
    ``SIDE_DIGITS_FLOOR``), and of any one character, the line reader reads the text, letters
    included, in one batch. It is digits when that text is mostly digits, or when it is one
    character that the whole-field reader is sure is a digit (P >= 0.9) and the line reader is
    unsure of (P < 0.8: a handwritten 8 read as "P"). Only parts read as codes are asked: the
    line reader costs about twenty times the whole-field reader, and a part that reads as no
    code can neither win nor mislead.
    """
    from docsort.reading.digits import ppocr
    from docsort.reading.digits.combine import as_ink
    from docsort.reading.digits.strings import shared_reader

    sides = sorted({box for beside, ask in zip(besides, asked) if ask for box in beside})
    if not sides:
        return [False] * len(besides)
    inks = {box: as_ink(regions.cut(page.grey, box)) for box in sides}
    wholes = dict(zip(sides, shared_reader().read_inks([inks[b] for b in sides], views=(PART_GATE_VIEW,))))
    # One character is read by the line reader whatever the whole-field reader says: that reader
    # knows digits only, and reads the first letter of the place after a code ("l", "I") as a 1.
    doubted = [b for b in sides
               if (wholes[b].digits and wholes[b].confidence >= SIDE_DIGITS_FLOOR) or _one_character(b)]
    texts = ppocr.shared_reader().read_text([inks[b] for b in doubted]) if doubted else []
    digits_at = {b: _mostly_digits(text) or (_one_character(b) and bool(wholes[b].digits)
                                             and wholes[b].confidence >= 0.9 and p_text < 0.8)
                 for b, (text, p_text) in zip(doubted, texts)}
    return [ask and any(digits_at.get(b, False) for b in beside) for beside, ask in zip(besides, asked)]


# A part's neighbour of at most this many heights is one character (a wide 0 included).
ONE_CHARACTER_ASPECT = 1.5


def _one_character(bbox: tuple[int, int, int, int]) -> bool:
    return bbox[2] <= ONE_CHARACTER_ASPECT * bbox[3]


def _mostly_digits(text: str) -> bool:
    """A reading, letters and marks included, whose letters and digits are at least half digits;
    an O alone counts as a 0 (a handwritten 0 alone is read as one as often as not, while an o
    in a word is a letter)."""
    chars = [c for c in text if c.isalnum()]
    if len(chars) == 1 and chars[0] in "Oo":
        return True
    return bool(chars) and 2 * sum(c.isdigit() for c in chars) >= len(chars)


def _spaced_parts(ink: np.ndarray, bbox: tuple[int, int, int, int], count: int):
    """The parts of a handwritten region between its widest inner spaces that may hold a code
    of ``count`` digits: every run of words from one cut (or the region's edge) to another,
    boxed to its ink, each with the boxes of what stands beside it in the region (one on each
    side that has any, reaching ``SIDE_REACH`` heights). Which part, if any, is the code is the
    readers' and the picker's call."""
    x, y, w, h = bbox
    window = ink[y:y + h, x:x + w]
    columns = window.any(axis=0)
    if w < 3 or not columns.any():
        return []
    spaces, start = [], None
    for cx, inked in enumerate(columns):
        if not inked and start is None:
            start = cx
        elif inked and start is not None:
            if start > 0 and cx - start >= max(2, PART_SPACE * h):
                spaces.append((start, cx))
            start = None
    if not spaces:
        return []
    widest = sorted(sorted(spaces, key=lambda s: s[0] - s[1])[:PART_CUTS])
    edges = [(0, 0), *widest, (w, w)]

    def boxed(left: int, right: int) -> Optional[tuple[int, int, int, int]]:
        rows = np.flatnonzero(window[:, left:right].any(axis=1))
        if right <= left or not len(rows):
            return None
        return (x + left, y + int(rows[0]), right - left, int(rows[-1] - rows[0] + 1))

    parts = []
    for a in range(len(edges) - 1):
        for b in range(a + 1, len(edges)):
            if (a, b) == (0, len(edges) - 1):
                continue  # the whole region, read as it is
            part = boxed(edges[a][1], edges[b][0])
            if part is not None and _may_hold_digits(part, count):
                reach = int(SIDE_REACH * h)
                beside = [r for r in (boxed(max(0, edges[a][0] - reach), edges[a][0]) if a > 0 else None,
                                      boxed(edges[b][1], min(w, edges[b][1] + reach)) if b < len(edges) - 1 else None)
                          if r]
                parts.append((part, beside))
    return parts


# A region no wider than this many heights holds one character (a digit alone in its cell).
LONE_CHARACTER_ASPECT = 1.2


def _lone_character(bbox: tuple[int, int, int, int]) -> bool:
    """One character alone: a few strokes are all the classifier has to go on, so its call, however
    sure, does not decide whether the character belongs to a handwritten code beside it (a digit
    written into a pre-printed box comes as a crop of its own); the readers decide."""
    _, _, w, h = bbox
    return w <= LONE_CHARACTER_ASPECT * h


def _two_groups(boxes: Sequence[tuple[int, int, int, int]], following: tuple[int, int, int, int], count: int) -> bool:
    """Whether one region and the one after it may be a code written in two groups (``114 55``,
    as Sweden, Czechia, Slovakia and Greece write it): a word space apart, the first as wide as
    all but two of a code's digits can be, the second as two (longer words are not read so:
    every pair read costs the readers a field)."""
    if len(boxes) != 1 or count < 4:
        return False
    (_, _, w1, h1), (_, _, w2, h2) = boxes[0], following
    return w1 <= GROUP_DIGIT_ASPECT * (count - 2) * h1 and w2 <= GROUP_DIGIT_ASPECT * 2 * h2


def _one_digit_wide(bbox: tuple[int, int, int, int]) -> bool:
    """No wider than one handwritten digit can be."""
    _, _, w, h = bbox
    return w <= MAX_DIGIT_ASPECT * h


def _may_hold_digits(bbox: tuple[int, int, int, int], count: int) -> bool:
    _, _, w, h = bbox
    aspect = w / max(h, 1)
    return MIN_DIGIT_ASPECT * count <= aspect <= MAX_DIGIT_ASPECT * count


# Characters Tesseract reads where print holds a digit it could not make out ("g9352" for 80352,
# "4O1" for 401): with the digits, they make a printed word worth reading again as a number.
DIGIT_LOOKALIKES = set("OoQDIl|!SsBZzGgbqT")
# A handwritten digit of a code written in two groups is at most this many heights wide, its
# space to the next included.
GROUP_DIGIT_ASPECT = 1.2
# The two groups of a printed code written in two (``114 55``) stand at most this many heights apart
# (a typewriter face's space is a whole character wide).
SPLIT_CODE_GAP = 2.0
# A printed digit is about this many heights wide (with its space): a region Tesseract read as a
# few digits is read again only when it is wide enough for a code's digits but one.
PRINTED_DIGIT_ASPECT = 0.45
# PP-OCR's reading of a printed code that Tesseract did not read as one is never surer than this:
# one reader alone (``printed_reading``).
LONE_SECOND_READING = 0.95
# Two readers who read a printed word as different codes: the surer one, never sure enough to sort.
DISAGREEING = 0.5


def _printed_second_readings(grey: np.ndarray, text_regions, kinds, lay, page_size, count: int) -> dict:
    """PP-OCR's recogniser's text of each printed word that may be a code, in one batch.

    Tesseract misreads print it was not tuned on (a code inside a printed box, italic or bold
    digits, a mark before the code) and says it is sure; a second reader trained on other data
    confirms its code, catches its misreadings, and reads what it made letters of. Only words
    that may hold a code are read again: mostly digits (or their look-alikes) by Tesseract's
    text, or no text at all in a code's shape, where a destination code may stand (not in the
    sender's or the stamp's corner, not on a phone line: the picker takes no code from there).
    """
    chosen = []
    for i, region in enumerate(text_regions):
        if kinds[i] != "printed" or not destination.may_hold_code(lay, i, page_size):
            continue
        text = (region.text or "").strip()
        if text:
            digits = sum(c.isdigit() for c in text)
            alike = sum(c in DIGIT_LOOKALIKES for c in text)
            letters = sum(c.isalpha() for c in text) - alike
            # Digits enough for a code, or fewer in a region of a code's shape with no letter:
            # Tesseract dropped some (print beside a barcode or a stamp reads "9 7" for 92797).
            maybe = digits >= 2 and digits + alike >= count - 1 and letters <= 2
            _, _, w, h = region.bbox
            dropped = (digits >= 1 and letters <= 0 and _may_hold_digits(region.bbox, count)
                       and w >= PRINTED_DIGIT_ASPECT * (count - 1) * h)
            if (maybe or dropped) and not _on_phone_line(text_regions, kinds, lay, i, count):
                chosen.append(i)
        elif _may_hold_digits(region.bbox, count):
            chosen.append(i)
    if not chosen:
        return {}
    from docsort.reading.digits.combine import as_ink, combination_weights, uses_line_reader
    from docsort.reading.digits.ppocr import shared_reader

    if not uses_line_reader(combination_weights()):
        return {}  # a models folder without the line reader: Tesseract's reading alone

    _field_readers()
    readings = shared_reader().read_text([as_ink(regions.cut(grey, text_regions[i].bbox)) for i in chosen])
    return dict(zip(chosen, readings))


def _split_printed_code(text_regions, kinds, lay, i: int, count: int) -> Optional[tuple[int, str]]:
    """A printed code in two groups (``114 55``, ``110 00``: Sweden, Czechia, Slovakia and Greece
    write their codes so) that starts at region ``i``: ``(the second group's region, the code)``.
    Two printed numbers side by side on a line, a word space apart, of two digits at least each and
    a code's digits together; a third number beside them makes a longer number (a phone's groups),
    not a code."""
    members = lay.lines[lay.line_of[i]].members
    at = members.index(i)

    def number(m: int) -> Optional[str]:
        text = (text_regions[m].text or "").strip(".,;:()")
        if m == i:  # the first group may carry the country prefix ("SE-114 55")
            text = destination.without_prefix(text)
        return text if kinds[m] == "printed" and text.isdigit() else None

    def close(a: int, b: int) -> bool:
        (ax, _, aw, ah), (bx, _, _, bh) = text_regions[a].bbox, text_regions[b].bbox
        return bx - (ax + aw) <= SPLIT_CODE_GAP * max(ah, bh)

    if at + 1 >= len(members):
        return None
    j = members[at + 1]
    first, second = number(i), number(j)
    if not first or not second or len(first) + len(second) != count or min(len(first), len(second)) < 2:
        return None
    if not close(i, j):
        return None
    before = members[at - 1] if at > 0 else None
    after = members[at + 2] if at + 2 < len(members) else None
    if (before is not None and number(before) and close(before, i)) or (after is not None and number(after) and close(j, after)):
        return None
    return j, first + second


def _on_phone_line(text_regions, kinds, lay, i: int, count: int) -> bool:
    """Whether region ``i`` stands on a printed phone or fax line (no postal code comes from it)."""
    line = lay.lines[lay.line_of[i]].members
    return destination.phone_line([text_regions[j].text for j in line if kinds[j] == "printed"], count)


def _second_code(second: Optional[tuple[str, float]], count: int) -> tuple[Optional[str], float, str]:
    """PP-OCR's reading of a printed word: the code it holds (or None), that text's P, its digits."""
    if second is None or not second[0]:
        return None, 0.0, ""
    return destination.printed_code(second[0], count), float(second[1]), "".join(c for c in second[0] if c.isdigit())


def readers_disagree(tesseract_value: Optional[str], second: Optional[tuple[str, float]], count: int) -> bool:
    """Whether Tesseract read a code that PP-OCR, with some confidence, reads as something else
    (another code, or text that is no part of it): ``printed_reading``'s ``DISAGREEING`` case."""
    value, p, part = _second_code(second, count)
    if tesseract_value is None or value == tesseract_value or p < 0.5:
        return False
    return not (value is None and part and len(part) < count and part in tesseract_value)


def printed_reading(tesseract_value: Optional[str], tesseract_conf: float,
                    second: Optional[tuple[str, float]], count: int,
                    third: Optional[DigitString] = None) -> tuple[Optional[str], float]:
    """A printed code and P(right) from Tesseract's reading and PP-OCR's (``second``: its text
    of the word and that text's probability, or None).

    - Both read the same code: the surer of the two.
    - They read different numbers, PP-OCR with some confidence: the surer reading, never sure
      enough to sort (``DISAGREEING``), unless ``third`` (the handwritten-field readers' reading
      of the word) reads the code one of them read: two readers of three agree, and the field
      readers' calibrated P is the code's. Hand-printed digits in one stroke width are taken for
      print now and then; the readers of print read them each their own way.
    - Only PP-OCR reads a code: its reading, never surer than ``LONE_SECOND_READING``.
    - Only Tesseract, or PP-OCR unsure of anything, or PP-OCR reading a part of Tesseract's code
      (the word's region cut at the hyphen of ``98-240``): Tesseract's reading as it was.
    """
    value, p, _ = _second_code(second, count)
    if tesseract_value is None:
        return (value, min(p, LONE_SECOND_READING)) if value else (None, 0.0)
    if value == tesseract_value:
        return value, max(tesseract_conf, min(p, 0.998))
    if not readers_disagree(tesseract_value, second, count):
        return tesseract_value, tesseract_conf
    if third is not None and third.digits and third.digits in (tesseract_value, value):
        return third.digits, max(DISAGREEING, min(float(third.confidence), 0.998))
    if value is not None and p > tesseract_conf:
        return value, min(p, DISAGREEING)
    return tesseract_value, min(tesseract_conf, DISAGREEING)


def _printed_confidence(tesseract_conf: float) -> float:
    """Tesseract's word confidence (0-100) for a printed code as a probability that it is right.

    A printed word that Tesseract reads as exactly ``code_length`` digits is almost always
    right once its confidence is past ~70 (on the envelope benchmark every such code was), but
    the number itself is not a probability: it is mapped onto one that puts clean print
    (conf >= 80) above the usual accept thresholds and doubtful print (conf < 60) below them.
    """
    c = max(0.0, min(100.0, float(tesseract_conf)))
    if c < 60.0:
        return 0.8 * c / 60.0
    return min(0.998, 0.95 + 0.048 * (c - 60.0) / 40.0)


def _overlay(image: np.ndarray, result: PageResult, path: Optional[Path], size: str) -> None:
    if path is None:
        return
    from docsort.page.overlay import write_overlay

    write_overlay(image, result, path, size)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def overlay_path(settings: Settings, document: Path, page: int) -> Optional[Path]:
    """Where a page's overlay goes: one file per input file and page (``docsort.page.overlay.file_name``)."""
    if settings.overlays_dir is None:
        return None
    from docsort.page.overlay import file_name

    return Path(settings.overlays_dir) / file_name(document, page, settings.overlay_size)


def process_document(path: str | Path, settings: Settings, name: Optional[str] = None) -> DocumentResult:
    """Every page of one file. Never raises for a bad input; a missing dependency propagates."""
    from docsort.page import ingest

    path = Path(path)
    label = name if name is not None else str(path)
    try:
        sha = _sha256(path)
    except OSError as exc:
        return DocumentResult(file=label, sha256=None, status="error",
                              error=f"cannot read file: {exc.strerror or exc}")
    pages: list[PageResult] = []
    try:
        limit = settings.max_megapixels
        page_iter = ingest.iter_pages(path) if limit is None else ingest.iter_pages(path, max_megapixels=limit)
        for page in page_iter:
            if not page.ok:
                pages.append(PageResult(page=page.number, width=0, height=0, error=page.error))
                continue
            try:
                pages.append(process_page(page.image, page.number, settings,
                                          overlay_path(settings, path, page.number)))
            except (MissingDependencyError, OutputNotWritableError):
                raise
            except DocsortError as exc:
                h, w = page.image.shape[:2]
                pages.append(PageResult(page=page.number, width=w, height=h, error=_one_line(exc)))
    except (MissingDependencyError, OutputNotWritableError):
        raise
    except DocsortError as exc:
        return DocumentResult(file=label, sha256=sha, status="error", error=_one_line(exc))
    except (OSError, ValueError, MemoryError) as exc:
        return DocumentResult(file=label, sha256=sha, status="error",
                              error=f"cannot read document: {_one_line(exc)}")
    if not pages:
        return DocumentResult(file=label, sha256=sha, status="error", error="document has no pages")
    if all(p.error for p in pages):
        return DocumentResult(file=label, sha256=sha, status="error", error=pages[0].error, pages=[])
    return DocumentResult(file=label, sha256=sha, status="ok", pages=pages)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
