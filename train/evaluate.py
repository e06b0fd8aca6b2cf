"""Evaluate any checkpoint (ViLT or BLIP-2) on any supported source, through vqa_core.

    python -m train.evaluate --model vqa_core/demo_models/vilt-easyvqa --dataset easy-vqa
    python -m train.evaluate --model_type blip2 --model vqa_core/demo_models/blip2-easyvqa \
        --dataset easy-vqa --max_eval_samples 1000 --output metrics.json

The checkpoint is loaded and queried by the same answerers the app uses, so the figures
describe what users get.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from datasets import Dataset

from train.metric import score_predictions

__all__ = ["predict", "evaluate_checkpoint", "main"]

logger = logging.getLogger("train.evaluate")


def _answerer(path: str, model_type: str, device: str):
    if model_type == "vilt":
        from vqa_core.vilt import ViltAnswerer

        return ViltAnswerer.from_pretrained(path, device=device)
    if model_type == "blip2":
        from vqa_core.blip2 import Blip2Answerer

        return Blip2Answerer.from_pretrained(path, device=device)
    raise ValueError(f"model_type must be 'vilt' or 'blip2', not {model_type!r}")


def predict(answerer, dataset: Dataset, model_type: str, batch_size: int = 64) -> list[str]:
    """The answerer's best answer for every row of an internal-schema dataset."""
    predictions: list[str] = []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        images = [image.convert("RGB") for image in rows["image"]]
        if model_type == "vilt":
            results = answerer.answer_batch(images, rows["question"], top_k=1)
            predictions.extend(result.best for result in results)
        else:
            results = answerer.answer_batch(images, rows["question"])
            predictions.extend(result.answer for result in results)
    return predictions


def evaluate_checkpoint(
    path: str,
    dataset: Dataset,
    model_type: str = "vilt",
    batch_size: int = 64,
    device: str = "auto",
) -> dict[str, float]:
    answerer = _answerer(path, model_type, device)
    started = time.perf_counter()
    predictions = predict(answerer, dataset, model_type, batch_size)
    metrics = score_predictions(
        predictions,
        dataset["answers"],
        dataset["answer_type"],
        soft_targets=list(zip(dataset["target_answers"], dataset["target_weights"])),
    )
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    from transformers import HfArgumentParser

    from train.splits import DataArguments, load_splits

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Checkpoint folder or hub id.")
    parser.add_argument("--model_type", default="vilt", choices=["vilt", "blip2"])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", help="Also write the metrics to this JSON file.")
    own, rest = parser.parse_known_args(argv)
    # The data options are the training script's, so any source it reads can be scored.
    data_args, unknown = HfArgumentParser(DataArguments).parse_args_into_dataclasses(
        args=rest, return_remaining_strings=True
    )
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _train, evaluation = load_splits(data_args)
    if evaluation is None:
        parser.error("the source has no evaluation split; give --eval_split or --eval_folder")
    if data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(len(evaluation), data_args.max_eval_samples)))
    metrics = evaluate_checkpoint(
        own.model, evaluation, own.model_type, own.batch_size, device=own.device
    )
    metrics = {"model": own.model, "split": data_args.eval_split, **metrics}
    print(json.dumps(metrics, indent=2))
    if own.output:
        with open(own.output, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2)
    return metrics


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
