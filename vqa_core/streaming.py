"""Generated text as it comes: ``generate()`` in a thread, its tokens read through
transformers' streamer interface, the finished result kept for the end."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import torch
from transformers.generation.stopping_criteria import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

__all__ = ["GenerationStop", "TextStream", "TokenTextStreamer"]

T = TypeVar("T")

# A character split over several byte-level tokens decodes to this until its last byte comes.
_INCOMPLETE = "\ufffd"


class TokenTextStreamer(BaseStreamer):
    """Takes ``generate()``'s tokens for one sequence and queues the text so far after each.

    transformers' ``TextIteratorStreamer`` holds each word back until the space after it; a
    short answer is then one or two updates. This hands on every token (the answer reaches
    the page a token sooner), less a character still incomplete, and nothing when a token
    adds no visible text (a special token).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.texts: queue.Queue[str | None] = queue.Queue()
        self._prompt_seen = False
        self._ended = False
        self._shown = ""

    def put(self, value: torch.Tensor) -> None:
        # generate() hands over the prompt first, then one tensor per decoding step.
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if value.numel() != 1:
            raise ValueError("TokenTextStreamer streams one sequence; got a batch.")
        self.tokens.append(int(value.reshape(-1)[0]))
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True).rstrip(_INCOMPLETE)
        if text != self._shown:
            self._shown = text
            self.texts.put(text)

    def end(self) -> None:
        # generate() ends the stream when it finishes; TextStream ends it again after an error.
        if not self._ended:
            self._ended = True
            self.texts.put(None)


class GenerationStop(StoppingCriteria):
    """Stops ``generate()`` at the next token once ``event`` is set (the reader went away)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None, **kwargs: Any
    ) -> torch.BoolTensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


class TextStream(Generic[T]):
    """One generation's text as it is generated, then its finished result.

    ``run(streamer, stop)`` calls ``generate()`` with that streamer and stopping criterion
    and returns the finished result; it runs in a thread when the stream is first iterated.
    Iterating yields the text so far, stripped, each time it grows; once the iteration ends,
    ``result`` holds what ``run`` returned. An error in ``run`` is raised by the iteration,
    after the text that came before it. A reader that stops early stops the generation at
    the next token, so an abandoned stream does not hold the model.
    """

    def __init__(
        self, run: Callable[[TokenTextStreamer, GenerationStop], T], tokenizer: Any
    ) -> None:
        self._run = run
        self._tokenizer = tokenizer
        self.result: T | None = None

    def __iter__(self) -> Iterator[str]:
        streamer = TokenTextStreamer(self._tokenizer)
        stop = GenerationStop()
        outcome: dict[str, Any] = {}

        def generate() -> None:
            try:
                outcome["result"] = self._run(streamer, stop)
            except BaseException as err:  # handed to the reader, who words it
                outcome["error"] = err
            finally:
                streamer.end()

        thread = threading.Thread(target=generate, name="blip2-stream", daemon=True)
        thread.start()
        shown = ""
        try:
            while (text := streamer.texts.get()) is not None:
                text = text.strip()
                if text and text != shown:
                    shown = text
                    yield text
        finally:
            stop.event.set()  # a no-op once generation has ended
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        self.result = outcome["result"]
