"""The page: ``build_demo(services)`` lays out its sections and wires their events; the look
and limits go to ``demo.launch`` through ``launch_kwargs``.

Sections are built top to bottom by ``ui.sections`` (components named by role), the events
wired by ``ui.wiring`` (each with an ``api_name``), the handlers they call live in
``ui.handlers``. The page's words are in ``ui/text/<lang>.json``, its styles and script in
``ui/static/``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import Services
from vqa_core.translation import Translator

from .events import language_of
from .example_pictures import choose_examples
from .handlers import VQAHandlers
from .intake import (
    MAX_FILE_SIZE,
    MAX_REQUEST_BYTES,
    PictureHolds,
    RequestBodyLimit,
    install_picture_door,
    say_queue_full,
)
from .messages import (
    LANGUAGES,
    gradio_labels,
    message,
    page_text,
    page_translations,
)
from .sections import (
    QUICK_QUESTIONS,
    about_section,
    answers_section,
    controls_section,
    examples_section,
    inputs_section,
    session_values,
)
from .wiring import Page, wire

__all__ = ["build_demo", "launch_kwargs", "page_theme"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_IDLE_RESET_SECONDS = 90
DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_QUEUE_SIZE = 32
# Gradio's delete_cache (check every N s, delete files unused for M s: every read of a
# picture marks it used, see ui.intake): on a kiosk, minutes.
KIOSK_CACHE_SECONDS = (60, 300)
CACHE_SECONDS = (600, 3600)


@cache
def page_i18n() -> gr.I18n:
    return gr.I18n(**page_translations())


@cache
def _static(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def page_css(*, kiosk: bool = False) -> str:
    return _static("page.css") + (_static("kiosk.css") if kiosk else "")


def page_js(options: dict[str, Any]) -> str:
    """``static/page.js`` (a function of the app's options) as the no-argument function Gradio runs."""
    return f"() => {{\n  const start = {_static('page.js')};\n  return start({json.dumps(options)});\n}}"


def build_demo(
    services: Services,
    *,
    kiosk: bool = False,
    accessible: bool = False,
    idle_reset_seconds: int = DEFAULT_IDLE_RESET_SECONDS,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    translator: Translator | None = None,
    auto_describe: bool | None = None,
    offer_text: bool | None = None,
    examples_dir: str | Path | None = None,
) -> gr.Blocks:
    """The Blocks app for ``services``; call ``.launch(**launch_kwargs(...))`` on it.

    ``translator`` (optional) puts questions the models cannot read into English first.
    ``auto_describe`` has BLIP-2 describe each picture as it arrives (default: in kiosk and
    accessible modes); ``offer_text`` has it offer the text found in it, in the same modes.
    ``examples_dir`` holds a museum's own examples
    (``ui.example_pictures.load_examples``).
    """
    if auto_describe is None:
        auto_describe = kiosk or accessible
    if offer_text is None:
        offer_text = kiosk or accessible
    with gr.Blocks(
        title="Visual question answering, side by side",
        delete_cache=KIOSK_CACHE_SECONDS if kiosk else CACHE_SECONDS,
        analytics_enabled=False,
    ) as demo:
        text = page_i18n()
        gr.Markdown(text("title"), elem_id="vqa-title")
        if kiosk:
            # What happens to the picture, said before a visitor gives one.
            gr.Markdown(text("privacy"), elem_id="vqa-privacy")
        examples = choose_examples(services, examples_dir)
        # A museum's own questions (--examples) join the kiosk's ready-made ones as taps.
        own_questions = [question for _, question in examples] if kiosk and examples_dir else []
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                inputs = inputs_section(text, kiosk=kiosk, own_questions=own_questions)
            with gr.Column(scale=2, min_width=320, elem_id="vqa-answers"):
                answers = answers_section(text, services)
                controls = controls_section(text, accessible=accessible)
        examples_section(text, examples, inputs)
        about = about_section(text, services, translator)
        page = Page(inputs, answers, controls, session_values(), about)
        handlers = VQAHandlers(
            services,
            cache_dir=demo.GRADIO_CACHE if kiosk else None,
            translator=translator,
            # The app's own files (the examples' copies) are never deleted by a reset.
            holds=PictureHolds(protected=lambda: kept_files(demo)),
        )
        wire(
            demo,
            page,
            handlers,
            max_batch_size=max_batch_size,
            auto_describe=auto_describe,
            offer_text=offer_text,
        )
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    install_picture_door(demo, inputs.image)
    say_queue_full(demo, lambda request: message("queue_full", language_of(request)))
    demo.vqa_options = {
        "kiosk": kiosk,
        "accessible": accessible,
        "idle_reset_seconds": idle_reset_seconds,
    }
    return demo


def kept_files(demo: gr.Blocks) -> set[str]:
    """Files Gradio keeps for the app itself (the examples' cached copies)."""
    return {
        str(path) for block in demo.blocks.values() for path in getattr(block, "keep_in_cache", ())
    }


def page_theme(*, kiosk: bool = False) -> gr.themes.Base:
    """Gradio's default look with AA contrast for the primary button and subdued text."""
    theme = gr.themes.Default(
        primary_hue="indigo",
        text_size="lg" if kiosk else "md",
        # The system's own sans-serif: the semibold Source Sans Pro that Gradio ships holds
        # only "A", "B" and space, so every bold A and B was drawn in another font.
        font=("system-ui", "Noto Sans", "DejaVu Sans", "Noto Sans Arabic", "sans-serif"),
        font_mono=("ui-monospace", "DejaVu Sans Mono", "monospace"),
    )
    return theme.set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_background_fill_dark="*primary_600",
        button_primary_text_color="white",
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
    )


def launch_kwargs(
    *,
    kiosk: bool = False,
    accessible: bool = False,
    idle_reset_seconds: int = DEFAULT_IDLE_RESET_SECONDS,
    translates: bool = False,
) -> dict[str, Any]:
    """Theme, CSS, JS, i18n and limits for ``demo.launch``."""
    options = {
        "kiosk": kiosk,
        "accessible": accessible,
        "idleResetSeconds": idle_reset_seconds,
        # Said when the browser has no voice for the page's language.
        "noVoice": {
            lang: message("speech_no_voice", lang, language=message(f"language_{lang}", lang))
            for lang in LANGUAGES
        },
        # What a screen reader calls the picture, and Gradio's own controls, per language.
        "pictureAlt": {lang: message("picture_alt", lang) for lang in LANGUAGES},
        "gradioLabels": {lang: gradio_labels(lang) for lang in LANGUAGES},
        # Said once when a question is put to the models.
        "busy": {lang: message("busy", lang) for lang in LANGUAGES},
        # Gradio's own page says "This application is currently busy" in English whatever
        # the language when the queue is full; the script puts the app's sentence instead.
        "queueFull": {lang: message("queue_full", lang) for lang in LANGUAGES},
        # Said when Read aloud is pressed before there is anything to read.
        "nothingToRead": {lang: message("nothing_to_read", lang) for lang in LANGUAGES},
        # The kiosk's ready-made questions as each page shows them, and in English, which
        # the models read (an Arabic one is asked in English unless translation is on).
        "quickQuestions": {
            lang: [page_text(f"quick_{n}", lang) for n in range(1, QUICK_QUESTIONS + 1)]
            for lang in LANGUAGES
        },
        "translates": translates,
        # The kiosk's warning before its idle reset ({seconds} is filled in by the script).
        "stillThere": {
            lang: {
                "text": message("still_there", lang, seconds="{seconds}"),
                "keep": message("keep_visit", lang),
            }
            for lang in LANGUAGES
        },
    }
    return {
        "theme": page_theme(kiosk=kiosk),
        "css": page_css(kiosk=kiosk),
        "js": page_js(options),
        "i18n": page_i18n(),
        "max_file_size": MAX_FILE_SIZE,
        # A JSON body can carry a picture as a data: URL and a long history: bounded as a
        # whole before it is read, with room for one picture of the upload limit in base64.
        "app_kwargs": {"middleware": [RequestBodyLimit.middleware(MAX_REQUEST_BYTES)]},
        "footer_links": [] if kiosk else ["api", "gradio"],
        # Gradio would otherwise keep every question and image in the browser's run history,
        # which on a shared kiosk the next visitor could open.
        "run_history": False,
        "show_error": True,
        "ssr_mode": False,
    }
