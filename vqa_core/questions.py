"""Question intake: what every question passes through before a model sees it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import QuestionError

__all__ = [
    "clean_question",
    "MAX_QUESTION_CHARS",
    "DEFAULT_PROMPT_TEMPLATE",
    "format_prompt",
    "Turn",
    "MAX_HISTORY_ENTRIES",
    "MAX_HISTORY_TURNS",
    "clean_history",
    "format_turn",
    "build_followup_prompt",
]

# A question longer than this is not a question a person typed; the models would only see
# its first few dozen tokens anyway (ViLT reads 40 positions).
MAX_QUESTION_CHARS = 500
DEFAULT_PROMPT_TEMPLATE = "Question: {question} Answer:"
# A follow-up carries at most this many earlier turns: enough for "and what colour is it?",
# few enough that BLIP-2 answers the question asked and not an old one. The token budget
# (build_followup_prompt) may keep fewer.
MAX_HISTORY_TURNS = 4
# An earlier answer is BLIP-2's own few words; anything longer was not, and is cut.
MAX_ANSWER_CHARS = 300
# What one request may send as history, checked before any of it is cleaned: the page keeps
# six entries, so fifty is generous, and a caller cannot make every other visitor wait while
# the server cleans a hundred thousand turns it would then drop.
MAX_HISTORY_ENTRIES = 50
MAX_HISTORY_CHARS = MAX_HISTORY_ENTRIES * (MAX_QUESTION_CHARS + MAX_ANSWER_CHARS)
# Text longer than this many times its limit is refused before it is cleaned (cleaning looks
# at every character); the slack leaves room for whitespace that cleaning collapses.
_RAW_SLACK = 4
_HISTORY_SHAPE = (
    "The conversation history must be a list of [question, answer] pairs, oldest first."
)

_WHITESPACE = re.compile(r"\s+")


def clean_question(question: object, *, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Return the question with control characters dropped and whitespace collapsed.

    Raises :class:`QuestionError` for a missing, empty or over-long question.
    """
    if question is None:
        raise QuestionError("Please type a question about the image.", code="question_empty")
    if not isinstance(question, str):
        raise QuestionError(f"The question must be text, not {type(question).__name__}.")
    if len(question) > max_chars * _RAW_SLACK:
        raise QuestionError(
            f"The question is {len(question)} characters long; please keep it under {max_chars}.",
            code="question_too_long",
            limit=max_chars,
        )
    visible = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in question
    )
    text = _WHITESPACE.sub(" ", visible).strip()
    if not text:
        raise QuestionError("Please type a question about the image.", code="question_empty")
    if len(text) > max_chars:
        raise QuestionError(
            f"The question is {len(text)} characters long; please keep it under {max_chars}.",
            code="question_too_long",
            limit=max_chars,
        )
    return text


def format_prompt(template: str, question: str) -> str:
    """Fill ``{question}`` in a BLIP-2 prompt template, rejecting templates without it."""
    if "{question}" not in template:
        raise ValueError(f"The prompt template must contain '{{question}}'; got {template!r}.")
    return template.replace("{question}", question)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange about the same picture: the question and BLIP-2's answer."""

    question: str
    answer: str


def _clean_answer(answer: object, position: int) -> str:
    if answer is None:
        return ""
    if not isinstance(answer, str):
        raise QuestionError(
            f"Answer {position} in the conversation history must be text, not "
            f"{type(answer).__name__}."
        )
    visible = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in answer
    )
    return _WHITESPACE.sub(" ", visible).strip()[:MAX_ANSWER_CHARS]


def clean_history(history: object, *, max_turns: int = MAX_HISTORY_TURNS) -> list[Turn]:
    """The last ``max_turns`` usable turns of a conversation, oldest first.

    ``history`` is a list of :class:`Turn`, ``[question, answer]`` pairs or
    ``{"question": ..., "answer": ...}`` mappings (what the API's ``history`` argument takes).
    A turn without an answer (the model failed on it) is dropped; anything malformed raises
    :class:`QuestionError`.
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)):
        raise QuestionError(_HISTORY_SHAPE)
    _check_history_size(history)
    turns: list[Turn] = []
    for position, entry in enumerate(history, start=1):
        if isinstance(entry, Turn):
            question, answer = entry.question, entry.answer
        elif isinstance(entry, dict) and "question" in entry:
            question, answer = entry["question"], entry.get("answer")
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            question, answer = entry
        else:
            raise QuestionError(_HISTORY_SHAPE)
        try:
            question = clean_question(question)
        except QuestionError as err:
            raise QuestionError(f"Question {position} in the conversation history: {err}") from err
        answer = _clean_answer(answer, position)
        if answer:
            turns.append(Turn(question, answer))
    return turns[-max_turns:] if max_turns > 0 else []


def _check_history_size(history: list | tuple) -> None:
    too_long = QuestionError(
        f"The conversation history is too long: send at most the last {MAX_HISTORY_ENTRIES} "
        f"turns, of at most {MAX_HISTORY_CHARS:,} characters in all."
    )
    if len(history) > MAX_HISTORY_ENTRIES:
        raise too_long
    chars = 0
    for entry in history:
        if isinstance(entry, Turn):
            parts = (entry.question, entry.answer)
        elif isinstance(entry, dict):
            parts = (entry.get("question"), entry.get("answer"))
        elif isinstance(entry, (list, tuple)):
            parts = tuple(entry)
        else:
            continue  # refused with the shape sentence when it is cleaned
        chars += sum(len(part) for part in parts if isinstance(part, str))
        if chars > MAX_HISTORY_CHARS:
            raise too_long


def format_turn(template: str, turn: Turn) -> str:
    """An earlier turn as BLIP-2 reads it: ``Question: {q} Answer: {a}``."""
    return f"{format_prompt(template, turn.question)} {turn.answer}"


def build_followup_prompt(
    question: str,
    history: Sequence[Turn],
    *,
    count_tokens: Callable[[str], int],
    token_budget: int,
    template: str = DEFAULT_PROMPT_TEMPLATE,
) -> str:
    """BLIP-2's prompt for ``question`` after the earlier ``history``, within ``token_budget``.

    ``Question: q1 Answer: a1 Question: q2 Answer: a2 Question: q Answer:``: the newest
    turns are kept while the whole prompt, counted by ``count_tokens``, fits the budget; the
    current question is always kept, even alone over the budget (the question intake bounds
    its length). With no history this is exactly :func:`format_prompt`.
    """
    current = format_prompt(template, question)
    kept: list[str] = []
    for turn in reversed(history):
        candidate = " ".join([format_turn(template, turn), *kept, current])
        if count_tokens(candidate) > token_budget:
            break
        kept.insert(0, format_turn(template, turn))
    return " ".join([*kept, current])
