"""The loading steps both answerers share: precision, quantization as the weights are read,
placement, and errors a person can read."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ._runtime import load_errors
from .fit import quantization_config
from .int8_cpu import use_pytorch_int8_kernels
from .memory import frees_returned_while_loading
from .placement import Placement

__all__ = ["load_pretrained"]

logger = logging.getLogger(__name__)


def load_pretrained(
    title: str,
    model_class: type,
    processor_class: type,
    name_or_path: str,
    *,
    placement: Placement,
    quantization: str = "none",
    device_map: str | dict | None = None,
    spread_bitsandbytes: bool = False,
    check: Callable[[Any], None] | None = None,
) -> tuple[Any, Any]:
    """``model_class`` and ``processor_class`` from a hub id or a folder, ready to answer.

    Weights load in ``placement``'s dtype; ``quantization`` (``int8`` through torchao,
    ``8bit`` / ``4bit`` through bitsandbytes) quantizes each weight as it is read, so the
    float model never exists whole. ``spread_bitsandbytes`` lets accelerate spread a
    bitsandbytes model over the GPU and CPU; ``device_map`` overrides where it goes.
    ``check(model)`` raises ``ValueError`` for a checkpoint of the wrong kind.
    """
    config = quantization_config(quantization, placement.dtype)
    kwargs: dict = {"dtype": placement.dtype}
    if config is not None:
        kwargs["quantization_config"] = config
        # Quantized where it will run: no second copy on another device.
        single = {"": str(placement.device)}
        spread = spread_bitsandbytes and quantization != "int8"
        kwargs["device_map"] = device_map or ("auto" if spread else single)
    elif device_map:
        kwargs["device_map"] = device_map
    loading = frees_returned_while_loading() if config is not None else contextlib.nullcontext()
    with load_errors(title, name_or_path), loading:
        processor = processor_class.from_pretrained(name_or_path)
        model = model_class.from_pretrained(name_or_path, **kwargs)
        if check is not None:
            check(model)
    if "device_map" not in kwargs:
        model.to(placement.device)
    if config is not None:
        use_pytorch_int8_kernels(model)  # it takes only torchao int8 layers on the CPU
    model.eval()
    where = placement.describe() + (f" ({quantization})" if config is not None else "")
    logger.info("%s %s loaded on %s", title, name_or_path, where)
    return model, processor
