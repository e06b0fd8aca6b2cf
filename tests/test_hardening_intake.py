"""Bad input, property-based: whatever image or question arrives, vqa_core answers or says why.

Hypothesis draws images of every size Pillow allows (1x1, 5000x100, 100x5000, ...), in every
mode it can create, handed over as PIL objects, as encoded files, as truncated files or as
random bytes; and questions that are empty, blank, 10,000 characters, non-Latin, or markup.
Each goes through ``load_image`` / ``clean_question`` and through tiny ViLT and BLIP-2
answerers loaded with ``from_pretrained``. The property: a result, or a ``VQAError`` with a
message; never another exception, never a hang (hypothesis' deadline).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import io

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from train.builders import build_blip2, build_vilt
from vqa_core import (
    Blip2Answerer,
    ImageInputError,
    QuestionError,
    ViltAnswerer,
    VQAError,
    clean_question,
    load_image,
)
from vqa_core.images import DEFAULT_MAX_SIDE, MAX_ASPECT_RATIO
from vqa_core.questions import MAX_QUESTION_CHARS

# Every mode Pillow can create an image in (some it cannot save in every format; those are
# handed over as PIL objects instead).
MODES = [
    "1",
    "L",
    "P",
    "RGB",
    "RGBA",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "I;16",
    "I;16B",
    "I;16L",
    "F",
    "LA",
    "La",
    "PA",
    "RGBa",
    "RGBX",
]
FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF"]
EXTREME_SIZES = [(1, 1), (1, 2), (2, 1), (5000, 100), (100, 5000), (3000, 2), (2, 3000)]
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]

# Bounded: a full run of this module stays well under a minute on a 2-core CPU.
SETTINGS = settings(
    max_examples=60,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODEL_SETTINGS = settings(SETTINGS, max_examples=25)

QUESTION_TEXTS = [
    "what shape is this?",
    "What colour is the circle?",
    "is there a blue triangle in the image?",
    "how many shapes are there?",
]


@pytest.fixture(scope="module")
def answerers(tmp_path_factory):
    """Tiny ViLT and BLIP-2 built from scratch, saved, and loaded the way users load them."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hardening-models")
    vilt_model, vilt_processor = build_vilt(
        QUESTION_TEXTS * 10, ["circle", "square", "triangle", "yes", "no", "red"]
    )
    vilt_model.save_pretrained(folder / "vilt")
    vilt_processor.save_pretrained(folder / "vilt")
    texts = [f"Question: {q} Answer: yes" for q in QUESTION_TEXTS] * 10
    blip2_model, blip2_processor = build_blip2(texts)
    blip2_model.save_pretrained(folder / "blip2")
    blip2_processor.save_pretrained(folder / "blip2")
    return (
        ViltAnswerer.from_pretrained(str(folder / "vilt"), device="cpu"),
        Blip2Answerer.from_pretrained(str(folder / "blip2"), device="cpu"),
    )


@st.composite
def raw_images(draw) -> Image.Image:
    mode = draw(st.sampled_from(MODES))
    size = draw(
        st.one_of(
            st.sampled_from(EXTREME_SIZES),
            st.tuples(st.integers(1, 400), st.integers(1, 400)),
        )
    )
    blank = Image.new(mode, size)
    # Random raw pixels: for "F" and "I" these include NaN, inf and extreme integers.
    content = draw(st.binary(min_size=16, max_size=16))
    data = (content * (len(blank.tobytes()) // 16 + 1))[: len(blank.tobytes())]
    image = Image.frombytes(mode, size, data)
    if mode in ("P", "PA"):
        image.putpalette(bytes(range(256)) * 3)
    return image


def _encode(image: Image.Image, image_format: str) -> bytes | None:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # Pillow cannot write this mode in this format
    return buffer.getvalue()


@st.composite
def image_sources(draw):
    """A PIL image, its encoded file, a truncated file, or random (magic-prefixed) bytes."""
    kind = draw(st.sampled_from(["object", "file", "truncated", "random"]))
    if kind == "random":
        return draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=2048))
    image = draw(raw_images())
    if kind == "object":
        return image
    data = _encode(image, draw(st.sampled_from(FORMATS)))
    if data is None:
        return image
    if kind == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return data


questions = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            " ",
            "\t\n\r\u3000\u200b",
            "\x00\x01\x7f",
            "?" * 10_000,
            "what " * 2_000,
            "ما لون الشكل؟",
            "这个形状是什么颜色？",
            "Какого цвета фигура?",
            "आकृति किस रंग की है?",
            "🟥🔵❓",
            "<script>alert('x')</script> what shape?",
            "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))",
            "\u202eeht si roloc tahw",
            "{question} {0} %s %(x)s",
        ]
    ),
)


def _check_picture(picture: Image.Image) -> None:
    assert picture.mode == "RGB"
    width, height = picture.size
    assert width >= 1 and height >= 1
    # Padding rounds the short side to whole pixels, hence the slack of 2.
    assert max(width, height) <= MAX_ASPECT_RATIO * min(width, height) + 2
    assert max(width, height) <= DEFAULT_MAX_SIDE


@SETTINGS
@given(source=image_sources())
def test_load_image_returns_rgb_or_explains(source):
    try:
        picture = load_image(source)
    except ImageInputError as err:
        assert str(err).strip(), "an ImageInputError must carry a message for the user"
        return
    _check_picture(picture)


@SETTINGS
@given(question=questions)
def test_clean_question_returns_text_or_explains(question):
    try:
        text = clean_question(question)
    except QuestionError as err:
        assert str(err).strip()
        return
    assert text and text == text.strip()
    assert len(text) <= MAX_QUESTION_CHARS
    assert not any(ch in text for ch in "\x00\n\r\t\u200b\u202e")


@pytest.mark.parametrize("question", [None, 42, b"bytes", ["list"]])
def test_non_text_questions_are_refused(question):
    with pytest.raises(QuestionError):
        clean_question(question)


@MODEL_SETTINGS
@given(source=image_sources(), question=questions)
def test_vilt_answers_or_raises_vqa_error(answerers, source, question):
    vilt, _ = answerers
    try:
        result = vilt.answer(source, question, top_k=3)
    except VQAError as err:
        assert str(err).strip()
        event(f"refused: {type(err).__name__}")
        return
    event("answered")
    assert len(result.answers) == 3
    assert all(label in vilt.labels and 0.0 <= score <= 1.0 for label, score in result.answers)


@MODEL_SETTINGS
@given(source=image_sources(), question=questions)
def test_blip2_answers_or_raises_vqa_error(answerers, source, question):
    _, blip2 = answerers
    try:
        result = blip2.answer(source, question, max_new_tokens=3)
    except VQAError as err:
        assert str(err).strip()
        event(f"refused: {type(err).__name__}")
        return
    event("answered")
    assert isinstance(result.answer, str)


def test_a_question_longer_than_blip2_can_read_is_refused_with_a_sentence(answerers):
    """A question within the character limit can still be more word pieces than the language
    model has positions (characters outside the tokenizer's vocabulary take one piece per byte):
    BLIP-2 refuses it in words, ViLT (which truncates) still answers, and BLIP-2 answers the next
    question. Hypothesis once found this as an IndexError from OPT's position embeddings."""
    vilt, blip2 = answerers
    image = Image.new("RGB", (32, 32), (0, 0, 200))
    question = ("\U00010000" + "0") * (MAX_QUESTION_CHARS // 2)
    assert blip2.count_tokens(question) > blip2.prompt_token_budget(3)
    with pytest.raises(QuestionError, match="too long for BLIP-2"):
        blip2.answer(image, question, max_new_tokens=3)
    assert len(vilt.answer(image, question, top_k=2).answers) == 2
    assert isinstance(blip2.answer(image, "what shape is this?", max_new_tokens=3).answer, str)


@pytest.mark.parametrize("size", EXTREME_SIZES)
@pytest.mark.parametrize("mode", ["1", "P", "I;16", "F", "CMYK", "LA"])
def test_extreme_shapes_in_odd_modes_reach_both_models(answerers, size, mode):
    """The fixed corners hypothesis may not draw every run: each must give an answer."""
    vilt, blip2 = answerers
    image = Image.new(mode, size)
    assert len(vilt.answer(image, "what shape is this?", top_k=2).answers) == 2
    assert isinstance(blip2.answer(image, "what shape is this?", max_new_tokens=2).answer, str)


def test_a_bad_item_in_a_batch_names_the_problem_and_the_next_batch_works(answerers):
    vilt, blip2 = answerers
    good = Image.new("RGB", (64, 64), (200, 0, 0))
    for answerer in (vilt, blip2):
        with pytest.raises(ImageInputError):
            answerer.answer_batch([good, b"not an image"], ["what shape?", "what shape?"])
        with pytest.raises(QuestionError):
            answerer.answer_batch([good, good], ["what shape?", "   "])
        assert len(answerer.answer_batch([good, good], ["what shape?", "what colour?"])) == 2
