"""The two real checkpoints' architectures, random weights, written into a Hugging Face cache.

The hub cannot be reached here, so tests and benchmarks that need "what a user has after
downloading ``dandelin/vilt-b32-finetuned-vqa`` and ``Salesforce/blip2-opt-2.7b``" build it:
the published configurations at full width (BLIP-2 optionally with fewer layers), weights
saved as sharded fp32 safetensors like the hub's, in the cache layout
(``hub/models--org--name/refs/main`` and ``snapshots/<revision>/``) so that
``HF_HOME=... HF_HUB_OFFLINE=1`` makes ``from_pretrained("Salesforce/blip2-opt-2.7b")`` and
vqa_core's registry find them exactly as they would a real download.

Tokenizers are the small ones train.builders learns from easy-VQA text; the embedding tables
keep the real vocabulary sizes (30,522 and 50,272 rows), with the rows past the small
tokenizer zeroed so that greedy decoding from random weights stays on tokens it can print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    OPTConfig,
    ViltConfig,
)

__all__ = [
    "REAL_VILT_ID",
    "REAL_BLIP2_ID",
    "BLIP2_FULL_DEPTH",
    "vilt_b32_config",
    "vilt_b32_size",
    "blip2_opt27b_config",
    "HubCache",
    "build_real_hub_cache",
]

REAL_VILT_ID = "dandelin/vilt-b32-finetuned-vqa"
REAL_BLIP2_ID = "Salesforce/blip2-opt-2.7b"
BLIP2_FULL_DEPTH = (39, 32)  # ViT-g layers, OPT-2.7B layers
VILT_LABELS = 3129
OPT_VOCAB = 50272
BERT_VOCAB = 30522
# A fixed revision name: the cache layout only needs refs/main to point at a snapshot folder.
REVISION = "0" * 40


def vilt_b32_config(num_labels: int = VILT_LABELS) -> ViltConfig:
    """ViLT-B/32 as published (hidden 768, 12 layers, patch 32, 384 px, 3,129 answers)."""
    labels = {i: f"answer-{i}" for i in range(num_labels)}
    return ViltConfig(
        vocab_size=BERT_VOCAB,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=384,
        patch_size=32,
        max_position_embeddings=40,
        max_image_length=-1,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )


def vilt_b32_size():
    """ViLT-B/32's widths and depth as train.builders takes them (its tokenizer is small)."""
    from train.builders import ViltSize

    b32 = vilt_b32_config()
    return ViltSize(
        hidden_size=b32.hidden_size,
        num_hidden_layers=b32.num_hidden_layers,
        num_attention_heads=b32.num_attention_heads,
        intermediate_size=b32.intermediate_size,
        patch_size=b32.patch_size,
        image_size=b32.image_size,
    )


def blip2_opt27b_config(
    vision_layers: int = BLIP2_FULL_DEPTH[0], opt_layers: int = BLIP2_FULL_DEPTH[1]
) -> Blip2Config:
    """BLIP-2 OPT-2.7B as published: ViT-g 1408 / Q-Former 768 x 12 / OPT 2560, 50,272 tokens."""
    vision = Blip2VisionConfig(
        hidden_size=1408,
        intermediate_size=6144,
        num_hidden_layers=vision_layers,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        qkv_bias=True,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        encoder_hidden_size=1408,
        cross_attention_frequency=2,
        vocab_size=BERT_VOCAB,
    )
    text = OPTConfig(
        vocab_size=OPT_VOCAB,
        hidden_size=2560,
        num_hidden_layers=opt_layers,
        num_attention_heads=32,
        ffn_dim=10240,
        word_embed_proj_dim=2560,
        max_position_embeddings=2048,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=50118,
    )
    return Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=32,
        image_token_index=50265,
    )


@dataclass(frozen=True)
class HubCache:
    """Where the cache is (use it as ``HF_HOME``) and each checkpoint's snapshot folder."""

    hf_home: Path
    vilt: Path
    blip2: Path


def _snapshot(hf_home: Path, repo_id: str) -> Path:
    repo_folder = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo_folder / "refs").mkdir(parents=True, exist_ok=True)
    (repo_folder / "refs" / "main").write_text(REVISION)
    snapshot = repo_folder / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


@torch.no_grad()
def _zero_rows_past(embedding: torch.nn.Module, first_unused: int) -> None:
    embedding.weight[first_unused:].zero_()


def _write_vilt(snapshot: Path, texts: tuple[list[str], list[str]]) -> None:
    from train.builders import build_vilt

    questions, answers = texts
    labels = list(dict.fromkeys(answers))
    labels += [f"answer-{i}" for i in range(VILT_LABELS - len(labels))]
    model, processor = build_vilt(questions, labels, size=vilt_b32_size())
    used = len(processor.tokenizer)
    model.resize_token_embeddings(BERT_VOCAB, mean_resizing=False)
    _zero_rows_past(model.get_input_embeddings(), used)
    model.save_pretrained(snapshot)
    processor.save_pretrained(snapshot)


def _write_blip2(
    snapshot: Path, texts: list[str], vision_layers: int, opt_layers: int, shard: str
) -> None:
    from train.builders import Blip2Size, build_blip2

    # Only the processor is kept from the builder: its tokenizer, 224 px images, 32 queries.
    _, processor = build_blip2(
        texts, size=Blip2Size(image_size=224, patch_size=14, num_query_tokens=32)
    )
    tokenizer = processor.tokenizer
    config = blip2_opt27b_config(vision_layers, opt_layers)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(config).eval()
    _zero_rows_past(model.get_input_embeddings(), len(tokenizer))
    if model.get_output_embeddings() is not None:
        _zero_rows_past(model.get_output_embeddings(), len(tokenizer))
    generation = model.generation_config
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    # Random weights may stop at any token; a fixed answer length keeps timings comparable.
    generation.min_new_tokens = 10
    model.save_pretrained(snapshot, max_shard_size=shard)
    processor.save_pretrained(snapshot)
    del model


def build_real_hub_cache(
    hf_home: str | Path,
    *,
    blip2_layers: tuple[int, int] = BLIP2_FULL_DEPTH,
    shard_size: str = "2GB",
) -> HubCache:
    """Write both checkpoints under ``hf_home`` (skipped where a snapshot is complete).

    ``blip2_layers`` is (ViT-g layers, OPT layers); every width stays the published one.
    """
    import easy_vqa

    hf_home = Path(hf_home)
    questions, answers, _ = easy_vqa.get_train_questions()
    questions, answers = list(questions[:3000]), list(answers[:3000])
    vilt = _snapshot(hf_home, REAL_VILT_ID)
    if not (vilt / "model.safetensors").is_file():
        torch.manual_seed(0)
        _write_vilt(vilt, (questions, answers))
    blip2 = _snapshot(hf_home, REAL_BLIP2_ID)
    if not (blip2 / "processor_config.json").is_file():
        texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
        _write_blip2(blip2, texts, *blip2_layers, shard_size)
    return HubCache(hf_home, vilt, blip2)
