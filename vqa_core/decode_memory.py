"""What decoding a picture costs in memory, a process-wide budget for it, and giving it back.

A 500 KB PNG can declare 8000x8000 16-bit RGBA pixels: the pixel cap lets it through, but
decoding it and turning it into RGB cost 0.8 GB. So the intake prices every picture from its
header before decoding it (:func:`estimate_decode_bytes`), refuses one that would cost more
than a per-picture bound, and makes concurrent decodes share one process-wide
:class:`DecodeBudget`, so that several such uploads at once cannot add up either. After a large
decode :func:`release_freed_memory` hands the freed pages back to the system, which glibc
otherwise keeps for the next allocation.

The figures below are peak resident memory measured in fresh processes on the development
machine (docs/performance.md, "Decoding within a memory bound"); Pillow stores every pixel of
a mode in 1 ("1", "L", "P"), 2 ("I;16") or 4 bytes (everything else, RGB included), whatever
the file's own bit depth: a 16-bit PNG is narrowed to 8 bits while it is read.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from typing import IO

from PIL import ExifTags, Image, ImageFile

__all__ = [
    "DecodeBudget",
    "DecodeBusyError",
    "estimate_decode_bytes",
    "release_freed_memory",
]

MIB = 1 << 20

# Bytes per pixel Pillow stores for a picture in each mode.
_STORED_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Bytes per pixel held at the peak of the conversion to RGB (vqa_core.images' _narrow and
# _flatten), the decoded picture included: e.g. RGBA is 4 + a 4-byte RGB canvas, I;16 is
# 2 + 2 (stretched in its own mode) + 1 (L), then L becomes RGB, 1 + 4; I is 4 + 4 (as F) +
# 4 (stretched).
_CONVERSION_BYTES_PER_PIXEL = {
    "1": 5,
    "L": 5,
    "P": 5,  # 8 when the palette carries transparency: through RGBA
    "RGB": 4,
    "RGBA": 8,
    "LA": 8,
    "La": 12,
    "PA": 12,
    "RGBa": 12,
    "RGBX": 8,
    "CMYK": 8,
    "YCbCr": 8,
    "LAB": 8,
    "HSV": 8,
    "I;16": 5,
    "I;16B": 11,
    "I;16L": 11,
    "I;16N": 11,
    "I": 12,
    "F": 9,
}
_UNKNOWN_MODE_BYTES_PER_PIXEL = 16
# Shrinking the RGB picture to the models' size: it (4), Pillow's reduced copy (at most 1),
# plus the resampler's half-way picture of max_side x the short side (counted apart).
_SHRINK_BYTES_PER_PIXEL = 5
# Buffers, tables, the small final picture and allocator slack, whatever the size.
_FIXED_OVERHEAD = 20 * MIB

# Decoders that hand Pillow the whole picture at once, in bytes per pixel of the file's size,
# while decoding and what stays with the opened file until it is closed: libwebp's frame, its
# copy and the animation canvas it keeps; libheif's and libavif's planes and their RGB;
# OpenJPEG's 32-bit samples (measured: WebP 12 / 8, HEIF 3.3-4.3 / 0.4, AVIF 5.3-7.7 / 3.7,
# JPEG 2000 15-20 / 0). Formats read row by row (PNG, GIF, BMP, PPM, baseline JPEG) add
# nothing; progressive JPEGs and TIFF strips are counted from their headers.
_WHOLE_IMAGE_DECODER_BYTES = {"WEBP": (12, 8), "HEIF": (6, 1), "AVIF": (10, 4), "JPEG2000": (24, 0)}
_ROW_BY_ROW = frozenset({"PNG", "GIF", "BMP", "DIB", "PPM", "JPEG", "MPO", "TIFF"})
_UNKNOWN_FORMAT_DECODER_BYTES = (16, 16)


def _conversion_bytes_per_pixel(image: Image.Image) -> int:
    if image.mode == "P" and image.has_transparency_data:
        return 8
    return _CONVERSION_BYTES_PER_PIXEL.get(image.mode, _UNKNOWN_MODE_BYTES_PER_PIXEL)


def _may_turn(image: Image.Image) -> bool:
    """Whether the EXIF orientation will make the intake transpose (a second copy)."""
    if image.format == "PNG":
        return True  # PNG's eXIf and XMP may follow the pixels: unknown until decoded
    try:
        return image.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9)
    except Exception:  # unreadable EXIF is ignored when turning, so nothing turns
        return False


def _jpeg_coefficients_bytes(image: Image.Image, full_size: tuple[int, int]) -> int:
    """libjpeg keeps every DCT coefficient of the full-size picture when it cannot decode in
    one pass (progressive files, or scans that hold one component each), draft or not."""
    if not _jpeg_needs_whole_image(image):
        return 0
    layers = [(max(1, h), max(1, v)) for _, h, v, _ in getattr(image, "layer", None) or []]
    layers = layers or [(1, 1)] * len(image.getbands())
    h_max = max(h for h, _ in layers)
    v_max = max(v for _, v in layers)
    width, height = full_size
    # Two bytes per coefficient, each component at its own sampling, in whole 8x8 blocks.
    return sum(
        -(-width * h // (h_max * 8)) * -(-height * v // (v_max * 8)) * 128 for h, v in layers
    )


def _jpeg_needs_whole_image(image: Image.Image) -> bool:
    if image.info.get("progressive"):
        return True
    components = len(getattr(image, "layer", None) or image.getbands())
    first_scan = _jpeg_first_scan_components(getattr(image, "fp", None))
    return first_scan is None or first_scan < components


def _jpeg_first_scan_components(fp: IO[bytes] | None) -> int | None:
    """How many components the file's first scan holds (None when it cannot be read): fewer
    than the frame has means one scan per component, which libjpeg buffers whole."""
    if fp is None:
        return None
    position = fp.tell()
    try:
        fp.seek(2)  # after the start-of-image marker
        for _ in range(10_000):  # marker segments before the first scan
            marker = fp.read(2)
            while marker == b"\xff\xff":  # fill bytes before a marker
                marker = b"\xff" + fp.read(1)
            length = fp.read(2)
            if len(marker) < 2 or marker[0] != 0xFF or len(length) < 2:
                return None
            if marker[1] == 0xDA:  # start of scan: its length, then its component count
                count = fp.read(1)
                return count[0] if count else None
            size = int.from_bytes(length, "big")
            if size < 2:
                return None
            fp.seek(size - 2, 1)
        return None
    except (OSError, ValueError):
        return None
    finally:
        fp.seek(position)


def _tiff_strip_bytes(image: Image.Image) -> int:
    """libtiff decodes a whole strip or tile, at the file's own bit depth, before Pillow
    narrows it: one strip can be the whole picture."""
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return 0
    width, height = image.size
    samples = max(1, _tag_int(tags, 277, 1))  # SamplesPerPixel
    bits = tags.get(258)  # BitsPerSample: one value, or one per sample
    if isinstance(bits, tuple) and len(bits) == samples:
        bits_per_pixel = sum(_tag_int({0: b}, 0, 8) for b in bits)
    else:
        bits_per_pixel = _tag_int(tags, 258, 8) * samples
    if 322 in tags and 323 in tags:  # TileWidth, TileLength
        area = _tag_int(tags, 322, width) * _tag_int(tags, 323, height)
    else:
        area = width * min(height, max(1, _tag_int(tags, 278, height)))  # RowsPerStrip
    return -(-area * bits_per_pixel // 8)


def _tag_int(tags, tag: int, default: int) -> int:
    """A TIFF tag as one integer, whatever shape a file gave it."""
    value = tags.get(tag, default)
    if isinstance(value, tuple):
        value = value[0] if value else default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def estimate_decode_bytes(
    image: Image.Image,
    *,
    full_size: tuple[int, int] | None = None,
    max_side: int | None = None,
) -> int:
    """The peak memory the intake will take to turn ``image`` into its RGB picture.

    ``image`` is opened, not yet loaded, and already drafted when it is a JPEG: ``full_size``
    is then the file's own size. A picture handed over decoded is counted as if it were not:
    the figure bounds what the intake holds, whoever paid for the decoding.
    """
    width, height = image.size
    pixels = width * height
    while_decoding, kept = _decoder_bytes(image, full_size or image.size)
    # The intake's steps one after another, each freeing the one before.
    stored = _STORED_BYTES_PER_PIXEL.get(image.mode, 4)
    after = [pixels * _conversion_bytes_per_pixel(image)]
    if _may_turn(image):
        after.append(pixels * 2 * stored)
    if max_side and max(width, height) > max_side:
        after.append(pixels * _SHRINK_BYTES_PER_PIXEL + 4 * max_side * min(width, height))
    peak = max(pixels * stored + while_decoding, max(after) + kept)
    return peak + _FIXED_OVERHEAD


def _decoder_bytes(image: Image.Image, full_size: tuple[int, int]) -> tuple[int, int]:
    """What the decoder holds besides the picture it fills: while it runs, and afterwards."""
    if not isinstance(image, ImageFile.ImageFile):
        return 0, 0  # made in memory, never decoded
    image_format = image.format or ""
    if image_format in ("JPEG", "MPO"):
        return _jpeg_coefficients_bytes(image, full_size), 0
    if image_format == "TIFF":
        return _tiff_strip_bytes(image), 0
    if image_format in _ROW_BY_ROW:
        return 0, 0
    full_pixels = full_size[0] * full_size[1]
    during, kept = _WHOLE_IMAGE_DECODER_BYTES.get(image_format, _UNKNOWN_FORMAT_DECODER_BYTES)
    return full_pixels * during, full_pixels * kept


class DecodeBusyError(Exception):
    """No room in the decode budget came free within the wait."""


class DecodeBudget:
    """Bytes that all decodes in this process may hold together.

    A decode reserves its estimate before it starts and gives it back when it ends; one that
    does not fit waits for room, up to ``wait_s`` seconds, then gives up with
    :class:`DecodeBusyError`. A decode larger than the whole budget still runs, alone.
    """

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.in_use = 0
        self.high_water = 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self._room:
            fits = self._room.wait_for(
                lambda: self.in_use == 0 or self.in_use + size <= self.limit, self.wait_s
            )
            if not fits:
                raise DecodeBusyError(f"{size} bytes did not fit in {self.wait_s} s")
            self.in_use += size
            self.high_water = max(self.high_water, self.in_use)
        try:
            yield
        finally:
            with self._room:
                self.in_use -= size
                self._room.notify_all()


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None  # not glibc: its allocator returns large blocks on its own


def release_freed_memory() -> bool:
    """Hand memory freed on the C heap back to the system (glibc's ``malloc_trim``).

    glibc serves Pillow's 16 MiB image blocks from its heaps once a block of that size has
    been freed, and keeps what is freed there for reuse: a server that decoded a few large
    pictures on several threads held their memory long after. Trimming costs a few
    milliseconds, so it follows large decodes only.
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
