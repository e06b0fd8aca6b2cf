"""BLIP-2 generative training: answer-only labels, a loss that falls, and the shipped demo."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from pathlib import Path

import pytest
import torch

from train.generative import (
    DEMO_BLIP2_ARGS,
    Blip2AnswerCollator,
    build_blip2_from_scratch,
    evaluate_exact_match,
    load_easy_vqa_examples,
    sentence_case,
    train_blip2,
)
from vqa_core.blip2 import Blip2Answerer

DEMO_FOLDER = Path(__file__).resolve().parents[1] / "vqa_core" / "demo_models" / "blip2-easyvqa"
TINY = {
    "vision_hidden_size": 32,
    "vision_layers": 1,
    "qformer_hidden_size": 32,
    "qformer_layers": 1,
    "num_query_tokens": 4,
    "patch_size": 16,
    "text_layers": 1,
    "vocab_size": 300,
}


@pytest.fixture(scope="module")
def train_rows():
    return load_easy_vqa_examples("train", 3000)


@pytest.fixture()
def tiny(train_rows):
    torch.manual_seed(0)
    return build_blip2_from_scratch(train_rows.questions, train_rows.answers, **TINY)


def test_collator_labels_only_the_answer_and_eos(tiny, train_rows):
    model, processor = tiny
    rows = [train_rows[i] for i in range(8)]
    batch = Blip2AnswerCollator(processor)(rows)
    tokenizer = processor.tokenizer
    assert set(batch) == {"input_ids", "attention_mask", "pixel_values", "labels"}
    assert batch["labels"].shape == batch["input_ids"].shape
    image_token = model.config.image_token_index
    for row, example in enumerate(rows):
        labels = batch["labels"][row]
        kept = labels[labels != -100]
        # The answer's tokens then EOS, nothing else: no prompt, no image token, no padding.
        assert kept[-1].item() == tokenizer.eos_token_id
        assert tokenizer.decode(kept[:-1]).strip() == example["answer"]
        assert not (labels == image_token).any()
        assert (labels[batch["attention_mask"][row] == 0] == -100).all()
        # Labels sit on the very tokens of input_ids (the model shifts them itself).
        positions = (labels != -100).nonzero().flatten()
        assert torch.equal(batch["input_ids"][row, positions], kept)
        assert positions[-1].item() == labels.numel() - 1
        # The unmasked prefix is exactly what the answerer feeds generate at inference.
        prompt = processor(
            images=example["image"],
            text=f"Question: {example['question']} Answer:",
            return_tensors="pt",
        )["input_ids"][0]
        real = batch["input_ids"][row][batch["attention_mask"][row] == 1]
        assert torch.equal(real[: prompt.numel()], prompt)
        assert real.numel() == prompt.numel() + kept.numel()


def test_scratch_model_starts_trainable(tiny, train_rows):
    """BLIP-2's pretrained-ViT defaults (1e-10 vision init, zero query tokens) must not survive.

    With them the query tokens' layer norm sees a zero-variance input, its gradient is ~1e17,
    clipping then zeroes every other update and the model never learns to look at the image.
    """
    model, processor = tiny
    assert model.query_tokens.std() > 1e-3
    assert model.vision_model.embeddings.patch_embedding.weight.std() > 1e-3
    model.train()
    batch = Blip2AnswerCollator(processor)([train_rows[i] for i in range(8)])
    model(**batch).loss.backward()
    grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    assert torch.stack(grads).norm() < 100
    assert model.vision_model.embeddings.patch_embedding.weight.grad.norm() > 0


def test_a_few_steps_lower_the_loss(tiny, train_rows):
    model, processor = tiny
    model.train()
    batch = Blip2AnswerCollator(processor)([train_rows[i] for i in range(16)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_trained_model_saves_reloads_and_answers_through_the_answerer(tiny, train_rows, tmp_path):
    """Overfit a handful of rows, save, reload via vqa_core: the answers come back verbatim."""
    model, processor = tiny
    rows = [train_rows[i] for i in range(6)]
    batch = Blip2AnswerCollator(processor)(rows)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(80):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    answerer = Blip2Answerer.from_pretrained(str(tmp_path), device="cpu")
    results = answerer.answer_batch(
        [row["image"] for row in rows], [row["question"] for row in rows]
    )
    assert [result.answer for result in results] == [row["answer"] for row in rows]
    # One at a time (no padding) agrees with the left-padded batch.
    assert answerer.answer(rows[0]["image"], rows[0]["question"]).answer == rows[0]["answer"]


def test_train_blip2_smoke_writes_a_loadable_folder_with_a_model_card(tmp_path):
    metrics = train_blip2(
        tmp_path,
        max_train_samples=64,
        max_eval_samples=16,
        num_train_epochs=1,
        per_device_train_batch_size=16,
        size=TINY,
    )
    assert metrics["test"]["num_questions"] == 16
    assert 0.0 <= metrics["test"]["exact_match"] <= 1.0
    assert json.loads((tmp_path / "metrics.json").read_text())["train_samples"] == 64
    card = (tmp_path / "README.md").read_text()
    assert "exact match" in card and "easy-VQA" in card
    answerer = Blip2Answerer.from_pretrained(str(tmp_path), device="cpu")
    row = load_easy_vqa_examples("test", 1)[0]
    assert answerer.answer(row["image"], row["question"]).answer


def test_demo_recipe_is_complete():
    assert DEMO_BLIP2_ARGS["size"].keys() >= {"num_query_tokens", "patch_size", "vocab_size"}
    assert DEMO_BLIP2_ARGS["num_train_epochs"] > 0 and DEMO_BLIP2_ARGS["learning_rate"] > 0


# Issue 3's floor for the shipped checkpoint: 96% exact match. It scores 99.65% on the full
# test split and 1,000/1,000 on this slice (also in sentence case), so a retrained
# or damaged checkpoint that falls under the floor fails here.
SHIPPED_DEMO_FLOOR = 0.96
SHIPPED_DEMO_PLAIN_CORRECT = 62  # of 64, i.e. >= 96%


def test_shipped_demo_model_holds_its_measured_floor():
    """A fixed 1,000-question slice of the easy-VQA test split, through vqa_core."""
    assert (DEMO_FOLDER / "model.safetensors").is_file(), f"missing demo model in {DEMO_FOLDER}"
    test = load_easy_vqa_examples("test")
    picked = range(0, 9000, 9)
    answerer = Blip2Answerer.from_pretrained(str(DEMO_FOLDER), device="cpu")
    result = evaluate_exact_match(
        answerer,
        [test.images[test.image_ids[i]] for i in picked],
        [test.questions[i] for i in picked],
        [test.answers[i] for i in picked],
    )
    assert result["num_questions"] == 1000
    assert result["exact_match"] >= SHIPPED_DEMO_FLOOR, result
    # People type "What shape...?"; easy-VQA's questions are all lower case.
    typed = evaluate_exact_match(
        answerer,
        [test.images[test.image_ids[i]] for i in picked],
        [sentence_case(test.questions[i]) for i in picked],
        [test.answers[i] for i in picked],
    )
    assert typed["exact_match"] >= SHIPPED_DEMO_FLOOR, typed


def test_shipped_demo_answers_through_the_plain_recipe():
    """The guide's own calls for a real BLIP-2: processor -> generate -> batch_decode."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    processor = Blip2Processor.from_pretrained(DEMO_FOLDER)
    model = Blip2ForConditionalGeneration.from_pretrained(DEMO_FOLDER).eval()
    test = load_easy_vqa_examples("test")
    rows = [test[i] for i in range(4, 9000, 141)]  # 64 questions of every kind
    correct = 0
    for row in rows:
        inputs = processor(
            images=row["image"], text=f"Question: {row['question']} Answer:", return_tensors="pt"
        )
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        answer = processor.batch_decode(
            generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )[0]
        correct += answer.strip().lower() == row["answer"]
    assert correct >= SHIPPED_DEMO_PLAIN_CORRECT, correct


def test_repeated_answer_types_follow_their_rows():
    rows = load_easy_vqa_examples("train", 40)
    before = list(zip(rows.questions, rows.answers, rows.image_ids))
    rows.repeat_answer_types({"shape": 3})
    after = list(zip(rows.questions, rows.answers, rows.image_ids))
    shapes = [row for row in before if row[1] in ("circle", "rectangle", "triangle")]
    assert shapes, "the first 40 easy-VQA questions include a shape question"
    assert len(after) == len(before) + 2 * len(shapes)
    assert sorted(set(after)) == sorted(set(before))
    assert all(after.count(row) == 3 for row in shapes)


def test_collator_sentence_cases_questions_only_when_asked(tiny, train_rows):
    import random

    _model, processor = tiny
    rows = [{**train_rows[0], "question": "what shape is this?", "answer": "circle"}] * 32
    plain = Blip2AnswerCollator(processor)(rows)["input_ids"]
    assert (plain == plain[0]).all()
    random.seed(0)
    varied = Blip2AnswerCollator(processor, vary_question_case=True)(rows)
    texts = set(processor.tokenizer.batch_decode(varied["input_ids"], skip_special_tokens=True))
    assert any("What shape" in text for text in texts)
    assert any("what shape" in text for text in texts)
    labelled = varied["labels"][varied["labels"] != -100].view(32, -1)
    assert (labelled == labelled[0]).all()  # the answer tokens never change
