"""BLIP-2's precision is read from the parts that carry its weights, never ``model.dtype``.

Loaded in fp16, BLIP-2 keeps its query tokens and Q-Former in fp32 (transformers'
``_keep_in_fp32_modules``), so ``model.dtype`` (its first parameter's type) says float32
while the vision model and the language model are fp16: measured on an H200, where a test
reading ``model.dtype`` failed although the answers were right. This CPU torch has fp16
kernels, so a tiny BLIP-2 loaded in fp16 here shows the same split. The placement is built
by hand: the resolver itself never puts fp16 on a CPU.
"""

from __future__ import annotations

import logging

import pytest
import torch

from vqa_core import Blip2Answerer
from vqa_core.loading import weights_dtype
from vqa_core.placement import Placement

HALF_ON_CPU = Placement(torch.device("cpu"), torch.float16)


@pytest.fixture(scope="module")
def half_blip2(tiny_blip2_dir):
    return Blip2Answerer.from_pretrained(str(tiny_blip2_dir), placement=HALF_ON_CPU)


def test_fp16_blip2_keeps_its_q_former_in_fp32(half_blip2):
    # The situation the code must handle: model.dtype is not the load's precision.
    model = half_blip2.model
    assert model.dtype == torch.float32
    assert model.qformer.dtype == torch.float32 and model.query_tokens.dtype == torch.float32
    assert model.vision_model.dtype == torch.float16
    assert model.language_model.dtype == torch.float16
    assert weights_dtype(model) == torch.float16


def test_pixels_reach_the_vision_model_in_its_own_type(half_blip2, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    seen: list[torch.dtype] = []

    def record(module, args, kwargs):
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        seen.append(pixels.dtype)

    hook = half_blip2.model.vision_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        results = half_blip2.answer_batch(paths[:2], questions[:2], max_new_tokens=2)
        half_blip2.describe(paths[0], max_new_tokens=2)
    finally:
        hook.remove()
    assert len(results) == 2
    assert seen and set(seen) == {torch.float16}


def test_the_load_is_described_by_its_weights(tiny_blip2_dir, caplog):
    with caplog.at_level(logging.INFO, logger="vqa_core.loading"):
        Blip2Answerer.from_pretrained(str(tiny_blip2_dir), placement=HALF_ON_CPU)
    loaded = [r.getMessage() for r in caplog.records if "loaded on" in r.getMessage()]
    assert loaded and loaded[-1].endswith(
        "loaded on cpu / float16 (qformer, query_tokens kept in float32)"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
