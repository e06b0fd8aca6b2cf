"""The About panel: which checkpoints answer, on which device and precision, and why."""

from __future__ import annotations

import re

from vqa_core import Services
from vqa_core.ocr import tesseract_available
from vqa_core.translation import Translator

from .messages import message

__all__ = ["about_markdown"]

# An absolute path on the server (a model folder, a cache): shown by its last part only.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/`'\"()]+/)*([^\s/`'\"()]+)/?")


def _without_server_paths(text: str) -> str:
    """Every visitor reads the About panel: it names a model folder, never where it lies."""
    return _SERVER_PATH.sub(lambda found: found.group(1), text)


def about_markdown(
    services: Services,
    translator: Translator | None = None,
    lang: str = "en",
    *,
    reads_text: bool | None = None,
) -> str:
    """Which checkpoints, on which device and precision, and why, in ``lang``.

    The sentences are the page's (ui/text); what vqa_core says of a plan (its reason, a
    load error) is quoted as it is. ``reads_text`` defaults to whether Tesseract is here.
    """
    rows = []
    for title, answerer, choice, error in (
        ("ViLT", services.vilt, services.vilt_choice, services.vilt_error),
        ("BLIP-2", services.blip2, services.blip2_choice, services.blip2_error),
    ):
        source = choice.source if choice else (answerer.name if answerer else "—")
        if answerer is not None:
            where = answerer.placement.describe()
            # vqa_core.fit's choice and its reason (what it needs, what the machine has).
            plan = getattr(services, "vilt_plan" if title == "ViLT" else "blip2_plan", None)
            if plan is not None:
                where = f"{plan.describe()}: {plan.reason}"
            row = message("about_loaded", lang, model=title, source=source, where=where)
            rows.append(row + (f" ({choice.reason})" if choice else ""))
        else:
            reason = error or message("about_unknown_reason", lang)
            rows.append(message("about_not_loaded", lang, model=title, reason=reason))
    if translator is not None:
        rows.append(message("about_translation_on", lang, name=translator.name))
    else:
        rows.append(message("about_translation_off", lang))
    demo_blip2 = services.blip2_choice is not None and services.blip2_choice.is_demo
    rows.append(message("about_follow_up_demo" if demo_blip2 else "about_follow_up", lang))
    rows.append(message("about_photo_check", lang))
    if reads_text is None:
        reads_text = tesseract_available()
    rows.append(message("about_reading_on" if reads_text else "about_reading_off", lang))
    text = _without_server_paths("\n".join(rows))
    if services.uses_demo:
        text += "\n\n" + message("about_demo", lang)
    return text
