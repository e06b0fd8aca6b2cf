"""The training and evaluation data options, and the splits they name.

Shared by ``train.run_vqa`` (training) and ``train.evaluate`` (scoring) so that either can
read any source the other can, without importing each other.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from train.data import (
    AUGMENTATIONS,
    is_image_folder,
    load_easy_vqa,
    load_graphcore,
    load_image_folder,
    load_vqa_v2,
    parse_type_repeats,
)

__all__ = ["DataArguments", "load_splits"]

logger = logging.getLogger("train")


@dataclass
class DataArguments:
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "'easy-vqa', a folder with metadata.jsonl, or a Graphcore/vqa-schema "
            "dataset (hub name, or a local folder saved with save_to_disk)."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    eval_split: str | None = field(
        default=None,
        metadata={"help": "Split to evaluate on (default: test for easy-vqa, else validation)."},
    )
    image_root: str | None = field(
        default=None, metadata={"help": "Graphcore schema: folder that image_id paths are under."}
    )
    train_questions_file: str | None = field(default=None, metadata={"help": "VQA v2 questions."})
    train_annotations_file: str | None = field(default=None, metadata={"help": "VQA v2 answers."})
    train_image_dir: str | None = field(default=None, metadata={"help": "VQA v2 images."})
    eval_questions_file: str | None = field(default=None, metadata={"help": "VQA v2 questions."})
    eval_annotations_file: str | None = field(default=None, metadata={"help": "VQA v2 answers."})
    eval_image_dir: str | None = field(default=None, metadata={"help": "VQA v2 images."})
    eval_folder: str | None = field(
        default=None, metadata={"help": "Image folder with metadata.jsonl to evaluate on."}
    )
    max_answers: int | None = field(
        default=None,
        metadata={"help": "Keep the N most frequent training answers (3129 for VQA v2)."},
    )
    augment: str = field(
        default="none",
        metadata={
            "help": "Training-image augmentation: 'none' or 'dihedral' (random 90-degree turns "
            "and mirror images; only for data whose answers do not depend on orientation)."
        },
    )
    repeat_answer_types: str | None = field(
        default=None,
        metadata={
            "help": "Show training questions of some answer types more often, e.g. 'shape=2' "
            "repeats easy-VQA's 'what shape' questions twice per epoch (a rare type that the "
            "image side learns last). Comma-separated type=count pairs; counts are integers."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate training."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate evaluation."})

    def __post_init__(self):
        vqa_v2 = [self.train_questions_file, self.train_annotations_file, self.train_image_dir]
        if any(vqa_v2) and not all(vqa_v2):
            raise ValueError(
                "VQA v2 needs all of --train_questions_file, --train_annotations_file and "
                "--train_image_dir"
            )
        eval_v2 = [self.eval_questions_file, self.eval_annotations_file, self.eval_image_dir]
        if any(eval_v2) and not all(eval_v2):
            raise ValueError(
                "VQA v2 evaluation needs all of --eval_questions_file, --eval_annotations_file "
                "and --eval_image_dir"
            )
        if bool(self.dataset) == all(vqa_v2):
            raise ValueError(
                "give exactly one training source: --dataset (easy-vqa, a metadata.jsonl "
                "folder, or a Graphcore/vqa-schema dataset) or the three --train_* VQA v2 files"
            )
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"--augment must be one of {AUGMENTATIONS}, not {self.augment!r}")
        for name in ("max_answers", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}")
        if self.eval_split is None:
            self.eval_split = "test" if self.dataset == "easy-vqa" else "validation"
        self.answer_type_repeats = parse_type_repeats(self.repeat_answer_types)


def load_splits(data_args: DataArguments, cache_dir: str | None = None):
    """(train, eval) in the internal schema; eval may be None when there is none."""
    source = data_args.dataset
    if source is None:
        train = load_vqa_v2(
            data_args.train_questions_file,
            data_args.train_annotations_file,
            data_args.train_image_dir,
        )
        evaluation = None
    elif source == "easy-vqa":
        train, evaluation = (
            load_easy_vqa(data_args.train_split),
            load_easy_vqa(data_args.eval_split),
        )
    elif os.path.isdir(source) and is_image_folder(source):
        # A museum's own Q&A: train/ and test/ (or validation/) subfolders, or one folder.
        subfolder = os.path.join(source, data_args.train_split)
        train = load_image_folder(subfolder if is_image_folder(subfolder) else source)
        evaluation = None
        for name in (data_args.eval_split, "test", "validation"):
            if is_image_folder(os.path.join(source, name)):
                evaluation = load_image_folder(os.path.join(source, name))
                break
    else:
        train = load_graphcore(source, data_args.train_split, data_args.image_root, cache_dir)
        try:
            evaluation = load_graphcore(
                source, data_args.eval_split, data_args.image_root, cache_dir
            )
        except (ValueError, KeyError) as error:
            logger.warning("no evaluation split %r: %s", data_args.eval_split, error)
            evaluation = None
    if data_args.eval_questions_file:
        evaluation = load_vqa_v2(
            data_args.eval_questions_file, data_args.eval_annotations_file, data_args.eval_image_dir
        )
    if data_args.eval_folder:
        evaluation = load_image_folder(data_args.eval_folder)
    return train, evaluation
