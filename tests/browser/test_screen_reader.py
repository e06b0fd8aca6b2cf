"""What a screen reader hears: Chromium's accessibility tree (Playwright's ARIA snapshot) of
the page in English and Arabic, the keyboard on the new controls, speech in the page's
language, the photo-quality sentence, axe-core with everything open, and 44 px kiosk targets.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from tests.browser.test_app_browser import ANSWERS_READY, SERIOUS, _tab_to, open_page, run_axe
from ui.messages import gradio_labels, message, page_translations

# The roles a person operates; each must carry a name.
CONTROLS = ("button", "textbox", "checkbox", "slider", "spinbutton", "link", "combobox", "radio")
ARABIC = re.compile(r"[\u0600-\u06FF]")
# ViLT's answers are drawn by gr.Label as buttons named by the answer itself: model output,
# in the models' language, not words of the page.
ANSWER_BUTTON = re.compile(r'^button "[^"]* \d+%"')
SPEECH_SPY = """() => {
    window.__spoken = [];
    window.SpeechSynthesisUtterance = class { constructor(text) { this.text = text; } };
    speechSynthesis.speak = (u) => window.__spoken.push(
        { text: u.text, lang: u.lang, voice: u.voice ? u.voice.name : null });
}"""


@pytest.fixture(scope="module")
def dark_photo(tmp_path_factory) -> str:
    """A 320x240 photo taken in the dark: the quality cue says so before any answer."""
    rng = np.random.default_rng(1)
    picture = Image.fromarray(rng.integers(0, 14, size=(240, 320, 3), dtype=np.uint8))
    path = tmp_path_factory.mktemp("dark") / "dark.jpg"
    picture.save(path, quality=90)
    return str(path)


def upload(page, picture: str) -> None:
    page.locator("#vqa-image input[type=file]").set_input_files(picture)
    page.wait_for_selector("#vqa-image img", timeout=15_000)


def ask(page, question: str) -> None:
    """Ask and wait until this question's turn is in the conversation and both answers show
    (the last question's answer line is still there for a moment, so it alone proves nothing)."""
    turns = page.locator("#vqa-conversation li").count()
    box = page.locator("#vqa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#vqa-conversation li').length > n",
        arg=turns,
        timeout=60_000,
    )
    page.wait_for_function(ANSWERS_READY, timeout=60_000)


def lines(snapshot: str) -> list[str]:
    return [line.strip().removeprefix("- ") for line in snapshot.splitlines()]


def first(rows: list[str], pattern: str) -> int:
    for index, row in enumerate(rows):
        if re.search(pattern, row):
            return index
    raise AssertionError(f"nothing matches {pattern!r} in:\n" + "\n".join(rows))


def control_names(rows: list[str]) -> list[tuple[str, str | None]]:
    """(role, name) of every control; name None when the control has none."""
    found = []
    for row in rows:
        role = row.split(" ", 1)[0].rstrip(":")
        if role in CONTROLS:
            named = re.match(r'^\S+ "([^"]*)"', row.replace("'", ""))
            found.append((row, named.group(1) if named and named.group(1).strip() else None))
    return found


@pytest.mark.parametrize("locale", ["en-US", "ar-EG"])
def test_the_page_reads_in_order_with_every_control_named(
    browser, serve, both, dark_photo, locale, artifacts
):
    lang = locale[:2]
    words = page_translations()[lang]
    url, _ = serve(both)
    page = open_page(browser, url, locale=locale)
    upload(page, dark_photo)
    ask(page, "what color is the shape?")
    ask(page, "what shape is in the image?")
    snapshot = page.locator("main").aria_snapshot()
    (artifacts / f"aria-{lang}.yml").write_text(snapshot, encoding="utf-8")
    rows = lines(snapshot)

    # Every control has a name, and on an Arabic page an Arabic one (Gradio's own included).
    controls = [(row, name) for row, name in control_names(rows) if not ANSWER_BUTTON.match(row)]
    assert controls and all(name for _, name in controls), [r for r, n in controls if not n]
    if lang == "ar":
        english = [name for _, name in controls if not ARABIC.search(name)]
        assert english == [], english
    # Nothing decorative is announced: no unnamed image (icons are hidden).
    assert [row for row in rows if row == "img" or row.startswith("img:")] == []

    # Reading order: picture -> question -> Ask / Describe -> quality note -> answers ->
    # agreement -> the conversation.
    order = [
        first(rows, rf'^img "{re.escape(message("picture_alt", lang))}"'),
        first(rows, rf'^textbox "{re.escape(words["question"])}"'),
        first(rows, rf'^button "{re.escape(words["ask"])}"'),
        first(rows, rf'^button "{re.escape(words["describe"])}"'),
        first(rows, re.escape(message("quality_dark", lang)[:30])),
        first(rows, rf'^textbox "{re.escape(words["blip2_label"])}"'),
        # (an Arabic line isolates the models' names: U+2068 ... U+2069)
        first(rows, "ViLT\u2069?: .* \u2068?BLIP-2\u2069?: "),
        first(rows, r"^log"),
    ]
    assert order == sorted(order), order
    # One status region says the finished quality note and answer line (never Gradio's
    # timers inside them); the conversation is a log read in order, not announced again.
    assert page.get_attribute("#vqa-announcer", "role") == "status"
    assert page.get_attribute("#vqa-announcer", "aria-live") == "polite"
    assert page.get_attribute("#vqa-conversation", "role") == "log"
    assert page.get_attribute("#vqa-conversation", "aria-live") == "off"
    for selector in ("#vqa-quality", "#vqa-agreement"):
        assert page.get_attribute(selector, "aria-live") is None
    turns = page.locator("#vqa-conversation li").all_inner_texts()
    assert len(turns) == 2
    assert "what color is the shape?" in turns[0] and "what shape is in the image?" in turns[1]
    page.close()


def test_arabic_names_come_from_the_language_file():
    # Keys ending in a space are prefixes Gradio puts before a label ("number input for ").
    names = gradio_labels("ar")
    assert names["Capture from camera"] and ARABIC.search(names["Capture from camera"])
    assert all(ARABIC.search(value) for value in names.values())
    assert gradio_labels("en") == {}


def test_keyboard_describes_asks_follow_ups_and_starts_over(browser, serve, both, sample_image):
    url, _ = serve(both)
    page = open_page(browser, url)
    upload(page, sample_image)
    page.locator("#vqa-question textarea").focus()
    _tab_to(page, "#vqa-describe")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#vqa-blip2-status').innerText.includes('batch of 1')",
        timeout=30_000,
    )
    line = page.inner_text("#vqa-agreement")
    caption = page.locator("#vqa-blip2 textarea").input_value()
    described = (
        message("described", caption=caption.rstrip(". "))
        if caption
        else message("described_nothing")
    )
    assert line == described
    for question in ("what shape is in the image?", "what color is it?"):
        _tab_to(page, "#vqa-question textarea")
        page.keyboard.type(question)
        _tab_to(page, "#vqa-ask")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(q) => [...document.querySelectorAll('#vqa-conversation li')]"
            ".some((li) => li.innerText.includes(q))",
            arg=question,
            timeout=60_000,
        )
        page.locator("#vqa-question textarea").fill("")
    turns = page.locator("#vqa-conversation li").all_inner_texts()
    assert [("shape" in t, "color" in t) for t in turns[-2:]] == [(True, False), (False, True)]
    _tab_to(page, "#vqa-reset")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#vqa-conversation li').length === 0"
        " && !document.querySelector('#vqa-image img')",
        timeout=15_000,
    )
    page.close()


@pytest.fixture(scope="module")
def sample_image(easy_vqa_sample) -> str:
    return easy_vqa_sample[0][0]


def test_a_new_picture_starts_a_new_conversation(browser, serve, both, sample_image, dark_photo):
    url, _ = serve(both)
    page = open_page(browser, url)
    upload(page, sample_image)
    ask(page, "what shape is in the image?")
    assert page.locator("#vqa-conversation li").count() == 1
    assert page.inner_text("#vqa-quality").strip() == ""
    upload(page, dark_photo)
    page.wait_for_function(
        "() => document.querySelectorAll('#vqa-conversation li').length === 0"
        " && document.querySelector('#vqa-quality').innerText.trim() !== ''",
        timeout=15_000,
    )
    assert page.inner_text("#vqa-quality").strip() == message("quality_dark")
    page.close()


def test_a_dark_photo_is_said_first_when_read_aloud(browser, serve, both, dark_photo):
    url, _ = serve(both)
    page = open_page(browser, url)
    page.evaluate(SPEECH_SPY)
    upload(page, dark_photo)
    ask(page, "what color is the shape?")
    page.click("#vqa-read")
    page.wait_for_function("() => window.__spoken.length > 0", timeout=5_000)
    spoken = page.evaluate("() => window.__spoken[0]")
    assert spoken["text"] == f"{message('quality_dark')} {page.inner_text('#vqa-agreement')}"
    page.close()


VOICES = """(voices) => {
    speechSynthesis.getVoices = () => voices.map(([name, lang]) => ({ name, lang, localService: true }));
}"""


@pytest.mark.parametrize(
    ("voices", "expected_voice"),
    [([["English", "en-US"], ["Arabic", "ar-SA"]], "Arabic"), ([["English", "en-US"]], None)],
)
def test_reading_aloud_picks_a_voice_for_the_page_language(
    browser, serve, both, sample_image, voices, expected_voice
):
    url, _ = serve(both)
    page = open_page(browser, url, locale="ar-EG")
    page.evaluate(SPEECH_SPY)
    page.evaluate(VOICES, voices)
    upload(page, sample_image)
    ask(page, "what color is the shape?")
    page.click("#vqa-read")
    page.wait_for_function("() => window.__spoken.length > 0", timeout=5_000)
    spoken = page.evaluate("() => window.__spoken[0]")
    assert spoken["lang"] == "ar" and spoken["voice"] == expected_voice
    note = page.locator("#vqa-speech-note")
    if expected_voice:
        assert note.count() == 0
    else:
        missing = message("speech_no_voice", "ar", language=message("language_ar", "ar"))
        assert note.inner_text() == missing and note.get_attribute("role") == "status"
    page.close()


def test_kiosk_describes_a_picture_as_it_arrives(browser, serve, both, sample_image):
    url, _ = serve(both, kiosk=True, idle_reset_seconds=60)
    page = open_page(browser, url)
    upload(page, sample_image)
    page.wait_for_function(
        "() => document.querySelector('#vqa-blip2-status').innerText.includes('batch of 1')",
        timeout=30_000,
    )
    line = page.inner_text("#vqa-agreement")
    assert line.startswith("BLIP-2 sees:") or line == message("described_nothing")
    page.close()


def test_no_auto_describe_keeps_the_kiosk_quiet(browser, serve, both, sample_image):
    url, _ = serve(both, kiosk=True, auto_describe=False, idle_reset_seconds=60)
    page = open_page(browser, url)
    upload(page, sample_image)
    page.wait_for_timeout(1500)
    assert page.inner_text("#vqa-agreement").strip() == ""
    assert page.inner_text("#vqa-blip2-status").strip() == ""
    page.close()


INTERACTIVE = """() => [...document.querySelectorAll(
        '.gradio-container button, .gradio-container a[href], .gradio-container input,'
        + ' .gradio-container textarea, .gradio-container select, .gradio-container [role=button]')]
    .filter((e) => {
        const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
    })
    .map((e) => {
        const r = e.getBoundingClientRect();
        return { what: e.id || e.getAttribute('aria-label') || e.innerText.slice(0, 40) || e.tagName,
                 width: r.width, height: r.height };
    })"""


def _open_everything(page) -> None:
    page.locator("#vqa-advanced button.label-wrap").click()
    page.locator("#vqa-about button.label-wrap").click()
    page.wait_for_selector("#vqa-about code", timeout=5_000)


def test_kiosk_touch_targets_are_at_least_44_px(browser, serve, both, sample_image, artifacts):
    url, _ = serve(both, kiosk=True, idle_reset_seconds=60)
    page = open_page(browser, url)
    upload(page, sample_image)
    ask(page, "what shape is in the image?")
    _open_everything(page)
    targets = page.evaluate(INTERACTIVE)
    assert len(targets) >= 15
    small = [t for t in targets if t["width"] < 44 or t["height"] < 44]
    page.screenshot(path=str(artifacts / "kiosk-targets.png"), full_page=True)
    page.close()
    assert small == [], small


@pytest.mark.parametrize("mode", ["default", "accessible", "kiosk"])
def test_axe_finds_nothing_with_the_new_controls_shown(
    browser, serve, both, dark_photo, axe_source, mode, artifacts
):
    url, _ = serve(both, accessible=mode == "accessible", kiosk=mode == "kiosk")
    page = open_page(browser, url, locale="ar-EG" if mode == "kiosk" else "en-US")
    upload(page, dark_photo)
    page.click("#vqa-describe")
    page.wait_for_function(
        "() => document.querySelector('#vqa-blip2-status').innerText.includes(' · ')",
        timeout=30_000,
    )
    # Described, nothing asked yet: ViLT's column is empty.
    violations = [v for v in run_axe(page, axe_source) if v["impact"] in SERIOUS]
    ask(page, "what color is the shape?")
    page.wait_for_selector("#vqa-conversation li", timeout=15_000)
    assert page.inner_text("#vqa-quality").strip()
    _open_everything(page)
    violations += [v for v in run_axe(page, axe_source) if v["impact"] in SERIOUS]
    page.screenshot(path=str(artifacts / f"axe-new-controls-{mode}.png"), full_page=True)
    page.close()
    assert violations == [], violations
