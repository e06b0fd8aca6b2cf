"""BLIP-2: a generator answering ``Question: {q} Answer:`` in free text."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import Blip2ForConditionalGeneration, Blip2Processor

from ._runtime import load_errors, model_errors, pair_batch, timed
from .errors import ModelLoadError
from .images import ImageSource, load_image
from .placement import Placement, resolve_placement
from .questions import DEFAULT_PROMPT_TEMPLATE, clean_question, format_prompt

__all__ = ["Blip2Result", "Blip2Answerer", "load_blip2", "QUANTIZATION_CHOICES"]

logger = logging.getLogger(__name__)

QUANTIZATION_CHOICES = ("none", "8bit", "4bit")
# Answers to visual questions are a few words; a short budget keeps latency predictable.
DEFAULT_MAX_NEW_TOKENS = 10
MAX_NEW_TOKENS_LIMIT = 64
MAX_BEAMS = 8


@dataclass(frozen=True)
class Blip2Result:
    answer: str
    question: str
    seconds: float = 0.0
    batch_size: int = 1
    model: str = ""

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "answer": self.answer,
            "seconds": self.seconds,
            "batch_size": self.batch_size,
        }


def _quantization_config(quantization: str):
    if quantization not in QUANTIZATION_CHOICES:
        raise ModelLoadError(
            f"Unknown quantization {quantization!r}; choose one of: {', '.join(QUANTIZATION_CHOICES)}."
        )
    if quantization == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            f"{quantization} loading needs the bitsandbytes package and a CUDA GPU; "
            "install it with `pip install bitsandbytes`, or load without --quantization."
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)


def load_blip2(
    name_or_path: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    placement: Placement | None = None,
    device_map: str | None = None,
    quantization: str = "none",
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor, Placement]:
    """Load BLIP-2 and its processor from a hub id or a local folder.

    ``device_map="auto"`` lets accelerate spread a large checkpoint over the GPU and CPU
    memory; ``quantization`` is ``8bit`` or ``4bit`` through bitsandbytes.
    """
    placement = placement or resolve_placement(device, dtype)
    quantization_config = _quantization_config(quantization)
    kwargs: dict = {"dtype": placement.dtype}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = device_map or "auto"
    elif device_map:
        kwargs["device_map"] = device_map
    with load_errors("BLIP-2", name_or_path):
        processor = Blip2Processor.from_pretrained(name_or_path)
        model = Blip2ForConditionalGeneration.from_pretrained(name_or_path, **kwargs)
    if "device_map" not in kwargs:
        model.to(placement.device)
    model.eval()
    # Batched generation with a decoder-only LM must pad on the left.
    processor.tokenizer.padding_side = "left"
    logger.info("BLIP-2 %s loaded on %s", name_or_path, placement.describe())
    return model, processor, placement


@dataclass
class Blip2Answerer:
    """Answers batches of (image, question) by generation."""

    model: Blip2ForConditionalGeneration
    processor: Blip2Processor
    placement: Placement
    name: str = "BLIP-2"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE

    def __post_init__(self) -> None:
        format_prompt(self.prompt_template, "")  # reject a template without {question} early
        self.processor.tokenizer.padding_side = "left"

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        device_map: str | None = None,
        quantization: str = "none",
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    ) -> Blip2Answerer:
        model, processor, placement = load_blip2(
            name_or_path,
            device=device,
            dtype=dtype,
            device_map=device_map,
            quantization=quantization,
        )
        return cls(model, processor, placement, str(name_or_path), prompt_template)

    @property
    def input_device(self) -> torch.device:
        # Under a device_map the first module decides where inputs go.
        return self.model.device if hasattr(self.model, "device") else self.placement.device

    def answer(
        self,
        image: ImageSource,
        question: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> Blip2Result:
        return self.answer_batch(
            [image], [question], max_new_tokens=max_new_tokens, num_beams=num_beams
        )[0]

    def answer_batch(
        self,
        images: Sequence[ImageSource],
        questions: Sequence[str],
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> list[Blip2Result]:
        pair_batch(images, questions)
        pictures = [load_image(image) for image in images]
        texts = [clean_question(question) for question in questions]
        prompts = [format_prompt(self.prompt_template, text) for text in texts]
        max_new_tokens = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_LIMIT))
        num_beams = max(1, min(int(num_beams), MAX_BEAMS))
        with timed() as watch, model_errors("BLIP-2"), torch.inference_mode():
            inputs = self.processor(
                images=pictures, text=prompts, padding=True, return_tensors="pt"
            ).to(self.input_device)
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            generated = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
            )
            # The language model returns prompt + continuation; keep the continuation.
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]
            answers = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [
            Blip2Result(
                answer=answer.strip(),
                question=text,
                seconds=watch.seconds,
                batch_size=len(texts),
                model=self.name,
            )
            for text, answer in zip(texts, answers)
        ]
