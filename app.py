"""Visual question answering, side by side: ViLT's top-k next to BLIP-2's free text.

``python app.py`` serves the embedded default (or whatever ``VQA_VILT_MODEL`` /
``VQA_BLIP2_MODEL`` name) on 127.0.0.1, or on ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
when set (as on a Hugging Face Space). ``--kiosk`` and ``--accessible`` switch modes.
This file reads the arguments, loads the models once and launches the page (``ui``).
"""

from __future__ import annotations

import os

# Offline-safe by default: no analytics, no telemetry, unless the user says otherwise.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# PyTorch puts its large CPU tensors (the weights) on transparent huge pages only when this
# is set before it allocates anything: measured 8 % faster BLIP-2 answers in bf16 and int8
# on this project's CPU (docs/performance.md). THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import argparse
import logging
import sys
import threading
from collections.abc import Sequence

from ui import build_demo, launch_kwargs
from ui.page import DEFAULT_IDLE_RESET_SECONDS, DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_SIZE
from ui.zerogpu import ZeroGPU
from vqa_core import VQAError, load_services
from vqa_core.translation import load_translator


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
        "--translation",
        default=None,
        help="Arabic questions: auto|off|demo|real, a pair 'INTO_EN,OUT_OF_EN' of hub ids or "
        "folders, or a folder with ar-en/ and en-ar/ (default: $VQA_TRANSLATION or auto)",
    )
    parser.add_argument(
        "--device", default=os.environ.get("VQA_DEVICE", "auto"), help="auto|cpu|cuda|mps"
    )
    parser.add_argument(
        "--dtype", default=os.environ.get("VQA_DTYPE", "auto"), help="auto|float32|float16|bfloat16"
    )
    parser.add_argument(
        "--only",
        choices=("vilt", "blip2"),
        default=os.environ.get("VQA_ONLY") or None,
        help="load one model only, e.g. on a machine where BLIP-2 does not fit (default: $VQA_ONLY)",
    )
    parser.add_argument(
        "--quantization",
        default=os.environ.get("VQA_QUANTIZATION", "auto"),
        help="auto|none|int8|8bit|4bit (auto: int8 only where float weights would not fit)",
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
        "--no-auto-describe",
        dest="auto_describe",
        action="store_false",
        help="kiosk and accessible modes: do not describe each picture as it arrives",
    )
    parser.add_argument(
        "--examples",
        default=os.environ.get("VQA_EXAMPLES") or None,
        metavar="DIR",
        help="a folder of your own pictures with an examples.jsonl of questions, shown "
        "instead of the built-in examples (default: $VQA_EXAMPLES)",
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
    parser.add_argument(
        "--backend",
        default=os.environ.get("VQA_BACKEND") or None,
        metavar="URL",
        help="answer with the models on a model server (Ray Serve, `make serve`) at URL "
        "instead of loading them here (default: $VQA_BACKEND)",
    )
    parser.add_argument(
        "--backend-timeout",
        type=float,
        default=float(os.environ.get("VQA_BACKEND_TIMEOUT", "30")),
        help="seconds each request to the model server may take (default 30)",
    )
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE)
    args = parser.parse_args(argv)
    if args.idle_reset < 5:
        parser.error("--idle-reset must be at least 5 seconds")
    if args.backend and (args.vilt or args.blip2):
        parser.error(
            "--vilt/--blip2 choose the models loaded here; with --backend the model server "
            "chooses them (make serve VILT=... BLIP2=...)"
        )
    if args.backend_timeout <= 0:
        parser.error("--backend-timeout must be a positive number of seconds")
    return args


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Request logs would carry file names; the app keeps no record of what people ask.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Before loading: on a ZeroGPU Space, spaces must patch torch before models go to CUDA.
    zero_gpu = ZeroGPU.detect()
    try:
        if args.backend:
            from serving.client import load_remote_services

            print(f"Backend: the model server at {args.backend} (Ray Serve)", flush=True)
            services = load_remote_services(args.backend, timeout=args.backend_timeout)
        else:
            services = load_services(
                args.vilt,
                args.blip2,
                device=args.device,
                dtype=args.dtype,
                quantization=args.quantization,
                only=args.only,
            )
    except (VQAError, ValueError) as err:  # an impossible device, precision or backend URL
        print(f"app.py: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    for title, answerer, error in (
        ("ViLT", services.vilt, services.vilt_error),
        ("BLIP-2", services.blip2, services.blip2_error),
    ):
        # What vqa_core.fit chose and why (needs, free memory); remote services have no plan.
        plan = getattr(services, "vilt_plan" if title == "ViLT" else "blip2_plan", None)
        if answerer is not None and plan is not None:
            print(f"{title}: {answerer.name} on {plan.describe()} ({plan.reason})", flush=True)
        elif answerer is not None:
            print(f"{title}: {answerer.name} on {answerer.placement.describe()}", flush=True)
        else:
            print(f"{title}: unavailable ({error})", flush=True)
    translator, translation_choice, translation_error = load_translator(
        args.translation, device=args.device, dtype=args.dtype
    )
    zero_gpu.wrap(services, translator)  # before the label warm-up below and launch
    if translator is not None:
        print(f"Translation: {translator.name}", flush=True)
        if services.vilt is not None:
            # ViLT's answer vocabulary, translated once (or read from the disk cache) while
            # the page starts; an answer asked before it ends translates its own labels.
            threading.Thread(
                target=translator.warm_labels, args=(services.vilt.labels,), daemon=True
            ).start()
    else:
        reason = translation_error or (translation_choice.reason if translation_choice else "")
        print(f"Translation: off ({reason})", flush=True)
    demo = build_demo(
        services,
        translator=translator,
        kiosk=args.kiosk,
        accessible=args.accessible,
        idle_reset_seconds=args.idle_reset,
        max_batch_size=args.max_batch_size,
        queue_size=args.queue_size,
        auto_describe=(args.kiosk or args.accessible) and args.auto_describe,
        examples_dir=args.examples,
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
