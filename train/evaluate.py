"""Evaluate any checkpoint (ViLT or BLIP-2) on any supported source, through vqa_core.

    python -m train.evaluate --model vqa_core/demo_models/vilt-easyvqa --dataset easy-vqa
    python -m train.evaluate --model_type blip2 --model vqa_core/demo_models/blip2-easyvqa \\
        --dataset easy-vqa --max_eval_samples 1000 --output metrics.json --vqa_rules 2017
    python -m train.evaluate --model runs/vilt-vqa --vqa_rules 2017 \
        --eval_questions_file v2_OpenEnded_mscoco_val2014_questions.json \
        --eval_annotations_file v2_mscoco_val2014_annotations.json --eval_image_dir val2014

Answers for the VQA challenge server (test-dev has no public answers, so nothing is scored):

    python -m train.evaluate --model runs/vilt-vqa \\
        --questions_file v2_OpenEnded_mscoco_test-dev2015_questions.json \\
        --image_dir test2015 --results_file vqa_test-dev_results.json

The checkpoint is loaded and queried by the same answerers the app uses, so the figures
describe what users get. ``--vqa_rules`` picks the official evaluator's rule set (see
``train.metric``): ``2021`` (today's, the default) or ``2017`` (LAVIS's, behind most
published figures, BLIP-2's among them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence

from datasets import Dataset

from train.metric import VQA_RULES, score_predictions

__all__ = ["predict", "score_dataset", "evaluate_checkpoint", "write_results", "main"]

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
    """The answerer's best answer for every row of a dataset with image and question."""
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


def score_dataset(predictions: Sequence[str], dataset: Dataset, rules: str = "2021") -> dict:
    """Scores of ``predictions`` against an internal-schema dataset, naming the rule set."""
    metrics = score_predictions(
        predictions,
        dataset["answers"],
        dataset["answer_type"],
        soft_targets=list(zip(dataset["target_answers"], dataset["target_weights"])),
        rules=rules,
    )
    # Scores under the two rule sets differ, so every score says which produced it.
    return {**metrics, "vqa_rules": rules}


def evaluate_checkpoint(
    path: str,
    dataset: Dataset,
    model_type: str = "vilt",
    batch_size: int = 64,
    device: str = "auto",
    rules: str = "2021",
) -> dict:
    if rules not in VQA_RULES:
        raise ValueError(f"VQA rules must be one of {VQA_RULES}, not {rules!r}")
    answerer = _answerer(path, model_type, device)
    started = time.perf_counter()
    predictions = predict(answerer, dataset, model_type, batch_size)
    metrics = score_dataset(predictions, dataset, rules)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return metrics


def write_results(path: str, question_ids: Sequence[int], predictions: Sequence[str]) -> None:
    """Predictions in the VQA challenge server's format: one entry per question."""
    if len(question_ids) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(question_ids)} questions")
    if len(set(question_ids)) != len(question_ids):
        raise ValueError("question ids repeat; the challenge server takes one answer each")
    results = [
        {"question_id": int(question_id), "answer": str(answer)}
        for question_id, answer in zip(question_ids, predictions)
    ]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)
    logger.info("wrote %d answers to %s", len(results), path)


def _source_question_ids(data_args, count: int) -> list[int]:
    """Official question ids when the evaluation source has them, else row numbers."""
    if data_args.eval_questions_file and not data_args.eval_folder:
        # load_vqa_v2 keeps every question, in the file's order (it refuses missing images).
        with open(data_args.eval_questions_file, encoding="utf-8") as handle:
            questions = json.load(handle)["questions"]
        return [int(question["question_id"]) for question in questions[:count]]
    logger.warning(
        "the evaluation source has no question ids; the results file numbers questions by row"
    )
    return list(range(count))


def _evaluation_only_source(rest: list[str]) -> tuple[argparse.Namespace, Dataset] | None:
    """The annotated VQA v2 files or the metadata.jsonl folder given alone, loaded without a
    training source (the training options insist on one); None when other options are given."""
    from train.data import load_image_folder, load_vqa_v2

    options = argparse.ArgumentParser(add_help=False)
    for name in ("eval_questions_file", "eval_annotations_file", "eval_image_dir", "eval_folder"):
        options.add_argument(f"--{name}")
    options.add_argument("--max_eval_samples", type=int)
    args, unknown = options.parse_known_args(rest)
    vqa_v2 = [args.eval_questions_file, args.eval_annotations_file, args.eval_image_dir]
    if unknown or not (any(vqa_v2) or args.eval_folder):
        return None
    if args.eval_folder:
        evaluation, args.eval_split = load_image_folder(args.eval_folder), args.eval_folder
    elif all(vqa_v2):
        evaluation = load_vqa_v2(*vqa_v2)
        args.eval_split = args.eval_questions_file
    else:
        raise ValueError(
            "VQA v2 evaluation needs all of --eval_questions_file, --eval_annotations_file "
            "and --eval_image_dir"
        )
    if args.max_eval_samples is not None and args.max_eval_samples < 1:
        raise ValueError(f"--max_eval_samples must be at least 1, got {args.max_eval_samples}")
    return args, evaluation


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Checkpoint folder or hub id.")
    parser.add_argument("--model_type", default="vilt", choices=["vilt", "blip2"])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", help="Also write the metrics to this JSON file.")
    parser.add_argument(
        "--vqa_rules",
        default="2021",
        choices=VQA_RULES,
        help="The official evaluator's rule set: 2021 (today's) or 2017 (LAVIS's, behind "
        "BLIP-2's and most other published VQAv2 figures).",
    )
    parser.add_argument(
        "--results_file",
        help='Write [{"question_id": ..., "answer": ...}] for the VQA challenge server.',
    )
    parser.add_argument(
        "--questions_file",
        help="Official VQA v2 questions JSON without annotations (test-dev, test-std): "
        "answers go to --results_file and nothing is scored.",
    )
    parser.add_argument("--image_dir", help="With --questions_file: the COCO image folder.")
    return parser


def _answer_questions_file(own, rest: list[str], parser: argparse.ArgumentParser) -> dict:
    from train.data import load_vqa_v2_questions

    if not own.image_dir or not own.results_file:
        parser.error("--questions_file needs --image_dir and --results_file")
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--max_eval_samples", type=int)
    limits, unknown = extra.parse_known_args(rest)
    if unknown:
        parser.error(
            f"--questions_file reads no other data source; unrecognized: {' '.join(unknown)}"
        )
    questions = load_vqa_v2_questions(own.questions_file, own.image_dir)
    if limits.max_eval_samples is not None:
        if limits.max_eval_samples < 1:
            parser.error("--max_eval_samples must be at least 1")
        questions = questions.select(range(min(len(questions), limits.max_eval_samples)))
    answerer = _answerer(own.model, own.model_type, own.device)
    started = time.perf_counter()
    predictions = predict(answerer, questions, own.model_type, own.batch_size)
    write_results(own.results_file, questions["question_id"], predictions)
    return {
        "model": own.model,
        "questions_file": own.questions_file,
        "count": len(predictions),
        "results_file": own.results_file,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    from transformers import HfArgumentParser

    from train.splits import DataArguments, load_splits

    parser = _parser()
    own, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if own.questions_file:
        summary = _answer_questions_file(own, rest, parser)
        print(json.dumps(summary, indent=2))
        return summary
    if own.image_dir:
        parser.error("--image_dir goes with --questions_file")
    evaluation_only = _evaluation_only_source(rest)
    if evaluation_only is not None:
        data_args, evaluation = evaluation_only
    else:
        # The data options are the training script's, so any source it reads can be scored.
        data_args, unknown = HfArgumentParser(DataArguments).parse_args_into_dataclasses(
            args=rest, return_remaining_strings=True
        )
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        _train, evaluation = load_splits(data_args)
        if evaluation is None:
            parser.error("the source has no evaluation split; give --eval_split or --eval_folder")
    if data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(len(evaluation), data_args.max_eval_samples)))
    answerer = _answerer(own.model, own.model_type, own.device)
    started = time.perf_counter()
    predictions = predict(answerer, evaluation, own.model_type, own.batch_size)
    metrics = score_dataset(predictions, evaluation, own.vqa_rules)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    if own.results_file:
        write_results(
            own.results_file, _source_question_ids(data_args, len(evaluation)), predictions
        )
    metrics = {"model": own.model, "split": data_args.eval_split, **metrics}
    print(json.dumps(metrics, indent=2))
    if own.output:
        with open(own.output, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2)
    return metrics


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
