"""The page's events, each ``trigger -> handler -> outputs`` with its ``api_name``.

One function per feature; all of them run inside the ``gr.Blocks`` that ``ui.page`` builds.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .events import language_of
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


@dataclass
class Page:
    """The page's components, by section."""

    inputs: Inputs
    answers: Answers
    controls: Controls
    session: SessionValues


def wire(
    demo: gr.Blocks,
    page: Page,
    handlers: VQAHandlers,
    *,
    max_batch_size: int,
    auto_describe: bool,
) -> None:
    # Each visitor's page language, once, for the sentences the batched steps write.
    demo.load(
        language_of,
        outputs=[page.session.language],
        api_name="page_language",
        api_visibility="undocumented",
        queue=False,
    )
    batch = {"batch": True, "max_batch_size": max_batch_size}
    _wire_asking(page, handlers, batch)
    arrival = _wire_picture(page, handlers)
    _wire_describing(page, handlers, after_arrival=arrival if auto_describe else None)
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
    blip2_answered = vilt_answered.then(
        handlers.answering.answer_blip2,
        inputs=[
            inputs.image,
            inputs.question,
            inputs.max_new_tokens,
            inputs.beams,
            session.question_route,
            session.conversation,
            session.language,
        ],
        outputs=[answers.blip2_answer, answers.blip2_status],
        api_name="blip2",
        **BLIP2_QUEUE,
        **batch,
    )
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
        handlers.describing.describe_page,
        inputs=[inputs.image, page.session.conversation],
        outputs=_describe_outputs(page),
        api_name="describe_page",
        api_visibility="undocumented",
        **BLIP2_QUEUE,
    ).then(None, [page.controls.auto_read], None, js=SPEAK_IF_ON)
    if after_arrival is not None:
        after_arrival.then(
            handlers.describing.describe_arrival,
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
        [answers.vilt_translation, answers.blip2_translation],
        js="() => ['', '']",
        queue=False,
    )
    return arrival


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
