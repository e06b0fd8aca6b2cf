"""The page at a desktop's width (issue 22's leftovers), measured in the real browser: the two
models' answer boxes start at the same height side by side, and "Describe the picture" keeps
its label on one line, in English and Arabic, at the default size and in accessible mode."""

from __future__ import annotations

import pytest

from tests.browser.test_app_browser import ANSWERS_READY
from tests.browser.test_audiences import open_at, upload_and_ask_by_tapping

DESKTOPS = [(1280, 900), (1920, 1080)]
LOCALES = ["en-US", "ar-EG"]
PICTURE_BUTTONS = ["vqa-ask", "vqa-describe", "vqa-read-text", "vqa-reset"]
SPEECH_BUTTONS = ["vqa-read", "vqa-stop"]

# The top of each model's answer frame: the block of its column that holds the answer (for
# BLIP-2 the form around its textbox, which draws the frame).
ANSWER_TOPS = """() => {
    const frame = (id, column) => {
        const col = document.getElementById(column);
        let box = document.getElementById(id);
        while (box.parentElement !== col) box = box.parentElement;
        return box.getBoundingClientRect().top;
    };
    return { vilt: frame('vqa-vilt', 'vqa-vilt-column'),
             blip2: frame('vqa-blip2', 'vqa-blip2-column') };
}"""

# Each picture button's size and how many lines its label takes (distinct line boxes of its
# text), and whether its label overflows it.
BUTTONS = """(ids) => ids.map((id) => {
    const button = document.getElementById(id);
    const box = button.getBoundingClientRect();
    const tops = [];
    const walker = document.createTreeWalker(button, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const rect of range.getClientRects()) {
            if (rect.width > 0 && !tops.some((top) => Math.abs(top - rect.top) < 2)) tops.push(rect.top);
        }
    }
    return { id, width: box.width, height: box.height, lines: tops.length,
             overflows: button.scrollWidth > button.clientWidth + 1,
             label: button.innerText.trim() };
})"""


def settled(page) -> None:
    """Web fonts loaded and the page script's classes (accessible mode) applied."""
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.wait_for_timeout(300)


@pytest.mark.parametrize("accessible", [False, True], ids=["default", "accessible"])
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("size", DESKTOPS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_both_answer_boxes_start_at_the_same_height_and_describe_fits_on_one_line(
    browser, serve, both, sample, size, locale, accessible
):
    url, _ = serve(both, accessible=accessible)
    page = open_at(browser, url, width=size[0], height=size[1], locale=locale)
    settled(page)
    assert page.evaluate("() => document.body.classList.contains('vqa-accessible')") is accessible
    buttons = page.evaluate(BUTTONS, PICTURE_BUTTONS + SPEECH_BUTTONS)
    empty = page.evaluate(ANSWER_TOPS)
    # ViLT's list of answers is much taller than BLIP-2's box: an equal-height row grew every
    # block of BLIP-2's column to match, its heading too, pushing the box down.
    upload_and_ask_by_tapping(page, *sample)
    page.wait_for_function(ANSWERS_READY, timeout=60_000)
    settled(page)
    answered = page.evaluate(ANSWER_TOPS)
    page.close()
    for tops in (empty, answered):
        assert abs(tops["vilt"] - tops["blip2"]) <= 2, (empty, answered)
    for one_line in ("vqa-describe", "vqa-read"):  # "Read answers aloud" wrapped too
        button = next(b for b in buttons if b["id"] == one_line)
        assert button["lines"] == 1, button
    for button in buttons:
        assert button["width"] >= 44 and button["height"] >= 44, button
        assert not button["overflows"], button


@pytest.mark.parametrize("accessible", [False, True], ids=["default", "accessible"])
def test_on_a_phone_the_columns_still_stack_and_the_buttons_fit(browser, serve, both, accessible):
    url, _ = serve(both, accessible=accessible)
    page = open_at(browser, url, width=390, height=844, touch=True)
    settled(page)
    buttons = page.evaluate(BUTTONS, PICTURE_BUTTONS)
    columns = page.evaluate(
        """() => ['vqa-vilt-column', 'vqa-blip2-column'].map((id) => {
            const r = document.getElementById(id).getBoundingClientRect();
            return { top: r.top, bottom: r.bottom, left: r.left, width: r.width };
        })"""
    )
    page.close()
    vilt, blip2 = columns
    assert blip2["top"] >= vilt["bottom"], columns  # one above the other, full width
    assert abs(vilt["width"] - blip2["width"]) <= 4, columns
    for button in buttons:
        assert button["width"] >= 44 and button["height"] >= 44, button
        assert not button["overflows"], button


# The empty BLIP-2 box's placeholder: the height its words need at the box's width and font,
# against the height the box shows.
PLACEHOLDER = """() => {
    const box = document.querySelector('#vqa-blip2 textarea');
    const style = getComputedStyle(box);
    const probe = document.createElement('div');
    for (const name of ['fontFamily', 'fontSize', 'fontWeight', 'letterSpacing', 'wordSpacing',
                        'lineHeight', 'direction']) probe.style[name] = style[name];
    const padding = (a, b) => parseFloat(style[a]) + parseFloat(style[b]);
    probe.style.width = `${box.clientWidth - padding('paddingLeft', 'paddingRight')}px`;
    probe.style.whiteSpace = 'pre-wrap';
    probe.style.overflowWrap = 'break-word';
    probe.style.position = 'absolute';
    probe.style.visibility = 'hidden';
    probe.textContent = box.placeholder;
    document.body.appendChild(probe);
    const needed = probe.getBoundingClientRect().height;
    probe.remove();
    return { needed, shown: box.clientHeight - padding('paddingTop', 'paddingBottom'),
             placeholder: box.placeholder, empty: box.value === '' };
}"""


@pytest.mark.parametrize("accessible", [False, True], ids=["default", "accessible"])
@pytest.mark.parametrize("locale", LOCALES)
# The narrowest desktop and a phone: wider, the placeholder only has more room.
@pytest.mark.parametrize("size", [DESKTOPS[0], (390, 844)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_empty_blip2_box_shows_all_of_its_placeholder(
    browser, serve, both, size, locale, accessible
):
    # Large text wrapped "BLIP-2's answer appears here after you ask." onto a third line that
    # the two-line box cut off.
    url, _ = serve(both, accessible=accessible)
    page = open_at(browser, url, width=size[0], height=size[1], locale=locale)
    settled(page)
    box = page.evaluate(PLACEHOLDER)
    page.close()
    assert box["empty"] and box["placeholder"], box
    assert box["needed"] <= box["shown"] + 1, box
