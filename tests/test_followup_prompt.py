"""BLIP-2's follow-up prompt (a pure function) and its describe / history answering paths."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

from vqa_core import InputError, QuestionError
from vqa_core.questions import (
    DEFAULT_PROMPT_TEMPLATE,
    MAX_HISTORY_TURNS,
    Turn,
    build_followup_prompt,
    clean_history,
    format_prompt,
)


def words(text: str) -> int:
    return len(text.split())


def test_no_history_is_the_plain_prompt():
    assert build_followup_prompt(
        "What colour?", [], count_tokens=words, token_budget=100
    ) == format_prompt(DEFAULT_PROMPT_TEMPLATE, "What colour?")


def test_earlier_turns_come_first_oldest_first():
    history = [Turn("What shape?", "circle"), Turn("What colour?", "red")]
    prompt = build_followup_prompt("Is it big?", history, count_tokens=words, token_budget=100)
    assert prompt == (
        "Question: What shape? Answer: circle Question: What colour? Answer: red "
        "Question: Is it big? Answer:"
    )


def test_the_budget_keeps_the_newest_turns_that_fit():
    history = [Turn(f"Question number {i}?", f"answer{i}") for i in range(6)]
    # Each earlier turn is 6 words and so is the current question: two turns fit in 18, not 3.
    prompt = build_followup_prompt("Is it big today?", history, count_tokens=words, token_budget=23)
    assert words(prompt) == 18
    assert prompt == (
        "Question: Question number 4? Answer: answer4 Question: Question number 5? "
        "Answer: answer5 Question: Is it big today? Answer:"
    )


def test_the_current_question_is_kept_even_alone_over_budget():
    prompt = build_followup_prompt(
        "A rather long question here?", [Turn("a?", "b")], count_tokens=words, token_budget=3
    )
    assert prompt == "Question: A rather long question here? Answer:"


def test_history_takes_pairs_mappings_and_turns_and_keeps_the_last_few():
    raw = [
        ["first?", "one"],
        {"question": "second?", "answer": "two"},
        Turn("third?", "three"),
        ("no answer?", ""),  # the model failed on it: nothing to remember
        ("fourth?", "  four\n"),
        ("fifth?", "five"),
    ]
    turns = clean_history(raw)
    assert len(turns) == MAX_HISTORY_TURNS
    assert turns[0] == Turn("second?", "two")
    assert turns[-2:] == [Turn("fourth?", "four"), Turn("fifth?", "five")]
    assert clean_history(None) == []


@pytest.mark.parametrize(
    "bad",
    ["What?", [["only a question"]], [[1, 2, 3]], {"question": "a", "answer": "b"}, [42]],
)
def test_malformed_history_gets_one_plain_sentence(bad):
    with pytest.raises(QuestionError, match="history must be a list of"):
        clean_history(bad)


def test_a_bad_question_in_the_history_says_which():
    with pytest.raises(QuestionError, match="Question 2 in the conversation history"):
        clean_history([("fine?", "yes"), ("x" * 2000, "no")])


class RecordingProcessor:
    """Wraps a processor and records every text prompt it is handed."""

    def __init__(self, inner):
        self.inner = inner
        self.prompts: list[list[str] | None] = []

    def __call__(self, *args, **kwargs):
        self.prompts.append(kwargs.get("text"))
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture()
def recording_blip2(tiny_blip2):
    recorder = RecordingProcessor(tiny_blip2.processor)
    return dataclasses.replace(tiny_blip2, processor=recorder), recorder


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return Image.new("RGB", (64, 64), (200, 30, 30))


def test_a_follow_up_prompt_carries_the_earlier_turns(recording_blip2, picture):
    answerer, recorder = recording_blip2
    history = [("What shape is in the image?", "circle"), ("What color is it?", "red")]
    result = answerer.answer(picture, "Is it big?", history=history)
    assert result.question == "Is it big?"
    assert recorder.prompts[-1] == [
        "Question: What shape is in the image? Answer: circle Question: What color is it? "
        "Answer: red Question: Is it big? Answer:"
    ]


def test_a_long_history_is_cut_to_the_models_length(recording_blip2, picture):
    answerer, recorder = recording_blip2
    history = [(f"Is shape number {i} in the picture?", "yes " * 20) for i in range(12)]
    answerer.answer(picture, "What color is the shape?", history=history)
    prompt = recorder.prompts[-1][0]
    budget = answerer.prompt_token_budget()
    assert answerer.count_tokens(prompt) <= budget
    assert budget < 128  # the tiny model's 128 positions, less query tokens and answer room
    assert prompt.endswith("Question: What color is the shape? Answer:")
    assert "number 0 " not in prompt  # the oldest turns went first
    assert "number 11 " in prompt  # the newest turn that fits stayed


def test_without_history_the_prompt_is_unchanged(recording_blip2, picture):
    answerer, recorder = recording_blip2
    answerer.answer_batch([picture, picture], ["What shape?", "What color?"])
    assert recorder.prompts[-1] == [
        "Question: What shape? Answer:",
        "Question: What color? Answer:",
    ]


def test_histories_must_pair_with_questions(tiny_blip2, picture):
    with pytest.raises(InputError, match="one history per question"):
        tiny_blip2.answer_batch([picture], ["What?"], histories=[[], []])


def test_describe_is_blip2s_own_captioning_start(recording_blip2, picture):
    """No text at all: generate() starts from the query tokens and BOS, as the plain recipe."""
    answerer, recorder = recording_blip2
    results = answerer.describe_batch([picture, picture], max_new_tokens=6)
    assert recorder.prompts[-1] is None
    assert [r.question for r in results] == ["", ""]
    assert results[0].batch_size == 2
    processor = answerer.processor.inner
    with torch.inference_mode():
        pixels = processor(images=[picture], return_tensors="pt")["pixel_values"]
        generated = answerer.model.generate(pixel_values=pixels, max_new_tokens=6, do_sample=False)
    start = answerer.model.config.num_query_tokens + 1
    plain = processor.batch_decode(generated[:, start:], skip_special_tokens=True)[0].strip()
    assert results[0].answer == plain
    assert answerer.describe(picture, max_new_tokens=6).answer == plain


def test_a_caption_prompt_goes_before_the_caption(recording_blip2, picture):
    answerer, recorder = recording_blip2
    prefixed = dataclasses.replace(answerer, caption_prompt="a photo of")
    prefixed.describe(picture, max_new_tokens=3)
    assert recorder.prompts[-1] == ["a photo of"]
