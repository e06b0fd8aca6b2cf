"""`python -m train.evaluate`: both VQA rule sets end to end, and answers in the VQA challenge
server's format, from annotated data and from official question files without answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.evaluate import main, write_results
from vqa_core.vilt import ViltAnswerer

DEMO_VILT = Path(__file__).resolve().parents[1] / "vqa_core" / "demo_models" / "vilt-easyvqa"


def easy_vqa_questions(count: int = 16, stride: int = 7) -> list[tuple[str, str, int, str]]:
    """(question, answer, image id, image path) spread over the easy-VQA test split; several
    questions share an image, as in VQA v2."""
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    rows = range(0, count * stride, stride)
    return [(questions[i], answers[i], image_ids[i], paths[image_ids[i]]) for i in rows]


def write_coco_split(root: Path, split: str, rows, annotate=None) -> tuple[Path, Path, Path]:
    """An official-format questions file (and annotations when ``annotate`` gives each row's
    ten human answers) with COCO-named JPEGs. Question ids run backwards from row order, so
    a results file that loses the pairing of id and answer shows it."""
    from PIL import Image

    images = root / split
    images.mkdir(parents=True)
    questions, annotations = [], []
    for index, (question, answer, easy_id, path) in enumerate(rows):
        image_id = 400_000 + easy_id
        target = images / f"COCO_{split}_{image_id:012d}.jpg"
        if not target.exists():
            Image.open(path).convert("RGB").save(target, quality=95)
        question_id = image_id * 1000 + (len(rows) - index)
        questions.append({"image_id": image_id, "question": question, "question_id": question_id})
        if annotate:
            annotations.append(
                {
                    "question_id": question_id,
                    "image_id": image_id,
                    "answer_type": "yes/no" if answer in ("yes", "no") else "other",
                    "answers": [
                        {"answer": human, "answer_confidence": "yes", "answer_id": n + 1}
                        for n, human in enumerate(annotate(answer))
                    ],
                }
            )
    questions_file = root / f"v2_OpenEnded_mscoco_{split}_questions.json"
    questions_file.write_text(
        json.dumps({"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
                    "data_subtype": split, "questions": questions})
    )  # fmt: skip
    annotations_file = root / f"v2_mscoco_{split}_annotations.json"
    if annotate:
        annotations_file.write_text(json.dumps({"annotations": annotations}))
    return questions_file, annotations_file, images


@pytest.fixture(scope="module")
def demo_answerer():
    return ViltAnswerer.from_pretrained(str(DEMO_VILT), device="cpu")


def test_questions_file_without_annotations_gives_a_results_file(tmp_path, demo_answerer):
    rows = easy_vqa_questions()
    questions_file, _, images = write_coco_split(tmp_path, "test2015", rows)
    results_file = tmp_path / "results.json"
    summary = main(
        ["--model", str(DEMO_VILT), "--device", "cpu", "--batch_size", "5",
         "--questions_file", str(questions_file), "--image_dir", str(images),
         "--results_file", str(results_file)]
    )  # fmt: skip
    assert "accuracy" not in summary and summary["count"] == len(rows)
    results = json.loads(results_file.read_text())
    asked = json.loads(questions_file.read_text())["questions"]
    # Exactly the server's format: one {"question_id": int, "answer": str} per question.
    assert [sorted(entry) for entry in results] == [["answer", "question_id"]] * len(asked)
    assert [entry["question_id"] for entry in results] == [q["question_id"] for q in asked]
    assert all(type(e["question_id"]) is int and type(e["answer"]) is str for e in results)
    # Each answer is the one the app gives for that question's image, and right here.
    from PIL import Image

    # One batch here against batches of 5 there: a reordering inside the script shows.
    direct = demo_answerer.answer_batch(
        [Image.open(images / f"COCO_test2015_{q['image_id']:012d}.jpg") for q in asked],
        [q["question"] for q in asked],
        top_k=1,
    )
    assert [entry["answer"] for entry in results] == [result.best for result in direct]
    right = sum(entry["answer"] == row[1] for entry, row in zip(results, rows))
    assert right >= len(rows) - 2, right


def test_questions_file_max_eval_samples_and_bad_inputs(tmp_path):
    questions_file, _, images = write_coco_split(tmp_path, "test2015", easy_vqa_questions(6))
    results_file = tmp_path / "results.json"
    base = ["--model", str(DEMO_VILT), "--device", "cpu", "--questions_file", str(questions_file)]
    main([*base, "--image_dir", str(images), "--results_file", str(results_file),
          "--max_eval_samples", "4"])  # fmt: skip
    assert len(json.loads(results_file.read_text())) == 4
    with pytest.raises(SystemExit):  # argparse: needs --image_dir and --results_file
        main(base)
    with pytest.raises(SystemExit):  # a second data source makes no sense here
        main([*base, "--image_dir", str(images), "--results_file", "r.json",
              "--dataset", "easy-vqa"])  # fmt: skip
    next(images.iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match="not found in"):
        main([*base, "--image_dir", str(images), "--results_file", str(results_file)])
    questions_file.write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="not a VQA v2 questions file"):
        main([*base, "--image_dir", str(images), "--results_file", str(results_file)])


def test_vqa_rules_reach_the_score_and_are_named(tmp_path):
    # Four humans wrote "the <answer>", six something else. Today's rules strip the article
    # from both sides (full credit for a right answer); the 2017 rules leave the humans'
    # article, so the normalized prediction never matches.
    rows = easy_vqa_questions(20)
    questions_file, annotations_file, images = write_coco_split(
        tmp_path, "val2014", rows, annotate=lambda answer: [f"the {answer}"] * 4 + ["zzz"] * 6
    )
    common = [
        "--model", str(DEMO_VILT), "--device", "cpu",
        # The annotated files alone: no training source needed to score.
        "--eval_questions_file", str(questions_file),
        "--eval_annotations_file", str(annotations_file),
        "--eval_image_dir", str(images),
    ]  # fmt: skip
    today = main([*common, "--output", str(tmp_path / "2021.json")])
    earlier = main(
        [*common, "--vqa_rules", "2017", "--output", str(tmp_path / "2017.json"),
         "--results_file", str(tmp_path / "results.json")]
    )  # fmt: skip
    assert today["vqa_rules"] == "2021" and earlier["vqa_rules"] == "2017"
    assert json.loads((tmp_path / "2017.json").read_text())["vqa_rules"] == "2017"
    assert today["accuracy"] >= 90.0 and earlier["accuracy"] == 0.0
    # Annotated VQA v2 data keeps its official question ids in the results file.
    results = json.loads((tmp_path / "results.json").read_text())
    asked = json.loads(questions_file.read_text())["questions"]
    assert [entry["question_id"] for entry in results] == [q["question_id"] for q in asked]
    with pytest.raises(SystemExit):
        main([*common, "--vqa_rules", "2019"])


def test_any_training_source_still_scores_and_numbers_rows(tmp_path):
    results_file = tmp_path / "results.json"
    metrics = main(
        ["--model", str(DEMO_VILT), "--device", "cpu", "--dataset", "easy-vqa",
         "--max_eval_samples", "20", "--results_file", str(results_file)]
    )  # fmt: skip
    assert metrics["count"] == 20 and metrics["accuracy"] >= 90.0
    assert metrics["split"] == "test" and metrics["vqa_rules"] == "2021"
    # easy-VQA has no question ids: the results file numbers the rows.
    assert [e["question_id"] for e in json.loads(results_file.read_text())] == list(range(20))


def test_half_a_vqa_v2_evaluation_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs all of --eval_questions_file"):
        main(["--model", str(DEMO_VILT), "--eval_questions_file", str(tmp_path / "q.json")])


def test_write_results_refuses_what_the_server_would():
    with pytest.raises(ValueError, match="2 predictions for 1"):
        write_results("unused.json", [1], ["a", "b"])
    with pytest.raises(ValueError, match="repeat"):
        write_results("unused.json", [1, 1], ["a", "b"])
