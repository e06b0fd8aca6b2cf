"""`python -m train` end to end: every offline source, resume, and the shipped demo ViLT."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from tests.train_fixtures import (
    TINY_MODEL_ARGS,
    TINY_TRAINING_ARGS,
    make_graphcore_dataset,
    make_image_folder,
    make_vqa_v2,
)
from train.run_vqa import main
from vqa_core.vilt import ViltAnswerer

DEMO_VILT = Path(__file__).resolve().parents[1] / "vqa_core" / "demo_models" / "vilt-easyvqa"


def run(output_dir: Path, *source_args: str, extra: tuple[str, ...] = ()) -> dict:
    return main(
        [
            *source_args,
            *TINY_MODEL_ARGS,
            *TINY_TRAINING_ARGS,
            "--output_dir", str(output_dir),
            "--max_steps", "3",
            *extra,
        ]
    )  # fmt: skip


def assert_serves(output_dir: Path, image, question: str) -> None:
    """The folder loads through vqa_core, as the app loads it, and answers."""
    for name in ("config.json", "model.safetensors", "processor_config.json", "README.md"):
        assert (output_dir / name).is_file(), name
    answerer = ViltAnswerer.from_pretrained(str(output_dir), device="cpu")
    result = answerer.answer(image, question, top_k=3)
    assert len(result.answers) == 3
    assert result.best in answerer.model.config.label2id
    metrics = json.loads((output_dir / "all_results.json").read_text())
    assert "eval_accuracy" in metrics and 0.0 <= metrics["eval_accuracy"] <= 100.0
    card = (output_dir / "README.md").read_text()
    assert "python -m train" in card and "eval_accuracy" in card


def easy_image():
    import easy_vqa
    from PIL import Image

    _, _, ids = easy_vqa.get_test_questions()
    return Image.open(easy_vqa.get_test_image_paths()[ids[0]]).convert("RGB")


def test_smoke_easy_vqa(tmp_path):
    metrics = run(
        tmp_path / "out",
        "--dataset", "easy-vqa",
        extra=("--max_train_samples", "48", "--max_eval_samples", "24",
               "--repeat_answer_types", "shape=2"),
    )  # fmt: skip
    import easy_vqa

    shapes = sum(
        a in ("circle", "rectangle", "triangle") for a in easy_vqa.get_train_questions()[1][:48]
    )
    assert shapes > 0
    assert metrics["train_samples"] == 48 + shapes and metrics["eval_count"] == 24
    assert "eval_accuracy_shape" in metrics  # easy-VQA's answer types are reported
    # Every score names its VQA rules; one process, so the card speaks of none.
    assert metrics["eval_vqa_rules"] == "2021" and metrics["train_processes"] == 1
    card = (tmp_path / "out" / "README.md").read_text()
    assert "under its 2021 rules" in card and "processes (global batch" not in card
    assert_serves(tmp_path / "out", easy_image(), "What shape is in the image?")


def test_smoke_graphcore_schema_from_disk(tmp_path):
    path = make_graphcore_dataset(tmp_path, train_count=32, eval_count=16)
    metrics = run(tmp_path / "out", "--dataset", str(path))
    assert metrics["eval_count"] == 16
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    # Vocabulary from the training split: its answers plus the 0.3-weighted "something".
    assert "something" in config["label2id"]
    assert_serves(tmp_path / "out", easy_image(), "What color is the shape?")


def test_smoke_vqa_v2_json(tmp_path):
    train_files = make_vqa_v2(tmp_path, "train", 24)
    eval_files = make_vqa_v2(tmp_path, "test", 12)
    metrics = run(
        tmp_path / "out",
        "--train_questions_file", str(train_files[0]),
        "--train_annotations_file", str(train_files[1]),
        "--train_image_dir", str(train_files[2]),
        "--eval_questions_file", str(eval_files[0]),
        "--eval_annotations_file", str(eval_files[1]),
        "--eval_image_dir", str(eval_files[2]),
        extra=("--max_answers", "5", "--vqa_rules", "2017"),
    )  # fmt: skip
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert len(config["id2label"]) == 5  # --max_answers keeps the 5 most frequent
    written = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert metrics["eval_vqa_rules"] == written["eval_vqa_rules"] == "2017"
    assert "under its 2017 rules" in (tmp_path / "out" / "README.md").read_text()
    assert "eval_accuracy_other" in metrics  # per answer type, as the annotations give it
    assert_serves(tmp_path / "out", easy_image(), "Is there a circle?")


def test_smoke_metadata_jsonl_folder(tmp_path):
    folder = make_image_folder(tmp_path, train_count=32, eval_count=16)
    metrics = run(tmp_path / "out", "--dataset", str(folder))
    assert metrics["eval_count"] == 16
    assert_serves(tmp_path / "out", easy_image(), "What shape is this?")


def test_bad_argument_combination_fails_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="exactly one training source"):
        main(["--output_dir", str(tmp_path), *TINY_MODEL_ARGS])
    with pytest.raises(ValueError, match="needs all of"):
        main(["--output_dir", str(tmp_path), "--train_questions_file", "q.json"])
    with pytest.raises(ValueError, match="tokenizer_name is for --from_scratch"):
        main(["--output_dir", str(tmp_path), "--dataset", "easy-vqa", "--tokenizer_name", "x"])
    with pytest.raises(ValueError, match=r"--vqa_rules must be one of \('2021', '2017'\)"):
        main(["--output_dir", str(tmp_path), "--dataset", "easy-vqa", "--vqa_rules", "2019"])
    with pytest.raises(ValueError, match="type=count pairs"):
        main(["--output_dir", str(tmp_path), "--dataset", "easy-vqa",
              "--repeat_answer_types", "shape"])  # fmt: skip


def test_resume_continues_from_the_checkpoint(tmp_path):
    # Later options win, so these follow the tiny defaults (which do not save).
    # A constant LR makes "2 steps, stop, resume to 4" comparable with "4 steps straight";
    # one saved tokenizer for both runs, since tokenizer training breaks ties at random.
    import easy_vqa

    from train.builders import train_wordpiece_tokenizer

    tokenizer_dir = tmp_path / "tokenizer"
    train_wordpiece_tokenizer(easy_vqa.get_train_questions()[0][:500], 300).save_pretrained(
        tokenizer_dir
    )
    common = (
        "--tokenizer_name", str(tokenizer_dir),
        "--dataset", "easy-vqa",
        "--max_train_samples", "64",
        "--max_eval_samples", "8",
        "--lr_scheduler_type", "constant",
        "--learning_rate", "1e-3",
        "--save_strategy", "steps",
        "--save_steps", "2",
        "--logging_steps", "1",
    )  # fmt: skip
    straight = tmp_path / "straight"
    main(
        [
            *TINY_MODEL_ARGS,
            *TINY_TRAINING_ARGS,
            *common,
            "--output_dir",
            str(straight),
            "--max_steps",
            "4",
        ]
    )
    stopped = tmp_path / "stopped"
    main(
        [
            *TINY_MODEL_ARGS,
            *TINY_TRAINING_ARGS,
            *common,
            "--output_dir",
            str(stopped),
            "--max_steps",
            "2",
        ]
    )
    assert (stopped / "checkpoint-2").is_dir()
    main(
        [
            *TINY_MODEL_ARGS, *TINY_TRAINING_ARGS, *common,
            "--output_dir", str(stopped),
            "--max_steps", "4",
            "--resume_from_checkpoint", "last",
        ]
    )  # fmt: skip
    state = json.loads((stopped / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    losses = [entry for entry in state["log_history"] if "loss" in entry]
    assert [entry["step"] for entry in losses] == [1, 2, 3, 4]
    # Continuing from step 2 sees the same batches and lands on the same weights as never
    # stopping.
    straight_state = json.loads((straight / "trainer_state.json").read_text())
    straight_losses = [entry["loss"] for entry in straight_state["log_history"] if "loss" in entry]
    assert [entry["loss"] for entry in losses] == pytest.approx(straight_losses, rel=1e-3)
    from safetensors.torch import load_file

    resumed = load_file(stopped / "model.safetensors")
    reference = load_file(straight / "model.safetensors")
    assert resumed.keys() == reference.keys()
    for name in reference:
        # Adam turns float noise in near-zero gradients into lr-sized steps: a small atol.
        torch.testing.assert_close(resumed[name], reference[name], atol=5e-3, rtol=0, msg=name)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        run(tmp_path / "empty", "--dataset", "easy-vqa", extra=("--resume_from_checkpoint", "last"))


# --- the shipped demo ViLT ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_subset():
    """A fixed 1,000-question sample of the easy-VQA test split."""
    from train.data import load_easy_vqa

    test = load_easy_vqa("test")
    return test.select(sorted(random.Random(0).sample(range(len(test)), 1000)))


# Issue 3's floor for the shipped checkpoint: 98% on easy-VQA. It scores 99.28% on the full
# test split and 99.3% on this subset (colour 100, shape 99.2, yes/no 99.2), through
# vqa_core and through the plain recipe alike.
DEMO_VILT_FLOOR = 98.0


def test_demo_vilt_scores_at_its_floor(demo_subset):
    from train.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(str(DEMO_VILT), demo_subset, model_type="vilt", device="cpu")
    assert metrics["count"] == 1000
    assert metrics["accuracy"] >= DEMO_VILT_FLOOR, metrics
    for answer_type in ("color", "shape", "yes/no"):  # no kind of question left to chance
        assert metrics[f"accuracy_{answer_type}"] >= 95.0, metrics


def test_demo_vilt_answers_through_the_plain_recipe(demo_subset):
    # The guide's own calls: processor -> model -> argmax over id2label.
    from transformers import ViltForQuestionAnswering, ViltProcessor

    processor = ViltProcessor.from_pretrained(DEMO_VILT)
    model = ViltForQuestionAnswering.from_pretrained(DEMO_VILT).eval()
    correct = 0
    for start in range(0, len(demo_subset), 200):
        rows = demo_subset.select(range(start, min(start + 200, len(demo_subset))))
        inputs = processor(
            images=[image.convert("RGB") for image in rows["image"]],
            text=list(rows["question"]),
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = model(**inputs).logits
        predicted = [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
        correct += sum(p == answers[0] for p, answers in zip(predicted, rows["answers"]))
    assert 100 * correct / len(demo_subset) >= DEMO_VILT_FLOOR, correct
    assert sum(p.stat().st_size for p in DEMO_VILT.iterdir()) < 20 * 2**20


def test_demo_vilt_answers_photos_as_the_plain_recipe_does(demo_subset):
    # Normal-size uploads take vqa_core's own pixel path (vqa_core.pixels, not the Pillow
    # processor): the answers must not move. The easy-VQA pictures blown up to 480x480 JPEGs
    # are resized by both paths (to the model's 64 px), unlike the 64 px originals.
    import io

    from PIL import Image
    from transformers import ViltForQuestionAnswering, ViltProcessor

    from vqa_core import ViltAnswerer

    rows = demo_subset.select(range(300))
    photos = []
    for image in rows["image"]:
        buffer = io.BytesIO()
        image.convert("RGB").resize((480, 480), Image.Resampling.BICUBIC).save(buffer, "JPEG")
        photos.append(buffer.getvalue())
    ours = [
        result.best
        for result in ViltAnswerer.from_pretrained(str(DEMO_VILT), device="cpu").answer_batch(
            photos, list(rows["question"]), top_k=1
        )
    ]
    processor = ViltProcessor.from_pretrained(DEMO_VILT)
    model = ViltForQuestionAnswering.from_pretrained(DEMO_VILT).eval()
    inputs = processor(
        images=[Image.open(io.BytesIO(photo)).convert("RGB") for photo in photos],
        text=list(rows["question"]),
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        plain = [model.config.id2label[i] for i in model(**inputs).logits.argmax(-1).tolist()]
    assert ours == plain
    right = sum(answer == answers[0] for answer, answers in zip(ours, rows["answers"]))
    assert 100 * right / len(rows) >= DEMO_VILT_FLOOR
