"""Reading the text in a picture, as the page and the API give it (issue 25): the sentences in
both languages, the framing cue, the offer on arrival, and /read_text served for real, which
reads what a visitor sent and never a file on the server."""

from __future__ import annotations

from pathlib import Path

import pytesseract
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw, ImageFont

import ui
from ui.messages import ISOLATE
from ui.reading import framing_sentence, reading_markdown, speech_language
from vqa_core import Services
from vqa_core.ocr import TextLine, TextReading

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def sign(path: Path, lines: list[str], *, size=(900, 420), at=(60, 60), font_size=56) -> str:
    """A dark-on-light label, one line under another (Arabic shaped by Pillow's raqm)."""
    picture = Image.new("RGB", size, (238, 232, 214))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, font_size)
    x, y = at
    for line in lines:
        draw.text((x, y), line, fill=(25, 25, 30), font=font)
        y += int(font_size * 1.6)
    picture.save(path)
    return str(path)


def reading(lines: list[tuple[str, str]], *, cut=(), status="read") -> TextReading:
    return TextReading(
        lines=tuple(
            TextLine(text=text, box=(0, 20 * i, 100, 20 * i + 18), script=script, confidence=0.9)
            for i, (text, script) in enumerate(lines)
        ),
        seconds=0.1,
        status=status,
        cut_edges=tuple(cut),
    )


class FakeRequest:
    def __init__(self, lang: str = "en") -> None:
        self.headers = {"accept-language": lang}
        self.session_hash = "test"


# ---- words ----------------------------------------------------------------------------------


def test_the_framing_cue_says_which_way_to_move_the_camera_in_both_languages():
    assert framing_sentence(()) == ""
    assert framing_sentence(("right",)) == (
        "Text runs off the right edge; move the camera to the right."
    )
    assert "move the camera up" in framing_sentence(["top"])
    both = framing_sentence(("bottom", "left"))
    # Named left before bottom whatever order the reader found them in.
    assert both.index("left edge") < both.index("bottom edge")
    # Text cut on opposite sides is too close, not off to one side.
    assert framing_sentence(("left", "right")) == framing_sentence(("top", "bottom", "left"))
    assert "back" in framing_sentence(("left", "right"))
    arabic = framing_sentence(("left",), "ar")
    assert "اليسار" in arabic and "left" not in arabic


def test_text_read_is_escaped_and_each_line_is_its_own_paragraph():
    found = reading([("EXIT [here](http://evil.example) *now*", "latin"), ("مخرج", "arabic")])
    shown = reading_markdown(found, "en")
    paragraphs = shown.split("\n\n")
    assert paragraphs[0] == "Text in the picture (English and Arabic):"
    assert paragraphs[1] == r"EXIT \[here\]\(http://evil.example\) \*now\*"
    assert paragraphs[2] == "مخرج"
    assert reading_markdown(found, "ar", offer=True).split("\n\n")[0] == "في هذه الصورة نص:"


@pytest.mark.parametrize(
    ("status", "english"),
    [
        ("no_text", "No text was found in this picture."),
        ("timeout", "Reading the text took too long."),
        ("engine_missing", "Reading text is not available on this server"),
        ("failed", "The text could not be read"),
    ],
)
def test_each_outcome_without_text_is_one_sentence_in_either_language(status, english):
    nothing = reading([], status=status)
    assert reading_markdown(nothing, "en").startswith(english)
    arabic = reading_markdown(nothing, "ar")
    assert arabic and not arabic.startswith(english[:10])


def test_the_text_is_spoken_in_a_voice_for_its_own_script():
    assert speech_language(reading([("مخرج", "arabic")]), "en") == "ar"
    assert speech_language(reading([("EXIT", "latin")]), "ar") == "en"
    assert speech_language(reading([("EXIT", "latin"), ("مخرج", "arabic")]), "ar") == "ar"


# ---- the page's handlers ---------------------------------------------------------------------


class CountingReader:
    def __init__(self, result: TextReading) -> None:
        self.result, self.calls = result, 0

    def __call__(self, picture, **_):
        self.calls += 1
        return self.result


@pytest.fixture
def handlers_with(tiny_vilt, tiny_blip2):
    def make(result: TextReading):
        from ui.handlers import VQAHandlers

        handlers = VQAHandlers(Services(vilt=tiny_vilt, blip2=tiny_blip2))
        reader = CountingReader(result)
        handlers.reading.reader = reader
        return handlers.reading, reader

    return make


def test_the_button_reuses_the_reading_made_when_the_picture_arrived(handlers_with, tmp_path):
    reader_unit, reader = handlers_with(reading([("EXIT", "latin")], cut=("right",)))
    picture = sign(tmp_path / "exit.png", ["EXIT"])
    text, note, voice, kept = reader_unit.read_arrival(picture, None, FakeRequest())
    # Offered only in kiosk and accessible modes; the framing cue in every mode.
    assert text == "" and note == framing_sentence(("right",)) and voice == ""
    text, note, voice, kept = reader_unit.read_page(picture, kept, FakeRequest())
    assert reader.calls == 1
    assert text.endswith("EXIT") and "right edge" in note
    # Another picture is read again.
    other = sign(tmp_path / "other.png", ["OPEN"])
    reader_unit.read_page(other, kept, FakeRequest())
    assert reader.calls == 2


def test_arrival_offers_the_text_in_kiosk_and_accessible_modes_only(handlers_with, tmp_path):
    reader_unit, _ = handlers_with(reading([("مخرج الطوارئ", "arabic")]))
    picture = sign(tmp_path / "exit.png", ["EXIT"])
    reader_unit.offer_on_arrival = True
    offered, note, voice, _ = reader_unit.read_arrival(picture, None, FakeRequest("ar"))
    assert offered.split("\n\n") == ["في هذه الصورة نص:", "مخرج الطوارئ"]
    # No text cut by an edge: no framing cue (the photo check's own line is left alone).
    assert note == ""
    assert voice == "ar"
    reader_unit.offer_on_arrival = False
    quiet, *_ = reader_unit.read_arrival(picture, None, FakeRequest("ar"))
    assert quiet == ""


def test_a_picture_without_text_is_not_offered_on_arrival(handlers_with, tmp_path):
    reader_unit, _ = handlers_with(reading([], status="no_text"))
    picture = sign(tmp_path / "blank.png", [])
    reader_unit.offer_on_arrival = True
    offered, *_ = reader_unit.read_arrival(picture, None, FakeRequest())
    assert offered == ""
    said, *_ = reader_unit.read_page(picture, None, FakeRequest())
    assert said.startswith("No text was found")


def test_arabic_sentences_isolate_nothing_they_do_not_fill_in():
    # The framing sentences have no values; an isolate would show as a stray mark in speech.
    assert ISOLATE not in framing_sentence(("top",), "ar")


# ---- served ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tiny_vilt, tiny_blip2):
    demo = ui.build_demo(Services(vilt=tiny_vilt, blip2=tiny_blip2))
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **ui.launch_kwargs())
    client = Client(demo.local_url, verbose=False, download_files=False)
    yield client
    client.close()
    demo.close()


def test_read_text_is_in_the_api_listing(served):
    endpoints = served.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/read_text" in endpoints


def test_read_text_reads_an_uploaded_english_and_arabic_sign(served, tmp_path):
    english = served.predict(
        handle_file(sign(tmp_path / "en.png", ["EMERGENCY EXIT", "KEEP CLEAR"])),
        api_name="/read_text",
    )
    assert english["status"] == "read" and english["script"] == "latin"
    assert english["text"].splitlines() == ["EMERGENCY EXIT", "KEEP CLEAR"]
    assert english["sentence"].startswith("Text in the picture (English):")
    arabic = served.predict(
        handle_file(sign(tmp_path / "ar.png", ["مخرج الطوارئ"], size=(900, 240))),
        api_name="/read_text",
    )
    assert arabic["status"] == "read" and arabic["script"] == "arabic"
    assert "مخرج" in arabic["text"] and "الطوارئ" in arabic["text"]


def test_read_text_never_reads_a_file_on_the_server(served, tmp_path):
    secret = sign(tmp_path / "secret.png", ["PASSWORD SWORDFISH"])
    for sent in (secret, {"path": secret}, f"file://{secret}"):
        result = served.predict(sent, api_name="/read_text")
        assert "SWORDFISH" not in str(result)
        assert result["status"] == "unreadable_picture" and result["sentence"], result


def test_without_tesseract_reading_says_how_to_add_it_and_the_models_still_answer(
    served, tmp_path, monkeypatch, easy_vqa_sample
):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    from vqa_core import ocr

    if hasattr(ocr.tesseract_available, "cache_clear"):
        ocr.tesseract_available.cache_clear()
    try:
        result = served.predict(
            handle_file(sign(tmp_path / "en.png", ["EXIT"])), api_name="/read_text"
        )
        assert result["status"] == "engine_missing"
        assert "tesseract-ocr" in result["sentence"]
        paths, questions, _ = easy_vqa_sample
        label, status = served.predict(handle_file(paths[0]), questions[0], 3, api_name="/vilt")[:2]
        assert label["confidences"] and "could not" not in status
    finally:
        monkeypatch.undo()
        if hasattr(ocr.tesseract_available, "cache_clear"):
            ocr.tesseract_available.cache_clear()
