"""The page's sections, top to bottom as a visitor meets them: each function creates its
components inside the current ``gr.Blocks`` and returns them, named by role, for the wiring
(``ui.wiring``). Inside a ``gr.Row`` the caller places them side by side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from vqa_core import Services
from vqa_core.translation import Translator

from .about import about_markdown
from .answering import DEFAULT_TOP_K

__all__ = [
    "Answers",
    "Controls",
    "Inputs",
    "SessionValues",
    "about_section",
    "answers_section",
    "controls_section",
    "examples_section",
    "inputs_section",
    "lenient_image",
    "session_values",
]

MAX_TOP_K = 10
# Gradio's Image shows an I18n label as "[object Object]", so its label is plain text.
IMAGE_LABEL = "Image (upload, camera or paste)"
# Gradio's Examples table shows I18n headers as raw keys, so its headers are plain text.
EXAMPLE_HEADERS = ["Image", "Question"]


@dataclass
class Inputs:
    """The picture, the question, the answers' settings and the buttons that act on them."""

    image: gr.Image
    question: gr.Textbox
    top_k: gr.Slider
    max_new_tokens: gr.Slider
    beams: gr.Slider
    ask: gr.Button
    describe: gr.Button
    reset: gr.Button
    read_text: gr.Button


@dataclass
class Answers:
    """Everything the page says about the picture and the question."""

    quality_note: gr.Markdown
    # Which way to move the camera when text runs off an edge (the text reader's cue).
    framing_note: gr.Markdown
    vilt_label: gr.Label
    vilt_translation: gr.Markdown
    vilt_status: gr.Markdown
    blip2_answer: gr.Textbox
    blip2_translation: gr.Markdown
    blip2_status: gr.Markdown
    agreement: gr.Markdown
    # The text read in the picture (each line its own paragraph), announced once.
    text_found: gr.Markdown
    conversation_view: gr.Markdown


@dataclass
class Controls:
    """Speech and display controls."""

    read_aloud: gr.Button
    stop_reading: gr.Button
    auto_read: gr.Checkbox
    accessible_toggle: gr.Checkbox


@dataclass
class SessionValues:
    """What one session keeps between events, and the API's extra inputs and outputs."""

    # How the ViLT step routed the question (as is, translated, not asked), for the BLIP-2
    # step (which then translates nothing again) and the agreement line.
    question_route: gr.State
    # This session's conversation about the current picture (never shared, never kept).
    conversation: gr.State
    # /ask's history and the photo-quality cue, for API users only.
    history_io: gr.JSON
    quality_io: gr.JSON
    # The visitor's page language (from the browser), for the sentences of batched steps.
    language: gr.State
    # The last reading of this session's picture (its text, for the button to answer at
    # once) and the voice its text is read in; /read_text's result for API users.
    reading: gr.State
    reading_voice: gr.Textbox
    reading_io: gr.JSON


def lenient_image(image: gr.Image) -> gr.Image:
    """Let unreadable uploads through to ``vqa_core.load_image``, which explains them.

    Gradio's own preprocessing opens the file with Pillow and fails with a developer's
    traceback on a corrupt or odd file; passing the path on lets ``load_image`` say in plain
    words what is wrong, in each model's column. (Wrapping the instance rather than
    subclassing: Gradio writes a ``.pyi`` stub next to any module defining a component.)
    Which files may be read at all is decided before this, by ``ui.intake``.
    """
    strict = image.preprocess

    def preprocess(payload):
        try:
            return strict(payload)
        except Exception:  # any failure is diagnosed again, for a person, by load_image
            return str(payload.path) if payload is not None and payload.path else None

    image.preprocess = preprocess
    return image


# The kiosk's ready-made questions (ui/text: quick_1 ...), one tap each.
QUICK_QUESTIONS = 6
# A museum's own questions shown as taps, at most (the rest stay in its examples table).
MAX_OWN_QUESTIONS = 6
# "What is written here?" is answered by the text reader, not the models (which read small
# print badly): its tap presses Read the text.
READS_TEXT = 5


def inputs_section(
    text: gr.I18n, *, kiosk: bool = False, own_questions: Sequence[str] = ()
) -> Inputs:
    image = lenient_image(
        gr.Image(
            label=IMAGE_LABEL,
            type="filepath",
            # None hands over the file as uploaded. Gradio's default ("RGB") decodes and
            # converts any other mode itself, dropping alpha (transparent turns black) and
            # clipping 16-bit grey, before vqa_core's intake could composite or stretch it.
            image_mode=None,
            # A kiosk has no files of the visitor's: "upload" would open the file chooser
            # on the kiosk PC's own disk. Its visitors use the camera and the examples.
            sources=["webcam"] if kiosk else ["upload", "webcam", "clipboard"],
            # Gradio mirrors the photo it takes, not only the preview: the models would read
            # signs backwards and swap left and right.
            webcam_options=gr.WebcamOptions(mirror=False),
            # Only for pictures the app hands back (HEIC previews): lossless.
            format="png",
            elem_id="vqa-image",
            height=320,
        )
    )
    question = gr.Textbox(
        # A kiosk has no keyboard to press Enter on; its questions are tapped.
        label=text("question_kiosk" if kiosk else "question"),
        placeholder=text("question_placeholder"),
        lines=1,
        max_lines=3,
        elem_id="vqa-question",
    )
    top_k = gr.Slider(
        1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label=text("top_k"), elem_id="vqa-top-k"
    )
    with gr.Accordion(text("advanced"), open=False, elem_id="vqa-advanced"):
        max_new_tokens = gr.Slider(1, 64, value=10, step=1, label=text("max_new_tokens"))
        beams = gr.Slider(1, 8, value=1, step=1, label=text("beams"))
    if kiosk:
        quick_questions_section(text, own_questions)
    with gr.Row():
        ask = gr.Button(text("ask"), variant="primary", elem_id="vqa-ask", size="lg")
        describe = gr.Button(text("describe"), elem_id="vqa-describe", size="lg")
        read_text = gr.Button(text("read_text"), elem_id="vqa-read-text", size="lg")
        reset = gr.Button(text("start_over"), variant="secondary", elem_id="vqa-reset", size="lg")
    return Inputs(image, question, top_k, max_new_tokens, beams, ask, describe, reset, read_text)


def quick_questions_section(text: gr.I18n, own_questions: Sequence[str] = ()) -> None:
    """Questions to tap, in the page's language: one tap puts it in the box and asks
    (ui/static/page.js, ``vqaQuickAsk``), so a kiosk without a keyboard can ask. A museum's
    own questions (its ``--examples``) follow, as the museum wrote them."""
    with gr.Row(elem_id="vqa-quick-questions"):
        for number in range(1, QUICK_QUESTIONS + 1):
            if number == READS_TEXT:
                js = "() => { const b = document.getElementById('vqa-read-text'); if (b) b.click(); }"
            else:
                js = f"() => window.vqaQuickAsk && window.vqaQuickAsk({number})"
            gr.Button(text(f"quick_{number}"), elem_id=f"vqa-quick-{number}").click(
                None, None, None, js=js
            )
        for number, question in enumerate(dict.fromkeys(own_questions), start=1):
            if number > MAX_OWN_QUESTIONS:
                break
            # json.dumps: the museum's text as a JavaScript string, whatever quotes it holds.
            js = f"() => window.vqaAskText && window.vqaAskText({json.dumps(question)})"
            gr.Button(question, elem_id=f"vqa-own-question-{number}").click(None, None, None, js=js)


def answers_section(text: gr.I18n, services: Services) -> Answers:
    if services.uses_demo:
        # Above the answers, not only in About: shape-trained models answer a photo with
        # confident nonsense, which otherwise reads as a broken app.
        gr.Markdown(text("demo_notice"), elem_id="vqa-demo-notice")
    # The photo-quality sentence: above the answers, read before them.
    quality_note = gr.Markdown(elem_id="vqa-quality")
    framing_note = gr.Markdown(elem_id="vqa-framing")
    # Not equal_height: Gradio then grows every block of the shorter column (BLIP-2's)
    # to match ViLT's list, the heading too, which pushed BLIP-2's answer box down.
    with gr.Row(equal_height=False):
        with gr.Column(elem_id="vqa-vilt-column"):
            gr.Markdown(text("vilt_heading"))
            vilt_label = gr.Label(label=text("vilt_label"), elem_id="vqa-vilt", show_label=True)
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
                # An empty box says what will come, so it does not read as broken.
                placeholder=text("answer_placeholder"),
            )
            blip2_translation = gr.Markdown(elem_id="vqa-blip2-translation")
            blip2_status = gr.Markdown(elem_id="vqa-blip2-status")
    agreement = gr.Markdown(elem_id="vqa-agreement")
    text_found = gr.Markdown(elem_id="vqa-text-found")
    # This session's questions about the picture, oldest first.
    conversation_view = gr.Markdown(elem_id="vqa-conversation")
    return Answers(
        quality_note,
        framing_note,
        vilt_label,
        vilt_translation,
        vilt_status,
        blip2_answer,
        blip2_translation,
        blip2_status,
        agreement,
        text_found,
        conversation_view,
    )


def controls_section(text: gr.I18n, *, accessible: bool) -> Controls:
    with gr.Row(elem_id="vqa-speech"):
        read_aloud = gr.Button(text("read_aloud"), elem_id="vqa-read", size="lg")
        stop_reading = gr.Button(text("stop_reading"), elem_id="vqa-stop", size="lg")
        auto_read = gr.Checkbox(label=text("auto_read"), value=False, elem_id="vqa-auto-read")
    accessible_toggle = gr.Checkbox(
        label=text("accessible_toggle"), value=accessible, elem_id="vqa-accessible-toggle"
    )
    return Controls(read_aloud, stop_reading, auto_read, accessible_toggle)


def examples_section(text: gr.I18n, examples: list[list[str]], inputs: Inputs) -> None:
    if examples:
        table = gr.Examples(
            examples,
            inputs=[inputs.image, inputs.question],
            label=text("examples"),
            elem_id="vqa-examples",
        )
        table.dataset.headers = EXAMPLE_HEADERS


def about_section(text: gr.I18n, services: Services, translator: Translator | None) -> gr.Markdown:
    """The About panel, in English until the page's language is known (``ui.wiring``)."""
    with gr.Accordion(text("about"), open=False, elem_id="vqa-about"):
        return gr.Markdown(about_markdown(services, translator), elem_id="vqa-about-text")


def session_values() -> SessionValues:
    return SessionValues(
        question_route=gr.State(None),
        conversation=gr.State([]),
        history_io=gr.JSON(visible=False),
        quality_io=gr.JSON(visible=False),
        language=gr.State("en"),
        reading=gr.State(None),
        # A component, not a State: the browser's speech step reads it.
        reading_voice=gr.Textbox(visible=False),
        reading_io=gr.JSON(visible=False),
    )
