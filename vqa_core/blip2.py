"""BLIP-2: a generator answering ``Question: {q} Answer:`` in free text."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import Blip2ForConditionalGeneration, Blip2Processor, StoppingCriteriaList

from ._runtime import model_errors, pair_batch, timed
from .errors import InputError, QuestionError
from .fit import LOADABLE_QUANTIZATIONS
from .images import ImageSource, load_image
from .loading import load_pretrained
from .placement import Placement, resolve_placement
from .questions import (
    DEFAULT_PROMPT_TEMPLATE,
    build_followup_prompt,
    clean_history,
    clean_question,
    format_prompt,
)
from .streaming import GenerationStop, TextStream, TokenTextStreamer

__all__ = ["Blip2Result", "Blip2Answerer", "load_blip2", "QUANTIZATION_CHOICES"]

logger = logging.getLogger(__name__)

# What the loader takes; ``auto`` is resolved by vqa_core.fit's plan before loading.
QUANTIZATION_CHOICES = LOADABLE_QUANTIZATIONS
# Answers to visual questions are a few words; a short budget keeps latency predictable.
DEFAULT_MAX_NEW_TOKENS = 10
MAX_NEW_TOKENS_LIMIT = 64
# A caption is a sentence, not a word: BLIP-2's own captioning demos stop near 20-30 tokens.
DEFAULT_CAPTION_TOKENS = 30
MAX_BEAMS = 8


@dataclass(frozen=True)
class Blip2Result:
    answer: str
    question: str
    seconds: float = 0.0
    batch_size: int = 1
    model: str = ""

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "answer": self.answer,
            "seconds": self.seconds,
            "batch_size": self.batch_size,
        }


def load_blip2(
    name_or_path: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    placement: Placement | None = None,
    device_map: str | None = None,
    quantization: str = "none",
) -> tuple[Blip2ForConditionalGeneration, Blip2Processor, Placement]:
    """Load BLIP-2 and its processor from a hub id or a local folder.

    ``device_map="auto"`` lets accelerate spread a large checkpoint over the GPU and CPU
    memory; ``quantization`` is ``int8`` through torchao (CPU and CUDA: each weight is
    quantized as it is read, so the float model never exists whole), ``int4`` (CPU: OPT's
    linear layers packed for PyTorch's int4 kernel as they are read, the rest int8) or
    ``8bit`` / ``4bit`` through bitsandbytes.
    """
    placement = placement or resolve_placement(device, dtype)
    model, processor = load_pretrained(
        "BLIP-2",
        Blip2ForConditionalGeneration,
        Blip2Processor,
        name_or_path,
        placement=placement,
        quantization=quantization,
        device_map=device_map,
        spread_bitsandbytes=True,
    )
    # Batched generation with a decoder-only LM must pad on the left.
    processor.tokenizer.padding_side = "left"
    return model, processor, placement


@dataclass
class Blip2Answerer:
    """Answers batches of (image, question) by generation."""

    model: Blip2ForConditionalGeneration
    processor: Blip2Processor
    placement: Placement
    name: str = "BLIP-2"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    # "" is BLIP-2's captioning start: the image and the start token, no text.
    caption_prompt: str = ""
    # transformers' static KV cache; on a GPU generate() then compiles the decoding step.
    # Off by default: measured on an H200, 0.096 s per 10-token answer against eager fp16's
    # 0.131 s, but the first answer waited 24 s for the compilation (and a new batch size or
    # prompt length may compile again).
    static_cache: bool = False

    def __post_init__(self) -> None:
        format_prompt(self.prompt_template, "")  # reject a template without {question} early
        self.processor.tokenizer.padding_side = "left"

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        device_map: str | None = None,
        quantization: str = "none",
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        placement: Placement | None = None,
        static_cache: bool = False,
    ) -> Blip2Answerer:
        model, processor, placement = load_blip2(
            name_or_path,
            device=device,
            dtype=dtype,
            placement=placement,
            device_map=device_map,
            quantization=quantization,
        )
        return cls(
            model,
            processor,
            placement,
            str(name_or_path),
            prompt_template,
            static_cache=static_cache,
        )

    @property
    def pixel_dtype(self) -> torch.dtype:
        """The type the pixels are cast to: that of the vision model's weights, which read them.

        Not ``model.dtype`` (the first parameter's type): loaded in fp16, BLIP-2 keeps its
        query tokens and Q-Former in fp32 (transformers' ``_keep_in_fp32_modules``), so
        ``model.dtype`` says float32 while the vision model and the language model are fp16.
        """
        vision = getattr(self.model, "vision_model", None)
        if vision is None:
            return self.placement.dtype
        return vision.embeddings.patch_embedding.weight.dtype

    @property
    def input_device(self) -> torch.device:
        # Under a device_map the first module decides where inputs go.
        return self.model.device if hasattr(self.model, "device") else self.placement.device

    def answer(
        self,
        image: ImageSource,
        question: str,
        *,
        history: object = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> Blip2Result:
        """Answer ``question``; ``history`` holds earlier turns about the same picture."""
        return self.answer_batch(
            [image],
            [question],
            histories=None if history is None else [history],
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
        )[0]

    def prompt_token_budget(self, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> int:
        """How many text tokens a prompt may take: the language model's positions, less the
        image's query tokens, the start token and room for the answer."""
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 0) or 2048)
        declared = getattr(self.processor.tokenizer, "model_max_length", None)
        if isinstance(declared, int) and 0 < declared < limit:
            limit = declared
        return limit - int(self.model.config.num_query_tokens) - 1 - max_new_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def build_prompt(
        self, question: str, history: object = None, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    ) -> str:
        """The prompt BLIP-2 gets: earlier turns (newest kept first) then ``Question: q Answer:``."""
        turns = clean_history(history)
        budget = self.prompt_token_budget(max_new_tokens)
        alone = format_prompt(self.prompt_template, question)
        # The character limit does not bound word pieces: text outside the tokenizer's
        # vocabulary takes one per byte, and past the language model's positions generate()
        # fails deep inside the model. Refuse in words before that.
        if self.count_tokens(alone) > budget:
            raise QuestionError(
                "This question is too long for BLIP-2 to read together with the picture; "
                "please ask it in fewer words."
            )
        if not turns:
            return alone
        return build_followup_prompt(
            question,
            turns,
            count_tokens=self.count_tokens,
            token_budget=budget,
            template=self.prompt_template,
        )

    def answer_batch(
        self,
        images: Sequence[ImageSource],
        questions: Sequence[str],
        *,
        histories: Sequence[object] | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> list[Blip2Result]:
        """Answer each (image, question); ``histories``, if given, has one history per pair."""
        pair_batch(images, questions)
        if histories is not None and len(histories) != len(questions):
            raise InputError(
                f"A batch needs one history per question; got {len(histories)} histories and "
                f"{len(questions)} questions."
            )
        pictures = [load_image(image) for image in images]
        texts = [clean_question(question) for question in questions]
        max_new_tokens = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_LIMIT))
        num_beams = max(1, min(int(num_beams), MAX_BEAMS))
        prompts = [
            self.build_prompt(
                text, None if histories is None else histories[index], max_new_tokens=max_new_tokens
            )
            for index, text in enumerate(texts)
        ]
        answers, seconds = self._generate(pictures, prompts, max_new_tokens, num_beams)
        return [
            Blip2Result(
                answer=answer,
                question=text,
                seconds=seconds,
                batch_size=len(texts),
                model=self.name,
            )
            for text, answer in zip(texts, answers)
        ]

    def describe(
        self,
        image: ImageSource,
        *,
        max_new_tokens: int = DEFAULT_CAPTION_TOKENS,
        num_beams: int = 1,
    ) -> Blip2Result:
        """A caption of the picture, with no question: what BLIP-2 sees."""
        return self.describe_batch([image], max_new_tokens=max_new_tokens, num_beams=num_beams)[0]

    def describe_batch(
        self,
        images: Sequence[ImageSource],
        *,
        max_new_tokens: int = DEFAULT_CAPTION_TOKENS,
        num_beams: int = 1,
    ) -> list[Blip2Result]:
        """Captions for ``images``; each result's ``question`` is empty.

        With the default empty ``caption_prompt`` BLIP-2 starts from the image and its start
        token alone, its own captioning set-up (``generate`` without ``input_ids``); a
        checkpoint that captions better after a prefix ("a photo of") takes it as
        ``caption_prompt``. A model trained only on questions may describe nothing: the
        answer is then empty.
        """
        if not images:
            raise InputError("The batch is empty.")
        pictures = [load_image(image) for image in images]
        max_new_tokens = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_LIMIT))
        num_beams = max(1, min(int(num_beams), MAX_BEAMS))
        prompts = [self.caption_prompt] * len(pictures) if self.caption_prompt else None
        captions, seconds = self._generate(pictures, prompts, max_new_tokens, num_beams)
        return [
            Blip2Result(
                answer=caption,
                question="",
                seconds=seconds,
                batch_size=len(pictures),
                model=self.name,
            )
            for caption in captions
        ]

    def _generate(
        self,
        pictures: list,
        prompts: list[str] | None,
        max_new_tokens: int,
        num_beams: int,
        **streaming: object,
    ) -> tuple[list[str], float]:
        # ``streaming`` is a streamer and stopping criteria for one sequence (``_stream``).
        with timed() as watch, model_errors("BLIP-2"), torch.inference_mode():
            if prompts is None:
                inputs = self.processor(images=pictures, return_tensors="pt").to(self.input_device)
                # generate() starts from the query tokens and the start token by itself.
                prompt_length = int(self.model.config.num_query_tokens) + 1
            else:
                inputs = self.processor(
                    images=pictures, text=prompts, padding=True, return_tensors="pt"
                ).to(self.input_device)
                prompt_length = inputs["input_ids"].shape[1]
            inputs["pixel_values"] = inputs["pixel_values"].to(self.pixel_dtype)
            options = {"cache_implementation": "static"} if self.static_cache else {}
            generated = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                **options,
                **streaming,
            )
            # The language model returns prompt + continuation; keep the continuation.
            new_tokens = generated[:, prompt_length:]
            texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [text.strip() for text in texts], watch.seconds

    # Streaming: the page shows the words as they are generated ------------------------------
    def stream_answer(
        self,
        image: ImageSource,
        question: str,
        *,
        history: object = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> TextStream[Blip2Result]:
        """:meth:`answer`, its text yielded as it is generated; ``result`` is then the same
        :class:`Blip2Result` (decoding is greedy, so the streamer changes nothing).

        The picture, question and prompt are checked here, before anything is generated.
        Beam search keeps its best sequence open to the end, so with ``num_beams > 1`` the
        stream yields nothing before its result.
        """
        picture = load_image(image)
        text = clean_question(question)
        max_new_tokens = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_LIMIT))
        num_beams = max(1, min(int(num_beams), MAX_BEAMS))
        prompt = self.build_prompt(text, history, max_new_tokens=max_new_tokens)
        return self._stream([picture], [prompt], text, max_new_tokens, num_beams)

    def stream_description(
        self,
        image: ImageSource,
        *,
        max_new_tokens: int = DEFAULT_CAPTION_TOKENS,
        num_beams: int = 1,
    ) -> TextStream[Blip2Result]:
        """:meth:`describe`, its text yielded as it is generated (as :meth:`stream_answer`)."""
        picture = load_image(image)
        max_new_tokens = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_LIMIT))
        num_beams = max(1, min(int(num_beams), MAX_BEAMS))
        prompts = [self.caption_prompt] if self.caption_prompt else None
        return self._stream([picture], prompts, "", max_new_tokens, num_beams)

    def _stream(
        self,
        pictures: list,
        prompts: list[str] | None,
        question: str,
        max_new_tokens: int,
        num_beams: int,
    ) -> TextStream[Blip2Result]:
        def run(streamer: TokenTextStreamer, stop: GenerationStop) -> Blip2Result:
            # transformers refuses a streamer with beam search; the whole answer then comes
            # at the end. The result is decoded from the ids generate() returns, exactly as
            # answer_batch decodes them, never pieced together from the streamed text.
            streaming = (
                {"streamer": streamer, "stopping_criteria": StoppingCriteriaList([stop])}
                if num_beams == 1
                else {}
            )
            (answer,), seconds = self._generate(
                pictures, prompts, max_new_tokens, num_beams, **streaming
            )
            return Blip2Result(
                answer=answer, question=question, seconds=seconds, batch_size=1, model=self.name
            )

        return TextStream(run, self.processor.tokenizer)
