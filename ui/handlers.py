"""What the page's events call: batched per model, each item checked on its own.

One bad upload does not fail its neighbours in a batch, and one model's failure never blanks
the other's column: each column gets its answer or one sentence saying why not.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import (
    PartialBatchError,
    Services,
    VQAError,
    clean_history,
    clean_question,
)
from vqa_core.blip2 import DEFAULT_CAPTION_TOKENS
from vqa_core.quality import DEFAULT_MIN_SIDE, DEMO_MIN_SIDE, PhotoQuality, QualityThresholds
from vqa_core.translation import QuestionRoute, Translator, route_questions

from .intake import PictureHolds, inspect_picture, open_picture
from .messages import (
    format_timing,
    label_value,
    markdown_text,
    message,
    pick_language,
    summary_line,
)

__all__ = ["DEFAULT_TOP_K", "HEIF_SUFFIXES", "MAX_CONVERSATION_ENTRIES", "VQAHandlers"]

logger = logging.getLogger("vqa_app")

DEFAULT_TOP_K = 5
# Suffixes of HEIF pictures (iPhones save .heic), which most browsers cannot draw.
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
# In kiosk mode a swapped-out HEIC original (which carries the phone's EXIF, location
# included) is deleted this long after the swap, not at once: an Ask pressed while the swap
# was on its way still names the original and must find it.
HEIC_ORIGINAL_GRACE_SECONDS = 30.0
# The conversation shown about one picture: the last few exchanges, not a transcript.
MAX_CONVERSATION_ENTRIES = 6


def _prepare(images: Sequence[Any], questions: Sequence[str]) -> tuple[list, list[str | None]]:
    """Per item: (picture, question) or an error message, never an exception."""
    prepared, errors = [], []
    for image, question in zip(images, questions):
        if image is None:
            prepared.append(None)
            errors.append(message("no_image"))
            continue
        try:
            prepared.append((open_picture(image), clean_question(question)))
            errors.append(None)
        except VQAError as err:
            prepared.append(None)
            errors.append(str(err))
    return prepared, errors


def _route(
    prepared: tuple[list, list[str | None]],
    translator: Translator | None,
    known: Sequence[Any] | None = None,
) -> tuple[tuple[list, list[str | None]], list[QuestionRoute | None]]:
    """Put each prepared question the models cannot read into English, or set it aside.

    ``known`` holds, per item, the route an earlier step of the same ask already took (the
    page's ViLT step translates; its BLIP-2 step reuses that), used when the question is the
    same. A question the models cannot be asked keeps no picture, so no model answers it.
    """
    items, errors = list(prepared[0]), list(prepared[1])
    routes: list[QuestionRoute | None] = [None] * len(items)
    pending = []
    for i, item in enumerate(items):
        if item is None:
            continue
        earlier = known[i] if known is not None and i < len(known) else None
        if isinstance(earlier, dict) and earlier.get("original") == item[1]:
            routes[i] = QuestionRoute(**earlier)
        else:
            pending.append(i)
    if pending:
        questions = [items[i][1] for i in pending]
        try:
            found = route_questions(questions, translator)
        except Exception as err:  # a broken translator must not fail the models' columns
            logger.error("Routing questions failed", exc_info=err)
            # As if no pair were loaded: English passes, the rest get the plain notice.
            found = route_questions(questions, None)
        for i, route in zip(pending, found):
            routes[i] = route
    for i, route in enumerate(routes):
        if route is None:
            continue
        if route.answerable:
            items[i] = (items[i][0], route.english)
        else:
            items[i] = None
            errors[i] = message(f"{route.status}_status")
    return (items, errors), routes


def _route_state(route: QuestionRoute | None) -> dict | None:
    return asdict(route) if route is not None else None


def _reason(err: Exception) -> str:
    """A person's message for a model failure; anything unforeseen is logged, not shown."""
    if isinstance(err, VQAError):
        # A model server's own words may be in it; the statuses are Markdown.
        return markdown_text(str(err))
    logger.error("Unexpected model failure", exc_info=err)
    return "an unexpected error; the server log has the details. Please try again."


def _warn(text: str) -> str:
    return f"⚠️ {text}"


def _outcomes(call, count: int) -> list:
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


class VQAHandlers:
    """The functions the events call, bound to one set of loaded services."""

    def __init__(
        self,
        services: Services,
        *,
        cache_dir: str | None = None,
        original_grace_seconds: float = HEIC_ORIGINAL_GRACE_SECONDS,
        translator: Translator | None = None,
        holds: PictureHolds | None = None,
    ):
        self.services = services
        # Questions the models cannot read go through it (None: they get a notice instead).
        self.translator = translator
        # Set in kiosk mode: a picture under this folder that no session shows any more (and
        # that is not one of the app's examples) is deleted as soon as it is left.
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self.holds = holds if holds is not None else PictureHolds()
        self.original_grace_seconds = original_grace_seconds

    # ViLT ------------------------------------------------------------------------------
    def answer_vilt(
        self, images: list, questions: list[str], top_ks: list[float]
    ) -> tuple[list, list]:
        labels, statuses, _ = self.ask_vilt(images, questions, top_ks)
        return labels, statuses

    def ask_vilt(
        self, images: list, questions: list[str], top_ks: list[float]
    ) -> tuple[list, list, list]:
        """The page's ViLT step: also hands on how each question was routed (translated)."""
        prepared, routes = _route(_prepare(images, questions), self.translator)
        labels, statuses = self._vilt(images, questions, top_ks, prepared)
        return labels, statuses, [_route_state(route) for route in routes]

    def _vilt(self, images, questions, top_ks, prepared=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.vilt is None:
            reason = services.vilt_error or "it was not loaded"
            return [None] * count, [
                _warn(message("unavailable", model="ViLT", reason=reason))
            ] * count
        prepared, errors = prepared or _route(_prepare(images, questions), self.translator)[0]
        labels: list = [None] * count
        statuses = [_warn(e) if e else "" for e in errors]
        ready = [i for i, item in enumerate(prepared) if item is not None]
        if ready:
            top_k = max(int(top_ks[i] or DEFAULT_TOP_K) for i in ready)
            outcomes = _outcomes(
                lambda: services.vilt.answer_batch(
                    [prepared[i][0] for i in ready], [prepared[i][1] for i in ready], top_k=top_k
                ),
                len(ready),
            )
            for i, result in zip(ready, outcomes):
                if isinstance(result, BaseException):
                    statuses[i] = _warn(message("failed", model="ViLT", reason=_reason(result)))
                    continue
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
        routes: list | None = None,
        conversations: list | None = None,
    ) -> tuple[list, list]:
        # On the page, ``routes`` is what the ViLT step did with each question, and
        # ``conversations`` the earlier turns about the same picture (BLIP-2 reads them).
        prepared, _ = _route(_prepare(images, questions), self.translator, routes)
        histories = [_blip2_history(c) for c in conversations] if conversations else None
        return self._blip2(images, questions, max_new_tokens, beams, prepared, histories)

    def _blip2(
        self, images, questions, max_new_tokens, beams, prepared=None, histories=None
    ) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.blip2 is None:
            reason = services.blip2_error or "it was not loaded"
            return [""] * count, [
                _warn(message("unavailable", model="BLIP-2", reason=reason))
            ] * count
        prepared, errors = prepared or _route(_prepare(images, questions), self.translator)[0]
        if not self.blip2_reads_history:
            histories = None
        answers = [""] * count
        statuses = [_warn(e) if e else "" for e in errors]
        # Items with the same decoding settings share one generate() call.
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, item in enumerate(prepared):
            if item is not None:
                groups[(int(max_new_tokens[i] or 10), int(beams[i] or 1))].append(i)
        for (tokens, num_beams), members in groups.items():
            extra = {}
            if histories and any(histories[i] for i in members):
                if _takes(services.blip2.answer_batch, "histories"):
                    extra["histories"] = [histories[i] for i in members]
                else:  # a model server without follow-ups: each question alone
                    logger.info("This BLIP-2 takes no history; follow-ups are asked alone")
            outcomes = _outcomes(
                lambda members=members, tokens=tokens, num_beams=num_beams, extra=extra: (
                    services.blip2.answer_batch(
                        [prepared[i][0] for i in members],
                        [prepared[i][1] for i in members],
                        max_new_tokens=tokens,
                        num_beams=num_beams,
                        **extra,
                    )
                ),
                len(members),
            )
            for i, result in zip(members, outcomes):
                if isinstance(result, BaseException):
                    statuses[i] = _warn(message("failed", model="BLIP-2", reason=_reason(result)))
                    continue
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
        # One intake for both models: a phone photo is decoded (and a question translated)
        # once, not twice.
        prepared, routes = _route(_prepare(images, questions), self.translator)
        labels, vilt_statuses = self._vilt(images, questions, top_ks, prepared)
        answers, blip2_statuses = self._blip2(images, questions, max_new_tokens, beams, prepared)
        lines = [
            self._routed_line(route, label, answer, status)
            for route, label, answer, status in zip(routes, labels, answers, blip2_statuses)
        ]
        return labels, vilt_statuses, answers, blip2_statuses, lines

    def _routed_line(
        self, route: QuestionRoute | None, label: dict | None, answer: str, blip2_status: str
    ) -> str:
        """/answer's line in English: the notice instead when the question went unasked."""
        if route is not None and not route.answerable:
            return self._notice(route, "en")
        line = self._line(
            label,
            answer,
            vilt_ok=label is not None,
            blip2_ok=bool(blip2_status) and not blip2_status.startswith("⚠"),
        )
        if route is None or not route.translated:
            return line
        # API callers get the English answers only, so the notice does not promise Arabic ones.
        language = message(f"language_{route.script}")
        english = markdown_text(route.english)
        return f"{message('translated_api', language=language, english=english)} {line}"

    def _notice(self, route: QuestionRoute, lang: str) -> str:
        """What the page says about a question the models could not read as it was."""
        if route.status == "not_understood":
            return message("not_understood", lang)
        # Translated (or tried) questions are in the pair's language, which has a name.
        language = message(f"language_{route.script}", lang)
        if route.status == "translated":
            return message(
                "translated", lang, language=language, english=markdown_text(route.english)
            )
        if route.status == "translation_failed":
            return message(
                "translation_failed",
                lang,
                language=language,
                reason=markdown_text(route.error or ""),
            )
        return message("not_understood", lang)

    @staticmethod
    def _line(
        label: dict | None, answer: str | None, *, vilt_ok: bool, blip2_ok: bool, lang: str = "en"
    ) -> str:
        vilt_answers = _label_answers(label) if vilt_ok else None
        return summary_line(vilt_answers, answer if blip2_ok else None, lang)

    def agreement(
        self, label: dict | None, answer: str | None, blip2_status: str | None, request: gr.Request
    ) -> str:
        lang = pick_language(request.headers.get("accept-language") if request else None)
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        return self._line(label, answer, vilt_ok=bool(label), blip2_ok=blip2_ok, lang=lang)

    def summarise(
        self,
        label: dict | None,
        answer: str | None,
        vilt_status: str | None,
        blip2_status: str | None,
        route: dict | None,
        request: gr.Request,
    ) -> tuple:
        """The page's last step: the agreement line (announced, read aloud) in the page's
        language and, for a translated question, both answers in its language.

        Returns the line, ViLT's and BLIP-2's translated answers, and both columns' statuses
        (re-worded in the page's language when the question was not put to the models).
        """
        lang = pick_language(request.headers.get("accept-language") if request else None)
        route = QuestionRoute(**route) if isinstance(route, dict) else None
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        vilt_ok = bool(label) and not str(vilt_status or "").startswith("⚠")
        if route is None or route.status == "as_is":
            line = self._line(label, answer, vilt_ok=vilt_ok, blip2_ok=blip2_ok, lang=lang)
            return line, "", "", gr.skip(), gr.skip()
        notice = self._notice(route, lang)
        if not route.answerable:
            status = f"⚠️ {message(f'{route.status}_status', lang)}"
            vilt_shown = status if self.services.vilt is not None else gr.skip()
            blip2_shown = status if self.services.blip2 is not None else gr.skip()
            return notice, "", "", vilt_shown, blip2_shown
        vilt_answers = _label_answers(label) if vilt_ok else None
        english_blip2 = answer.strip() if (blip2_ok and answer and answer.strip()) else ""
        language = message(f"language_{route.script}", lang)
        try:
            vilt_words = (
                self.translator.labels_from_english([str(a) for a, _ in vilt_answers])
                if vilt_answers
                else []
            )
            (blip2_words,) = self.translator.from_english([english_blip2])
        except Exception as err:
            reason = _reason(err)
            failed = _warn(
                message("answers_not_translated", lang, language=language, reason=reason)
            )
            line = self._line(label, answer, vilt_ok=vilt_ok, blip2_ok=blip2_ok, lang=lang)
            return f"{notice} {line}", failed, failed if english_blip2 else "", gr.skip(), gr.skip()
        heading = message("answers_in", lang, language=language)
        code = route.script
        vilt_text = ""
        if vilt_answers:
            rows = "\n".join(
                f"{rank}. {markdown_text(word)} ({markdown_text(str(english))}, {score:.0%})"
                for rank, (word, (english, score)) in enumerate(
                    zip(vilt_words, vilt_answers), start=1
                )
            )
            vilt_text = f'<div lang="{code}" dir="auto">\n\n**{heading}**\n\n{rows}\n\n</div>'
        blip2_text = (
            f'<div lang="{code}" dir="auto">\n\n**{heading}:** {markdown_text(blip2_words)}\n\n</div>'
            if blip2_words
            else ""
        )
        # Read aloud in the page's language: the answers in the question's language when the
        # page speaks it, the English originals otherwise.
        in_page_language = lang == code
        line = summary_line(
            vilt_answers,
            english_blip2 if blip2_ok else None,
            lang,
            vilt_shown=vilt_words[0] if (in_page_language and vilt_words) else None,
            blip2_shown=blip2_words if (in_page_language and blip2_words) else None,
        )
        return f"{notice} {line}", vilt_text, blip2_text, gr.skip(), gr.skip()

    # Follow-ups, for API users: the history travels with the call -------------------------
    def ask(
        self,
        images: list,
        questions: list[str],
        top_ks: list[float],
        max_new_tokens: list[float],
        beams: list[float],
        histories: list,
    ) -> tuple[list, list, list, list, list, list, list]:
        """/answer with each question's earlier turns: BLIP-2 reads them, ViLT does not.

        Each ``history`` is a list of ``[question, answer]`` pairs (BLIP-2's answers),
        oldest first; the call hands back the history with this turn added, and the
        photo-quality cue of the picture.
        """
        count = len(images)
        cleaned: list = []
        errors: list[str | None] = []
        for history in histories:
            try:
                cleaned.append(clean_history(history, max_turns=MAX_CONVERSATION_ENTRIES))
                errors.append(None)
            except VQAError as err:
                cleaned.append([])
                errors.append(str(err))
        prepared, routes = _route(_prepare(images, questions), self.translator)
        items, item_errors = prepared
        for i, error in enumerate(errors):
            if error:  # a malformed history is the caller's error: answer nothing
                items[i], item_errors[i] = None, error
        prepared = (items, item_errors)
        labels, vilt_statuses = self._vilt(images, questions, top_ks, prepared)
        blip2_histories = [[(t.question, t.answer) for t in turns] for turns in cleaned]
        answers, blip2_statuses = self._blip2(
            images, questions, max_new_tokens, beams, prepared, blip2_histories
        )
        lines, updated, qualities = [], [], []
        for i in range(count):
            lines.append(self._routed_line(routes[i], labels[i], answers[i], blip2_statuses[i]))
            turns = [[t.question, t.answer] for t in cleaned[i]]
            if items[i] is not None and answers[i] and not blip2_statuses[i].startswith("⚠"):
                turns.append([items[i][1], answers[i]])
            # As BLIP-2 will read it next time: cleaned the way every history is.
            kept = clean_history(turns, max_turns=MAX_CONVERSATION_ENTRIES)
            updated.append([[turn.question, turn.answer] for turn in kept])
            qualities.append(self._quality_payload(images[i]))
        return labels, vilt_statuses, answers, blip2_statuses, lines, updated, qualities

    # Describe --------------------------------------------------------------------------
    def describe(
        self, images: list, max_new_tokens: list[float], beams: list[float]
    ) -> tuple[list, list, list]:
        """/describe: BLIP-2's caption of each picture, its status and the quality cue."""
        captions, statuses = self._describe(images, max_new_tokens, beams)
        return captions, statuses, [self._quality_payload(image) for image in images]

    def _describe(self, images, max_new_tokens, beams) -> tuple[list[str], list[str]]:
        count = len(images)
        blip2 = self.services.blip2
        if blip2 is None:
            reason = self.services.blip2_error or "it was not loaded"
            return [""] * count, [
                _warn(message("unavailable", model="BLIP-2", reason=reason))
            ] * count
        captions, statuses = [""] * count, [""] * count
        ready = []
        for i, image in enumerate(images):
            if image is None:
                statuses[i] = _warn(message("no_image"))
                continue
            try:
                ready.append((i, open_picture(image)))
            except VQAError as err:
                statuses[i] = _warn(str(err))
        if not ready:
            return captions, statuses
        if not hasattr(blip2, "describe_batch"):
            reason = "this model server does not offer descriptions"
            for i, _ in ready:
                statuses[i] = _warn(message("failed", model="BLIP-2", reason=reason))
            return captions, statuses
        tokens = max(int(max_new_tokens[i] or DEFAULT_CAPTION_TOKENS) for i, _ in ready)
        num_beams = max(int(beams[i] or 1) for i, _ in ready)
        outcomes = _outcomes(
            lambda: blip2.describe_batch(
                [picture for _, picture in ready], max_new_tokens=tokens, num_beams=num_beams
            ),
            len(ready),
        )
        for (i, _), result in zip(ready, outcomes):
            if isinstance(result, BaseException):
                statuses[i] = _warn(message("failed", model="BLIP-2", reason=_reason(result)))
                continue
            captions[i] = result.answer
            statuses[i] = format_timing(
                _short_name(result.model), result.seconds, result.batch_size
            )
        return captions, statuses

    def describe_page(self, image, conversation: list | None, request: gr.Request) -> tuple:
        """The Describe button (and a picture's arrival in kiosk and accessible modes).

        BLIP-2's caption goes in its column and, worded, in the announced line (read aloud
        after the photo-quality sentence); the description joins the conversation list.
        ViLT's column is left alone: a question asked meanwhile keeps its answer there.
        """
        lang = _lang(request)
        (caption,), (status,) = self._describe([image], [DEFAULT_CAPTION_TOKENS], [1])
        conversation = list(conversation or [])
        if caption:
            line = message("described", lang, caption=markdown_text(caption.rstrip(". ")))
            conversation.append({"kind": "describe", "caption": caption})
        elif status.startswith("⚠"):
            line = status.removeprefix("⚠️ ")
        else:
            line = message("described_nothing", lang)
        conversation = conversation[-MAX_CONVERSATION_ENTRIES:]
        quality = self.quality_sentence(self._quality(image), lang)
        return (
            caption,
            status,
            line,
            quality,
            conversation,
            render_conversation(conversation, lang),
        )

    # The page's conversation ---------------------------------------------------------------
    def new_picture(self, image, request: gr.Request) -> tuple:
        """A picture arrived or went: its quality sentence; the conversation starts over, and
        the answers about the last picture go (they are not about this one).

        The session now shows this picture; the one it showed before is left, and in kiosk
        mode deleted after a short grace (an Ask already on its way may still name it)
        unless another session shows the same file.
        """
        left = self.holds.show(_session(request), image)
        if left is not None:
            self._discard_later(left)
        quality = self.quality_sentence(self._quality(image), _lang(request))
        return (quality, [], "", None, "", "", "", "", "", "")

    def remember(
        self,
        question: str,
        label: dict | None,
        answer: str | None,
        vilt_status: str | None,
        blip2_status: str | None,
        route: dict | None,
        conversation: list | None,
        request: gr.Request,
    ) -> tuple[list, str]:
        """After an answer: the turn joins this session's conversation about the picture.

        BLIP-2 reads the question as it was put to it (in English when translated) and its
        own answer; ViLT's best answer is kept for the list only.
        """
        conversation = list(conversation or [])
        lang = _lang(request)
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        vilt_ok = bool(label) and not str(vilt_status or "").startswith("⚠")
        route = route if isinstance(route, dict) else None
        asked = bool(vilt_ok or (blip2_ok and answer))
        if not asked or (route is not None and not route.get("answerable", True)):
            return conversation, render_conversation(conversation, lang)
        try:
            shown = clean_question(question)
        except VQAError:
            return conversation, render_conversation(conversation, lang)
        english = (route or {}).get("english") or shown
        vilt_best = _best_label(label) if vilt_ok else ""
        conversation.append(
            {
                "kind": "ask",
                "question": shown,
                "english": english,
                "vilt": vilt_best,
                "blip2": (answer or "").strip() if blip2_ok else "",
            }
        )
        conversation = conversation[-MAX_CONVERSATION_ENTRIES:]
        return conversation, render_conversation(conversation, lang)

    @property
    def blip2_reads_history(self) -> bool:
        """Whether BLIP-2 gets the earlier turns. Not the demo BLIP-2: trained on single
        questions, it answered 73% of 300 easy-VQA follow-ups right with the turn before in
        its prompt against 99.7% alone (docs/accessibility.md), so it answers alone."""
        choice = self.services.blip2_choice
        return not (choice is not None and choice.is_demo)

    # Photo quality ---------------------------------------------------------------------------
    @property
    def quality_thresholds(self) -> QualityThresholds:
        """ "Too small" against real checkpoints' input sizes only when one is served: the
        demo models (and models of unknown origin) were trained on 64 px pictures."""
        real = any(
            choice is not None and not choice.is_demo
            for choice in (self.services.vilt_choice, self.services.blip2_choice)
        )
        return QualityThresholds(min_side=DEFAULT_MIN_SIDE if real else DEMO_MIN_SIDE)

    def _quality(self, image) -> PhotoQuality | None:
        if image is None:
            return None
        try:
            return inspect_picture(image, thresholds=self.quality_thresholds).quality
        except VQAError:
            return None  # an unreadable picture is explained in the columns when asked

    def _quality_payload(self, image) -> dict:
        quality = self._quality(image)
        if quality is None:
            return {}
        return {**quality.as_dict(), "sentence": self.quality_sentence(quality, "en")}

    @staticmethod
    def quality_sentence(quality: PhotoQuality | None, lang: str = "en") -> str:
        """One sentence for the first cue raised, in ``lang``; empty for a usable picture."""
        if quality is None or quality.ok:
            return ""
        return message(
            f"quality_{quality.primary}", lang, width=quality.width, height=quality.height
        )

    def reset(self, image: str | None, request: gr.Request):
        """Back to the start screen; in kiosk mode this session's picture is deleted too.

        Only the picture this session showed, and only when no other session shows the same
        file and it is not an example: the path the call names is not trusted.
        """
        self._discard(self.holds.release(_session(request)))
        # The conversation and the quality note go with the picture (kiosk privacy).
        return (None, "", None, "", "", "", "", [], "", "")

    def describe_arrival(self, image, conversation: list | None, request: gr.Request) -> tuple:
        """Kiosk and accessible modes: describe a picture as soon as it arrives."""
        if image is None:
            return (gr.skip(),) * 6
        return self.describe_page(image, conversation, request)

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
        timer = threading.Timer(self.original_grace_seconds, self._discard, args=(image,))
        timer.daemon = True
        timer.start()

    def _discard(self, image: str | None) -> None:
        """Kiosk mode: delete a picture no session shows now rather than at cache expiry."""
        if self.cache_dir is None or not image or not self.holds.deletable(image):
            return
        path = Path(image).resolve()
        if path.is_relative_to(self.cache_dir):
            path.unlink(missing_ok=True)


def _short_name(source: str) -> str:
    path = Path(str(source))
    return path.name if path.name else str(source)


def _session(request: gr.Request | None) -> str:
    """The browser tab (or API client) an event came from."""
    return str(getattr(request, "session_hash", None) or "")


def _lang(request: gr.Request | None) -> str:
    return pick_language(request.headers.get("accept-language") if request else None)


def _takes(method, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _label_answers(label: Any) -> list[tuple[str, float]] | None:
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


def _best_label(label: Any) -> str:
    """ViLT's best answer from a ``gr.Label`` value (as the page hands it back) or a dict."""
    answers = _label_answers(label)
    return answers[0][0] if answers else ""


def _blip2_history(conversation: list | None) -> list[tuple[str, str]]:
    """What BLIP-2 reads of the conversation: its own earlier answers to questions."""
    return [
        (entry["english"], entry["blip2"])
        for entry in conversation or []
        if isinstance(entry, dict) and entry.get("kind") == "ask" and entry.get("blip2")
    ]


def render_conversation(conversation: list | None, lang: str = "en") -> str:
    """The conversation as an ordered list, oldest first (read in order by a screen reader)."""
    entries = [entry for entry in conversation or [] if isinstance(entry, dict)]
    if not entries:
        return ""
    nothing = message("nothing", lang)
    rows = []
    for number, entry in enumerate(entries, start=1):
        if entry.get("kind") == "describe":
            text = message(
                "turn_described", lang, caption=markdown_text(entry["caption"].rstrip(". "))
            )
        else:
            text = message(
                "turn_asked",
                lang,
                question=markdown_text(entry["question"]),
                vilt=markdown_text(entry.get("vilt") or nothing),
                blip2=markdown_text(entry.get("blip2") or nothing),
            )
        rows.append(f"{number}. {text}")
    return f"**{message('conversation_heading', lang)}**\n\n" + "\n".join(rows)
