"""The About panel: which checkpoints answer, on which device and precision, and why."""

from __future__ import annotations

import re

from vqa_core import Services
from vqa_core.translation import Translator

__all__ = ["about_markdown"]

# An absolute path on the server (a model folder, a cache): shown by its last part only.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/`'\"()]+/)*([^\s/`'\"()]+)/?")


def _without_server_paths(text: str) -> str:
    """Every visitor reads the About panel: it names a model folder, never where it lies."""
    return _SERVER_PATH.sub(lambda found: found.group(1), text)


def about_markdown(services: Services, translator: Translator | None = None) -> str:
    """Which checkpoints, on which device and precision, and why."""
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
            rows.append(
                f"- **{title}**: `{source}` on {where}" + (f" ({choice.reason})" if choice else "")
            )
        else:
            rows.append(f"- **{title}**: not loaded: {error or 'unknown reason'}")
    if translator is not None:
        rows.append(
            f"- **Translation**: `{translator.name}`: questions in Arabic are put into English "
            "for both models, and their answers back into Arabic next to the English ones"
        )
    else:
        rows.append(
            "- **Translation**: off: both models read English only, so a question in another "
            "language gets a notice instead of an answer (`--translation` or "
            "`VQA_TRANSLATION` switches it on; see docs/languages.md)"
        )
    if services.blip2_choice is not None and services.blip2_choice.is_demo:
        follow_up = (
            "the page lists the last few questions about the same picture, but both models "
            "answer each question alone: ViLT is a classifier over a fixed list of answers, "
            "and the demo BLIP-2, trained on single questions, answered fewer follow-ups "
            "right with the earlier turns in its prompt than without them"
        )
    else:
        follow_up = (
            "BLIP-2 reads the last few questions about the same picture and its own answers "
            'to them, so "and what colour is it?" works; ViLT, a classifier over a fixed '
            "list of answers, answers each question alone"
        )
    rows.append(
        f"- **Follow-up questions**: {follow_up}. A new picture or *Start over* begins a new "
        "conversation."
    )
    rows.append(
        "- **Photo check**: each picture is checked for being very dark, washed out, almost "
        "blank, blurred or very small, and a sentence above the answers says so: both models "
        "answer such photos as confidently as good ones (docs/accessibility.md)."
    )
    text = _without_server_paths("\n".join(rows))
    if services.uses_demo:
        text += (
            "\n\nThese are **small demo models trained here on simple shapes** (the easy-VQA "
            "dataset: circles, rectangles and triangles in a few colours). They answer questions "
            "about such pictures only. To use the real checkpoints, start the app with "
            "`--vilt real --blip2 real` (or set `VQA_VILT_MODEL` / `VQA_BLIP2_MODEL` to a hub id "
            "or a local folder) on a machine that can reach the model hub or has them cached."
        )
    return text
