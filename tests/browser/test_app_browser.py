"""The app in a real browser: upload, ask with Enter, read both answers; kiosk idle reset;
keyboard-only use; speech; Arabic; a model missing; axe-core in default and accessible modes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.browser.conftest import CAMERA_LEFT, CAMERA_RIGHT
from tests.doubles import RecordingAnswerer
from ui.messages import summary_line
from vqa_core import Services

# The line names both models once both have answered (in Arabic the names are isolated from
# the sentence around them, so no colon follows them directly).
ANSWERS_READY = (
    "() => { const el = document.querySelector('#vqa-agreement');"
    " return el && el.innerText.includes('BLIP-2') && el.innerText.includes('ViLT'); }"
)
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def expected(tiny_vilt, tiny_blip2, sample):
    path, question = sample
    vilt = tiny_vilt.answer(path, question, top_k=5).answers
    blip2 = tiny_blip2.answer(path, question).answer
    return vilt, blip2


def open_page(browser, url, *, locale="en-US", **context):
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale=locale, **context)
    page.goto(url)
    page.wait_for_selector("#vqa-ask", timeout=30_000)
    return page


def ask_with_enter(page, image: str, question: str) -> None:
    page.locator("#vqa-image input[type=file]").set_input_files(image)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    ask_typed(page, question)


def ask_typed(page, question: str) -> None:
    """Type the question about the picture already in place, press Enter, wait for both."""
    box = page.locator("#vqa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(ANSWERS_READY, timeout=60_000)


def shown_answers(page) -> tuple[list[str], str, str]:
    vilt = page.locator("#vqa-vilt [data-testid$='-confidence-set']").all_inner_texts()
    blip2 = page.locator("#vqa-blip2 textarea").input_value()
    return [line.split("\n")[0].strip() for line in vilt], blip2, page.inner_text("#vqa-agreement")


def run_axe(page, axe_source: str) -> list[dict]:
    # Gradio fades an output to 20% opacity while an event that writes it is still running
    # (class "pending"): checked then, its text fails contrast for a reason no visitor sees
    # once the answer is in.
    # It fades back over 0.15 s, and a chained event may start right after, so wait until the
    # page has been settled (nothing pending, nothing part-faded) for half a second.
    page.evaluate(
        """() => new Promise((resolve) => {
            let since = null;
            const start = performance.now();  // after 30 s axe runs anyway and reports
            const settled = () => !document.querySelector(".pending") && [
                ...document.querySelectorAll("[data-testid='markdown-wrapper'], .block"),
            ].every((el) => getComputedStyle(el).opacity === "1");
            const check = () => {
                const now = performance.now();
                if (!settled()) since = null;
                else if (since === null) since = now;
                else if (now - since >= 500) return resolve();
                if (now - start > 30000) return resolve();
                setTimeout(check, 50);
            };
            check();
        })"""
    )
    page.add_script_tag(content=axe_source)
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({ target: n.target.join(" "), html: n.html.slice(0, 160) })),
            }));
        }"""
    )


def test_upload_type_enter_shows_both_answers(browser, serve, both, sample, expected, artifacts):
    url, _ = serve(both)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    page.wait_for_selector("#vqa-ask", timeout=30_000)
    ask_with_enter(page, *sample)
    # Offline-safe: fonts, scripts and answers all come from the app itself.
    outside = [u for u in requested if not u.startswith((url.rstrip("/"), "data:", "blob:"))]
    assert outside == []
    vilt_labels, blip2_text, line = shown_answers(page)
    vilt, blip2 = expected
    assert vilt_labels == [label for label, _ in vilt]
    assert blip2_text == blip2
    assert line == summary_line(vilt, blip2)
    assert "batch of 1" in page.inner_text("#vqa-vilt-status")
    assert "batch of 1" in page.inner_text("#vqa-blip2-status")
    # A screen reader hears the finished line, once, from the page's one live region.
    assert page.get_attribute("#vqa-announcer", "aria-live") == "polite"
    page.wait_for_function(
        "(line) => document.getElementById('vqa-announcer').textContent === line",
        arg=line,
        timeout=10_000,
    )
    page.screenshot(path=str(artifacts / "default.png"), full_page=True)
    page.close()


def _one_picture_for_both(vilt: RecordingAnswerer, blip2: RecordingAnswerer):
    assert len(vilt.images) == 1 and len(blip2.images) == 1
    assert vilt.images[0].tobytes() == blip2.images[0].tobytes()
    return vilt.images[0]


def _mean_colour(image) -> list[float]:
    from PIL import ImageStat

    return ImageStat.Stat(image.convert("RGB")).mean


def test_webcam_photo_is_answered(camera_browser, serve, tiny_vilt, tiny_blip2):
    vilt, blip2 = RecordingAnswerer(tiny_vilt), RecordingAnswerer(tiny_blip2)
    url, _ = serve(Services(vilt=vilt, blip2=blip2))
    page = open_page(camera_browser, url)
    page.click('#vqa-image button[aria-label="Capture from camera"]')
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#vqa-image video');"
        " return !!v && v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=15_000,
    )
    page.get_by_role("button", name="capture photo").first.click()
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    ask_typed(page, "what color is the shape?")
    photo = _one_picture_for_both(vilt, blip2)
    # The camera's own frame, not a placeholder (its size and, within lossy capture, its
    # colours), and not mirrored: a mirrored photo flips text and left/right for the models.
    assert photo.size == (320, 240)
    left, right = photo.crop((8, 8, 152, 232)), photo.crop((168, 8, 312, 232))
    for half, colour in ((left, CAMERA_LEFT), (right, CAMERA_RIGHT)):
        assert all(abs(got - want) < 8 for got, want in zip(_mean_colour(half), colour))
    page.close()


def test_pasted_picture_is_answered(browser, serve, tiny_vilt, tiny_blip2):
    vilt, blip2 = RecordingAnswerer(tiny_vilt), RecordingAnswerer(tiny_blip2)
    url, _ = serve(Services(vilt=vilt, blip2=blip2))
    page = open_page(browser, url, permissions=["clipboard-read", "clipboard-write"])
    # A picture copied elsewhere: a flat blue 96x48 PNG put on the clipboard.
    page.evaluate(
        """async () => {
            const canvas = document.createElement('canvas');
            canvas.width = 96; canvas.height = 48;
            const pen = canvas.getContext('2d');
            pen.fillStyle = 'rgb(30, 60, 200)'; pen.fillRect(0, 0, 96, 48);
            const png = await new Promise((done) => canvas.toBlob(done, 'image/png'));
            await navigator.clipboard.write([new ClipboardItem({'image/png': png})]);
        }"""
    )
    page.click('#vqa-image button[aria-label="Paste from clipboard"]')
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    ask_typed(page, "what color is the shape?")
    picture = _one_picture_for_both(vilt, blip2)
    assert picture.size == (96, 48)
    assert all(abs(got - want) < 2 for got, want in zip(_mean_colour(picture), (30, 60, 200)))
    page.close()


def test_heic_upload_is_shown_and_answered(browser, serve, tiny_vilt, tiny_blip2, tmp_path):
    # Chromium cannot draw HEIC, an iPhone's own format: the app swaps in a picture it can.
    import pillow_heif
    from PIL import Image

    from vqa_core import load_image

    photo = tmp_path / "phone.heic"
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 30, 30))).save(photo, quality=90)
    vilt, blip2 = RecordingAnswerer(tiny_vilt), RecordingAnswerer(tiny_blip2)
    url, _ = serve(Services(vilt=vilt, blip2=blip2))
    page = open_page(browser, url)
    page.locator("#vqa-image input[type=file]").set_input_files(str(photo))
    page.wait_for_function(
        "() => { const img = document.querySelector('#vqa-image img');"
        " return !!img && img.complete && img.naturalWidth === 64; }",
        timeout=15_000,
    )
    ask_typed(page, "what color is the shape?")
    # The models see exactly what the intake makes of the phone's file.
    assert _one_picture_for_both(vilt, blip2).tobytes() == load_image(photo).tobytes()
    page.close()


def test_kiosk_idle_reset_clears_inputs_and_deletes_upload(
    browser, serve, both, sample, artifacts, tmp_path
):
    from PIL import Image

    # The visitor's own picture: the easy-VQA sample is byte for byte one of the examples,
    # whose shared copy a reset must keep.
    own = tmp_path / "visitor.png"
    picture = Image.open(sample[0]).convert("RGB")
    picture.putpixel((0, 0), (1, 2, 3))
    picture.save(own)
    sample = (str(own), sample[1])
    url, _ = serve(both, kiosk=True, idle_reset_seconds=3)
    page = open_page(browser, url)
    assert page.locator("footer").count() == 0 or not page.locator("footer").is_visible()
    assert page.get_by_text("Use via API").count() == 0
    # No run history: the browser keeps no record of questions or images for the next visitor.
    assert page.request.get(url.rstrip("/") + "/gradio_api/runs").status == 404
    page.locator("#vqa-accessible-toggle input[type=checkbox]").check()
    ask_with_enter(page, *sample)
    source = page.get_attribute("#vqa-image img", "src")
    uploaded = Path(unquote(source.split("file=", 1)[1]))
    assert uploaded.is_file()
    page.screenshot(path=str(artifacts / "kiosk-answered.png"), full_page=True)
    page.wait_for_function(
        "() => !document.querySelector('#vqa-image img')"
        " && document.querySelector('#vqa-question textarea').value === ''"
        " && document.querySelector('#vqa-agreement').innerText.trim() === ''",
        timeout=30_000,
    )
    assert page.locator("#vqa-blip2 textarea").input_value() == ""
    assert not uploaded.exists(), "the kiosk reset must delete the session's upload"
    page.wait_for_function("() => !document.body.classList.contains('vqa-accessible')")
    page.wait_for_timeout(1000)  # let the reset's own transitions finish before the picture
    page.screenshot(path=str(artifacts / "kiosk-reset.png"), full_page=True)
    page.close()


CAMERA_LIVE = (
    "() => [...document.querySelectorAll('#vqa-image video')]"
    ".some((v) => !!v.srcObject && v.srcObject.active)"
)


def test_kiosk_idle_reset_turns_the_camera_off(camera_browser, serve, both):
    # A visitor who walks away from a live camera must not leave it filming the next one.
    url, _ = serve(both, kiosk=True, idle_reset_seconds=3)
    page = open_page(camera_browser, url)
    # The kiosk's only picture source is the camera (no file chooser): no source buttons.
    assert page.locator('#vqa-image button[aria-label="Capture from camera"]').count() == 0
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function(CAMERA_LIVE, timeout=15_000)
    page.wait_for_function(f"() => !({CAMERA_LIVE})()", timeout=15_000)
    # Off for good: the next visitor has to ask for the camera again.
    page.wait_for_timeout(1000)
    assert not page.evaluate(CAMERA_LIVE)
    assert page.get_by_role("button", name="Click to Access Webcam").is_visible()
    page.close()


def _tab_to(page, selector: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(
            "(sel) => { const a = document.activeElement;"
            " return !!a && !!a.closest(sel) || (a && a.matches && a.matches(sel)); }",
            selector,
        ):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_flow_and_read_aloud(browser, serve, both, sample, expected):
    url, _ = serve(both)
    page = open_page(browser, url)
    page.evaluate(
        """() => {
            window.__spoken = []; window.__cancelled = 0;
            speechSynthesis.speak = (u) => window.__spoken.push(u.text);
            const cancel = speechSynthesis.cancel.bind(speechSynthesis);
            speechSynthesis.cancel = () => { window.__cancelled += 1; cancel(); };
        }"""
    )
    image, question = sample
    # Open the file chooser from the keyboard: Tab to the drop area (not the source icons
    # beside it), press Enter. Wait for the page's scripts first: a key pressed before the
    # upload area has its handlers does nothing, for a person too. Playwright turns on
    # chooser interception without waiting for the browser's reply when the first
    # "filechooser" listener is added, so a listener added only at Enter raced the key
    # (puppeteer/puppeteer#6040): the chooser then went uncaught in about one run in five.
    page.on("filechooser", lambda _chooser: None)
    # Not "networkidle": a page with session state keeps Gradio's heartbeat stream open, so
    # the network is never idle. Gradio runs the page script once the app is mounted.
    page.wait_for_function("() => typeof window.vqaSpeak === 'function'", timeout=30_000)
    _tab_to(page, '#vqa-image button[aria-label^="Drop an image"]')
    with page.expect_file_chooser(timeout=10_000) as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(image)
    page.wait_for_selector("#vqa-image img", timeout=15_000)
    _tab_to(page, "#vqa-question textarea")
    page.keyboard.type(question)
    _tab_to(page, "#vqa-ask")
    page.keyboard.press("Enter")
    page.wait_for_function(ANSWERS_READY, timeout=60_000)
    vilt, blip2 = expected
    region = page.inner_text("#vqa-agreement")
    assert region == summary_line(vilt, blip2)
    _tab_to(page, "#vqa-read")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__spoken.length > 0", timeout=5_000)
    assert page.evaluate("() => window.__spoken[0]") == region
    _tab_to(page, "#vqa-stop")
    cancelled = page.evaluate("() => window.__cancelled")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.__cancelled > {cancelled}", timeout=5_000)
    page.close()


def test_auto_read_speaks_new_answers(browser, serve, both, sample):
    url, _ = serve(both)
    page = open_page(browser, url)
    page.evaluate(
        "() => { window.__spoken = []; speechSynthesis.speak = (u) => window.__spoken.push(u.text); }"
    )
    page.locator("#vqa-auto-read input[type=checkbox]").check()
    ask_with_enter(page, *sample)
    page.wait_for_function("() => window.__spoken.length > 0", timeout=5_000)
    assert page.evaluate("() => window.__spoken[0]") == page.inner_text("#vqa-agreement")
    page.close()


def test_missing_model_column_says_so_and_other_answers(browser, serve, tiny_vilt, sample):
    reason = "The BLIP-2 model could not be loaded from /nowhere: no such folder."
    url, _ = serve(Services(vilt=tiny_vilt, blip2=None, blip2_error=reason))
    page = open_page(browser, url)
    ask_with_enter(page, *sample)
    vilt_labels, blip2_text, line = shown_answers(page)
    assert len(vilt_labels) == 5 and blip2_text == ""
    assert reason in page.inner_text("#vqa-blip2-status")
    assert "batch of 1" in page.inner_text("#vqa-vilt-status")
    assert "Only one model answered" in line
    page.close()


def test_arabic_locale_is_right_to_left(browser, serve, both, sample, expected, artifacts):
    url, _ = serve(both)
    page = open_page(browser, url, locale="ar-EG")
    assert page.evaluate("() => document.documentElement.dir") == "rtl"
    assert page.inner_text("#vqa-ask").strip() == "اسأل"
    ask_with_enter(page, *sample)
    # The agreement line follows the browser's language too.
    assert page.inner_text("#vqa-agreement") == summary_line(*expected, "ar")
    page.screenshot(path=str(artifacts / "arabic.png"), full_page=True)
    page.close()


def _contrast(page, selector: str) -> list[float]:
    """WCAG contrast of each matching element's text against its effective background."""
    return page.evaluate(
        """(sel) => {
            const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
                const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const background = (el) => {
                for (let e = el; e; e = e.parentElement) {
                    const c = rgb(getComputedStyle(e).backgroundColor);
                    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
                }
                return [255, 255, 255];
            };
            return [...document.querySelectorAll(sel)].map((el) => {
                const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
                return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            });
        }""",
        selector,
    )


def test_accessible_toggle_high_contrast_including_hover_and_examples(
    browser, serve, both, artifacts
):
    url, _ = serve(both)
    page = open_page(browser, url)
    assert not page.evaluate("() => document.body.classList.contains('vqa-accessible')")
    small = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#vqa-question textarea')).fontSize)"
    )
    page.locator("#vqa-accessible-toggle input[type=checkbox]").check()
    page.wait_for_function("() => document.body.classList.contains('vqa-accessible')")
    large = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#vqa-question textarea')).fontSize)"
    )
    assert large >= 1.3 * small
    cells = "#vqa-examples td, #vqa-examples th"
    assert page.locator(cells).count() >= 4
    assert min(_contrast(page, cells)) >= 7
    page.locator("#vqa-examples tbody tr").first.hover()
    assert min(_contrast(page, cells)) >= 7, "hovered example row lost its contrast"
    page.locator("#vqa-ask").hover()
    assert min(_contrast(page, "#vqa-ask, #vqa-reset, #vqa-read")) >= 7
    page.screenshot(path=str(artifacts / "accessible-toggle.png"), full_page=True)
    # The choice survives a reload (kept in the browser only).
    page.reload()
    page.wait_for_selector("#vqa-ask")
    page.wait_for_function("() => document.body.classList.contains('vqa-accessible')")
    page.close()


@pytest.mark.parametrize("mode", ["default", "default-dark", "accessible", "accessible-dark"])
def test_axe_no_serious_violations(browser, serve, both, sample, axe_source, artifacts, mode):
    url, _ = serve(both, accessible=mode.startswith("accessible"))
    scheme = {"color_scheme": "dark"} if mode.endswith("dark") else {}
    page = open_page(browser, url, **scheme)
    ask_with_enter(page, *sample)
    # Open what is folded, so its markup is checked too (the About panel's code spans once
    # came out white on white in high contrast).
    page.locator("#vqa-advanced").get_by_text("Advanced").click()
    page.locator("#vqa-about").get_by_text("About these models").click()
    page.wait_for_selector("#vqa-about code", timeout=5_000)
    violations = [v for v in run_axe(page, axe_source) if v["impact"] in SERIOUS]
    page.screenshot(path=str(artifacts / f"axe-{mode}.png"), full_page=True)
    page.close()
    assert violations == [], violations


def test_vilt_shows_before_slow_blip2(browser, serve, tiny_vilt, tiny_blip2, sample):
    import threading

    release = threading.Event()

    class HeldBlip2:
        """The real tiny BLIP-2, held back until the test has seen ViLT's answer."""

        def __getattr__(self, name):
            return getattr(tiny_blip2, name)

        def answer_batch(self, images, questions, **kwargs):
            release.wait(30)
            return tiny_blip2.answer_batch(images, questions, **kwargs)

    url, _ = serve(Services(vilt=tiny_vilt, blip2=HeldBlip2()))
    page = open_page(browser, url)
    release.set()
    ask_with_enter(page, *sample)  # a first answer, so stale text could linger
    release.clear()
    page.locator("#vqa-question textarea").fill("what color is the shape?")
    page.locator("#vqa-question textarea").press("Enter")
    try:
        # ViLT's new answer with BLIP-2's column already cleared (a timeout here means
        # the last question's BLIP-2 answer lingered).
        page.wait_for_function(
            "() => document.querySelector('#vqa-vilt-status').innerText.includes('batch of')"
            " && document.querySelector('#vqa-blip2 textarea').value === ''",
            timeout=30_000,
        )
        assert page.locator("#vqa-vilt [data-testid$='-confidence-set']").count() == 5
        # BLIP-2 is still held: its column and the agreement line show nothing stale.
        assert "batch of" not in page.inner_text("#vqa-blip2-status")
        assert page.locator("#vqa-blip2 textarea").input_value() == ""
        assert page.inner_text("#vqa-agreement").strip() == ""
    finally:
        release.set()
    page.wait_for_function(ANSWERS_READY, timeout=60_000)
    assert "batch of 1" in page.inner_text("#vqa-blip2-status")
    page.close()
