"""Reading scanned documents into page images.

Every readable kind (PNG, JPEG, TIFF, BMP, PDF) becomes a sequence of ``Page`` objects holding an
8-bit grey (H, W) or BGR (H, W, 3) array. The file's content decides how it is read (a PDF named
``.png`` is still a PDF); the suffix only decides what a folder walk picks up.

Memory stays bounded whatever the scan: page dimensions are checked from the header before any
pixel is decoded (``max_megapixels`` refuses decompression bombs), and pages larger than
``working_megapixels`` are reduced while decoding (JPEG at the DCT level, PDF by rendering at a
lower dpi) so a 600 dpi A3 scan reaches the pipeline at roughly 300 dpi.

Failures are ``InputError`` with a one-line message describing the problem (the caller adds the
file name). A file that cannot be opened at all raises when ``iter_pages`` is called; in a
multi-page file a page that cannot be decoded is yielded as a ``Page`` with ``error`` set and
``image=None``, and the other pages are still read.

Blank and all-black pages are valid pages: they are yielded like any other page (the pipeline
then finds no postal code on them, which sends the letter to manual sorting).
"""

from __future__ import annotations

import math
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from docsort import settings
from docsort.errors import InputError

if TYPE_CHECKING:  # numpy loads with the first decoded page: listing a folder's documents needs none
    import numpy as np

SUPPORTED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pdf"})
PDF_DPI = 300
WORKING_MEGAPIXELS = 20.0  # ~300 dpi A3: enough for Tesseract, bounded memory
MIN_PAGE_SIDE = 16  # smaller than this cannot hold a line of text

_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")  # JPEG also opens MPO (camera JPEGs)
_EXIF_ORIENTATION = 0x0112
_WHITE = 255
_PDF_SCAN_BYTES = 64 << 20


@dataclass(frozen=True, eq=False)
class Page:
    """One page of a document, ready for the pipeline.

    ``number`` is 1-based. ``image`` is uint8 grey or BGR, ``None`` when ``error`` says why the
    page could not be decoded. ``scale`` is the ratio working/native resolution (1.0 unless the
    page was reduced to ``working_megapixels``).
    """

    number: int
    image: Optional[np.ndarray]
    error: Optional[str] = None
    scale: float = 1.0

    @property
    def ok(self) -> bool:
        return self.error is None


def iter_pages(
    path: str | os.PathLike,
    max_megapixels: float = settings.MAX_MEGAPIXELS,
    working_megapixels: float = WORKING_MEGAPIXELS,
    min_side: int = MIN_PAGE_SIDE,
) -> Iterator[Page]:
    """The pages of one document file, decoded one at a time.

    Raises ``InputError`` at once when the file as a whole cannot be read (missing, empty,
    not an image, truncated single image, encrypted PDF, over ``max_megapixels`` ...).
    """
    path = Path(path)
    limits = _Limits(max_megapixels, max(working_megapixels, 0.01), min_side)
    check_readable(path)
    if _is_pdf(path):
        return _pdf_pages(path, limits)
    return _raster_pages(path, limits)


def read_image(path: str | os.PathLike, max_megapixels: float = settings.MAX_MEGAPIXELS,
               min_side: int = 1) -> np.ndarray:
    """The first page of an image file as a uint8 grey or BGR array (for crops and single images)."""
    pages = iter_pages(path, max_megapixels=max_megapixels, working_megapixels=max_megapixels,
                       min_side=min_side)
    try:
        page = next(pages)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
    if page.error:
        raise InputError(page.error)
    return page.image


@dataclass(frozen=True)
class _Limits:
    max_megapixels: float
    working_megapixels: float
    min_side: int


def check_readable(path: str | os.PathLike) -> None:
    """Refuse what is not a readable, non-empty regular file, before opening it (never blocks)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"broken symbolic link (points to {os.readlink(path)})") from None
        raise InputError("no such file") from None
    except PermissionError:
        raise InputError("permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot access file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file (device, pipe or socket)")
    if info.st_size == 0:
        raise InputError("file is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise InputError("permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror or exc}") from None


def _is_pdf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(1024)
    return b"%PDF-" in head


def _reduction(width: int, height: int, working_megapixels: float) -> int:
    """Integer factor that brings a page within the working resolution (1 = keep)."""
    megapixels = width * height / 1e6
    if megapixels <= working_megapixels:
        return 1
    return math.ceil(math.sqrt(megapixels / working_megapixels))


def _check_dimensions(width: int, height: int, limits: _Limits) -> None:
    if width < limits.min_side or height < limits.min_side:
        raise InputError(f"image is too small to be a scanned page ({width}x{height} pixels)")
    megapixels = width * height / 1e6
    if megapixels > limits.max_megapixels:
        raise InputError(
            f"page is {width}x{height} pixels ({megapixels:.0f} megapixels), over the limit of "
            f"{limits.max_megapixels:g} megapixels (--max-megapixels); not decoded"
        )


def _bomb_message(exc: BaseException, limits: _Limits) -> str:
    """Pillow's own decompression-bomb refusal, worded like ours."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"page is {int(found.group(1)) / 1e6:.0f} megapixels" if found else "page is too large"
    return (f"{size}, over the limit of {limits.max_megapixels:g} megapixels (--max-megapixels); "
            "not decoded")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:200]


# Raster images (Pillow) ---------------------------------------------------------------------


def _raster_pages(path: Path, limits: _Limits) -> Iterator[Page]:
    image = _open_image(path, limits)
    try:
        frames = _frame_count(image)
    except InputError:
        image.close()
        raise
    if frames > 1:
        return _tiff_frames(image, frames, limits)
    try:
        array, scale = _decode_checked(image, limits)
    finally:
        image.close()
    return iter([Page(1, array, scale=scale)])


def _decode_checked(image, limits: _Limits) -> tuple[np.ndarray, float]:
    """Check the frame's header dimensions, then decode it; every failure is an InputError."""
    from PIL import Image

    _check_dimensions(*image.size, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd tags; the pixels decide
            return _decode_frame(image, limits)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(_bomb_message(exc, limits)) from None
    except Exception as exc:  # Pillow's decoders raise many types for corrupt data
        raise InputError(f"corrupt or truncated image data ({_first_line(exc)})") from None


def _open_image(path: Path, limits: _Limits):
    from PIL import Image
    # The plugins of the formats read, named, so that Pillow does not import its forty others.
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin  # noqa: F401

    # Pillow's own bomb check follows our limit (it errors at twice MAX_IMAGE_PIXELS).
    Image.MAX_IMAGE_PIXELS = int(limits.max_megapixels * 1e6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb warnings (our own limit decides) and odd tags
            image = Image.open(path, formats=_PIL_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InputError(_bomb_message(exc, limits)) from None
    except Image.UnidentifiedImageError:
        raise InputError("not a readable image or PDF (unrecognised or corrupt content)") from None
    except PermissionError:
        raise InputError("permission denied") from None
    except Exception as exc:
        raise InputError(f"not a readable image ({_first_line(exc)})") from None
    return image


def _frame_count(image) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return max(1, int(getattr(image, "n_frames", 1)))
    except Exception as exc:
        raise InputError(f"corrupt multi-page structure ({_first_line(exc)})") from None


def _tiff_frames(image, frames: int, limits: _Limits) -> Iterator[Page]:
    """Pages of a multi-page file; a page that fails is reported and the next one is tried."""
    try:
        for index in range(frames):
            number = index + 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    image.seek(index)
                array, scale = _decode_checked(image, limits)
            except InputError as exc:
                yield Page(number, None, error=str(exc))
                continue
            except Exception as exc:
                yield Page(number, None, error=f"corrupt page ({_first_line(exc)})")
                continue
            yield Page(number, array, scale=scale)
    finally:
        image.close()


def _orientation(image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1  # an unreadable EXIF block does not make the pixels unreadable


def _decode_frame(image, limits: _Limits) -> tuple[np.ndarray, float]:
    """Decode the current frame to a uint8 grey or BGR array within the working resolution."""
    import numpy as np

    from PIL import Image

    native_width = image.size[0]
    orientation = _orientation(image)
    factor = _reduction(*image.size, limits.working_megapixels)
    if factor > 1 and image.format in ("JPEG", "MPO"):
        width, height = image.size
        image.draft(image.mode, (width // factor, height // factor))
    image.load()
    frame = _normalise_mode(image)
    factor = _reduction(*frame.size, limits.working_megapixels)
    if factor > 1:
        frame = frame.reduce(factor)
    frame = _flatten_alpha(frame)
    frame = _apply_orientation(frame, orientation, Image)
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise InputError(f"unsupported pixel format {frame.mode}")
    if array.ndim == 3:
        import cv2

        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)  # a few times faster than a numpy copy
    else:
        array = np.ascontiguousarray(array)
    width_after = array.shape[1] if orientation < 5 else array.shape[0]
    return array, width_after / native_width


def _normalise_mode(image):
    """Bring any Pillow mode to L, LA, RGB or RGBA (8 bits per channel)."""
    import numpy as np

    from PIL import Image

    mode = image.mode
    if mode in ("L", "RGB", "RGBA", "LA"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(image)), mode="L")
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """High-bit-depth grey (16-bit, 32-bit, float) to 8 bits by its value range."""
    import numpy as np

    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"unsupported pixel layout {values.shape}")
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max()) if values.size else 1.0
        scale = 255.0 if top <= 1.0 else 255.0 / top
        return np.clip(values * scale, 0, 255).astype(np.uint8)
    top = int(values.max()) if values.size else 0
    if top <= 255 and int(values.min()) >= 0:
        return values.astype(np.uint8)
    if top <= 65535 and int(values.min()) >= 0:
        return (values // 257).astype(np.uint8)
    low = int(values.min())
    span = max(top - low, 1)
    return ((values.astype(np.float64) - low) * (255.0 / span)).astype(np.uint8)


def _flatten_alpha(frame):
    """Transparent pixels become white paper."""
    from PIL import Image

    if frame.mode not in ("RGBA", "LA"):
        return frame
    base_mode = "RGB" if frame.mode == "RGBA" else "L"
    background = Image.new(base_mode, frame.size, (_WHITE,) * len(base_mode))
    background.paste(frame.convert(base_mode), mask=frame.getchannel("A"))
    return background


def _apply_orientation(frame, orientation: int, Image):
    transpose = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return frame.transpose(transpose) if transpose is not None else frame


# PDF (pypdfium2) -----------------------------------------------------------------------------


def _pdf_pages(path: Path, limits: _Limits) -> Iterator[Page]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except Exception:
        raise InputError(_pdf_load_failure(path)) from None
    try:
        count = len(document)
    except Exception as exc:
        document.close()
        raise InputError(f"not a readable PDF ({_first_line(exc)})") from None
    if count == 0:
        document.close()
        raise InputError("PDF has no pages")
    return _render_pdf(document, count, limits)


def _pdf_load_failure(path: Path) -> str:
    """Why PDFium refused a file, from the file itself (PDFium's last-error code can be stale)."""
    with open(path, "rb") as fh:
        content = fh.read(_PDF_SCAN_BYTES)
    if b"/Encrypt" in content:
        return "PDF is encrypted (password protected)"
    if len(content) < _PDF_SCAN_BYTES and re.search(rb"/Type\s*/Page(?![A-Za-z])", content) is None \
            and re.search(rb"/Count\s+0(?![0-9])", content) is not None:
        return "PDF has no pages"
    return "not a readable PDF (damaged or incomplete file)"


def _render_pdf(document, count: int, limits: _Limits) -> Iterator[Page]:
    try:
        for index in range(count):
            number = index + 1
            try:
                array, scale = _render_pdf_page(document, index, limits)
            except InputError as exc:
                yield Page(number, None, error=str(exc))
                continue
            except Exception as exc:
                yield Page(number, None, error=f"PDF page cannot be rendered ({_first_line(exc)})")
                continue
            yield Page(number, array, scale=scale)
    finally:
        document.close()


def _render_pdf_page(document, index: int, limits: _Limits) -> tuple[np.ndarray, float]:
    """Render at 300 dpi, or at the lower dpi that fits the working resolution."""
    import numpy as np

    page = document[index]
    try:
        width_pt, height_pt = page.get_size()
        if page.get_rotation() in (90, 270):
            width_pt, height_pt = height_pt, width_pt
        native = PDF_DPI / 72.0
        width, height = round(width_pt * native), round(height_pt * native)
        _check_dimensions(width, height, limits)
        scale = 1.0
        megapixels = width * height / 1e6
        if megapixels > limits.working_megapixels:
            scale = math.sqrt(limits.working_megapixels / megapixels)
        bitmap = page.render(scale=native * scale)
        try:
            array = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)
        finally:
            bitmap.close()
    finally:
        page.close()
    if array.ndim == 3 and array.shape[2] == 4:
        array = np.ascontiguousarray(array[:, :, :3])
    return array, scale
