"""Describe: BLIP-2's caption of a picture, on the button, on arrival, or through /describe."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from vqa_core import Services, VQAError
from vqa_core.blip2 import DEFAULT_CAPTION_TOKENS

from .answering import can_stream
from .conversation import MAX_CONVERSATION_ENTRIES, render_conversation
from .events import item_status, language_of, per_item, unavailable, warn
from .intake import open_picture
from .messages import error_sentence, markdown_text, message
from .photo_check import PhotoCheck

__all__ = ["Describing"]


class Describing:
    """BLIP-2's descriptions, with the photo check of the picture described."""

    def __init__(self, services: Services, photos: PhotoCheck) -> None:
        self.services = services
        self.photos = photos

    # Describe --------------------------------------------------------------------------
    def describe(
        self, images: list, max_new_tokens: list[float], beams: list[float]
    ) -> tuple[list, list, list]:
        """/describe: BLIP-2's caption of each picture, its status and the quality cue."""
        captions, statuses = self._describe(images, max_new_tokens, beams)
        return captions, statuses, [self.photos.payload(image) for image in images]

    def _describe(
        self, images, max_new_tokens, beams, lang: str = "en"
    ) -> tuple[list[str], list[str]]:
        count = len(images)
        blip2 = self.services.blip2
        if blip2 is None:
            return [""] * count, [unavailable(self.services, "blip2", lang)] * count
        captions, statuses = [""] * count, [""] * count
        ready = []
        for i, image in enumerate(images):
            if image is None:
                statuses[i] = warn(message("no_image", lang))
                continue
            try:
                ready.append((i, open_picture(image)))
            except VQAError as err:
                statuses[i] = warn(error_sentence(err, lang))
        if not ready:
            return captions, statuses
        if not hasattr(blip2, "describe_batch"):
            reason = "this model server does not offer descriptions"
            for i, _ in ready:
                statuses[i] = warn(message("failed", lang, model="BLIP-2", reason=reason))
            return captions, statuses
        tokens = max(int(max_new_tokens[i] or DEFAULT_CAPTION_TOKENS) for i, _ in ready)
        num_beams = max(int(beams[i] or 1) for i, _ in ready)
        outcomes = per_item(
            lambda: blip2.describe_batch(
                [picture for _, picture in ready], max_new_tokens=tokens, num_beams=num_beams
            ),
            len(ready),
        )
        for (i, _), result in zip(ready, outcomes):
            statuses[i] = item_status(result, "BLIP-2", lang)
            if not isinstance(result, BaseException):
                captions[i] = result.answer
        return captions, statuses

    def describe_page(self, image, conversation: list | None, request: gr.Request) -> tuple:
        """The Describe button (and a picture's arrival in kiosk and accessible modes).

        BLIP-2's caption goes in its column and, worded, in the announced line (read aloud
        after the photo-quality sentence); the description joins the conversation list.
        ViLT's column is left alone: a question asked meanwhile keeps its answer there.
        """
        lang = language_of(request)
        (caption,), (status,) = self._describe([image], [DEFAULT_CAPTION_TOKENS], [1], lang)
        return self._page_outputs(image, conversation, caption, status, lang)

    def _page_outputs(
        self, image, conversation: list | None, caption: str, status: str, lang: str
    ) -> tuple:
        """The page's six outputs for a finished description (or its failure)."""
        conversation = list(conversation or [])
        if caption:
            line = message("described", lang, caption=markdown_text(caption.rstrip(". ")))
            conversation.append({"kind": "describe", "caption": caption})
        elif status.startswith("⚠"):
            line = status.removeprefix("⚠️ ")
        else:
            # The demo BLIP-2 learned to answer questions about shapes, never to describe.
            choice = self.services.blip2_choice
            demo = choice is not None and choice.is_demo
            line = message("described_demo" if demo else "described_nothing", lang)
        conversation = conversation[-MAX_CONVERSATION_ENTRIES:]
        quality = self.photos.sentence_for(image, lang)
        return (
            caption,
            status,
            line,
            quality,
            conversation,
            render_conversation(conversation, lang),
        )

    def describe_arrival(self, image, conversation: list | None, request: gr.Request) -> tuple:
        """Kiosk and accessible modes: describe a picture as soon as it arrives."""
        if image is None:
            return (gr.skip(),) * 6
        return self.describe_page(image, conversation, request)

    # The page's Describe, its words as they come ---------------------------------------------
    def stream_page(self, image, conversation: list | None, request: gr.Request) -> Iterator[tuple]:
        """:meth:`describe_page` with the caption shown as it is generated.

        The updates before the last change BLIP-2's column only; the last one is what
        :meth:`describe_page` gives, so the announced line, the photo-quality sentence and
        the conversation each change once. A BLIP-2 that cannot stream describes whole.
        """
        blip2 = self.services.blip2
        if image is None or not can_stream(blip2):
            yield self.describe_page(image, conversation, request)
            return
        lang = language_of(request)
        try:
            picture = open_picture(image)
        except VQAError:
            yield self.describe_page(image, conversation, request)  # words the refusal
            return
        try:
            stream = blip2.stream_description(picture, max_new_tokens=DEFAULT_CAPTION_TOKENS)
            for text in stream:
                yield (text, *(gr.skip(),) * 5)
            result = stream.result
        except Exception as err:
            # The words so far go: a failed description leaves its sentence alone.
            caption, status = "", item_status(err, "BLIP-2", lang)
        else:
            caption, status = result.answer, item_status(result, "BLIP-2", lang)
        yield self._page_outputs(image, conversation, caption, status, lang)

    def stream_arrival(
        self, image, conversation: list | None, request: gr.Request
    ) -> Iterator[tuple]:
        """:meth:`describe_arrival`, the caption shown as it is generated."""
        if image is None:
            yield (gr.skip(),) * 6
            return
        yield from self.stream_page(image, conversation, request)
