"""Small things a visitor meets first (issue 22): a Read aloud button that says why there is
nothing to read, focus that moves to the question once a picture is chosen, and an empty
answer box that says what will appear in it."""

from __future__ import annotations

import contextlib

import pytest

from tests.browser.test_audiences import open_at
from tests.browser.test_reading_browser import RECORD_SPEECH
from vqa_core import Services


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en-US", "There is nothing to read yet"), ("ar-EG", "لا يوجد شيء للقراءة بعد")],
)
def test_read_aloud_before_any_answer_says_there_is_nothing_yet(
    browser, serve, both, locale, words
):
    url, _ = serve(both)
    page = open_at(browser, url, width=1280, height=900, locale=locale)
    page.evaluate(RECORD_SPEECH)
    page.click("#vqa-read")
    page.wait_for_function("() => window.spoken.length > 0", timeout=5_000)
    spoken = page.evaluate("() => window.spoken")
    announced = page.inner_text("#vqa-announcer")
    page.close()
    assert spoken[0]["text"].startswith(words) and announced.startswith(words)


def test_after_choosing_a_picture_the_keyboard_is_at_the_question(
    browser, serve, both, easy_vqa_sample
):
    url, _ = serve(both)
    page = open_at(browser, url, width=1280, height=900)
    placeholder = page.get_attribute("#vqa-blip2 textarea", "placeholder")
    page.locator("#vqa-image input[type=file]").set_input_files(easy_vqa_sample[0][0])
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.closest('#vqa-question')",
        timeout=5_000,
    )
    page.close()
    assert placeholder == "BLIP-2's answer appears here after you ask."


def test_the_arabic_page_says_the_cores_refusals_in_arabic(browser, serve, both, easy_vqa_sample):
    """vqa_core writes English; its sentence for an empty question reaches both columns of
    the Arabic page in Arabic."""
    url, _ = serve(both)
    page = open_at(browser, url, width=1280, height=900, locale="ar-EG")
    page.locator("#vqa-image input[type=file]").set_input_files(easy_vqa_sample[0][0])
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    page.locator("#vqa-question textarea").fill("   ")
    page.click("#vqa-ask")
    expected = "⚠️ اكتب سؤالًا عن الصورة من فضلك."
    both_said = """(text) => ['#vqa-vilt-status', '#vqa-blip2-status'].every(
        (id) => document.querySelector(id).innerText.trim() === text)"""
    page.wait_for_function(both_said, arg=expected, timeout=30_000)
    page.close()


class SlowViLT:
    """ViLT taking its time, so a small queue fills up."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def answer_batch(self, *args, **kwargs):
        import time

        time.sleep(2.0)
        return self.inner.answer_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_full_queue_is_said_in_the_pages_language(browser, serve, tiny_vilt, easy_vqa_sample):
    """Gradio's own toast is English whatever the page's language; the Arabic page shows the
    app's sentence instead."""
    from gradio_client import Client, handle_file

    from ui.messages import message

    slow = Services(vilt=SlowViLT(tiny_vilt), blip2=None, blip2_error="switched off")
    url, _ = serve(slow, queue_size=1, max_batch_size=1)
    page = open_at(browser, url, width=1280, height=900, locale="ar-EG")
    picture, question = easy_vqa_sample[0][0], easy_vqa_sample[1][0]
    page.locator("#vqa-image input[type=file]").set_input_files(picture)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    page.locator("#vqa-question textarea").fill(question)
    client = Client(url, verbose=False, download_files=False)
    try:
        # One answering, one waiting: the queue (size 1) is full when the page asks.
        jobs = [
            client.submit(handle_file(picture), question, 3, api_name="/vilt") for _ in range(3)
        ]
        page.wait_for_timeout(500)
        page.click("#vqa-ask")
        page.wait_for_selector(".toast-body", timeout=15_000)
        toasts = page.inner_text("body")
        for job in jobs:
            with contextlib.suppress(Exception):  # the queue refused it, as meant
                job.result(timeout=60)
    finally:
        client.close()
        page.close()
    assert "currently busy" not in toasts
    assert message("queue_full", "ar") in toasts
