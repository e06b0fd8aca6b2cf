"""ZeroGPU: the model calls are wrapped with ``spaces.GPU`` only on a ZeroGPU Space.

The real ``spaces`` package cannot be imported in ZeroGPU mode here (it patches a CUDA torch
and needs the Space's device API), so "on ZeroGPU" is a stand-in ``spaces`` module that
records what it decorates and still runs the call, as ``spaces.GPU`` does in its worker.
Off ZeroGPU the real, installed package is used where the test needs it.
"""

from __future__ import annotations

import logging
import sys
import types

import pytest

from tests.translation_fixtures import build_tiny_pair
from ui.zerogpu import ZERO_GPU_ENV, ZeroGPU
from vqa_core import Blip2Answerer, Services, ViltAnswerer
from vqa_core.translation import Translator


class StandInSpaces:
    """A ``spaces`` module whose ``GPU`` records the functions it wraps and each call."""

    def __init__(self, *, zero_gpu: bool):
        self.decorated: list[str] = []
        self.calls: list[str] = []
        self.module = types.ModuleType("spaces")
        self.module.GPU = self.gpu
        self.config = types.ModuleType("spaces.config")
        self.config.Config = types.SimpleNamespace(zero_gpu=zero_gpu)

    def gpu(self, task):
        name = task.__qualname__
        self.decorated.append(name)

        def on_gpu(*args, **kwargs):
            self.calls.append(name)
            return task(*args, **kwargs)

        on_gpu.zerogpu = None  # spaces marks its wrappers the same way
        return on_gpu

    def install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "spaces", self.module)
        monkeypatch.setitem(sys.modules, "spaces.config", self.config)


@pytest.fixture
def fresh_services(tiny_vilt, tiny_blip2):
    """Answerers of their own around the session's tiny models, so wrapping leaves those alone."""
    return Services(
        vilt=ViltAnswerer(tiny_vilt.model, tiny_vilt.processor, tiny_vilt.placement),
        blip2=Blip2Answerer(tiny_blip2.model, tiny_blip2.processor, tiny_blip2.placement),
    )


@pytest.fixture(scope="module")
def tiny_translator(tmp_path_factory) -> Translator:
    folder = build_tiny_pair(tmp_path_factory.mktemp("zerogpu-marian"), steps=1)
    return Translator.from_pretrained(
        str(folder / "ar-en"), str(folder / "en-ar"), device="cpu", num_beams=1
    )


def not_wrapped(services: Services) -> bool:
    return all("answer_batch" not in vars(a) for a in (services.vilt, services.blip2))


def test_on_zero_gpu_every_model_call_runs_inside_spaces_gpu(
    monkeypatch, fresh_services, tiny_translator, easy_vqa_sample
):
    spaces = StandInSpaces(zero_gpu=True)
    spaces.install(monkeypatch)
    monkeypatch.setenv(ZERO_GPU_ENV, "true")
    # A translator of its own too: wrapping it must not leak into other tests.
    translator = Translator(
        type(tiny_translator.to_english_model)(**vars(tiny_translator.to_english_model)),
        type(tiny_translator.from_english_model)(**vars(tiny_translator.from_english_model)),
    )

    zero_gpu = ZeroGPU.detect()
    wrapped = zero_gpu.wrap(fresh_services, translator)

    assert zero_gpu.active
    assert spaces.decorated == [
        "ViltAnswerer.answer_batch",
        "Blip2Answerer.answer_batch",
        "Blip2Answerer.describe_batch",
        "MarianDirection.translate",
        "MarianDirection.translate",
    ]
    assert len(wrapped) == 5
    paths, questions, _ = easy_vqa_sample
    vilt = fresh_services.vilt.answer(paths[0], questions[0])  # answer() goes through the batch
    blip2 = fresh_services.blip2.answer(paths[0], questions[0], max_new_tokens=3)
    english = translator.to_english(["ما لون الشكل؟"])
    assert vilt.answers and blip2.answer and len(english) == 1
    assert spaces.calls == [
        "ViltAnswerer.answer_batch",
        "Blip2Answerer.answer_batch",
        "MarianDirection.translate",
    ]


def test_a_missing_model_is_skipped(monkeypatch, fresh_services):
    StandInSpaces(zero_gpu=True).install(monkeypatch)
    monkeypatch.setenv(ZERO_GPU_ENV, "1")
    services = Services(vilt=fresh_services.vilt, blip2_error="did not fit")
    assert ZeroGPU.detect().wrap(services) == ["ViLT.answer_batch"]


def test_off_spaces_nothing_is_imported_or_wrapped(monkeypatch, fresh_services):
    monkeypatch.delenv(ZERO_GPU_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "spaces", raising=False)

    zero_gpu = ZeroGPU.detect()

    assert not zero_gpu.active
    assert zero_gpu.wrap(fresh_services) == []
    assert not_wrapped(fresh_services)
    assert "spaces" not in sys.modules  # 0.3 s of import saved off Spaces


@pytest.mark.parametrize("setting", [None, "false"])
def test_spaces_installed_but_not_on_zero_gpu_wraps_nothing(monkeypatch, fresh_services, setting):
    """The real package, already imported, on a CPU Space or a laptop."""
    monkeypatch.delenv(ZERO_GPU_ENV, raising=False)
    import spaces  # noqa: F401  (in the lock: a broken import fails, never skips)

    if setting is not None:
        monkeypatch.setenv(ZERO_GPU_ENV, setting)
    assert ZeroGPU.detect().wrap(fresh_services) == []
    assert not_wrapped(fresh_services)


def test_spaces_config_has_the_last_word(monkeypatch, fresh_services):
    # The variable says ZeroGPU, but spaces itself was configured otherwise when imported.
    StandInSpaces(zero_gpu=False).install(monkeypatch)
    monkeypatch.setenv(ZERO_GPU_ENV, "true")
    assert ZeroGPU.detect().wrap(fresh_services) == []
    assert not_wrapped(fresh_services)


def test_zero_gpu_without_the_spaces_package_says_so_and_wraps_nothing(
    monkeypatch, fresh_services, caplog
):
    monkeypatch.setenv(ZERO_GPU_ENV, "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError
    with caplog.at_level(logging.WARNING, logger="vqa_app"):
        zero_gpu = ZeroGPU.detect()
    assert not zero_gpu.active
    assert zero_gpu.wrap(fresh_services) == []
    assert not_wrapped(fresh_services)
    assert "spaces package is not installed" in caplog.text


def test_the_app_detects_before_loading_and_wraps_before_launch(monkeypatch):
    """spaces must patch torch before models go to CUDA, and find its functions at launch."""
    import app

    order: list[str] = []

    class Recorded(ZeroGPU):
        def wrap(self, services, translator=None):
            order.append("wrap")
            return []

    def detect(cls):
        order.append("detect")
        return Recorded()

    def load_services(*args, **kwargs):
        order.append("load")
        return Services(vilt_error="not loaded here", blip2_error="not loaded here")

    monkeypatch.setattr(app.ZeroGPU, "detect", classmethod(detect))
    monkeypatch.setattr(app, "load_services", load_services)
    # raising=False: the app loads a translator only where translation is built in.
    monkeypatch.setattr(app, "load_translator", lambda *a, **k: (None, None, None), raising=False)
    monkeypatch.setattr(
        app,
        "build_demo",
        lambda *a, **k: types.SimpleNamespace(launch=lambda **kw: order.append("launch")),
    )
    app.main([])
    assert order == ["detect", "load", "wrap", "launch"]
