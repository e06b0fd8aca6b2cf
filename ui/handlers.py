"""What the page's events call: batched per model, each item checked on its own.

One bad upload does not fail its neighbours in a batch, and one model's failure never blanks
the other's column: each column gets its answer or one sentence saying why not.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import Services, VQAError, clean_question, load_image

from .messages import format_timing, label_value, message, pick_language, summary_line

__all__ = ["DEFAULT_TOP_K", "HEIF_SUFFIXES", "VQAHandlers"]

logger = logging.getLogger("vqa_app")

DEFAULT_TOP_K = 5
# Suffixes of HEIF pictures (iPhones save .heic), which most browsers cannot draw.
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
# In kiosk mode a swapped-out HEIC original (which carries the phone's EXIF, location
# included) is deleted this long after the swap, not at once: an Ask pressed while the swap
# was on its way still names the original and must find it.
HEIC_ORIGINAL_GRACE_SECONDS = 30.0


def _prepare(images: Sequence[Any], questions: Sequence[str]) -> tuple[list, list[str | None]]:
    """Per item: (picture, question) or an error message, never an exception."""
    prepared, errors = [], []
    for image, question in zip(images, questions):
        if image is None:
            prepared.append(None)
            errors.append(message("no_image"))
            continue
        try:
            prepared.append((load_image(image), clean_question(question)))
            errors.append(None)
        except VQAError as err:
            prepared.append(None)
            errors.append(str(err))
    return prepared, errors


def _reason(err: Exception) -> str:
    """A person's message for a model failure; anything unforeseen is logged, not shown."""
    if isinstance(err, VQAError):
        return str(err)
    logger.error("Unexpected model failure", exc_info=err)
    return "an unexpected error; the server log has the details. Please try again."


def _warn(text: str) -> str:
    return f"⚠️ {text}"


class VQAHandlers:
    """The functions the events call, bound to one set of loaded services."""

    def __init__(
        self,
        services: Services,
        *,
        cache_dir: str | None = None,
        original_grace_seconds: float = HEIC_ORIGINAL_GRACE_SECONDS,
    ):
        self.services = services
        # Set in kiosk mode: uploads under this folder are deleted on reset.
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self.original_grace_seconds = original_grace_seconds

    # ViLT ------------------------------------------------------------------------------
    def answer_vilt(
        self, images: list, questions: list[str], top_ks: list[float]
    ) -> tuple[list, list]:
        return self._vilt(images, questions, top_ks)

    def _vilt(self, images, questions, top_ks, prepared=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.vilt is None:
            reason = services.vilt_error or "it was not loaded"
            return [None] * count, [
                _warn(message("unavailable", model="ViLT", reason=reason))
            ] * count
        prepared, errors = prepared or _prepare(images, questions)
        labels: list = [None] * count
        statuses = [_warn(e) if e else "" for e in errors]
        ready = [i for i, item in enumerate(prepared) if item is not None]
        if ready:
            top_k = max(int(top_ks[i] or DEFAULT_TOP_K) for i in ready)
            try:
                results = services.vilt.answer_batch(
                    [prepared[i][0] for i in ready], [prepared[i][1] for i in ready], top_k=top_k
                )
            except Exception as err:
                for i in ready:
                    statuses[i] = _warn(message("failed", model="ViLT", reason=_reason(err)))
            else:
                for i, result in zip(ready, results):
                    labels[i] = label_value(result.answers[: int(top_ks[i] or DEFAULT_TOP_K)])
                    statuses[i] = format_timing(
                        _short_name(result.model), result.seconds, result.batch_size
                    )
        return labels, statuses

    # BLIP-2 ----------------------------------------------------------------------------
    def answer_blip2(
        self,
        images: list,
        questions: list[str],
        max_new_tokens: list[float],
        beams: list[float],
    ) -> tuple[list, list]:
        return self._blip2(images, questions, max_new_tokens, beams)

    def _blip2(self, images, questions, max_new_tokens, beams, prepared=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.blip2 is None:
            reason = services.blip2_error or "it was not loaded"
            return [""] * count, [
                _warn(message("unavailable", model="BLIP-2", reason=reason))
            ] * count
        prepared, errors = prepared or _prepare(images, questions)
        answers = [""] * count
        statuses = [_warn(e) if e else "" for e in errors]
        # Items with the same decoding settings share one generate() call.
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, item in enumerate(prepared):
            if item is not None:
                groups[(int(max_new_tokens[i] or 10), int(beams[i] or 1))].append(i)
        for (tokens, num_beams), members in groups.items():
            try:
                results = services.blip2.answer_batch(
                    [prepared[i][0] for i in members],
                    [prepared[i][1] for i in members],
                    max_new_tokens=tokens,
                    num_beams=num_beams,
                )
            except Exception as err:
                for i in members:
                    statuses[i] = _warn(message("failed", model="BLIP-2", reason=_reason(err)))
                continue
            for i, result in zip(members, results):
                answers[i] = result.answer
                statuses[i] = format_timing(
                    _short_name(result.model), result.seconds, result.batch_size
                )
        return answers, statuses

    # Both, for API users ---------------------------------------------------------------
    def answer_both(
        self,
        images: list,
        questions: list[str],
        top_ks: list[float],
        max_new_tokens: list[float],
        beams: list[float],
    ) -> tuple[list, list, list, list, list]:
        # One intake for both models: a phone photo is decoded once, not twice.
        prepared = _prepare(images, questions)
        labels, vilt_statuses = self._vilt(images, questions, top_ks, prepared)
        answers, blip2_statuses = self._blip2(images, questions, max_new_tokens, beams, prepared)
        lines = [
            self._line(
                label,
                answer,
                vilt_ok=label is not None,
                blip2_ok=bool(status) and not status.startswith("⚠"),
            )
            for label, answer, status in zip(labels, answers, blip2_statuses)
        ]
        return labels, vilt_statuses, answers, blip2_statuses, lines

    @staticmethod
    def _line(
        label: dict | None, answer: str | None, *, vilt_ok: bool, blip2_ok: bool, lang: str = "en"
    ) -> str:
        vilt_answers = list(label.items()) if (vilt_ok and label) else None
        return summary_line(vilt_answers, answer if blip2_ok else None, lang)

    def agreement(
        self, label: dict | None, answer: str | None, blip2_status: str | None, request: gr.Request
    ) -> str:
        lang = pick_language(request.headers.get("accept-language") if request else None)
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        return self._line(label, answer, vilt_ok=bool(label), blip2_ok=blip2_ok, lang=lang)

    def reset(self, image: str | None):
        """Back to the start screen; in kiosk mode this session's upload is deleted too."""
        self._forget(image)
        return (None, "", None, "", "", "", "")

    def browser_preview(self, image: str | None):
        """A HEIC upload (an iPhone's own format) swapped for a picture any browser can draw.

        Only Safari draws HEIC; elsewhere the preview is a broken icon. The swap is the
        intake's own RGB picture, which Gradio stores losslessly (the Image's format is PNG),
        so the models see the same pixels either way.
        """
        if not image or Path(image).suffix.lower() not in HEIF_SUFFIXES:
            return gr.skip()
        try:
            picture = load_image(image)
        except VQAError:
            return gr.skip()  # the answer columns explain it when the question is asked
        if self.cache_dir is not None:
            forget = threading.Timer(self.original_grace_seconds, self._forget, args=(image,))
            forget.daemon = True
            forget.start()
        return picture

    def _forget(self, image: str | None) -> None:
        """In kiosk mode, delete an upload of this session now rather than at cache expiry."""
        if self.cache_dir is not None and image:
            path = Path(image).resolve()
            if path.is_relative_to(self.cache_dir):
                path.unlink(missing_ok=True)


def _short_name(source: str) -> str:
    path = Path(str(source))
    return path.name if path.name else str(source)
