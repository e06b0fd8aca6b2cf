"""What the page's events call, one unit per feature, built once over the loaded services.

- ``answering`` (:mod:`ui.answering`): both models, batched, each item on its own;
- ``lines`` (:mod:`ui.agreement_line`): the agreement line, translated answers;
- ``describing`` (:mod:`ui.describing`): BLIP-2's description of a picture;
- ``conversation`` (:mod:`ui.conversation`): the questions about the current picture;
- ``photos`` (:mod:`ui.photo_check`): whether a photo is too poor to trust the answers;
- ``pictures`` (:mod:`ui.picture_session`): a picture's arrival, HEIC previews, kiosk clean-up;
- ``reading`` (:mod:`ui.reading`): the text in the picture, and the framing cue.
"""

from __future__ import annotations

import gradio as gr

from vqa_core import Services
from vqa_core.translation import Translator

from .about import about_markdown
from .agreement_line import AgreementLine
from .answering import DEFAULT_TOP_K, Answering
from .conversation import MAX_CONVERSATION_ENTRIES, Conversation
from .describing import Describing
from .events import language_of
from .intake import PictureHolds
from .photo_check import PhotoCheck
from .picture_session import HEIC_ORIGINAL_GRACE_SECONDS, HEIF_SUFFIXES, PictureSession
from .reading import Reading

__all__ = ["DEFAULT_TOP_K", "HEIF_SUFFIXES", "MAX_CONVERSATION_ENTRIES", "VQAHandlers"]


class VQAHandlers:
    """The page's handlers over one set of loaded services (and an optional translator).

    ``cache_dir`` is set in kiosk mode: a picture there that no session shows any more is
    deleted. ``holds`` records which session shows which picture (the page passes one that
    knows the app's own example files).
    """

    def __init__(
        self,
        services: Services,
        *,
        cache_dir: str | None = None,
        original_grace_seconds: float = HEIC_ORIGINAL_GRACE_SECONDS,
        translator: Translator | None = None,
        holds: PictureHolds | None = None,
    ) -> None:
        self.services = services
        self.translator = translator
        self.photos = PhotoCheck(services)
        self.conversation = Conversation(services)
        self.lines = AgreementLine(services, translator)
        self.answering = Answering(
            services,
            translator=translator,
            lines=self.lines,
            photos=self.photos,
            conversation=self.conversation,
        )
        self.describing = Describing(services, self.photos)
        self.reading = Reading()
        self.pictures = PictureSession(
            self.photos, holds=holds, cache_dir=cache_dir, grace_seconds=original_grace_seconds
        )

    def page_language(self, request: gr.Request) -> tuple[str, str]:
        """The visitor's page language, once per page load, and the About panel in it."""
        lang = language_of(request)
        return lang, about_markdown(self.services, self.translator, lang)
