"""The loading steps both answerers share: precision, quantization as the weights are read,
placement, and errors a person can read."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import torch

from ._runtime import load_errors
from .fit import quantization_config
from .int4_cpu import int4_layers_of, use_pytorch_int4_kernels
from .int8_cpu import float_parts_in_fp32, use_pytorch_int8_kernels
from .memory import frees_returned_while_loading
from .placement import Placement

__all__ = ["load_pretrained", "weights_dtype", "describe_loaded"]

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
    ``int4`` for the language model with int8 for the rest, ``8bit`` / ``4bit`` through
    bitsandbytes) quantizes each weight as it is read, so the float model never exists whole.
    ``spread_bitsandbytes`` lets accelerate spread a bitsandbytes model over the GPU and CPU;
    ``device_map`` overrides where it goes.
    ``check(model)`` raises ``ValueError`` for a checkpoint of the wrong kind.
    """
    int4_layers: list[str] = []
    int4_fallback: list[str] = []
    int8_layers: list[str] = []
    if quantization == "int4":
        with load_errors(title, name_or_path):
            int4_layers, int4_fallback, int8_layers = int4_layers_of(model_class, name_or_path)
        if not int4_layers and not int4_fallback:
            logger.info(
                "%s does not generate text token by token, so int4 packs none of its layers: "
                "they load in int8, which measured fastest for the many rows it runs",
                title,
            )
    config = quantization_config(
        quantization, placement.dtype, placement.device, (int4_layers, int8_layers)
    )
    kwargs: dict = {"dtype": placement.dtype}
    if config is not None:
        kwargs["quantization_config"] = config
        # Quantized where it will run: no second copy on another device.
        single = {"": str(placement.device)}
        spread = spread_bitsandbytes and quantization not in ("int8", "int4")
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
    if quantization == "int4":
        report = use_pytorch_int4_kernels(model, int4_fallback)
        logger.info("%s: %s", title, report.describe())
        model.int4_report = report  # what the loader packed, for the log and the tests
    if config is not None:
        use_pytorch_int8_kernels(model)  # it takes only torchao int8 layers on the CPU
    vision = getattr(model, "vision_model", None)
    if quantization == "int4" and placement.dtype != torch.float32 and vision is not None:
        # Its linear layers are int8, which take fp32 rows whatever the activations; the rest
        # of its work over 257 patches (layer norms, attention, GELU) measured faster in fp32
        # than in bf16 on the full ViT-g, for about 4 MB more (docs/performance.md, int4).
        float_parts_in_fp32(vision)
    model.eval()
    loaded = weights_dtype(model)
    if loaded != placement.dtype:
        logger.warning(
            "%s holds its weights in %s although %s was planned",
            title,
            str(loaded).removeprefix("torch."),
            placement.dtype_name,
        )
    logger.info(
        "%s %s loaded on %s", title, name_or_path, describe_loaded(model, placement, quantization)
    )
    return model, processor


def weights_dtype(model: torch.nn.Module) -> torch.dtype:
    """The float type most of ``model``'s weights are held in: the precision it was loaded in.

    Not ``model.dtype``, which is its first parameter's type: BLIP-2 loaded in fp16 keeps its
    query tokens and Q-Former in fp32 (transformers' ``_keep_in_fp32_modules``), so
    ``model.dtype`` says float32 while the vision and language models, nearly all of its
    weights, are fp16. torchao's int8 weights count in the float type they compute in.
    """
    counts: dict[torch.dtype, int] = {}
    for parameter in model.parameters():
        if parameter.is_floating_point():
            counts[parameter.dtype] = counts.get(parameter.dtype, 0) + parameter.numel()
    return max(counts, key=counts.__getitem__) if counts else torch.float32


def _kept_in_fp32(model: torch.nn.Module, loaded: torch.dtype) -> list[str]:
    """The model's ``_keep_in_fp32_modules`` that really are fp32 while the rest is not."""
    if loaded == torch.float32:
        return []
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    keep |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    kept = set()
    for name, parameter in model.named_parameters():
        for key in keep:
            if f".{key}." in f".{name}." and parameter.dtype == torch.float32:
                kept.add(key)
    return sorted(kept)


def describe_loaded(
    model: torch.nn.Module, placement: Placement, quantization: str = "none"
) -> str:
    """``cuda / float16 (qformer, query_tokens kept in float32)``: what was loaded, from the
    weights themselves; ``quantization`` is added when the weights were quantized."""
    loaded = weights_dtype(model)
    where = f"{placement.device.type} / {str(loaded).removeprefix('torch.')}"
    if quantization != "none":
        where += f" ({quantization})"
    kept = _kept_in_fp32(model, loaded)
    if kept:
        where += f" ({', '.join(kept)} kept in float32)"
    return where
