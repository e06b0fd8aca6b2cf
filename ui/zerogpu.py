"""Hugging Face ZeroGPU: run the model calls inside ``spaces.GPU`` when, and only when, on one.

A ZeroGPU Space lends a GPU per call to functions decorated with ``spaces.GPU``; everything
else runs on CPU. The ``spaces`` package (preinstalled there, optional elsewhere) says it is on
ZeroGPU through ``SPACES_ZERO_GPU``; on import it patches torch so that models "moved to CUDA"
at start-up wait in CPU memory until a decorated call borrows the GPU. Hence two steps:
:meth:`ZeroGPU.detect` before the models load, :meth:`ZeroGPU.wrap` after, before launch
(the Space refuses to start when launch finds no decorated function).

Off ZeroGPU nothing is imported and nothing is wrapped: ``spaces.GPU`` would return the plain
function there anyway, and importing ``spaces`` costs 0.3 s (measured on this project's
2-core machine, spaces 0.51.3).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vqa_core import Services

__all__ = ["ZERO_GPU_ENV", "ZeroGPU"]

logger = logging.getLogger("vqa_app")

ZERO_GPU_ENV = "SPACES_ZERO_GPU"
# The values spaces' own Config treats as true (spaces/config.py).
_TRUE = ("1", "t", "true")
# Each object that runs a model, and the method of it that does: the only calls that need
# the GPU (image decoding and the page's work stay outside the borrowed time).
MODEL_CALLS = {"answerer": "answer_batch", "translation": "translate"}


@dataclass(frozen=True)
class ZeroGPU:
    """``gpu`` is ``spaces.GPU`` on a ZeroGPU Space, else ``None`` (and nothing is wrapped)."""

    gpu: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None

    @property
    def active(self) -> bool:
        return self.gpu is not None

    @classmethod
    def detect(cls) -> ZeroGPU:
        """Import ``spaces`` when the Space says it is on ZeroGPU; call before loading models."""
        if os.environ.get(ZERO_GPU_ENV, "").strip().lower() not in _TRUE:
            return cls()
        try:
            spaces = importlib.import_module("spaces")
        except ImportError:
            logger.warning(
                "%s is set but the spaces package is not installed, so the models run without "
                "the ZeroGPU GPU; install it with `pip install spaces`.",
                ZERO_GPU_ENV,
            )
            return cls()
        # spaces' own reading of its settings decides, as it does for its decorator.
        if not importlib.import_module("spaces.config").Config.zero_gpu:
            return cls()
        logger.info("ZeroGPU detected: each model call borrows the GPU through spaces.GPU")
        return cls(gpu=spaces.GPU)

    def wrap(self, services: Services, translator: Any = None) -> list[str]:
        """Decorate, on these loaded objects, the methods that run a model; return their names.

        ``translator`` is a ``vqa_core.translation.Translator`` or ``None``. Off ZeroGPU this
        does nothing and returns an empty list.
        """
        if self.gpu is None:
            return []
        targets: list[tuple[str, object, str]] = [
            (title, answerer, MODEL_CALLS["answerer"])
            for title, answerer in (("ViLT", services.vilt), ("BLIP-2", services.blip2))
            if answerer is not None
        ]
        if services.blip2 is not None and hasattr(services.blip2, "describe_batch"):
            targets.append(("BLIP-2", services.blip2, "describe_batch"))
        if translator is not None:
            targets += [
                (f"translation {direction.name}", direction, MODEL_CALLS["translation"])
                for direction in (translator.to_english_model, translator.from_english_model)
            ]
        wrapped = []
        for title, runner, method in targets:
            # On the instance: the class and every other user of it stay as they are.
            setattr(runner, method, self.gpu(getattr(runner, method)))
            wrapped.append(f"{title}.{method}")
        logger.info("ZeroGPU: %s run inside spaces.GPU", ", ".join(wrapped))
        return wrapped
