"""Training throughput: train's on-the-fly collator vs the guide's map(padding="max_length").

    python bench/train_throughput.py [--sizes 512,2048] [--epochs 1]

Both sides train the same from-scratch ViLT (``python -m train --from_scratch`` defaults:
hidden 128, 4 layers, patch 8, 64 px) on the same easy-VQA subset with the same Trainer
settings; only the data path differs:
- ours: ``train.collator.ViltVqaCollator`` decodes and processes each batch when it is drawn
  (what ``python -m train`` does; nothing is stored);
- the guide: ``dataset.map(..., batched=True)`` with ``padding="max_length"``, storing pixel
  tensors and targets in the dataset, then the default collator.
Timed end to end from the raw dataset (preprocessing included) to the end of training, each
run in its own process so its peak RSS is its own. Targets: >= 2x samples/s, and peak memory
flat in the dataset size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch
from _common import machine_line


def worker(recipe: str, size: int, epochs: int) -> dict:
    from transformers import Trainer, TrainingArguments, default_data_collator

    from train.builders import ViltSize, build_vilt
    from train.collator import ViltVqaCollator
    from train.data import build_answer_vocabulary, load_easy_vqa, soft_target_vector

    torch.manual_seed(0)
    dataset = load_easy_vqa("train").select(range(size))
    vocabulary = build_answer_vocabulary(dataset)
    model_size = ViltSize(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                          intermediate_size=256, patch_size=8, image_size=64)  # fmt: skip
    model, processor = build_vilt(dataset["question"], vocabulary, size=model_size)
    model.train()
    label2id = dict(model.config.label2id)
    max_length = model.config.max_position_embeddings

    started = time.perf_counter()
    if recipe == "guide":

        def preprocess(batch):
            encoding = processor(
                images=[image.convert("RGB") for image in batch["image"]],
                text=batch["question"],
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            encoding["labels"] = [
                soft_target_vector(answers, weights, label2id)
                for answers, weights in zip(batch["target_answers"], batch["target_weights"])
            ]
            return encoding

        train_dataset = dataset.map(preprocess, batched=True, remove_columns=dataset.column_names)
        collator, remove_unused = default_data_collator, True
    else:
        train_dataset = dataset
        collator = ViltVqaCollator(processor, label2id=label2id, max_length=max_length)
        remove_unused = False
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=32,
            num_train_epochs=epochs,
            learning_rate=1e-4,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            remove_unused_columns=remove_unused,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=train_dataset, data_collator=collator
        )
        trainer.train()
    seconds = time.perf_counter() - started
    return {
        "recipe": recipe,
        "size": size,
        "seconds": seconds,
        "samples_per_s": size * epochs / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("RECIPE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.epochs)))
        return

    print(f"machine: {machine_line()}; easy-VQA train subset, {args.epochs} epoch(s), batch 32")
    print(f"{'samples':>7} {'recipe':7} {'seconds':>8} {'samples/s':>10} {'peak RSS MB':>12}")
    for size in (int(s) for s in args.sizes.split(",")):
        rows = {}
        for recipe in ("ours", "guide"):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", recipe, str(size), "--epochs", str(args.epochs)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )  # fmt: skip
            if done.returncode != 0:
                print(f"{size:7d} {recipe:7} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows[recipe] = row
            print(
                f"{size:7d} {recipe:7} {row['seconds']:8.1f} {row['samples_per_s']:10.1f} "
                f"{row['peak_rss_mb']:12.0f}"
            )
        if len(rows) == 2:
            print(
                f"  ours/guide samples/s {rows['ours']['samples_per_s'] / rows['guide']['samples_per_s']:.2f}x"
                f" (target >= 2x), peak RSS {rows['ours']['peak_rss_mb']:.0f} vs "
                f"{rows['guide']['peak_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
