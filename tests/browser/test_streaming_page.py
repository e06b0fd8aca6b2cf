"""BLIP-2's words as they come, in the page (issue 26, item 3): the answer box fills token by
token, ends on the answer a whole answer would be, and the screen reader and speech get the
finished answer once."""

from __future__ import annotations

import itertools

import pytest

from tests.browser.test_app_browser import ANSWERS_READY
from tests.browser.test_audiences import open_at
from tests.test_streaming import readable_blip2, slowed
from vqa_core import Services

TOKENS = 10  # the page's default answer length (ui/sections.py)
STEP_SECONDS = 0.12  # each decoding step, slowed so the page has updates to show

# Every value BLIP-2's box is given, in order, whatever the timing: Gradio sets the textarea's
# value property, which no MutationObserver sees. The announcer's words, each time they change.
RECORD = """() => {
    window.blip2Values = [];
    const proto = HTMLTextAreaElement.prototype;
    const value = Object.getOwnPropertyDescriptor(proto, 'value');
    Object.defineProperty(proto, 'value', {
        configurable: true,
        get() { return value.get.call(this); },
        set(text) {
            value.set.call(this, text);
            const values = window.blip2Values;
            if (this.closest('#vqa-blip2') && values[values.length - 1] !== text) values.push(text);
        },
    });
    window.announced = [];
    const announcer = document.getElementById('vqa-announcer');
    new MutationObserver(() => window.announced.push(announcer.textContent))
        .observe(announcer, { childList: true, subtree: true, characterData: true });
    window.spoken = 0;
    window.vqaSpeak = () => { window.spoken += 1; };
}"""
# Whether anything around BLIP-2's box would read its changes out (a live region or alert).
LIVE_AROUND_THE_BOX = """() => {
    const box = document.querySelector('#vqa-blip2 textarea');
    const live = [];
    for (let el = box; el; el = el.parentElement) {
        const mode = el.getAttribute('aria-live');
        const role = el.getAttribute('role');
        if ((mode && mode !== 'off') || ['status', 'alert', 'log'].includes(role)) live.push(el.id || el.tagName);
    }
    return live;
}"""


@pytest.fixture
def streaming_blip2(tiny_blip2_dir):
    return slowed(readable_blip2(tiny_blip2_dir, tokens=TOKENS), STEP_SECONDS)


def test_the_answer_arrives_word_by_word_and_is_announced_once(
    browser, serve, tiny_vilt, streaming_blip2, sample
):
    picture, question = sample
    whole = streaming_blip2.answer(picture, question, max_new_tokens=TOKENS).answer
    url, _ = serve(Services(vilt=tiny_vilt, blip2=streaming_blip2))
    page = open_at(browser, url, width=1280, height=900)
    page.locator("#vqa-auto-read input[type=checkbox]").check()
    page.evaluate(RECORD)
    page.locator("#vqa-image input[type=file]").set_input_files(picture)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    page.locator("#vqa-question textarea").fill(question)
    page.click("#vqa-ask")
    page.wait_for_function(ANSWERS_READY, timeout=60_000)
    page.wait_for_timeout(1000)  # the announcer waits for the line to settle; speech follows
    values = [v for v in page.evaluate("() => window.blip2Values") if v]
    shown = page.input_value("#vqa-blip2 textarea")
    announced = page.evaluate("() => window.announced")
    spoken = page.evaluate("() => window.spoken")
    live = page.evaluate(LIVE_AROUND_THE_BOX)
    ready = page.locator("#vqa-ask").is_enabled()
    page.close()

    assert len(values) > 2, values  # the answer grew in the box, not at once
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(values)), values
    assert values[-1] == shown == whole, (values, whole)
    # The finished answer is said once, in the answer line; no fragment is said at all.
    with_answer = [text for text in announced if whole in text]
    assert len(with_answer) == 1 and "BLIP-2" in with_answer[0], announced
    assert not [t for t in announced if whole not in t and any(v in t for v in values)], announced
    assert spoken == 1 and live == [] and ready


def test_a_description_arrives_word_by_word_and_is_announced_once(
    browser, serve, tiny_vilt, streaming_blip2, sample
):
    picture, _ = sample
    whole = streaming_blip2.describe(picture).answer
    url, _ = serve(Services(vilt=tiny_vilt, blip2=streaming_blip2))
    page = open_at(browser, url, width=1280, height=900)
    page.evaluate(RECORD)
    page.locator("#vqa-image input[type=file]").set_input_files(picture)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    page.click("#vqa-describe")
    page.wait_for_function(
        "(whole) => document.getElementById('vqa-agreement').innerText.includes(whole)",
        arg=whole,
        timeout=60_000,
    )
    page.wait_for_timeout(1000)
    values = [v for v in page.evaluate("() => window.blip2Values") if v]
    announced = page.evaluate("() => window.announced")
    page.close()
    assert len(values) > 2 and values[-1] == whole, (values, whole)
    assert len([text for text in announced if whole in text]) == 1, announced
