"""Batches built on the fly: images decoded, processed and padded per batch, never stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import ViltProcessor

from train.data import soft_target_vector
from vqa_core.pixels import vilt_pixel_inputs

__all__ = ["ViltVqaCollator"]


@dataclass
class ViltVqaCollator:
    """Turns internal-schema rows into ViLT inputs with soft multi-label targets."""

    processor: ViltProcessor
    label2id: dict[str, int]
    max_length: int
    pixel_inputs: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The app's own image path (vqa_core.pixels), so the model trains on the pixels it serves.
        self.pixel_inputs = vilt_pixel_inputs(self.processor.image_processor)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        images = [example["image"].convert("RGB") for example in examples]
        batch = self.processor.tokenizer(
            [example["question"] for example in examples],
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch.update(self.pixel_inputs(images))
        batch["labels"] = torch.tensor(
            [
                soft_target_vector(
                    example["target_answers"], example["target_weights"], self.label2id
                )
                for example in examples
            ],
            dtype=torch.float32,
        )
        return batch
