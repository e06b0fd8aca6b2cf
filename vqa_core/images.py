"""The one intake every image passes through before a model sees it.

Phones, scanners and the web hand us images in every shape: rotated by EXIF, paletted,
transparent, CMYK, 16-bit, animated, truncated, enormous, or 50 times wider than tall.
:func:`load_image` turns each into a plain RGB picture a processor can take, or raises
:class:`~vqa_core.errors.ImageInputError` with a sentence a person can act on.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .decode_memory import (
    DecodeBudget,
    DecodeBusyError,
    estimate_decode_bytes,
    release_freed_memory,
)
from .errors import ImageInputError
from .quality import PhotoQuality, QualityThresholds, measure_quality

__all__ = [
    "ImageSource",
    "InspectedImage",
    "inspect_image",
    "load_image",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_MAX_DECODE_BYTES",
    "DECODE_BUDGET",
    "MAX_ASPECT_RATIO",
]

ImageSource = Image.Image | str | os.PathLike | bytes | bytearray | memoryview

# 64 MP admits every phone and most camera photos while staying below Pillow's own
# decompression-bomb warning (about 89 MP), which stays switched on as a second line.
DEFAULT_MAX_PIXELS = 64_000_000
# The most memory one picture may take to be decoded and turned into RGB, estimated from its
# header before anything is decoded (vqa_core.decode_memory). 512 MiB admits every ordinary
# photo and screenshot, with the estimates: a 12-48 MP phone JPEG 21-23 MiB (its draft size),
# up to 297 MiB if progressive (libjpeg then keeps every DCT coefficient); a 48 MP HEIC
# 478 MiB; a 4K or 8K RGBA screenshot 83 or 273 MiB; a 64 MP PNG, RGB or RGBA, 8 or 16 bits,
# 508 MiB (measured: 290 and 494). It refuses what costs more at the same pixel count: WebP,
# AVIF or JPEG 2000 past 20-30 MP, 32-bit TIFFs, a 16-bit TIFF in one strip (997 MiB at
# 8000x8000). Figures: docs/performance.md, "Decoding within a memory bound".
DEFAULT_MAX_DECODE_BYTES = 512 * 1024**2
# All decodes in the process together: two pictures at the bound at once, so that uploads
# from several visitors cannot add up, on an 8 GB machine whose models take 3.8 GB. A decode
# that finds no room waits up to DECODE_WAIT_S (one at the bound takes 2-3 s on two cores),
# then the visitor is asked to try again.
DECODE_BUDGET_BYTES = 2 * DEFAULT_MAX_DECODE_BYTES
DECODE_WAIT_S = 10.0
DECODE_BUDGET = DecodeBudget(DECODE_BUDGET_BYTES, DECODE_WAIT_S)
# From this estimate up, a decode hands the memory it freed back to the system as it ends.
_TRIM_ABOVE_BYTES = 48 * 1024**2
# Neither model looks at more than 640 px (ViLT) or 224 px (BLIP-2) per side, so decoding a
# 12 MP photo at full size only costs time; 1280 keeps normal-size images untouched.
DEFAULT_MAX_SIDE = 1280
# ViltImageProcessor scales the short side to 384 and caps the long side at 640, then rounds
# down to multiples of 32: past about 20:1 the short side rounds to 0 and it raises.
# Padding beyond 4:1 keeps every shape answerable with a margin.
MAX_ASPECT_RATIO = 4.0
# What the models keep of a picture: ViLT scales the short side to 384 with the long side at
# most 640, BLIP-2 squeezes it to 224x224. A large JPEG is decoded at the smallest DCT scale
# (1/2, 1/4 or 1/8) that still covers ViLT's size, give or take JPEG_DRAFT_SLACK: a 12 MP photo
# then decodes at 1/8 (500x375, stretched 2.4% to ViLT's 384 rows) rather than at 1/4
# (1000x750), which costs 4-5 ms more to decode and 4x the pixels to resize, for detail the
# model throws away. Measured in bench/phone_photo_intake.py.
VILT_SHORT_SIDE = 384
VILT_LONG_SIDE = 640
JPEG_DRAFT_SLACK = 0.95

_BACKGROUND = (255, 255, 255)
_URL_PREFIXES = ("http://", "https://", "ftp://", "data:", "file://")


@functools.cache
def _readable_formats() -> str:
    """Register the formats Pillow lacks (once, on first use) and name what can be read."""
    formats = "JPEG, PNG, GIF, WebP, BMP, TIFF"
    try:
        # iPhones save HEIC by default; pillow-heif is in requirements.txt, but vqa_core
        # still reads every other format without it.
        from pillow_heif import register_heif_opener
    except ImportError:
        return formats
    register_heif_opener()
    return formats + ", HEIC"


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    readable = _readable_formats()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageInputError("The image file is empty.", code="image_empty")
        stream: io.BytesIO | Path = io.BytesIO(data)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.strip().lower().startswith(_URL_PREFIXES):
            raise ImageInputError(
                "Images are not fetched from URLs; download the picture and upload the file.",
                code="image_url",
            )
        stream = Path(text)
        if not stream.is_file():
            raise ImageInputError(f"No image file at {text!r}.")
    else:
        raise ImageInputError(
            f"Unsupported image input of type {type(source).__name__}; "
            "give a PIL image, a file path or the file's bytes."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageInputError(
            "The image has too many pixels to process safely; please upload a smaller picture.",
            code="image_too_many_pixels",
        ) from err
    except UnidentifiedImageError as err:
        raise ImageInputError(
            f"This file is not an image that can be read (supported: {readable}).",
            code="image_not_image",
            formats=readable,
        ) from err
    except OSError as err:
        raise ImageInputError(f"The image could not be read: {err}.", code="image_damaged") from err


_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def _narrow(image: Image.Image) -> Image.Image:
    """Wide grey stretched to 8 bits, palettes expanded: a mode :func:`_flatten` can take.

    Each step returns a new picture and keeps no other, so the caller's reassignment frees the
    one before: that, and no copy where none is needed, is what keeps the peak near the
    decoded picture plus its RGB version (decode_memory's figures)."""
    if image.mode == "P":
        # Paletted images may carry transparency in their info; RGBA exposes it as alpha.
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.mode in _WIDE_GREY:
        # 16/32-bit and float grey: stretch to 8 bits, else nearly everything clips to white.
        # I;16 takes the stretch in its own mode (the same bytes as through F, checked for
        # every value), at half the memory; 32-bit integers would round differently, and
        # I;16's explicit byte orders (whose extrema Pillow cannot read, and which it clips
        # converting to I;16: 300 became 255) take a float copy, which holds their values.
        if image.mode == "I;16N":
            # Native byte order: Pillow clips it to 255 converting to I (a flat black picture);
            # the same bytes read as the explicit order of this machine convert correctly.
            order = "I;16L" if sys.byteorder == "little" else "I;16B"
            image = Image.frombuffer(order, image.size, image.tobytes(), "raw", order, 0, 1)
        wide = image if image.mode in ("I;16", "F") else image.convert("F")
        # Extrema read where they are exact: the integers themselves, or (16-bit values,
        # exact in float) the float copy.
        lo, hi = (image if image.mode in ("I", "I;16", "F") else wide).getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        # Each level is the whole part of (v - lo) * 255 / (hi - lo). In floating point an
        # exact step can come out a hair under its integer (500 in 300..3300: 16.999...) and
        # be cut to the level below; a step between two levels of 16-bit values is at least
        # 1 / 65535 from an integer, so a millionth lifts exact steps and moves no other
        # 16-bit value (a 32-bit or float one only where it is within a millionth of a level).
        stretched = wide.point(lambda v: (v - lo) * scale + 1e-6)
        del wide  # a 32-bit copy, if one was made: not needed while the 8-bit one is
        return stretched.convert("L")
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in _WITH_ALPHA:
        # Pasting RGBA and LA onto RGB reads their alpha directly; the premultiplied modes
        # and PA are made plain RGBA first.
        # (Pillow converts premultiplied grey, La, only to plain LA.)
        plain = {"RGBA": None, "LA": None, "La": "LA"}.get(image.mode, "RGBA")
        rgba = image if plain is None else image.convert(plain)
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba)
        return canvas
    return image.convert("RGB")


def _upright(image: Image.Image, owned: bool) -> Image.Image:
    """``image`` turned as its EXIF orientation says, copied only when it must turn."""
    if owned:
        ImageOps.exif_transpose(image, in_place=True)
        return image
    if image.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
        return ImageOps.exif_transpose(image)
    return image


def _pad_extreme_aspect(image: Image.Image, max_ratio: float) -> Image.Image:
    width, height = image.size
    if width >= height * max_ratio:
        target = (width, max(1, round(width / max_ratio)))
    elif height >= width * max_ratio:
        target = (max(1, round(height / max_ratio)), height)
    else:
        return image
    canvas = Image.new("RGB", target, _BACKGROUND)
    canvas.paste(image, ((target[0] - width) // 2, (target[1] - height) // 2))
    return canvas


def _jpeg_draft_size(width: int, height: int) -> tuple[int, int]:
    """The smallest size a JPEG draft may decode to and still cover what ViLT looks at."""
    scale = min(VILT_SHORT_SIDE / min(width, height), VILT_LONG_SIDE / max(width, height), 1.0)
    scale *= JPEG_DRAFT_SLACK
    return max(1, int(width * scale)), max(1, int(height * scale))


def _decode(
    source: ImageSource, max_pixels: int, max_side: int | None, max_decode_bytes: int
) -> tuple[Image.Image, tuple[int, int]]:
    """The upright RGB picture before any padding, and the file's own (width, height).

    The picture is priced from its header first: refused above ``max_decode_bytes``, and
    decoded only once :data:`DECODE_BUDGET` has room for it beside the decodes under way.
    """
    image = _open(source)
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError("The image has no pixels.", code="image_damaged")
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels. Please upload a smaller picture.",
            code="image_too_many_pixels",
        )
    decoded = image is source
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)
        if max_side and image.format == "JPEG" and max(width, height) > max_side:
            # Decode straight from the DCT at reduced scale: far cheaper than decoding every
            # pixel and resizing afterwards.
            image.draft("RGB", _jpeg_draft_size(width, height))
        estimate = estimate_decode_bytes(image, full_size=(width, height), max_side=max_side)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageInputError(
            "The image file is damaged or incomplete and could not be decoded.",
            code="image_damaged",
        ) from err
    if estimate > max_decode_bytes:
        raise ImageInputError(
            f"The image is {width}x{height} and would need about {estimate / 1024**2:,.0f} MB "
            f"of memory to read; the limit is {max_decode_bytes / 1024**2:,.0f} MB. Please "
            "upload a smaller picture, or save it as a JPEG.",
            code="image_too_much_memory",
        )
    try:
        with DECODE_BUDGET.reserve(estimate):
            image.load()
            image = _upright(image, owned=not decoded)
            image = _narrow(image)
            image = _flatten(image)
            if max_side and max(image.size) > max_side:
                if image is source:
                    image = image.copy()  # never shrink the caller's own picture
                # Pillow's defaults: bicubic, after a cheap reduction down to twice the size.
                image.thumbnail((max_side, max_side))
            picture = image
    except DecodeBusyError as err:
        raise ImageInputError(
            "The server is busy reading other large pictures; please try again in a minute.",
            code="image_busy",
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # The traceback would keep the half-decoded picture alive until the caller lets go.
        traceback.clear_frames(err.__traceback__)
        raise ImageInputError(
            "The image file is damaged or incomplete and could not be decoded.",
            code="image_damaged",
        ) from err
    finally:
        image = None  # the decoded file's pixels, unless they are the picture returned
        if estimate > _TRIM_ABOVE_BYTES:
            release_freed_memory()
    return picture, (width, height)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
) -> Image.Image:
    """Return ``source`` as an upright RGB image ready for any processor.

    ``source`` is a PIL image, a path or the file's bytes (never a URL). Raises
    :class:`ImageInputError` for anything that cannot be answered: too many pixels, more than
    ``max_decode_bytes`` of memory to decode (estimated from the header, before decoding), or
    no room in the process's decode budget within :data:`DECODE_WAIT_S`.
    """
    image, _ = _decode(source, max_pixels, max_side, max_decode_bytes)
    return _pad_extreme_aspect(image, MAX_ASPECT_RATIO)


@dataclass(frozen=True)
class InspectedImage:
    """The intake's picture together with what makes answers about it unreliable."""

    image: Image.Image
    quality: PhotoQuality


def inspect_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = DEFAULT_MAX_SIDE,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    thresholds: QualityThresholds | None = None,
) -> InspectedImage:
    """:func:`load_image` plus its photo-quality cues (:func:`~vqa_core.quality.measure_quality`).

    The cues are measured before the padding of extreme aspect ratios, on the decoded
    picture, and "too small" on the file's own size, so neither the padding nor a JPEG draft
    changes them.
    """
    image, original_size = _decode(source, max_pixels, max_side, max_decode_bytes)
    quality = measure_quality(image, original_size=original_size, thresholds=thresholds)
    return InspectedImage(_pad_extreme_aspect(image, MAX_ASPECT_RATIO), quality)
