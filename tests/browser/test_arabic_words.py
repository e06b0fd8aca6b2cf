"""No English sentence on the Arabic page (issue 22): what the page itself says, after a
question has been answered and every fold opened, is Arabic; English is left only where it is
a name (ViLT, BLIP-2, a checkpoint, a precision), what a model answered or a visitor typed,
and then it is isolated so it cannot reorder the Arabic around it."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_audiences import open_at, upload_and_ask_by_tapping
from ui.events import short_name

# Names, units and technical words that stay as they are in Arabic text.
NAMES = {
    "ViLT", "BLIP", "VQA", "easy", "Tesseract", "GB", "MB", "cpu", "float", "bfloat",
    "int", "fp", "bf", "AMX", "BF", "AVX", "torchao", "PyTorch", "vilt", "blip", "easyvqa",
    "API", "Gradio",  # Gradio's own footer, in Arabic around these names
    "Enter",  # the key
}  # fmt: skip

# The page's own text: the container's visible text without what models answered (ViLT's
# list, BLIP-2's box), what the visitor typed, the examples' English questions, code spans
# (commands, model folders) and isolated runs (names inside Arabic sentences).
PAGE_TEXT = """() => {
    const copy = document.querySelector('.gradio-container').cloneNode(true);
    for (const el of copy.querySelectorAll(
        '#vqa-vilt .output-class, #vqa-vilt dl, #vqa-vilt dt, #vqa-vilt dd, #vqa-vilt .confidence-set,'
        + ' textarea, input, #vqa-examples tbody, code, script, style, svg, [hidden],'
        + ' [aria-hidden=true]')) el.remove();
    return copy.innerText;
}"""


def english_words(text: str, quoted: list[str]) -> list[str]:
    """Latin words of ``text`` that are neither names nor ``quoted`` (what a model answered
    or the visitor asked, shown as given). An English sentence set inside an isolate is still
    English, so isolates are not skipped, only their marks removed."""
    for item in sorted(quoted, key=len, reverse=True):
        text = text.replace(item, " ")
    text = text.replace("\u2068", "").replace("\u2069", "")
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in NAMES]


@pytest.fixture
def planned(tiny_vilt_dir, tiny_blip2_dir):
    """Both tiny models as the app loads them: chosen, planned, with their reasons."""
    from vqa_core import load_services

    return load_services(str(tiny_vilt_dir), str(tiny_blip2_dir))


def test_the_arabic_page_says_everything_in_arabic(browser, serve, planned, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    url, _ = serve(planned)
    page = open_at(browser, url, width=1280, height=900, locale="ar-EG")
    upload_and_ask_by_tapping(page, paths[0], questions[0])
    for fold in ("#vqa-advanced", "#vqa-about"):
        page.locator(f"{fold} button.label-wrap").click()
    page.wait_for_selector("#vqa-about code", timeout=5_000)
    page.wait_for_timeout(500)
    text = page.evaluate(PAGE_TEXT)
    blip2_answer = page.input_value("#vqa-blip2 textarea")
    vilt_answers = page.evaluate(
        "() => [...document.querySelectorAll('#vqa-vilt dt, #vqa-vilt .output-class')]"
        ".map((el) => el.textContent.trim())"
    )
    page.close()
    assert len(re.findall(r"[\u0600-\u06ff]+", text)) > 100, text  # the page was read
    quoted = [questions[0], blip2_answer, *vilt_answers, "docs/languages.md"]
    quoted += [short_name(answerer.name) for answerer in (planned.vilt, planned.blip2)]
    assert english_words(text, quoted) == [], text
