"""``python -m vqa_core``: ask both models one question about one image."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .blip2 import DEFAULT_MAX_NEW_TOKENS
from .errors import VQAError
from .fit import QUANTIZATION_CHOICES
from .images import load_image
from .placement import DEVICE_CHOICES, DTYPE_CHOICES
from .questions import clean_question
from .registry import ENV_VARS

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vqa_core",
        description="Answer a question about an image with ViLT (top-k) and BLIP-2 (free text).",
        epilog=(
            f"Models: a hub id, a local folder, or a preset (auto, demo, real). Without a flag, "
            f"{ENV_VARS['vilt']} / {ENV_VARS['blip2']} are read, then 'auto': the real "
            "checkpoint if cached or reachable, else the embedded demo models. "
            "`python -m vqa_core download` fetches the real checkpoints for offline use."
        ),
    )
    parser.add_argument("--image", required=True, help="path to the image file")
    parser.add_argument("--question", required=True, help="the question to ask")
    parser.add_argument("--vilt", default=None, help="ViLT hub id, local folder or preset")
    parser.add_argument("--blip2", default=None, help="BLIP-2 hub id, local folder or preset")
    parser.add_argument("--only", choices=("vilt", "blip2"), help="run only one model")
    parser.add_argument("--top-k", type=int, default=5, help="ViLT answers to show (default 5)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES)
    parser.add_argument(
        "--blip2-device-map", default=None, help="e.g. 'auto' to offload a large BLIP-2 to CPU"
    )
    parser.add_argument(
        "--quantization",
        default="auto",
        choices=QUANTIZATION_CHOICES,
        help=(
            "auto: float weights when they fit, int8 when only that fits, then int4; int8: "
            "torchao int8 weights (CPU and CUDA); int4: the language model's weights in 4 bits "
            "on PyTorch's CPU kernel, the rest int8 (CPU); 8bit/4bit: bitsandbytes (CUDA); "
            "none: never quantize"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="log model choice and loading")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    if args.top_k < 1:
        return _fail("--top-k must be at least 1.")
    # Check the user's input before paying for model loading.
    try:
        image = load_image(args.image)
        question = clean_question(args.question)
    except VQAError as err:
        return _fail(str(err))

    from .services import load_services

    try:
        services = load_services(
            args.vilt,
            args.blip2,
            device=args.device,
            dtype=args.dtype,
            only=args.only,
            quantization=args.quantization,
            blip2_device_map=args.blip2_device_map,
        )
    except (VQAError, ValueError) as err:
        return _fail(str(err))
    logging.getLogger("vqa_core").info("\n".join(services.plan_lines()))

    report: dict = {"question": question}
    failures = 0
    for kind, answerer, load_error in (
        ("vilt", services.vilt, services.vilt_error),
        ("blip2", services.blip2, services.blip2_error),
    ):
        if args.only not in (None, kind):
            continue
        plan = getattr(services, f"{kind}_plan")
        if answerer is None:
            report[kind] = {"error": load_error}
            failures += 1
            continue
        try:
            if kind == "vilt":
                result = answerer.answer(image, question, top_k=args.top_k)
            else:
                result = answerer.answer(
                    image, question, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams
                )
            report[kind] = result.as_dict()
            report[kind]["device"] = answerer.placement.describe()
            if plan is not None:
                report[kind]["placement"] = plan.describe()
                report[kind]["why"] = plan.reason
        except VQAError as err:
            report[kind] = {"error": str(err)}
            failures += 1

    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(f"Q: {question}")
        for kind, title in (("vilt", "ViLT"), ("blip2", "BLIP-2")):
            if kind not in report:
                continue
            entry = report[kind]
            if "error" in entry:
                print(f"{title}: unavailable: {entry['error']}")
            elif kind == "vilt":
                ranked = ", ".join(f"{a['answer']} ({a['score']:.2f})" for a in entry["answers"])
                note = " [question truncated]" if entry["truncated"] else ""
                print(f"{title} [{entry['seconds'] * 1000:.0f} ms]: {ranked}{note}")
            else:
                print(f"{title} [{entry['seconds'] * 1000:.0f} ms]: {entry['answer']}")
    if failures:
        for kind in ("vilt", "blip2"):
            if "error" in report.get(kind, {}):
                print(f"error: {report[kind]['error']}", file=sys.stderr)
        return 1
    return 0
