"""BLIP-2 trained generatively: LM loss on the answer tokens only, then served by ``vqa_core``.

The model reads ``<image>`` x num_query_tokens, ``Question: {q} Answer:`` and learns to
continue with `` {answer}</s>``. In transformers 5 the processor expands the image
placeholder inside ``input_ids`` and ``Blip2ForConditionalGeneration`` keeps ``labels`` the
same length as ``input_ids`` (it takes the last ``labels.size(1)`` logits and the causal-LM
loss shifts by one), so labels are ``input_ids`` with everything but the answer and EOS set
to -100.

Padding: the processor pads the text on the left (after the image tokens), exactly as
``Blip2Answerer`` does at inference. OPT derives positions from the attention mask, so the
prompt sits at the same positions in training and generation whatever the padding, and with
left padding every answer + EOS ends at the last column, which is where generation will
continue from.

Run the demo recipe with ``python -m train.generative --output_dir DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Trainer,
    TrainingArguments,
)

from train.builders import Blip2Size, build_blip2
from train.data import easy_vqa_answer_type, parse_type_repeats, repeated_rows
from vqa_core.questions import DEFAULT_PROMPT_TEMPLATE, format_prompt

__all__ = [
    "Blip2AnswerCollator",
    "build_blip2_from_scratch",
    "DEMO_BLIP2_ARGS",
    "train_blip2",
    "evaluate_exact_match",
    "load_easy_vqa_examples",
]

# The embedded demo's recipe; `make demo-models` and `python -m train --model_type blip2` use it.
DEMO_BLIP2_ARGS: dict = {
    "size": {
        "vision_hidden_size": 64,
        "vision_layers": 3,
        "vision_heads": 4,
        "patch_size": 8,
        "image_size": 64,
        "qformer_hidden_size": 64,
        "qformer_layers": 2,
        "qformer_heads": 4,
        "num_query_tokens": 8,
        "text_hidden_size": 64,
        "text_layers": 2,
        "text_heads": 4,
        "text_ffn_dim": 128,
        "vocab_size": 400,
        "dropout": 0.0,
    },
    "num_train_epochs": 8,
    "learning_rate": 5e-4,
    # easy-VQA asks "what shape" in 13% of questions: seen twice, shapes are learnt with the
    # rest instead of staying at chance (see the README's training section).
    "repeat_answer_types": {"shape": 2},
    "vary_question_case": True,
    "warmup_steps": 0.05,
    "lr_scheduler_type": "cosine",
    "weight_decay": 0.01,
    "per_device_train_batch_size": 64,
    "seed": 0,
    "max_new_tokens": 4,
    "torch_threads": 1,
}


@dataclass
class Blip2AnswerCollator:
    """Batches ``{"image", "question", "answer"}`` rows for BLIP-2 with answer-only LM labels."""

    processor: Blip2Processor
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    # Sentence-case half the questions: easy-VQA's are all lower case, people type "What...",
    # and a byte-level BPE (like OPT's) tells the two apart.
    vary_question_case: bool = False

    def __post_init__(self) -> None:
        format_prompt(self.prompt_template, "")  # a template without {question} fails here
        self.processor.tokenizer.padding_side = "left"

    def _answer_ids(self, answer: str) -> list[int]:
        tokenizer = self.processor.tokenizer
        # A leading space: the prompt ends in "Answer:" and generation continues with " word".
        ids = tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        return [*ids, tokenizer.eos_token_id]

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        tokenizer = self.processor.tokenizer
        images = [_rgb(example["image"]) for example in examples]
        answers = [_answer_of(example) for example in examples]
        questions = [example["question"].strip() for example in examples]
        if self.vary_question_case:
            questions = [
                sentence_case(question) if random.random() < 0.5 else question
                for question in questions
            ]
        texts = [
            format_prompt(self.prompt_template, question)
            + " "
            + answer.strip()
            + tokenizer.eos_token
            for question, answer in zip(questions, answers)
        ]
        batch = self.processor(images=images, text=texts, padding=True, return_tensors="pt")
        input_ids = batch["input_ids"]
        labels = torch.full_like(input_ids, -100)
        for row, answer in enumerate(answers):
            n = len(self._answer_ids(answer))
            # Left padding: the answer and its EOS are the last n tokens of every row.
            labels[row, -n:] = input_ids[row, -n:]
        return {
            "input_ids": input_ids,
            "attention_mask": batch["attention_mask"],
            "pixel_values": batch["pixel_values"],
            "labels": labels,
        }


def sentence_case(text: str) -> str:
    """``text`` with its first letter upper-cased and the rest untouched."""
    return text[:1].upper() + text[1:]


def _rgb(image) -> Image.Image:
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            return opened.convert("RGB")
    return image.convert("RGB")


def _answer_of(example: dict) -> str:
    if "answer" in example:
        return example["answer"]
    # The train package's internal schema: the best-scored target answer.
    return example["target_answers"][0]


def build_blip2_from_scratch(
    questions: Sequence[str],
    answers: Sequence[str],
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    **size_overrides,
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """A random BLIP-2 whose BPE tokenizer is trained on full prompts and their answers."""
    texts = [
        format_prompt(prompt_template, variant) + " " + answer
        for question, answer in zip(questions, answers)
        for variant in dict.fromkeys((question, sentence_case(question)))
    ]
    model, processor = build_blip2(texts, size=Blip2Size(**size_overrides))
    _initialise_for_scratch_training(model)
    return model, processor


@torch.no_grad()
def _initialise_for_scratch_training(model: Blip2ForConditionalGeneration, std: float = 0.02):
    """Give the vision tower, the Q-Former and the query tokens a trainable random start.

    BLIP-2 assumes a pretrained ViT and Q-Former: ``Blip2VisionConfig.initializer_range``
    defaults to 1e-10 and ``_init_weights`` zeroes ``query_tokens``, so from scratch every
    query is identical, the Q-Former's layer norm sees zero variance and its gradient
    explodes. And at the widths used here (64) the usual std of 0.02 makes the
    cross-attention's contribution ~1% of the query stream: the language model learns the
    question-only prior (loss ~0.37 per token) and never looks at the image. Linear layers
    on the image path get a fan-in scaled start instead (std = 1/sqrt(fan_in)).
    """
    model.config.vision_config.initializer_range = std
    for part in (model.vision_model, model.qformer, model.language_projection):
        for module in part.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = module.weight[0].numel()
                torch.nn.init.trunc_normal_(module.weight, std=fan_in**-0.5)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, torch.nn.LayerNorm):
                torch.nn.init.ones_(module.weight)
                torch.nn.init.zeros_(module.bias)
    embeddings = model.vision_model.embeddings
    torch.nn.init.trunc_normal_(embeddings.position_embedding, std=std)
    torch.nn.init.trunc_normal_(embeddings.class_embedding, std=std)
    torch.nn.init.normal_(model.query_tokens, std=std)


class _ImageCache:
    def __init__(self, paths: dict) -> None:
        self.paths = paths
        self.images: dict = {}

    def __getitem__(self, image_id) -> Image.Image:
        image = self.images.get(image_id)
        if image is None:
            image = self.images[image_id] = _rgb(self.paths[image_id])
        return image


class EasyVqaExamples(torch.utils.data.Dataset):
    """easy-VQA rows as ``{"image", "question", "answer"}``; each 64x64 image decoded once."""

    def __init__(self, split: str, limit: int | None = None) -> None:
        import easy_vqa

        if split == "train":
            questions, answers, image_ids = easy_vqa.get_train_questions()
            paths = easy_vqa.get_train_image_paths()
        elif split == "test":
            questions, answers, image_ids = easy_vqa.get_test_questions()
            paths = easy_vqa.get_test_image_paths()
        else:
            raise ValueError(f"Unknown easy-VQA split {split!r}; choose 'train' or 'test'.")
        limit = len(questions) if limit is None else min(limit, len(questions))
        self.questions = list(questions[:limit])
        self.answers = list(answers[:limit])
        self.image_ids = list(image_ids[:limit])
        self.paths = paths
        self.images = _ImageCache(paths)

    def repeat_answer_types(self, repeats: dict[str, int]) -> None:
        """Show each question of answer type ``t`` ``repeats[t]`` times per epoch."""
        rows = repeated_rows([easy_vqa_answer_type(answer) for answer in self.answers], repeats)
        self.questions = [self.questions[row] for row in rows]
        self.answers = [self.answers[row] for row in rows]
        self.image_ids = [self.image_ids[row] for row in rows]

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[self.image_ids[index]],
            "question": self.questions[index],
            "answer": self.answers[index],
        }


def load_easy_vqa_examples(split: str, limit: int | None = None) -> EasyVqaExamples:
    return EasyVqaExamples(split, limit)


def evaluate_exact_match(
    answerer,
    images: Sequence,
    questions: Sequence[str],
    answers: Sequence[str],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 4,
) -> dict:
    """Exact match after ``strip().lower()``, generated through ``Blip2Answerer.answer_batch``."""
    correct = 0
    start = time.perf_counter()
    for begin in range(0, len(questions), batch_size):
        end = begin + batch_size
        results = answerer.answer_batch(
            list(images[begin:end]), list(questions[begin:end]), max_new_tokens=max_new_tokens
        )
        correct += sum(
            result.answer.strip().lower() == answer.strip().lower()
            for result, answer in zip(results, answers[begin:end])
        )
    return {
        "exact_match": correct / max(1, len(questions)),
        "num_questions": len(questions),
        "eval_seconds": round(time.perf_counter() - start, 1),
    }


def _machine() -> str:
    threads = torch.get_num_threads()
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads={threads}" + (
        f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    )


def train_blip2(
    output_dir: str | os.PathLike,
    *,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    evaluate: bool = True,
    command: str | None = None,
    **recipe,
) -> dict:
    """Train the demo BLIP-2 on easy-VQA from scratch, save it with its processor, score it.

    ``recipe`` overrides :data:`DEMO_BLIP2_ARGS` (``size`` merges key by key); any other
    key is passed to ``TrainingArguments``. Returns the metrics written to the folder.
    """
    from vqa_core.blip2 import Blip2Answerer

    settings = {**DEMO_BLIP2_ARGS, **recipe}
    settings["size"] = {**DEMO_BLIP2_ARGS["size"], **recipe.get("size", {})}
    max_new_tokens = settings.pop("max_new_tokens")
    threads = settings.pop("torch_threads")
    repeats = settings.pop("repeat_answer_types", None) or {}
    vary_question_case = settings.pop("vary_question_case", False)
    if threads:
        torch.set_num_threads(threads)
    output_dir = Path(output_dir)
    start = time.perf_counter()

    train_data = load_easy_vqa_examples("train", max_train_samples)
    model, processor = build_blip2_from_scratch(
        train_data.questions, train_data.answers, **settings.pop("size")
    )
    train_questions = len(train_data)
    train_data.repeat_answer_types(repeats)  # after the tokenizer saw each question once
    model.train()
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        remove_unused_columns=False,
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        **settings,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_data,
        data_collator=Blip2AnswerCollator(processor, vary_question_case=vary_question_case),
        processing_class=processor,
    )
    train_result = trainer.train()
    train_seconds = time.perf_counter() - start
    model.eval()
    # save_strategy="no" leaves the Trainer's folder empty; keep the model folder clean.
    with contextlib.suppress(OSError):
        (output_dir / "checkpoints").rmdir()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)

    metrics = {
        "train_loss": round(train_result.training_loss, 4),
        "train_seconds": round(train_seconds, 1),
        "train_samples": train_questions,
        "train_rows_per_epoch": len(train_data),
        "machine": _machine(),
        "recipe": {**DEMO_BLIP2_ARGS, **recipe},
    }
    if evaluate:
        test = load_easy_vqa_examples("test", max_eval_samples)
        answerer = Blip2Answerer.from_pretrained(str(output_dir), device="cpu")
        images = [test.images[image_id] for image_id in test.image_ids]
        metrics["test"] = evaluate_exact_match(
            answerer, images, test.questions, test.answers, max_new_tokens=max_new_tokens
        )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_model_card(output_dir, metrics, command)
    return metrics


def _write_model_card(output_dir: Path, metrics: dict, command: str | None) -> None:
    test = metrics.get("test")
    score = (
        f"**{100 * test['exact_match']:.2f}% exact match** on {test['num_questions']} "
        "easy-VQA test questions (answer `.strip().lower()` equal to the reference), "
        "generated greedily through `vqa_core.Blip2Answerer`."
        if test
        else "Not evaluated."
    )
    params = sum(
        p.numel() for p in Blip2ForConditionalGeneration.from_pretrained(output_dir).parameters()
    )
    card = f"""---
library_name: transformers
pipeline_tag: visual-question-answering
tags: [blip-2, easy-vqa, demo]
---
# BLIP-2 easy-VQA demo

A tiny `Blip2ForConditionalGeneration` (ViT + Q-Former + OPT, {params / 1e6:.2f} M parameters)
trained from scratch on the easy-VQA train split ({metrics["train_samples"]} questions, the
`easy-vqa` PyPI package), with LM loss on the answer tokens and EOS only. It answers the
prompt `Question: {{q}} Answer:` with one word; it knows only easy-VQA's shapes and colours.

- Score: {score}
- Training time: {metrics["train_seconds"] / 60:.1f} min (final train loss {metrics["train_loss"]})
- Machine: {metrics["machine"]}
- Command: `{command or "python -m train.generative --output_dir <folder>"}`
- Recipe: `{json.dumps(metrics["recipe"])}`
"""
    (output_dir / "README.md").write_text(card)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Train the embedded BLIP-2 demo on easy-VQA.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--num_train_epochs", type=float, default=None)
    parser.add_argument("--learning_rate", type=float, default=None)
    parser.add_argument(
        "--repeat_answer_types",
        default=None,
        help="e.g. 'shape=2': show 'what shape' questions twice per epoch",
    )
    parser.add_argument("--no_eval", action="store_true")
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in (
            ("num_train_epochs", args.num_train_epochs),
            ("learning_rate", args.learning_rate),
            ("repeat_answer_types", parse_type_repeats(args.repeat_answer_types) or None),
        )
        if value is not None
    }
    command = "python -m train.generative " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:]
    )
    metrics = train_blip2(
        args.output_dir,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        evaluate=not args.no_eval,
        command=command,
        **overrides,
    )
    print(json.dumps({k: v for k, v in metrics.items() if k != "recipe"}, indent=2))
    return metrics


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
