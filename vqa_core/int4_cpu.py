"""Int4 weights on CPU for the layers that generate text, on PyTorch's own int4 kernel.

Generating an answer token by token multiplies one row of activations by every weight of
the language model, so each token reads all of its weights once: on this project's 2-core
CPU that reading, not the arithmetic, is the cost (BLIP-2 OPT-2.7B in int8: 0.18 s per
token for 2.7 GB). Four bits per weight halve it again. ``torch._weight_int4pack_mm_for_cpu``
reads weights packed by ``torch._convert_weight_to_int4pack_for_cpu`` with one bf16 scale
and zero per group of input columns, and dequantizes on the fly. Measured on one
2560 -> 10240 layer, one thread (docs/performance.md): 1.34 ms for one row against int8's
2.53 ms and bf16's 4.53 ms; 2.40 ms at 4 rows, but 26.4 ms at 44 rows where int8's product
takes 8.6 ms. It does not amortize the weights over rows.

Which layers get int4 follows from that measurement:

* the language model's linear layers (the model's decoder, when the model generates): one
  row per token, int4 is the fastest there. A prompt's rows also run on the int4 kernel,
  slower than int8 would, because a second copy of the weights in another form would give
  back the memory int4 saves;
* every other linear layer (an image encoder's 257 patches, ViLT's ~230 rows of text and
  image patches on every answer) stays in int8, which measured fastest for many rows (the
  1408 -> 6144 image-encoder layer over 257 patches: int8 13.0 ms, bf16 21.9 ms, int4
  51.0 ms).

A layer whose widths the kernel cannot take (output rows not a multiple of 16, input columns
with no group size of 32, 64 or 128 dividing them) stays in int8 and is logged by name.

The weights are quantized as the checkpoint is read: transformers hands each linear layer to
torchao's ``quantize_`` as its weight arrives (through ``TorchAoConfig``), and the handler
registered here for :class:`Int4CpuConfig` packs it, so the float model never exists whole.
After loading, :func:`use_pytorch_int4_kernels` puts an :class:`Int4CpuLinear` in place of
each packed layer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

__all__ = [
    "CHUNK_ELEMENTS",
    "GROUP_SIZES",
    "Int4CpuLinear",
    "Int4Report",
    "int4_group_size",
    "int4_layer_names",
    "quantize_groups",
    "quantize_linear_int4",
    "use_pytorch_int4_kernels",
]

logger = logging.getLogger(__name__)

# Preferred first: 128 is what the kernel was measured with (and the common int4 recipe);
# smaller groups keep narrow layers (the tests' tiny models) on the kernel too.
GROUP_SIZES = (128, 64, 32)
# torch._convert_weight_to_int4pack_for_cpu refuses other output widths
# ("expect N to be dividable by 16").
_ROWS_MULTIPLE = 16
# The packed weights hold a float placeholder of this dtype until the module is swapped.
_PENDING = "_vqa_int4_pending"
# Weights quantized at a time while packing: two fp32 temporaries of this many values (32 MiB)
# are what packing holds beyond the layer's weight and its int32 codes.
CHUNK_ELEMENTS = 1 << 22


def int4_kernels_available() -> bool:
    return hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(
        torch, "_convert_weight_to_int4pack_for_cpu"
    )


def int4_group_size(in_features: int, out_features: int) -> int | None:
    """The group size the int4 kernel takes for these widths, or ``None`` when it takes none."""
    if out_features % _ROWS_MULTIPLE:
        return None
    for group in GROUP_SIZES:
        if in_features % group == 0:
            return group
    return None


def quantize_groups(
    weight: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(codes, scales, zeros)``: asymmetric 4-bit codes 0-15 per group of input columns.

    A weight is ``(code - 8) * scale + zero`` (the kernel's convention), with ``scale`` and
    ``zero`` of shape ``[out, in / group_size]`` and rounded to bf16 as the kernel keeps them,
    so the codes are chosen against the scales it will really use.

    Rows are quantized a block at a time (at most :data:`CHUNK_ELEMENTS` weights): beyond the
    weight and the int32 codes the kernel's packing takes, a load holds only one block's two
    fp32 temporaries, whatever the layer's size (vqa_core.fit counts exactly that).
    """
    rows, columns = weight.shape
    codes = torch.empty((rows, columns), dtype=torch.int32)
    scales = torch.empty((rows, columns // group_size))
    zeros = torch.empty((rows, columns // group_size))
    step = max(1, CHUNK_ELEMENTS // columns)
    for start in range(0, rows, step):
        block = slice(start, start + step)
        # .float() copies a bf16 block (an fp32 one is used as it is, never written to).
        groups = weight[block].detach().float().reshape(-1, columns // group_size, group_size)
        low = groups.amin(dim=-1)
        high = groups.amax(dim=-1)
        scale = ((high - low) / 15).clamp_(min=1e-8).to(torch.bfloat16).float()
        zero = (low + 8 * scale).to(torch.bfloat16).float()
        # In place after the first copy; copy_ converts to int32 without a third temporary.
        found = groups.sub(zero.unsqueeze(-1)).div_(scale.unsqueeze(-1)).add_(8)
        codes[block].copy_(found.round_().clamp_(0, 15).reshape(-1, columns))
        scales[block] = scale
        zeros[block] = zero
    return codes, scales, zeros


class Int4CpuLinear(torch.nn.Module):
    """A linear layer over 4-bit weights in the CPU kernel's packed layout.

    ``packed`` (``[out, in / 2]`` bytes) and ``scales_and_zeros`` (``[in / group, out, 2]``,
    bf16) are buffers, so ``state_dict`` and memory counts see what is held; there is no
    float weight. Activations are cast to bf16 for the kernel and the result back to the
    input's dtype.
    """

    def __init__(
        self,
        packed: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        group_size: int,
        in_features: int,
        out_features: int,
        bias: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.group_size = group_size
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.bias = bias if bias is None else torch.nn.Parameter(bias, requires_grad=False)

    @classmethod
    def from_weight(
        cls, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int
    ) -> Int4CpuLinear:
        out_features, in_features = weight.shape
        codes, scales, zeros = quantize_groups(weight, group_size)
        packed = torch._convert_weight_to_int4pack_for_cpu(codes, 1)
        scales_and_zeros = torch.stack((scales.t(), zeros.t()), dim=-1)
        scales_and_zeros = scales_and_zeros.to(torch.bfloat16).contiguous()
        return cls(packed, scales_and_zeros, group_size, in_features, out_features, bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"int4 (group {self.group_size})"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        out = torch._weight_int4pack_mm_for_cpu(
            rows, self.packed, self.group_size, self.scales_and_zeros
        )
        out = out.to(x.dtype)
        if self.bias is not None:
            out = out + self.bias.to(x.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)


def _int8_layer(linear: torch.nn.Linear) -> torch.nn.Module:
    """``linear`` in int8 as an int8 load stores it, running on PyTorch's int8 kernels."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    from .int8_cpu import use_pytorch_int8_kernels

    holder = torch.nn.Sequential(linear)
    quantize_(holder, Int8DynamicActivationInt8WeightConfig())
    use_pytorch_int8_kernels(holder)
    return holder[0]


def quantize_linear_int4(linear: torch.nn.Linear, name: str = "a layer") -> torch.nn.Module:
    """``linear`` as an :class:`Int4CpuLinear`, or in int8 where the kernel cannot take it.

    The fallback is logged as a warning naming the layer and its widths.
    """
    group = int4_group_size(linear.in_features, linear.out_features)
    if group is None or not int4_kernels_available():
        logger.warning(
            "%s (%d -> %d) stays in int8: %s",
            name,
            linear.in_features,
            linear.out_features,
            _why_not(linear.in_features, linear.out_features),
        )
        return _int8_layer(linear)
    bias = None if linear.bias is None else linear.bias.detach()
    return Int4CpuLinear.from_weight(linear.weight, bias, group)


def _why_not(in_features: int, out_features: int) -> str:
    if not int4_kernels_available():
        return "this torch has no CPU int4 kernel"
    if out_features % _ROWS_MULTIPLE:
        return f"the int4 kernel needs output widths that are multiples of {_ROWS_MULTIPLE}"
    sizes = ", ".join(str(g) for g in GROUP_SIZES)
    return f"the int4 kernel needs an input width divisible by one of {sizes}"


def _generating_decoder(model: torch.nn.Module) -> torch.nn.Module | None:
    """The part of ``model`` that runs once per generated token, or ``None``."""
    can_generate = getattr(model, "can_generate", None)
    if can_generate is None or not can_generate():
        return None
    get_decoder = getattr(model, "get_decoder", None)
    try:
        decoder = get_decoder() if get_decoder is not None else None
    except (AttributeError, NotImplementedError, ValueError):
        return None
    return decoder if isinstance(decoder, torch.nn.Module) else None


def int4_layer_names(
    model: torch.nn.Module, skip: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """``(int4, fallback)``: the names of ``model``'s language-model linear layers the int4
    kernel takes, and of those it cannot take (they stay in int8).

    Works on a model built on the ``meta`` device (only shapes are read). ``skip`` names
    modules left in float (the output embeddings, modules kept in fp32). A model that does
    not generate text (ViLT, a classifier) has none: its rows are many on every call.
    """
    decoder = _generating_decoder(model)
    if decoder is None:
        return [], []
    skipped = set(skip)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inside = {id(module) for module in decoder.modules()}
    int4: list[str] = []
    fallback: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or id(module) not in inside:
            continue
        if module is output or name in skipped:
            continue
        if int4_group_size(module.in_features, module.out_features) is None:
            fallback.append(name)
        else:
            int4.append(name)
    return int4, fallback


# ---------------------------------------------------------------------------------------
# Quantizing as the checkpoint loads (a torchao config and its handler)


def _register_config() -> type:
    """Define :class:`Int4CpuConfig` and register its handler with torchao (once, lazily:
    importing torchao costs seconds and the app imports this module without quantizing)."""
    global Int4CpuConfig
    if Int4CpuConfig is not None:
        return Int4CpuConfig
    from torchao.core.config import AOBaseConfig
    from torchao.quantization.transform_module import register_quantize_module_handler

    @dataclass
    class _Int4CpuConfig(AOBaseConfig):
        """Pack a linear layer's weight for PyTorch's CPU int4 kernel (vqa_core.int4_cpu)."""

        note: str = field(default="vqa_core.int4_cpu")

    _Int4CpuConfig.__name__ = _Int4CpuConfig.__qualname__ = "Int4CpuConfig"

    @register_quantize_module_handler(_Int4CpuConfig)
    def _pack(module: torch.nn.Module, config: AOBaseConfig) -> torch.nn.Module:
        # transformers calls quantize_ on the layer itself, so it is changed in place: the
        # packed int4 layer waits on it and its float weight is dropped for a placeholder
        # with the right shape and no storage, until use_pytorch_int4_kernels swaps it in.
        # The bias may not have been read yet; the swap takes it then.
        weight = module.weight
        group = int4_group_size(weight.shape[1], weight.shape[0])
        if group is None:  # int4_layer_names never sends such a layer here
            raise ValueError(f"int4 cannot take a {weight.shape[1]} -> {weight.shape[0]} layer")
        setattr(module, _PENDING, Int4CpuLinear.from_weight(weight, None, group))
        placeholder = torch.zeros((), dtype=weight.dtype).expand(weight.shape)
        module.weight = torch.nn.Parameter(placeholder, requires_grad=False)
        return module

    Int4CpuConfig = _Int4CpuConfig
    return Int4CpuConfig


Int4CpuConfig: type | None = None


def int4_torchao_config(int4_layers: Iterable[str], int8_layers: Iterable[str]):
    """The torchao config a load takes: ``int4_layers`` in int4, ``int8_layers`` in int8
    (dynamic activations; run on PyTorch's int8 kernels after loading).

    Keyed by each weight's full name: a module-wide key or a ``_default`` would also send
    the biases to torchao, which quantizes only weights. transformers still leaves the
    modules it never quantizes (output embeddings, modules kept in fp32) in float.
    """
    from torchao.quantization import FqnToConfig, Int8DynamicActivationInt8WeightConfig

    int4 = _register_config()()
    int8 = Int8DynamicActivationInt8WeightConfig()
    mapping: dict = {f"{name}.weight": int4 for name in int4_layers}
    mapping.update({f"{name}.weight": int8 for name in int8_layers})
    return FqnToConfig(mapping)


@dataclass(frozen=True)
class Int4Report:
    """What an int4 load holds: layers on the int4 kernel, and those that stayed in int8."""

    int4: int
    fallback: tuple[str, ...] = ()

    def describe(self) -> str:
        words = f"{self.int4} language-model layers in int4"
        if self.fallback:
            words += f", {len(self.fallback)} in int8 (widths the int4 kernel cannot take)"
        return words


def use_pytorch_int4_kernels(model: torch.nn.Module, fallback: Iterable[str] = ()) -> Int4Report:
    """Put an :class:`Int4CpuLinear` in place of every layer packed while loading.

    ``fallback`` names the language-model layers that were left to int8; they are logged.
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            pending = getattr(child, _PENDING, None)
            if isinstance(pending, Int4CpuLinear):
                if child.bias is not None:
                    pending.bias = torch.nn.Parameter(child.bias.detach(), requires_grad=False)
                setattr(parent, name, pending)
                delattr(child, _PENDING)
                swapped += 1
    report = Int4Report(swapped, tuple(fallback))
    for name in report.fallback:
        module = model.get_submodule(name)
        logger.warning(
            "%s stays in int8: %s",
            name,
            _why_not(getattr(module, "in_features", 0), getattr(module, "out_features", 0)),
        )
    return report


def int4_layers_of(model_class: type, name_or_path: str) -> tuple[list[str], list[str], list[str]]:
    """``(int4, fallback, int8)`` for a checkpoint, from its config on the ``meta`` device:
    :func:`int4_layer_names`, and every other linear layer (int8 stores those)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path)
    with torch.device("meta"):
        model = model_class(config)
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    keep |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    kept = [name for name, _ in model.named_modules() if any(f".{k}." in f".{name}." for k in keep)]
    int4, fallback = int4_layer_names(model, skip=kept)
    packed = set(int4)
    int8 = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name not in packed
    ]
    return int4, fallback, int8
