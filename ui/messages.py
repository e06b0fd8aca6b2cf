"""The page's words, per language, read from ``ui/text/<lang>.json``.

Each language file holds ``page`` (static labels, handed to ``gr.I18n``, which the browser
switches by itself) and ``messages`` (text built per request, such as the agreement line,
which the server words in the language the browser asks for).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path

from vqa_core.agreement import Agreement, compare_answers
from vqa_core.sentences import Sentence

__all__ = [
    "CORE_WORDS",
    "LANGUAGES",
    "describe_agreement",
    "error_sentence",
    "format_timing",
    "gradio_labels",
    "label_value",
    "markdown_text",
    "message",
    "page_text",
    "page_translations",
    "pick_language",
    "reasons_in",
    "reworded",
    "summary_line",
]

# CommonMark lets a backslash escape any of these; "$" also starts Gradio's formulas.
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>#|!~()&$")
TEXT_DIR = Path(__file__).resolve().parent / "text"
LANGUAGES = ("en", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})
# Unicode's first-strong isolate and its end: a value set inside a right-to-left sentence
# (an English answer, a model's name, a number) keeps its own direction and leaves the
# sentence's order alone, in the page and when read aloud.
ISOLATE, END_ISOLATE = "\u2068", "\u2069"
# Keys that reword vqa_core's own English sentences (its errors' and its sentences' codes):
# only in the other languages' files, since the core itself writes the English.
CORE_WORDS = ("error_", "plan_", "memory_", "choice_", "services_")


@cache
def _language_file(lang: str) -> dict[str, dict[str, str]]:
    with open(TEXT_DIR / f"{lang}.json", encoding="utf-8") as handle:
        return json.load(handle)


def page_translations() -> dict[str, dict[str, str]]:
    """The static labels of every language, as ``gr.I18n(**page_translations())`` takes them."""
    return {lang: dict(_language_file(lang)["page"]) for lang in LANGUAGES}


def page_text(key: str, lang: str = "en") -> str:
    """A static label of the page in ``lang`` (English where that language lacks it)."""
    page = _language_file(lang if lang in LANGUAGES else "en")["page"]
    return page.get(key) or _language_file("en")["page"][key]


def gradio_labels(lang: str) -> dict[str, str]:
    """Names of Gradio's own controls (its English aria-labels) in ``lang``.

    Gradio names its icon buttons and sliders in English whatever the page's language; the
    page script renames them from this table (the ``gradio`` part of the language file), so a
    screen reader on an Arabic page hears Arabic names. Keys ending in a space are prefixes.
    """
    return dict(_language_file(lang if lang in LANGUAGES else "en").get("gradio", {}))


def pick_language(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header, else English."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return "en"


def message(key: str, lang: str = "en", **values: object) -> str:
    """Message ``key`` in ``lang`` (English where that language lacks it), filled in.

    In a right-to-left language each value is isolated, so "ViLT" or "red" inside an Arabic
    sentence cannot reorder the words around it.
    """
    table = _language_file(lang if lang in LANGUAGES else "en")["messages"]
    template = table.get(key) or _language_file("en")["messages"][key]
    if lang in RIGHT_TO_LEFT:
        values = {name: f"{ISOLATE}{value}{END_ISOLATE}" for name, value in values.items()}
    return template.format(**values)


def error_sentence(err: BaseException, lang: str = "en") -> str:
    """What went wrong, in ``lang``: vqa_core's errors are English and carry a ``code`` naming
    the sentence (``error_<code>`` in the language file, or the page's own key), so a page in
    another language words them itself; an error it has no words for stays as it is."""
    code = getattr(err, "code", None)
    if code and lang != "en" and lang in LANGUAGES:
        table = _language_file(lang)["messages"]
        for key in (f"error_{code}", code):
            if key in table:
                return message(key, lang, **getattr(err, "values", {}))
    return str(err)


def reworded(said: object, lang: str = "en") -> str | None:
    """A :class:`~vqa_core.sentences.Sentence` of the core in ``lang``, or ``None`` where
    that language has no words for it (or for a sentence inside it); English is its text."""
    if not isinstance(said, Sentence):
        return str(said)
    if lang == "en" or lang not in LANGUAGES:
        return said.text
    if said.code not in _language_file(lang)["messages"]:
        return None
    values = {}
    for name, value in said.values:
        values[name] = reworded(value, lang)
        if values[name] is None:
            return None
    return message(said.code, lang, **values)


def reasons_in(english: str, parts: Sequence[Sentence], lang: str = "en") -> str:
    """A reason the core gave in English and in ``parts``, said in ``lang``: its parts
    reworded and joined, or the English whole where any part has no words in ``lang`` (half
    a sentence in each language would be worse than either)."""
    if lang == "en" or not parts:
        return english
    words = [reworded(part, lang) for part in parts]
    if any(word is None for word in words):
        return english
    return message("reason_separator", lang).join(words)


def markdown_text(text: str) -> str:
    """Text a model, a translator or a visitor wrote, shown as itself inside Markdown: no
    link, image, HTML tag, formula or emphasis it contains is ever rendered, and it stays on
    its line (a line break could start a heading or a list)."""
    flat = " ".join(str(text).splitlines())
    return "".join("\\" + ch if ch in MARKDOWN_SPECIAL else ch for ch in flat)


def describe_agreement(agreement: Agreement, lang: str = "en") -> str:
    """The agreement line in words (the answer in it escaped for Markdown)."""
    return message(
        agreement.status,
        lang,
        answer=markdown_text(agreement.answer),
        rank=agreement.rank,
        k=agreement.k,
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
    *,
    vilt_shown: str | None = None,
    blip2_shown: str | None = None,
) -> str:
    """Both best answers and whether they agree, in one line of Markdown: shown, announced
    and spoken. Every answer in it is escaped (``markdown_text``).

    ``vilt_shown`` / ``blip2_shown`` word the answers for the reader (their translations)
    while the agreement is still decided on the models' own English answers.
    """
    nothing = message("nothing", lang)
    vilt_text = vilt_answers[0][0] if vilt_answers else nothing
    blip2_text = blip2_answer.strip() if blip2_answer and blip2_answer.strip() else nothing
    agreement = compare_answers(vilt_answers, blip2_answer)
    if blip2_shown and agreement.answer:
        agreement = replace(agreement, answer=blip2_shown)
    return message(
        "summary",
        lang,
        # The line puts its own full stop after each answer.
        vilt=markdown_text((vilt_shown or vilt_text).rstrip(". ")),
        blip2=markdown_text((blip2_shown or blip2_text).rstrip(". ")),
        agreement=describe_agreement(agreement, lang),
    )
