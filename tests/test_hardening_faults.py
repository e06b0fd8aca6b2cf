"""Faults: a model that raises mid-request, runs out of memory, or cannot load.

Each must surface as vqa_core's own error with a message a person can read, and the very
next request on the same answerer must succeed: no state left half-changed by the failure.
The failures are injected into a submodule's forward, so they happen in the middle of the
model's work (mid-encoder for ViLT, mid-decoding for BLIP-2), not before it starts.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import shutil

import pytest
import torch
from PIL import Image

from tests.doubles import FailOnce
from train.builders import build_blip2, build_vilt
from vqa_core import Blip2Answerer, InferenceError, ModelLoadError, ViltAnswerer

QUESTIONS = ["what shape is this?", "what colour is the shape?", "is it a circle?"]
IMAGE = Image.new("RGB", (64, 48), (30, 120, 200))


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("fault-models")
    vilt_model, vilt_processor = build_vilt(QUESTIONS * 10, ["circle", "square", "yes", "no"])
    vilt_model.save_pretrained(folder / "vilt")
    vilt_processor.save_pretrained(folder / "vilt")
    blip2_model, blip2_processor = build_blip2(
        [f"Question: {q} Answer: no" for q in QUESTIONS] * 10
    )
    # A fixed length, so "mid-decoding" below really is in the middle of generation.
    blip2_model.generation_config.min_new_tokens = 4
    blip2_model.save_pretrained(folder / "blip2")
    blip2_processor.save_pretrained(folder / "blip2")
    return folder / "vilt", folder / "blip2"


@pytest.fixture(scope="module")
def vilt(model_dirs):
    return ViltAnswerer.from_pretrained(str(model_dirs[0]), device="cpu")


@pytest.fixture(scope="module")
def blip2(model_dirs):
    return Blip2Answerer.from_pretrained(str(model_dirs[1]), device="cpu")


def _oom() -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)"
    )


def _vilt_mid_layer(vilt: ViltAnswerer) -> torch.nn.Module:
    layers = vilt.model.vilt.encoder.layer
    return layers[len(layers) // 2]


def _blip2_decoder_layer(blip2: Blip2Answerer) -> torch.nn.Module:
    return blip2.model.language_model.get_decoder().layers[0]


def test_vilt_runtime_error_mid_forward_then_recovers(vilt):
    before = vilt.answer(IMAGE, QUESTIONS[0], top_k=3).answers
    with FailOnce(_vilt_mid_layer(vilt), RuntimeError("kernel exploded")) as fault:
        with pytest.raises(InferenceError, match=r"ViLT failed on this request") as caught:
            vilt.answer(IMAGE, QUESTIONS[0], top_k=3)
        assert fault.raised
        assert isinstance(caught.value.__cause__, RuntimeError)
        # Still inside the patch: the failure was one request's, not the model's.
        assert vilt.answer(IMAGE, QUESTIONS[0], top_k=3).answers == before


def test_vilt_out_of_memory_gives_the_memory_message_then_recovers(vilt):
    with FailOnce(_vilt_mid_layer(vilt), _oom()):
        with pytest.raises(InferenceError, match="ran out of memory") as caught:
            vilt.answer_batch([IMAGE, IMAGE], QUESTIONS[:2], top_k=2)
        # The user reads advice, not the allocator's internals.
        assert "Tried to allocate" not in str(caught.value)
        assert "smaller image" in str(caught.value)
        assert len(vilt.answer_batch([IMAGE, IMAGE], QUESTIONS[:2], top_k=2)) == 2


def test_blip2_runtime_error_mid_decoding_then_recovers(blip2):
    before = blip2.answer(IMAGE, QUESTIONS[1], max_new_tokens=4).answer
    decoder = _blip2_decoder_layer(blip2)
    # Call 1 is the prefill (it yields the first token); call 3 runs after two tokens.
    with FailOnce(decoder, RuntimeError("device lost"), on_call=3) as fault:
        with pytest.raises(InferenceError, match=r"BLIP-2 failed on this request"):
            blip2.answer(IMAGE, QUESTIONS[1], max_new_tokens=4)
        assert fault.raised and fault.calls == 3
        assert blip2.answer(IMAGE, QUESTIONS[1], max_new_tokens=4).answer == before
    assert blip2.processor.tokenizer.padding_side == "left"


def test_blip2_out_of_memory_mid_decoding_then_recovers(blip2):
    with FailOnce(_blip2_decoder_layer(blip2), _oom(), on_call=2):
        with pytest.raises(InferenceError, match="ran out of memory") as caught:
            blip2.answer_batch([IMAGE, IMAGE], QUESTIONS[:2], max_new_tokens=4)
        assert "Tried to allocate" not in str(caught.value)
        answers = blip2.answer_batch([IMAGE, IMAGE], QUESTIONS[:2], max_new_tokens=4)
        assert [a.batch_size for a in answers] == [2, 2]


def test_out_of_memory_in_generate_itself(blip2, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise _oom()

    monkeypatch.setattr(blip2.model, "generate", out_of_memory)
    with pytest.raises(InferenceError, match="BLIP-2 ran out of memory"):
        blip2.answer(IMAGE, QUESTIONS[0])
    monkeypatch.undo()
    assert blip2.answer(IMAGE, QUESTIONS[0], max_new_tokens=2).answer


def test_a_fault_in_one_model_leaves_the_other_answering(vilt, blip2):
    with FailOnce(_vilt_mid_layer(vilt), _oom()):
        with pytest.raises(InferenceError):
            vilt.answer(IMAGE, QUESTIONS[0])
        assert blip2.answer(IMAGE, QUESTIONS[0], max_new_tokens=2).answer


@pytest.mark.parametrize("damage", ["missing", "no_weights", "garbage_weights", "garbage_config"])
@pytest.mark.parametrize("which", ["vilt", "blip2"])
def test_a_model_that_fails_to_load_says_so(model_dirs, tmp_path, damage, which):
    source = model_dirs[0] if which == "vilt" else model_dirs[1]
    folder = tmp_path / which
    if damage != "missing":
        shutil.copytree(source, folder)
    weights = next(folder.glob("*.safetensors"), None) if folder.exists() else None
    if damage == "no_weights":
        weights.unlink()
    elif damage == "garbage_weights":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "garbage_config":
        (folder / "config.json").write_text("{ not json")
    loader = ViltAnswerer if which == "vilt" else Blip2Answerer
    with pytest.raises(ModelLoadError) as caught:
        loader.from_pretrained(str(folder), device="cpu")
    message = str(caught.value)
    assert ("ViLT" if which == "vilt" else "BLIP-2") in message
    assert str(folder) in message
