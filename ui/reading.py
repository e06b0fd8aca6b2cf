"""Read the text in the picture: the button, /read_text, the offer on a picture's arrival in
kiosk and accessible modes, and the framing cue ("move the camera to the right").

The reading itself is :mod:`vqa_core.ocr` (Tesseract around a pre-processing pipeline); this
module words its result in the page's language and keeps the last reading of each session's
picture, so the button answers at once about a picture read when it arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import gradio as gr

from vqa_core import VQAError
from vqa_core.ocr import TextReading, read_text

from .events import language_of
from .intake import RefusedImage, open_picture
from .messages import error_sentence, markdown_text, message

__all__ = ["Reading", "framing_sentence", "reading_markdown", "speech_language"]

# Edges in the order a sentence names them; opposite edges both cut mean "too close".
EDGES = ("left", "right", "top", "bottom")
OPPOSITE = {("left", "right"), ("top", "bottom")}


def framing_sentence(cut_edges: tuple[str, ...] | list[str], lang: str = "en") -> str:
    """Which way to move the camera so the text is all in the picture; empty when it is."""
    cut = [edge for edge in EDGES if edge in set(cut_edges)]
    if not cut:
        return ""
    if any(pair[0] in cut and pair[1] in cut for pair in OPPOSITE):
        return message("framing_closer", lang)
    return " ".join(message(f"framing_{edge}", lang) for edge in cut)


def speech_language(reading: TextReading, page_lang: str) -> str:
    """The voice to read the text in: Arabic text in an Arabic voice, English in an English
    one, whatever the page's language; both scripts in the page's."""
    return {"arabic": "ar", "latin": "en"}.get(reading.script or "", page_lang)


def reading_markdown(reading: TextReading, lang: str, *, offer: bool = False) -> str:
    """The text as the page shows it: a sentence, then each line as a paragraph of its own
    (page.css lets each paragraph take the direction of its own script), escaped."""
    if reading.status != "read":
        return message(f"text_{reading.status}", lang)
    lines = [markdown_text(line.text) for line in reading.lines if line.text.strip()]
    if not lines:
        return message("text_no_text", lang)
    heading = message("text_offer" if offer else f"text_found_{reading.script or 'latin'}", lang)
    return "\n\n".join([heading, *lines])


class Reading:
    """The page's and the API's text reading, over ``reader`` (``vqa_core.ocr.read_text``)."""

    def __init__(
        self, reader: Callable[..., TextReading] = read_text, *, offer_on_arrival: bool = False
    ) -> None:
        self.reader = reader
        # Kiosk and accessible modes: a picture with text offers it as it arrives.
        self.offer_on_arrival = offer_on_arrival

    def read(self, image: Any, lang: str = "en") -> TextReading | str:
        """The reading of ``image``, or the sentence (in ``lang``) why it could not be opened."""
        if image is None:
            return message("no_image", lang)
        try:
            picture = open_picture(image)
        except VQAError as err:
            return error_sentence(err, lang)
        return self.reader(picture)

    # /read_text ------------------------------------------------------------------------------
    def read_api(self, image: Any, request: gr.Request) -> dict:
        """/read_text: the lines in reading order with their boxes, the script, the framing
        cue, and the sentence the page would show, in the caller's language."""
        lang = language_of(request)
        reading = self.read(image, lang)
        if isinstance(reading, str):
            return {"status": "unreadable_picture", "sentence": reading}
        payload = asdict(reading)
        payload["text"] = reading.text
        payload["script"] = reading.script
        payload["sentence"] = reading_markdown(reading, lang)
        payload["framing"] = framing_sentence(reading.cut_edges, lang)
        return payload

    # The page ----------------------------------------------------------------------------------
    def read_page(self, image: Any, remembered: dict | None, request: gr.Request) -> tuple:
        """The Read-the-text button: the text shown (announced once by the page script), the
        framing cue, the voice to speak the text in, and the reading kept for this picture."""
        return self._show(image, remembered, language_of(request), offer=False)

    def read_arrival(self, image: Any, remembered: dict | None, request: gr.Request) -> tuple:
        """A picture arrived: the framing cue under the photo check; in kiosk and accessible
        modes (``offer_on_arrival``) a picture with text also offers it at once."""
        if image is None or isinstance(image, RefusedImage):
            return "", "", "", None
        text, framing, voice, kept = self._show(
            image, remembered, language_of(request), offer=self.offer_on_arrival
        )
        if not self.offer_on_arrival or kept is None or kept["status"] != "read":
            # Nothing offered: nothing to speak (an empty voice tells the page so).
            text, voice = "", ""
        return text, framing, voice, kept

    def _show(self, image: Any, remembered: dict | None, lang: str, *, offer: bool) -> tuple:
        if image is None:
            return message("no_image", lang), "", "", remembered
        if remembered and remembered.get("image") == image:
            reading = remembered["reading"]
        else:
            reading = self.read(image, lang)
            if isinstance(reading, str):
                return reading, "", "", None
        kept = {"image": image, "status": reading.status, "reading": reading}
        return (
            reading_markdown(reading, lang, offer=offer),
            framing_sentence(reading.cut_edges, lang),
            speech_language(reading, lang),
            kept,
        )
