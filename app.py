"""Visual question answering, side by side: ViLT's top-k next to BLIP-2's free text.

``python app.py`` serves the embedded default (or whatever ``VQA_VILT_MODEL`` /
``VQA_BLIP2_MODEL`` name) on 127.0.0.1, or on ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
when set (as on a Hugging Face Space). ``--kiosk`` and ``--accessible`` switch modes.
This file reads the settings, loads the models once and launches the page (``ui``).
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

import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ui import build_demo, launch_kwargs
from ui.page import DEFAULT_IDLE_RESET_SECONDS, DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_SIZE
from ui.zerogpu import ZeroGPU
from vqa_core import Services, VQAError, load_services
from vqa_core.ocr import tesseract_available
from vqa_core.translation import load_translator


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class AppSettings:
    """Every setting of the app; each also comes from the environment variable its help
    names (a Space sets those), and a command-line flag overrides it."""

    vilt: str | None = field(
        default=None, metadata=_help("hub id, local folder, or auto|demo|real ($VQA_VILT_MODEL)")
    )
    blip2: str | None = field(
        default=None, metadata=_help("hub id, local folder, or auto|demo|real ($VQA_BLIP2_MODEL)")
    )
    translation: str | None = field(
        default=None,
        metadata=_help(
            "Arabic questions: auto|off|demo|real, a pair 'INTO_EN,OUT_OF_EN' of hub ids or "
            "folders, or a folder with ar-en/ and en-ar/ ($VQA_TRANSLATION, default auto)"
        ),
    )
    device: str = field(default="auto", metadata=_help("auto|cpu|cuda|mps ($VQA_DEVICE)"))
    dtype: str = field(default="auto", metadata=_help("auto|float32|float16|bfloat16 ($VQA_DTYPE)"))
    only: Literal["vilt", "blip2"] | None = field(
        default=None,
        metadata=_help("load one model only, e.g. where BLIP-2 does not fit ($VQA_ONLY)"),
    )
    quantization: str = field(
        default="auto",
        metadata=_help(
            "auto|none|int8|int4|8bit|4bit (auto: int8 where float weights would not fit, "
            "then int4 for BLIP-2's language model on CPU) "
            "($VQA_QUANTIZATION)"
        ),
    )
    compile: bool = field(
        default=False,
        metadata=_help(
            "BLIP-2 decodes with a static KV cache, compiled on a GPU: faster answers after a "
            "first one that waits for the compilation ($VQA_COMPILE)"
        ),
    )
    kiosk: bool = field(
        default=False,
        metadata=_help(
            "full-screen kiosk: no footer links, idle reset, uploads deleted ($VQA_KIOSK)"
        ),
    )
    accessible: bool = field(
        default=False, metadata=_help("start in high-contrast, large-text mode ($VQA_ACCESSIBLE)")
    )
    auto_describe: bool = field(
        default=True,
        metadata=_help("kiosk and accessible modes: describe each picture as it arrives"),
    )
    examples: str | None = field(
        default=None,
        metadata=_help(
            "a folder of your own pictures with an examples.jsonl of questions, shown instead "
            "of the built-in examples ($VQA_EXAMPLES)"
        ),
    )
    idle_reset: int = field(
        default=DEFAULT_IDLE_RESET_SECONDS,
        metadata=_help(
            "kiosk: seconds of inactivity before the page resets ($VQA_IDLE_RESET_SECONDS)"
        ),
    )
    host: str = field(
        default="127.0.0.1", metadata=_help("address to serve on ($GRADIO_SERVER_NAME)")
    )
    port: int = field(default=7860, metadata=_help("port to serve on ($GRADIO_SERVER_PORT)"))
    backend: str | None = field(
        default=None,
        metadata=_help(
            "answer with the models on a model server (Ray Serve, `make serve`) at this URL "
            "instead of loading them here ($VQA_BACKEND)"
        ),
    )
    backend_timeout: float = field(
        default=30.0,
        metadata=_help("seconds each request to the model server may take ($VQA_BACKEND_TIMEOUT)"),
    )
    max_batch_size: int = field(default=DEFAULT_MAX_BATCH_SIZE, metadata=_help("per model call"))
    queue_size: int = field(default=DEFAULT_QUEUE_SIZE, metadata=_help("questions waiting at most"))

    def __post_init__(self) -> None:
        if self.idle_reset < 5:
            raise ValueError("--idle-reset must be at least 5 seconds")
        if self.backend and (self.vilt or self.blip2):
            raise ValueError(
                "--vilt/--blip2 choose the models loaded here; with --backend the model server "
                "chooses them (make serve VILT=... BLIP2=...)"
            )
        if self.backend_timeout <= 0:
            raise ValueError("--backend-timeout must be a positive number of seconds")


# Where each setting's default comes from when the environment names one.
ENVIRONMENT = {
    "device": "VQA_DEVICE",
    "dtype": "VQA_DTYPE",
    "only": "VQA_ONLY",
    "quantization": "VQA_QUANTIZATION",
    "compile": "VQA_COMPILE",
    "kiosk": "VQA_KIOSK",
    "accessible": "VQA_ACCESSIBLE",
    "examples": "VQA_EXAMPLES",
    "idle_reset": "VQA_IDLE_RESET_SECONDS",
    "host": "GRADIO_SERVER_NAME",
    "port": "GRADIO_SERVER_PORT",
    "backend": "VQA_BACKEND",
    "backend_timeout": "VQA_BACKEND_TIMEOUT",
}


def parse_args(argv: Sequence[str] | None = None) -> AppSettings:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(AppSettings, description=__doc__.splitlines()[0])
    defaults = {}
    for name, variable in ENVIRONMENT.items():
        value = os.environ.get(variable, "").strip()
        if value:
            kind = AppSettings.__dataclass_fields__[name].type
            try:
                defaults[name] = _from_environment(value, kind)
            except ValueError:
                parser.error(f"${variable} must be a number; got {value!r}")
    parser.set_defaults(**defaults)
    try:
        (settings,) = parser.parse_args_into_dataclasses(
            list(sys.argv[1:] if argv is None else argv), look_for_args_file=False
        )
    except ValueError as err:
        parser.error(str(err))
    return settings


def _from_environment(value: str, kind) -> object:
    if kind in (bool, "bool"):
        return value.lower() in ("1", "true", "yes", "on")
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    return value


def load(settings: AppSettings) -> Services:
    """The two answerers: loaded here, or the model server's (``--backend``)."""
    if settings.backend:
        from serving.client import load_remote_services

        print(f"Backend: the model server at {settings.backend} (Ray Serve)", flush=True)
        return load_remote_services(settings.backend, timeout=settings.backend_timeout)
    return load_services(
        settings.vilt,
        settings.blip2,
        device=settings.device,
        dtype=settings.dtype,
        quantization=settings.quantization,
        only=settings.only,
        blip2_static_cache=settings.compile,
    )


def report(services: Services) -> None:
    """What runs where and why, one line per model (remote services have no plan)."""
    for title, kind in (("ViLT", "vilt"), ("BLIP-2", "blip2")):
        answerer = getattr(services, kind)
        plan = getattr(services, f"{kind}_plan", None)
        if answerer is None:
            print(f"{title}: unavailable ({getattr(services, f'{kind}_error')})", flush=True)
        elif plan is not None:
            print(f"{title}: {answerer.name} on {plan.describe()} ({plan.reason})", flush=True)
        else:
            print(f"{title}: {answerer.name} on {answerer.placement.describe()}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Request logs would carry file names; the app keeps no record of what people ask.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Before loading: on a ZeroGPU Space, spaces must patch torch before models go to CUDA.
    zero_gpu = ZeroGPU.detect()
    try:
        services = load(settings)
    except (VQAError, ValueError) as err:  # an impossible device, precision or backend URL
        print(f"app.py: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    report(services)
    translator, choice, error = load_translator(
        settings.translation, device=settings.device, dtype=settings.dtype
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
        print(f"Translation: off ({error or (choice.reason if choice else '')})", flush=True)
    if tesseract_available():
        print("Reading text: Tesseract (English and Arabic)", flush=True)
    else:
        print(
            "Reading text: off (it needs Tesseract: install tesseract-ocr, tesseract-ocr-eng "
            "and tesseract-ocr-ara, listed in packages.txt; everything else works)",
            flush=True,
        )
    demo = build_demo(
        services,
        translator=translator,
        kiosk=settings.kiosk,
        accessible=settings.accessible,
        idle_reset_seconds=settings.idle_reset,
        max_batch_size=settings.max_batch_size,
        queue_size=settings.queue_size,
        auto_describe=(settings.kiosk or settings.accessible) and settings.auto_describe,
        examples_dir=settings.examples,
    )
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=False,
        **launch_kwargs(
            kiosk=settings.kiosk,
            accessible=settings.accessible,
            idle_reset_seconds=settings.idle_reset,
            translates=translator is not None,
        ),
    )


if __name__ == "__main__":
    main()
