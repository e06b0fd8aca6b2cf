"""vqa_core.pixels reproduces ViltImageProcessor on torch's kernels, and both app and training use it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ViltImageProcessorPil

from vqa_core.pixels import ViltImageTransform, vilt_pixel_inputs


def _photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth gradients, hard-edged blocks and noise: every kind of detail a resize can blur."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs * 255 // max(width, 1), ys * 255 // max(height, 1), (xs ^ ys) % 256], -1)
    pixels = pixels + rng.normal(0, 20, pixels.shape)
    block = (slice(height // 4, height // 2 + 1), slice(width // 3, 2 * width // 3 + 1))
    pixels[block] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _grey_levels(processor) -> float:
    """One 8-bit grey level in the processor's normalised units."""
    return processor.rescale_factor / min(processor.image_std)


# Sizes the intake hands over: phone drafts, normal photos, small pictures that get stretched,
# 4:1 panoramas (the intake's limit), and one that already has ViLT's size.
SIZES = [
    (500, 375),
    (640, 480),
    (480, 640),
    (1000, 750),
    (64, 64),
    (97, 31),
    (1280, 320),
    (512, 384),
]

PROCESSOR_SETTINGS = {
    "vilt-b32": {"size": {"shortest_edge": 384}, "size_divisor": 32},
    "demo": {"size": {"shortest_edge": 64}, "size_divisor": 8},
    "bilinear, own mean/std": {
        "size": {"shortest_edge": 224},
        "size_divisor": 16,
        "resample": Image.Resampling.BILINEAR,
        "image_mean": [0.48, 0.46, 0.41],
        "image_std": [0.27, 0.26, 0.28],
    },
    "no normalisation": {"size": {"shortest_edge": 96}, "do_normalize": False},
}


@pytest.mark.parametrize("settings", PROCESSOR_SETTINGS.values(), ids=PROCESSOR_SETTINGS.keys())
def test_matches_the_pillow_processor_within_a_grey_level_or_two(settings):
    processor = ViltImageProcessorPil(**settings)
    transform = ViltImageTransform.from_processor(processor)
    pictures = [_photo(width, height, seed) for seed, (width, height) in enumerate(SIZES)]
    for batch in ([picture] for picture in pictures):
        expected = processor(batch, return_tensors="pt")
        got = transform(batch)
        assert got["pixel_values"].shape == expected["pixel_values"].shape
        assert got["pixel_values"].dtype == torch.float32
        difference = (got["pixel_values"] - expected["pixel_values"]).abs()
        unit = _grey_levels(processor) if processor.do_normalize else processor.rescale_factor
        # Both resize 8-bit pixels with fixed-point weights and round some differently: by one
        # grey level (two after both passes) on under 1% of pixels, ~7% in a 3.5x bilinear stretch.
        assert difference.max() <= 2 * unit + 1e-6
        assert difference.mean() <= 0.1 * unit
    # A mixed batch pads every picture to the largest, bottom and right, with the same mask.
    expected = processor(pictures, return_tensors="pt")
    got = transform(pictures)
    assert torch.equal(got["pixel_mask"], expected["pixel_mask"])
    assert torch.allclose(got["pixel_values"], expected["pixel_values"], atol=2 * unit + 1e-6)


def test_without_a_resize_it_equals_the_processor_to_float_rounding():
    processor = ViltImageProcessorPil(size={"shortest_edge": 64}, size_divisor=8)
    transform = ViltImageTransform.from_processor(processor)
    pictures = [_photo(64, 64, 0), _photo(64, 64, 1)]  # easy-VQA's size, the demo model's input
    expected = processor(pictures, return_tensors="pt")["pixel_values"]
    assert torch.allclose(transform(pictures)["pixel_values"], expected, atol=1e-6, rtol=0)


def test_odd_modes_are_taken_as_rgb():
    processor = ViltImageProcessorPil(size={"shortest_edge": 64}, size_divisor=8)
    transform = ViltImageTransform.from_processor(processor)
    grey = _photo(80, 60, 3).convert("L")
    got = transform([grey])["pixel_values"]
    assert torch.allclose(got, transform([grey.convert("RGB")])["pixel_values"])
    assert torch.equal(got[0, 0], got[0, 2])


def test_settings_it_cannot_reproduce_fall_back_to_the_processor(caplog):
    processor = ViltImageProcessorPil(
        size={"shortest_edge": 64}, size_divisor=8, resample=Image.Resampling.LANCZOS
    )
    with pytest.raises(ValueError, match="BILINEAR"):
        ViltImageTransform.from_processor(processor)
    with caplog.at_level(logging.WARNING, logger="vqa_core.pixels"):
        pixel_inputs = vilt_pixel_inputs(processor)
    assert "slower" in caplog.text and "LANCZOS" in caplog.text
    pictures = [_photo(100, 70, 4)]
    expected = processor(pictures, return_tensors="pt")
    got = pixel_inputs(pictures)
    assert torch.equal(got["pixel_values"], expected["pixel_values"])
    assert torch.equal(got["pixel_mask"], expected["pixel_mask"])


def test_answerer_and_training_collator_see_the_same_pixels(tiny_vilt):
    from train.collator import ViltVqaCollator

    assert isinstance(tiny_vilt.pixel_inputs, ViltImageTransform)
    collator = ViltVqaCollator(tiny_vilt.processor, label2id={"red": 0}, max_length=40)
    pictures = [_photo(64, 64, 5), _photo(300, 200, 6)]
    rows = [
        {"image": picture, "question": "what colour?", "target_answers": [], "target_weights": []}
        for picture in pictures
    ]
    batch = collator(rows)
    served = tiny_vilt.pixel_inputs(pictures)
    assert torch.equal(batch["pixel_values"], served["pixel_values"])
    assert torch.equal(batch["pixel_mask"], served["pixel_mask"])
    assert batch["input_ids"].shape[0] == 2 and batch["labels"].shape == (2, 1)
