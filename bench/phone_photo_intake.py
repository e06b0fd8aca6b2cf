"""A 12-megapixel phone JPEG from bytes to ViLT-ready tensors: vqa_core's path vs plain.

    python bench/phone_photo_intake.py [--repeats 9] [--questions 600]

Plain: ``Image.open(bytes).convert("RGB")`` then ``ViltImageProcessor`` (here transformers'
Pillow back end, since torchvision cannot be installed) on the full 4000x3000 picture. Ours,
what ``ViltAnswerer`` runs: ``vqa_core.load_image(bytes)`` (JPEG draft decoding at 1/8 scale)
then ``vqa_core.pixels.ViltImageTransform`` (the processor's steps on torch's kernels).
Target: ours <= 20 ms. Then the check that matters as much: on normal-size pictures the intake
changes nothing and the embedded demo ViLT gives the same answers either way (and, as a
check beyond the target, on 9 MP photos, which take the draft decode).
"""

from __future__ import annotations

import argparse
import io

import torch
from _common import (
    demo_models_present,
    jpeg_bytes,
    machine_line,
    median_ms,
    photo_like,
    side_by_side,
)
from PIL import Image
from transformers import ViltImageProcessor, ViltProcessor

from vqa_core import ViltAnswerer, load_image
from vqa_core.pixels import ViltImageTransform
from vqa_core.registry import DEMO_CHECKPOINTS


def plain_tensors(processor, data: bytes) -> torch.Tensor:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return processor(image, return_tensors="pt")["pixel_values"]


def our_tensors(transform: ViltImageTransform, data: bytes) -> torch.Tensor:
    return transform([load_image(data)])["pixel_values"]


def grey_levels(difference: torch.Tensor, processor) -> float:
    """A difference in normalised units, in 8-bit grey levels of the input."""
    return float(difference) * min(processor.image_std) / processor.rescale_factor


def compare_answers(limit: int, side: int) -> None:
    """The demo ViLT on easy-VQA test pictures blown up to side x side photos: ours vs plain."""
    from train.data import load_easy_vqa

    folder = DEMO_CHECKPOINTS["vilt"]
    answerer = ViltAnswerer.from_pretrained(str(folder), device="cpu", dtype="float32")
    processor = ViltProcessor.from_pretrained(folder)
    rows = load_easy_vqa("test").select(range(limit))
    same = ours_right = plain_right = 0
    for start in range(0, limit, 32):
        batch = rows[start : start + 32]
        photos = [
            jpeg_bytes(image.convert("RGB").resize((side, side), Image.BICUBIC))
            for image in batch["image"]
        ]
        ours = [r.best for r in answerer.answer_batch(photos, batch["question"], top_k=1)]
        pictures = [Image.open(io.BytesIO(photo)).convert("RGB") for photo in photos]
        with torch.inference_mode():
            inputs = processor(
                images=pictures, text=batch["question"], padding=True, return_tensors="pt"
            )
            ids = answerer.model(**inputs).logits.argmax(-1).tolist()
        plain = [answerer.labels[i] for i in ids]
        truth = [answers[0] for answers in batch["answers"]]
        same += sum(a == b for a, b in zip(ours, plain))
        ours_right += sum(a == t for a, t in zip(ours, truth))
        plain_right += sum(a == t for a, t in zip(plain, truth))
    print(
        f"demo ViLT, {limit} easy-VQA test questions on {side}x{side} JPEG photos of their "
        "pictures: "
        f"same answer {same}/{limit}; accuracy ours {ours_right / limit:.2%}, "
        f"plain {plain_right / limit:.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--questions", type=int, default=600, help="0 skips the answer check")
    parser.add_argument(
        "--large-questions", type=int, default=100, help="the same on 3024x3024 photos"
    )
    args = parser.parse_args()
    # ViLT-B/32's own preprocessing: short side 384, long side <= 640, multiples of 32.
    processor = ViltImageProcessor(size={"shortest_edge": 384}, size_divisor=32)
    transform = ViltImageTransform.from_processor(processor)

    print(f"machine: {machine_line()}; {args.repeats} interleaved rounds, medians")
    print(
        f"{'image':22} {'ours ms':>8} {'(intake':>8} {'+tensors)':>9} {'plain ms':>9} {'ratio':>6}"
    )
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
        picture = load_image(data)
        times = side_by_side(
            {
                "ours": lambda data=data: our_tensors(transform, data),
                "plain": lambda data=data: plain_tensors(processor, data),
                "intake": lambda data=data: load_image(data),
                "tensors": lambda picture=picture: transform([picture]),
            },
            repeats=args.repeats,
            warmup=1,
        )
        ours_ms, plain_ms = median_ms(times["ours"]), median_ms(times["plain"])
        print(
            f"{label:22} {ours_ms:8.1f} {median_ms(times['intake']):8.1f} "
            f"{median_ms(times['tensors']):9.1f} {plain_ms:9.1f} {ours_ms / plain_ms:6.3f}"
        )
        ours_px, plain_px = our_tensors(transform, data), plain_tensors(processor, data)
        difference = (ours_px - plain_px).abs()
        if data is not normal:
            verdict = "met" if ours_ms <= 20 else "MISSED"
            print(
                f"  ({len(data) / 1e6:.1f} MB file, decoded at {picture.width}x{picture.height}) "
                f"target ours <= 20 ms: {verdict}"
            )
        else:
            untouched = picture.tobytes() == Image.open(io.BytesIO(data)).convert("RGB").tobytes()
            print(f"  intake leaves the picture untouched: {untouched}")
        print(
            f"  tensors {tuple(ours_px.shape)} vs {tuple(plain_px.shape)}: mean |diff| "
            f"{grey_levels(difference.mean(), processor):.2f}, max "
            f"{grey_levels(difference.max(), processor):.1f} grey levels"
        )

    if demo_models_present():
        if args.questions:
            compare_answers(args.questions, side=480)
        # Large photos take the draft decode: the answers should not move there either.
        if args.large_questions:
            compare_answers(args.large_questions, side=3024)


if __name__ == "__main__":
    main()
