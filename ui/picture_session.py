"""The picture a session shows: its arrival (photo check, a new conversation), HEIC previews,
and, in kiosk mode, deleting it once no session shows it any more."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from vqa_core import VQAError

from .events import language_of, session_of
from .intake import PictureHolds, open_picture
from .photo_check import PhotoCheck

__all__ = ["HEIC_ORIGINAL_GRACE_SECONDS", "HEIF_SUFFIXES", "PictureSession"]

# Suffixes of HEIF pictures (iPhones save .heic), which most browsers cannot draw.
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
# In kiosk mode a swapped-out HEIC original (which carries the phone's EXIF, location
# included) is deleted this long after the swap, not at once: an Ask pressed while the swap
# was on its way still names the original and must find it.
HEIC_ORIGINAL_GRACE_SECONDS = 30.0


class PictureSession:
    """Each session's current picture; ``cache_dir`` set (kiosk mode) deletes left pictures."""

    def __init__(
        self,
        photos: PhotoCheck,
        *,
        holds: PictureHolds | None = None,
        cache_dir: str | None = None,
        grace_seconds: float = HEIC_ORIGINAL_GRACE_SECONDS,
    ) -> None:
        self.photos = photos
        self.holds = holds if holds is not None else PictureHolds()
        # Set in kiosk mode: a picture under this folder that no session shows any more (and
        # that is not one of the app's examples) is deleted as soon as it is left.
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self.grace_seconds = grace_seconds

    # The page's conversation ---------------------------------------------------------------
    def new_picture(self, image, request: gr.Request) -> tuple:
        """A picture arrived or went: its quality sentence; the conversation starts over, and
        the answers about the last picture go (they are not about this one).

        The session now shows this picture; the one it showed before is left, and in kiosk
        mode deleted after a short grace (an Ask already on its way may still name it)
        unless another session shows the same file.
        """
        left = self.holds.show(session_of(request), image)
        if left is not None:
            self._discard_later(left)
        quality = self.photos.sentence_for(image, language_of(request))
        return (quality, [], "", None, "", "", "", "", "", "")

    def reset(self, image: str | None, request: gr.Request):
        """Back to the start screen; in kiosk mode this session's picture is deleted too.

        Only the picture this session showed, and only when no other session shows the same
        file and it is not an example: the path the call names is not trusted.
        """
        self._discard(self.holds.release(session_of(request)))
        # The conversation and the quality note go with the picture (kiosk privacy).
        return (None, "", None, "", "", "", "", [], "", "")

    def browser_preview(self, image: str | None):
        """A HEIC upload (an iPhone's own format) swapped for a picture any browser can draw.

        Only Safari draws HEIC; elsewhere the preview is a broken icon. The swap is the
        intake's own RGB picture, which Gradio stores losslessly (the Image's format is PNG),
        so the models see the same pixels either way.
        """
        if not isinstance(image, str) or Path(image).suffix.lower() not in HEIF_SUFFIXES:
            return gr.skip()
        try:
            picture = open_picture(image)
        except VQAError:
            return gr.skip()  # the answer columns explain it when the question is asked
        self._discard_later(image)
        return picture

    def _discard_later(self, image: str | None) -> None:
        if self.cache_dir is None or not image:
            return
        timer = threading.Timer(self.grace_seconds, self._discard, args=(image,))
        timer.daemon = True
        timer.start()

    def _discard(self, image: str | None) -> None:
        """Kiosk mode: delete a picture no session shows now rather than at cache expiry."""
        if self.cache_dir is None or not image or not self.holds.deletable(image):
            return
        path = Path(image).resolve()
        if path.is_relative_to(self.cache_dir):
            path.unlink(missing_ok=True)
