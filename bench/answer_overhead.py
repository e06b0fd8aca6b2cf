"""What vqa_core's answerers cost on top of the plain transformers recipe, batch 1, warm.

    python bench/answer_overhead.py [--repeats 15] [--device cpu|cuda]

Both sides run the same model object on the same 640x480 picture and question, interleaved
round by round. The plain recipe is the one every model card shows:
ViLT: processor -> model -> sigmoid -> top-k; BLIP-2: processor -> generate -> decode.
vqa_core adds image intake (EXIF, mode, size caps), question cleaning, truncation
bookkeeping and error translation, and saves ViLT's Pillow resize (its images go through
vqa_core.pixels on torch's kernels), so ViLT can come out below 1. Target: ours/plain <= 1.05.

The models are mid-size random ones built with train.builders and loaded back through
``from_pretrained``: overhead is a per-request constant, so a model smaller than ViLT-B/32
makes it look *larger*, not smaller.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from _common import (
    default_device,
    easy_vqa_texts,
    machine_line,
    median_ms,
    photo_like,
    side_by_side,
)

from train.builders import Blip2Size, ViltSize, build_blip2, build_vilt
from vqa_core import Blip2Answerer, ViltAnswerer

QUESTION = "What shape is in the image?"
MAX_NEW_TOKENS = 10

VILT_MID = ViltSize(
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=6,
    intermediate_size=1536,
    patch_size=32,
    image_size=384,
)
BLIP2_MID = Blip2Size(
    vision_hidden_size=384,
    vision_layers=6,
    vision_heads=6,
    patch_size=14,
    image_size=224,
    qformer_hidden_size=384,
    qformer_layers=4,
    qformer_heads=6,
    num_query_tokens=32,
    text_hidden_size=512,
    text_layers=6,
    text_heads=8,
    text_ffn_dim=2048,
)


def build_models(
    folder: str, device: str, quantization: str = "none"
) -> tuple[ViltAnswerer, Blip2Answerer]:
    torch.manual_seed(0)
    questions, answers = easy_vqa_texts()
    vilt_model, vilt_processor = build_vilt(questions, answers, size=VILT_MID)
    vilt_model.save_pretrained(f"{folder}/vilt")
    vilt_processor.save_pretrained(f"{folder}/vilt")
    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    blip2_model, blip2_processor = build_blip2(texts, size=BLIP2_MID)
    # Random weights may emit EOS at once; a fixed length makes both sides do the same work.
    blip2_model.generation_config.min_new_tokens = MAX_NEW_TOKENS
    blip2_model.save_pretrained(f"{folder}/blip2")
    blip2_processor.save_pretrained(f"{folder}/blip2")
    return load_models(folder, device, quantization)


def load_models(
    folder: str, device: str, quantization: str = "none"
) -> tuple[ViltAnswerer, Blip2Answerer]:
    # int8 (torchao) computes in fp32 on CPU, as vqa_core.fit plans it.
    kwargs = {"device": device, "dtype": "float32", "quantization": quantization}
    return (
        ViltAnswerer.from_pretrained(f"{folder}/vilt", **kwargs),
        Blip2Answerer.from_pretrained(f"{folder}/blip2", **kwargs),
    )


def plain_vilt(model, processor, image, question, device, top_k=5):
    with torch.inference_mode():
        inputs = processor(image, question, return_tensors="pt").to(device)
        logits = model(**inputs).logits
        scores, indices = torch.sigmoid(logits).topk(top_k, dim=-1)
    return [(model.config.id2label[i], s) for i, s in zip(indices[0].tolist(), scores[0].tolist())]


def plain_blip2(model, processor, image, question, device):
    prompt = f"Question: {question} Answer:"
    with torch.inference_mode():
        inputs = processor(images=image, text=prompt, return_tensors="pt").to(device)
        out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS)
    return processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default=default_device())
    args = parser.parse_args()
    device = args.device

    image = photo_like(640, 480)
    print(f"machine: {machine_line()}; device {device}; batch 1, warm, {args.repeats} rounds")
    print(f"{'model':13} {'ours ms':>9} {'plain ms':>9} {'ours/plain':>11}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        vilt, blip2 = build_models(folder, device)
        results.update(compare(vilt, blip2, image, device, args.repeats, ""))
        # The same checkpoints with int8 weights: the plain recipe runs the same int8 model.
        vilt, blip2 = load_models(folder, device, "int8")
        results.update(compare(vilt, blip2, image, device, args.repeats, " int8"))
    verdict = "met" if all(r <= 1.05 for r in results.values()) else "MISSED"
    print(f"target ours/plain <= 1.05: {verdict}")


def compare(vilt, blip2, image, device: str, repeats: int, suffix: str) -> dict[str, float]:
    # Same answers first: an overhead figure for a different computation would mean nothing.
    ours_v = vilt.answer(image, QUESTION, top_k=5).answers
    plain_v = plain_vilt(vilt.model, vilt.processor, image, QUESTION, device)
    assert [a for a, _ in ours_v] == [a for a, _ in plain_v], (ours_v, plain_v)
    ours_b = blip2.answer(image, QUESTION, max_new_tokens=MAX_NEW_TOKENS).answer
    plain_b = plain_blip2(blip2.model, blip2.processor, image, QUESTION, device)[0].strip()
    assert ours_b == plain_b, (ours_b, plain_b)

    results = {}
    for label, ours, plain in (
        (
            "ViLT",
            lambda: vilt.answer(image, QUESTION, top_k=5),
            lambda: plain_vilt(vilt.model, vilt.processor, image, QUESTION, device),
        ),
        (
            "BLIP-2",
            lambda: blip2.answer(image, QUESTION, max_new_tokens=MAX_NEW_TOKENS),
            lambda: plain_blip2(blip2.model, blip2.processor, image, QUESTION, device),
        ),
    ):
        times = side_by_side({"ours": ours, "plain": plain}, repeats=repeats, device=device)
        ours_ms, plain_ms = median_ms(times["ours"]), median_ms(times["plain"])
        results[label + suffix] = ours_ms / plain_ms
        print(f"{label + suffix:13} {ours_ms:9.1f} {plain_ms:9.1f} {ours_ms / plain_ms:11.3f}")
    return results


if __name__ == "__main__":
    main()
