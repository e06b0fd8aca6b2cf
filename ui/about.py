"""The About panel: which checkpoints answer, on which device and precision, and why."""

from __future__ import annotations

import re

from vqa_core import Services
from vqa_core.fit import LoadPlan
from vqa_core.ocr import tesseract_available
from vqa_core.translation import Translator

from .events import missing_reason
from .messages import message, reasons_in

__all__ = ["about_markdown"]

# An absolute path on the server (a model folder, a cache): shown by its last part only.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/`'\"()]+/)*([^\s/`'\"()]+)/?")


def _without_server_paths(text: str) -> str:
    """Every visitor reads the About panel: it names a model folder, never where it lies."""
    return _SERVER_PATH.sub(lambda found: found.group(1), text)


def _placement_words(plan: LoadPlan, lang: str) -> str:
    """``cpu / int8 (bfloat16 activations)`` in ``lang``, as :meth:`LoadPlan.describe` says it."""
    placement = plan.placement
    if plan.quantization in ("int8", "int4", "8bit", "4bit"):
        words = message(
            "about_where_quantized",
            lang,
            device=placement.device.type,
            quantization=plan.quantization,
            dtype=placement.dtype_name,
        )
    else:
        words = message(
            "about_where", lang, device=placement.device.type, dtype=placement.dtype_name
        )
    return words + (f", device_map={plan.device_map}" if plan.device_map else "")


def about_markdown(
    services: Services,
    translator: Translator | None = None,
    lang: str = "en",
    *,
    reads_text: bool | None = None,
) -> str:
    """Which checkpoints, on which device and precision, and why, in ``lang``.

    The sentences are the page's (ui/text); what vqa_core says of a plan, a model choice or
    a load error is reworded from its sentences' codes where ``lang`` has words for them
    (:func:`ui.messages.reasons_in`), and quoted in English where it has none.
    ``reads_text`` defaults to whether Tesseract is here.
    """
    rows = []
    for kind, title, answerer, choice in (
        ("vilt", "ViLT", services.vilt, services.vilt_choice),
        ("blip2", "BLIP-2", services.blip2, services.blip2_choice),
    ):
        source = choice.source if choice else (answerer.name if answerer else "—")
        if answerer is not None:
            # vqa_core.fit's choice and its reason (what it needs, what the machine has).
            plan = getattr(services, f"{kind}_plan", None)
            if plan is not None and plan.placement is not None:
                reason = reasons_in(plan.reason, plan.reasons, lang)
                where = f"{_placement_words(plan, lang)}: {reason}"
            else:
                where = answerer.placement.describe()
            row = message("about_loaded", lang, model=title, source=source, where=where)
            if choice:
                said = (choice.words,) if choice.words else ()
                row += f" ({reasons_in(choice.reason, said, lang)})"
            rows.append(row)
        else:
            if getattr(services, f"{kind}_error", None):
                reason = missing_reason(services, kind, lang)
            else:
                reason = message("about_unknown_reason", lang)
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
