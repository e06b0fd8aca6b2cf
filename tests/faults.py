"""Fault injection shared by the hardening tests."""

from __future__ import annotations

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
