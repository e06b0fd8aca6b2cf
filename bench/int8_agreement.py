"""Does int8 or int4 change the answers? The demo models quantized vs fp32 on easy-VQA's test split.

    python bench/int8_agreement.py                 # all 9,673 test questions, int8 and int4
    python bench/int8_agreement.py --limit 1000    # a quicker look
    python bench/int8_agreement.py --quantizations int4

Each embedded demo model (trained weights, vqa_core/demo_models) is loaded twice through
vqa_core's loaders, fp32 and int8 (torchao, fp32 activations: what vqa_core.fit picks when
only int8 fits), and int4 (the language model's layers on PyTorch's int4 kernel, the rest
int8: vqa_core.int4_cpu; ViLT generates nothing, so its int4 load is its int8 load), and all
answer every question in the same batches. Printed per model: the share of answers identical
to fp32's (ViLT: the top answer; BLIP-2: the generated text), and each precision's accuracy
against easy-VQA's labels for context. Targets: int8 >= 99% identical, int4 >= 98%.
"""

from __future__ import annotations

import argparse

from _common import machine_line

from vqa_core import Blip2Answerer, ViltAnswerer
from vqa_core.registry import DEMO_CHECKPOINTS


def test_split(limit: int | None) -> tuple[list[str], list[str], list[str]]:
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    count = len(questions) if limit is None else min(limit, len(questions))
    return (
        [paths[image_ids[i]] for i in range(count)],
        list(questions[:count]),
        list(answers[:count]),
    )


def answers_of(answerer, images: list[str], questions: list[str], batch: int) -> list[str]:
    found: list[str] = []
    for start in range(0, len(questions), batch):
        chunk = slice(start, start + batch)
        results = answerer.answer_batch(images[chunk], questions[chunk])
        found += [r.best if isinstance(answerer, ViltAnswerer) else r.answer for r in results]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N test questions")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quantizations", default="int8,int4", help="compared with fp32")
    parser.add_argument("--models", default="vilt,blip2", help="which demo models")
    args = parser.parse_args()
    quantizations = args.quantizations.split(",")
    targets = {"int8": 0.99, "int4": 0.98}
    images, questions, truth = test_split(args.limit)
    print(f"machine: {machine_line()}; easy-VQA test split, {len(questions)} questions")
    print(f"{'model':8} {'precision':9} {'identical':>10} {'fp32 acc':>9} {'its acc':>9}")
    verdicts: dict[str, list[bool]] = {q: [] for q in quantizations}
    models = args.models.split(",")
    for label, loader, folder in (
        ("ViLT", ViltAnswerer, DEMO_CHECKPOINTS["vilt"]),
        ("BLIP-2", Blip2Answerer, DEMO_CHECKPOINTS["blip2"]),
    ):
        if label.lower().replace("-", "") not in models:
            continue
        full = loader.from_pretrained(str(folder), device="cpu", dtype="float32")
        fp32_answers = answers_of(full, images, questions, args.batch)
        fp32_acc = sum(a == t for a, t in zip(fp32_answers, truth)) / len(questions)
        for quantization in quantizations:
            quantized = loader.from_pretrained(
                str(folder), device="cpu", dtype="float32", quantization=quantization
            )
            its_answers = answers_of(quantized, images, questions, args.batch)
            same = sum(a == b for a, b in zip(fp32_answers, its_answers)) / len(questions)
            its_acc = sum(a == t for a, t in zip(its_answers, truth)) / len(questions)
            verdicts[quantization].append(same >= targets.get(quantization, 0.99))
            print(
                f"{label:8} {quantization:9} {100 * same:9.2f}% {100 * fp32_acc:8.2f}% "
                f"{100 * its_acc:8.2f}%",
                flush=True,
            )
    for quantization, met in verdicts.items():
        target = 100 * targets.get(quantization, 0.99)
        print(
            f"{quantization}: target >= {target:.0f}% identical: {'met' if all(met) else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
