"""The conversation about one picture: the last few questions, BLIP-2's earlier answers
(which it reads for follow-ups) and the list a screen reader reads in order."""

from __future__ import annotations

import gradio as gr

from vqa_core import Services, VQAError, clean_question

from .events import best_label, language_of
from .messages import markdown_text, message

__all__ = ["MAX_CONVERSATION_ENTRIES", "Conversation", "blip2_history", "render_conversation"]

# The conversation shown about one picture: the last few exchanges, not a transcript.
MAX_CONVERSATION_ENTRIES = 6


class Conversation:
    """This session's questions about the current picture (kept in its ``gr.State`` only)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def reads_history(self) -> bool:
        """Whether BLIP-2 gets the earlier turns. Not the demo BLIP-2: trained on single
        questions, it answered 73% of 300 easy-VQA follow-ups right with the turn before in
        its prompt against 99.7% alone (docs/accessibility.md), so it answers alone."""
        choice = self.services.blip2_choice
        return not (choice is not None and choice.is_demo)

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
        lang = language_of(request)
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
        vilt_best = best_label(label) if vilt_ok else ""
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


def blip2_history(conversation: list | None) -> list[tuple[str, str]]:
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
