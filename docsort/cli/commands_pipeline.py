"""``docsort read-digits`` and ``docsort samples``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from docsort import settings
from docsort.cli.app import app, handles_errors, print_json, print_rows, stdout


@app.command("read-digits")
@handles_errors
def read_digits(
    images: List[Path] = typer.Argument(..., help="Images, each one already-cut handwritten number field."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list to stdout."),
    code_length: Optional[int] = typer.Option(
        None, "--code-length", min=settings.CODE_LENGTH_MIN, max=settings.CODE_LENGTH_MAX,
        help="Read exactly this many digits (default: as many as the field holds)."),
    country: Optional[str] = typer.Option(
        None, "--country", metavar="CC",
        help="Read each field as a postal code of this country's directory: the best code that exists."),
    directory: Optional[Path] = typer.Option(
        None, "--directory", metavar="FILE", help="Read each field as a code of your own directory (CSV of code,place)."),
) -> None:
    """Read handwritten digit strings (postal code boxes, amounts, single digits) of any length.

    Each field also says whether it is a number at all: one that is not (a word, a line, a
    smudge) gets no digits and confidence 0. That is an answer, not an error: the exit code is 0.
    """
    from docsort.errors import InputError
    from docsort.reading.digits.confidence import read_number_fields
    from docsort.page.ingest import read_image

    fields = []
    for path in images:
        try:
            fields.append(read_image(path))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
    if country or directory:
        _read_codes(images, fields, country, directory, code_length, as_json)
        return
    answers = read_number_fields(fields, code_length)
    rows = [{"file": str(path), **answer.to_dict()} for path, answer in zip(images, answers)]
    if as_json:
        print_json(rows)
        return
    print_rows(["file", "digits", "confidence", "is_number", "p_number"],
               [[r["file"], r["digits"], f"{r['confidence']:.3f}", "yes" if r["is_number"] else "no",
                 f"{r['p_number']:.3f}"] for r in rows], right=("confidence", "p_number"))


def _read_codes(images, fields, country, directory_file, code_length, as_json) -> None:
    """``read-digits --country/--directory``: each field as the best code of the directory."""
    from docsort.page import directory as directories
    from docsort.reading.digits.directory_reader import read_codes
    from docsort.errors import UsageError
    from docsort.reading.digits.confidence import read_number_fields

    found = directories.load(country, directory_file)
    if code_length is not None and code_length != found.length:
        raise UsageError(f"--code-length {code_length} does not fit the postal directory of {found.name}, "
                         f"whose codes have {found.length} digits")
    rows = [{"file": str(path), **row} for path, row in zip(images, read_codes(fields, found))]
    # A word, a rule or a smudge is no code, however close a code of the directory comes to it.
    for row, answer in zip(rows, read_number_fields(fields, found.length)):
        row.update(is_number=answer.is_number, p_number=round(float(answer.p_number), 6))
        if not answer.is_number:
            row.update(digits=None, confidence=0.0, digit_confidences=[], valid=False, place=None, written=None)
    if as_json:
        print_json(rows)
        return
    print_rows(["file", "digits", "confidence", "place", "is_number"],
               [[r["file"], r["digits"], f"{r['confidence']:.3f}",
                 r["place"] if r["valid"] else "not a code of the directory", "yes" if r["is_number"] else "no"]
                for r in rows], right=("confidence",))


@app.command("samples")
@handles_errors
def samples(
    out: Path = typer.Option(..., "--out", help="Folder for the envelope images and truth.json."),
    count: int = typer.Option(10, "--count", min=1, help="How many envelopes."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same envelopes."),
    handwriting: Optional[Path] = typer.Option(
        None, "--handwriting",
        help="Folder with the MNIST IDX files and DHSD data.csv: handwriting from MNIST test digits and "
             "DHSD writers held out of training [default: $DOCSORT_DATASETS]."),
    layout: str = typer.Option(
        "mixed", "--layout",
        help="Address layout family: code-first, code-last, code-alone, prefixed, mixed (each envelope draws one "
             "of these four), or one of the two families held out of all fitting and drawn only when named: boxed "
             "(codes in pre-printed boxes or on a rule, a phone number beside them) and international (a country "
             "line under the place, the code on top of the block, a reference number line, CEDEX)."),
    code_length: int = typer.Option(settings.CODE_LENGTH, "--code-length", min=settings.CODE_LENGTH_MIN,
                                    max=settings.CODE_LENGTH_MAX, help="Digits per postal code."),
    handwritten_share: float = typer.Option(0.7, "--handwritten-share", min=0.0, max=1.0,
                                            help="Share of envelopes addressed by hand."),
    image_format: str = typer.Option("mixed", "--format", help="jpg, png or mixed (about 70 % JPEG)."),
    max_tilt: float = typer.Option(6.0, "--max-tilt", min=0.0, max=20.0, help="Largest scan tilt in degrees."),
    country: Optional[str] = typer.Option(
        None, "--country", metavar="CC",
        help="Real codes of this country's postal directory with their places (and US states); the code length "
             "is the country's."),
    continental: float = typer.Option(
        0.0, "--continental", min=0.0, max=1.0,
        help="Share of hands that write 1s with a long up-stroke and cross their 7s, as most of Europe does "
             "(MNIST's writers never do)."),
    pen_digits: float = typer.Option(
        0.0, "--pen-digits", min=0.0, max=1.0,
        help="Share of hands whose digits are drawn by a pen writer in shapes MNIST's writers did not use (open "
             "4s, hooked 9s, looped 2s, ...) instead of being MNIST's."),
    close_words: float = typer.Option(
        0.0, "--close-words", min=0.0, max=1.0,
        help="Share of hands that leave narrow word spaces (a fifth to half their height), so a code and the "
             "place beside it may touch."),
    tight_lines: float = typer.Option(
        0.0, "--tight-lines", min=0.0, max=1.0,
        help="Share of hands that write their lines close (a pitch of 0.72-0.9 line heights), so a descender "
             "touches the line below and the code may touch the place above it."),
    block_tilt: float = typer.Option(
        0.0, "--block-tilt", min=0.0, max=1.0,
        help="Share of hands that write the address at an angle of its own to the envelope (3-8 degrees either "
             "way), the printed sender's block square to it."),
    pencil: float = typer.Option(
        0.0, "--pencil", min=0.0, max=1.0,
        help="Share of hands that write the address in pencil: graphite grey, broken by the paper's grain."),
    barcode: float = typer.Option(
        0.0, "--barcode", min=0.0, max=1.0,
        help="Share of envelopes with a four-state postal barcode printed under the destination block."),
    coloured: float = typer.Option(
        0.0, "--coloured", min=0.0, max=1.0,
        help="Share of envelopes that are not white: manila, kraft or a greeting card's red, green, blue, pink, "
             "yellow, sky, lilac or orange."),
    label: float = typer.Option(
        0.0, "--label", min=0.0, max=1.0,
        help="Share of envelopes whose address is printed or written on a white label stuck on the envelope."),
) -> None:
    """Write synthetic envelope scans with a ground-truth file (truth.json)."""
    from docsort.training.samples import TRUTH_FILE, write_samples

    truths = write_samples(out, count=count, seed=seed, handwriting=handwriting,
                           handwritten_share=handwritten_share, code_length=code_length,
                           image_format=image_format, layout=layout, max_tilt=max_tilt, country=country,
                           continental=continental, pen_digits=pen_digits, close_words=close_words,
                           barcode=barcode, tight_lines=tight_lines, block_tilt=block_tilt, pencil=pencil,
                           coloured=coloured, label=label)
    handwritten = sum(t.destination_source == "handwritten" for t in truths)
    stdout.print(f"{len(truths)} envelopes ({handwritten} handwritten) and {TRUTH_FILE} written to {out}",
                 markup=False, highlight=False)
