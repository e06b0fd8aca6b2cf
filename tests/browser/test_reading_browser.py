"""Reading the text in a picture in a real browser (issue 25): read, shown line by line in
each script's own direction, announced once, spoken in a voice for the text's language, in
both page languages; offered on arrival in accessible mode; a kiosk reads by touch."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_app_browser import ANSWERS_READY, SERIOUS, run_axe
from tests.browser.test_audiences import open_at
from tests.test_reading_page import sign

# Speech is recorded instead of played (headless Chromium has no voices).
RECORD_SPEECH = """() => {
    window.spoken = [];
    window.speechSynthesis.speak = (u) => window.spoken.push({ text: u.text, lang: u.lang });
}"""
# A museum's own question, with both kinds of quote in it.
MUSEUM_QUESTION = """What is the helmet's "crest"?"""
TEXT_SHOWN = "() => (document.getElementById('vqa-text-found')?.innerText || '').trim().length > 0"


def add_picture(page, path: str) -> None:
    page.locator("#vqa-image input[type=file]").set_input_files(path)
    page.wait_for_selector("#vqa-image img", timeout=15_000)


def read_aloud_on(page) -> None:
    page.evaluate(RECORD_SPEECH)
    page.locator("#vqa-auto-read input[type=checkbox]").check()


@pytest.mark.parametrize("locale", ["en-US", "ar-EG"])
def test_read_the_text_shows_announces_and_speaks_it(
    browser, serve, both, tmp_path, axe_source, locale
):
    url, _ = serve(both)
    page = open_at(browser, url, width=1280, height=900, locale=locale)
    read_aloud_on(page)
    add_picture(page, sign(tmp_path / "sign.png", ["مخرج الطوارئ", "EMERGENCY EXIT"]))
    before = page.evaluate("() => window.vqaAnnouncements")
    page.click("#vqa-read-text")
    page.wait_for_function(TEXT_SHOWN, timeout=30_000)
    page.wait_for_function("() => window.spoken.length > 0", timeout=10_000)
    page.wait_for_timeout(800)  # the announcer speaks once the text has settled
    paragraphs = page.evaluate(
        """() => [...document.querySelectorAll('#vqa-text-found p')].map((p) => {
            const box = p.getBoundingClientRect();
            const range = document.createRange();
            range.selectNodeContents(p);
            const text = range.getBoundingClientRect();
            return { text: p.innerText.trim(), left: text.left - box.left, right: box.right - text.right };
        })"""
    )
    announced = page.inner_text("#vqa-announcer")
    said = page.evaluate("() => window.vqaAnnouncements") - before
    spoken = page.evaluate("() => window.spoken")
    violations = [v for v in run_axe(page, axe_source) if v["impact"] in SERIOUS]
    page.close()
    heading, arabic, english = (p["text"] for p in paragraphs)
    if locale == "ar-EG":
        assert heading.startswith("النص في الصورة")
    else:
        assert heading == "Text in the picture (English and Arabic):"
    assert arabic == "مخرج الطوارئ" and english == "EMERGENCY EXIT"
    # Each line takes its own script's direction: the Arabic one sits at the right.
    assert paragraphs[1]["right"] < 5 < paragraphs[1]["left"], paragraphs[1]
    assert paragraphs[2]["left"] < 5 < paragraphs[2]["right"], paragraphs[2]
    # Announced once, whole; spoken once, in the page's voice for mixed text.
    assert said == 1 and "EMERGENCY EXIT" in announced and "مخرج" in announced
    assert len(spoken) == 1 and "EMERGENCY EXIT" in spoken[0]["text"]
    assert spoken[0]["lang"].startswith(locale[:2])
    assert violations == [], json.dumps(violations, indent=1)[:3000]


def test_arabic_text_is_spoken_in_an_arabic_voice_on_the_english_page(
    browser, serve, both, tmp_path
):
    url, _ = serve(both)
    page = open_at(browser, url, width=1280, height=900)
    read_aloud_on(page)
    add_picture(page, sign(tmp_path / "sign.png", ["مخرج الطوارئ"], size=(900, 240)))
    page.click("#vqa-read-text")
    page.wait_for_function("() => window.spoken.length > 0", timeout=30_000)
    spoken = page.evaluate("() => window.spoken")
    page.close()
    assert spoken[0]["lang"] == "ar" and "مخرج" in spoken[0]["text"]


def test_accessible_mode_offers_the_text_as_the_picture_arrives_and_frames_it(
    browser, serve, both, tmp_path
):
    url, _ = serve(both, accessible=True, auto_describe=False)
    page = open_at(browser, url, width=1280, height=900)
    # The label runs off the right edge: the photo check says which way to move.
    add_picture(
        page, sign(tmp_path / "cut.png", ["PLEASE DO NOT TOUCH THE EXHIBITS"], at=(300, 150))
    )
    page.wait_for_function(TEXT_SHOWN, timeout=30_000)
    page.wait_for_function(
        "() => document.getElementById('vqa-framing').innerText.includes('right edge')",
        timeout=10_000,
    )
    offered = page.inner_text("#vqa-text-found")
    page.close()
    assert offered.startswith("This picture has text:") and "PLEASE" in offered


def test_the_kiosk_reads_a_label_and_asks_the_museums_own_question_by_touch(
    browser, serve, both, tmp_path
):
    folder = tmp_path / "museum"
    folder.mkdir()
    sign(folder / "label.png", ["BRONZE AGE", "HELMET"])
    (folder / "examples.jsonl").write_text(
        json.dumps({"image": "label.png", "question": MUSEUM_QUESTION}) + "\n"
    )
    url, _ = serve(both, kiosk=True, idle_reset_seconds=120, examples_dir=folder)
    page = open_at(browser, url, width=1920, height=1080, touch=True)
    page.locator("#vqa-examples tbody tr").first.click()
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    # "What is written here?" is read by the text reader, not asked of the models.
    page.locator("#vqa-quick-5").tap()
    # The kiosk offers the text as the picture arrives ("This picture has text:"); the tap
    # reads it as the button does.
    page.wait_for_function(
        "() => document.getElementById('vqa-text-found').innerText.startsWith('Text in the picture')",
        timeout=30_000,
    )
    shown = page.inner_text("#vqa-text-found")
    # The museum's own question is a tap too, asked as it wrote it (quotes and all).
    own = page.locator("#vqa-own-question-1")
    label = own.inner_text()
    own.tap()
    page.wait_for_function(ANSWERS_READY, timeout=60_000)
    asked = page.locator("#vqa-question textarea").input_value()
    page.close()
    assert "BRONZE AGE" in shown and "HELMET" in shown
    assert label == asked == MUSEUM_QUESTION
