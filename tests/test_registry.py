"""Model choice: presets, environment variables, folders, and offline fallback."""

import pytest

from vqa_core import load_services, resolve_model
from vqa_core.errors import ModelLoadError
from vqa_core.registry import DEMO_CHECKPOINTS, REAL_CHECKPOINTS


def test_real_preset_names_the_hub_checkpoints():
    assert resolve_model("vilt", "real").source == "dandelin/vilt-b32-finetuned-vqa"
    assert resolve_model("blip2", "real").source == "Salesforce/blip2-opt-2.7b"


def test_environment_variable_is_read(monkeypatch, tiny_vilt_dir):
    monkeypatch.setenv("VQA_VILT_MODEL", str(tiny_vilt_dir))
    choice = resolve_model("vilt")
    assert choice.source == str(tiny_vilt_dir.resolve())
    assert "VQA_VILT_MODEL" in choice.reason


@pytest.mark.parametrize("kind", ["vilt", "blip2"])
def test_auto_offline_falls_back_to_the_shipped_demo(monkeypatch, kind):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: False)
    # The demo models are part of the repository: the fallback must find them.
    assert (DEMO_CHECKPOINTS[kind] / "config.json").is_file()
    choice = resolve_model(kind, "auto")
    assert choice.is_demo and "offline" in choice.reason


@pytest.mark.parametrize("kind", ["vilt", "blip2"])
def test_auto_offline_without_the_demo_says_how_to_build_it(monkeypatch, tmp_path, kind):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: False)
    monkeypatch.setitem(DEMO_CHECKPOINTS, kind, tmp_path / "not-built")
    with pytest.raises(ModelLoadError, match="make demo-models"):
        resolve_model(kind, "auto")


def test_auto_prefers_a_cached_real_checkpoint(monkeypatch):
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: True)
    assert resolve_model("vilt", "auto").source == REAL_CHECKPOINTS["vilt"]


def test_unknown_kind_lists_choices():
    with pytest.raises(ValueError, match="vilt, blip2"):
        resolve_model("clip")


def test_one_failed_model_leaves_the_other_loaded(tiny_vilt_dir, tmp_path):
    services = load_services(str(tiny_vilt_dir), str(tmp_path / "missing"), device="cpu")
    assert services.vilt is not None and services.vilt_error is None
    assert services.blip2 is None and "Could not load BLIP-2" in services.blip2_error


def test_quantization_without_bitsandbytes_is_a_clear_message(tiny_blip2_dir, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a),
    )
    services = load_services(
        only="blip2", blip2=str(tiny_blip2_dir), blip2_quantization="8bit", device="cpu"
    )
    assert services.blip2 is None
    assert "pip install bitsandbytes" in services.blip2_error
    # only= loads just one, and says why the other is missing
    assert services.vilt is None and "--only blip2" in services.vilt_error
