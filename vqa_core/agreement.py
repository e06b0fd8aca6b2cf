"""Whether ViLT and BLIP-2 agree.

ViLT answers from a fixed vocabulary with scores; BLIP-2 writes free text. They are compared
after the official VQA answer normalization, so "Two." and "2" agree. The result is a status
code; putting it in words (and in which language) is the page's job (``ui.messages``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .answer_norm import normalize_answer

__all__ = ["Agreement", "compare_answers"]


@dataclass(frozen=True)
class Agreement:
    """``status`` is ``agree_top``, ``agree_rank``, ``disagree``, ``blip2_empty``, ``missing``
    (one model gave no answers) or ``none_answered`` (neither did).

    ``rank`` is BLIP-2's answer's 1-based position among ViLT's answers (None if absent).
    """

    status: str
    rank: int | None = None
    k: int = 0
    answer: str = ""

    @property
    def agrees(self) -> bool:
        return self.status in ("agree_top", "agree_rank")


def compare_answers(
    vilt_answers: Sequence[tuple[str, float]] | None, blip2_answer: str | None
) -> Agreement:
    """Where BLIP-2's normalized answer falls among ViLT's normalized top-k answers."""
    if not vilt_answers and blip2_answer is None:
        return Agreement("none_answered")
    if not vilt_answers or blip2_answer is None:
        return Agreement("missing")
    generated = normalize_answer(blip2_answer)
    if not generated:
        return Agreement("blip2_empty", k=len(vilt_answers))
    for position, (label, _score) in enumerate(vilt_answers, start=1):
        if normalize_answer(str(label)) == generated:
            status = "agree_top" if position == 1 else "agree_rank"
            return Agreement(status, position, len(vilt_answers), blip2_answer.strip())
    return Agreement("disagree", None, len(vilt_answers), blip2_answer.strip())
