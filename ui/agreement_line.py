"""The line under both answers: both best answers and whether they agree, in the page's
language, or the notice for a question the models were not asked as it was."""

from __future__ import annotations

import gradio as gr

from vqa_core import Services
from vqa_core.translation import QuestionRoute, Translator

from .events import failure_reason, label_answers, warn
from .messages import markdown_text, message, pick_language, summary_line

__all__ = ["AgreementLine"]


class AgreementLine:
    """Words the answers: the agreement line and a translated question's answers."""

    def __init__(self, services: Services, translator: Translator | None = None) -> None:
        self.services = services
        self.translator = translator

    def routed_line(
        self, route: QuestionRoute | None, label: dict | None, answer: str, blip2_status: str
    ) -> str:
        """/answer's line in English: the notice instead when the question went unasked."""
        if route is not None and not route.answerable:
            return self.notice(route, "en")
        line = self.line(
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

    def notice(self, route: QuestionRoute, lang: str) -> str:
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
    def line(
        label: dict | None, answer: str | None, *, vilt_ok: bool, blip2_ok: bool, lang: str = "en"
    ) -> str:
        vilt_answers = label_answers(label) if vilt_ok else None
        return summary_line(vilt_answers, answer if blip2_ok else None, lang)

    def agreement(
        self, label: dict | None, answer: str | None, blip2_status: str | None, request: gr.Request
    ) -> str:
        lang = pick_language(request.headers.get("accept-language") if request else None)
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        return self.line(label, answer, vilt_ok=bool(label), blip2_ok=blip2_ok, lang=lang)

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
            line = self.line(label, answer, vilt_ok=vilt_ok, blip2_ok=blip2_ok, lang=lang)
            return line, "", "", gr.skip(), gr.skip()
        notice = self.notice(route, lang)
        if not route.answerable:
            status = f"⚠️ {message(f'{route.status}_status', lang)}"
            vilt_shown = status if self.services.vilt is not None else gr.skip()
            blip2_shown = status if self.services.blip2 is not None else gr.skip()
            return notice, "", "", vilt_shown, blip2_shown
        vilt_answers = label_answers(label) if vilt_ok else None
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
            reason = failure_reason(err, lang)
            failed = warn(message("answers_not_translated", lang, language=language, reason=reason))
            line = self.line(label, answer, vilt_ok=vilt_ok, blip2_ok=blip2_ok, lang=lang)
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
