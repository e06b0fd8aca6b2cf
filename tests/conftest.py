"""Shared fixtures: tiny ViLT and BLIP-2 checkpoints built from scratch, saved, reloaded.

They go through ``save_pretrained`` and the public loaders, the same path a user's hub id or
local folder takes. Everything is offline.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def easy_vqa_sample():
    """A fixed slice of the easy-VQA test split: (image paths, questions, answers)."""
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    picked = range(0, 400, 20)
    return (
        [paths[image_ids[i]] for i in picked],
        [questions[i] for i in picked],
        [answers[i] for i in picked],
    )


@pytest.fixture(scope="session")
def easy_vqa_texts():
    import easy_vqa

    questions, answers, _ = easy_vqa.get_train_questions()
    return questions[:3000], answers[:3000]


@pytest.fixture(scope="session")
def tiny_vilt_dir(tmp_path_factory, easy_vqa_texts) -> Path:
    from train.builders import build_vilt

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts
    model, processor = build_vilt(questions, answers)
    folder = tmp_path_factory.mktemp("tiny-vilt")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip2_dir(tmp_path_factory, easy_vqa_texts) -> Path:
    from train.builders import build_blip2

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts
    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    model, processor = build_blip2(texts)
    folder = tmp_path_factory.mktemp("tiny-blip2")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vilt(tiny_vilt_dir):
    from vqa_core import ViltAnswerer

    return ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_blip2(tiny_blip2_dir):
    from vqa_core import Blip2Answerer

    return Blip2Answerer.from_pretrained(str(tiny_blip2_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_pair_dir(tmp_path_factory) -> Path:
    """A tiny Arabic<->English Marian pair (``ar-en/``, ``en-ar/``) that knows a few sentences."""
    from tests.translation_fixtures import build_tiny_pair

    return build_tiny_pair(tmp_path_factory.mktemp("tiny-marian"))


@pytest.fixture(scope="session")
def tiny_translator(tiny_pair_dir):
    from vqa_core.translation import Translator

    # Greedy decoding keeps the tests quick; beams are the real pair's default.
    return Translator.from_pretrained(
        str(tiny_pair_dir / "ar-en"), str(tiny_pair_dir / "en-ar"), device="cpu", num_beams=1
    )
