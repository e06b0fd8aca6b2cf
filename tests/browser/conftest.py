"""Headless Chromium (Debian's, never `playwright install`) driving the real app.

The app is served in this process on tiny models, exactly as ``main()`` serves it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def playwright():
    # Missing Chromium or Playwright is a failure, not a skip: CI must run these tests.
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing; run `make browser-deps`"
    )
    from playwright.sync_api import sync_playwright

    # One driver for the session: the sync API refuses a second one in the same thread.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


# What the fake camera films: the left half one flat colour, the right half another. Flat
# colours survive YUV 4:2:0 and lossy capture, so the test can tell the frame apart from a
# placeholder, and the halves tell a mirrored photo from a true one.
CAMERA_LEFT = (20, 160, 40)
CAMERA_RIGHT = (200, 40, 160)


def write_y4m(path: Path, size=(320, 240), frames=10) -> None:
    """A still YUV4MPEG2 clip, the format Chromium's fake camera plays from a file."""
    from PIL import Image

    frame = Image.new("RGB", size, CAMERA_RIGHT)
    frame.paste(CAMERA_LEFT, (0, 0, size[0] // 2, size[1]))
    # Pillow's YCbCr is full range; Chromium reads the clip as video (limited) range.
    luma, blue, red = frame.convert("YCbCr").split()
    luma = luma.point(lambda v: round(16 + v * 219 / 255)).tobytes()
    half = (size[0] // 2, size[1] // 2)
    chroma = [
        band.point(lambda v: round(128 + (v - 128) * 224 / 255)).resize(half).tobytes()
        for band in (blue, red)
    ]
    with path.open("wb") as clip:
        clip.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            clip.write(b"FRAME\n" + luma + chroma[0] + chroma[1])


@pytest.fixture(scope="session")
def camera_browser(playwright, tmp_path_factory):
    """Chromium whose camera films CAMERA_LEFT | CAMERA_RIGHT and whose prompt says yes."""
    clip = tmp_path_factory.mktemp("camera") / "colour.y4m"
    write_y4m(clip)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def axe_source() -> str:
    assert AXE.is_file(), f"{AXE} is missing; run `make browser-deps` (npm ci)"
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def serve():
    """serve(services, **options) -> (url, demo); every app is closed after the test."""
    import ui

    started = []

    def start(services, **options):
        demo = ui.build_demo(services, **options)
        launch = ui.launch_kwargs(
            kiosk=options.get("kiosk", False),
            accessible=options.get("accessible", False),
            idle_reset_seconds=options.get("idle_reset_seconds", 90),
            translates=options.get("translator") is not None,
        )
        demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **launch)
        started.append(demo)
        return demo.local_url, demo

    yield start
    for demo in started:
        with contextlib.suppress(Exception):
            demo.close()


@pytest.fixture
def both(tiny_vilt, tiny_blip2):
    """Both tiny models, as the page serves them."""
    from vqa_core import Services

    return Services(vilt=tiny_vilt, blip2=tiny_blip2)


@pytest.fixture(scope="module")
def sample(easy_vqa_sample):
    """One easy-VQA picture and its question."""
    paths, questions, _ = easy_vqa_sample
    return paths[0], questions[0]
