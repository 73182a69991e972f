"""Pick the destination's postal code on a page — never the sender's.

An envelope usually carries two codes: the sender's, printed small in the return address at
the top left, and the destination's, in the address block near the centre. A reader that
takes the first or the most confident code sorts letters back to their senders. So the
choice uses the layout the post office itself relies on:

- words are grouped into lines and lines into blocks (address blocks);
- the block in the return-address corner (top left) and the stamp corner (top right) never
  supply the code;
- every other candidate is scored by a picker fitted on pages of every training layout
  (``candidate_features``, ``docsort train destination``): its reading's confidence, the line of
  its block and the block's place on the page. In an address the code is on the last lines of
  the block: before the place in most of Europe, after place and state in the US, or on a line
  of its own. Where it stands *within* its line is no feature, so a word misread as digits at
  the start of "Springfield, IL 62704" has only its reading's confidence to set against the
  code's.

Printed codes come from Tesseract's text; handwritten ones from the digit reader. Either way
the code is decided ``auto`` only when its confidence reaches the accept threshold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from docsort.batch.records import BBox

# The return-address corner and the stamp corner, as shares of the page.
SENDER_ZONE = (0.42, 0.36)  # x < 42 % of the width and y < 36 % of the height
STAMP_ZONE = (0.62, 0.36)  # x > 62 % of the width and y < 36 % of the height

_SEPARATORS = re.compile(r"[\s,;:]+")
_PREFIX = re.compile(r"^(?:[A-Z]{1,3}-)")
# A code of two groups joined by a hyphen, as Poland (00-950) or Portugal (1000-001) write it.
_HYPHENATED = re.compile(r"(\d{2,})-(\d{2,})")


@dataclass
class Line:
    members: list[int]  # indices of regions, left to right
    bbox: BBox


@dataclass
class Block:
    lines: list[int]  # indices of lines, top to bottom
    bbox: BBox


@dataclass
class Layout:
    lines: list[Line]
    blocks: list[Block]
    line_of: list[int]
    block_of: list[int]


@dataclass
class CodeCandidate:
    """A string of ``code_length`` digits found on the page, and where it stands in the layout."""

    region: int
    value: str
    source: str  # printed | handwritten
    confidence: float
    digit_confidences: list[float]
    bbox: BBox  # clean-page pixels
    extras: dict = field(default_factory=dict)


def union_box(boxes: Sequence[BBox]) -> BBox:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def layout(boxes: Sequence[BBox]) -> Layout:
    """Group word boxes into lines (same height band, near each other) and lines into blocks."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0]))
    lines: list[list[int]] = []
    for i in order:
        x, y, w, h = boxes[i]
        best, best_overlap = None, 0.0
        for li, members in enumerate(lines):
            last = boxes[members[-1]]
            overlap = min(y + h, last[1] + last[3]) - max(y, last[1])
            gap = x - (last[0] + last[2])
            scale = max(h, last[3])
            if overlap >= 0.45 * min(h, last[3]) and gap <= 3.0 * scale and overlap > best_overlap:
                best, best_overlap = li, overlap
        if best is None:
            lines.append([i])
        else:
            lines[best].append(i)
    line_objs = [Line(m, union_box([boxes[i] for i in m])) for m in lines]
    line_objs.sort(key=lambda ln: (ln.bbox[1], ln.bbox[0]))
    line_of = [0] * len(boxes)
    for li, ln in enumerate(line_objs):
        for i in ln.members:
            line_of[i] = li

    blocks: list[list[int]] = []
    for li, ln in enumerate(line_objs):
        x, y, w, h = ln.bbox
        target = None
        for bi, members in enumerate(blocks):
            last = line_objs[members[-1]].bbox
            vgap = y - (last[1] + last[3])
            hoverlap = min(x + w, last[0] + last[2]) - max(x, last[0])
            if -0.5 * h <= vgap <= 1.2 * max(h, last[3]) and (hoverlap > 0 or abs(x - last[0]) < 2 * h):
                target = bi
        if target is None:
            blocks.append([li])
        else:
            blocks[target].append(li)
    block_objs = [Block(m, union_box([line_objs[li].bbox for li in m])) for m in blocks]
    block_of = [0] * len(boxes)
    for bi, b in enumerate(block_objs):
        for li in b.lines:
            for i in line_objs[li].members:
                block_of[i] = bi
    return Layout(line_objs, block_objs, line_of, block_of)


def without_prefix(token: str) -> str:
    """A printed token without the country prefix it may carry (``SE-114`` -> ``114``)."""
    return _PREFIX.sub("", token)


def printed_code(text: Optional[str], code_length: int) -> Optional[str]:
    """The ``code_length``-digit token in Tesseract's text of one word region, if any.

    Accepts country prefixes (``D-12345``), a US ZIP+4 (``62704-1234`` is ``62704``), a code
    written in two groups (``114 55 Stockholm``, ``110 00 Praha``: Sweden, Czechia, Slovakia and
    Greece write their codes so; ``00-950``, ``PL-00-950``, ``1000-001``: Poland, Portugal, Brazil
    and Japan join them with a hyphen) and trailing punctuation, nothing else: a longer number (a
    phone or customer number, ``030 555 0134``) is not a postal code.
    """
    if not text:
        return None
    tokens = [_PREFIX.sub("", token.strip(".()[]'\"")) for token in _SEPARATORS.split(text.strip())]
    for token in tokens:
        if len(token) == code_length and token.isdigit():
            return token
        head, dash, plus4 = token.partition("-")
        if dash and len(head) == code_length and head.isdigit() and len(plus4) == 4 and plus4.isdigit():
            return head
        grouped = _HYPHENATED.fullmatch(token)
        if grouped and len(grouped[1]) + len(grouped[2]) == code_length:
            return grouped[1] + grouped[2]
    numbers = [t.isdigit() for t in tokens]
    for i in range(len(tokens) - 1):
        first, second = tokens[i], tokens[i + 1]
        alone = not (i > 0 and numbers[i - 1]) and not (i + 2 < len(tokens) and numbers[i + 2])
        if (numbers[i] and numbers[i + 1] and alone and len(first) + len(second) == code_length
                and min(len(first), len(second)) >= 2):
            return first + second
    # A code that speckle broke into pieces ("65 = 710"): digits and stray marks, no letters.
    if not any(c.isalpha() for c in text):
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) == code_length:
            return digits
    return None


# Words that introduce a phone or fax number on an address ("Tel. 030 555 0134", "Fax", "Tél.").
_PHONE_WORDS = re.compile(r"^(?:tel|t[ée]l[ée]?phone|tél|phone|ph|fon|telefon|fax|mobil|mobile|mob|handy|cell)\b\.?:?$",
                          re.IGNORECASE)


def phone_line(texts: Sequence[Optional[str]], code_length: int) -> bool:
    """Whether a printed line is a phone or fax number: it starts with a phone word, or holds more
    digits than a code with its +4 ("030 555 0134"), so no code on it is the destination's."""
    words = " ".join(t for t in texts if t).split()
    if words and _PHONE_WORDS.match(words[0]):
        return True
    return sum(c.isdigit() for w in words for c in w) > code_length + 4


def printed_plus4(text: Optional[str], code_length: int) -> Optional[str]:
    """The +4 of a US ZIP+4 in Tesseract's text (``IL 62704-1234`` -> ``1234``), else None: it
    names the delivery segment, which the code itself (the ``value``) leaves open."""
    match = re.search(rf"(?<!\d)\d{{{code_length}}}-(\d{{4}})(?!\d)", text or "")
    return match.group(1) if match else None


def in_zone(bbox: BBox, page_size: tuple[int, int]) -> Optional[str]:
    """``"sender"`` or ``"stamp"`` when a block stands in that corner of the page."""
    pw, ph = page_size
    x, y, w, h = bbox
    cx, cy = x + w / 2, y + h / 2
    if cy < SENDER_ZONE[1] * ph and cx < SENDER_ZONE[0] * pw:
        return "sender"
    if cy < STAMP_ZONE[1] * ph and cx > STAMP_ZONE[0] * pw:
        return "stamp"
    return None


def may_hold_code(lay: Layout, region: int, page_size: tuple[int, int]) -> bool:
    """Whether a region stands where a destination code can: in a block outside the sender and
    stamp corners, on any of its lines. The code is on the last line in most of Europe and the
    US, but a country line (mail across borders), a phone or reference number under it, or the
    East Asian order (code first, name last) put it anywhere in the block; the picker weighs
    the line as evidence, it does not gate it."""
    block = lay.blocks[lay.block_of[region]]
    return in_zone(block.bbox, page_size) is None


# What the fitted picker weighs of each candidate (``candidate_features``), in order.
PICK_FEATURES = ("bias", "log_odds", "last_line", "second_last_line", "centre_distance", "printed",
                 "alone_on_line", "block_lines", "plus4")


def candidate_features(c: CodeCandidate, lay: Layout, page_size: tuple[int, int]) -> list[float]:
    """The evidence that ``c`` is the destination's code: its reading's log-odds (none for a
    code the postal directory does not hold), the line of its block it stands on, how near the
    page centre its block is, print or hand, whether it stands alone on its line, how many lines
    its block has, a ZIP+4. Where it stands *within* a line shared with words is no evidence:
    the code comes first in most of Europe and last in the US."""
    pw, ph = page_size
    block = lay.blocks[lay.block_of[c.region]]
    bx, by, bw, bh = block.bbox
    dx = (bx + bw / 2 - pw / 2) / (pw / 2)
    dy = (by + bh / 2 - ph / 2) / (ph / 2)
    line_index = lay.line_of[c.region]
    from_end = len(block.lines) - 1 - block.lines.index(line_index)
    members = lay.lines[line_index].members
    confidence = c.confidence if c.extras.get("valid", True) else 0.0
    p = min(1.0 - 1e-4, max(1e-4, float(confidence)))
    alone = len(members) == 1
    return [1.0, math.log(p / (1.0 - p)), float(from_end == 0), float(from_end == 1),
            (dx * dx + dy * dy) ** 0.5, float(c.source == "printed"), float(alone),
            min(len(block.lines), 6) / 6.0, float(bool(c.extras.get("plus4")))]


def pick_destination(candidates: Sequence[CodeCandidate], lay: Layout,
                     page_size: tuple[int, int], weights: Optional[Sequence[float]] = None
                     ) -> Optional[CodeCandidate]:
    """The candidate that is the destination's code, or None when no candidate qualifies.

    ``weights`` (over ``PICK_FEATURES``): the picker fitted on generated pages of every
    training layout (``docsort train destination``), shipped in the manifest. Without them, the
    rule it replaced: the block nearest the centre, the last line first, then the confidence.
    """
    best, best_score = None, -1e9
    for c in candidates:
        block = lay.blocks[lay.block_of[c.region]]
        if in_zone(block.bbox, page_size) is not None:
            continue
        if weights is not None:
            score = sum(w * x for w, x in zip(weights, candidate_features(c, lay, page_size)))
        else:
            score = rule_score(c, lay, page_size)
        if score > best_score:
            best, best_score = c, score
    return best


def rule_score(c: CodeCandidate, lay: Layout, page_size: tuple[int, int]) -> float:
    """The hand-set rule the fitted picker replaced (used without a shipped picker, and as the
    baseline its fit is checked against)."""
    pw, ph = page_size
    block = lay.blocks[lay.block_of[c.region]]
    bx, by, bw, bh = block.bbox
    # Nearness of the block to the page centre (0 best, about 1 at a corner).
    dx = (bx + bw / 2 - pw / 2) / (pw / 2)
    dy = (by + bh / 2 - ph / 2) / (ph / 2)
    score = -1.0 * (dx * dx + dy * dy) ** 0.5
    from_end = len(block.lines) - 1 - block.lines.index(lay.line_of[c.region])
    # The line counts more than the confidence: a word on the street line read as digits
    # with confidence must not beat a doubtful reading of the code line itself.
    score += {0: 1.6, 1: 0.5}.get(from_end, 0.0)
    # With a postal directory a code that does not exist has no confidence to offer.
    return score + 1.0 * (c.confidence if c.extras.get("valid", True) else 0.0)


def place_words(lay: Layout, texts: Sequence[Optional[str]], printed: Sequence[bool], region: int) -> list[str]:
    """The printed words that name the place of the code in ``region``: the other words of its
    line ("12345 Berlin", "Springfield, IL 62704"), or, when the code stands alone on its line,
    the words of the line above it in the same block. Words mostly of digits (a code, a house
    number) are not place names; a letter OCR took for a digit ("Ho6rnum") does not make one."""
    line = lay.line_of[region]
    block = lay.blocks[lay.block_of[region]]

    def words_of(line_index: int) -> list[str]:
        out = []
        for i in lay.lines[line_index].members:
            if not printed[i] or not texts[i]:
                continue
            out += [w for w in texts[i].split() if sum(ch.isalpha() for ch in w) > 2 * sum(ch.isdigit() for ch in w)]
        return out

    words = words_of(line)
    position = block.lines.index(line)
    if not words and position > 0:
        words = words_of(block.lines[position - 1])
    return words
