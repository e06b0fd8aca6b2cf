"""The page's events, each ``trigger -> handler -> outputs`` with its ``api_name``.

One function per feature; all of them run inside the ``gr.Blocks`` that ``ui.page`` builds.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .answering import can_stream
from .handlers import VQAHandlers
from .sections import Answers, Controls, Inputs, SessionValues

__all__ = ["Page", "wire"]

# Pictures decoded at once for the photo check and HEIC previews (each decode is bounded by
# the intake; this bounds how many add up).
INTAKE_CONCURRENCY = 2
# After an answer or a description: read it aloud when the visitor asked for that.
SPEAK_IF_ON = "(on) => { if (on) setTimeout(() => window.vqaSpeak && window.vqaSpeak(), 50); }"
# One BLIP-2 call at a time, in order: a description still running when a question is asked
# lands before that question's answer, never over it.
BLIP2_QUEUE = {"concurrency_id": "blip2"}
# Events that decode the picture outside the models' queues: a few at a time, so a burst of
# large uploads cannot add up in memory.
INTAKE_QUEUE = {"concurrency_id": "intake", "concurrency_limit": INTAKE_CONCURRENCY}
# Tesseract runs on one thread (more ran slower on 2 cores) and one picture at a time, so a
# burst of readings leaves the other core to the models.
OCR_QUEUE = {"concurrency_id": "ocr", "concurrency_limit": 1}
# After a reading: its text spoken in a voice for the text's own language.
SPEAK_TEXT_IF_ON = (
    "(on, voice) => { if (on && voice) setTimeout(() => window.vqaSpeakText && "
    "window.vqaSpeakText('vqa-text-found', voice), 50); }"
)


@dataclass
class Page:
    """The page's components, by section."""

    inputs: Inputs
    answers: Answers
    controls: Controls
    session: SessionValues
    about: gr.Markdown


def wire(
    demo: gr.Blocks,
    page: Page,
    handlers: VQAHandlers,
    *,
    max_batch_size: int,
    auto_describe: bool,
    offer_text: bool = False,
) -> None:
    # Each visitor's page language, once, for the sentences the batched steps write.
    demo.load(
        handlers.page_language,
        outputs=[page.session.language, page.about],
        api_name="page_language",
        api_visibility="undocumented",
        queue=False,
    )
    batch = {"batch": True, "max_batch_size": max_batch_size}
    _wire_asking(page, handlers, batch)
    arrival = _wire_picture(page, handlers)
    _wire_describing(page, handlers, after_arrival=arrival if auto_describe else None)
    _wire_reading(page, handlers, arrival, offer=offer_text)
    _wire_api(page, handlers, batch)
    _wire_controls(page.controls)


def _wire_asking(page: Page, handlers: VQAHandlers, batch: dict) -> None:
    """Ask (or Enter): ViLT, then BLIP-2, then the agreement line and the conversation."""
    inputs, answers, session = page.inputs, page.answers, page.session
    # Clear the previous answers in the browser first, so BLIP-2's column and the agreement
    # line never show the last question's answers next to ViLT's new ones.
    triggers = [inputs.ask.click, inputs.question.submit]
    # Ask waits for its answer: repeated taps would queue repeated runs.
    gr.on(
        triggers=triggers,
        fn=_busy,
        outputs=[inputs.ask],
        api_name="ask_busy",
        api_visibility="undocumented",
        queue=False,
    )
    cleared = gr.on(
        triggers=triggers,
        fn=None,
        outputs=[
            answers.vilt_status,
            answers.blip2_answer,
            answers.blip2_status,
            answers.agreement,
            answers.vilt_translation,
            answers.blip2_translation,
        ],
        # The busy sentence is said once; on a phone the answers come into view.
        js="() => { if (window.vqaAsking) window.vqaAsking(); return ['', '', '', '', '', '']; }",
        queue=False,
    )
    vilt_answered = cleared.then(
        fn=handlers.answering.ask_vilt,
        inputs=[inputs.image, inputs.question, inputs.top_k, session.language],
        outputs=[answers.vilt_label, answers.vilt_status, session.question_route],
        api_name="vilt",
        **batch,
    )
    blip2_answered = _wire_blip2_answer(page, handlers, vilt_answered, batch)
    blip2_answered.then(
        handlers.lines.summarise,
        inputs=[
            answers.vilt_label,
            answers.blip2_answer,
            answers.vilt_status,
            answers.blip2_status,
            session.question_route,
        ],
        outputs=[
            answers.agreement,
            answers.vilt_translation,
            answers.blip2_translation,
            answers.vilt_status,
            answers.blip2_status,
        ],
        api_name="agreement",
        queue=False,
    ).then(
        handlers.conversation.remember,
        inputs=[
            inputs.question,
            answers.vilt_label,
            answers.blip2_answer,
            answers.vilt_status,
            answers.blip2_status,
            session.question_route,
            session.conversation,
        ],
        outputs=[session.conversation, answers.conversation_view],
        api_name="remember",
        api_visibility="undocumented",
        queue=False,
    ).then(None, [page.controls.auto_read], None, js=SPEAK_IF_ON)
    # Whatever happened on the way (.then runs after a failure too), Ask works again.
    blip2_answered.then(
        _ready,
        outputs=[inputs.ask],
        api_name="ask_ready",
        api_visibility="undocumented",
        queue=False,
    )


def _wire_blip2_answer(page: Page, handlers: VQAHandlers, vilt_answered, batch: dict):
    """BLIP-2's step of Ask; returns its event, after which the agreement line is written.

    Where BLIP-2 can stream (ui.answering.can_stream), the page's Ask shows its words as
    they are generated, one visitor's answer at a time in the same BLIP-2 queue, and
    ``/blip2`` stays the batched route for API callers. Elsewhere (a model server, ZeroGPU)
    Ask takes the batched route, whole answers, as before.
    """
    inputs, answers, session = page.inputs, page.answers, page.session
    blip2_inputs = [
        inputs.image,
        inputs.question,
        inputs.max_new_tokens,
        inputs.beams,
        session.question_route,
        session.conversation,
        session.language,
    ]
    blip2_outputs = [answers.blip2_answer, answers.blip2_status]
    if not can_stream(handlers.answering.services.blip2):
        return vilt_answered.then(
            handlers.answering.answer_blip2,
            inputs=blip2_inputs,
            outputs=blip2_outputs,
            api_name="blip2",
            **BLIP2_QUEUE,
            **batch,
        )
    gr.Button(visible=False).click(
        handlers.answering.answer_blip2,
        inputs=blip2_inputs,
        outputs=blip2_outputs,
        api_name="blip2",
        **BLIP2_QUEUE,
        **batch,
    )
    # The words so far replace each other in BLIP-2's box, which is no live region; the
    # screen reader and speech get the finished answer once, in the agreement line after.
    return vilt_answered.then(
        handlers.answering.stream_blip2,
        inputs=blip2_inputs,
        outputs=blip2_outputs,
        api_name="blip2_stream",
        api_visibility="undocumented",
        **BLIP2_QUEUE,
    )


def _busy() -> gr.Button:
    return gr.Button(interactive=False)


def _ready() -> gr.Button:
    return gr.Button(interactive=True)


def _describe_outputs(page: Page) -> list:
    answers = page.answers
    return [
        answers.blip2_answer,
        answers.blip2_status,
        answers.agreement,
        answers.quality_note,
        page.session.conversation,
        answers.conversation_view,
    ]


def _wire_describing(page: Page, handlers: VQAHandlers, *, after_arrival=None) -> None:
    """Describe: BLIP-2's caption, no question; in kiosk and accessible modes also right
    after a picture's arrival has been handled (``after_arrival``)."""
    inputs, answers = page.inputs, page.answers
    inputs.describe.click(
        fn=None,
        outputs=[
            answers.blip2_status,
            answers.agreement,
            answers.vilt_translation,
            answers.blip2_translation,
        ],
        js="() => ['', '', '', '']",
        queue=False,
    ).then(
        handlers.describing.stream_page,
        inputs=[inputs.image, page.session.conversation],
        outputs=_describe_outputs(page),
        api_name="describe_page",
        api_visibility="undocumented",
        **BLIP2_QUEUE,
    ).then(None, [page.controls.auto_read], None, js=SPEAK_IF_ON)
    if after_arrival is not None:
        after_arrival.then(
            handlers.describing.stream_arrival,
            inputs=[inputs.image, page.session.conversation],
            outputs=_describe_outputs(page),
            api_name="describe_arrival",
            api_visibility="undocumented",
            **BLIP2_QUEUE,
        ).then(None, [page.controls.auto_read], None, js=SPEAK_IF_ON)


def _wire_picture(page: Page, handlers: VQAHandlers):
    """A picture arrives or goes: its photo check, a new conversation; HEIC previews;
    Start over (which in kiosk mode deletes the picture no one else shows). Returns the
    arrival event."""
    inputs, answers, session = page.inputs, page.answers, page.session
    arrival = inputs.image.change(
        handlers.pictures.new_picture,
        inputs=[inputs.image],
        outputs=[
            answers.quality_note,
            session.conversation,
            answers.conversation_view,
            answers.vilt_label,
            answers.vilt_status,
            answers.blip2_answer,
            answers.blip2_status,
            answers.agreement,
            answers.vilt_translation,
            answers.blip2_translation,
        ],
        api_name="new_picture",
        api_visibility="undocumented",
        **INTAKE_QUEUE,
    )
    inputs.image.upload(
        handlers.pictures.browser_preview,
        inputs=[inputs.image],
        outputs=[inputs.image],
        api_name="preview",
        **INTAKE_QUEUE,
    )
    inputs.reset.click(
        handlers.pictures.reset,
        inputs=[inputs.image],
        outputs=[
            inputs.image,
            inputs.question,
            answers.vilt_label,
            answers.vilt_status,
            answers.blip2_answer,
            answers.blip2_status,
            answers.agreement,
            session.conversation,
            answers.conversation_view,
            answers.quality_note,
        ],
        api_name="reset",
        queue=False,
    ).then(
        None,
        None,
        [
            answers.vilt_translation,
            answers.blip2_translation,
            answers.text_found,
            answers.framing_note,
            session.reading,
        ],
        js="() => ['', '', '', '', null]",
        queue=False,
    )
    return arrival


def _wire_reading(page: Page, handlers: VQAHandlers, arrival, *, offer: bool) -> None:
    """Read the text: on the button, and on each picture's arrival (the framing cue in the
    photo-check line; in kiosk and accessible modes the text itself, offered at once)."""
    inputs, answers, session = page.inputs, page.answers, page.session
    outputs = [answers.text_found, answers.framing_note, session.reading_voice, session.reading]
    inputs.read_text.click(
        handlers.reading.read_page,
        inputs=[inputs.image, session.reading],
        outputs=outputs,
        api_name="read_text_page",
        api_visibility="undocumented",
        **OCR_QUEUE,
    ).then(None, [page.controls.auto_read, session.reading_voice], None, js=SPEAK_TEXT_IF_ON)
    handlers.reading.offer_on_arrival = offer
    arrival.then(
        handlers.reading.read_arrival,
        inputs=[inputs.image, session.reading],
        outputs=outputs,
        api_name="read_arrival",
        api_visibility="undocumented",
        **OCR_QUEUE,
    ).then(None, [page.controls.auto_read, session.reading_voice], None, js=SPEAK_TEXT_IF_ON)


def _wire_api(page: Page, handlers: VQAHandlers, batch: dict) -> None:
    """/answer, /ask and /describe: for gradio_client users, bound to no visible control."""
    inputs, answers, session = page.inputs, page.answers, page.session
    settings = [inputs.top_k, inputs.max_new_tokens, inputs.beams]
    both = [answers.vilt_label, answers.vilt_status, answers.blip2_answer, answers.blip2_status]
    gr.Button(visible=False).click(
        handlers.answering.answer_both,
        inputs=[inputs.image, inputs.question, *settings],
        outputs=[*both, answers.agreement],
        api_name="answer",
        **batch,
    )
    # /answer with a conversation history (BLIP-2 reads it), handed back extended.
    gr.Button(visible=False).click(
        handlers.answering.ask,
        inputs=[inputs.image, inputs.question, *settings, session.history_io],
        outputs=[*both, answers.agreement, session.history_io, session.quality_io],
        api_name="ask",
        **batch,
    )
    # BLIP-2's caption of the picture and the photo-quality cue.
    gr.Button(visible=False).click(
        handlers.describing.describe,
        inputs=[inputs.image, inputs.max_new_tokens, inputs.beams],
        outputs=[answers.blip2_answer, answers.blip2_status, session.quality_io],
        api_name="describe",
        **batch,
    )
    # The text in the picture, line by line with boxes, and the framing cue.
    gr.Button(visible=False).click(
        handlers.reading.read_api,
        inputs=[inputs.image],
        outputs=[session.reading_io],
        api_name="read_text",
        **OCR_QUEUE,
    )


def _wire_controls(controls: Controls) -> None:
    """Speech and the high-contrast switch run in the browser alone."""
    controls.read_aloud.click(None, None, None, js="() => window.vqaSpeak && window.vqaSpeak()")
    controls.stop_reading.click(
        None, None, None, js="() => window.vqaStopSpeaking && window.vqaStopSpeaking()"
    )
    controls.accessible_toggle.change(
        None,
        [controls.accessible_toggle],
        None,
        js="(on) => window.vqaSetAccessible && window.vqaSetAccessible(on)",
    )
