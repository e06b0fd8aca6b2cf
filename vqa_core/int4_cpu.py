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
  row per token, int4 is the fastest there. A prompt's dozens of rows take another route
  over the same bytes: they are unpacked into int8 weights for the call and multiplied on
  the CPU's int8 units (:class:`Int4CpuLinear`), about 0.6x the int4 kernel's time at 44
  rows; a second copy of the weights would give back the memory int4 saves;
* every other linear layer (an image encoder's 257 patches, ViLT's ~230 rows of text and
  image patches on every answer) stays in int8, which measured fastest for many rows (the
  1408 -> 6144 image-encoder layer over 257 patches: int8 13.0 ms, bf16 21.9 ms, int4
  51.0 ms; the int8 route over int4 bytes about 1.3x int8's).

A layer whose widths the kernel cannot take (output rows not a multiple of 16, input columns
with no group size of 32, 64 or 128 dividing them) stays in int8 and is logged by name.

The weights are quantized as the checkpoint is read: transformers hands each linear layer to
torchao's ``quantize_`` as its weight arrives (through ``TorchAoConfig``), and the handler
registered here for :class:`Int4CpuConfig` packs it, so the float model never exists whole.
After loading, :func:`use_pytorch_int4_kernels` puts an :class:`Int4CpuLinear` in place of
each packed layer.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from .int8_cpu import quantize_rows

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
# A group's step is its row's base times a whole multiplier up to this: 16 * (code - 8) still
# fits in int8 (-128 to 112).
MAX_MULTIPLIER = 16


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(codes, multipliers, bases, zeros)``: asymmetric 4-bit codes 0-15 per group of input
    columns.

    A weight is ``(code - 8) * scale + zero`` (the kernel's convention), where a group's
    ``scale`` is its row's ``base`` times a whole ``multiplier`` from 1 to 16: the smallest
    such step that covers the group's range. ``bases`` (``[out]``) have three significant
    bits, so every scale is exact in bf16 (the kernel's type) and ``(code - 8) * multiplier``
    is exact in int8: many rows multiply those int8 weights (see :class:`Int4CpuLinear`).
    A group whose range is far below its row's widest gets at least the row's base (a
    sixteenth to an eighth of the widest group's step) instead of its own step. ``multipliers`` and ``zeros`` are ``[out, in /
    group_size]``; zeros are rounded to bf16 as the kernel keeps them, so the codes are
    chosen against the values it will really use.

    Rows are quantized a block at a time (at most :data:`CHUNK_ELEMENTS` weights): beyond the
    weight and the int32 codes the kernel's packing takes, a load holds only one block's two
    fp32 temporaries, whatever the layer's size (vqa_core.fit counts exactly that).
    """
    rows, columns = weight.shape
    codes = torch.empty((rows, columns), dtype=torch.int32)
    multipliers = torch.empty((rows, columns // group_size), dtype=torch.int8)
    bases = torch.empty(rows)
    zeros = torch.empty((rows, columns // group_size))
    step = max(1, CHUNK_ELEMENTS // columns)
    for start in range(0, rows, step):
        block = slice(start, start + step)
        # .float() copies a bf16 block (an fp32 one is used as it is, never written to).
        groups = weight[block].detach().float().reshape(-1, columns // group_size, group_size)
        low = groups.amin(dim=-1)
        wanted = ((groups.amax(dim=-1) - low) / 15).clamp_(min=1e-8)
        base = _three_bit_base(wanted.amax(dim=1) / MAX_MULTIPLIER)
        multiplier = torch.ceil(wanted / base.unsqueeze(1)).clamp_(1, MAX_MULTIPLIER)
        scale = multiplier * base.unsqueeze(1)
        zero = (low + 8 * scale).to(torch.bfloat16).float()
        # In place after the first copy; copy_ converts to int32 without a third temporary.
        found = groups.sub(zero.unsqueeze(-1)).div_(scale.unsqueeze(-1)).add_(8)
        codes[block].copy_(found.round_().clamp_(0, 15).reshape(-1, columns))
        multipliers[block] = multiplier.to(torch.int8)
        bases[block] = base
        zeros[block] = zero
    return codes, multipliers, bases, zeros


def _three_bit_base(least: torch.Tensor) -> torch.Tensor:
    """The smallest value at or above each of ``least`` of the form ``m * 2**e`` with ``m``
    from 4 to 8: three significant bits, so times a multiplier of up to 16 it has at most
    eight, which bf16 holds exactly."""
    mantissa, exponent = torch.frexp(least)  # least = mantissa * 2**exponent, mantissa in [0.5, 1)
    return torch.ldexp(torch.ceil(mantissa * 8), exponent - 3)


class Int4CpuLinear(torch.nn.Module):
    """A linear layer over 4-bit weights in the CPU kernel's packed layout.

    ``packed`` (``[out, in / 2]`` bytes), ``scales_and_zeros`` (``[in / group, out, 2]``,
    bf16), and the scales' parts (``multipliers``, ``[in / group, out]`` int8 with the
    outputs in :func:`route_order`, and ``bases``, ``[out]`` fp32) are buffers, so
    ``state_dict`` and memory counts see what is held; there is no float weight. Activations
    are cast to bf16 for the kernel and the result back to the input's dtype.

    The int4 kernel reads the weights once for every four rows of activations, so it wins
    for the one row per token of generation and loses on a prompt's dozens of rows. From
    :data:`MANY_ROWS` rows a call instead unpacks the same bytes into int8 weights (``(code -
    8) * multiplier``, exact) in a per-thread buffer, multiplies them with the rows
    quantized to int8 on AMX or VNNI as int8 layers do, and applies each row's base and the
    groups' zeros after the product.
    """

    def __init__(
        self,
        packed: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        group_size: int,
        in_features: int,
        out_features: int,
        bias: torch.Tensor | None,
        multipliers: torch.Tensor,
        bases: torch.Tensor,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.group_size = group_size
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.register_buffer("multipliers", multipliers)
        self.register_buffer("bases", bases)
        self.bias = bias if bias is None else torch.nn.Parameter(bias, requires_grad=False)
        self.unpacks = _unpacks(in_features, out_features)

    @classmethod
    def from_weight(
        cls, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int
    ) -> Int4CpuLinear:
        out_features, in_features = weight.shape
        codes, multipliers, bases, zeros = quantize_groups(weight, group_size)
        packed = torch._convert_weight_to_int4pack_for_cpu(codes, 1)
        del codes
        scales = multipliers.float() * bases.unsqueeze(1)
        scales_and_zeros = torch.stack((scales.t(), zeros.t()), dim=-1)
        scales_and_zeros = scales_and_zeros.to(torch.bfloat16).contiguous()
        if out_features % _BLOCK_ROWS == 0:
            multipliers = multipliers[route_order(out_features)]
        multipliers = multipliers.t().contiguous()
        return cls(
            packed,
            scales_and_zeros,
            group_size,
            in_features,
            out_features,
            bias,
            multipliers,
            bases,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"int4 (group {self.group_size})"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] >= MANY_ROWS and self.unpacks:
            out = self._many_rows(rows)
        else:
            out = torch._weight_int4pack_mm_for_cpu(
                rows.to(torch.bfloat16), self.packed, self.group_size, self.scales_and_zeros
            )
        out = out.to(x.dtype)
        if self.bias is not None:
            out = out + self.bias.to(x.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)

    def int8_weight(self) -> torch.Tensor:
        """``(code - 8) * multiplier`` as an int8 ``[in, out]`` matrix, in this thread's
        buffer (valid until the next call on this thread)."""
        return _unpack_int8(self.packed, self.multipliers, self.group_size)

    def _many_rows(self, rows: torch.Tensor) -> torch.Tensor:
        values = rows.to(torch.float32)
        quantized, step = quantize_rows(values)
        routed = torch._int_mm(quantized, self.int8_weight())
        blocks = self.out_features // _BLOCK_ROWS
        product = routed.view(-1, 2, blocks, _BLOCK_ROWS // 2).transpose(1, 2)
        product = product.reshape(-1, self.out_features).to(torch.float32)
        product.mul_(step).mul_(self.bases)
        # Each group's zero times the sum of the inputs it applies to.
        sums = values.view(-1, self.in_features // self.group_size, self.group_size).sum(-1)
        product.addmm_(sums, self.scales_and_zeros[:, :, 1].float())
        return product


# The packed layout's block of output rows (see Int4CpuLinear.int8_weight), read from
# torch._convert_weight_to_int4pack_for_cpu and checked at run time (_layout_is_known).
_BLOCK_ROWS = 64
_LOW_NIBBLES = 0x0F0F0F0F0F0F0F0F
# From this many rows the int8 route beats the int4 kernel (measured on OPT-2.7B's layers: about
# even at 24 rows, 0.6x the kernel's time at 32 and 44; docs/performance.md).
MANY_ROWS = 32
_buffers = threading.local()


def _buffer(size: int) -> torch.Tensor:
    """This thread's scratch bytes, grown to ``size`` (the largest layer's int8 weight and
    half of it again; vqa_core.fit's int4 load transient covers it)."""
    held = getattr(_buffers, "bytes", None)
    if held is None or held.numel() < size:
        # Made outside inference mode, which would forbid writing to it outside later.
        with torch.inference_mode(False):
            _buffers.bytes = held = torch.empty(size, dtype=torch.int8)
    return held[:size]


def _unpacks(in_features: int, out_features: int) -> bool:
    """Whether a layer of these widths can take the int8 route for many rows."""
    return out_features % _BLOCK_ROWS == 0 and hasattr(torch, "_int_mm") and _layout_is_known()


def _unpack_int8(packed: torch.Tensor, multipliers: torch.Tensor, group: int) -> torch.Tensor:
    """The int8 ``[in, out]`` matrix ``(code - 8) * multiplier`` of a packed layer, its
    output columns in :func:`route_order`, written to this thread's buffer.
    ``multipliers`` is ``[in / group, out]`` in that order too."""
    rows = packed.shape[0]
    columns = packed.shape[1] * 2
    blocks = rows // _BLOCK_ROWS
    buffer = _buffer(columns * rows + columns * rows // 2)
    weight = buffer[: columns * rows].view(columns, 2, rows // 2)
    moved = buffer[columns * rows :].view(columns, blocks, _BLOCK_ROWS // 2)
    # The kernel's layout: per block of 64 output rows, per input column, 32 bytes whose low
    # nibbles are the block's rows 0-31 and high nibbles rows 32-63. One pass brings the
    # columns together (eight bytes at a time); then each nibble is one contiguous pass.
    source = packed.view(blocks, columns, _BLOCK_ROWS // 2).view(torch.int64)
    moved.view(torch.int64).copy_(source.transpose(0, 1))
    words = moved.view(columns, -1).view(torch.int64)
    lanes = weight.view(torch.int64)  # [in, 2, out / 16]
    torch.bitwise_and(words, _LOW_NIBBLES, out=lanes[:, 0])
    words.bitwise_right_shift_(4)
    torch.bitwise_and(words, _LOW_NIBBLES, out=lanes[:, 1])
    grouped = weight.view(columns // group, group, rows)
    grouped.sub_(8).mul_(multipliers.unsqueeze(1))
    return weight.view(columns, rows)


def route_order(rows: int) -> torch.Tensor:
    """The output rows in the order :func:`_unpack_int8` lays them out: every block's rows
    0-31 (the packed bytes' low nibbles), then every block's rows 32-63."""
    order = torch.arange(rows).view(rows // _BLOCK_ROWS, 2, _BLOCK_ROWS // 2)
    return order.transpose(0, 1).reshape(rows)


@functools.cache
def _layout_is_known() -> bool:
    """Whether this torch packs int4 weights the way :func:`_unpack_int8` unpacks them.
    Another build (another CPU's kernel) may not: its layers then run every call on the
    int4 kernel."""
    codes = torch.arange(_BLOCK_ROWS * 2 * 64, dtype=torch.int32).reshape(-1, 64) * 7 % 16
    try:
        packed = torch._convert_weight_to_int4pack_for_cpu(codes, 1)
        multipliers = torch.ones(1, codes.shape[0], dtype=torch.int8)
        order = route_order(codes.shape[0])
        known = packed.shape == (codes.shape[0], 32) and torch.equal(
            _unpack_int8(packed, multipliers, 64), (codes[order] - 8).t().to(torch.int8)
        )
    except (RuntimeError, AttributeError):
        known = False
    if not known:
        logger.warning(
            "this torch packs int4 weights in a layout vqa_core.int4_cpu does not read: "
            "prompts run on the int4 kernel (slower)"
        )
    return known


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
