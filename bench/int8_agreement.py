"""Does int8 change the answers? The demo models in int8 vs fp32 on the easy-VQA test split.

    python bench/int8_agreement.py                 # all 9,673 test questions
    python bench/int8_agreement.py --limit 1000    # a quicker look

Each embedded demo model (trained weights, vqa_core/demo_models) is loaded twice through
vqa_core's loaders, fp32 and int8 (torchao, fp32 activations: what vqa_core.fit picks when
only int8 fits), and both answer every question in the same batches. Printed per model: the
share of identical answers (ViLT: the top answer; BLIP-2: the generated text), and each
precision's accuracy against easy-VQA's labels for context. Target: >= 99% identical.
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
    args = parser.parse_args()
    images, questions, truth = test_split(args.limit)
    print(f"machine: {machine_line()}; easy-VQA test split, {len(questions)} questions")
    print(f"{'model':8} {'identical':>10} {'fp32 acc':>9} {'int8 acc':>9}")
    verdicts = []
    for label, loader, folder in (
        ("ViLT", ViltAnswerer, DEMO_CHECKPOINTS["vilt"]),
        ("BLIP-2", Blip2Answerer, DEMO_CHECKPOINTS["blip2"]),
    ):
        full = loader.from_pretrained(str(folder), device="cpu", dtype="float32")
        int8 = loader.from_pretrained(
            str(folder), device="cpu", dtype="float32", quantization="int8"
        )
        fp32_answers = answers_of(full, images, questions, args.batch)
        int8_answers = answers_of(int8, images, questions, args.batch)
        same = sum(a == b for a, b in zip(fp32_answers, int8_answers)) / len(questions)
        fp32_acc = sum(a == t for a, t in zip(fp32_answers, truth)) / len(questions)
        int8_acc = sum(a == t for a, t in zip(int8_answers, truth)) / len(questions)
        verdicts.append(same >= 0.99)
        print(f"{label:8} {100 * same:9.2f}% {100 * fp32_acc:8.2f}% {100 * int8_acc:8.2f}%")
    print(f"target >= 99% identical: {'met' if all(verdicts) else 'MISSED'}")


if __name__ == "__main__":
    main()
