"""A 12-megapixel phone JPEG from bytes to ViLT-ready tensors: vqa_core's intake vs plain.

    python bench/phone_photo_intake.py [--repeats 7]

Plain: ``Image.open(bytes).convert("RGB")`` then ``ViltImageProcessor`` on the full 4000x3000
picture. Ours: ``vqa_core.load_image(bytes)`` (JPEG draft-mode decoding at reduced scale,
then a ``reducing_gap`` thumbnail to at most 1280 px) then the same processor. Target: ours
<= 20 ms. Then the check that matters as much: on a normal 640x480 picture the intake
changes nothing, so the tensors and a model's answers are identical either way.
"""

from __future__ import annotations

import argparse
import io

import torch
from _common import easy_vqa_texts, jpeg_bytes, machine_line, median_ms, photo_like, side_by_side
from PIL import Image
from transformers import ViltImageProcessor

from vqa_core import load_image
from vqa_core.scratch import ViltSize, build_vilt


def plain_tensors(processor, data: bytes) -> torch.Tensor:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return processor(image, return_tensors="pt")["pixel_values"]


def our_tensors(processor, data: bytes) -> torch.Tensor:
    return processor(load_image(data), return_tensors="pt")["pixel_values"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    # ViLT-B/32's own preprocessing: short side 384, long side <= 640, multiples of 32.
    processor = ViltImageProcessor(size={"shortest_edge": 384}, size_divisor=32)

    print(f"machine: {machine_line()}; {args.repeats} interleaved rounds, medians")
    print(f"{'image':22} {'ours ms':>8} {'plain ms':>9} {'ours/plain':>11}")
    # File size, not pixel count, sets the JPEG decoder's floor (its Huffman stage reads every
    # byte at any draft scale): a noisy low-light shot and an ordinary one bracket phones.
    noisy = jpeg_bytes(photo_like(4000, 3000, seed=1, noise=12.0), quality=90)
    typical = jpeg_bytes(photo_like(4000, 3000, seed=1, noise=3.0), quality=90)
    normal = jpeg_bytes(photo_like(640, 480, seed=2), quality=90)
    for label, data in (
        ("4000x3000 q90 noisy", noisy),
        ("4000x3000 q90 typical", typical),
        ("640x480 q90", normal),
    ):
        times = side_by_side(
            {
                "ours": lambda data=data: our_tensors(processor, data),
                "plain": lambda data=data: plain_tensors(processor, data),
            },
            repeats=args.repeats,
            warmup=1,
        )
        ours_ms, plain_ms = median_ms(times["ours"]), median_ms(times["plain"])
        print(f"{label:22} {ours_ms:8.1f} {plain_ms:9.1f} {ours_ms / plain_ms:11.3f}")
        if data is not normal:
            verdict = "met" if ours_ms <= 20 else "MISSED"
            print(f"  ({len(data) / 1e6:.1f} MB file) target ours <= 20 ms: {verdict}")
            ours_px, plain_px = our_tensors(processor, data), plain_tensors(processor, data)
            print(
                f"  tensors {tuple(ours_px.shape)} vs {tuple(plain_px.shape)}, mean |diff| "
                f"{(ours_px - plain_px).abs().mean():.4f} (normalised units)"
            )

    # Normal-size pictures: identical tensors, identical answers.
    same = torch.equal(our_tensors(processor, normal), plain_tensors(processor, normal))
    torch.manual_seed(0)
    questions, answers = easy_vqa_texts()
    model, vilt_processor = build_vilt(
        questions, answers, size=ViltSize(hidden_size=64, patch_size=32, image_size=384)
    )
    question = "What color is the shape?"
    with torch.inference_mode():
        ours = model(**vilt_processor(load_image(normal), question, return_tensors="pt")).logits
        plain_image = Image.open(io.BytesIO(normal)).convert("RGB")
        plain = model(**vilt_processor(plain_image, question, return_tensors="pt")).logits
    same_answers = ours.topk(5).indices.tolist() == plain.topk(5).indices.tolist()
    print(
        f"640x480: tensors identical: {same}; ViLT top-5 identical: {same_answers}; "
        f"max |logit diff| {(ours - plain).abs().max():.2e}"
    )


if __name__ == "__main__":
    main()
