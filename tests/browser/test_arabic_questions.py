"""An Arabic browser asks in Arabic: the page translates, or says plainly that it cannot.

Headless Chromium with an Arabic locale (its Accept-Language and ``navigator.language``),
the app served on the tiny models, with and without the tiny Marian pair.
"""

from __future__ import annotations

from tests.translation_fixtures import QUESTIONS_AR_EN
from ui.messages import message
from vqa_core import Services

ARABIC_QUESTION, ENGLISH_OF_IT = QUESTIONS_AR_EN[0]
SPEECH_SPY = """() => {
    window.__spoken = [];
    speechSynthesis.speak = (u) => window.__spoken.push({ text: u.text, lang: u.lang });
}"""


def _open_arabic_page(browser, url):
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ar-EG")
    page.goto(url)
    page.wait_for_selector("#vqa-ask", timeout=30_000)
    page.evaluate(SPEECH_SPY)
    return page


def _ask(page, image: str, question: str, *, until: str) -> None:
    page.locator("#vqa-image input[type=file]").set_input_files(image)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    box = page.locator("#vqa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "(text) => (document.querySelector('#vqa-agreement')?.innerText || '').includes(text)",
        arg=until,
        timeout=60_000,
    )


def _read_aloud(page) -> dict:
    page.click("#vqa-read")
    page.wait_for_function("() => window.__spoken.length > 0", timeout=5_000)
    return page.evaluate("() => window.__spoken[0]")


def test_an_arabic_question_is_translated_and_answered_in_arabic(
    browser, serve, tiny_vilt, tiny_blip2, tiny_translator, easy_vqa_sample, artifacts
):
    url, _ = serve(Services(vilt=tiny_vilt, blip2=tiny_blip2), translator=tiny_translator)
    page = _open_arabic_page(browser, url)
    image = easy_vqa_sample[0][0]
    notice = message("translated", "ar", language="العربية", english=ENGLISH_OF_IT)
    _ask(page, image, ARABIC_QUESTION, until="تُرجم")
    line = page.inner_text("#vqa-agreement")
    assert line.startswith(notice)
    # Announced: the finished line with the notice, from the page's live region.
    page.wait_for_function(
        "(line) => document.getElementById('vqa-announcer').textContent === line",
        arg=line,
        timeout=10_000,
    )
    # ViLT's English labels stay in its column; their Arabic sits under them, marked Arabic.
    expected = tiny_vilt.answer(image, ENGLISH_OF_IT, top_k=5).answers
    shown = page.locator("#vqa-vilt [data-testid$='-confidence-set']").all_inner_texts()
    assert [row.split("\n")[0].strip() for row in shown] == [label for label, _ in expected]
    arabic = tiny_translator.labels_from_english([label for label, _ in expected])
    translation = page.locator("#vqa-vilt-translation")
    assert translation.is_visible()
    text = translation.inner_text()
    for english, word in zip((label for label, _ in expected), arabic):
        assert f"{word} ({english}," in text
    assert page.locator("#vqa-vilt-translation [lang=ar]").count() == 1
    # BLIP-2's English answer stays in its box.
    blip2 = tiny_blip2.answer(image, ENGLISH_OF_IT).answer
    assert page.locator("#vqa-blip2 textarea").input_value() == blip2
    # Read aloud: the Arabic line, in an Arabic voice, with ViLT's best answer in Arabic.
    spoken = _read_aloud(page)
    assert spoken["text"] == line and spoken["lang"] == "ar"
    # Read without the isolation marks that keep English names from reordering the sentence.
    heard = spoken["text"].replace("\u2068", "").replace("\u2069", "")
    assert f"ViLT: {arabic[0]}." in heard
    page.screenshot(path=str(artifacts / "arabic-question-translated.png"), full_page=True)
    page.close()


def test_without_translation_an_arabic_question_gets_the_notice_not_an_answer(
    browser, serve, tiny_vilt, tiny_blip2, easy_vqa_sample, artifacts
):
    url, _ = serve(Services(vilt=tiny_vilt, blip2=tiny_blip2))
    page = _open_arabic_page(browser, url)
    notice = message("not_understood", "ar")
    _ask(page, easy_vqa_sample[0][0], ARABIC_QUESTION, until=notice)
    assert page.inner_text("#vqa-agreement") == notice
    # No answer is shown as if the models had answered the Arabic question.
    assert page.locator("#vqa-vilt [data-testid$='-confidence-set']").count() == 0
    assert page.locator("#vqa-blip2 textarea").input_value() == ""
    status = message("not_understood_status", "ar")
    page.wait_for_function(
        "(text) => document.querySelector('#vqa-vilt-status').innerText.includes(text)",
        arg=status,
        timeout=10_000,
    )
    assert status in page.inner_text("#vqa-blip2-status")
    assert _read_aloud(page)["text"] == notice
    page.screenshot(path=str(artifacts / "arabic-question-notice.png"), full_page=True)
    page.close()
