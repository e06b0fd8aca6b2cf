"""Whether ViLT and BLIP-2 agree, and the words the app shows for each column.

ViLT answers from a fixed vocabulary with scores; BLIP-2 writes free text. They are compared
after the official VQA answer normalization, so "Two." and "2" agree. The app (``app.py``)
only wires these helpers to components; everything a test should pin down lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .answer_norm import normalize_answer

__all__ = [
    "LANGUAGES",
    "Agreement",
    "compare_answers",
    "describe_agreement",
    "label_value",
    "pick_language",
    "format_timing",
    "summary_line",
    "message",
]

LANGUAGES = ("en", "ar")

# Backend text the browser cannot translate itself (gr.I18n only covers static strings):
# picked per request from the browser's Accept-Language.
_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "agree_top": "The two models agree: BLIP-2's answer “{answer}” is also ViLT's top answer.",
        "agree_rank": (
            "The two models partly agree: BLIP-2's answer “{answer}” is ViLT's answer "
            "number {rank} of {k}, not its first choice, so treat it with some doubt."
        ),
        "disagree": (
            "The two models disagree: BLIP-2's answer “{answer}” is not among ViLT's top {k} "
            "answers. Doubt both."
        ),
        "blip2_empty": "BLIP-2 gave no answer, so the two cannot be compared.",
        "missing": "Only one model answered, so there is nothing to compare.",
        "timing": "{model} · {seconds} s · batch of {batch}",
        "unavailable": "{model} is not available: {reason}",
        "failed": "{model} could not answer: {reason}",
        "no_image": "Please add an image first (upload, camera or paste).",
        "summary": "ViLT: {vilt}. BLIP-2: {blip2}. {agreement}",
        "nothing": "no answer",
    },
    "ar": {
        "agree_top": "النموذجان متفقان: إجابة BLIP-2 «{answer}» هي أيضًا الإجابة الأولى لـ ViLT.",
        "agree_rank": (
            "النموذجان متفقان جزئيًا: إجابة BLIP-2 «{answer}» هي الإجابة رقم {rank} من {k} "
            "عند ViLT وليست خياره الأول، فتعامل معها بشيء من الحذر."
        ),
        "disagree": (
            "النموذجان مختلفان: إجابة BLIP-2 «{answer}» ليست ضمن أفضل {k} إجابات لـ ViLT. "
            "لا تثق بأيٍّ منهما تمامًا."
        ),
        "blip2_empty": "لم يقدّم BLIP-2 إجابة، فلا يمكن المقارنة.",
        "missing": "أجاب نموذج واحد فقط، فلا توجد مقارنة.",
        "timing": "{model} · {seconds} ث · دفعة من {batch}",
        "unavailable": "{model} غير متاح: {reason}",
        "failed": "تعذّر على {model} الإجابة: {reason}",
        "no_image": "أضف صورة أولًا (رفع أو كاميرا أو لصق).",
        "summary": "ViLT: {vilt}. BLIP-2: {blip2}. {agreement}",
        "nothing": "لا إجابة",
    },
}


def pick_language(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header, else English."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return "en"


def message(key: str, lang: str = "en", **values: object) -> str:
    table = _MESSAGES.get(lang, _MESSAGES["en"])
    return table.get(key, _MESSAGES["en"][key]).format(**values)


@dataclass(frozen=True)
class Agreement:
    """``status`` is ``agree_top``, ``agree_rank``, ``disagree``, ``blip2_empty`` or ``missing``.

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


def describe_agreement(agreement: Agreement, lang: str = "en") -> str:
    """The agreement line in words."""
    return message(
        agreement.status, lang, answer=agreement.answer, rank=agreement.rank, k=agreement.k
    )


def label_value(answers: Sequence[tuple[str, float]]) -> dict[str, float]:
    """ViLT's answers as a ``gr.Label`` value: label -> score, best first."""
    return {str(label): round(float(score), 4) for label, score in answers}


def format_timing(model: str, seconds: float, batch_size: int, lang: str = "en") -> str:
    shown = f"{seconds:.2f}" if seconds >= 0.01 else "<0.01"
    return message("timing", lang, model=model, seconds=shown, batch=batch_size)


def summary_line(
    vilt_answers: Sequence[tuple[str, float]] | None,
    blip2_answer: str | None,
    lang: str = "en",
) -> str:
    """Both best answers and whether they agree, in one line: shown, announced and spoken."""
    nothing = message("nothing", lang)
    vilt_text = vilt_answers[0][0] if vilt_answers else nothing
    blip2_text = blip2_answer.strip() if blip2_answer and blip2_answer.strip() else nothing
    agreement = describe_agreement(compare_answers(vilt_answers, blip2_answer), lang)
    return message("summary", lang, vilt=vilt_text, blip2=blip2_text, agreement=agreement)
