"""Postal directories: which codes exist in a country, and the places each one serves.

A sorting machine never sends a letter to a code that does not exist, so a reading that lands
on one is known to be wrong. ``--country CC`` brings a country's code format and its directory
of codes with their places, from maintained packages that ship the data in their wheels:

- US: ``zipcodes`` (MIT; ZIP codes from USPS, unitedstateszipcodes.org and GeoNames), the active
  ZIP codes with their city, the other city names USPS accepts, and the state;
- every other country whose codes are digits, in one number (DE, FR, AT, CH, ...) or in two
  groups (PL ``00-950``, PT ``1000-001``, BR ``01310-100``, JP ``100-0001``, SE, CZ, SK, GR
  ``114 55``): ``countrystatecity-postal-codes`` (ODbL v1.0, the countries-states-cities
  database), the codes with their localities. A code is kept and read as its digits; the
  ``written`` form in the results puts the country's separator back.

``--directory FILE`` reads a user's own list instead (CSV rows ``code,place``).

A directory is loaded once per process. The US package decompresses its whole dataset on first
use (about half a second), so the compact form docsort needs (codes, places, states) is kept in
the cache folder (``settings.cache_folder()``: ``$DOCSORT_CACHE`` or ``~/.cache/docsort``) under the package's name and
version, and later processes read that in milliseconds; nothing is ever written into a package.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from docsort import settings
from docsort.errors import MissingDependencyError, UsageError

US_PACKAGE = "zipcodes"
WORLD_PACKAGE = "countrystatecity-postal-codes"
LICENCES = {US_PACKAGE: "MIT", WORLD_PACKAGE: "ODbL-1.0"}
ATTRIBUTION = {
    US_PACKAGE: "zipcodes (Sean Pianka, MIT): USPS ZIP Locale Detail, unitedstateszipcodes.org, GeoNames (CC BY 4.0)",
    WORLD_PACKAGE: "countrystatecity-postal-codes (dr5hn): countries-states-cities database, "
                   "Open Database License v1.0",
}
# Printed prefixes a country's codes may carry ("D-12345"); Tesseract's text is read with them.
PREFIXES = {"DE": ("D-", "DE-"), "AT": ("A-", "AT-"), "CH": ("CH-",), "FR": ("F-", "FR-"), "IT": ("I-", "IT-"),
            "ES": ("E-", "ES-"), "BE": ("B-", "BE-"), "DK": ("DK-",), "NO": ("N-", "NO-"), "FI": ("FI-",),
            "HR": ("HR-",), "SI": ("SI-",)}
CACHE_VERSION = 2
# A code's places are kept as one string (loading 41,749 short strings is much faster than as
# many lists); the cache file joins the codes' entries with ENTRY_SEPARATOR.
PLACE_SEPARATOR = "\x1f"
ENTRY_SEPARATOR = "\x1e"


@dataclass(frozen=True)
class CodeFormat:
    """How a country writes its codes: how many digits, a US ZIP+4, printed prefixes, and the
    groups some countries write them in (Poland ``00-950``, Portugal ``1000-001``, Brazil
    ``01310-100``, Japan ``100-0001``, Sweden, Czechia, Slovakia and Greece ``114 55``)."""

    length: int
    plus4: bool = False
    prefixes: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()  # digits of each group; () for a code written as one number
    separator: str = ""  # what stands between the groups ("-" or " ")

    def written(self, code: str) -> str:
        """The code as the country writes it (``00950`` -> ``00-950`` in Poland)."""
        if len(self.groups) < 2 or len(code) != self.length:
            return code
        parts, start = [], 0
        for size in self.groups:
            parts.append(code[start:start + size])
            start += size
        return self.separator.join(parts)

    @property
    def pattern(self) -> str:
        """The format as the world package writes it: ``##-###``, ``#####``."""
        return self.written("#" * self.length)


@dataclass
class Directory:
    """The codes that exist, and the places (and for the US the state) each one serves."""

    country: Optional[str]  # ISO 3166 code; None for a user's list without --country
    name: str
    format: CodeFormat
    source: dict  # package, version, licence (or the user's file)
    places_by_code: dict[str, str]  # each code's places joined by PLACE_SEPARATOR, its main one first
    states: dict[str, str] = field(default_factory=dict)
    # What readers derive from the codes once per process (sorted codes, digit array, prefix tree).
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.places_by_code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.places_by_code

    def places(self, code: str) -> tuple[str, ...]:
        """The code's places, its main one first; empty for a code that does not exist."""
        joined = self.places_by_code.get(code)
        return tuple(joined.split(PLACE_SEPARATOR)) if joined else ()

    def place(self, code: str) -> Optional[str]:
        """The code's place as an address writes it ("Cypress, TX" in the US, "Dresden" in DE)."""
        places = self.places(code)
        if not places:
            return None
        state = self.states.get(code)
        return f"{places[0]}, {state}" if state else places[0]

    @property
    def length(self) -> int:
        return self.format.length

    def digit_array(self) -> np.ndarray:
        """Every code as a row of digits, ``(codes, length)`` uint8, in sorted order: what a
        reader's per-digit probabilities are scored against in one pass."""
        if "digits" not in self.derived:
            codes = self.codes()
            self.derived["digits"] = (np.frombuffer("".join(codes).encode("ascii"), np.uint8)
                                      .reshape(len(codes), self.length) - ord("0")).astype(np.uint8)
        return self.derived["digits"]

    def codes(self) -> list[str]:
        """The codes in sorted order (the order of ``digit_array``); do not change the list."""
        if "codes" not in self.derived:
            self.derived["codes"] = sorted(self.places_by_code)
        return self.derived["codes"]

    def position(self, code: str) -> Optional[int]:
        """Where a code stands in ``codes()``, or None when it does not exist."""
        if "positions" not in self.derived:
            self.derived["positions"] = {c: i for i, c in enumerate(self.codes())}
        return self.derived["positions"].get(code)

    def describe(self) -> dict:
        """What ``results.json`` says of the directory used."""
        return {"country": self.country, "name": self.name, **self.source, "codes": len(self),
                "code_length": self.length, "code_format": self.format.pattern}


# --------------------------------------------------------------------------- countries


def code_groups(pattern: str) -> Optional[tuple[tuple[int, ...], str]]:
    """``(groups, separator)`` of a code format of digits (``#####`` -> ``((5,), "")``, ``##-###``
    -> ``((2, 3), "-")``, ``### ##`` -> ``((3, 2), " ")``); None for one with letters, more than
    two groups, or a ZIP+4's (the US territories, which the US directory covers)."""
    if not pattern or set(pattern) - set("#- "):
        return None
    separators = [c for c in pattern if c != "#"]
    if not separators:
        return (len(pattern),), ""
    if len(separators) > 1 or pattern[0] == separators[0] or pattern[-1] == separators[0] or pattern == "#####-####":
        return None
    first, second = pattern.split(separators[0])
    return (len(first), len(second)), separators[0]


@functools.lru_cache(maxsize=1)
def _world_formats() -> dict[str, tuple[str, int, tuple[int, ...], str]]:
    """Countries of the world package whose codes are digits, in one number or two groups:
    {CC: (name, digits, groups, separator)}."""
    folder = _world_data()
    try:
        entries = json.loads((folder / "countries.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"the postal directory package {WORLD_PACKAGE} is broken: {exc}") from None
    formats = {}
    for entry in entries:
        cc = entry.get("countryCode")
        grouped = code_groups(entry.get("postalCodeFormat") or "")
        if grouped and (folder / "by-country" / str(cc) / "postcodes.json").is_file():
            groups, separator = grouped
            formats[cc] = (entry.get("countryName") or cc, sum(groups), groups if len(groups) > 1 else (), separator)
    return formats


def _world_format(country: str) -> CodeFormat:
    _, length, groups, separator = _world_formats()[country]
    return CodeFormat(length, prefixes=PREFIXES.get(country, ()), groups=groups, separator=separator)


@functools.lru_cache(maxsize=1)
def _world_data() -> Path:
    """The world package's data folder. Its loaders read one JSON file per country, lazily; they
    are read here the same way, without importing the package (its pydantic models alone take a
    third of a second to import)."""
    import importlib.util

    spec = importlib.util.find_spec("countrystatecity_postal_codes")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the postal directory package {WORLD_PACKAGE} is not installed "
                                     f"(pip install {WORLD_PACKAGE})")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def countries() -> list[str]:
    """Every country ``--country`` accepts."""
    return sorted(set(_world_formats()) | {"US"})


def check_country(country: str) -> str:
    """The country code in capitals, or a usage error naming the ones there are."""
    cc = (country or "").strip().upper()
    if cc not in countries():
        raise UsageError(f"no postal directory for country {country!r}: --country takes one of "
                         f"{', '.join(countries())} (or give your own list with --directory FILE)")
    return cc


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        raise MissingDependencyError(f"the postal directory package {name} is not installed "
                                     f"(pip install {name})") from None


def _source(package: str) -> dict:
    return {"package": package, "version": _package_version(package), "licence": LICENCES[package],
            "attribution": ATTRIBUTION[package]}


def _us_entries() -> tuple[dict[str, str], dict[str, str]]:
    try:
        from zipcodes import _zipcodes
    except ImportError as exc:
        raise MissingDependencyError(f"the postal directory package {US_PACKAGE} is not installed "
                                     f"(pip install {US_PACKAGE}): {exc}") from None
    places: dict[str, str] = {}
    states: dict[str, str] = {}
    for row in _zipcodes.list_all():
        code = row.get("zip_code") or ""
        if not row.get("active") or len(code) != 5 or not code.isdigit():
            continue
        names = [row.get("city") or ""] + list(row.get("acceptable_cities") or [])
        places[code] = PLACE_SEPARATOR.join(dict.fromkeys(n.replace(PLACE_SEPARATOR, " ") for n in names if n))
        states[code] = row.get("state") or ""
    return places, states


def _world_entries(country: str, length: int) -> dict[str, str]:
    path = _world_data() / "by-country" / country / "postcodes.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"the postal directory for {country} in {WORLD_PACKAGE} cannot be read: {exc}") from None
    collected: dict[str, list[str]] = {}
    for row in rows:
        # The package writes some countries' codes in their groups ("00-001", "010 01"), others not.
        code = re.sub(r"[\s-]", "", str(row.get("code") or ""))
        if len(code) != length or not code.isdigit():
            continue
        names = collected.setdefault(code, [])
        name = row.get("localityName")
        if name and name not in names:
            names.append(name)
    return {code: PLACE_SEPARATOR.join(n.replace(PLACE_SEPARATOR, " ") for n in names)
            for code, names in collected.items()}


def cache_folder() -> Path:
    """Where compact directories are kept between processes."""
    return settings.cache_folder() / "directories"


def _cached(country: str, source: dict, build) -> tuple[dict, dict]:
    """``build()``'s ``(places, states)``, from the cache folder when an earlier process made it."""
    path = cache_folder() / f"{country}-{source['package']}-{source['version']}-v{CACHE_VERSION}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        width = int(data["length"])
        codes = [data["codes"][i:i + width] for i in range(0, len(data["codes"]), width)]
        places = dict(zip(codes, data["places"].split(ENTRY_SEPARATOR)))
        states = dict(zip(codes, (data["states"][i:i + 2] for i in range(0, len(data["states"]), 2))))
        if len(places) == len(codes) and (not states or len(states) == len(codes)):
            return places, {c: s for c, s in states.items() if s.strip()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    places, states = build()
    codes = sorted(places)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        packed = {"length": len(codes[0]) if codes else 0, "codes": "".join(codes),
                  "places": ENTRY_SEPARATOR.join(places[c] for c in codes),
                  "states": "".join((states.get(c) or "").ljust(2)[:2] for c in codes) if states else ""}
        tmp.write_text(json.dumps(packed, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only home: the directory is simply built again next time
        pass
    return places, states


def _country_directory(country: str) -> Directory:
    if country == "US":
        source = _source(US_PACKAGE)
        places, states = _cached("US", source, _us_entries)
        return Directory("US", "United States", CodeFormat(5, plus4=True), source, places, states)
    name = _world_formats()[country][0]
    fmt = _world_format(country)
    source = _source(WORLD_PACKAGE)
    places, _ = _cached(country, source, lambda: (_world_entries(country, fmt.length), {}))
    if not places:
        raise MissingDependencyError(f"the postal directory for {country} in {WORLD_PACKAGE} holds no codes")
    return Directory(country, name, fmt, source, places)


# --------------------------------------------------------------------------- a user's list


def read_directory_file(path: str | Path, country: Optional[str] = None) -> Directory:
    """A user's CSV of ``code,place`` rows (a header row is allowed, a place may be empty).

    Every code must be digits of one length (the country's, when one is given); anything else
    is a usage error naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"--directory file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"--directory {path} is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise UsageError(f"--directory file {path} is not UTF-8 text (a CSV of code,place rows)") from None
    except OSError as exc:
        raise UsageError(f"cannot read --directory file {path}: {exc.strerror or exc}") from None
    places: dict[str, list[str]] = {}
    length = _world_formats()[country][1] if country and country != "US" else (5 if country == "US" else None)
    written = _world_format(country) if country and country != "US" else None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise UsageError(f"--directory file {path} is not a CSV of code,place rows: {exc}") from None
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells):
            continue
        code = cells[0]
        if number == 1 and not code.isdigit() and not any(ch.isdigit() for ch in code):
            continue  # a header row
        if written is not None and re.fullmatch(r"\d+[- ]\d+", code):
            code = re.sub(r"[- ]", "", code)  # "00-950" as Poland writes it
        if not code.isdigit():
            raise UsageError(f"--directory file {path} line {number}: {code!r} is not a postal code "
                             f"(rows are code,place with a code of digits)")
        if length is None:
            length = len(code)
        if len(code) != length:
            what = f"{country}'s codes have" if country else "the file's first code has"
            raise UsageError(f"--directory file {path} line {number}: code {code} has {len(code)} digits, "
                             f"{what} {length}")
        names = places.setdefault(code, [])
        place = ", ".join(c for c in cells[1:] if c)
        if place and place not in names:
            names.append(place)
    if not places:
        raise UsageError(f"--directory file {path} holds no postal codes (rows are code,place)")
    name = path.name if not country else f"{country} ({path.name})"
    source = {"package": None, "version": None, "licence": None, "file": str(path)}
    fmt = written if written is not None and written.length == length else CodeFormat(
        length, plus4=country == "US", prefixes=PREFIXES.get(country or "", ()))
    return Directory(country, name, fmt, source, {c: PLACE_SEPARATOR.join(p) for c, p in places.items()})


# --------------------------------------------------------------------------- loading


def load(country: Optional[str] = None, file: Optional[str | Path] = None) -> Optional[Directory]:
    """The directory for ``--country`` and/or ``--directory`` (None when neither is given),
    loaded once per process."""
    if not country and not file:
        return None
    cc = check_country(country) if country else None
    if file is not None:
        resolved = Path(file).expanduser()
        try:
            stamp = resolved.stat().st_mtime_ns
        except OSError:
            stamp = None
        return _load_file(str(resolved.resolve() if stamp else resolved), stamp, cc)
    return _load_country(cc)


@functools.lru_cache(maxsize=8)
def _load_country(country: str) -> Directory:
    return _country_directory(country)


@functools.lru_cache(maxsize=8)
def _load_file(path: str, stamp: Optional[int], country: Optional[str]) -> Directory:
    return read_directory_file(path, country)


# --------------------------------------------------------------------------- places


# Words an address abbreviates, in their long form (after accents and case are folded).
_ABBREVIATIONS = {
    "st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount", "pt": "point", "n": "north", "s": "south",
    "e": "east", "w": "west", "hts": "heights", "spgs": "springs", "jct": "junction", "twp": "township",
    "vlg": "village", "sankt": "saint", "a": "am", "i": "im", "b": "bei", "d": "der",
}
_NON_WORD = re.compile(r"[^a-z0-9]+")


# Letters that carry their mark in the letter itself, so Unicode does not take it off (Łódź is
# "Lodz" to an English OCR, Tromsø "Tromso"); the others lose their accents by decomposition.
_UNDECOMPOSED = str.maketrans({"ß": "ss", "ẞ": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae",
                               "œ": "oe", "Œ": "Oe", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
                               "ı": "i", "ħ": "h", "Ħ": "H"})


def fold(text: str) -> str:
    """A place name as compared: accents, case, punctuation and abbreviations folded
    ("St. Louis" and "Saint Louis", "München" and "MUNCHEN", "Frankfurt a. Main" and "Frankfurt am Main")."""
    text = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    words = [w for w in _NON_WORD.split(text) if w]
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# Share of a place name's letters OCR may get wrong and it still counts as that place.
PLACE_TOLERANCE = 0.25


def place_similarity(read: str, place: str) -> float:
    """1 for the same place, falling with the edits between them (0 when nothing is shared).

    The page may write only part of a long name ("Frankfurt" for "Frankfurt am Main", "Halle"
    for "Halle (Saale)"), or OCR may lose part of it, so the read name is also compared with every
    run of the directory name's words.
    """
    a, b = fold(read), fold(place)
    if not a or not b:
        return 0.0
    words = b.split()
    options = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
    options = {o for o in options if len(o) >= 4 or o == b}  # not "am" of "Frankfurt am Main"
    best = 0.0
    for option in options:
        best = max(best, 1.0 - edit_distance(a, option) / max(len(a), len(option)))
    return best


def matches_place(read: str, places: Iterable[str]) -> bool:
    """Whether a place name read on the page is one of the code's places, OCR noise tolerated."""
    return any(place_similarity(read, p) >= 1.0 - PLACE_TOLERANCE for p in places)


def split_state(words: Sequence[str]) -> tuple[list[str], Optional[str]]:
    """A US address line's words without its state abbreviation ("Springfield, IL"), and the state."""
    state = None
    kept = []
    for word in words:
        token = word.strip(",.;:")
        if len(token) == 2 and token.isalpha() and token.isupper() and state is None:
            state = token
            continue
        kept.append(word)
    return kept, state


# --------------------------------------------------------------------------- the city check

# How much a place name read on the page moves P(code right), as likelihood ratios
# P(what was read | code right) / P(what was read | code wrong):
# - the read place is one of the code's places: a right code almost always shows its own place,
#   a wrong one only when it is a neighbour of the same town (a misread last digit in a city of
#   many codes), about a third of the time for the codes the readers confuse (PLACE_AGREES);
# - it is not: a wrong code almost always shows another place, a right one only when the sender
#   wrote another name of the place, the directory lacks it or OCR mangled it beyond tolerance,
#   about one letter in a hundred (PLACE_CONTRADICTS). So a contradicted code stays ``auto`` only
#   when it was certain before (about 0.999 and up at the shipped thresholds).
PLACE_AGREES = 3.0
PLACE_CONTRADICTS = 0.01
# A read word must have this many letters to count as a place name (not a stray mark).
MIN_PLACE_LETTERS = 3


@dataclass
class PlaceCheck:
    """The place name read on the code's line (or the line above), and whether it is the code's."""

    read: Optional[str]
    match: Optional[bool]


def check_place(directory: Directory, code: str, words: Sequence[str]) -> PlaceCheck:
    """Compare the words printed beside the code with the directory's places for it.

    ``words`` are the line's other words in reading order; in the US the state abbreviation is
    split off and must be the code's state when one is read. Words that are not the code's place
    contradict it only when they name another place of the directory: a street name on the line
    above, or a name OCR mangled past recognition (an English OCR reads Łódź as "46dz"), says
    nothing about the code (``match`` None).
    """
    kept, state = split_state(words) if directory.states else (list(words), None)
    text = " ".join(w.strip(",;:") for w in kept).strip()
    if sum(ch.isalpha() for ch in text) < MIN_PLACE_LETTERS:
        return PlaceCheck(None, None)
    read = f"{text}, {state}" if state else text
    places = directory.places(code)
    if state and directory.states.get(code) and state != directory.states[code]:
        return PlaceCheck(read, False)
    if places and matches_place(text, places):
        return PlaceCheck(read, True)
    return PlaceCheck(read, False if names_a_place(directory, text) else None)


def names_a_place(directory: Directory, read: str) -> bool:
    """Whether words read on a page name a place of the directory (any code's), OCR noise
    tolerated as ``matches_place`` tolerates it. Candidates share the read name's first two
    letters (once folded), so a check is a few hundred comparisons, not one per place."""
    folded = fold(read)
    if len(folded) < 2:
        return False
    return matches_place(read, _places_by_start(directory).get(folded[:2], ()))


def _places_by_start(directory: Directory) -> dict[str, list[str]]:
    """Every place name of the directory, and each run of its words a page may write alone
    ("Frankfurt" of "Frankfurt am Main"), by its first two letters once folded."""
    if "places_by_start" not in directory.derived:
        index: dict[str, set[str]] = {}
        for joined in directory.places_by_code.values():
            for place in joined.split(PLACE_SEPARATOR) if joined else ():
                words = fold(place).split()
                for i in range(len(words)):
                    for j in range(i + 1, len(words) + 1):
                        option = " ".join(words[i:j])
                        if len(option) >= 4 or j - i == len(words):
                            index.setdefault(option[:2], set()).add(option)
        directory.derived["places_by_start"] = {k: sorted(v) for k, v in index.items()}
    return directory.derived["places_by_start"]


def with_place(confidence: float, match: Optional[bool]) -> float:
    """P(code right) once the place read beside it agrees or disagrees (unchanged without one)."""
    if match is None:
        return confidence
    ratio = PLACE_AGREES if match else PLACE_CONTRADICTS
    c = min(max(float(confidence), 0.0), 1.0)
    if c >= 1.0:
        return 1.0
    odds = c / (1.0 - c) * ratio
    return odds / (1.0 + odds)
