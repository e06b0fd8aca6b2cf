"""What Arabic questions cost: the opus-mt translation pair's memory and time, full size.

    python bench/translation_cost.py [--dtypes float32,bfloat16] [--labels 3129]

The hub cannot be reached here, so both directions are built at opus-mt's shape (Marian
transformer-base: d_model 512, 6 + 6 layers, 8 heads, FFN 2048, a 62,000-piece shared
vocabulary) with random weights, saved with ``save_pretrained`` and loaded back through
``vqa_core.translation.Translator.from_pretrained``, the app's own path. Each precision is
measured in a fresh child process, so its resident memory is the pair's alone.

Random weights never stop on their own, so decoding is held to fixed lengths: 16 tokens for
a question (a typical short question in SentencePiece pieces) and 4 for an answer label.
Printed: the pair on disk, load seconds, resident memory added by the pair and the peak,
one question into English (greedy and opus-mt's 4 beams side by side), one answer's
labels and BLIP-2's sentence back, and ViLT's whole answer vocabulary (3,129 labels for
dandelin/vilt-b32-finetuned-vqa) translated once against reading it from the disk cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO_ROOT, machine_line

ARABIC = [
    "ما لون الشكل في الصورة؟",
    "كم عدد الأشخاص في الصورة؟",
    "هل يوجد قط على الطاولة؟",
    "ماذا يحمل الرجل في يده؟",
]
ENGLISH = [
    "what color is the shape in the image?",
    "how many people are in the picture?",
    "is there a cat on the table?",
    "what is the man holding in his hand?",
]
QUESTION_TOKENS = 16
LABEL_TOKENS = 4
VILT_VQA_LABELS = 3129  # dandelin/vilt-b32-finetuned-vqa's id2label


def build(folder: Path) -> None:
    import torch

    from train.builders import MarianSize, build_marian

    torch.manual_seed(0)
    for name, sources, targets, source_lang, target_lang in (
        ("ar-en", ARABIC, ENGLISH, "ar", "en"),
        ("en-ar", ENGLISH, ARABIC, "en", "ar"),
    ):
        model, tokenizer = build_marian(
            sources * 20,
            targets * 20,
            source_lang=source_lang,
            target_lang=target_lang,
            size=MarianSize.opus_mt(),
        )
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
        del model


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(folder: Path, dtype: str, label_count: int, repeats: int) -> dict:
    import torch
    import transformers  # noqa: F401  (its import is not the pair's memory)

    from vqa_core import translation
    from vqa_core.translation import Translator

    before = _rss_bytes()
    start = time.perf_counter()
    pair = Translator.from_pretrained(
        str(folder / "ar-en"), str(folder / "en-ar"), device="cpu", dtype=dtype
    )
    load_seconds = time.perf_counter() - start
    # safetensors are mapped, not read: pages count once a forward pass has touched them.
    pair.to_english([ARABIC[0]])
    pair.from_english([ENGLISH[0]])
    loaded = _rss_bytes() - before
    params = sum(
        p.numel()
        for direction in (pair.to_english_model, pair.from_english_model)
        for p in direction.model.parameters()
    )

    def hold(tokens: int) -> None:
        translation.MAX_NEW_TOKENS = tokens
        for direction in (pair.to_english_model, pair.from_english_model):
            direction.model.generation_config.min_new_tokens = tokens

    question = ARABIC[0]
    input_tokens = len(pair.to_english_model.tokenizer(question)["input_ids"])
    hold(QUESTION_TOKENS)
    pair.num_beams = 1
    pair.to_english([question])  # first call pays one-off allocations
    greedy = _median_seconds(lambda: pair.to_english([question]), repeats)
    pair.num_beams = translation.DEFAULT_NUM_BEAMS
    beams = _median_seconds(lambda: pair.to_english([question]), repeats)
    hold(LABEL_TOKENS)
    fresh = iter(range(10**9))

    def answer_back() -> None:
        # Five labels not seen before (the cache would hide the cost) and BLIP-2's answer.
        pair.labels_from_english([f"label {next(fresh)}" for _ in range(5)])
        pair.from_english(["a red circle"])

    answers = _median_seconds(answer_back, repeats)
    labels = [f"answer {i}" for i in range(label_count)]
    with tempfile.TemporaryDirectory() as cache:
        pair.label_cache_dir = Path(cache)
        pair._labels.clear()
        start = time.perf_counter()
        pair.warm_labels(labels)
        vocabulary = time.perf_counter() - start
        reread = Translator(
            pair.to_english_model, pair.from_english_model, label_cache_dir=Path(cache)
        )
        start = time.perf_counter()
        assert reread.warm_labels(labels) == 0
        from_disk = time.perf_counter() - start
    return {
        "dtype": str(pair.to_english_model.placement.dtype).removeprefix("torch."),
        "params": params,
        "load_s": load_seconds,
        "rss_added_gb": loaded / 1e9,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "baseline_rss_gb": before / 1e9,
        "input_tokens": input_tokens,
        "question_greedy_s": greedy,
        "question_beams_s": beams,
        "answers_back_s": answers,
        "labels": label_count,
        "vocabulary_s": vocabulary,
        "vocabulary_from_disk_s": from_disk,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--labels", type=int, default=VILT_VQA_LABELS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads in the measuring process (0: torch's default, as the app runs)",
    )
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--build", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(Path(args.build))
        return
    if args.child:
        folder, dtype = args.child
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(measure(Path(folder), dtype, args.labels, args.repeats)))
        return

    print(machine_line(), f"load average {os.getloadavg()[0]:.1f}")
    script = str(Path(__file__).resolve())
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with tempfile.TemporaryDirectory(prefix="opus-mt-shape-") as folder:
        start = time.perf_counter()
        subprocess.run([sys.executable, script, "--build", folder], check=True, env=env)
        on_disk = sum(f.stat().st_size for f in Path(folder).rglob("*.safetensors"))
        print(
            f"built both directions at opus-mt's shape in {time.perf_counter() - start:.0f} s; "
            f"weights on disk (fp32 safetensors, both): {on_disk / 1e9:.2f} GB"
        )
        rows = []
        for dtype in args.dtypes.split(","):
            done = subprocess.run(
                [
                    sys.executable,
                    script,
                    "--child",
                    folder,
                    dtype,
                    "--labels",
                    str(args.labels),
                    "--repeats",
                    str(args.repeats),
                    "--threads",
                    str(args.threads),
                ],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:
        print(
            f"\n{row['dtype']}: {row['params'] / 1e6:.1f} M parameters (both directions), "
            f"torch threads {row['threads']}\n"
            f"  load both: {row['load_s']:.1f} s; resident memory added {row['rss_added_gb']:.2f} GB,"
            f" peak of the process {row['peak_rss_gb']:.2f} GB (of which {row['baseline_rss_gb']:.2f} GB"
            " is Python, torch and transformers before the pair)\n"
            f"  one question into English ({row['input_tokens']} pieces in, {QUESTION_TOKENS} out):"
            f" greedy {row['question_greedy_s'] * 1000:.0f} ms, 4 beams "
            f"{row['question_beams_s'] * 1000:.0f} ms "
            f"({row['question_beams_s'] / row['question_greedy_s']:.1f}x)\n"
            f"  answers back (5 new ViLT labels + BLIP-2's answer, {LABEL_TOKENS} pieces each,"
            f" 4 beams): {row['answers_back_s'] * 1000:.0f} ms\n"
            f"  ViLT's vocabulary ({row['labels']} labels, 4 beams, batches of 64): "
            f"{row['vocabulary_s']:.1f} s translated, {row['vocabulary_from_disk_s'] * 1000:.0f} ms "
            f"from the disk cache ({row['vocabulary_s'] / row['vocabulary_from_disk_s']:.0f}x)"
        )


if __name__ == "__main__":
    main()
