"""The wire format shared by the model replicas and the HTTP client (no Ray, no httpx here).

One request carries one image and one question; Serve's own batching joins concurrent
requests into one forward pass, so a client never has to batch for the server.

Request (JSON)::

    POST /vilt   {"image": "<base64 file bytes>", "question": "...", "top_k": 5}
    POST /blip2  {"image": "<base64 file bytes>", "question": "...",
                  "max_new_tokens": 10, "num_beams": 1}

(or the same fields as a multipart form, the image as a file part). Response: the result
object vqa_core returns, as ``ViltResult.as_dict()`` / ``Blip2Result.as_dict()`` plus the
question as the model saw it. Errors: ``{"error": "<one sentence>", "field": ...}`` with
422 for input the intake refused and 503/504 when the model could not answer.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from pathlib import Path

from PIL import Image

from vqa_core import Blip2Result, ImageInputError, InputError, ViltResult, load_image
from vqa_core.blip2 import DEFAULT_MAX_NEW_TOKENS, MAX_BEAMS, MAX_NEW_TOKENS_LIMIT
from vqa_core.images import ImageSource

__all__ = [
    "MODEL_ROUTES",
    "MAX_REQUEST_BYTES",
    "DEFAULT_TOP_K",
    "image_to_bytes",
    "encode_image",
    "decode_image",
    "int_option",
    "vilt_options",
    "blip2_options",
    "vilt_result_to_json",
    "vilt_result_from_json",
    "blip2_result_to_json",
    "blip2_result_from_json",
]

MODEL_ROUTES = {"vilt": "/vilt", "blip2": "/blip2"}
# A 48 MB photo in base64 is 64 MB; the intake itself stops at 64 megapixels.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_TOP_K = 5
# The page hands over pictures it already decoded; PNG keeps them lossless (the answers must
# match in-process answers exactly) and level 1 keeps encoding to a few milliseconds.
_PNG_COMPRESS_LEVEL = 1


def image_to_bytes(source: ImageSource) -> bytes:
    """The bytes to send for ``source``: a file's own bytes, or a lossless PNG of a picture."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, Image.Image):
        # The intake first, here: a picture in any mode (16-bit, float, CMYK) becomes the
        # RGB the model would see, and PNG carries that exactly. On the page's pictures,
        # which already went through it, this is a no-op.
        picture = load_image(source)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
        return buffer.getvalue()
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if not path.is_file():
            raise ImageInputError(f"No image file at {str(path)!r}.")
        return path.read_bytes()
    raise ImageInputError(
        f"Unsupported image input of type {type(source).__name__}; "
        "give a PIL image, a file path or the file's bytes."
    )


def encode_image(source: ImageSource) -> str:
    return base64.b64encode(image_to_bytes(source)).decode("ascii")


def decode_image(value: object) -> bytes:
    """The file bytes in a JSON request's ``image`` field (base64), or the intake's refusal."""
    if value is None:
        raise ImageInputError("Please upload an image.")
    if not isinstance(value, str):
        raise ImageInputError(
            "The image must be the file's bytes, base64-encoded, in the 'image' field."
        )
    # Accept a data URL too: browsers' FileReader produces one.
    _, _, payload = value.rpartition("base64,")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ImageInputError(
            "The 'image' field is not valid base64; send the file's bytes base64-encoded."
        ) from err


def int_option(name: str, value: object, *, default: int, low: int, high: int) -> int:
    """A whole-number option from a request, clamped to ``[low, high]`` as vqa_core clamps."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number from {low} to {high}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number from {low} to {high}.") from None
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        raise InputError(f"{name} must be a whole number from {low} to {high}.")
    return max(low, min(int(number), high))


def vilt_options(payload: dict, label_count: int) -> dict:
    return {
        "top_k": int_option(
            "top_k", payload.get("top_k"), default=DEFAULT_TOP_K, low=1, high=label_count
        )
    }


def blip2_options(payload: dict) -> dict:
    return {
        "max_new_tokens": int_option(
            "max_new_tokens",
            payload.get("max_new_tokens"),
            default=DEFAULT_MAX_NEW_TOKENS,
            low=1,
            high=MAX_NEW_TOKENS_LIMIT,
        ),
        "num_beams": int_option(
            "num_beams", payload.get("num_beams"), default=1, low=1, high=MAX_BEAMS
        ),
    }


def vilt_result_to_json(result: ViltResult) -> dict:
    return {**result.as_dict(), "question": result.question}


def vilt_result_from_json(data: dict) -> ViltResult:
    return ViltResult(
        answers=[(str(item["answer"]), float(item["score"])) for item in data["answers"]],
        question=str(data.get("question", "")),
        truncated=bool(data.get("truncated", False)),
        seconds=float(data.get("seconds", 0.0)),
        batch_size=int(data.get("batch_size", 1)),
        model=str(data.get("model", "")),
    )


def blip2_result_to_json(result: Blip2Result) -> dict:
    return {**result.as_dict(), "question": result.question}


def blip2_result_from_json(data: dict) -> Blip2Result:
    return Blip2Result(
        answer=str(data["answer"]),
        question=str(data.get("question", "")),
        seconds=float(data.get("seconds", 0.0)),
        batch_size=int(data.get("batch_size", 1)),
        model=str(data.get("model", "")),
    )
