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
    # The model server's client too: its errors reach the same answer columns.
    for source in [*(ROOT / "vqa_core").glob("*.py"), *(ROOT / "serving").glob("*.py")]:
        codes |= set(re.findall(r'code="([a-z_]+)"', source.read_text(encoding="utf-8")))
    assert {"image_empty", "image_damaged", "question_empty", "server_unreachable"} <= codes
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


# The core's other sentences (vqa_core.sentences): why a model was placed as it was, what the
# machine had, why a checkpoint was chosen, why a model is missing.
ENGLISH_REASON_WORDS = {
    "needs", "about", "free", "machine", "container", "limit", "weights", "activations",
    "would", "fit", "close", "programs", "larger", "requested", "named", "argument",
    "natively", "faster", "even", "under", "loaded", "purpose",
}  # fmt: skip


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_every_sentence_the_core_writes_has_arabic_words():
    codes = set()
    for source in (ROOT / "vqa_core").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        codes |= set(re.findall(r'Sentence\.of\(\s*"([a-z0-9_]+)"', text))
    assert {"plan_int8", "plan_int4", "plan_needs", "memory_machine", "choice_offline"} <= codes
    missing = sorted(code for code in codes if code not in ARABIC)
    assert missing == []


@pytest.fixture(scope="module")
def one_missing_for_memory(tiny_vilt_dir, tiny_blip2_dir):
    """ViLT placed with 4 GB free, BLIP-2 refused with 100 MB: both plans' sentences."""
    from vqa_core.memory import MemoryReport
    from vqa_core.services import load_services

    readings = iter((4 * 1024**3, 100 * 1024**2))
    return load_services(
        str(tiny_vilt_dir),
        str(tiny_blip2_dir),
        memory=lambda: MemoryReport(host_available=next(readings), host_total=8 * 1024**3),
    )


def test_the_arabic_about_panel_words_the_plans_choices_and_refusal_in_arabic(
    one_missing_for_memory,
):
    from ui.about import about_markdown

    services = one_missing_for_memory
    assert services.vilt is not None and services.blip2 is None
    english = about_markdown(services, lang="en", reads_text=True)
    arabic = about_markdown(services, lang="ar", reads_text=True)
    # The English page quotes the core's sentences as they are...
    assert services.vilt_plan.reason in english and services.blip2_error in english
    assert services.vilt_choice.reason in english
    said_in_english = _words(services.vilt_plan.reason + services.blip2_error)
    assert len(said_in_english & ENGLISH_REASON_WORDS) >= 8
    # ...the Arabic page says the same in Arabic, with the same figures.
    assert _words(arabic) & ENGLISH_REASON_WORDS == set()
    for figure in ("4.0 GB", "0.1 GB", services.blip2_plan.reasons[0].values[1][1]):
        assert figure in arabic, figure
    assert "شغّل" in arabic and "--only vilt" in arabic  # the remedy, with its command


def test_a_model_missing_for_memory_is_said_in_arabic_in_its_column(one_missing_for_memory):
    from ui.events import missing_reason

    arabic = missing_reason(one_missing_for_memory, "blip2", "ar")
    assert re.search(r"[\u0600-\u06ff]", arabic)
    assert _words(arabic) & ENGLISH_REASON_WORDS == set()
    assert missing_reason(one_missing_for_memory, "blip2", "en") == (
        one_missing_for_memory.blip2_error
    )


def test_a_model_left_out_on_purpose_is_said_in_arabic(tiny_vilt_dir):
    from ui.events import missing_reason
    from vqa_core.services import load_services

    services = load_services(str(tiny_vilt_dir), only="vilt")
    assert missing_reason(services, "blip2", "en") == "it was left out on purpose (--only vilt)"
    arabic = missing_reason(services, "blip2", "ar")
    assert "عمدًا" in arabic and "vilt" in arabic and "purpose" not in arabic


def test_a_reason_with_a_part_the_page_cannot_word_stays_english_whole():
    from ui.messages import reasons_in
    from vqa_core.sentences import Sentence

    known = Sentence.of("memory_machine", "this machine has 2.0 GB free", free="2.0 GB")
    unknown = Sentence.of("no_such_sentence", "something new")
    nested = Sentence.of("plan_needs", "needs about 1.0 GB, x", need="1.0 GB", where=unknown)
    assert reasons_in("the whole English", (known, unknown), "ar") == "the whole English"
    assert reasons_in("the whole English", (nested,), "ar") == "the whole English"
    assert reasons_in("the whole English", (known,), "en") == "the whole English"
    assert "2.0 GB" in reasons_in("the whole English", (known,), "ar")
