"""Visual question answering, side by side: ViLT's top-k next to BLIP-2's free text.

``python app.py`` serves the embedded default (or whatever ``VQA_VILT_MODEL`` /
``VQA_BLIP2_MODEL`` name) on 127.0.0.1, or on ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
when set (as on a Hugging Face Space). ``--kiosk`` and ``--accessible`` switch modes.
Models are loaded once, in ``main()``; ``build_demo`` takes them as arguments so tests can
hand in tiny ones. The logic lives in ``vqa_core``; this file only wires.
"""

from __future__ import annotations

import os

# Offline-safe by default: no analytics, no telemetry, unless the user says otherwise.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import json
import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from vqa_core import Services, VQAError, clean_question, load_image, load_services
from vqa_core.agreement import (
    format_timing,
    label_value,
    message,
    pick_language,
    summary_line,
)
from vqa_core.app_text import TRANSLATIONS

logger = logging.getLogger("vqa_app")

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
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
DEFAULT_TOP_K = 5
MAX_TOP_K = 10
DEFAULT_IDLE_RESET_SECONDS = 90
DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_QUEUE_SIZE = 32
MAX_FILE_SIZE = "10mb"
# Suffixes of HEIF pictures (iPhones save .heic), which most browsers cannot draw.
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
# In kiosk mode a swapped-out HEIC original (which carries the phone's EXIF, location
# included) is deleted this long after the swap, not at once: an Ask pressed while the swap
# was on its way still names the original and must find it.
HEIC_ORIGINAL_GRACE_SECONDS = 30.0
IMAGE_LABEL = "Image (upload, camera or paste)"
# Gradio's Examples table shows I18n headers as raw keys, so its headers are plain text.
EXAMPLE_HEADERS = ["Image", "Question"]
# Gradio's delete_cache (check every N s, delete files older than M s): uploads are kept only
# as long as someone might still be asking about them; on a kiosk, minutes.
KIOSK_CACHE_SECONDS = (60, 300)
CACHE_SECONDS = (600, 3600)

i18n = gr.I18n(**TRANSLATIONS)


# ---------------------------------------------------------------------------------------
# Plain functions: batched per model, each item validated on its own so one bad upload
# does not fail its neighbours in the batch.
# ---------------------------------------------------------------------------------------


def _prepare(images: Sequence[Any], questions: Sequence[str]) -> tuple[list, list[str | None]]:
    """Per item: (picture, question) or an error message, never an exception."""
    prepared, errors = [], []
    for image, question in zip(images, questions):
        if image is None:
            prepared.append(None)
            errors.append(message("no_image"))
            continue
        try:
            prepared.append((load_image(image), clean_question(question)))
            errors.append(None)
        except VQAError as err:
            prepared.append(None)
            errors.append(str(err))
    return prepared, errors


def _reason(err: Exception) -> str:
    """A person's message for a model failure; anything unforeseen is logged, not shown."""
    if isinstance(err, VQAError):
        return str(err)
    logger.error("Unexpected model failure", exc_info=err)
    return "an unexpected error; the server log has the details. Please try again."


def _warn(text: str) -> str:
    return f"⚠️ {text}"


class VQAHandlers:
    """The functions the events call, bound to one set of loaded services."""

    def __init__(
        self,
        services: Services,
        *,
        cache_dir: str | None = None,
        original_grace_seconds: float = HEIC_ORIGINAL_GRACE_SECONDS,
    ):
        self.services = services
        # Set in kiosk mode: uploads under this folder are deleted on reset.
        self.cache_dir = Path(cache_dir).resolve() if cache_dir else None
        self.original_grace_seconds = original_grace_seconds

    # ViLT ------------------------------------------------------------------------------
    def answer_vilt(
        self, images: list, questions: list[str], top_ks: list[float]
    ) -> tuple[list, list]:
        return self._vilt(images, questions, top_ks)

    def _vilt(self, images, questions, top_ks, prepared=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.vilt is None:
            reason = services.vilt_error or "it was not loaded"
            return [None] * count, [
                _warn(message("unavailable", model="ViLT", reason=reason))
            ] * count
        prepared, errors = prepared or _prepare(images, questions)
        labels: list = [None] * count
        statuses = [_warn(e) if e else "" for e in errors]
        ready = [i for i, item in enumerate(prepared) if item is not None]
        if ready:
            top_k = max(int(top_ks[i] or DEFAULT_TOP_K) for i in ready)
            try:
                results = services.vilt.answer_batch(
                    [prepared[i][0] for i in ready], [prepared[i][1] for i in ready], top_k=top_k
                )
            except Exception as err:
                for i in ready:
                    statuses[i] = _warn(message("failed", model="ViLT", reason=_reason(err)))
            else:
                for i, result in zip(ready, results):
                    labels[i] = label_value(result.answers[: int(top_ks[i] or DEFAULT_TOP_K)])
                    statuses[i] = format_timing(
                        _short_name(result.model), result.seconds, result.batch_size
                    )
        return labels, statuses

    # BLIP-2 ----------------------------------------------------------------------------
    def answer_blip2(
        self,
        images: list,
        questions: list[str],
        max_new_tokens: list[float],
        beams: list[float],
    ) -> tuple[list, list]:
        return self._blip2(images, questions, max_new_tokens, beams)

    def _blip2(self, images, questions, max_new_tokens, beams, prepared=None) -> tuple[list, list]:
        count = len(images)
        services = self.services
        if services.blip2 is None:
            reason = services.blip2_error or "it was not loaded"
            return [""] * count, [
                _warn(message("unavailable", model="BLIP-2", reason=reason))
            ] * count
        prepared, errors = prepared or _prepare(images, questions)
        answers = [""] * count
        statuses = [_warn(e) if e else "" for e in errors]
        # Items with the same decoding settings share one generate() call.
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, item in enumerate(prepared):
            if item is not None:
                groups[(int(max_new_tokens[i] or 10), int(beams[i] or 1))].append(i)
        for (tokens, num_beams), members in groups.items():
            try:
                results = services.blip2.answer_batch(
                    [prepared[i][0] for i in members],
                    [prepared[i][1] for i in members],
                    max_new_tokens=tokens,
                    num_beams=num_beams,
                )
            except Exception as err:
                for i in members:
                    statuses[i] = _warn(message("failed", model="BLIP-2", reason=_reason(err)))
                continue
            for i, result in zip(members, results):
                answers[i] = result.answer
                statuses[i] = format_timing(
                    _short_name(result.model), result.seconds, result.batch_size
                )
        return answers, statuses

    # Both, for API users ---------------------------------------------------------------
    def answer_both(
        self,
        images: list,
        questions: list[str],
        top_ks: list[float],
        max_new_tokens: list[float],
        beams: list[float],
    ) -> tuple[list, list, list, list, list]:
        # One intake for both models: a phone photo is decoded once, not twice.
        prepared = _prepare(images, questions)
        labels, vilt_statuses = self._vilt(images, questions, top_ks, prepared)
        answers, blip2_statuses = self._blip2(images, questions, max_new_tokens, beams, prepared)
        lines = [
            self._line(
                label,
                answer,
                vilt_ok=label is not None,
                blip2_ok=bool(status) and not status.startswith("⚠"),
            )
            for label, answer, status in zip(labels, answers, blip2_statuses)
        ]
        return labels, vilt_statuses, answers, blip2_statuses, lines

    @staticmethod
    def _line(
        label: dict | None, answer: str | None, *, vilt_ok: bool, blip2_ok: bool, lang: str = "en"
    ) -> str:
        vilt_answers = list(label.items()) if (vilt_ok and label) else None
        return summary_line(vilt_answers, answer if blip2_ok else None, lang)

    def agreement(
        self, label: dict | None, answer: str | None, blip2_status: str | None, request: gr.Request
    ) -> str:
        lang = pick_language(request.headers.get("accept-language") if request else None)
        blip2_ok = bool(blip2_status) and not str(blip2_status).startswith("⚠")
        return self._line(label, answer, vilt_ok=bool(label), blip2_ok=blip2_ok, lang=lang)

    def reset(self, image: str | None):
        """Back to the start screen; in kiosk mode this session's upload is deleted too."""
        self._forget(image)
        return (None, "", None, "", "", "", "")

    def browser_preview(self, image: str | None):
        """A HEIC upload (an iPhone's own format) swapped for a picture any browser can draw.

        Only Safari draws HEIC; elsewhere the preview is a broken icon. The swap is the
        intake's own RGB picture, which Gradio stores losslessly (the Image's format is PNG),
        so the models see the same pixels either way.
        """
        if not image or Path(image).suffix.lower() not in HEIF_SUFFIXES:
            return gr.skip()
        try:
            picture = load_image(image)
        except VQAError:
            return gr.skip()  # the answer columns explain it when the question is asked
        if self.cache_dir is not None:
            forget = threading.Timer(self.original_grace_seconds, self._forget, args=(image,))
            forget.daemon = True
            forget.start()
        return picture

    def _forget(self, image: str | None) -> None:
        """In kiosk mode, delete an upload of this session now rather than at cache expiry."""
        if self.cache_dir is not None and image:
            path = Path(image).resolve()
            if path.is_relative_to(self.cache_dir):
                path.unlink(missing_ok=True)


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


def _short_name(source: str) -> str:
    path = Path(str(source))
    return path.name if path.name else str(source)


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------


def about_markdown(services: Services) -> str:
    """Which checkpoints, on which device and precision, and why."""
    rows = []
    for title, answerer, choice, error in (
        ("ViLT", services.vilt, services.vilt_choice, services.vilt_error),
        ("BLIP-2", services.blip2, services.blip2_choice, services.blip2_error),
    ):
        source = choice.source if choice else (answerer.name if answerer else "—")
        if answerer is not None:
            where = answerer.placement.describe()
            rows.append(
                f"- **{title}**: `{source}` on {where}" + (f" ({choice.reason})" if choice else "")
            )
        else:
            rows.append(f"- **{title}**: not loaded: {error or 'unknown reason'}")
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


def _examples(services: Services) -> list[list[str]]:
    chosen = DEMO_EXAMPLES if services.uses_demo or not _any_real(services) else PHOTO_EXAMPLES
    return [
        [str(EXAMPLES_DIR / path), question]
        for path, question in chosen
        if (EXAMPLES_DIR / path).is_file()
    ]


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
) -> gr.Blocks:
    """The Blocks app for ``services``; call ``.launch(**launch_kwargs(...))`` on it."""
    with gr.Blocks(
        title="Visual question answering, side by side",
        delete_cache=KIOSK_CACHE_SECONDS if kiosk else CACHE_SECONDS,
        analytics_enabled=False,
    ) as demo:
        handlers = VQAHandlers(services, cache_dir=demo.GRADIO_CACHE if kiosk else None)
        gr.Markdown(i18n("title"), elem_id="vqa-title")
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
                    label=i18n("question"),
                    placeholder=i18n("question_placeholder"),
                    lines=1,
                    max_lines=3,
                    elem_id="vqa-question",
                )
                top_k = gr.Slider(
                    1,
                    MAX_TOP_K,
                    value=DEFAULT_TOP_K,
                    step=1,
                    label=i18n("top_k"),
                    elem_id="vqa-top-k",
                )
                with gr.Accordion(i18n("advanced"), open=False, elem_id="vqa-advanced"):
                    max_new_tokens = gr.Slider(
                        1, 64, value=10, step=1, label=i18n("max_new_tokens")
                    )
                    beams = gr.Slider(1, 8, value=1, step=1, label=i18n("beams"))
                with gr.Row():
                    ask = gr.Button(i18n("ask"), variant="primary", elem_id="vqa-ask", size="lg")
                    reset = gr.Button(
                        i18n("start_over"), variant="secondary", elem_id="vqa-reset", size="lg"
                    )
            with gr.Column(scale=2, min_width=320, elem_id="vqa-answers"):
                with gr.Row(equal_height=True):
                    with gr.Column(elem_id="vqa-vilt-column"):
                        gr.Markdown(i18n("vilt_heading"))
                        vilt_label = gr.Label(
                            label=i18n("vilt_label"), elem_id="vqa-vilt", show_label=True
                        )
                        vilt_status = gr.Markdown(elem_id="vqa-vilt-status")
                    with gr.Column(elem_id="vqa-blip2-column"):
                        gr.Markdown(i18n("blip2_heading"))
                        blip2_answer = gr.Textbox(
                            label=i18n("blip2_label"),
                            interactive=False,
                            elem_id="vqa-blip2",
                            lines=2,
                        )
                        blip2_status = gr.Markdown(elem_id="vqa-blip2-status")
                agreement = gr.Markdown(elem_id="vqa-agreement")
                with gr.Row(elem_id="vqa-speech"):
                    read_aloud = gr.Button(i18n("read_aloud"), elem_id="vqa-read", size="lg")
                    stop_reading = gr.Button(i18n("stop_reading"), elem_id="vqa-stop", size="lg")
                    auto_read = gr.Checkbox(
                        label=i18n("auto_read"), value=False, elem_id="vqa-auto-read"
                    )
                accessible_toggle = gr.Checkbox(
                    label=i18n("accessible_toggle"),
                    value=accessible,
                    elem_id="vqa-accessible-toggle",
                )
        examples = _examples(services)
        if examples:
            example_table = gr.Examples(
                examples, inputs=[image, question], label=i18n("examples"), elem_id="vqa-examples"
            )
            example_table.dataset.headers = EXAMPLE_HEADERS
        with gr.Accordion(i18n("about"), open=False, elem_id="vqa-about"):
            gr.Markdown(about_markdown(services))

        batch = {"batch": True, "max_batch_size": max_batch_size}
        # Clear the previous answers in the browser first, so BLIP-2's column and the
        # agreement line never show the last question's answers next to ViLT's new ones.
        ask_event = gr.on(
            triggers=[ask.click, question.submit],
            fn=None,
            outputs=[vilt_status, blip2_answer, blip2_status, agreement],
            js="() => ['', '', '', '']",
            queue=False,
        ).then(
            fn=handlers.answer_vilt,
            inputs=[image, question, top_k],
            outputs=[vilt_label, vilt_status],
            api_name="vilt",
            **batch,
        )
        blip2_event = ask_event.then(
            handlers.answer_blip2,
            inputs=[image, question, max_new_tokens, beams],
            outputs=[blip2_answer, blip2_status],
            api_name="blip2",
            **batch,
        )
        blip2_event.then(
            handlers.agreement,
            inputs=[vilt_label, blip2_answer, blip2_status],
            outputs=[agreement],
            api_name="agreement",
            queue=False,
        ).then(
            None,
            [auto_read],
            None,
            js="(on) => { if (on) setTimeout(() => window.vqaSpeak && window.vqaSpeak(), 50); }",
        )

        # /answer: both models in one call for gradio_client users; not bound to a visible control.
        api_trigger = gr.Button(visible=False)
        api_trigger.click(
            handlers.answer_both,
            inputs=[image, question, top_k, max_new_tokens, beams],
            outputs=[vilt_label, vilt_status, blip2_answer, blip2_status, agreement],
            api_name="answer",
            **batch,
        )

        image.upload(
            handlers.browser_preview,
            inputs=[image],
            outputs=[image],
            api_name="preview",
            queue=False,
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
            ],
            api_name="reset",
            queue=False,
        )
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
    from vqa_core.app_text import page_css, page_js

    options = {"kiosk": kiosk, "accessible": accessible, "idleResetSeconds": idle_reset_seconds}
    return {
        "theme": page_theme(kiosk=kiosk),
        "css": page_css(kiosk=kiosk),
        "js": page_js(json.dumps(options)),
        "i18n": i18n,
        "max_file_size": MAX_FILE_SIZE,
        "footer_links": [] if kiosk else ["api", "gradio"],
        # Gradio would otherwise keep every question and image in the browser's run history,
        # which on a shared kiosk the next visitor could open.
        "run_history": False,
        "show_error": True,
        "ssr_mode": False,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vilt",
        default=None,
        help="hub id, local folder, or auto|demo|real (default: $VQA_VILT_MODEL or auto)",
    )
    parser.add_argument(
        "--blip2",
        default=None,
        help="hub id, local folder, or auto|demo|real (default: $VQA_BLIP2_MODEL or auto)",
    )
    parser.add_argument(
        "--device", default=os.environ.get("VQA_DEVICE", "auto"), help="auto|cpu|cuda|mps"
    )
    parser.add_argument(
        "--dtype", default=os.environ.get("VQA_DTYPE", "auto"), help="auto|float32|float16|bfloat16"
    )
    parser.add_argument(
        "--kiosk",
        action="store_true",
        default=_env_flag("VQA_KIOSK"),
        help="full-screen kiosk: no footer links, idle reset, uploads deleted",
    )
    parser.add_argument(
        "--accessible",
        action="store_true",
        default=_env_flag("VQA_ACCESSIBLE"),
        help="start in high-contrast, large-text mode",
    )
    parser.add_argument(
        "--idle-reset",
        type=int,
        default=int(os.environ.get("VQA_IDLE_RESET_SECONDS", DEFAULT_IDLE_RESET_SECONDS)),
        help="kiosk: seconds of inactivity before the page resets",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE)
    args = parser.parse_args(argv)
    if args.idle_reset < 5:
        parser.error("--idle-reset must be at least 5 seconds")
    return args


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Request logs would carry file names; the app keeps no record of what people ask.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        services = load_services(args.vilt, args.blip2, device=args.device, dtype=args.dtype)
    except (VQAError, ValueError) as err:  # an impossible device or precision request
        print(f"app.py: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    for title, answerer, error in (
        ("ViLT", services.vilt, services.vilt_error),
        ("BLIP-2", services.blip2, services.blip2_error),
    ):
        if answerer is not None:
            print(f"{title}: {answerer.name} on {answerer.placement.describe()}", flush=True)
        else:
            print(f"{title}: unavailable ({error})", flush=True)
    demo = build_demo(
        services,
        kiosk=args.kiosk,
        accessible=args.accessible,
        idle_reset_seconds=args.idle_reset,
        max_batch_size=args.max_batch_size,
        queue_size=args.queue_size,
    )
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        **launch_kwargs(
            kiosk=args.kiosk, accessible=args.accessible, idle_reset_seconds=args.idle_reset
        ),
    )


if __name__ == "__main__":
    main()
