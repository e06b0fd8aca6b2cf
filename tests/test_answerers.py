"""Both answerers agree with the seed guide's plain recipe, one by one and in batches."""

import pytest
import torch
from PIL import Image
from transformers import (
    Blip2ForConditionalGeneration,
    Blip2Processor,
    ViltForQuestionAnswering,
    ViltProcessor,
)

from vqa_core import Blip2Answerer, QuestionError, load_blip2, load_vilt


def test_trained_tokenizers_know_ordinary_questions(tiny_vilt, tiny_blip2, easy_vqa_sample):
    _, questions, _ = easy_vqa_sample
    for tokenizer, unknown in (
        (tiny_vilt.processor.tokenizer, "[UNK]"),
        (tiny_blip2.processor.tokenizer, "<unk>"),
    ):
        for question in questions:
            tokens = tokenizer.convert_ids_to_tokens(tokenizer(question)["input_ids"])
            assert unknown not in tokens, (question, tokens)


def test_loaders_return_model_processor_and_placement(tiny_vilt_dir, tiny_blip2_dir):
    model, processor, placement = load_vilt(str(tiny_vilt_dir), device="cpu")
    assert isinstance(model, ViltForQuestionAnswering) and not model.training
    assert isinstance(processor, ViltProcessor)
    assert placement.device.type == "cpu"
    model, processor, _ = load_blip2(str(tiny_blip2_dir), device="cpu")
    assert isinstance(model, Blip2ForConditionalGeneration)
    assert isinstance(processor, Blip2Processor)
    assert processor.tokenizer.padding_side == "left"


def test_vilt_top_k_equals_the_plain_recipe(tiny_vilt_dir, tiny_vilt, easy_vqa_sample):
    processor = ViltProcessor.from_pretrained(tiny_vilt_dir)
    model = ViltForQuestionAnswering.from_pretrained(tiny_vilt_dir).eval()
    paths, questions, _ = easy_vqa_sample
    for path, question in zip(paths[:6], questions[:6]):
        image = Image.open(path)
        with torch.no_grad():
            logits = model(**processor(image, question, return_tensors="pt")).logits
        scores, ids = torch.sigmoid(logits).topk(5, dim=-1)
        expected = [(model.config.id2label[i], s) for i, s in zip(ids[0].tolist(), scores[0])]
        got = tiny_vilt.answer(path, question, top_k=5)
        assert [label for label, _ in got.answers] == [label for label, _ in expected]
        for (_, ours), (_, theirs) in zip(got.answers, expected):
            assert abs(ours - float(theirs)) < 1e-6
        assert got.seconds > 0 and not got.truncated


def test_vilt_batch_equals_one_by_one(tiny_vilt, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    batched = tiny_vilt.answer_batch(paths, questions, top_k=3)
    assert len(batched) == len(paths)
    for path, question, result in zip(paths, questions, batched):
        single = tiny_vilt.answer(path, question, top_k=3)
        assert result.question == question
        assert [a for a, _ in single.answers] == [a for a, _ in result.answers]
        for (_, s1), (_, s2) in zip(single.answers, result.answers):
            assert abs(s1 - s2) < 1e-5
        assert result.batch_size == len(paths)


def test_vilt_mixed_sizes_batch_equals_one_by_one(tiny_vilt):
    images = [Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (120, 64), (0, 0, 200))]
    questions = ["what color is the shape?", "is there a circle?"]
    batched = tiny_vilt.answer_batch(images, questions, top_k=2)
    for image, question, result in zip(images, questions, batched):
        single = tiny_vilt.answer(image, question, top_k=2)
        assert [a for a, _ in single.answers] == [a for a, _ in result.answers]


def test_vilt_top_k_is_clamped_and_sorted(tiny_vilt, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    result = tiny_vilt.answer(paths[0], questions[0], top_k=1000)
    assert len(result.answers) == len(tiny_vilt.labels)
    scores = [s for _, s in result.answers]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len(tiny_vilt.answer(paths[0], questions[0], top_k=0).answers) == 1


def test_vilt_long_question_is_truncated_and_says_so(tiny_vilt, easy_vqa_sample):
    paths, _, _ = easy_vqa_sample
    long_question = "is the shape in this picture " + "really " * 60 + "blue?"
    result = tiny_vilt.answer(paths[0], long_question)
    assert result.truncated
    assert result.answers


def test_blip2_answer_equals_the_plain_recipe(tiny_blip2_dir, tiny_blip2, easy_vqa_sample):
    processor = Blip2Processor.from_pretrained(tiny_blip2_dir)
    model = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir).eval()
    paths, questions, _ = easy_vqa_sample
    for path, question in zip(paths[:4], questions[:4]):
        image = Image.open(path).convert("RGB")
        prompt = f"Question: {question} Answer:"
        inputs = processor(images=image, text=prompt, return_tensors="pt")
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        expected = processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
        got = tiny_blip2.answer(path, question, max_new_tokens=6)
        assert got.answer == expected
        assert prompt not in got.answer
        assert got.seconds > 0


def test_blip2_batch_equals_one_by_one(tiny_blip2, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    # Questions of different lengths exercise the left padding.
    picked_paths = paths[:6]
    picked_questions = [questions[0], "what?", *questions[2:6]]
    batched = tiny_blip2.answer_batch(picked_paths, picked_questions, max_new_tokens=5)
    singles = [
        tiny_blip2.answer(p, q, max_new_tokens=5) for p, q in zip(picked_paths, picked_questions)
    ]
    assert [r.answer for r in batched] == [r.answer for r in singles]
    assert [r.question for r in batched] == picked_questions


def test_blip2_beams_and_prompt_template(tiny_blip2_dir, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    custom = Blip2Answerer.from_pretrained(
        str(tiny_blip2_dir), device="cpu", prompt_template="Q: {question} A:"
    )
    # What generate() is given: the prompt the model reads (decoded back from its token ids)
    # and the beam width. A template that is ignored, or beams that are not passed on, fail.
    seen = []
    generate = custom.model.generate

    def spy(**kwargs):
        seen.append(kwargs)
        return generate(**kwargs)

    custom.model.generate = spy
    got = custom.answer(paths[0], questions[0], num_beams=3, max_new_tokens=4)
    (kwargs,) = seen
    assert kwargs["num_beams"] == 3
    tokenizer = custom.processor.tokenizer
    prompt = tokenizer.decode(kwargs["input_ids"][0], skip_special_tokens=True)
    assert prompt.strip() == f"Q: {questions[0]} A:"
    # The answer is the continuation of that prompt under 3-beam search, as transformers
    # gives it on the same model and processor.
    model, processor, _ = load_blip2(str(tiny_blip2_dir), device="cpu")
    inputs = processor(
        images=Image.open(paths[0]).convert("RGB"),
        text=f"Q: {questions[0]} A:",
        return_tensors="pt",
    )
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=4, num_beams=3, do_sample=False)
    new_tokens = generated[:, inputs["input_ids"].shape[1] :]
    expected = processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
    assert got.answer == expected and got.answer
    with pytest.raises(ValueError, match=r"\{question\}"):
        Blip2Answerer.from_pretrained(str(tiny_blip2_dir), prompt_template="no slot")


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None, "x" * 10_000])
def test_unusable_questions_raise_question_error(tiny_vilt, tiny_blip2, question, easy_vqa_sample):
    paths, _, _ = easy_vqa_sample
    with pytest.raises(QuestionError):
        tiny_vilt.answer(paths[0], question)
    with pytest.raises(QuestionError):
        tiny_blip2.answer(paths[0], question)


def test_batch_needs_one_question_per_image(tiny_vilt, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    with pytest.raises(ValueError, match="one question per image"):
        tiny_vilt.answer_batch(paths[:2], questions[:3])
