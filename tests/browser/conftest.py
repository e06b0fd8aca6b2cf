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
def browser():
    # Missing Chromium or Playwright is a failure, not a skip: CI must run these tests.
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing; run `make browser-deps`"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
    import app as vqa_app

    started = []

    def start(services, **options):
        demo = vqa_app.build_demo(services, **options)
        launch = vqa_app.launch_kwargs(
            kiosk=options.get("kiosk", False),
            accessible=options.get("accessible", False),
            idle_reset_seconds=options.get("idle_reset_seconds", 90),
        )
        demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **launch)
        started.append(demo)
        return demo.local_url, demo

    yield start
    for demo in started:
        with contextlib.suppress(Exception):
            demo.close()
