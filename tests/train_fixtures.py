"""Tiny on-disk datasets in every offline source format, built from easy-VQA's images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# A config that builds and steps in well under a second on 2 CPU cores.
TINY_MODEL_ARGS = [
    "--from_scratch",
    "--hidden_size", "32",
    "--num_hidden_layers", "1",
    "--num_attention_heads", "2",
    "--intermediate_size", "64",
    "--patch_size", "16",
    "--tokenizer_vocab_size", "120",
]  # fmt: skip

TINY_TRAINING_ARGS = [
    "--do_train",
    "--do_eval",
    "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "16",
    "--report_to", "none",
    "--disable_tqdm", "true",
    "--save_strategy", "no",
    "--use_cpu", "true",
    "--dataloader_pin_memory", "false",
]  # fmt: skip


def easy_vqa_rows(split: str, count: int) -> list[tuple[str, str, str]]:
    """(question, answer, image path) for the first ``count`` questions of a split."""
    import easy_vqa

    if split == "train":
        questions, answers, ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    else:
        questions, answers, ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    return [(questions[i], answers[i], paths[ids[i]]) for i in range(count)]


def make_graphcore_dataset(root: Path, train_count: int = 32, eval_count: int = 16) -> Path:
    """A DatasetDict in the Graphcore/vqa schema (image_id paths, label.ids/weights), saved
    with save_to_disk as the task guide's data would be."""
    from datasets import Dataset, DatasetDict

    def split(rows):
        return Dataset.from_dict(
            {
                "question": [q for q, _, _ in rows],
                "question_type": ["what" for _ in rows],
                "question_id": list(range(len(rows))),
                "image_id": [path for _, _, path in rows],
                "answer_type": ["other" for _ in rows],
                # The easy answer earns 1.0; a made-up second answer earns 0.3.
                "label": [{"ids": [a, "something"], "weights": [1.0, 0.3]} for _, a, _ in rows],
            }
        )

    path = root / "graphcore"
    DatasetDict(
        {
            "train": split(easy_vqa_rows("train", train_count)),
            "validation": split(easy_vqa_rows("test", eval_count)),
        }
    ).save_to_disk(str(path))
    return path


def make_vqa_v2(root: Path, split: str, count: int) -> tuple[Path, Path, Path]:
    """Official VQA v2 questions/annotations JSON and a COCO-named image folder."""
    images = root / f"{split}2014"
    images.mkdir(parents=True, exist_ok=True)
    questions, annotations = [], []
    for index, (question, answer, path) in enumerate(easy_vqa_rows(split, count)):
        image_id = 1000 + index
        shutil.copy(path, images / f"COCO_{split}2014_{image_id:012d}.png")
        # 7 annotators agree, 3 said "blue": soft targets answer 1.0, blue 0.9.
        humans = [answer] * 7 + ["blue"] * 3 if answer != "blue" else [answer] * 10
        questions.append({"image_id": image_id, "question": question, "question_id": index})
        annotations.append(
            {
                "question_id": index,
                "image_id": image_id,
                "answer_type": "yes/no" if answer in ("yes", "no") else "other",
                "multiple_choice_answer": answer,
                "answers": [
                    {"answer": human, "answer_confidence": "yes", "answer_id": i + 1}
                    for i, human in enumerate(humans)
                ],
            }
        )
    questions_file = root / f"v2_OpenEnded_mscoco_{split}2014_questions.json"
    annotations_file = root / f"v2_mscoco_{split}2014_annotations.json"
    questions_file.write_text(json.dumps({"questions": questions}))
    annotations_file.write_text(json.dumps({"annotations": annotations}))
    return questions_file, annotations_file, images


def make_image_folder(root: Path, train_count: int = 32, eval_count: int = 16) -> Path:
    """A museum-style folder: train/ and test/, each with images and a metadata.jsonl."""
    folder = root / "museum"
    for split, count in (("train", train_count), ("test", eval_count)):
        target = folder / split
        target.mkdir(parents=True)
        with open(target / "metadata.jsonl", "w", encoding="utf-8") as handle:
            for index, (question, answer, path) in enumerate(easy_vqa_rows(split, count)):
                name = f"{index:04d}.png"
                shutil.copy(path, target / name)
                record = {"file_name": name, "question": question, "answer": answer}
                handle.write(json.dumps(record) + "\n")
    return folder
