"""What every event handler of the page shares: whose request it is, and how a column says
that something went wrong."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import PartialBatchError, VQAError
from vqa_core.services import MODEL_LABELS

from .messages import (
    error_sentence,
    format_timing,
    markdown_text,
    message,
    pick_language,
    reasons_in,
)

__all__ = [
    "best_label",
    "failure_reason",
    "item_status",
    "label_answers",
    "language_of",
    "per_item",
    "session_of",
    "short_name",
    "takes",
    "warn",
]

logger = logging.getLogger("vqa_app")


def failure_reason(err: Exception, lang: str = "en") -> str:
    """A person's message for a model failure, in ``lang`` where the page has words for it;
    anything unforeseen is logged, not shown."""
    if isinstance(err, VQAError):
        # A model server's own words may be in it; the statuses are Markdown.
        return markdown_text(error_sentence(err, lang))
    logger.error("Unexpected model failure", exc_info=err)
    return message("failure_unexpected", lang)


def missing_reason(services: Any, kind: str, lang: str = "en") -> str:
    """Why model ``kind`` (``vilt``, ``blip2``) is not serving, in ``lang``."""
    english = getattr(services, f"{kind}_error", None)
    if not english:
        return message("not_loaded", lang)
    return reasons_in(english, getattr(services, f"{kind}_error_words", ()), lang)


def unavailable(services: Any, kind: str, lang: str = "en") -> str:
    """The column's warning when model ``kind`` is not serving, with why, in ``lang``."""
    reason = missing_reason(services, kind, lang)
    return warn(message("unavailable", lang, model=MODEL_LABELS[kind], reason=reason))


def warn(text: str) -> str:
    return f"⚠️ {text}"


def per_item(call, count: int) -> list:
    """Per item of one batched model call: its result or its error, never a neighbour's.

    A model server answers each item in its own request and reports which ones failed
    (:class:`PartialBatchError`); a local model fails or answers the batch as a whole.
    """
    try:
        return list(call())
    except PartialBatchError as err:
        return err.outcomes
    except Exception as err:
        return [err] * count


def short_name(source: str) -> str:
    path = Path(str(source))
    return path.name if path.name else str(source)


def session_of(request: gr.Request | None) -> str:
    """The browser tab (or API client) an event came from."""
    return str(getattr(request, "session_hash", None) or "")


def language_of(request: gr.Request | None) -> str:
    return pick_language(request.headers.get("accept-language") if request else None)


def takes(method, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def label_answers(label: Any) -> list[tuple[str, float]] | None:
    """ViLT's answers, best first, from any form a ``gr.Label`` value takes on its way back
    (``{answer: score}`` from the page, ``{"label", "confidences"}`` or a bare answer from an
    API caller); None when there are none."""
    if isinstance(label, str):
        return [(label, 1.0)] if label.strip() else None
    if not isinstance(label, dict) or not label:
        return None
    if "confidences" in label or "label" in label:
        confidences = label.get("confidences") or []
        answers = [
            (str(c.get("label")), float(c.get("confidence") or 0.0))
            for c in confidences
            if isinstance(c, dict) and c.get("label") is not None
        ]
        if not answers and isinstance(label.get("label"), str):
            answers = [(label["label"], 1.0)]
    else:
        answers = [
            (str(answer), float(score))
            for answer, score in label.items()
            if isinstance(score, (int, float))
        ]
    answers.sort(key=lambda pair: -pair[1])
    return answers or None


def best_label(label: Any) -> str:
    """ViLT's best answer from a ``gr.Label`` value (as the page hands it back) or a dict."""
    answers = label_answers(label)
    return answers[0][0] if answers else ""


def item_status(outcome: Any, model: str, lang: str = "en") -> str:
    """A column's status for one item of a batch: its timing line, or why it failed."""
    if isinstance(outcome, BaseException):
        return warn(message("failed", lang, model=model, reason=failure_reason(outcome, lang)))
    return format_timing(short_name(outcome.model), outcome.seconds, outcome.batch_size, lang)
