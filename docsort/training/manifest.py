"""Writing ``manifest.json``: what a models folder ships and how its models combine.

The manifest is generated from the folder itself, so it can always be written again
(``docsort train export FOLDER``; every training command that writes into a folder, and every
refit that writes into a folder with a manifest, writes it again too). Roles follow how training
names its files: ``digits``; ``writing_type`` and its further main models ``writing_type_2``,
``_3``... (second looks); ``writing_type_chars``, ``_2``... (lone characters); ``digit_strings``
and the members its metrics name (``ensemble``). Only this module knows those names: reading
takes the roles from the manifest.

Parameters that say how the models combine are copied in (the bands of doubt below; the
combination weights and field calibration from ``digit_strings.metrics.json``; the accept
threshold from ``digits.tradeoff.json``), measurements are named by file.

``version`` counts releases of the folder's models: it goes up by one whenever anything the
manifest says changes, and each model keeps the version in which its file last changed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Optional

from docsort.errors import MissingDependencyError, OutputNotWritableError, UsageError
from docsort.reading import manifest as reading
from docsort.reading.manifest import (DIGIT_STRINGS, DIGITS, LINE_READER_FILE, MANIFEST_FILE, ROLE_DIGIT_STRINGS,
                                      ROLE_DIGITS, ROLE_LINE_READER, ROLE_LONE_CHARACTERS, ROLE_SECOND_LOOK,
                                      ROLE_WRITING_TYPE, WRITING_TYPE, file_sha256)

# Crops on which the main printed/handwritten model is this sure (p below it or above 1 minus it)
# keep its probability. The others, a few in a hundred, get a second look by the further members
# of the ensemble: the looks change almost none of the sure crops and would cost most of the time.
DOUBT = 0.01
# Wider crops are doubted only when the main model is less sure than this: a look at a long
# word costs up to eight times one at a lone character, and the looks change few of them: on
# the validation set and four further draws, gating wide crops at 0.05 rather than 0.01 cost two
# decisions in 27,000 and made the classifier about 14 % faster.
WIDE_DOUBT = 0.05
# What ``train writing-type --lone-characters`` calls the lone-character networks.
LONE_CHARACTER_MODEL = "writing_type_chars"
TRADEOFF = "digits.tradeoff.json"
DESTINATION_METRICS = "destination.metrics.json"  # the fitted destination picker (docsort train destination)

OUTPUT_MEANINGS = {
    ROLE_DIGITS: "calibrated P(digit) for 0..9",
    ROLE_WRITING_TYPE: "calibrated P(handwritten)",
    ROLE_SECOND_LOOK: "calibrated P(handwritten)",
    ROLE_LONE_CHARACTERS: "calibrated P(handwritten)",
    ROLE_DIGIT_STRINGS: "per output step (4 input columns): P(digit 0..9) and P(no digit, the CTC blank) at index 10",
    ROLE_LINE_READER: "per output step (8 input columns): P(CTC blank), P(each character of the model's own list, "
                      "its metadata 'character'), P(space); read over digits only (docsort.reading.digits.ppocr)",
}
NORMALISATION = {
    ROLE_DIGITS: "MNIST format: ink 1.0 on paper 0.0, the digit scaled into 20x20 and centred by its centre "
                 "of mass in 28x28 (docsort.reading.digits.mnist_format)",
    ROLE_WRITING_TYPE: "grey crop, paper 0.0 and darkest ink 1.0 (contrast stretched), cut to its ink box and "
                       "scaled to 28 rows inside a 2 px margin (docsort.reading.writing_type.prepare)",
    ROLE_DIGIT_STRINGS: "ink-high field, ink cropped and scaled to 24 of the 32 rows, 4 px of paper each side "
                        "(docsort.reading.digits.strings.prepare)",
}
NORMALISATION[ROLE_SECOND_LOOK] = NORMALISATION[ROLE_LONE_CHARACTERS] = NORMALISATION[ROLE_WRITING_TYPE]
NORMALISATION[ROLE_LINE_READER] = ("ink-high field cut to its ink with a margin, 48 rows, dark ink on white, "
                                   "(grey - 0.5) / 0.5, the grey repeated on three planes "
                                   "(docsort.reading.digits.ppocr.line_image)")
# Where the line reader comes from: the rapidocr wheel, which ships PaddleOCR's ONNX files.
LINE_READER_SOURCE = ("PP-OCRv6_small_rec by PaddleOCR (Apache-2.0), as the rapidocr 3.10.0 wheel ships it "
                      "(rapidocr/models/PP-OCRv6_rec_small.onnx); licence and notice in licenses/")


def input_spec(role: str):
    """The input each role's reader feeds its networks."""
    from docsort.reading import writing_type
    from docsort.reading.digits import mnist_model, strings

    if role == ROLE_DIGITS:
        return mnist_model.INPUT
    if role == ROLE_DIGIT_STRINGS:
        return strings.INPUT
    if role == ROLE_LINE_READER:
        from docsort.reading.digits import ppocr

        return ppocr.INPUT
    return writing_type.INPUT


def roles(folder: Path) -> dict[str, str]:
    """``{model name: role}`` of every ``.keras`` in ``folder``, in the manifest's order."""
    stems = {path.stem for path in folder.glob("*.keras")}

    def numbered(base: str) -> list[str]:
        found = [(int(m.group(1) or 1), stem) for stem in stems
                 if (m := re.fullmatch(rf"{re.escape(base)}(?:_(\d+))?", stem))]
        return [stem for _, stem in sorted(found)]

    found: dict[str, str] = {}
    if DIGITS in stems:
        found[DIGITS] = ROLE_DIGITS
    mains = numbered(WRITING_TYPE)
    for k, name in enumerate(mains):
        found[name] = ROLE_WRITING_TYPE if k == 0 and name == WRITING_TYPE else ROLE_SECOND_LOOK
    for name in numbered(LONE_CHARACTER_MODEL):
        found[name] = ROLE_LONE_CHARACTERS
    if DIGIT_STRINGS in stems:
        ensemble = _json(folder / f"{DIGIT_STRINGS}.metrics.json").get("ensemble") or [f"{DIGIT_STRINGS}.keras"]
        for member in ensemble:
            name = Path(member).stem
            if name not in stems:
                raise UsageError(f"{DIGIT_STRINGS}.metrics.json names the whole-field member {member}, "
                                 f"which is not in {folder}")
            found[name] = ROLE_DIGIT_STRINGS
    unknown = sorted(stems - set(found))
    if unknown:
        raise UsageError(f"{', '.join(s + '.keras' for s in unknown)} in {folder} has no role in a models folder "
                         f"(digits, writing_type[_N], {LONE_CHARACTER_MODEL}[_N], the whole-field ensemble)")
    return found


def build(folder: Path, previous: Optional[dict] = None, log: Callable[[str], None] = lambda line: None) -> dict:
    """The manifest of ``folder``; ``.keras`` files without their ``.onnx`` are exported first."""
    from docsort.reading import engine
    from docsort.training.export import export

    folder = Path(folder)
    found = roles(folder)
    if not found:
        raise UsageError(f"no .keras model in {folder}")
    models = {}
    for name, role in found.items():
        keras_file = folder / f"{name}.keras"
        try:
            onnx_file = engine.exported_from(keras_file)
        except MissingDependencyError:
            export(keras_file, log)
            onnx_file = engine.exported_from(keras_file)
        network = engine.Network.load(onnx_file, cached=False, thread_count=1)
        output = network.session.get_outputs()[0]
        metrics_file = folder / f"{name}.metrics.json"
        metrics = _json(metrics_file)
        spec = input_spec(role)
        models[name] = {
            "role": role,
            "file": onnx_file.name,
            "sha256": file_sha256(onnx_file),
            "source": network.source,
            "input": {**spec.describe(), "value_range": [0.0, 1.0], "normalisation": NORMALISATION[role]},
            "output": {"name": output.name, "shape": [d if isinstance(d, int) else None for d in output.shape],
                       "meaning": OUTPUT_MEANINGS[role]},
            "metrics": metrics_file.name if metrics_file.is_file() else None,
            "test_accuracy": metrics.get("test_accuracy", metrics.get("accuracy")),
        }
    line_reader = folder / LINE_READER_FILE
    if line_reader.is_file():
        network = engine.Network.load(line_reader, cached=False, thread_count=1)
        output = network.session.get_outputs()[0]
        spec = input_spec(ROLE_LINE_READER)
        sha = file_sha256(line_reader)
        models[line_reader.stem] = {
            "role": ROLE_LINE_READER,
            "file": line_reader.name,
            "sha256": sha,
            "source": {"file": line_reader.name, "sha256": sha, "origin": LINE_READER_SOURCE},
            "input": {**spec.describe(), "value_range": [-1.0, 1.0], "normalisation": NORMALISATION[ROLE_LINE_READER]},
            "output": {"name": output.name, "shape": [d if isinstance(d, int) else None for d in output.shape],
                       "meaning": OUTPUT_MEANINGS[ROLE_LINE_READER]},
            "metrics": None,
            "test_accuracy": None,
        }
    data = {"format": reading.FORMAT, "version": 0,
            "description": "The models docsort reads mail with: ONNX files run by docsort.reading.engine, each "
                           "exported from the .keras beside it. Written by docsort train export; do not edit.",
            "models": models, "ensembles": _ensembles(folder, found)}
    field_reading = _field_reading(folder)
    if field_reading:
        data["field_reading"] = field_reading
    picker = _json(folder / DESTINATION_METRICS).get("picker")
    if picker:
        data["destination"] = {"features": picker["features"], "weights": picker["weights"],
                               "fitted": f"{DESTINATION_METRICS} (picker.fit)"}
    threshold = _accept_threshold(folder)
    if threshold:
        data["accept_threshold"] = threshold
    return _versioned(data, previous)


def _ensembles(folder: Path, found: dict[str, str]) -> dict:
    from docsort.reading.writing_type import LONE_CHARACTER_WIDTH

    by_role: dict[str, list[str]] = {}
    for name, role in found.items():
        by_role.setdefault(role, []).append(name)
    ensembles = {}
    if ROLE_WRITING_TYPE in by_role:
        ensembles[WRITING_TYPE] = {
            "main": WRITING_TYPE,
            "second_looks": by_role.get(ROLE_SECOND_LOOK, []),
            "lone_characters": by_role.get(ROLE_LONE_CHARACTERS, []),
            "doubt": {"narrow": DOUBT, "wide": WIDE_DOUBT, "narrow_width": LONE_CHARACTER_WIDTH},
            "combination": "A crop keeps the main model's p_handwritten unless the main model doubts it: "
                           "narrow <= p <= 1 - narrow for crops padded to at most narrow_width columns, wide "
                           "<= p <= 1 - wide for wider ones. A doubted crop gets the mean of the main model's "
                           "and every second look's p, and for a narrow crop also every lone-character "
                           "model's p.",
            "metrics": f"{WRITING_TYPE}.metrics.json",
        }
    if ROLE_DIGIT_STRINGS in by_role:
        views = _json(folder / f"{DIGIT_STRINGS}.metrics.json").get("views")
        ensembles[DIGIT_STRINGS] = {
            "members": by_role[ROLE_DIGIT_STRINGS],
            **({"views": views} if views else {}),
            "combination": "Each member reads the field at each of the views' ink heights (rows of the 32, "
                           "docsort.reading.digits.strings.prepare; one view of 24 rows where none are "
                           "listed); each view of each member proposes its best CTC path; a string's "
                           "probability is the geometric mean of their CTC probabilities of it, and the most "
                           "probable proposal is the reading.",
            "metrics": f"{DIGIT_STRINGS}.metrics.json",
        }
    return ensembles


def _field_reading(folder: Path) -> Optional[dict]:
    """The weights that combine the digit readers and judge a field, without how they were fitted."""
    metrics = _json(folder / f"{DIGIT_STRINGS}.metrics.json")
    found = {}
    for key in ("combination", "field_calibration"):
        if metrics.get(key):
            found[key] = {k: v for k, v in metrics[key].items() if k != "fit"}
    if found:
        found["fitted"] = f"{DIGIT_STRINGS}.metrics.json (combination.fit, field_calibration.fit)"
    return found or None


def _accept_threshold(folder: Path) -> Optional[dict]:
    """The default accept threshold and, per country, the one measured with its postal directory."""
    def point(path: Path) -> dict:
        optimal = _json(path).get("optimal", {})
        return {"value": optimal.get("threshold"), "accept_rate": optimal.get("accept_rate"),
                "error_rate": optimal.get("error_rate"), "measured_in": path.name, "sha256": file_sha256(path)}

    default = folder / TRADEOFF
    if not default.is_file():
        return None
    threshold = point(default)
    countries = sorted(folder.glob("digits.tradeoff.*.json"))
    if countries:
        threshold["with_directory"] = {path.name.split(".")[-2]: point(path) for path in countries}
    return threshold


def _versioned(data: dict, previous: Optional[dict]) -> dict:
    """Version 1, or the previous manifest's: kept when nothing changed, else one more; each
    model keeps the version in which its file last changed."""
    if not previous or previous.get("format") != data["format"]:
        version = 1
        for entry in data["models"].values():
            entry["version"] = version
        data["version"] = version
        return data
    old_models = previous.get("models", {})
    candidate = previous["version"]
    for name, entry in data["models"].items():
        old = old_models.get(name)
        entry["version"] = old["version"] if old and old.get("sha256") == entry["sha256"] else candidate + 1
    data["version"] = candidate

    def content(manifest: dict) -> str:
        return json.dumps({k: v for k, v in manifest.items() if k != "version"}, sort_keys=True)

    if content(data) != content(previous):
        data["version"] = candidate + 1
    return data


def write(folder: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> dict:
    """Write ``folder``'s manifest again; returns it."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    previous = _json(path) or None
    data = build(folder, previous, log)
    text = json.dumps(data, indent=1) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write {path}: {exc.strerror or exc}") from None
    log(f"{path}: version {data['version']}, {len(data['models'])} models")
    write_card_table(folder, data)
    return data


def refresh(written: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> None:
    """After writing a file into a folder that has a manifest: write the manifest again, so it
    says what the folder now holds (a refitted combination, a new trade-off)."""
    folder = Path(written).parent
    if (folder / MANIFEST_FILE).is_file():
        write(folder, log)


def _json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read: {exc}") from None


CARD = "MODEL_CARD.md"
CARD_BEGIN, CARD_END = "<!-- manifest table: written by docsort train export -->", "<!-- end of manifest table -->"


def card_table(data: dict) -> str:
    """The model card's table of the shipped networks, as the manifest lists them."""
    lines = [f"Manifest version {data['version']} (`models/{MANIFEST_FILE}`).", "",
             "| model | role | file | sha256 | exported from |", "| --- | --- | --- | --- | --- |"]
    for name, entry in data["models"].items():
        source = "as published (see licenses/)" if entry["role"] == ROLE_LINE_READER else f"`{entry['source']['file']}`"
        lines.append(f"| {name} | {entry['role']} | `{entry['file']}` | `{entry['sha256']}` | {source} |")
    return "\n".join(lines)


def write_card_table(folder: Path, data: dict) -> None:
    """Put the table between the model card's markers, where the folder has a card with them."""
    path = Path(folder) / CARD
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    if CARD_BEGIN not in text or CARD_END not in text:
        return
    head, rest = text.split(CARD_BEGIN, 1)
    tail = rest.split(CARD_END, 1)[1]
    path.write_text(f"{head}{CARD_BEGIN}\n{card_table(data)}\n{CARD_END}{tail}")
