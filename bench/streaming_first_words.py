"""When the first words of a BLIP-2 answer reach the page, against the whole answer at once.

    python bench/streaming_first_words.py           # BLIP-2 OPT-2.7B at full size, random weights
    python bench/streaming_first_words.py --quick   # fewer ViT-g / OPT layers (every width kept)
    python bench/streaming_first_words.py --dtype float32 --repeats 3

Both routes are the page's own handlers (ui.answering), called as Gradio calls them, side
by side and interleaved round by round on the same picture and question: the streamed Ask
(``stream_blip2``: the time to its first update with words in it, and to its last) and the
whole answer at once (``answer_blip2``, the batched route as Ask took it before streaming).
The ratio printed is first words / whole answer at once. Gradio's delivery of an update
(one server-sent event on the same machine) is not in either figure.

The model is built in place at the published sizes (train.hub_cache's configs), in the
precision ``--dtype`` names (bf16 by default: what ``auto`` picks on a CPU with AVX512-BF16
or AMX, when it fits), with train.builders's small easy-VQA tokenizer (its language-model
head is smaller than OPT's 50,272 tokens, which makes each token cheaper and the ratio, if
anything, less favourable to streaming). Random weights pick any token, so the answer is held
to ``--tokens`` printable tokens (a real answer's tokens are words).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from _common import easy_vqa_texts, jpeg_bytes, machine_line, photo_like
from transformers import Blip2ForConditionalGeneration

from train.hub_cache import BLIP2_FULL_DEPTH, blip2_opt27b_config
from ui.handlers import VQAHandlers
from vqa_core import Blip2Answerer, Services
from vqa_core.placement import resolve_placement

# 13 prompt tokens in the small tokenizer, 11 in OPT's: a question that is not in its
# vocabulary splits into byte pieces there and would inflate the prompt's share.
QUESTION = "What color is the shape?"
QUICK_DEPTH = (8, 8)  # ViT-g and OPT layers with --quick


def build_blip2(depth: tuple[int, int], dtype: torch.dtype) -> Blip2Answerer:
    """BLIP-2 OPT-2.7B's architecture at ``depth``, random, built straight in ``dtype``."""
    from train.builders import Blip2Size, build_blip2

    questions, answers = easy_vqa_texts()
    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    # Only the processor is kept: its tokenizer, 224 px images and 32 query tokens.
    _, processor = build_blip2(
        texts, size=Blip2Size(image_size=224, patch_size=14, num_query_tokens=32)
    )
    tokenizer = processor.tokenizer
    config = blip2_opt27b_config(*depth)
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        model = Blip2ForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    return Blip2Answerer(model, processor, resolve_placement("cpu", str(dtype).split(".")[-1]))


def hold_to_printable(blip2: Blip2Answerer, tokens: int) -> None:
    tokenizer = blip2.processor.tokenizer
    unreadable = [
        token
        for token in range(len(tokenizer))
        if not (piece := tokenizer.decode([token])).strip()
        or "\ufffd" in piece
        or not piece.isprintable()
    ]
    settings = blip2.model.language_model.generation_config
    settings.suppress_tokens = unreadable
    settings.min_new_tokens = tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"BLIP-2 at depth {QUICK_DEPTH}")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--tokens", type=int, default=10, help="answer length (the page's)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    depth = QUICK_DEPTH if args.quick else BLIP2_FULL_DEPTH
    print(machine_line())
    started = time.perf_counter()
    blip2 = build_blip2(depth, getattr(torch, args.dtype))
    hold_to_printable(blip2, args.tokens)
    params = sum(p.numel() for p in blip2.model.parameters()) / 1e9
    print(
        f"BLIP-2 OPT-2.7B architecture, ViT-g {depth[0]} / OPT {depth[1]} layers, "
        f"{params:.2f} B parameters, {args.dtype}, built in {time.perf_counter() - started:.0f} s"
    )
    handlers = VQAHandlers(Services(blip2=blip2))
    with tempfile.TemporaryDirectory() as folder:
        picture = Path(folder) / "photo.jpg"
        picture.write_bytes(jpeg_bytes(photo_like(1024, 768)))

        def streamed() -> tuple[float, float, str]:
            start = time.perf_counter()
            first, answer = None, ""
            for answer, _status in handlers.answering.stream_blip2(
                str(picture), QUESTION, args.tokens, 1, None, [], "en"
            ):
                if first is None and answer:
                    first = time.perf_counter() - start
            return first or 0.0, time.perf_counter() - start, answer

        def whole() -> tuple[float, str]:
            start = time.perf_counter()
            answers, _ = handlers.answering.answer_blip2(
                [str(picture)], [QUESTION], [args.tokens], [1]
            )
            return time.perf_counter() - start, answers[0]

        # Gradio calls a handler in a worker thread; so does this (generate() in the main
        # thread measured 2-3x slower than in any other on this machine).
        with ThreadPoolExecutor(max_workers=1) as worker:
            worker.submit(streamed).result(), worker.submit(whole).result()  # warm-up
            firsts, lasts, wholes, same = [], [], [], True
            for round_index in range(args.repeats):
                runs = [streamed, whole] if round_index % 2 == 0 else [whole, streamed]
                for run in runs:
                    if run is streamed:
                        first, last, streamed_answer = worker.submit(run).result()
                        firsts.append(first)
                        lasts.append(last)
                    else:
                        seconds, whole_answer = worker.submit(run).result()
                        wholes.append(seconds)
                same = same and streamed_answer == whole_answer
    first, last, at_once = (statistics.median(s) for s in (firsts, lasts, wholes))
    prompt = blip2.build_prompt(QUESTION)
    print(
        f"answer of {args.tokens} tokens to {blip2.count_tokens(prompt)} prompt tokens and the "
        f"picture's {blip2.model.config.num_query_tokens}, "
        f"medians of {args.repeats} interleaved rounds:"
    )
    print(f"  streamed: first words {first:.2f} s, last update {last:.2f} s")
    print(f"  whole answer at once: {at_once:.2f} s")
    print(f"  first words / whole answer: {first / at_once:.2f}x  (target <= 0.5x)")
    print(f"  last update / whole answer: {last / at_once:.2f}x  (the streaming's own cost)")
    print(
        "  samples (s): first "
        + " ".join(f"{x:.2f}" for x in firsts)
        + " | last "
        + " ".join(f"{x:.2f}" for x in lasts)
        + " | at once "
        + " ".join(f"{x:.2f}" for x in wholes)
    )
    print(f"  final text identical to the whole answer in every round: {same}")


if __name__ == "__main__":
    main()
