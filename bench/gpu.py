"""The GPU rows of docs/what-runs-where.md, measured by one command on one GPU.

    python bench/gpu.py                          # full-size models; 15, 8 and 6 GB free
    python bench/gpu.py --budgets 15,6 --repeats 3
    python bench/gpu.py --dry-run                # anywhere: the steps and the table, no model
    python bench/gpu.py --smoke                  # on a CPU: every step on tiny models

1. ViLT-B/32 and BLIP-2 OPT-2.7B at their published sizes, random weights, are built on the
   GPU (3.9 B parameters initialise there in seconds; a CPU takes minutes) and written into
   a temporary hub-layout cache with ``train.hub_cache``, deleted at the end unless
   ``--cache`` names a folder to keep.
2. For each free-memory budget (``--budgets``, GB) one tensor holds the rest of the GPU, so
   ``torch.cuda.mem_get_info`` reports that much free, as a smaller card would;
   ``vqa_core.load_services()`` then runs on auto exactly as ``app.py`` does. Recorded: what
   auto chose for each model and why, the GPU memory the models took at their peak (beyond
   the held tensor), and seconds per answer (ViLT: one question; BLIP-2: 10 new tokens),
   the median of ``--repeats`` after a warm-up.
3. Ours vs plain: the same fp16 models through vqa_core's answerers and through the plain
   transformers recipe (processor, model or generate), interleaved round by round.
4. Batch vs singles: ViLT with 32 questions in one batch against one by one, BLIP-2 with 8.
5. BLIP-2 with transformers' static KV cache (``app.py --compile``: on a GPU generate()
   compiles the decoding step) against eager: the first call's wait, then the steady ratio
   (``--no-compile`` skips it).

Prints one table (Markdown) with the machine and date: the rows docs/what-runs-where.md
carries. Meant to finish in under 5 minutes on one GPU; the time taken is printed.

``--smoke`` runs the same steps on the CPU with tiny models from ``train.builders`` and the
budgets given to the planner as the host's free memory, to check the script where no GPU
is; its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from _common import machine_line, side_by_side, sync, time_call

from vqa_core.memory import GIB, MemoryReport, format_gb

DEFAULT_BUDGETS = (15.0, 8.0, 6.0)  # a T4's free memory, an 8 GB card, a 6 GB card
NEW_TOKENS = 10
VILT_BATCH = 32
BLIP2_BATCH = 8
PROMPT = "Question: {question} Answer:"
STEPS = (
    "build ViLT-B/32 and BLIP-2 OPT-2.7B (random weights) into a temporary hub-layout cache",
    "for each budget: hold the rest of the GPU, load_services() on auto, answer",
    "ours vs the plain transformers recipe, fp16, interleaved rounds",
    "batch vs singles: ViLT 32 questions, BLIP-2 8",
    "BLIP-2 with the static KV cache (--compile) vs eager: first call, then steady state",
)


@dataclass
class Row:
    """One line of the printed table."""

    what: str
    result: str


@dataclass
class Report:
    header: str
    rows: list[Row] = field(default_factory=list)

    def add(self, what: str, result: str) -> None:
        self.rows.append(Row(what, result))
        print(f"  {what}: {result}", flush=True)

    def table(self) -> str:
        lines = [self.header, "", "| what | result |", "| --- | --- |"]
        lines += [f"| {row.what} | {row.result} |" for row in self.rows]
        return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets",
        default=",".join(f"{b:g}" for b in DEFAULT_BUDGETS),
        help="free GPU memory to leave for the app, GB, comma separated (default 15,8,6)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed answers per figure")
    parser.add_argument(
        "--depth",
        default=None,
        help="BLIP-2's ViT-g and OPT layers, e.g. 4,4 for a quick look (default: all, 39,32)",
    )
    parser.add_argument("--cache", default=None, help="keep the built models in this folder")
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the static KV cache comparison"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the steps and the table")
    mode.add_argument("--smoke", action="store_true", help="every step on a CPU, tiny models")
    args = parser.parse_args(argv)
    try:
        args.budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--budgets takes numbers of GB, e.g. 15,8,6; got {args.budgets!r}")
    if not args.budgets or any(b <= 0 for b in args.budgets):
        parser.error("--budgets needs at least one positive number of GB")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.depth is not None:
        try:
            vision, opt = (int(n) for n in args.depth.split(","))
        except ValueError:
            parser.error(f"--depth takes two layer counts, e.g. 4,4; got {args.depth!r}")
        args.depth = (vision, opt)
    return args


# ---------------------------------------------------------------------------------------
# Models and pictures


@dataclass(frozen=True)
class Checkpoints:
    vilt: Path
    blip2: Path
    label: str


def build_full_size(folder: Path, depth: tuple[int, int] | None, device: str) -> Checkpoints:
    """The two real architectures in a hub-layout cache under ``folder``, built on ``device``."""
    from train.hub_cache import BLIP2_FULL_DEPTH, build_real_hub_cache

    layers = depth or BLIP2_FULL_DEPTH
    try:
        with torch.device(device):
            cache = build_real_hub_cache(folder, blip2_layers=layers)
    except torch.OutOfMemoryError:
        # A card too small to hold BLIP-2 in fp32 while building: the CPU is slower, not wrong.
        print("  (out of GPU memory while building; building on the CPU instead)", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        gc.collect()
        torch.cuda.empty_cache()
        cache = build_real_hub_cache(folder, blip2_layers=layers)
    label = "every layer" if layers == BLIP2_FULL_DEPTH else f"ViT-g {layers[0]}, OPT {layers[1]}"
    return Checkpoints(cache.vilt, cache.blip2, f"ViLT-B/32, BLIP-2 OPT-2.7B ({label})")


def build_tiny(folder: Path) -> Checkpoints:
    from _common import build_scratch_models

    vilt, blip2 = build_scratch_models(folder)
    return Checkpoints(vilt, blip2, "tiny ViLT and BLIP-2 from train.builders")


def easy_vqa_pictures(count: int):
    """``count`` (picture, question) pairs from easy-VQA's test split, pictures opened."""
    import easy_vqa
    from PIL import Image

    questions, _, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    step = max(1, len(questions) // count)
    picked = list(range(0, step * count, step))[:count]
    pictures = [Image.open(paths[image_ids[i]]).convert("RGB") for i in picked]
    return pictures, [questions[i] for i in picked]


# ---------------------------------------------------------------------------------------
# Budgets


@contextlib.contextmanager
def leave_free(budget: int, device: str) -> Iterator[Callable[[], MemoryReport] | None]:
    """Make the planner see ``budget`` bytes free; yields the memory reader to plan with
    (``None``: the real one).

    On CUDA one tensor takes everything above the budget, so the driver itself reports the
    budget as free (the host's memory is read as usual). On the CPU (``--smoke``) the budget
    is handed to the planner as the host's free memory instead.
    """
    if not device.startswith("cuda"):
        yield lambda: MemoryReport(host_available=budget, host_total=budget)
        return
    free, _ = torch.cuda.mem_get_info(device)
    extra = free - budget
    held = torch.empty(max(extra, 0), dtype=torch.uint8, device=device) if extra > 0 else None
    if held is None:
        print(f"  (only {format_gb(free)} free: less than the budget, nothing held)", flush=True)
    try:
        yield None
    finally:
        del held
        gc.collect()
        torch.cuda.empty_cache()


def seconds_per_answer(call: Callable[[], object], repeats: int, device: str) -> float:
    call()  # warm-up: kernels chosen, caches filled
    return statistics.median(time_call(call, device) for _ in range(repeats))


def run_budget(gigabytes: float, checkpoints: Checkpoints, pictures, questions, args, device: str):
    """Load on auto under one budget and answer; returns (row text, services)."""
    from vqa_core import load_services

    budget = int(gigabytes * GIB)
    with leave_free(budget, device) as memory:
        if device.startswith("cuda"):
            before = torch.cuda.memory_allocated(device)  # the held tensor
            torch.cuda.reset_peak_memory_stats(device)
        kwargs = {"memory": memory} if memory is not None else {}
        services = load_services(str(checkpoints.vilt), str(checkpoints.blip2), **kwargs)
        parts = []
        for title, kind in (("ViLT", "vilt"), ("BLIP-2", "blip2")):
            plan = getattr(services, f"{kind}_plan")
            answerer = getattr(services, kind)
            if answerer is None:
                parts.append(f"{title} not loaded ({getattr(services, f'{kind}_error')})")
                continue
            where = answerer.placement.device.type
            if kind == "vilt":
                seconds = seconds_per_answer(
                    lambda a=answerer: a.answer(pictures[0], questions[0]), args.repeats, where
                )
            else:
                seconds = seconds_per_answer(
                    lambda a=answerer: a.answer(
                        pictures[0], questions[0], max_new_tokens=NEW_TOKENS
                    ),
                    args.repeats,
                    where,
                )
            parts.append(f"{title} **{plan.describe()}** {seconds:.3f} s per answer")
        if device.startswith("cuda"):
            peak = f"peak {format_gb(torch.cuda.max_memory_allocated(device) - before)} on the GPU"
        else:
            peak = "peak not measured on a CPU"
        for line in services.plan_lines():
            print(f"    {line}", flush=True)
        result = f"{'; '.join(parts)}; {peak}"
    return result, services


def release(services) -> None:
    services.vilt = services.blip2 = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------
# Side by side


def ours_vs_plain(report: Report, services, pictures, questions, repeats: int, device: str):
    vilt, blip2 = services.vilt, services.blip2
    picture, question = pictures[0], questions[0]

    def plain_vilt():
        inputs = vilt.processor(images=[picture], text=[question], return_tensors="pt")
        inputs = inputs.to(vilt.placement.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(vilt.placement.dtype)
        with torch.inference_mode():
            logits = vilt.model(**inputs).logits
        return vilt.model.config.id2label[int(logits.argmax(-1))]

    def plain_blip2():
        prompt = PROMPT.format(question=question)
        inputs = blip2.processor(images=[picture], text=[prompt], return_tensors="pt")
        inputs = inputs.to(blip2.input_device)
        inputs["pixel_values"] = inputs["pixel_values"].to(blip2.pixel_dtype)
        with torch.inference_mode():
            ids = blip2.model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
        new = ids[:, inputs["input_ids"].shape[1] :]
        return blip2.processor.batch_decode(new, skip_special_tokens=True)[0].strip()

    for title, ours, plain, same in (
        (
            "ViLT",
            lambda: vilt.answer(picture, question, top_k=1),
            plain_vilt,
            lambda: vilt.answer(picture, question, top_k=1).best == plain_vilt(),
        ),
        (
            "BLIP-2",
            lambda: blip2.answer(picture, question, max_new_tokens=NEW_TOKENS),
            plain_blip2,
            lambda: (
                blip2.answer(picture, question, max_new_tokens=NEW_TOKENS).answer == plain_blip2()
            ),
        ),
    ):
        answerer = vilt if title == "ViLT" else blip2
        if answerer is None:
            report.add(f"ours vs plain, {title}", "not loaded")
            continue
        times = side_by_side({"ours": ours, "plain": plain}, repeats=repeats, device=device)
        ours_s, plain_s = (statistics.median(times[k]) for k in ("ours", "plain"))
        report.add(
            f"ours vs plain, {title} {answerer.placement.dtype_name}",
            f"{ours_s * 1000:.1f} vs {plain_s * 1000:.1f} ms: **{ours_s / plain_s:.2f}x**; "
            f"same answer: {'yes' if same() else 'NO'}",
        )


def batch_vs_singles(report: Report, services, pictures, questions, repeats: int, device: str):
    for title, answerer, size, kwargs in (
        ("ViLT", services.vilt, VILT_BATCH, {}),
        ("BLIP-2", services.blip2, BLIP2_BATCH, {"max_new_tokens": NEW_TOKENS}),
    ):
        if answerer is None:
            report.add(f"batch vs singles, {title}", "not loaded")
            continue
        images = [pictures[i % len(pictures)] for i in range(size)]
        texts = [questions[i % len(questions)] for i in range(size)]

        def batched(a=answerer, images=images, texts=texts, kwargs=kwargs):
            return a.answer_batch(images, texts, **kwargs)

        def singles(a=answerer, images=images, texts=texts, kwargs=kwargs):
            return [a.answer_batch([i], [t], **kwargs) for i, t in zip(images, texts)]

        times = side_by_side(
            {"batch": batched, "singles": singles}, repeats=max(1, repeats // 2), device=device
        )
        batch_s, singles_s = (statistics.median(times[k]) for k in ("batch", "singles"))
        report.add(
            f"batch vs singles, {title} x{size}",
            f"one batch {batch_s:.2f} s vs one by one {singles_s:.2f} s: "
            f"**{batch_s / singles_s:.2f}x**",
        )


# ---------------------------------------------------------------------------------------


def floats_on(services, device: str) -> bool:
    """Both models loaded whole on ``device`` without quantization (fp16 on a GPU)."""
    pairs = ((services.vilt, services.vilt_plan), (services.blip2, services.blip2_plan))
    return all(
        answerer is not None
        and plan is not None
        and plan.quantization == "none"
        and plan.device_map is None
        and answerer.placement.device.type == device
        for answerer, plan in pairs
    )


def static_vs_eager(report: Report, services, pictures, questions, repeats: int, device: str):
    from vqa_core import Blip2Answerer

    eager = services.blip2
    if eager is None:
        report.add("static KV cache vs eager, BLIP-2", "not loaded")
        return
    static = Blip2Answerer(
        eager.model, eager.processor, eager.placement, eager.name, static_cache=True
    )
    picture, question = pictures[0], questions[0]

    def answer_static():
        return static.answer(picture, question, max_new_tokens=NEW_TOKENS)

    def answer_eager():
        return eager.answer(picture, question, max_new_tokens=NEW_TOKENS)

    first = time_call(answer_static, device)
    times = side_by_side(
        {"static": answer_static, "eager": answer_eager}, repeats=repeats, device=device
    )
    static_s, eager_s = (statistics.median(times[k]) for k in ("static", "eager"))
    same = answer_static().answer == answer_eager().answer
    report.add(
        f"static KV cache vs eager, BLIP-2 {eager.placement.dtype_name}",
        f"first call {first:.1f} s; then {static_s * 1000:.1f} vs {eager_s * 1000:.1f} ms: "
        f"**{static_s / eager_s:.2f}x**; same answer: {'yes' if same else 'NO'}",
    )


def compare(
    report: Report, services, pictures, questions, repeats: int, device: str, static: bool
) -> None:
    print("step 3: ours vs plain", flush=True)
    ours_vs_plain(report, services, pictures, questions, repeats, device)
    print("step 4: batch vs singles", flush=True)
    batch_vs_singles(report, services, pictures, questions, repeats, device)
    if static:
        print("step 5: static KV cache vs eager", flush=True)
        static_vs_eager(report, services, pictures, questions, repeats, device)


def dry_run(args: argparse.Namespace) -> Report:
    report = Report(f"dry run on {machine_line()}: nothing was loaded or measured")
    for step, text in enumerate(STEPS, 1):
        print(f"step {step}: {text}")
    for gigabytes in args.budgets:
        report.add(f"{gigabytes:g} GB of the GPU free, auto", "not run (dry run)")
    for title in ("ViLT", "BLIP-2"):
        report.add(f"ours vs plain, {title} fp16", "not run (dry run)")
    report.add(f"batch vs singles, ViLT x{VILT_BATCH}", "not run (dry run)")
    report.add(f"batch vs singles, BLIP-2 x{BLIP2_BATCH}", "not run (dry run)")
    if not args.no_compile:
        report.add("static KV cache vs eager, BLIP-2 fp16", "not run (dry run)")
    return report


def measure(args: argparse.Namespace) -> Report:
    device = "cpu" if args.smoke else "cuda"
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.cache:
            folder = Path(args.cache)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vqa-gpu-")))
        print(f"step 1: {STEPS[0] if not args.smoke else 'tiny models'} in {folder}", flush=True)
        if args.smoke:
            checkpoints = build_tiny(folder)
        else:
            checkpoints = build_full_size(folder, args.depth, device)
        sync(device)
        built = time.perf_counter() - start
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        header = f"{machine_line()}; {checkpoints.label}; {date}"
        if args.smoke:
            header += "; SMOKE RUN on the CPU: these figures say nothing about a GPU"
        report = Report(header)
        report.add("models built and written", f"{built:.0f} s")
        pictures, questions = easy_vqa_pictures(VILT_BATCH)
        side = Report("")
        compared = False
        for gigabytes in sorted(args.budgets, reverse=True):
            print(f"step 2: {gigabytes:g} GB free", flush=True)
            result, services = run_budget(gigabytes, checkpoints, pictures, questions, args, device)
            report.add(f"{gigabytes:g} GB of the GPU free, auto", result)
            if not compared and floats_on(services, device):
                # The largest budget's float models serve steps 3 and 4 before they go.
                compare(
                    side, services, pictures, questions, args.repeats, device, not args.no_compile
                )
                compared = True
            release(services)
        if not compared:
            from vqa_core import load_services

            services = load_services(
                str(checkpoints.vilt), str(checkpoints.blip2), device=device, quantization="none"
            )
            compare(side, services, pictures, questions, args.repeats, device, not args.no_compile)
            release(services)
        report.rows += side.rows
    report.add("whole run", f"{time.perf_counter() - start:.0f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        report = dry_run(args)
    elif not args.smoke and not torch.cuda.is_available():
        print(
            "bench/gpu.py measures a CUDA GPU and none is present here; "
            "--dry-run shows the steps, --smoke runs them on the CPU with tiny models."
        )
        return 2
    else:
        report = measure(args)
    print()
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
