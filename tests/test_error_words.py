"""vqa_core's errors worded in the page's language (issue 22): the core writes English and
names each sentence with a code; the Arabic page says the same in Arabic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ui.intake import RefusedImage
from ui.messages import error_sentence
from vqa_core import load_image
from vqa_core.errors import ImageInputError, QuestionError, VQAError
from vqa_core.questions import clean_question

ROOT = Path(__file__).resolve().parents[1]
ARABIC = json.loads((ROOT / "ui" / "text" / "ar.json").read_text(encoding="utf-8"))["messages"]


def test_every_code_the_core_raises_has_arabic_words():
    codes = set()
    for source in (ROOT / "vqa_core").glob("*.py"):
        codes |= set(re.findall(r'code="([a-z_]+)"', source.read_text(encoding="utf-8")))
    assert {"image_empty", "image_damaged", "question_empty"} <= codes
    missing = sorted(code for code in codes if f"error_{code}" not in ARABIC)
    assert missing == []


def test_an_empty_file_and_an_empty_question_are_said_in_arabic():
    with pytest.raises(ImageInputError) as empty_file:
        load_image(b"")
    with pytest.raises(QuestionError) as empty_question:
        clean_question("   ")
    assert error_sentence(empty_file.value, "ar") == "ملف الصورة فارغ."
    assert error_sentence(empty_question.value, "ar") == "اكتب سؤالًا عن الصورة من فضلك."
    # English pages keep the core's own sentence.
    assert error_sentence(empty_file.value, "en") == "The image file is empty."


def test_a_damaged_picture_is_said_in_arabic(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ImageInputError) as err:
        load_image(broken)
    said = error_sentence(err.value, "ar")
    assert said != str(err.value) and re.search(r"[\u0600-\u06ff]", said)


def test_values_fill_the_arabic_sentence_and_are_isolated():
    with pytest.raises(QuestionError) as err:
        clean_question("x" * 5000)
    said = error_sentence(err.value, "ar")
    assert "\u2068" in said and str(err.value.values["limit"]) in said


def test_a_refused_picture_keeps_its_own_words_in_arabic():
    refusal = RefusedImage("image_not_uploaded")
    assert error_sentence(refusal.error(), "ar") == refusal.sentence("ar")


def test_an_error_without_words_stays_as_it_is():
    plain = VQAError("Something the page has no words for.")
    unknown = VQAError("A code the page does not know.", code="no_such_code")
    assert error_sentence(plain, "ar") == str(plain)
    assert error_sentence(unknown, "ar") == str(unknown)
    assert error_sentence(ValueError("x"), "ar") == "x"
