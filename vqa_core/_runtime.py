"""Pieces both answerers share: error translation, timing, batching checks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from safetensors import SafetensorError

from .errors import InferenceError, InputError, ModelLoadError

__all__ = ["Stopwatch", "model_errors", "pair_batch", "load_errors"]


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextlib.contextmanager
def timed() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


@contextlib.contextmanager
def model_errors(model_label: str) -> Iterator[None]:
    """Turn what a forward pass can raise into :class:`InferenceError` with a plain message."""
    try:
        yield
    except InputError:
        raise
    except torch.OutOfMemoryError as err:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise InferenceError(
            f"{model_label} ran out of memory on this request; try a smaller image or fewer "
            "beams, or try again when the server is less busy."
        ) from err
    except RuntimeError as err:
        raise InferenceError(f"{model_label} failed on this request: {err}") from err


@contextlib.contextmanager
def load_errors(model_label: str, name_or_path: str) -> Iterator[None]:
    """Turn what ``from_pretrained`` can raise into :class:`ModelLoadError`."""
    try:
        yield
    except ModelLoadError:
        raise
    # SafetensorError (a corrupt or truncated weights file) derives from Exception only.
    except (OSError, ValueError, KeyError, RuntimeError, ImportError, SafetensorError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"Could not load {model_label} from {name_or_path!r}: {detail}"
        ) from err


def pair_batch(images: Sequence, questions: Sequence) -> None:
    if len(images) != len(questions):
        raise InputError(
            f"A batch needs one question per image; got {len(images)} images and "
            f"{len(questions)} questions."
        )
    if not images:
        raise InputError("The batch is empty.")
