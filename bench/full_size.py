"""ViLT-B/32 and BLIP-2 OPT-2.7B at their real sizes, random weights: latency, tokens/s, memory.

    python bench/full_size.py            # CPU: fp32 vs bf16 vs int8 vs int4; GPU: fp32 vs fp16 vs int8
    python bench/full_size.py --full --models blip2 --precisions int4,int8,bfloat16 \
        --batches 1 --profile            # int4 against int8 and bf16, and where the time goes
    python bench/full_size.py --quick    # CPU-sized: BLIP-2 with fewer ViT-g / OPT layers
    python bench/full_size.py --full     # every layer of BLIP-2 even on CPU (~16 GB in fp32)
    python bench/full_size.py --precisions float32,bfloat16 --built   # the models built in
                                         # place, no checkpoint (the earlier method, no int8)

By default every row loads the same checkpoint, written once into a hub-layout cache
(``--cache``, sharded fp32 safetensors like the hub's) by train.hub_cache, through
vqa_core's loaders, as the app does: fp32 serves the weights from the mapped file, bf16
converts each tensor as it is read, int8 quantizes each linear weight as it is read
(torchao, fp32 activations: vqa_core.fit's choice), int4 packs the language model's linear
weights for PyTorch's CPU int4 kernel as they are read and stores the rest as int8 does (bf16
activations where the CPU runs bf16 natively: vqa_core.fit's choice). Peak memory is reported twice: peak
RSS (file pages of the mapped checkpoint included) and peak anonymous memory sampled every
10 ms (what the process itself allocated).

The configurations are written out below from the published model configs (the hub is not
reachable here), so the compute per token and per image is the real models': ViLT-B/32
(hidden 768, 12 layers, 12 heads, patch 32, 384 px, 3129 answers, vocab 30522) and BLIP-2
OPT-2.7B (ViT-g 1408 hidden / 39 layers / 16 heads / patch 14 / 224 px, Q-Former 768 / 12
layers / 32 queries, OPT-2.7B 2560 hidden / 32 layers / 32 heads / ffn 10240 / vocab 50272).
Weights are random, so BLIP-2 generation is forced to a fixed length
(``min_new_tokens == max_new_tokens``): random weights would otherwise stop at any token.

Each (model, precision) runs in its own process so its peak memory is its own: peak RSS on
CPU, ``torch.cuda.max_memory_allocated`` on GPU. With ``--quick`` BLIP-2 keeps every width
but only some layers (printed in its label); time per layer scales linearly.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import default_device, machine_line
from transformers import Blip2ForConditionalGeneration, ViltForQuestionAnswering

from train.hub_cache import blip2_opt27b_config, vilt_b32_config, vilt_b32_size

VILT_TEXT_TOKENS = 12  # a typical VQA question with [CLS] and [SEP]
VILT_PIXELS = (384, 576)  # ViltImageProcessor's output for a 4:3 photo
BLIP2_PROMPT_TOKENS = 10  # "Question: what is in the picture? Answer:"


def save_servable_checkpoints(
    folder: Path, *, vision_layers: int, opt_layers: int, new_tokens: int, dtype: torch.dtype
) -> tuple[Path, Path]:
    """ViLT-B/32 and BLIP-2 OPT-2.7B (at the given depth), random, saved for ``app.py``.

    The app needs tokenizers and processors, so both get train.builders's small ones trained
    on easy-VQA text. ViLT keeps its real compute (embedding lookups cost the same for any
    vocabulary); BLIP-2's language-model head covers that tokenizer's ~1,000 tokens instead of
    OPT's 50,272, which drops about a sixth of each generated token's work at --quick depth
    (a part that batching would speed up, so batching's gain is if anything understated).
    ``min_new_tokens`` in the saved generation config keeps answers at ``new_tokens``.
    """
    from _common import easy_vqa_texts

    from train.builders import Blip2Size, build_blip2, build_vilt

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts()
    vilt, vilt_processor = build_vilt(questions, answers, size=vilt_b32_size())
    vilt.to(dtype).save_pretrained(folder / "vilt")
    vilt_processor.save_pretrained(folder / "vilt")
    del vilt

    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    # Only the processor is kept: its tokenizer, 224 px images and 32 query tokens.
    _, blip2_processor = build_blip2(
        texts, size=Blip2Size(image_size=224, patch_size=14, num_query_tokens=32)
    )
    tokenizer = blip2_processor.tokenizer
    config = blip2_opt27b_config(vision_layers, opt_layers)
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    torch.set_default_dtype(dtype)
    try:
        blip2 = Blip2ForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    generation = blip2.generation_config
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.min_new_tokens = new_tokens
    blip2.save_pretrained(folder / "blip2")
    blip2_processor.save_pretrained(folder / "blip2")
    return folder / "vilt", folder / "blip2"


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn, device: str, repeats: int) -> float:
    fn()  # warm-up: allocator, kernels, one-off dispatch
    samples = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class AnonPeak:
    """Samples the process's anonymous RSS every 10 ms in a thread; ``peak`` in bytes."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now() -> int:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(0.01)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.now())


def load_net(model: str, dtype_name: str, device: str, source: str):
    """The model loaded from ``source`` through vqa_core's loaders, as the app loads it."""
    from vqa_core.blip2 import load_blip2
    from vqa_core.placement import cpu_bf16_feature, resolve_placement
    from vqa_core.vilt import load_vilt

    quantization = dtype_name if dtype_name in ("int8", "int4") else "none"
    # int8 computes in fp32 on CPU, as the app's plan picks (vqa_core.fit), fp16 on a GPU;
    # int4 in bf16 where the CPU runs it natively, as the plan picks too.
    if quantization == "int4":
        compute = "bfloat16" if cpu_bf16_feature() else "float32"
    elif quantization == "int8":
        compute = "float16" if device.startswith("cuda") else "float32"
    else:
        compute = dtype_name
    placement = resolve_placement(device, compute)
    loader = load_vilt if model == "vilt" else load_blip2
    net, _, _ = loader(source, placement=placement, quantization=quantization)
    return net, placement.dtype


def worker(
    model: str,
    dtype_name: str,
    device: str,
    repeats: int,
    layers: tuple[int, int],
    tokens: int,
    source: str | None = None,
    batches: tuple[int, ...] = (1, 8),
    profile: bool = False,
) -> dict:
    sampler = AnonPeak() if not device.startswith("cuda") else None
    torch.manual_seed(0)
    if source:
        net, dtype = load_net(model, dtype_name, device, source)
    else:
        dtype = getattr(torch, dtype_name)
        # Built straight in the target precision and place: no fp32 copy inflates the peak.
        torch.set_default_dtype(dtype)
        with torch.device(device):
            if model == "vilt":
                net = ViltForQuestionAnswering(vilt_b32_config()).eval()
            else:
                net = Blip2ForConditionalGeneration(blip2_opt27b_config(*layers)).eval()
        torch.set_default_dtype(torch.float32)
    image_token = getattr(net.config, "image_token_index", None)  # BLIP-2 only
    params = sum(p.numel() for p in net.parameters())
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    row = {"model": model, "dtype": dtype_name, "params_m": params / 1e6}

    def inputs(batch: int) -> dict:
        generator = torch.Generator().manual_seed(batch)
        if model == "vilt":
            height, width = VILT_PIXELS
            return {
                "input_ids": torch.randint(
                    1000, 30000, (batch, VILT_TEXT_TOKENS), generator=generator
                ),
                "attention_mask": torch.ones(batch, VILT_TEXT_TOKENS, dtype=torch.long),
                "token_type_ids": torch.zeros(batch, VILT_TEXT_TOKENS, dtype=torch.long),
                "pixel_values": torch.randn(batch, 3, height, width, generator=generator),
                "pixel_mask": torch.ones(batch, height, width, dtype=torch.long),
            }
        prompt = torch.randint(1000, 50000, (batch, BLIP2_PROMPT_TOKENS), generator=generator)
        prompt[:, 0] = 2  # </s> as BOS, as OPT's tokenizer does
        image_tokens = torch.full((batch, 32), image_token)
        input_ids = torch.cat([image_tokens, prompt], dim=1)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": torch.randn(batch, 3, 224, 224, generator=generator),
        }

    for batch in batches:
        batch_inputs = {k: v.to(device) for k, v in inputs(batch).items()}
        batch_inputs["pixel_values"] = batch_inputs["pixel_values"].to(dtype)
        if model == "vilt":

            def run(batch_inputs=batch_inputs):
                with torch.inference_mode():
                    return net(**batch_inputs).logits

        else:

            def run(batch_inputs=batch_inputs):
                with torch.inference_mode():
                    out = net.generate(
                        **batch_inputs,
                        max_new_tokens=tokens,
                        min_new_tokens=tokens,
                        do_sample=False,
                        num_beams=1,
                    )
                # Generated length is part of what is measured: check it really is fixed.
                assert out.shape[1] - batch_inputs["input_ids"].shape[1] == tokens, out.shape
                return out

        seconds = timed(run, device, repeats)
        row[f"b{batch}_ms"] = seconds * 1000
        if model == "blip2":
            row[f"b{batch}_tok_s"] = batch * tokens / seconds
        if model == "blip2" and profile and batch == batches[0]:
            row["profile"] = profile_parts(net, run, repeats)
            if dtype_name == "int4":
                row["profile"].update(int4_prompt_routes(net, batch_inputs, repeats))
    row["peak_mb"] = peak_memory_mb(device)
    if sampler is not None:
        row["anon_mb"] = sampler.stop() / 2**20
    return row


def profile_parts(net, run, repeats: int) -> dict[str, float]:
    """Seconds per part of one BLIP-2 answer, timed with forward hooks (medians of
    ``repeats`` answers): the image encoder, the Q-Former, the language model's first call
    (the prompt: query tokens and question) and each later call (one generated token)."""
    spans: dict[str, list[float]] = {}
    started: dict[str, float] = {}
    calls = {"language": 0}

    def before(name):
        def hook(module, args, kwargs=None):
            started[name] = time.perf_counter()

        return hook

    def after(name):
        def hook(module, args, output):
            took = time.perf_counter() - started[name]
            part = name
            if name == "language":
                calls["language"] += 1
                part = "prompt" if calls["language"] == 1 else "token"
            spans.setdefault(part, []).append(took)

        return hook

    parts = {"encoder": net.vision_model, "qformer": net.qformer, "language": net.language_model}
    handles = []
    for name, module in parts.items():
        handles.append(module.register_forward_pre_hook(before(name)))
        handles.append(module.register_forward_hook(after(name)))
    per_answer: list[dict[str, float]] = []
    for _ in range(repeats):
        spans.clear()
        calls["language"] = 0
        run()
        per_answer.append({name: statistics.median(times) for name, times in spans.items()})
    for handle in handles:
        handle.remove()
    return {name: statistics.median(a[name] for a in per_answer) for name in per_answer[0]}


def int4_prompt_routes(net, batch_inputs: dict, repeats: int) -> dict[str, float]:
    """Seconds for the language model's prompt call (query tokens and question) on each of
    int4's two routes over the same packed weights, side by side: the int8 route
    vqa_core.int4_cpu takes from MANY_ROWS rows, and the int4 kernel for every row."""
    from vqa_core import int4_cpu

    rows = batch_inputs["input_ids"].shape[1]
    hidden = net.config.text_config.hidden_size
    embeds = torch.randn(1, rows, hidden, dtype=net.language_model.dtype)
    chosen = int4_cpu.MANY_ROWS

    def prompt() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            net.language_model(inputs_embeds=embeds, logits_to_keep=1)
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"prompt int8 route": [], "prompt int4 kernel": []}
    try:
        for _ in range(repeats + 1):  # the first of each is a warm-up
            for name, threshold in (("prompt int8 route", chosen), ("prompt int4 kernel", 10**9)):
                int4_cpu.MANY_ROWS = threshold
                times[name].append(prompt())
    finally:
        int4_cpu.MANY_ROWS = chosen
    return {name: statistics.median(spans[1:]) for name, spans in times.items()}


def checkpoint_sources(cache: str, layers: tuple[int, int]) -> dict[str, str]:
    """Both checkpoints in a hub-layout cache under ``cache`` (written on first use)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from train.hub_cache import build_real_hub_cache

    built = build_real_hub_cache(Path(cache) / f"hub-{layers[0]}-{layers[1]}", blip2_layers=layers)
    return {"vilt": str(built.vilt), "blip2": str(built.blip2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=10)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="BLIP-2 with fewer layers")
    size.add_argument("--full", action="store_true", help="every BLIP-2 layer even on CPU")
    parser.add_argument("--vision-layers", type=int, default=None, help="override ViT-g depth")
    parser.add_argument("--opt-layers", type=int, default=None, help="override OPT depth")
    parser.add_argument("--models", default="vilt,blip2")
    parser.add_argument("--precisions", default=None, help="default: float32,<half>,int8")
    parser.add_argument("--batches", default="1,8", help="batch sizes to time")
    parser.add_argument("--built", action="store_true", help="build in place, load nothing")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "vqa-bench"))
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", action="store_true", help="BLIP-2: time encoder, Q-Former, prompt, token"
    )
    args = parser.parse_args()

    # On CPU the full BLIP-2 needs ~16 GB in fp32 and minutes per batch: default to quick.
    quick = args.quick or (not args.full and not args.device.startswith("cuda"))
    vision_layers = args.vision_layers or (8 if quick else 39)
    opt_layers = args.opt_layers or (8 if quick else 32)
    batches = tuple(int(b) for b in args.batches.split(","))

    if args.worker:
        model, dtype_name = args.worker
        row = worker(
            model,
            dtype_name,
            args.device,
            args.repeats,
            (vision_layers, opt_layers),
            args.new_tokens,
            source=args.source,
            batches=batches,
            profile=args.profile,
        )
        print(json.dumps(row))
        return

    low = "float16" if args.device.startswith("cuda") else "bfloat16"
    quantized = "" if args.built else (",int8" if args.device.startswith("cuda") else ",int8,int4")
    precisions = (args.precisions or f"float32,{low}{quantized}").split(",")
    if args.built and ("int8" in precisions or "int4" in precisions):
        parser.error("int8 and int4 are loaded from a checkpoint; drop --built or them")
    sources = {} if args.built else checkpoint_sources(args.cache, (vision_layers, opt_layers))
    how = "built in place" if args.built else "loaded from fp32 safetensors through vqa_core"
    print(
        f"machine: {machine_line()}; device {args.device}; median of {args.repeats} warm runs; "
        f"{how}"
    )
    header = (
        f"{'model':46} {'dtype':9} {'params':>7} "
        + "".join(f"{f'b{b} ms':>9} " for b in batches)
        + "".join(f"{f'b{b} tok/s':>9} " for b in batches)
        + f"{'peak MB':>9} {'anon MB':>9}"
    )
    for model in args.models.split(","):
        if model == "vilt":
            label = "ViLT-B/32"
        else:
            depth = (
                ""
                if (vision_layers, opt_layers) == (39, 32)
                else (f" [ViT-g {vision_layers}/39, OPT {opt_layers}/32 layers]")
            )
            label = f"BLIP-2 OPT-2.7B{depth}"
        rows = {}
        print(header)
        for dtype_name in precisions:
            command = [
                sys.executable,
                __file__,
                "--worker",
                model,
                dtype_name,
                "--device",
                args.device,
                "--repeats",
                str(args.repeats),
                "--new-tokens",
                str(args.new_tokens),
                "--vision-layers",
                str(vision_layers),
                "--opt-layers",
                str(opt_layers),
                "--batches",
                args.batches,
            ]
            if args.profile:
                command.append("--profile")
            if sources:
                command += ["--source", sources[model]]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{label:46} {dtype_name:9} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows[dtype_name] = row
            times = "".join(f"{row[f'b{b}_ms']:9.1f} " for b in batches)
            tok = "".join(
                f"{row[f'b{b}_tok_s']:9.1f} " if f"b{b}_tok_s" in row else f"{'-':>9} "
                for b in batches
            )
            anon = f"{row['anon_mb']:9.0f}" if "anon_mb" in row else f"{'-':>9}"
            print(
                f"{label:46} {dtype_name:9} {row['params_m']:6.0f}M {times}{tok}"
                f"{row['peak_mb']:9.0f} {anon}",
                flush=True,
            )
            if "profile" in row:
                parts = ", ".join(f"{k} {v:.3f} s" for k, v in row["profile"].items())
                print(f"  {dtype_name} by part (median; token = one generated token): {parts}")
        first = f"b{batches[0]}_ms"
        if "float32" in rows and low in rows:
            fp32, other = rows["float32"], rows[low]
            print(
                f"  {low} vs float32: batch {batches[0]} {fp32[first] / other[first]:.2f}x faster, "
                f"peak memory {100 * other['peak_mb'] / fp32['peak_mb']:.0f}% of float32"
            )
        if "int8" in rows and low in rows:
            int8, other = rows["int8"], rows[low]
            anon_share = (
                f", peak anon {100 * int8['anon_mb'] / other['anon_mb']:.0f}%"
                if "anon_mb" in int8
                else ""
            )
            print(
                f"  int8 vs {low}: batch {batches[0]} latency {int8[first] / other[first]:.2f}x "
                f"(target <= 1), peak RSS {100 * int8['peak_mb'] / other['peak_mb']:.0f}%"
                f"{anon_share} of {low}'s (target <= 55%)"
            )
        if "int4" in rows and "int8" in rows:
            int4, int8 = rows["int4"], rows["int8"]
            anon_share = (
                f", peak anon {100 * int4['anon_mb'] / int8['anon_mb']:.0f}% of int8's (target "
                "<= 60%)"
                if "anon_mb" in int4 and "anon_mb" in int8
                else ""
            )
            print(
                f"  int4 vs int8: batch {batches[0]} time {int4[first] / int8[first]:.2f}x "
                f"(target <= 0.65x), peak RSS {100 * int4['peak_mb'] / int8['peak_mb']:.0f}%"
                f"{anon_share}"
            )
    if "blip2" in args.models:
        print(f"BLIP-2 generates exactly {args.new_tokens} new tokens per answer.")


if __name__ == "__main__":
    main()
