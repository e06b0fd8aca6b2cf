"""The page's door for pictures: which files an event may read, and how long they stay.

Every event that takes the picture passes through :func:`install_picture_door` before
Gradio touches the value a caller sent. A picture is read only when it is a file in Gradio's
upload folder (a visitor's upload, camera photo or paste, or an example the app copied there
itself) or a ``data:`` URL within the upload size limit. A server path, a URL (never fetched)
or anything else becomes a :class:`RefusedImage`, which the handlers turn into one sentence in
that item's columns: the same sentence whether or not such a file exists, naming no path, and
never failing the neighbours batched with it.

:class:`PictureHolds` records which session shows which picture, so kiosk cleanup deletes a
picture only when no other session shows it and it is not one of the app's own examples.
Each read also marks the file as used now: Gradio's cache sweep goes by a file's change
time, so a picture still being asked about is never swept from under its visitor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vqa_core import ImageInputError, inspect_image, load_image
from vqa_core.images import InspectedImage

from .messages import message

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_FILE_SIZE",
    "MAX_REQUEST_BYTES",
    "PictureHolds",
    "RefusedImage",
    "RequestBodyLimit",
    "check_picture",
    "inspect_picture",
    "install_picture_door",
    "open_picture",
    "say_queue_full",
]

# One size rule for every way a picture arrives: Gradio's upload route (max_file_size), a
# data: URL inside the JSON, and a file named in the upload folder.
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILE_SIZE = "10mb"
# A whole request body: one picture of the upload limit as base64 (4/3 of it), a question and a
# history of MAX_HISTORY_ENTRIES turns fit with room to spare.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
_URL_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "file:", "//", "ws://", "wss://")


@dataclass(frozen=True)
class RefusedImage:
    """What an event gets instead of a picture it may not read; ``key`` names the sentence."""

    key: str

    def sentence(self, lang: str = "en") -> str:
        return message(self.key, lang, limit=f"{MAX_FILE_BYTES // (1024 * 1024)} MB")

    def error(self) -> ImageInputError:
        """The refusal as the error the answer columns word (in the page's language)."""
        limit = f"{MAX_FILE_BYTES // (1024 * 1024)} MB"
        return ImageInputError(self.sentence(), code=self.key, limit=limit)


def _data_url_bytes(url: str) -> int:
    """The decoded size of a base64 ``data:`` URL, from its length (nothing is decoded)."""
    _, _, data = url.partition(",")
    data = data.strip()
    padding = len(data) - len(data.rstrip("="))
    return max(0, len(data) * 3 // 4 - padding)


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(_URL_SCHEMES)


def check_picture(
    payload: Any, *, roots: Iterable[Path], max_bytes: int = MAX_FILE_BYTES
) -> tuple[Any, RefusedImage | None]:
    """The value Gradio may process, and why the picture is refused (None when it is not).

    ``payload`` is what the caller sent for the picture, before Gradio reads it.
    """
    if payload is None:
        return None, None
    if not isinstance(payload, dict):
        return None, RefusedImage("image_not_uploaded")
    path, url = payload.get("path"), payload.get("url")
    if isinstance(url, str) and url.lstrip().lower().startswith("data:"):
        if _data_url_bytes(url) > max_bytes:
            return None, RefusedImage("image_too_large_file")
        # Gradio decodes the URL into its upload folder; a path beside it is never read.
        return {"path": None, "url": url, "orig_name": payload.get("orig_name")}, None
    if not isinstance(path, str) or not path.strip():
        return None, RefusedImage("image_not_uploaded")
    if _is_url(path):
        return None, RefusedImage("image_url")
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of links
        return None, RefusedImage("image_not_uploaded")
    if not any(resolved.is_relative_to(root) for root in roots):
        return None, RefusedImage("image_not_uploaded")
    try:
        size = resolved.stat().st_size
        # Used now: Gradio's sweep deletes by change time, which this sets to now.
        os.utime(resolved)
    except OSError:
        # Gone (swept, or reset by its session): nothing to read, and the same sentence
        # for every path, so a caller cannot learn which files exist.
        return None, RefusedImage("image_not_uploaded")
    if size > max_bytes:
        return None, RefusedImage("image_too_large_file")
    return {**payload, "path": str(resolved)}, None


def upload_roots(demo) -> list[Path]:
    """Where Gradio keeps visitors' uploads and the app's own copies of its examples."""
    from gradio.utils import get_upload_folder

    return sorted({Path(get_upload_folder()).resolve(), Path(demo.GRADIO_CACHE).resolve()})


def install_picture_door(demo, picture, *, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Check ``picture``'s raw value in every event of ``demo`` before Gradio reads it.

    Gradio moves a value with its ``meta`` marker into its cache only if it was uploaded
    (and downloads a URL), but hands one without the marker straight to the component;
    checking the raw value covers both, per item, so a refused picture in a batch fails
    only its own item.
    """
    original = demo.preprocess_data
    roots = upload_roots(demo)

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        slots = [i for i, block in enumerate(block_fn.inputs) if block is picture]
        if not slots:
            return await original(block_fn, inputs, state, explicit_call)
        inputs = list(inputs)
        refused: dict[int, RefusedImage] = {}
        for i in slots:
            inputs[i], refusal = check_picture(inputs[i], roots=roots, max_bytes=max_bytes)
            if refusal is not None:
                refused[i] = refusal
        processed = await original(block_fn, inputs, state, explicit_call)
        for i, refusal in refused.items():
            processed[i] = refusal
        return processed

    demo.preprocess_data = preprocess_data


def open_picture(image: Any):
    """:func:`vqa_core.load_image` for what an event received (a path or a refusal)."""
    if isinstance(image, RefusedImage):
        raise image.error()
    return load_image(image)


def inspect_picture(image: Any, **options: Any) -> InspectedImage:
    """:func:`vqa_core.inspect_image` for what an event received (a path or a refusal)."""
    if isinstance(image, RefusedImage):
        raise image.error()
    return inspect_image(image, **options)


class PictureHolds:
    """Which session shows which picture (kiosk mode deletes only what no one else shows).

    Uploads are stored by content, so two visitors with the same photo share one file, and an
    example a visitor clicked is the app's own shared copy: ``deletable`` is false for both.
    """

    def __init__(self, protected: Callable[[], Iterable[str]] = lambda: ()) -> None:
        self._protected = protected
        self._shown: dict[str, str] = {}  # session -> the picture it shows
        self._lock = threading.Lock()

    def show(self, session: str, picture: Any) -> str | None:
        """``session`` now shows ``picture``; returns the picture it showed before, if any."""
        path = _path_of(picture)
        with self._lock:
            # Sessions that ended without a reset: their picture was swept, so they hold nothing.
            for gone in [s for s, p in self._shown.items() if not os.path.exists(p)]:
                del self._shown[gone]
            before = self._shown.pop(session, None)
            if path is not None:
                self._shown[session] = path
        return before if before != path else None

    def release(self, session: str) -> str | None:
        """``session`` shows nothing any more; returns the picture it showed, if any."""
        with self._lock:
            return self._shown.pop(session, None)

    def deletable(self, path: str) -> bool:
        """No session shows it, and it is not one of the app's own files."""
        resolved = _path_of(path)
        if resolved is None:
            return False
        with self._lock:
            shown = resolved in self._shown.values()
        return not shown and resolved not in {_path_of(p) for p in self._protected()}


def _path_of(picture: Any) -> str | None:
    if not isinstance(picture, (str, os.PathLike)) or not str(picture):
        return None
    try:
        return str(Path(picture).resolve())
    except (OSError, ValueError):
        return None


class _BodyTooLarge(Exception):
    pass


class RequestBodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before it is read
    whole (by its declared length, or as it streams in when no length is declared)."""

    def __init__(self, app, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @classmethod
    def middleware(cls, max_bytes: int = MAX_REQUEST_BYTES):
        from starlette.middleware import Middleware

        return Middleware(cls, max_bytes=max_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return event

        async def tracked_send(event):
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        limit = self.max_bytes // (1024 * 1024)
        body = (
            b'{"detail": "The request is larger than %d MB. Send a picture of at most %d MB '
            b'and only the last few turns of a conversation."}'
            % (limit, MAX_FILE_BYTES // (1024 * 1024))
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def say_queue_full(demo, sentence: Callable[[Any], str]) -> None:
    """Gradio's "Queue is full. Max size is N" replaced by ``sentence(request)``: a person's
    words in their language, saying to try again shortly."""
    queue = demo._queue
    push = queue.push

    async def push_or_say_why(body, request, username):
        accepted, event, state = await push(body=body, request=request, username=username)
        if state == "queue_full":
            event = sentence(request)
        return accepted, event, state

    queue.push = push_or_say_why
