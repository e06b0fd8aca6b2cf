"""Batches built on the fly: images decoded, processed and padded per batch, never stored."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import ViltProcessor

from train.data import soft_target_vector

__all__ = ["ViltVqaCollator"]


@dataclass
class ViltVqaCollator:
    """Turns internal-schema rows into ViLT inputs with soft multi-label targets."""

    processor: ViltProcessor
    label2id: dict[str, int]
    max_length: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        images = [example["image"].convert("RGB") for example in examples]
        batch = self.processor(
            images=images,
            text=[example["question"] for example in examples],
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
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
