"""Question intake: what every question passes through before a model sees it."""

from __future__ import annotations

import re
import unicodedata

from .errors import QuestionError

__all__ = ["clean_question", "MAX_QUESTION_CHARS", "DEFAULT_PROMPT_TEMPLATE", "format_prompt"]

# A question longer than this is not a question a person typed; the models would only see
# its first few dozen tokens anyway (ViLT reads 40 positions).
MAX_QUESTION_CHARS = 500
DEFAULT_PROMPT_TEMPLATE = "Question: {question} Answer:"

_WHITESPACE = re.compile(r"\s+")


def clean_question(question: object, *, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Return the question with control characters dropped and whitespace collapsed.

    Raises :class:`QuestionError` for a missing, empty or over-long question.
    """
    if question is None:
        raise QuestionError("Please type a question about the image.")
    if not isinstance(question, str):
        raise QuestionError(f"The question must be text, not {type(question).__name__}.")
    visible = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in question
    )
    text = _WHITESPACE.sub(" ", visible).strip()
    if not text:
        raise QuestionError("Please type a question about the image.")
    if len(text) > max_chars:
        raise QuestionError(
            f"The question is {len(text)} characters long; please keep it under {max_chars}."
        )
    return text


def format_prompt(template: str, question: str) -> str:
    """Fill ``{question}`` in a BLIP-2 prompt template, rejecting templates without it."""
    if "{question}" not in template:
        raise ValueError(f"The prompt template must contain '{{question}}'; got {template!r}.")
    return template.replace("{question}", question)
