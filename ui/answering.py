"""Answering: both models, batched, each item checked on its own.

One bad upload does not fail its neighbours in a batch, and one model's failure never blanks
the other's column: each column gets its answer or one sentence saying why not.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import gradio as gr

from vqa_core import Services, VQAError, clean_history, clean_question
from vqa_core.translation import QuestionRoute, Translator, route_questions

from .agreement_line import AgreementLine
from .conversation import MAX_CONVERSATION_ENTRIES, Conversation, blip2_history
from .events import item_status, per_item, takes, unavailable, warn
from .intake import open_picture
from .messages import error_sentence, label_value, message
from .photo_check import PhotoCheck

__all__ = ["DEFAULT_TOP_K", "Answering", "can_stream"]

logger = logging.getLogger("vqa_app")

DEFAULT_TOP_K = 5


def language_at(languages: Sequence[str] | None, i: int) -> str:
    """The page language of item ``i`` of a batch (API callers, without one: English)."""
    if languages and i < len(languages) and languages[i]:
        return str(languages[i])
    return "en"


def prepare(
    images: Sequence[Any], questions: Sequence[str], languages: Sequence[str] | None = None
) -> tuple[list, list[str | None]]:
    """Per item: (picture, question) or an error message, never an exception."""
    prepared, errors = [], []
    for i, (image, question) in enumerate(zip(images, questions)):
        if image is None:
            prepared.append(None)
            errors.append(message("no_image", language_at(languages, i)))
            continue
        try:
            prepared.append((open_picture(image), clean_question(question)))
            errors.append(None)
        except VQAError as err:
            prepared.append(None)
            errors.append(error_sentence(err, language_at(languages, i)))
    return prepared, errors


def route(
    prepared: tuple[list, list[str | None]],
    translator: Translator | None,
    known: Sequence[Any] | None = None,
    languages: Sequence[str] | None = None,
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
            errors[i] = message(f"{route.status}_status", language_at(languages, i))
    return (items, errors), routes


def route_state(route: QuestionRoute | None) -> dict | None:
    return asdict(route) if route is not None else None


# What a BLIP-2 answerer needs to stream, and the calls ZeroGPU wraps (ui/zerogpu.py).
STREAM_METHODS = ("stream_answer", "stream_description")
WRAPPED_CALLS = ("answer_batch", "describe_batch")


def can_stream(blip2: Any) -> bool:
    """Whether BLIP-2's column can show its words as they are generated.

    A model server's client has no stream methods: its answer comes whole. Where a model
    call was wrapped on the loaded answerer itself (ZeroGPU's ``spaces.GPU``), a stream's
    generate() would run outside that wrapper, without the borrowed GPU: whole answers too.
    So for an object that wraps another answerer and hands on its other methods: its own
    ``answer_batch`` stands around the model's, and the inner stream would go around it.
    """
    methods = [getattr(blip2, name, None) for name in STREAM_METHODS]
    if not all(callable(m) and getattr(m, "__self__", None) is blip2 for m in methods):
        return False
    own = getattr(blip2, "__dict__", {})
    return not any(name in own for name in WRAPPED_CALLS)


class Answering:
    """ViLT's and BLIP-2's answers to the page's questions and the API's."""

    def __init__(
        self,
        services: Services,
        *,
        translator: Translator | None,
        lines: AgreementLine,
        photos: PhotoCheck,
        conversation: Conversation,
    ) -> None:
        self.services = services
        # Questions the models cannot read go through it (None: they get a notice instead).
        self.translator = translator
        self.lines = lines
        self.photos = photos
        self.conversation = conversation

    # ViLT ------------------------------------------------------------------------------
    def answer_vilt(
        self, images: list, questions: list[str], top_ks: list[float]
    ) -> tuple[list, list]:
        labels, statuses, _ = self.ask_vilt(images, questions, top_ks)
        return labels, statuses

    def ask_vilt(
        self,
        images: list,
        questions: list[str],
        top_ks: list[float],
        languages: list[str] | None = None,
    ) -> tuple[list, list, list]:
        """The page's ViLT step: also hands on how each question was routed (translated).
        ``languages`` is each visitor's page language, for the column's sentences."""
        prepared, routes = route(
            prepare(images, questions, languages), self.translator, languages=languages
        )
        labels, statuses = self._vilt(images, questions, top_ks, prepared, languages)
        return labels, statuses, [route_state(route) for route in routes]

    def _vilt(self, images, questions, top_ks, prepared=None, languages=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.vilt is None:
            return [None] * count, [
                unavailable(services, "vilt", language_at(languages, i)) for i in range(count)
            ]
        prepared, errors = prepared or route(prepare(images, questions), self.translator)[0]
        labels: list = [None] * count
        statuses = [warn(e) if e else "" for e in errors]
        ready = [i for i, item in enumerate(prepared) if item is not None]
        if ready:
            top_k = max(int(top_ks[i] or DEFAULT_TOP_K) for i in ready)
            outcomes = per_item(
                lambda: services.vilt.answer_batch(
                    [prepared[i][0] for i in ready], [prepared[i][1] for i in ready], top_k=top_k
                ),
                len(ready),
            )
            for i, result in zip(ready, outcomes):
                statuses[i] = item_status(result, "ViLT", language_at(languages, i))
                if not isinstance(result, BaseException):
                    labels[i] = label_value(result.answers[: int(top_ks[i] or DEFAULT_TOP_K)])
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
        languages: list[str] | None = None,
    ) -> tuple[list, list]:
        # On the page, ``routes`` is what the ViLT step did with each question,
        # ``conversations`` the earlier turns about the same picture (BLIP-2 reads them) and
        # ``languages`` each visitor's page language.
        prepared, _ = route(
            prepare(images, questions, languages), self.translator, routes, languages
        )
        histories = [blip2_history(c) for c in conversations] if conversations else None
        return self._blip2(images, questions, max_new_tokens, beams, prepared, histories, languages)

    def _blip2(
        self,
        images,
        questions,
        max_new_tokens,
        beams,
        prepared=None,
        histories=None,
        languages=None,
    ) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.blip2 is None:
            return [""] * count, [
                unavailable(services, "blip2", language_at(languages, i)) for i in range(count)
            ]
        prepared, errors = prepared or route(prepare(images, questions), self.translator)[0]
        if not self.conversation.reads_history:
            histories = None
        answers = [""] * count
        statuses = [warn(e) if e else "" for e in errors]
        # Items with the same decoding settings share one generate() call.
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, item in enumerate(prepared):
            if item is not None:
                groups[(int(max_new_tokens[i] or 10), int(beams[i] or 1))].append(i)
        for (tokens, num_beams), members in groups.items():
            extra = {}
            if histories and any(histories[i] for i in members):
                if takes(services.blip2.answer_batch, "histories"):
                    extra["histories"] = [histories[i] for i in members]
                else:  # a model server without follow-ups: each question alone
                    logger.info("This BLIP-2 takes no history; follow-ups are asked alone")
            outcomes = per_item(
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
                statuses[i] = item_status(result, "BLIP-2", language_at(languages, i))
                if not isinstance(result, BaseException):
                    answers[i] = result.answer
        return answers, statuses

    def stream_blip2(
        self,
        image: Any,
        question: str,
        max_new_tokens: float,
        beams: float,
        known_route: dict | None = None,
        conversation: list | None = None,
        language: str | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """The page's Ask, BLIP-2's column: (answer, status) as the words are generated.

        The last update is what :meth:`answer_blip2` gives for this one item (the agreement
        line and the conversation read it after the stream, as they read that); the earlier
        ones hold the answer so far and leave the status alone. A BLIP-2 that cannot stream
        (:func:`can_stream`) answers whole, in one update.
        """
        if not can_stream(self.services.blip2):
            answers, statuses = self.answer_blip2(
                [image],
                [question],
                [max_new_tokens],
                [beams],
                [known_route],
                [conversation],
                [language] if language else None,
            )
            yield answers[0], statuses[0]
            return
        languages = [language] if language else None
        lang = language_at(languages, 0)
        (items, errors), _ = route(
            prepare([image], [question], languages), self.translator, [known_route], languages
        )
        if items[0] is None:
            yield "", warn(errors[0]) if errors[0] else ""
            return
        picture, english = items[0]
        history = blip2_history(conversation) if self.conversation.reads_history else None
        try:
            stream = self.services.blip2.stream_answer(
                picture,
                english,
                history=history or None,
                max_new_tokens=int(max_new_tokens or 10),
                num_beams=int(beams or 1),
            )
            for text in stream:
                yield text, gr.skip()
            result = stream.result
        except Exception as err:
            # The words so far go: a failed answer leaves the column with its sentence alone,
            # as a failure in one piece does.
            yield "", item_status(err, "BLIP-2", lang)
            return
        yield result.answer, item_status(result, "BLIP-2", lang)

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
        prepared, routes = route(prepare(images, questions), self.translator)
        labels, vilt_statuses = self._vilt(images, questions, top_ks, prepared)
        answers, blip2_statuses = self._blip2(images, questions, max_new_tokens, beams, prepared)
        lines = [
            self.lines.routed_line(route, label, answer, status)
            for route, label, answer, status in zip(routes, labels, answers, blip2_statuses)
        ]
        return labels, vilt_statuses, answers, blip2_statuses, lines

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
        prepared, routes = route(prepare(images, questions), self.translator)
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
            lines.append(
                self.lines.routed_line(routes[i], labels[i], answers[i], blip2_statuses[i])
            )
            turns = [[t.question, t.answer] for t in cleaned[i]]
            if items[i] is not None and answers[i] and not blip2_statuses[i].startswith("⚠"):
                turns.append([items[i][1], answers[i]])
            # As BLIP-2 will read it next time: cleaned the way every history is.
            kept = clean_history(turns, max_turns=MAX_CONVERSATION_ENTRIES)
            updated.append([[turn.question, turn.answer] for turn in kept])
            qualities.append(self.photos.payload(images[i]))
        return labels, vilt_statuses, answers, blip2_statuses, lines, updated, qualities
