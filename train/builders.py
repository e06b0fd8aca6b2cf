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
    "MarianSize",
    "train_marian_tokenizer",
    "build_marian",
    "fit_marian",
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


# --- Marian translation pairs (issue 15) -------------------------------------------------

MARIAN_SOURCE_SPM = "source.spm"
MARIAN_TARGET_SPM = "target.spm"
MARIAN_VOCAB = "vocab.json"
# Marian checkpoints number </s> 0 and <unk> 1 and put <pad> (also the decoder's start
# token) last; the tokenizer and the config must agree on that.
MARIAN_EOS, MARIAN_UNK, MARIAN_PAD = "</s>", "<unk>", "<pad>"


@dataclass(frozen=True)
class MarianSize:
    """A Marian encoder-decoder's shape. The defaults are tiny; ``opus_mt()`` is full size."""

    d_model: int = 32
    encoder_layers: int = 2
    decoder_layers: int = 2
    attention_heads: int = 2
    ffn_dim: int = 64
    max_position_embeddings: int = 64
    spm_vocab_size: int = 200
    vocab_size: int | None = None  # None: as many as the trained SentencePiece models give
    dropout: float = 0.0

    @classmethod
    def opus_mt(cls, vocab_size: int = 62_000) -> MarianSize:
        """The shape of Helsinki-NLP's opus-mt models (transformer-base: 512 wide, 6+6 layers)."""
        return cls(
            d_model=512,
            encoder_layers=6,
            decoder_layers=6,
            attention_heads=8,
            ffn_dim=2048,
            max_position_embeddings=512,
            vocab_size=vocab_size,
            dropout=0.1,
        )


def _train_sentencepiece(texts: Sequence[str], vocab_size: int) -> bytes:
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a handful of sentences cannot fill a fixed vocabulary
        model_type="unigram",
        character_coverage=1.0,  # keep every Arabic letter, however rare in the sample
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def train_marian_tokenizer(
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    *,
    source_lang: str,
    target_lang: str,
    spm_vocab_size: int = 200,
    vocab_size: int | None = None,
):
    """A ``MarianTokenizer``: one SentencePiece model per side, trained on the given texts.

    The shared ``vocab.json`` holds both sides' pieces, as opus-mt's does; ``vocab_size``
    pads it with unused pieces up to a full-size model's embedding table.
    """
    import json
    import tempfile
    from pathlib import Path

    import sentencepiece
    from transformers import MarianTokenizer

    with tempfile.TemporaryDirectory(prefix="marian-tokenizer-") as folder:
        root = Path(folder)
        pieces: list[str] = []
        for file_name, texts in (
            (MARIAN_SOURCE_SPM, source_texts),
            (MARIAN_TARGET_SPM, target_texts),
        ):
            model_bytes = _train_sentencepiece(texts, spm_vocab_size)
            (root / file_name).write_bytes(model_bytes)
            processor = sentencepiece.SentencePieceProcessor(model_proto=model_bytes)
            pieces += [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        vocab = {MARIAN_EOS: 0, MARIAN_UNK: 1}
        for piece in pieces:
            if piece not in vocab and piece != MARIAN_PAD:
                vocab.setdefault(piece, len(vocab))
        while vocab_size is not None and len(vocab) < vocab_size - 1:
            vocab[f"<unused{len(vocab)}>"] = len(vocab)
        vocab[MARIAN_PAD] = len(vocab)
        (root / MARIAN_VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        # The SentencePiece models are read into memory here, so the folder can go.
        return MarianTokenizer(
            source_spm=str(root / MARIAN_SOURCE_SPM),
            target_spm=str(root / MARIAN_TARGET_SPM),
            vocab=str(root / MARIAN_VOCAB),
            source_lang=source_lang,
            target_lang=target_lang,
        )


def build_marian(
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    *,
    source_lang: str,
    target_lang: str,
    size: MarianSize = MarianSize(),
):
    """A randomly initialised ``MarianMTModel`` and its tokenizer, trained on the given texts.

    Saved with ``save_pretrained`` (model and tokenizer in one folder) it loads back through
    ``from_pretrained`` exactly as an opus-mt checkpoint does.
    """
    from transformers import MarianConfig, MarianMTModel

    tokenizer = train_marian_tokenizer(
        source_texts,
        target_texts,
        source_lang=source_lang,
        target_lang=target_lang,
        spm_vocab_size=size.spm_vocab_size,
        vocab_size=size.vocab_size,
    )
    pad_id = tokenizer.pad_token_id
    config = MarianConfig(
        vocab_size=len(tokenizer.encoder),
        d_model=size.d_model,
        encoder_layers=size.encoder_layers,
        decoder_layers=size.decoder_layers,
        encoder_attention_heads=size.attention_heads,
        decoder_attention_heads=size.attention_heads,
        encoder_ffn_dim=size.ffn_dim,
        decoder_ffn_dim=size.ffn_dim,
        max_position_embeddings=size.max_position_embeddings,
        activation_function="swish",  # as opus-mt's configs
        scale_embedding=True,
        dropout=size.dropout,
        pad_token_id=pad_id,
        decoder_start_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    model = MarianMTModel(config)
    model.generation_config.pad_token_id = pad_id
    model.generation_config.decoder_start_token_id = pad_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bad_words_ids = [[pad_id]]
    return model.eval(), tokenizer


def fit_marian(model, tokenizer, pairs: Sequence[tuple[str, str]], *, steps: int = 300, lr=3e-3):
    """Teach a small Marian model ``pairs`` by heart, so tests can name what it must output.

    Random weights translate into noise; a few hundred steps over a dozen pairs make a tiny
    model reproduce them exactly, which is what a test of the routing needs to see.
    """
    sources = [source for source, _ in pairs]
    targets = [target for _, target in pairs]
    batch = tokenizer(sources, text_target=targets, padding=True, return_tensors="pt")
    labels = batch["labels"]
    labels[labels == tokenizer.pad_token_id] = -100  # padding is not something to learn
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()
