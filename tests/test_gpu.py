"""GPU checks: skipped without CUDA, run where a GPU is present (make test-gpu).

What they hold to: the parts that carry the weights are in the precision that was asked for
(ViLT whole; BLIP-2's vision model and language model), the only parts left in fp32 are the
ones transformers keeps there on purpose (BLIP-2's ``_keep_in_fp32_modules``: the query
tokens and the Q-Former), inputs reach the vision model in its own type, and the trained
demo models answer a real slice of easy-VQA in fp16 as they do in fp32.
"""

from __future__ import annotations

import pytest
import torch

from vqa_core import Blip2Answerer, ViltAnswerer, resolve_placement
from vqa_core.loading import describe_loaded, weights_dtype
from vqa_core.registry import DEMO_CHECKPOINTS

pytestmark = pytest.mark.gpu

# Every 40th question of easy-VQA's test split: 242 questions over the whole split.
SLICE_STEP = 40
# fp16 rounds differently from fp32, so a genuine near-tie may flip; at most 1 in 100 may.
MAX_DISAGREEMENT = 0.01
BATCH = 32


@pytest.fixture(scope="module")
def easy_vqa_slice():
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    picked = range(0, len(questions), SLICE_STEP)
    return (
        [paths[image_ids[i]] for i in picked],
        [questions[i] for i in picked],
        [answers[i] for i in picked],
    )


def _batches(items: list, size: int = BATCH):
    return [items[start : start + size] for start in range(0, len(items), size)]


def _fp32_kept_names(model: torch.nn.Module) -> set[str]:
    """Parameter names under the model's ``_keep_in_fp32_modules`` (and ``_strict``)."""
    keep = set(model._keep_in_fp32_modules or ()) | set(model._keep_in_fp32_modules_strict or ())
    return {
        name
        for name, _ in model.named_parameters()
        if any(f".{key}." in f".{name}." for key in keep)
    }


def test_auto_prefers_cuda_in_fp16():
    placement = resolve_placement("auto", "auto")
    assert placement.device.type == "cuda"
    assert placement.dtype == torch.float16


def test_vilt_fp16_holds_every_weight_in_fp16_on_the_gpu():
    vilt = ViltAnswerer.from_pretrained(str(DEMO_CHECKPOINTS["vilt"]), device="cuda")
    assert not _fp32_kept_names(vilt.model)  # ViLT keeps nothing in fp32
    wrong = {
        name: (p.dtype, p.device.type)
        for name, p in vilt.model.named_parameters()
        if p.dtype != torch.float16 or p.device.type != "cuda"
    }
    assert not wrong
    assert weights_dtype(vilt.model) == torch.float16


def test_blip2_fp16_keeps_only_what_transformers_keeps_in_fp32():
    blip2 = Blip2Answerer.from_pretrained(str(DEMO_CHECKPOINTS["blip2"]), device="cuda")
    model = blip2.model
    assert blip2.placement.dtype == torch.float16
    for part in (model.vision_model, model.language_model):
        assert {p.dtype for p in part.parameters()} == {torch.float16}
        assert {p.device.type for p in part.parameters()} == {"cuda"}
    kept = _fp32_kept_names(model)
    assert kept, "transformers no longer keeps BLIP-2's Q-Former in fp32: revisit this test"
    fp32 = {name for name, p in model.named_parameters() if p.dtype == torch.float32}
    assert fp32 == kept  # all of the kept parts, and nothing else
    # model.dtype reads the first parameter (the fp32 query tokens): not the load's precision.
    assert weights_dtype(model) == torch.float16
    assert blip2.pixel_dtype == torch.float16
    assert describe_loaded(model, blip2.placement).startswith("cuda / float16")


def test_vilt_fp16_answers_like_fp32_on_easy_vqa(easy_vqa_slice):
    paths, questions, answers = easy_vqa_slice
    source = str(DEMO_CHECKPOINTS["vilt"])
    half = ViltAnswerer.from_pretrained(source, device="cuda", dtype="float16")
    full = ViltAnswerer.from_pretrained(source, device="cpu", dtype="float32")
    got, want = [], []
    for images, texts in zip(_batches(paths), _batches(questions)):
        got += [r.best for r in half.answer_batch(images, texts, top_k=1)]
        want += [r.best for r in full.answer_batch(images, texts, top_k=1)]
    differ = sum(a != b for a, b in zip(got, want))
    assert differ <= MAX_DISAGREEMENT * len(want), (differ, len(want))
    correct = sum(a == b for a, b in zip(got, answers))
    assert correct >= 0.95 * len(answers)  # the trained demo model, not noise agreeing


def test_blip2_fp16_answers_like_fp32_on_easy_vqa(easy_vqa_slice):
    paths, questions, answers = easy_vqa_slice
    source = str(DEMO_CHECKPOINTS["blip2"])
    half = Blip2Answerer.from_pretrained(source, device="cuda", dtype="float16")
    full = Blip2Answerer.from_pretrained(source, device="cpu", dtype="float32")
    got, want = [], []
    for images, texts in zip(_batches(paths), _batches(questions)):
        got += [r.answer for r in half.answer_batch(images, texts, max_new_tokens=5)]
        want += [r.answer for r in full.answer_batch(images, texts, max_new_tokens=5)]
    differ = sum(a != b for a, b in zip(got, want))
    assert differ <= MAX_DISAGREEMENT * len(want), (differ, len(want))
    correct = sum(a.strip().lower() == b for a, b in zip(got, answers))
    assert correct >= 0.95 * len(answers)


def test_int8_on_the_gpu_is_weight_only_and_answers():
    blip2 = Blip2Answerer.from_pretrained(
        str(DEMO_CHECKPOINTS["blip2"]), device="cuda", quantization="int8"
    )
    weights = [
        m.weight
        for m in blip2.model.language_model.modules()
        if isinstance(m, torch.nn.Linear) and hasattr(m.weight, "qdata")
    ]
    assert weights, "no language-model layer was quantized"
    # Weight-only: the layers carry no activation quantization of their own.
    assert all(getattr(w, "act_quant_kwargs", None) is None for w in weights)
    assert all(w.device.type == "cuda" for w in weights)
    import easy_vqa

    questions, _, image_ids = easy_vqa.get_test_questions()
    path = easy_vqa.get_test_image_paths()[image_ids[0]]
    assert blip2.answer(path, questions[0]).answer
