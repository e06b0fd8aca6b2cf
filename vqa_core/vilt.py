"""ViLT: a classifier over a fixed answer vocabulary, answering with its top-k labels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from transformers import ViltForQuestionAnswering, ViltProcessor

from ._runtime import model_errors, pair_batch, timed
from .images import ImageSource, load_image
from .loading import load_pretrained
from .pixels import vilt_pixel_inputs
from .placement import Placement, resolve_placement
from .questions import clean_question

__all__ = ["ViltResult", "ViltAnswerer", "load_vilt"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViltResult:
    """One answer: ``(label, score)`` pairs best first, scores are per-label sigmoids."""

    answers: list[tuple[str, float]]
    question: str
    truncated: bool = False
    seconds: float = 0.0
    batch_size: int = 1
    model: str = ""

    @property
    def best(self) -> str:
        return self.answers[0][0]

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "answers": [{"answer": a, "score": s} for a, s in self.answers],
            "truncated": self.truncated,
            "seconds": self.seconds,
            "batch_size": self.batch_size,
        }


def load_vilt(
    name_or_path: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    placement: Placement | None = None,
    quantization: str = "none",
) -> tuple[ViltForQuestionAnswering, ViltProcessor, Placement]:
    """Load a ViLT VQA model and its processor from a hub id or a local folder.

    ``quantization="int8"`` stores the linear layers' weights in int8 (torchao), quantized
    one weight at a time as they are read, with activations in ``placement``'s dtype.
    ``int4`` loads the same int8 model: ViLT generates nothing token by token, and int8
    measured fastest for the ~230 rows (text and image patches) of every answer
    (vqa_core.int4_cpu).
    """
    placement = placement or resolve_placement(device, dtype)
    model, processor = load_pretrained(
        "ViLT",
        ViltForQuestionAnswering,
        ViltProcessor,
        name_or_path,
        placement=placement,
        quantization=quantization,
        check=_check_classifier,
    )
    return model, processor, placement


def _check_classifier(model: ViltForQuestionAnswering) -> None:
    if not getattr(model.config, "id2label", None):
        raise ValueError("its config has no id2label, so it is not a VQA classifier")


@dataclass
class ViltAnswerer:
    """Answers batches of (image, question) with a ViLT classifier."""

    model: ViltForQuestionAnswering
    processor: ViltProcessor
    placement: Placement
    name: str = "ViLT"
    labels: list[str] = field(init=False)
    pixel_inputs: Callable[[Sequence[Image.Image]], dict] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        id2label = self.model.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]
        self.pixel_inputs = vilt_pixel_inputs(self.processor.image_processor)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        placement: Placement | None = None,
        quantization: str = "none",
    ) -> ViltAnswerer:
        model, processor, placement = load_vilt(
            name_or_path,
            device=device,
            dtype=dtype,
            placement=placement,
            quantization=quantization,
        )
        return cls(model, processor, placement, name=str(name_or_path))

    @property
    def max_text_length(self) -> int:
        return int(self.model.config.max_position_embeddings)

    def answer(self, image: ImageSource, question: str, top_k: int = 5) -> ViltResult:
        return self.answer_batch([image], [question], top_k=top_k)[0]

    def answer_batch(
        self, images: Sequence[ImageSource], questions: Sequence[str], top_k: int = 5
    ) -> list[ViltResult]:
        pair_batch(images, questions)
        pictures = [load_image(image) for image in images]
        texts = [clean_question(question) for question in questions]
        top_k = max(1, min(int(top_k), len(self.labels)))
        lengths = [len(ids) for ids in self.processor.tokenizer(texts)["input_ids"]]
        with timed() as watch, model_errors("ViLT"), torch.inference_mode():
            # What ViltProcessor does, with the images on torch's kernels (vqa_core.pixels).
            inputs = self.processor.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_text_length,
                return_tensors="pt",
            )
            inputs.update(self.pixel_inputs(pictures))
            inputs = inputs.to(self.placement.device)
            inputs["pixel_values"] = inputs["pixel_values"].to(self.placement.dtype)
            logits = self.model(**inputs).logits
            scores, indices = torch.sigmoid(logits.float()).topk(top_k, dim=-1)
            scores, indices = scores.cpu().tolist(), indices.cpu().tolist()
        return [
            ViltResult(
                answers=[(self.labels[i], float(s)) for i, s in zip(row_ids, row_scores)],
                question=text,
                truncated=length > self.max_text_length,
                seconds=watch.seconds,
                batch_size=len(texts),
                model=self.name,
            )
            for text, length, row_ids, row_scores in zip(texts, lengths, indices, scores)
        ]
