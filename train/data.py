"""Every supported VQA source, turned into one schema the training loop understands.

Internal schema, one row per question:
    question         str
    image            datasets.Image (stored as a path or bytes; decoded only when a row is read)
    target_answers   list[str]   answers that earn credit
    target_weights   list[float] their soft scores in [0, 1]
    answers          list[str]   the human answers the metric compares against
    answer_type      str         "" when the source has none

Images stay as paths until a batch is built, so memory does not grow with dataset size
times image size (the task guide's ``map(..., padding="max_length")`` stores every padded
pixel tensor).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, Image, Value
from datasets import Sequence as HfSequence

from vqa_core.answer_norm import normalize_answer

__all__ = [
    "FEATURES",
    "soft_score",
    "vqa_v2_targets",
    "soft_target_vector",
    "build_answer_vocabulary",
    "load_easy_vqa",
    "load_vqa_v2",
    "load_vqa_v2_questions",
    "load_image_folder",
    "load_graphcore",
    "is_image_folder",
    "AUGMENTATIONS",
    "dihedral_augment",
    "easy_vqa_answer_type",
    "parse_type_repeats",
    "repeated_rows",
    "repeat_answer_types",
]

# "dihedral": a random one of the 8 rotations/reflections of the square. Only for data whose
# answers do not depend on orientation (easy-VQA's shapes and colours); never for questions
# about left/right or text.
AUGMENTATIONS = ("none", "dihedral")

FEATURES = Features(
    {
        "question": Value("string"),
        "image": Image(),
        "target_answers": HfSequence(Value("string")),
        "target_weights": HfSequence(Value("float32")),
        "answers": HfSequence(Value("string")),
        "answer_type": Value("string"),
    }
)

_EASY_VQA_SHAPES = frozenset({"circle", "rectangle", "triangle"})


def dihedral_augment(batch: dict) -> dict:
    """A ``with_transform`` hook: each training image in a random dihedral orientation.

    More views of each image without changing any answer. On easy-VQA from scratch it held
    shape questions at chance for thousands of steps (every shape must then be learnt in four
    orientations), so the demo recipe trains without it; it remains for larger data.
    """
    import random

    from PIL import Image as PILImage

    turns = (None, PILImage.Transpose.ROTATE_90, PILImage.Transpose.ROTATE_180,
             PILImage.Transpose.ROTATE_270)  # fmt: skip
    augmented = []
    for image in batch["image"]:
        turn = random.choice(turns)
        if turn is not None:
            image = image.transpose(turn)
        if random.random() < 0.5:
            image = image.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
        augmented.append(image)
    batch["image"] = augmented
    return batch


def parse_type_repeats(spec: str | None) -> dict[str, int]:
    """``"shape=2,color=3"`` as ``{"shape": 2, "color": 3}``; a clear error otherwise."""
    repeats: dict[str, int] = {}
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        name, sep, count = pair.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(
                f"--repeat_answer_types takes type=count pairs with a whole count >= 1, "
                f"e.g. 'shape=2'; got {pair.strip()!r}"
            )
        repeats[name.strip()] = int(count)
    return repeats


def repeated_rows(answer_types: Sequence[str], repeats: dict[str, int]) -> list[int]:
    """Row indices with each row of answer type ``t`` listed ``repeats[t]`` times, in order."""
    present = set(answer_types)
    unknown = sorted(set(repeats) - present)
    if unknown:
        raise ValueError(
            f"no training question has answer type {unknown}; the data has {sorted(present)}"
        )
    return [row for row, kind in enumerate(answer_types) for _ in range(repeats.get(kind, 1))]


def repeat_answer_types(dataset: Dataset, repeats: dict[str, int]) -> Dataset:
    """``dataset`` with each row of answer type ``t`` present ``repeats[t]`` times.

    Rows are indices into the same Arrow table, so the repeats cost no memory.
    """
    return dataset.select(repeated_rows(dataset["answer_type"], repeats))


def _rows_to_dataset(rows: dict[str, list]) -> Dataset:
    return Dataset.from_dict(rows, features=FEATURES)


def soft_score(count: int) -> float:
    """ViLT's soft score for an answer given by ``count`` of the 10 annotators."""
    return min(1.0, round(0.3 * count, 1))


def vqa_v2_targets(human_answers: Sequence[str]) -> tuple[list[str], list[float]]:
    """Soft targets from one question's human answers: 1 -> 0.3, 2 -> 0.6, 3 -> 0.9, >=4 -> 1.

    Answers are normalized first (as the evaluator will compare them), so "Two" and "2"
    count as one answer.
    """
    counts = Counter(normalize_answer(answer) for answer in human_answers)
    counts.pop("", None)
    answers = sorted(counts, key=lambda answer: (-counts[answer], answer))
    return answers, [soft_score(counts[answer]) for answer in answers]


def soft_target_vector(
    answers: Sequence[str], weights: Sequence[float], label2id: dict[str, int]
) -> list[float]:
    """A ``num_labels`` vector with each known answer's weight; answers outside the
    vocabulary (rare answers, or ones seen only in evaluation data) earn nothing."""
    vector = [0.0] * len(label2id)
    for answer, weight in zip(answers, weights):
        index = label2id.get(answer)
        if index is not None:
            vector[index] = max(vector[index], float(weight))
    return vector


def build_answer_vocabulary(train: Dataset, max_answers: int | None = None) -> list[str]:
    """Answers of the *training* split, most frequent first, capped at ``max_answers``.

    Frequency is the number of questions where the answer earns credit; ties keep first
    appearance so the vocabulary is reproducible.
    """
    counts: Counter[str] = Counter()
    for answers in train["target_answers"]:
        counts.update(dict.fromkeys(answers, 1))
    order = {answer: i for i, answer in enumerate(counts)}
    vocabulary = sorted(counts, key=lambda answer: (-counts[answer], order[answer]))
    return vocabulary[:max_answers] if max_answers else vocabulary


# --- easy-VQA (PyPI package, offline) ---------------------------------------------------


def easy_vqa_answer_type(answer: str) -> str:
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in _EASY_VQA_SHAPES else "color"


def load_easy_vqa(split: str) -> Dataset:
    """easy-VQA's ``train`` or ``test`` split, one answer per question."""
    import easy_vqa

    if split == "train":
        questions, answers, image_ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    elif split in ("test", "validation"):
        questions, answers, image_ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    else:
        raise ValueError(f"easy-VQA has the splits 'train' and 'test', not {split!r}")
    return _rows_to_dataset(
        {
            "question": list(questions),
            "image": [paths[image_id] for image_id in image_ids],
            "target_answers": [[answer] for answer in answers],
            "target_weights": [[1.0] for _ in answers],
            "answers": [[answer] for answer in answers],
            "answer_type": [easy_vqa_answer_type(answer) for answer in answers],
        }
    )


# --- official VQA v2 JSON ---------------------------------------------------------------

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def _index_images_by_id(image_dir: Path) -> dict[int, str]:
    # COCO names images like COCO_train2014_000000458752.jpg; the trailing number is the id.
    index = {}
    for path in image_dir.iterdir():
        match = _TRAILING_NUMBER.search(path.stem)
        if match and path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"):
            index[int(match.group(1))] = str(path)
    return index


def load_vqa_v2(questions_file: str, annotations_file: str, image_dir: str) -> Dataset:
    """Official VQA v2 questions + annotations JSON and the matching image folder."""
    with open(questions_file, encoding="utf-8") as handle:
        questions = json.load(handle)["questions"]
    with open(annotations_file, encoding="utf-8") as handle:
        annotations = {item["question_id"]: item for item in json.load(handle)["annotations"]}
    images = _index_images_by_id(Path(image_dir))
    rows: dict[str, list] = {name: [] for name in FEATURES}
    missing = []
    for question in questions:
        annotation = annotations.get(question["question_id"])
        if annotation is None:
            raise ValueError(
                f"question {question['question_id']} has no annotation in {annotations_file}"
            )
        image = images.get(int(question["image_id"]))
        if image is None:
            missing.append(question["image_id"])
            continue
        humans = [answer["answer"] for answer in annotation["answers"]]
        target_answers, target_weights = vqa_v2_targets(humans)
        rows["question"].append(question["question"])
        rows["image"].append(image)
        rows["target_answers"].append(target_answers)
        rows["target_weights"].append(target_weights)
        rows["answers"].append(humans)
        rows["answer_type"].append(annotation.get("answer_type", ""))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} questions refer to images not found in {image_dir} "
            f"(first image_id: {missing[0]})"
        )
    return _rows_to_dataset(rows)


def load_vqa_v2_questions(questions_file: str, image_dir: str) -> Dataset:
    """Official VQA v2 questions JSON without annotations (test-dev, test-standard) and the
    matching image folder: ``question_id``, ``question`` and ``image``, in the file's order."""
    with open(questions_file, encoding="utf-8") as handle:
        payload = json.load(handle)
    if not isinstance(payload, dict) or not isinstance(payload.get("questions"), list):
        raise ValueError(
            f"{questions_file} is not a VQA v2 questions file: expected an object with a "
            '"questions" list of {"image_id", "question", "question_id"} entries'
        )
    images = _index_images_by_id(Path(image_dir))
    rows: dict[str, list] = {"question_id": [], "question": [], "image": []}
    missing = []
    for number, question in enumerate(payload["questions"]):
        if not all(key in question for key in ("image_id", "question", "question_id")):
            raise ValueError(
                f"{questions_file}: question #{number} lacks image_id, question or question_id"
            )
        image = images.get(int(question["image_id"]))
        if image is None:
            missing.append(question["image_id"])
            continue
        rows["question_id"].append(int(question["question_id"]))
        rows["question"].append(question["question"])
        rows["image"].append(image)
    if missing:
        # The challenge server wants an answer for every question: a partial file is refused.
        raise FileNotFoundError(
            f"{len(missing)} questions refer to images not found in {image_dir} "
            f"(first image_id: {missing[0]})"
        )
    features = Features(
        {"question_id": Value("int64"), "question": Value("string"), "image": Image()}
    )
    return Dataset.from_dict(rows, features=features)


# --- a folder of images with metadata.jsonl ---------------------------------------------


def is_image_folder(path: str) -> bool:
    root = Path(path)
    return (root / "metadata.jsonl").is_file() or (root / "train" / "metadata.jsonl").is_file()


def load_image_folder(folder: str) -> Dataset:
    """Images plus a ``metadata.jsonl`` with one question per line.

    Each line: ``{"file_name": "vase.jpg", "question": "...", "answer": "blue"}``, or
    ``"answers": [...]`` for several human answers (scored and weighted like VQA v2), and
    optionally ``"answer_type"``. ``file_name`` is relative to the folder.
    """
    root = Path(folder)
    rows: dict[str, list] = {name: [] for name in FEATURES}
    with open(root / "metadata.jsonl", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "file_name" not in record or "question" not in record:
                raise ValueError(f"{root / 'metadata.jsonl'}:{number} needs file_name and question")
            if "answers" in record:
                humans = [str(answer) for answer in record["answers"]]
                target_answers, target_weights = vqa_v2_targets(humans)
            elif "answer" in record:
                humans = [str(record["answer"])]
                target_answers, target_weights = [normalize_answer(humans[0])], [1.0]
            else:
                raise ValueError(f"{root / 'metadata.jsonl'}:{number} has no answer or answers")
            image = root / record["file_name"]
            if not image.is_file():
                raise FileNotFoundError(f"{root / 'metadata.jsonl'}:{number}: no image {image}")
            rows["question"].append(record["question"])
            rows["image"].append(str(image))
            rows["target_answers"].append(target_answers)
            rows["target_weights"].append(target_weights)
            rows["answers"].append(humans)
            rows["answer_type"].append(str(record.get("answer_type", "")))
    return _rows_to_dataset(rows)


# --- the Graphcore/vqa schema (hub name, load_from_disk folder, or a loadable path) -----


def _load_graphcore_raw(name_or_path: str, split: str, cache_dir: str | None):
    from datasets import load_dataset, load_from_disk

    if os.path.isdir(name_or_path) and (
        Path(name_or_path, "dataset_dict.json").is_file()
        or Path(name_or_path, "state.json").is_file()
    ):
        data = load_from_disk(name_or_path)
        if isinstance(data, DatasetDict):
            if split not in data:
                raise ValueError(f"{name_or_path} has splits {sorted(data)}, not {split!r}")
            return data[split]
        return data
    return load_dataset(name_or_path, split=split, cache_dir=cache_dir)


def load_graphcore(
    name_or_path: str, split: str, image_root: str | None = None, cache_dir: str | None = None
) -> Dataset:
    """A dataset in the Graphcore/vqa schema: ``question``, ``image_id`` (a path) or
    ``image``, ``label`` = {``ids``: answers, ``weights``: soft scores}."""
    raw = _load_graphcore_raw(name_or_path, split, cache_dir)
    columns = set(raw.column_names)
    if "question" not in columns or "label" not in columns:
        raise ValueError(
            f"{name_or_path} is not in the Graphcore/vqa schema: it has columns "
            f"{sorted(columns)}, expected question, label and image_id or image"
        )
    if "image" not in columns and "image_id" not in columns:
        raise ValueError(f"{name_or_path} has neither an image nor an image_id column")

    def convert(example):
        label = example["label"]
        ids, weights = list(label["ids"]), [float(w) for w in label["weights"]]
        if "image" in example and example["image"] is not None:
            image = example["image"]
        else:
            path = example["image_id"]
            if image_root and not os.path.isabs(path):
                path = os.path.join(image_root, path)
            image = path
        return {
            "question": example["question"],
            "image": image,
            "target_answers": ids,
            "target_weights": weights,
            # The schema keeps soft scores, not the 10 raw answers; the scorer then credits
            # a prediction with its soft score (see score_predictions).
            "answers": list(example.get("answers") or []),
            "answer_type": str(example.get("answer_type") or ""),
        }

    if "image" in columns:
        # Keep images undecoded while converting; they decode when a batch is built.
        raw = raw.cast_column("image", Image(decode=False))
    return raw.map(convert, remove_columns=raw.column_names, features=FEATURES)
