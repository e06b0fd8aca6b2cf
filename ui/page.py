"""The page: layout, wiring and look. ``build_demo(services)`` takes loaded models as arguments.

Layout first (components named by their role), then the events, each with an ``api_name``.
The page's words live in ``ui/text/<lang>.json``, its styles and script in ``ui/static/``.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import Services
from vqa_core.translation import Translator

from .handlers import DEFAULT_TOP_K, VQAHandlers
from .intake import (
    MAX_FILE_SIZE,
    MAX_REQUEST_BYTES,
    PictureHolds,
    RequestBodyLimit,
    install_picture_door,
    say_queue_full,
)
from .messages import LANGUAGES, gradio_labels, message, page_translations, pick_language

__all__ = [
    "DEMO_EXAMPLES",
    "PHOTO_EXAMPLES",
    "about_markdown",
    "build_demo",
    "launch_kwargs",
    "lenient_image",
    "load_examples",
    "page_theme",
]

logger = logging.getLogger("vqa_app")

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "static"
EXAMPLES_DIR = ROOT / "examples"
DEMO_EXAMPLES = [
    ("easy_vqa/0.png", "what is the red shape?"),
    ("easy_vqa/3.png", "what is the color of the circle?"),
    ("easy_vqa/1.png", "does the image contain a triangle?"),
    ("easy_vqa/5.png", "is there not a triangle in the image?"),
]
PHOTO_EXAMPLES = [
    ("photos/cat.jpg", "What animal is this?"),
    ("photos/coffee.jpg", "What is in the cup?"),
    ("photos/rocket.jpg", "What is this?"),
    ("photos/astronaut.jpg", "What is the person wearing?"),
]
MAX_TOP_K = 10
# Pictures decoded at once for the photo check and HEIC previews (each decode is bounded by
# the intake; this bounds how many add up).
INTAKE_CONCURRENCY = 2
DEFAULT_IDLE_RESET_SECONDS = 90
DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_QUEUE_SIZE = 32
IMAGE_LABEL = "Image (upload, camera or paste)"
# Gradio's Examples table shows I18n headers as raw keys, so its headers are plain text.
EXAMPLE_HEADERS = ["Image", "Question"]
# Gradio's delete_cache (check every N s, delete files older than M s): uploads are kept only
# as long as someone might still be asking about them; on a kiosk, minutes.
KIOSK_CACHE_SECONDS = (60, 300)
CACHE_SECONDS = (600, 3600)
# A museum's own examples: a folder with this file, one {"image": ..., "question": ...} a line.
EXAMPLES_FILE = "examples.jsonl"


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


def lenient_image(image: gr.Image) -> gr.Image:
    """Let unreadable uploads through to ``vqa_core.load_image``, which explains them.

    Gradio's own preprocessing opens the file with Pillow and fails with a developer's
    traceback on a corrupt or odd file; passing the path on lets ``load_image`` say in plain
    words what is wrong, in each model's column. (Wrapping the instance rather than
    subclassing: Gradio writes a ``.pyi`` stub next to any module defining a component.)
    """
    strict = image.preprocess

    def preprocess(payload):
        try:
            return strict(payload)
        except Exception:  # any failure is diagnosed again, for a person, by load_image
            return str(payload.path) if payload is not None and payload.path else None

    image.preprocess = preprocess
    return image


def about_markdown(services: Services, translator: Translator | None = None) -> str:
    """Which checkpoints, on which device and precision, and why."""
    rows = []
    for title, answerer, choice, error in (
        ("ViLT", services.vilt, services.vilt_choice, services.vilt_error),
        ("BLIP-2", services.blip2, services.blip2_choice, services.blip2_error),
    ):
        source = choice.source if choice else (answerer.name if answerer else "—")
        if answerer is not None:
            where = answerer.placement.describe()
            # vqa_core.fit's choice and its reason (what it needs, what the machine has).
            plan = getattr(services, "vilt_plan" if title == "ViLT" else "blip2_plan", None)
            if plan is not None:
                where = f"{plan.describe()}: {plan.reason}"
            rows.append(
                f"- **{title}**: `{source}` on {where}" + (f" ({choice.reason})" if choice else "")
            )
        else:
            rows.append(f"- **{title}**: not loaded: {error or 'unknown reason'}")
    if translator is not None:
        rows.append(
            f"- **Translation**: `{translator.name}`: questions in Arabic are put into English "
            "for both models, and their answers back into Arabic next to the English ones"
        )
    else:
        rows.append(
            "- **Translation**: off: both models read English only, so a question in another "
            "language gets a notice instead of an answer (`--translation` or "
            "`VQA_TRANSLATION` switches it on; see docs/languages.md)"
        )
    if services.blip2_choice is not None and services.blip2_choice.is_demo:
        follow_up = (
            "the page lists the last few questions about the same picture, but both models "
            "answer each question alone: ViLT is a classifier over a fixed list of answers, "
            "and the demo BLIP-2, trained on single questions, answered fewer follow-ups "
            "right with the earlier turns in its prompt than without them"
        )
    else:
        follow_up = (
            "BLIP-2 reads the last few questions about the same picture and its own answers "
            'to them, so "and what colour is it?" works; ViLT, a classifier over a fixed '
            "list of answers, answers each question alone"
        )
    rows.append(
        f"- **Follow-up questions**: {follow_up}. A new picture or *Start over* begins a new "
        "conversation."
    )
    rows.append(
        "- **Photo check**: each picture is checked for being very dark, washed out, almost "
        "blank, blurred or very small, and a sentence above the answers says so: both models "
        "answer such photos as confidently as good ones (docs/accessibility.md)."
    )
    text = "\n".join(rows)
    if services.uses_demo:
        text += (
            "\n\nThese are **small demo models trained here on simple shapes** (the easy-VQA "
            "dataset: circles, rectangles and triangles in a few colours). They answer questions "
            "about such pictures only. To use the real checkpoints, start the app with "
            "`--vilt real --blip2 real` (or set `VQA_VILT_MODEL` / `VQA_BLIP2_MODEL` to a hub id "
            "or a local folder) on a machine that can reach the model hub or has them cached."
        )
    return text


def load_examples(folder: str | Path) -> list[list[str]]:
    """A museum's own examples: ``folder/examples.jsonl``, one ``{"image", "question"}`` a line.

    ``image`` is a file inside ``folder``; the question may be in any language. A line that
    is not JSON, names no readable picture inside the folder or has no question is skipped
    with a log line, so one bad entry never keeps the kiosk from starting.
    """
    from vqa_core import load_image

    root = Path(folder).resolve()
    listing = root / EXAMPLES_FILE
    if not listing.is_file():
        logger.warning(
            "--examples %s: no %s there; showing the built-in examples", root, EXAMPLES_FILE
        )
        return []
    examples: list[list[str]] = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{listing}:{number}"
        try:
            entry = json.loads(line)
            image = (root / str(entry["image"])).resolve()
            question = str(entry["question"]).strip()
        except (ValueError, KeyError, TypeError) as err:
            logger.warning('Skipping example %s: not a {"image", "question"} line (%s)', where, err)
            continue
        if not image.is_relative_to(root) or not image.is_file():
            logger.warning(
                "Skipping example %s: no picture %s inside %s", where, entry["image"], root
            )
            continue
        if not question:
            logger.warning("Skipping example %s: the question is empty", where)
            continue
        try:
            load_image(image)
        except Exception as err:  # any unreadable file: skipped, never a crash at start
            logger.warning("Skipping example %s: %s", where, err)
            continue
        examples.append([str(image), question])
    logger.info("Examples: %d from %s", len(examples), listing)
    return examples


def _examples(services: Services, examples_dir: str | Path | None = None) -> list[list[str]]:
    if examples_dir is not None:
        museum = load_examples(examples_dir)
        if museum:
            return museum
    chosen = DEMO_EXAMPLES if services.uses_demo or not _any_real(services) else PHOTO_EXAMPLES
    return [
        [str(EXAMPLES_DIR / path), question]
        for path, question in chosen
        if (EXAMPLES_DIR / path).is_file()
    ]


def _kept_files(demo: gr.Blocks) -> set[str]:
    """Files Gradio keeps for the app itself (the examples' cached copies)."""
    return {
        str(path) for block in demo.blocks.values() for path in getattr(block, "keep_in_cache", ())
    }


def _request_language(request) -> str:
    return pick_language(request.headers.get("accept-language") if request else None)


def _any_real(services: Services) -> bool:
    return any(
        c is not None and not c.is_demo for c in (services.vilt_choice, services.blip2_choice)
    )


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
    examples_dir: str | Path | None = None,
) -> gr.Blocks:
    """The Blocks app for ``services``; call ``.launch(**launch_kwargs(...))`` on it.

    ``translator`` (optional) puts questions the models cannot read into English first.
    ``auto_describe`` has BLIP-2 describe each picture as it arrives (default: in kiosk and
    accessible modes). ``examples_dir`` holds a museum's own examples (``load_examples``).
    """
    if auto_describe is None:
        auto_describe = kiosk or accessible
    with gr.Blocks(
        title="Visual question answering, side by side",
        delete_cache=KIOSK_CACHE_SECONDS if kiosk else CACHE_SECONDS,
        analytics_enabled=False,
    ) as demo:
        text = page_i18n()
        handlers = VQAHandlers(
            services,
            cache_dir=demo.GRADIO_CACHE if kiosk else None,
            translator=translator,
            # The app's own files (the examples' copies) are never deleted by a reset.
            holds=PictureHolds(protected=lambda: _kept_files(demo)),
        )
        gr.Markdown(text("title"), elem_id="vqa-title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                image = lenient_image(
                    gr.Image(
                        # Gradio's Image shows an I18n label as "[object Object]"; plain text.
                        label=IMAGE_LABEL,
                        type="filepath",
                        # None hands over the file as uploaded. Gradio's default ("RGB")
                        # decodes and converts any other mode itself, dropping alpha
                        # (transparent turns black) and clipping 16-bit grey, before
                        # vqa_core's intake could composite or stretch it.
                        image_mode=None,
                        sources=["upload", "webcam", "clipboard"],
                        # Gradio mirrors the photo it takes, not only the preview: the models
                        # would read signs backwards and swap left and right.
                        webcam_options=gr.WebcamOptions(mirror=False),
                        # Only for pictures the app hands back (HEIC previews): lossless.
                        format="png",
                        elem_id="vqa-image",
                        height=320,
                    )
                )
                question = gr.Textbox(
                    label=text("question"),
                    placeholder=text("question_placeholder"),
                    lines=1,
                    max_lines=3,
                    elem_id="vqa-question",
                )
                top_k = gr.Slider(
                    1,
                    MAX_TOP_K,
                    value=DEFAULT_TOP_K,
                    step=1,
                    label=text("top_k"),
                    elem_id="vqa-top-k",
                )
                with gr.Accordion(text("advanced"), open=False, elem_id="vqa-advanced"):
                    max_new_tokens = gr.Slider(
                        1, 64, value=10, step=1, label=text("max_new_tokens")
                    )
                    beams = gr.Slider(1, 8, value=1, step=1, label=text("beams"))
                with gr.Row():
                    ask = gr.Button(text("ask"), variant="primary", elem_id="vqa-ask", size="lg")
                    describe = gr.Button(text("describe"), elem_id="vqa-describe", size="lg")
                    reset = gr.Button(
                        text("start_over"), variant="secondary", elem_id="vqa-reset", size="lg"
                    )
            with gr.Column(scale=2, min_width=320, elem_id="vqa-answers"):
                if services.uses_demo:
                    # Above the answers, not only in About: shape-trained models answer a
                    # photo with confident nonsense, which otherwise reads as a broken app.
                    gr.Markdown(text("demo_notice"), elem_id="vqa-demo-notice")
                # The photo-quality sentence: above the answers, read before them.
                quality_note = gr.Markdown(elem_id="vqa-quality")
                with gr.Row(equal_height=True):
                    with gr.Column(elem_id="vqa-vilt-column"):
                        gr.Markdown(text("vilt_heading"))
                        vilt_label = gr.Label(
                            label=text("vilt_label"), elem_id="vqa-vilt", show_label=True
                        )
                        # A translated question's answers in its language, under the English.
                        vilt_translation = gr.Markdown(elem_id="vqa-vilt-translation")
                        vilt_status = gr.Markdown(elem_id="vqa-vilt-status")
                    with gr.Column(elem_id="vqa-blip2-column"):
                        gr.Markdown(text("blip2_heading"))
                        blip2_answer = gr.Textbox(
                            label=text("blip2_label"),
                            interactive=False,
                            elem_id="vqa-blip2",
                            lines=2,
                        )
                        blip2_translation = gr.Markdown(elem_id="vqa-blip2-translation")
                        blip2_status = gr.Markdown(elem_id="vqa-blip2-status")
                agreement = gr.Markdown(elem_id="vqa-agreement")
                # This session's questions about the picture, oldest first.
                conversation_view = gr.Markdown(elem_id="vqa-conversation")
                with gr.Row(elem_id="vqa-speech"):
                    read_aloud = gr.Button(text("read_aloud"), elem_id="vqa-read", size="lg")
                    stop_reading = gr.Button(text("stop_reading"), elem_id="vqa-stop", size="lg")
                    auto_read = gr.Checkbox(
                        label=text("auto_read"), value=False, elem_id="vqa-auto-read"
                    )
                accessible_toggle = gr.Checkbox(
                    label=text("accessible_toggle"),
                    value=accessible,
                    elem_id="vqa-accessible-toggle",
                )
        examples = _examples(services, examples_dir)
        if examples:
            example_table = gr.Examples(
                examples, inputs=[image, question], label=text("examples"), elem_id="vqa-examples"
            )
            example_table.dataset.headers = EXAMPLE_HEADERS
        with gr.Accordion(text("about"), open=False, elem_id="vqa-about"):
            gr.Markdown(about_markdown(services, translator))
        # How the ViLT step routed the question (as is, translated, not asked), for the
        # BLIP-2 step (which then translates nothing again) and the agreement line.
        question_route = gr.State(None)
        # This session's conversation about the current picture (never shared, never kept).
        conversation = gr.State([])
        # /ask's history and the photo-quality cue, for API users only.
        history_io = gr.JSON(visible=False)
        quality_io = gr.JSON(visible=False)

        batch = {"batch": True, "max_batch_size": max_batch_size}
        # Clear the previous answers in the browser first, so BLIP-2's column and the
        # agreement line never show the last question's answers next to ViLT's new ones.
        ask_event = gr.on(
            triggers=[ask.click, question.submit],
            fn=None,
            outputs=[
                vilt_status,
                blip2_answer,
                blip2_status,
                agreement,
                vilt_translation,
                blip2_translation,
            ],
            js="() => ['', '', '', '', '', '']",
            queue=False,
        ).then(
            fn=handlers.ask_vilt,
            inputs=[image, question, top_k],
            outputs=[vilt_label, vilt_status, question_route],
            api_name="vilt",
            **batch,
        )
        blip2_event = ask_event.then(
            handlers.answer_blip2,
            inputs=[image, question, max_new_tokens, beams, question_route, conversation],
            outputs=[blip2_answer, blip2_status],
            api_name="blip2",
            concurrency_id="blip2",
            **batch,
        )
        speak_if_on = (
            "(on) => { if (on) setTimeout(() => window.vqaSpeak && window.vqaSpeak(), 50); }"
        )
        blip2_event.then(
            handlers.summarise,
            inputs=[vilt_label, blip2_answer, vilt_status, blip2_status, question_route],
            outputs=[agreement, vilt_translation, blip2_translation, vilt_status, blip2_status],
            api_name="agreement",
            queue=False,
        ).then(
            handlers.remember,
            inputs=[
                question,
                vilt_label,
                blip2_answer,
                vilt_status,
                blip2_status,
                question_route,
                conversation,
            ],
            outputs=[conversation, conversation_view],
            api_name="remember",
            api_visibility="undocumented",
            queue=False,
        ).then(None, [auto_read], None, js=speak_if_on)

        # Describe: BLIP-2's caption, no question; and on arrival in kiosk/accessible modes.
        describe_outputs = [
            blip2_answer,
            blip2_status,
            agreement,
            quality_note,
            conversation,
            conversation_view,
        ]
        # One BLIP-2 call at a time, in order: a description still running when a question
        # is asked lands before that question's answer, never over it.
        blip2_queue = {"concurrency_id": "blip2"}
        describe.click(
            fn=None,
            outputs=[blip2_status, agreement, vilt_translation, blip2_translation],
            js="() => ['', '', '', '']",
            queue=False,
        ).then(
            handlers.describe_page,
            inputs=[image, conversation],
            outputs=describe_outputs,
            api_name="describe_page",
            api_visibility="undocumented",
            **blip2_queue,
        ).then(None, [auto_read], None, js=speak_if_on)
        # Events that decode the picture outside the models' queues: a few at a time, so a
        # burst of large uploads cannot add up in memory.
        intake_queue = {"concurrency_id": "intake", "concurrency_limit": INTAKE_CONCURRENCY}
        # A new picture (or none): its quality sentence, and a new conversation.
        arrival = image.change(
            handlers.new_picture,
            inputs=[image],
            outputs=[
                quality_note,
                conversation,
                conversation_view,
                vilt_label,
                vilt_status,
                blip2_answer,
                blip2_status,
                agreement,
                vilt_translation,
                blip2_translation,
            ],
            api_name="new_picture",
            api_visibility="undocumented",
            **intake_queue,
        )
        if auto_describe:
            arrival.then(
                handlers.describe_arrival,
                inputs=[image, conversation],
                outputs=describe_outputs,
                api_name="describe_arrival",
                api_visibility="undocumented",
                **blip2_queue,
            ).then(None, [auto_read], None, js=speak_if_on)

        # /answer: both models in one call for gradio_client users; not bound to a visible control.
        api_trigger = gr.Button(visible=False)
        api_trigger.click(
            handlers.answer_both,
            inputs=[image, question, top_k, max_new_tokens, beams],
            outputs=[vilt_label, vilt_status, blip2_answer, blip2_status, agreement],
            api_name="answer",
            **batch,
        )

        # /ask: /answer with a conversation history (BLIP-2 reads it), handed back extended.
        ask_trigger = gr.Button(visible=False)
        ask_trigger.click(
            handlers.ask,
            inputs=[image, question, top_k, max_new_tokens, beams, history_io],
            outputs=[
                vilt_label,
                vilt_status,
                blip2_answer,
                blip2_status,
                agreement,
                history_io,
                quality_io,
            ],
            api_name="ask",
            **batch,
        )
        # /describe: BLIP-2's caption of the picture and the photo-quality cue.
        describe_trigger = gr.Button(visible=False)
        describe_trigger.click(
            handlers.describe,
            inputs=[image, max_new_tokens, beams],
            outputs=[blip2_answer, blip2_status, quality_io],
            api_name="describe",
            **batch,
        )

        image.upload(
            handlers.browser_preview,
            inputs=[image],
            outputs=[image],
            api_name="preview",
            **intake_queue,
        )
        reset.click(
            handlers.reset,
            inputs=[image],
            outputs=[
                image,
                question,
                vilt_label,
                vilt_status,
                blip2_answer,
                blip2_status,
                agreement,
                conversation,
                conversation_view,
                quality_note,
            ],
            api_name="reset",
            queue=False,
        ).then(None, None, [vilt_translation, blip2_translation], js="() => ['', '']", queue=False)
        read_aloud.click(None, None, None, js="() => window.vqaSpeak && window.vqaSpeak()")
        stop_reading.click(
            None, None, None, js="() => window.vqaStopSpeaking && window.vqaStopSpeaking()"
        )
        accessible_toggle.change(
            None,
            [accessible_toggle],
            None,
            js="(on) => window.vqaSetAccessible && window.vqaSetAccessible(on)",
        )
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    install_picture_door(demo, image)
    say_queue_full(demo, lambda request: message("queue_full", _request_language(request)))
    demo.vqa_options = {
        "kiosk": kiosk,
        "accessible": accessible,
        "idle_reset_seconds": idle_reset_seconds,
    }
    return demo


def page_theme(*, kiosk: bool = False) -> gr.themes.Base:
    """Gradio's default look with AA contrast for the primary button and subdued text."""
    theme = gr.themes.Default(primary_hue="indigo", text_size="lg" if kiosk else "md")
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
