"""Fine-tune (or train from scratch) a ViLT VQA classifier with the Trainer.

    python -m train --dataset easy-vqa --from_scratch --output_dir runs/vilt-easyvqa
    python -m train --dataset Graphcore/vqa --output_dir runs/vilt-vqa   # needs the hub
    accelerate launch --multi_gpu --num_processes 4 -m train ...        # 4 GPUs
    accelerate launch --multi_gpu --num_processes 2 -m train ... --use_cpu true  # 2 CPU procs

Every ``TrainingArguments`` option works (``--resume_from_checkpoint``, ``--bf16``, ...).
``--model_type blip2`` trains BLIP-2 generatively through ``train.generative``.

With several processes (docs/training.md) each trains on its own share of every global
batch; only the main process writes the model, the evaluation and the model card.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import datasets
import torch
import transformers
from transformers import (
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    ViltForQuestionAnswering,
    ViltProcessor,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from train.builders import ViltSize, build_vilt, train_wordpiece_tokenizer
from train.collator import ViltVqaCollator
from train.data import (
    build_answer_vocabulary,
    dihedral_augment,
    repeat_answer_types,
)
from train.evaluate import evaluate_checkpoint
from train.metric import VQA_RULES
from train.splits import DataArguments, load_splits

logger = logging.getLogger("train")

T = TypeVar("T")

MODEL_TYPES = ("vilt", "blip2")


@dataclass
class ModelArguments:
    model_type: str = field(default="vilt", metadata={"help": f"One of {MODEL_TYPES}."})
    model_name_or_path: str = field(
        default="dandelin/vilt-b32-mlm",
        metadata={"help": "Pretrained base (hub id or local folder); ignored with --from_scratch."},
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Random init with a small config and a tokenizer trained on the data."},
    )
    hidden_size: int = field(default=128, metadata={"help": "--from_scratch: width."})
    num_hidden_layers: int = field(default=4, metadata={"help": "--from_scratch: depth."})
    num_attention_heads: int = field(default=4, metadata={"help": "--from_scratch: heads."})
    intermediate_size: int = field(default=256, metadata={"help": "--from_scratch: MLP width."})
    patch_size: int = field(default=8, metadata={"help": "--from_scratch: ViT patch size."})
    image_size: int = field(default=64, metadata={"help": "--from_scratch: input image size."})
    max_text_length: int = field(default=40, metadata={"help": "Question tokens kept."})
    tokenizer_vocab_size: int = field(default=1000, metadata={"help": "--from_scratch."})
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "--from_scratch: reuse this saved tokenizer (folder or hub id) instead of "
            "training one on the questions; makes from-scratch runs reproducible."
        },
    )
    dropout: float = field(default=0.0, metadata={"help": "--from_scratch: dropout."})
    cache_dir: str | None = field(default=None, metadata={"help": "Hub cache folder."})

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"--model_type must be one of {MODEL_TYPES}, not {self.model_type!r}")
        if self.from_scratch and self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"--hidden_size {self.hidden_size} must be divisible by "
                f"--num_attention_heads {self.num_attention_heads}"
            )
        if self.from_scratch and self.image_size % self.patch_size:
            raise ValueError(
                f"--image_size {self.image_size} must be a multiple of --patch_size {self.patch_size}"
            )
        if self.max_text_length < 4:
            raise ValueError("--max_text_length must leave room for [CLS], a word and [SEP]")
        if self.tokenizer_name and not (self.from_scratch and self.model_type == "vilt"):
            raise ValueError(
                "--tokenizer_name is for --from_scratch ViLT runs; a pretrained model brings "
                "its own tokenizer"
            )


@dataclass
class EvalArguments:
    vqa_rules: str = field(
        default="2021",
        metadata={
            "help": f"The official VQA evaluator's rule set for the final score, one of "
            f"{VQA_RULES}: 2021 (today's) or 2017 (LAVIS's, behind most published figures)."
        },
    )

    def __post_init__(self):
        if self.vqa_rules not in VQA_RULES:
            raise ValueError(f"--vqa_rules must be one of {VQA_RULES}, not {self.vqa_rules!r}")


_MPI_WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def check_launch() -> None:
    """Refuse a launch that asked for several processes but got one.

    ``accelerate launch --cpu --num_processes N`` starts N processes only through MPI
    (``--mpirun_hostfile``); without it, it starts this script once with MASTER_ADDR set
    and nothing else, and training would silently run on one process.
    """
    asked_for_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    alone = "WORLD_SIZE" not in os.environ and not any(
        name in os.environ for name in _MPI_WORLD_SIZE_VARIABLES
    )
    if asked_for_cpu and alone and "MASTER_ADDR" in os.environ:
        raise RuntimeError(
            "accelerate launch --cpu started one process: it starts several CPU processes "
            "only through MPI (--mpirun_hostfile). For several processes over gloo use "
            "`accelerate launch --multi_gpu --num_processes N -m train ... --use_cpu true` "
            "(or `torchrun --nproc_per_node N -m train ... --use_cpu true`)."
        )


def check_process_group(training_args: TrainingArguments) -> None:
    """Every process the launcher started must be in one training group.

    On a machine without a GPU, processes started by torchrun (or ``accelerate launch
    --multi_gpu``) without ``--use_cpu true`` each train alone on all the data and all
    write the same files; stop before that happens.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes but they did not join one training "
            f"group (world size {training_args.world_size}), so each would train alone; on a "
            "machine without a GPU add --use_cpu true so they join over gloo"
        )


def made_once(make: Callable[[], T], training_args: TrainingArguments) -> T:
    """``make()`` run by the main process only, its result copied to every other process.

    For what must be identical everywhere but is not reproducible run to run: tokenizer
    training breaks ties differently each time, so processes that each trained their own
    would feed the one model different token ids for the same words.
    """
    made = make() if training_args.process_index == 0 else None
    if training_args.world_size == 1:
        return made
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([made], from_process=0)[0]


def get_last_checkpoint_or_none(output_dir: str) -> str | None:
    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def describe_machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), {os.cpu_count()} CPU cores"
    return (
        f"CPU only: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} using {torch.get_num_threads()} threads; load average "
        f"{os.getloadavg()[1]:.1f} over the last 5 minutes"
    )


def write_model_card(
    output_dir, model_args, data_args, metrics, train_seconds, command, vqa_rules="2021"
):
    source = data_args.dataset or f"VQA v2 JSON ({data_args.train_questions_file})"
    base = "from scratch" if model_args.from_scratch else model_args.model_name_or_path
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: visual-question-answering",
        "---",
        f"# {model_args.model_type.upper()} visual question answering ({source})",
        "",
        f"Trained with this project's `train` package, {base}, on `{source}` "
        f"(split `{data_args.train_split}`, {metrics.get('train_questions', '?')} questions"
        + (
            f", answer types repeated per epoch: {data_args.repeat_answer_types}"
            if data_args.answer_type_repeats
            else ""
        )
        + "); "
        f"evaluated on split `{data_args.eval_split}` "
        f"({metrics.get('eval_count', 'no')} questions).",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        "## Results",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in sorted(metrics.items())],
        "",
        f"Measured training time: {train_seconds / 60:.1f} minutes on {describe_machine()}"
        + (
            f", {metrics['train_processes']} processes (global batch "
            f"{metrics.get('train_global_batch_size', '?')})."
            if metrics.get("train_processes", 1) > 1
            else "."
        ),
        "",
        f"Accuracy follows the official VQA evaluator under its {vqa_rules} rules "
        f"(`eval_vqa_rules`; normalized answers, leave-one-out `min(1, matches/3)`; "
        + (
            "today's rules, see docs/vqa-accuracy.md"
            if vqa_rules == "2021"
            else "the earlier rules LAVIS ships, behind most published figures; see "
            "docs/vqa-accuracy.md"
        )
        + "); single-answer data is scored by exact match under either rule set.",
        "",
        "## Model arguments",
        "",
        "```json",
        json.dumps(asdict(model_args), indent=2),
        "```",
        "",
    ]
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def main(argv: list[str] | None = None) -> dict:
    check_launch()
    parser = HfArgumentParser((ModelArguments, DataArguments, EvalArguments, TrainingArguments))
    model_args, data_args, eval_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_process_group(training_args)
    command = "python -m train " + shlex.join(sys.argv[1:] if argv is None else argv)
    # Our collators read the raw columns (image, question, targets), so the Trainer must
    # not drop the ones the model's forward() does not name.
    training_args.remove_unused_columns = False

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info("Training parameters %s", training_args)

    # Resuming is explicit: --resume_from_checkpoint PATH, or "last" (or "true") for the
    # newest checkpoint in output_dir, so a fresh run never silently continues an old one.
    resume = training_args.resume_from_checkpoint
    if resume is not None and resume.lower() in ("last", "true"):
        resume = (
            get_last_checkpoint(training_args.output_dir)
            if os.path.isdir(training_args.output_dir)
            else None
        )
        if resume is None:
            raise ValueError(f"no checkpoint to resume from in {training_args.output_dir}")
    elif resume is None and get_last_checkpoint_or_none(training_args.output_dir):
        logger.warning(
            "%s holds checkpoints; starting afresh (pass --resume_from_checkpoint last to "
            "continue)",
            training_args.output_dir,
        )
    set_seed(training_args.seed)

    # Data: every source becomes the same schema; the vocabulary comes from training only.
    # The main process converts first, so the others reuse its datasets cache, not race it.
    with training_args.main_process_first(desc="loading the data"):
        train_dataset, eval_dataset = load_splits(data_args, model_args.cache_dir)
    if data_args.max_train_samples is not None:
        train_dataset = train_dataset.select(
            range(min(len(train_dataset), data_args.max_train_samples))
        )
    if eval_dataset is not None and data_args.max_eval_samples is not None:
        eval_dataset = eval_dataset.select(
            range(min(len(eval_dataset), data_args.max_eval_samples))
        )
    logger.info(
        "%d training questions, %s evaluation questions",
        len(train_dataset),
        len(eval_dataset) if eval_dataset is not None else "no",
    )

    if model_args.model_type == "blip2":
        from train.generative import Blip2AnswerCollator, build_blip2_from_scratch

        if not model_args.from_scratch or resume:
            from transformers import Blip2ForConditionalGeneration, Blip2Processor

            # Resuming a from-scratch run reuses the checkpoint's own tokenizer.
            source = resume or model_args.model_name_or_path
            processor = Blip2Processor.from_pretrained(source)
            model = Blip2ForConditionalGeneration.from_pretrained(source)
        else:
            # Built whole by the main process (its BPE tokenizer is trained on the data) and
            # copied to the others; from-scratch models are small.
            model, processor = made_once(
                lambda: build_blip2_from_scratch(
                    train_dataset["question"], [a[0] for a in train_dataset["target_answers"]]
                ),
                training_args,
            )
        blip2_collator = Blip2AnswerCollator(processor)

        def collator(examples):
            # Train on the best-scored answer of each question.
            return blip2_collator(
                [
                    {
                        "image": example["image"].convert("RGB"),
                        "question": example["question"],
                        "answer": max(
                            zip(example["target_answers"], example["target_weights"]),
                            key=lambda pair: pair[1],
                        )[0],
                    }
                    for example in examples
                ]
            )
    else:
        vocabulary = build_answer_vocabulary(train_dataset, data_args.max_answers)
        logger.info("answer vocabulary: %d answers", len(vocabulary))
        if model_args.from_scratch and resume:
            # A from-scratch run trained its own tokenizer, and tokenizer training is not
            # reproducible run to run; resuming must reuse the checkpoint's, not train anew.
            processor = ViltProcessor.from_pretrained(resume)
            model = ViltForQuestionAnswering.from_pretrained(resume)
        elif model_args.from_scratch:
            size = ViltSize(
                hidden_size=model_args.hidden_size,
                num_hidden_layers=model_args.num_hidden_layers,
                num_attention_heads=model_args.num_attention_heads,
                intermediate_size=model_args.intermediate_size,
                patch_size=model_args.patch_size,
                image_size=model_args.image_size,
                max_position_embeddings=model_args.max_text_length,
                vocab_size=model_args.tokenizer_vocab_size,
                hidden_dropout_prob=model_args.dropout,
                attention_probs_dropout_prob=model_args.dropout,
            )
            tokenizer = (
                AutoTokenizer.from_pretrained(model_args.tokenizer_name)
                if model_args.tokenizer_name
                else made_once(
                    lambda: train_wordpiece_tokenizer(train_dataset["question"], size.vocab_size),
                    training_args,
                )
            )
            model, processor = build_vilt(
                train_dataset["question"], vocabulary, size=size, tokenizer=tokenizer
            )
        else:
            processor = ViltProcessor.from_pretrained(
                model_args.model_name_or_path, cache_dir=model_args.cache_dir
            )
            # A fresh classifier head over our vocabulary; the pretrained body is kept.
            model = ViltForQuestionAnswering.from_pretrained(
                model_args.model_name_or_path,
                cache_dir=model_args.cache_dir,
                num_labels=len(vocabulary),
                id2label=dict(enumerate(vocabulary)),
                label2id={answer: i for i, answer in enumerate(vocabulary)},
                ignore_mismatched_sizes=True,
            )
        model.train()
        # ViLT's loss is a per-batch mean that ignores the Trainer's item count, yet its
        # forward() takes **kwargs, so the Trainer would scale it by the process count as if
        # it were a sum: twice the gradients on 2 processes. Declaring it keeps 1 process
        # and N processes the same update.
        model.accepts_loss_kwargs = False
        collator = ViltVqaCollator(
            processor,
            label2id=dict(model.config.label2id),
            max_length=min(model_args.max_text_length, model.config.max_position_embeddings),
        )

    train_questions = len(train_dataset)
    if data_args.answer_type_repeats:
        # After the vocabulary and tokenizer, so repeats change what is seen, not what exists.
        train_dataset = repeat_answer_types(train_dataset, data_args.answer_type_repeats)
        logger.info("%d training questions after repeats", len(train_dataset))
    if data_args.augment == "dihedral":
        # Applied on read, after the vocabulary and tokenizer were built from the raw rows.
        train_dataset = train_dataset.with_transform(dihedral_augment)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        data_collator=collator,
        processing_class=processor,
    )

    metrics: dict = {}
    train_seconds = 0.0
    if training_args.do_train:
        started = time.perf_counter()
        train_result = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        # The Trainer saves the processor (its processing_class) beside the model, so
        # vqa_core loads the folder directly; both from the main process only.
        trainer.save_model()
        metrics.update(train_result.metrics)
        metrics["train_samples"] = len(train_dataset)  # per epoch, repeats included
        metrics["train_questions"] = train_questions
        metrics["train_wall_seconds"] = round(train_seconds, 1)
        metrics["train_processes"] = training_args.world_size
        metrics["train_global_batch_size"] = (
            training_args.per_device_train_batch_size
            * training_args.world_size
            * training_args.gradient_accumulation_steps
        )
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_state()

    if training_args.do_eval and eval_dataset is not None and trainer.is_world_process_zero():
        # Scored through vqa_core's loader and answerer: what the app will serve.
        scores = evaluate_checkpoint(
            training_args.output_dir,
            eval_dataset,
            model_type=model_args.model_type,
            batch_size=training_args.per_device_eval_batch_size,
            rules=eval_args.vqa_rules,
        )
        metrics.update({f"eval_{key}": value for key, value in scores.items()})
        trainer.log_metrics("eval", scores)

    if trainer.is_world_process_zero():
        trainer.save_metrics("all", metrics)
        write_model_card(
            training_args.output_dir,
            model_args,
            data_args,
            metrics,
            train_seconds,
            command,
            vqa_rules=eval_args.vqa_rules,
        )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Leave together and close the process group: a rank that exits while the other
        # still talks through gloo can abort at exit ("terminate called without an active
        # exception"), failing a run whose work had finished.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics


if __name__ == "__main__":
    main()
