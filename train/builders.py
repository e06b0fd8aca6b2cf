"""Build small ViLT and BLIP-2 models from scratch, with tokenizers trained on the fly.

The hub cannot be reached here, so tests and the embedded demo models start from these:
a WordPiece tokenizer for ViLT's BERT text side, a byte-level BPE for BLIP-2's OPT, small
configs, and processors whose image sizes match the data. Everything is saved with
``save_pretrained`` so it loads back through the same path as a real checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    BertTokenizerFast,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    BlipImageProcessor,
    GPT2TokenizerFast,
    OPTConfig,
    ViltConfig,
    ViltForQuestionAnswering,
    ViltImageProcessor,
    ViltProcessor,
)

__all__ = [
    "train_wordpiece_tokenizer",
    "train_bpe_tokenizer",
    "ViltSize",
    "Blip2Size",
    "build_vilt",
    "build_blip2",
]

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
OPT_SPECIALS = ["<pad>", "</s>", "<unk>"]


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> BertTokenizerFast:
    """A lower-casing BERT WordPiece tokenizer learned from ``texts``."""
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS)
    backend.train_from_iterator(texts, trainer)
    # ``vocab_file=`` is silently ignored by transformers 5 (every token becomes [UNK]).
    return BertTokenizerFast(vocab=backend.get_vocab(), do_lower_case=True)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> GPT2TokenizerFast:
    """A byte-level BPE tokenizer in OPT's style (``</s>`` as BOS/EOS) learned from ``texts``."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=OPT_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(texts, trainer)
    return GPT2TokenizerFast(
        tokenizer_object=backend,
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )


@dataclass(frozen=True)
class ViltSize:
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    patch_size: int = 8
    image_size: int = 64
    max_position_embeddings: int = 40
    vocab_size: int = 1000
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0


@dataclass(frozen=True)
class Blip2Size:
    vision_hidden_size: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    patch_size: int = 8
    image_size: int = 64
    qformer_hidden_size: int = 32
    qformer_layers: int = 2
    qformer_heads: int = 2
    num_query_tokens: int = 4
    text_hidden_size: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_ffn_dim: int = 64
    vocab_size: int = 1000
    dropout: float = 0.0


def build_vilt(
    questions: Sequence[str],
    answers: Sequence[str],
    size: ViltSize = ViltSize(),
    tokenizer: BertTokenizerFast | None = None,
) -> tuple[ViltForQuestionAnswering, ViltProcessor]:
    """A randomly initialised ViLT classifier over ``answers`` and its processor.

    The tokenizer is trained on ``questions`` unless one is given (tokenizer training breaks
    ties differently from run to run, so reproducible runs pass a saved one).
    """
    if tokenizer is None:
        tokenizer = train_wordpiece_tokenizer(questions, vocab_size=size.vocab_size)
    labels = list(dict.fromkeys(answers))
    config = ViltConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        intermediate_size=size.intermediate_size,
        image_size=size.image_size,
        patch_size=size.patch_size,
        max_position_embeddings=size.max_position_embeddings,
        hidden_dropout_prob=size.hidden_dropout_prob,
        attention_probs_dropout_prob=size.attention_probs_dropout_prob,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        num_labels=len(labels),
    )
    model = ViltForQuestionAnswering(config)
    _initialise_vilt_image_path(model)
    image_processor = ViltImageProcessor(
        size={"shortest_edge": size.image_size},
        size_divisor=size.patch_size,
        do_pad=True,
    )
    tokenizer.model_max_length = size.max_position_embeddings
    processor = ViltProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model.eval(), processor


@torch.no_grad()
def _initialise_vilt_image_path(model: ViltForQuestionAnswering, std: float = 0.02) -> None:
    """Give ViLT's image side a trainable start when there is no checkpoint to load.

    ``_init_weights`` leaves the image position embeddings and the [class] token at zero (a
    pretrained checkpoint always overwrites them), so a from-scratch model has no notion of
    where a patch is. The patch projection's usual std of 0.02 over a fan-in of 3*p*p makes
    image tokens a small fraction of the text's; a fan-in scaled start let easy-VQA's colour
    questions be learnt in a few hundred steps instead of not at all.
    """
    embeddings = model.vilt.embeddings
    torch.nn.init.trunc_normal_(embeddings.position_embeddings, std=std)
    torch.nn.init.trunc_normal_(embeddings.cls_token, std=std)
    projection = embeddings.patch_embeddings.projection.weight
    torch.nn.init.trunc_normal_(projection, std=projection[0].numel() ** -0.5)


def build_blip2(
    texts: Sequence[str],
    size: Blip2Size = Blip2Size(),
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor]:
    """A randomly initialised BLIP-2 (ViT + Q-Former + OPT) and its processor.

    ``texts`` trains the BPE tokenizer: give it prompts and answers so they tokenize well.
    """
    tokenizer = train_bpe_tokenizer(texts, vocab_size=size.vocab_size)
    image_processor = BlipImageProcessor(
        size={"height": size.image_size, "width": size.image_size},
        do_convert_rgb=True,
    )
    processor = Blip2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_query_tokens=size.num_query_tokens,
    )
    tokenizer = processor.tokenizer  # now carries the added <image> token
    vision = Blip2VisionConfig(
        hidden_size=size.vision_hidden_size,
        intermediate_size=size.vision_hidden_size * 2,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_size,
        patch_size=size.patch_size,
        dropout=size.dropout,
        attention_dropout=size.dropout,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=size.qformer_hidden_size,
        num_hidden_layers=size.qformer_layers,
        num_attention_heads=size.qformer_heads,
        intermediate_size=size.qformer_hidden_size * 2,
        encoder_hidden_size=size.vision_hidden_size,
        vocab_size=len(tokenizer),
        hidden_dropout_prob=size.dropout,
        attention_probs_dropout_prob=size.dropout,
    )
    text = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.text_hidden_size,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        ffn_dim=size.text_ffn_dim,
        word_embed_proj_dim=size.text_hidden_size,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout=size.dropout,
        attention_dropout=size.dropout,
    )
    config = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=size.num_query_tokens,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = Blip2ForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), processor
