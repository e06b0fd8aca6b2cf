"""Soft targets and the internal schema, from each source, against hand-computed values."""

from __future__ import annotations

import json

import pytest

from tests.train_fixtures import make_graphcore_dataset, make_image_folder, make_vqa_v2
from train.data import (
    build_answer_vocabulary,
    load_graphcore,
    load_image_folder,
    load_vqa_v2,
    parse_type_repeats,
    repeat_answer_types,
    soft_score,
    soft_target_vector,
    vqa_v2_targets,
)


def test_graphcore_guide_example_soft_target():
    # The task guide's example row: "down" earns 1.0, the other three 0.3 each.
    ids = ["at table", "down", "skateboard", "table"]
    weights = [0.30000001192092896, 1.0, 0.30000001192092896, 0.30000001192092896]
    label2id = {"table": 0, "yes": 1, "down": 2, "skateboard": 3, "at table": 4}
    vector = soft_target_vector(ids, weights, label2id)
    assert vector == pytest.approx([0.3, 0.0, 1.0, 0.3, 0.3])


def test_soft_target_drops_answers_outside_the_vocabulary():
    assert soft_target_vector(["rare", "yes"], [1.0, 0.3], {"yes": 0, "no": 1}) == [0.3, 0.0]


@pytest.mark.parametrize(("count", "score"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0)])
def test_soft_score_steps(count, score):
    assert soft_score(count) == pytest.approx(score)


def test_vqa_v2_targets_hand_computed():
    humans = ["2", "two", "Two", "2", "3", "3", "three", "many", "2.", "yes"]
    answers, weights = vqa_v2_targets(humans)
    # After normalization: "2" x5, "3" x3, "many" x1, "yes" x1.
    assert dict(zip(answers, weights)) == pytest.approx(
        {"2": 1.0, "3": 0.9, "many": 0.3, "yes": 0.3}
    )
    assert answers[:2] == ["2", "3"]


def test_vqa_v2_json_loader(tmp_path):
    questions, annotations, images = make_vqa_v2(tmp_path, "train", 4)
    data = load_vqa_v2(str(questions), str(annotations), str(images))
    assert len(data) == 4
    row = data[0]
    assert len(row["answers"]) == 10
    weights = dict(zip(row["target_answers"], row["target_weights"]))
    if row["answers"][0] != "blue":
        assert weights == pytest.approx({row["answers"][0]: 1.0, "blue": 0.9})
    assert row["image"].size == (64, 64)


def test_vqa_v2_json_missing_image_is_reported(tmp_path):
    questions, annotations, images = make_vqa_v2(tmp_path, "train", 2)
    next(images.iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match="images not found"):
        load_vqa_v2(str(questions), str(annotations), str(images))


def test_graphcore_schema_from_disk(tmp_path):
    path = make_graphcore_dataset(tmp_path, train_count=6, eval_count=3)
    data = load_graphcore(str(path), "train")
    assert data.column_names == [
        "question",
        "image",
        "target_answers",
        "target_weights",
        "answers",
        "answer_type",
    ]
    assert data[0]["target_answers"][1] == "something"
    assert data[0]["target_weights"] == pytest.approx([1.0, 0.3])
    with pytest.raises(ValueError, match="not 'nope'"):
        load_graphcore(str(path), "nope")


def test_image_folder_metadata(tmp_path):
    folder = make_image_folder(tmp_path, train_count=3, eval_count=2)
    data = load_image_folder(str(folder / "train"))
    assert len(data) == 3 and data[0]["target_weights"] == [1.0]
    bad = folder / "train" / "metadata.jsonl"
    bad.write_text(json.dumps({"file_name": "0000.png", "question": "what?"}) + "\n")
    with pytest.raises(ValueError, match="no answer"):
        load_image_folder(str(folder / "train"))


def test_vocabulary_from_training_split_only():
    from datasets import Dataset

    train = Dataset.from_dict(
        {"target_answers": [["yes"], ["no", "yes"], ["red"], ["yes"]]},
    )
    assert build_answer_vocabulary(train) == ["yes", "no", "red"]
    assert build_answer_vocabulary(train, max_answers=2) == ["yes", "no"]


def test_repeat_answer_types_repeats_only_the_named_type():
    from datasets import Dataset

    train = Dataset.from_dict(
        {"question": ["a", "b", "c", "d"], "answer_type": ["yes/no", "shape", "color", "shape"]}
    )
    repeated = repeat_answer_types(train, parse_type_repeats("shape=3"))
    assert repeated["question"] == ["a", "b", "b", "b", "c", "d", "d", "d"]
    assert repeat_answer_types(train, {})["question"] == train["question"]
    with pytest.raises(ValueError, match=r"has answer type \['number'\].*'color', 'shape'"):
        repeat_answer_types(train, {"number": 2})


@pytest.mark.parametrize("spec", ["shape", "shape=0", "shape=1.5", "=2", "shape=two"])
def test_repeat_spec_errors_say_what_is_expected(spec):
    with pytest.raises(ValueError, match="type=count pairs"):
        parse_type_repeats(spec)


def test_repeat_spec_parses_several_pairs():
    assert parse_type_repeats(" shape=2, color=3 ,") == {"shape": 2, "color": 3}
    assert parse_type_repeats(None) == {}
