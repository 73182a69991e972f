"""Fuzzing the loader: thousands of damaged image files, and never anything but a clean InputError.

Small valid files of every supported kind are mutated (bytes flipped, overwritten, cut,
inserted, blocks repeated) and handed to ``iter_pages`` in-process. Each one must either read
(as uint8 pages) or fail with ``InputError`` / a per-page error: no other exception, no hang,
no huge allocation (the header limit keeps decoding small).
"""

from __future__ import annotations

import io
import os
import tempfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from docsort.errors import InputError
from docsort.page.ingest import iter_pages

EXAMPLES = 5000


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    grey = np.full((24, 32), 255, np.uint8)
    grey[6:18, 4:28] = rng.integers(0, 256, (12, 24), dtype=np.uint8)
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    colour[..., 2] = 200
    seeds = {}

    def pil_bytes(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    pil = Image.fromarray(grey)
    seeds["png_grey"] = pil_bytes(pil, "PNG")
    seeds["png_palette"] = pil_bytes(pil.convert("P"), "PNG")
    seeds["png_rgba"] = pil_bytes(pil.convert("RGBA"), "PNG")
    seeds["jpeg"] = cv2.imencode(".jpg", colour)[1].tobytes()
    seeds["jpeg_progressive"] = pil_bytes(pil.convert("RGB"), "JPEG", progressive=True)
    seeds["bmp"] = pil_bytes(pil.convert("RGB"), "BMP")
    seeds["tiff_lzw_pages"] = pil_bytes(pil, "TIFF", save_all=True, append_images=[pil, pil],
                                        compression="tiff_lzw")
    seeds["tiff_g4"] = pil_bytes(pil.convert("1"), "TIFF", compression="group4")
    seeds["tiff_16bit"] = pil_bytes(Image.fromarray(grey.astype(np.uint16) * 257), "TIFF")
    seeds["pdf"] = pil_bytes(pil, "PDF", resolution=10)
    return seeds


SEEDS = _seed_files()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 64)),
)


def mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for kind, position, value in mutations:
        if not data:
            break
        at = position % len(data)
        if kind == "flip":
            data[at] ^= 1 << value
        elif kind == "set":
            data[at] = value
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value])
        else:
            data[at:at] = data[at:at + value]
    return bytes(data)


@pytest.fixture(scope="module")
def scratch_file():
    handle, path = tempfile.mkstemp(suffix=".img")
    os.close(handle)
    yield path
    os.unlink(path)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_read_or_fail_cleanly(scratch_file, seed, mutations):
    with open(scratch_file, "wb") as fh:
        fh.write(mutate(SEEDS[seed], mutations))
    try:
        pages = list(iter_pages(scratch_file, max_megapixels=0.5, working_megapixels=0.1, min_side=1))
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for page in pages:
        if page.error is not None:
            assert page.image is None and "\n" not in page.error
        else:
            assert page.image.dtype == np.uint8 and page.image.ndim in (2, 3) and page.image.size > 0


def test_every_seed_reads_unmutated(scratch_file):
    for name, data in SEEDS.items():
        with open(scratch_file, "wb") as fh:
            fh.write(data)
        pages = list(iter_pages(scratch_file, min_side=1))
        assert pages and all(page.ok for page in pages), name
