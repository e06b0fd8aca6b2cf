"""Test doubles shared by the app and hardening tests: a fault injector, a recorder."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch


class FailOnce:
    """Wraps a module's forward: calls pass through until ``on_call``, which raises once."""

    def __init__(self, module: torch.nn.Module, error: Exception, on_call: int = 1):
        self.module, self.error, self.on_call = module, error, on_call
        self.original = module.forward
        self.calls = 0
        self.raised = False

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.on_call:
            self.raised = True
            raise self.error
        return self.original(*args, **kwargs)

    def __enter__(self):
        self.module.forward = self
        return self

    def __exit__(self, *exc):
        self.module.forward = self.original


@dataclass
class RecordingAnswerer:
    """Wraps a real answerer and records every batch it is handed (sizes and images)."""

    inner: object
    batch_sizes: list[int] = field(default_factory=list)
    images: list = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_batch(self, images, questions, **kwargs):
        with self.lock:
            self.batch_sizes.append(len(images))
            self.images.extend(images)
        if self.delay:
            threading.Event().wait(self.delay)
        return self.inner.answer_batch(images, questions, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def parameter_bytes(model) -> int:
    """What a loaded model's parameters hold, counted from the tensors themselves: a torchao
    quantized weight by each of its inner tensors (codes, scales, zero points)."""
    from torchao.utils import TorchAOBaseTensor

    held = 0
    for parameter in model.parameters():
        if isinstance(parameter, TorchAOBaseTensor):
            names, _ = parameter.__tensor_flatten__()
            held += sum(
                getattr(parameter, n).numel() * getattr(parameter, n).element_size() for n in names
            )
        else:
            held += parameter.numel() * parameter.element_size()
    return held
