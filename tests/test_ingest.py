"""Reading every supported kind of scan, and refusing every broken one with a one-line message."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from docsort.errors import InputError
from docsort.page.ingest import WORKING_MEGAPIXELS, check_readable, iter_pages, read_image


def page_with_mark(width: int = 300, height: int = 200) -> np.ndarray:
    """A white page with a black block in its top-left quarter (to check orientation)."""
    page = np.full((height, width), 255, np.uint8)
    page[10:height // 3, 10:width // 3] = 0
    return page


def pages_of(path, **options) -> list:
    return list(iter_pages(path, **options))


def error_of(path, **options) -> str:
    with pytest.raises(InputError) as caught:
        pages_of(path, **options)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


MODES_BY_SUFFIX = {
    ".png": ["L", "RGB", "RGBA", "P", "1", "LA", "I;16"],
    ".tif": ["L", "RGB", "RGBA", "P", "1", "LA", "CMYK", "I;16"],
    ".bmp": ["L", "RGB", "RGBA", "P", "1"],
    ".jpg": ["L", "RGB", "CMYK"],
}


@pytest.mark.parametrize("suffix,mode", [(s, m) for s, modes in MODES_BY_SUFFIX.items() for m in modes])
def test_every_pixel_mode_reads_as_uint8_grey_or_bgr(tmp_path, mode, suffix):
    grey = page_with_mark()
    image = Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(grey).convert(mode)
    path = tmp_path / f"page{suffix}"
    image.save(path)
    [page] = pages_of(path)
    assert page.number == 1 and page.ok and page.image.dtype == np.uint8
    assert page.image.shape[:2] == (200, 300)
    assert page.image.ndim == 2 or page.image.shape[2] == 3
    grey_back = page.image if page.image.ndim == 2 else cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    assert grey_back[30, 30] < 60 and grey_back[150, 250] > 190


def test_colour_comes_back_as_bgr(tmp_path):
    rgb = np.zeros((50, 60, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    image = read_image(tmp_path / "red.png")
    assert tuple(image[0, 0]) == (0, 0, 255)


def test_transparent_background_becomes_white_paper(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:20, 10:20] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "ink.png")
    image = read_image(tmp_path / "ink.png")
    assert image[0, 0].tolist() == [255, 255, 255] and image[15, 15].tolist() == [0, 0, 0]


def test_jpeg_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(page_with_mark(300, 200)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held rotated: display rotated 90 degrees clockwise
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    [page] = pages_of(tmp_path / "phone.jpg")
    assert page.image.shape[:2] == (300, 200)
    grey = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    assert grey[30, 170] < 60  # the mark moved from top-left to top-right
    assert grey[30, 30] > 190


@pytest.mark.parametrize("compression,mode", [("tiff_lzw", "L"), ("group4", "1"), ("packbits", "RGB"),
                                              ("raw", "I;16")])
def test_multipage_tiff_gives_every_page(tmp_path, compression, mode):
    frames = []
    for i in range(3):
        grey = page_with_mark()
        grey[-20:, :] = 0 if i == 1 else 255
        frames.append(Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16"
                      else Image.fromarray(grey).convert(mode))
    path = tmp_path / "scan.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], compression=compression)
    pages = pages_of(path)
    assert [p.number for p in pages] == [1, 2, 3] and all(p.ok for p in pages)
    bottoms = [float(np.mean(p.image[-10:])) for p in pages]
    assert bottoms[1] < 50 < bottoms[0] and bottoms[2] > 200


def test_corrupt_page_of_a_tiff_fails_alone(tmp_path):
    frames = [Image.fromarray(page_with_mark()) for _ in range(3)]
    path = tmp_path / "scan.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    with Image.open(path) as image:
        image.seek(1)
        offsets, counts = image.tag_v2[273], image.tag_v2[279]
    data = bytearray(path.read_bytes())
    for offset, count in zip(offsets, counts):
        data[offset:offset + count] = b"\xff" * count
    path.write_bytes(bytes(data))
    pages = pages_of(path)
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[0].ok and pages[2].ok
    assert pages[1].image is None and "corrupt" in pages[1].error


def test_pdf_pages_render_at_300_dpi(tmp_path):
    letter = np.full((1100, 850), 255, np.uint8)  # 8.5 x 11 inches at 100 dpi
    letter[100:200, 100:300] = 0
    first = Image.fromarray(letter)
    first.save(tmp_path / "letter.pdf", save_all=True, append_images=[first.convert("RGB")], resolution=100)
    pages = pages_of(tmp_path / "letter.pdf")
    assert [p.number for p in pages] == [1, 2]
    for page in pages:
        height, width = page.image.shape[:2]
        assert abs(width - 2550) <= 1 and abs(height - 3300) <= 1
        assert page.image[300:600, 300:900].mean() < 10 and page.image[3000:].mean() > 250


def test_huge_scan_is_reduced_to_the_working_resolution(tmp_path):
    page = np.full((6000, 4000), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "big.png"), page)
    [result] = pages_of(tmp_path / "big.png", working_megapixels=6)
    height, width = result.image.shape
    assert width * height <= 6e6 and result.scale == pytest.approx(width / 4000)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its (tiny) data does not have: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _tiny_pdf(pages_entry: bytes) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", pages_entry]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _encrypted_pdf(path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt("secret", algorithm="RC4-128")
    writer.write(path)


def _good_png(path: Path) -> bytes:
    cv2.imwrite(str(path), page_with_mark())
    return path.read_bytes()


def _good_jpeg(path: Path) -> bytes:
    cv2.imwrite(str(path), page_with_mark())
    return path.read_bytes()


def make_bad_input(kind: str, folder: Path) -> Path:
    """One broken input of each kind a user can hand to docsort (shared with the batch tests)."""
    path = folder / {"missing": "missing.png", "empty": "empty.png", "truncated_png": "truncated.png",
                     "truncated_jpeg": "truncated.jpg", "random_bytes": "random.tif",
                     "text_as_image": "notes.jpg", "bomb": "bomb.png", "tiny": "tiny.png",
                     "encrypted_pdf": "locked.pdf", "empty_pdf": "nopages.pdf",
                     "broken_symlink": "link.png", "fifo": "pipe.png", "folder_named_png": "dir.png"}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated_png":
        data = _good_png(path)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_jpeg":
        data = _good_jpeg(path)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "text_as_image":
        path.write_text("Dear customer,\nthis is not a picture.\n")
    elif kind == "bomb":
        path.write_bytes(_png_claiming(50_000, 50_000))
    elif kind == "tiny":
        Image.new("L", (1, 1), 255).save(path)
    elif kind == "encrypted_pdf":
        _encrypted_pdf(path)
    elif kind == "empty_pdf":
        path.write_bytes(_tiny_pdf(b"<< /Type /Pages /Kids [] /Count 0 >>"))
    elif kind == "broken_symlink":
        os.symlink(folder / "gone.png", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder_named_png":
        path.mkdir()
    return path


BAD_INPUTS = {
    "missing": "no such file",
    "empty": "empty",
    "truncated_png": "truncated",
    "truncated_jpeg": "truncated",
    "random_bytes": "not a readable image",
    "text_as_image": "not a readable image",
    "bomb": "megapixels",
    "tiny": "too small",
    "encrypted_pdf": "encrypted",
    "empty_pdf": "no pages",
    "broken_symlink": "broken symbolic link",
    "fifo": "not a regular file",
    "folder_named_png": "folder",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_is_a_one_line_input_error(tmp_path, kind):
    path = make_bad_input(kind, tmp_path)
    assert BAD_INPUTS[kind] in error_of(path)


def test_bomb_is_refused_from_its_header_not_by_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(12_000, 12_000))  # 144 MP: 144 MB if it were decoded
    message = error_of(path, max_megapixels=100)
    assert "12000x12000" in message and "--max-megapixels" in message
    path.write_bytes(_png_claiming(50_000, 50_000))  # Pillow's own check refuses this one first
    assert "2500 megapixels" in error_of(path, max_megapixels=100)


def test_blank_and_black_pages_are_ordinary_pages(tmp_path):
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((400, 600), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((400, 600), np.uint8))
    assert pages_of(tmp_path / "blank.png")[0].image.min() == 255
    assert pages_of(tmp_path / "black.png")[0].image.max() == 0


@pytest.mark.parametrize("name", ["scan with spaces.png", "Übersee_東京.png", "two\nlines.png"])
def test_awkward_file_names_read(tmp_path, name):
    cv2.imwrite(str(tmp_path / "plain.png"), page_with_mark())
    os.replace(tmp_path / "plain.png", tmp_path / name)
    assert pages_of(tmp_path / name)[0].ok


def test_content_decides_the_reader_not_the_suffix(tmp_path):
    cv2.imwrite(str(tmp_path / "real.png"), page_with_mark())
    os.replace(tmp_path / "real.png", tmp_path / "misnamed.jpg")
    assert pages_of(tmp_path / "misnamed.jpg")[0].image.shape == (200, 300)


def test_unreadable_file_without_root_privileges(tmp_path):
    """Tests run as root, which reads any file: drop the capability that lets it, as a user would be."""
    path = tmp_path / "private.png"
    cv2.imwrite(str(path), page_with_mark())
    path.chmod(0o000)
    code = (
        "import sys\nfrom docsort.page.ingest import check_readable, iter_pages\nfrom docsort.errors import InputError\n"
        "for read in (check_readable, iter_pages):\n"
        "    try:\n        read(sys.argv[1])\n    except InputError as exc:\n        print(exc)\n"
    )
    result = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code, str(path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["permission denied", "permission denied"]


A3_600DPI = (7016, 9921)  # width, height in pixels


PEAK_RSS_CODE = """
import json, resource, sys
from docsort.page.ingest import iter_pages
[page] = list(iter_pages(sys.argv[1]))
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"shape": page.image.shape, "scale": page.scale,
                  "vm_hwm_kib": int(status["VmHWM"].split()[0]),
                  "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def test_600dpi_a3_scan_stays_under_2_gib(tmp_path):
    """Peak memory of reading a 70-megapixel colour scan, measured in a fresh process.

    ``ru_maxrss`` on Linux keeps the peak of the process image before ``exec``, so the reading
    process is started by a small launcher rather than by pytest (whose image holds every model
    the suite loaded); the page's own peak is also read from ``VmHWM``. Both must stay under 2 GiB.
    """
    width, height = A3_600DPI
    page = np.full((height, width, 3), 250, np.uint8)
    for row in range(800, height - 800, 400):
        cv2.putText(page, "12345 SPRINGFIELD AVENUE", (600, row), cv2.FONT_HERSHEY_SIMPLEX, 8, (20, 20, 20), 20)
    path = tmp_path / "a3_600dpi.png"
    cv2.imwrite(str(path), page, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    del page
    launcher = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    result = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-c", PEAK_RSS_CODE, str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    height_out, width_out = measured["shape"][:2]
    assert width_out * height_out <= WORKING_MEGAPIXELS * 1e6
    assert measured["scale"] == pytest.approx(0.5)
    for key in ("vm_hwm_kib", "ru_maxrss_kib"):
        assert measured[key] * 1024 <= 2 * 1024 ** 3, f"{key} {measured[key] / 1024:.0f} MiB"


def test_check_readable_accepts_a_normal_file(tmp_path):
    cv2.imwrite(str(tmp_path / "ok.png"), page_with_mark())
    check_readable(tmp_path / "ok.png")
