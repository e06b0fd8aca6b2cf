"""Fit before loading: what a checkpoint will need, what the machine has, and what to load.

A model that does not fit is not loaded: the plan carries one sentence saying what it needs,
what the machine has and what would make it fit, so the page, the CLI and the log can say it
instead of the kernel killing the process halfway through ``from_pretrained``.

What a checkpoint needs is counted from its own files: its ``config.json`` builds the model
on PyTorch's ``meta`` device (no memory, no weights) so every parameter is counted exactly
and the ``nn.Linear`` weights that int8 would store in one byte are known by module, and the
safetensors headers (read without loading a tensor) say how it is stored. Where the model
cannot be built from its config, the safetensors headers alone are used; where there are
none, the weight files' sizes.

``auto`` tries, fastest first (measured: CPU figures in docs/performance.md, GPU figures on
an H200 in docs/what-runs-where.md):

- CUDA: fp16 on the GPU; then int8 weight-only on the GPU (torchao; 1.44x fp16's time), or
  bitsandbytes 8-bit where torchao is missing and 4-bit where bitsandbytes is installed, on
  the GPU alone; then the whole model on the CPU (the CPU order below). A model split over
  GPU and CPU memory (``device_map="auto"``) is planned only when asked for: streaming the
  weights to the GPU for every token answered 3.6x slower than the CPU alone;
- CPU: bf16 where the CPU runs it natively (AMX or AVX512-BF16), fp32 otherwise; then int8
  weights (torchao, activations in the same float type); then, for a model that generates
  text, int4 weights for its language model and int8 for the rest (:mod:`vqa_core.int4_cpu`);
- nothing fits: no load, and the sentence.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .int4_cpu import CHUNK_ELEMENTS
from .memory import MemoryReport, format_gb, read_cuda_memory, read_memory
from .placement import (
    Placement,
    cpu_bf16_feature,
    resolve_placement,
)
from .sentences import Sentence

__all__ = [
    "QUANTIZATION_CHOICES",
    "LOADABLE_QUANTIZATIONS",
    "quantization_config",
    "Footprint",
    "LoadPlan",
    "measure_checkpoint",
    "plan_load",
]

logger = logging.getLogger(__name__)

# "auto" lets the plan pick; "none" forbids quantizing; int8 is torchao's (CPU and CUDA);
# int4 is the language model's weights on PyTorch's CPU int4 kernel (the rest in int8);
# 8bit / 4bit are bitsandbytes' (CUDA).
QUANTIZATION_CHOICES = ("auto", "none", "int8", "int4", "8bit", "4bit")
# Room for activations, the allocator's caches and what the app allocates per request, on
# top of the weights: a fixed part and a part proportional to the model (measured peaks of
# ViLT-B/32 and BLIP-2 OPT-2.7B at batch 8 stay inside it; see docs/performance.md).
LOADABLE_QUANTIZATIONS = ("none", "int8", "int4", "8bit", "4bit")
MARGIN_FIXED = 256 * 1024**2
# Below this many bytes of fp32 weights, fp32 beats bf16 on CPU (see _cpu_float).
SMALL_MODEL_BYTES = 32 * 1024**2
MARGIN_FRACTION = 0.10
# What an int4 load holds for one layer while it converts it, per weight, beyond the float
# copy of that weight in the activation type (measured on OPT-2.7B's 2560 x 10240 layers,
# docs/performance.md): the int32 codes the kernel's packing takes (4 bytes), the packed result
# and the packing kernel's own temporaries (measured 0.7-1.2 bytes, counted as 2), plus one
# block of two fp32 temporaries (vqa_core.int4_cpu.quantize_groups). A layer left in int8
# holds 8 bytes per weight while torchao quantizes it (measured 8.0-8.1 on a 1408 x 6144
# layer), counted as 10. Nothing else is copied: safetensors hands each tensor over as a
# view of the mapped file (page cache the kernel can drop, not anonymous memory), and a
# float tensor cast to the activation type is its own final copy.
INT4_PACK_BYTES = 6
INT8_QUANTIZE_BYTES = 10
_FLOAT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1}
_INT_BYTES = {"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class Footprint:
    """What a checkpoint's parameters are, counted without loading it."""

    source: str
    linear_params: int  # nn.Linear weights int8 would store in one byte
    linear_rows: int  # their output rows: int8 keeps a scale (fp32) and a zero point per row
    other_params: int  # every other floating-point parameter, kept in the float type
    largest_param: int  # the largest single tensor: loading holds one extra copy of it
    stored_bytes: int  # bytes per parameter in the checkpoint's files
    counted_from: str
    # Parameters of the model's ``_keep_in_fp32_modules`` (BLIP-2's Q-Former): never
    # quantized, and fp32 under fp16 (``strict`` ones under bf16 too); part of other_params.
    fp32_under_fp16: int = 0
    fp32_under_bf16: int = 0
    # The language model's linear layers int4 packs (part of linear_params): their weights,
    # output rows (an fp32 base each), and groups (a bf16 scale, a bf16 zero and an int8
    # multiplier each).
    int4_params: int = 0
    int4_rows: int = 0
    int4_groups: int = 0
    # The largest layer an int4 load packs, and the largest it stores in int8 instead: the
    # int4 load's transient is counted from them (see ``need_bytes``). Zero where the weights
    # are not in safetensors files (loading them then may copy more) or were not counted by
    # module: the rule every precision uses applies then.
    int4_largest: int = 0
    int8_largest: int = 0

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params

    def weight_bytes(self, dtype: torch.dtype, quantization: str = "none") -> int:
        width = torch.finfo(dtype).bits // 8
        upcast = {torch.float16: self.fp32_under_fp16, torch.bfloat16: self.fp32_under_bf16}
        floats = self.other_params * width + upcast.get(dtype, 0) * (4 - width)
        if quantization == "int8" or quantization == "8bit":
            return self.linear_params + 5 * self.linear_rows + floats
        if quantization == "int4":
            int8_params = self.linear_params - self.int4_params
            int8_rows = self.linear_rows - self.int4_rows
            # Half a byte a weight; per group a bf16 scale, a bf16 zero and an int8
            # multiplier; per row an fp32 base (vqa_core.int4_cpu.Int4CpuLinear's buffers).
            int4 = self.int4_params // 2 + 5 * self.int4_groups + 4 * self.int4_rows
            return int8_params + 5 * int8_rows + int4 + floats
        if quantization == "4bit":
            return self.linear_params // 2 + 5 * self.linear_rows + floats
        return self.linear_params * width + floats

    def need_bytes(self, dtype: torch.dtype, quantization: str = "none") -> int:
        """Weights, one tensor's transient copy while it is converted, and the margin.

        int4 counts what its load really holds beyond the weights (``int4_load_transient``)
        where that is known; every other precision counts an fp32 (or wider, as stored)
        copy of the largest tensor.
        """
        weights = self.weight_bytes(dtype, quantization)
        transient = self.largest_param * max(self.stored_bytes, 4)
        if quantization == "int4" and self.int4_largest:
            transient = self.int4_load_transient(dtype)
        return int(weights + transient + MARGIN_FIXED + MARGIN_FRACTION * weights)

    def int4_load_transient(self, dtype: torch.dtype) -> int:
        """Bytes an int4 load holds beyond the weights at its worst moment: one layer's float
        copy and its int32 codes while it is packed (or torchao's temporaries for the
        largest int8 layer, if more), one layer at a time."""
        width = torch.finfo(dtype).bits // 8
        packing = (width + INT4_PACK_BYTES) * self.int4_largest + 2 * 4 * CHUNK_ELEMENTS
        int8 = (width + INT8_QUANTIZE_BYTES) * self.int8_largest
        return max(packing, int8)


@dataclass(frozen=True)
class LoadPlan:
    """What to load and why, or why not: ``placement`` is ``None`` when nothing fits."""

    label: str
    placement: Placement | None
    quantization: str = "none"
    device_map: str | None = None
    need: int | None = None
    free: int | None = None
    reason: str = ""
    alternatives: tuple[str, ...] = field(default=())
    # ``reason`` in parts a page can reword: the choice, what it needs against what is free,
    # then what did not fit (or, when nothing fits, the one sentence saying so).
    reasons: tuple[Sentence, ...] = field(default=())

    @property
    def fits(self) -> bool:
        return self.placement is not None

    def describe(self) -> str:
        """``cpu / bfloat16``, ``cpu / int8 (bfloat16 activations)``, or ``not loaded``."""
        if self.placement is None:
            return "not loaded"
        if self.quantization in ("int8", "int4", "8bit", "4bit"):
            where = f"{self.placement.device.type} / {self.quantization}"
            where += f" ({self.placement.dtype_name} activations)"
        else:
            where = self.placement.describe()
        if self.device_map:
            where += f", device_map={self.device_map}"
        return where


def quantization_config(
    quantization: str,
    compute_dtype: torch.dtype,
    device: torch.device | str | None = None,
    int4_plan: tuple[Sequence[str], Sequence[str]] = ((), ()),
):
    """The ``quantization_config`` ``from_pretrained`` takes for a loadable choice, or ``None``.

    int8 stores the linear layers' weights in int8 with one scale per row; transformers
    quantizes each weight as it is read, so the float copy of the whole model never exists.
    Which torchao form depends on ``device``, the device the model will run on:

    - CUDA: weight-only int8 (activations stay in ``compute_dtype``). On an H200, BLIP-2
      OPT-2.7B answered in 0.25 s this way against 2.35 s with dynamic-activation int8
      (fp16: 0.17 s), in the same 4.3 GB.
    - anywhere else: dynamic-activation int8 (activations quantized per token on the fly);
      on CPU the loaders then run those layers on PyTorch's own int8 kernels
      (:mod:`vqa_core.int8_cpu`). torchao's weight-only int8 has no fast CPU kernel (6-11x
      slower than bf16 here); see docs/performance.md for the measured comparison.

    int4 (CPU only) takes ``int4_plan``, ``(int4 layers, int8 layers)`` by module name
    (:func:`vqa_core.int4_cpu.int4_layers_of`): the language model's linear layers are packed
    for PyTorch's CPU int4 kernel as they are read, the others stored as int8 stores them.
    With no int4 layer (a model that does not generate text) it is int8's config.
    """
    import importlib.util

    from .errors import ModelLoadError

    if quantization not in LOADABLE_QUANTIZATIONS:
        raise ModelLoadError(
            f"Unknown quantization {quantization!r}; choose one of: "
            f"{', '.join(LOADABLE_QUANTIZATIONS)}."
        )
    if quantization == "none":
        return None
    if quantization in ("int8", "int4"):
        if importlib.util.find_spec("torchao") is None:
            raise ModelLoadError(
                f"{quantization} loading needs the torchao package; install it with "
                "`pip install torchao`, or load with --quantization none."
            )
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
        )
        from transformers import TorchAoConfig

        on_cpu = device is None or torch.device(device).type == "cpu"
        if quantization == "int4":
            if not on_cpu:
                raise ModelLoadError(
                    f"int4 runs on PyTorch's CPU kernel, not on {torch.device(device).type}; "
                    "choose one of: int8, 8bit, 4bit (bitsandbytes, CUDA) there, or --device cpu."
                )
            from .int4_cpu import int4_torchao_config

            int4_layers, int8_layers = int4_plan
            if int4_layers:
                return TorchAoConfig(int4_torchao_config(int4_layers, int8_layers))
            return TorchAoConfig(Int8DynamicActivationInt8WeightConfig())
        if device is not None and torch.device(device).type == "cuda":
            return TorchAoConfig(Int8WeightOnlyConfig())
        return TorchAoConfig(Int8DynamicActivationInt8WeightConfig())
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            f"{quantization} loading needs the bitsandbytes package and a CUDA GPU; "
            "install it with `pip install bitsandbytes`, or load without --quantization."
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute_dtype)


# ---------------------------------------------------------------------------------------
# What a checkpoint needs


def _local_file(source: str, filename: str) -> Path | None:
    """A file of a local folder, or of a hub id's cached snapshot; never a download."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        found = folder / filename
        return found if found.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        cached = try_to_load_from_cache(source, filename)
    except ValueError:  # not a valid repo id either
        return None
    return Path(cached) if isinstance(cached, str) else None


def _safetensors_header(path: Path) -> dict:
    # The format: an 8-byte little-endian header length, then that many bytes of JSON.
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        # A damaged file can claim any length (reading 2**64 bytes raises OverflowError).
        if length > path.stat().st_size - 8:
            raise ValueError(f"its header claims {length} bytes, more than the file holds")
        return json.loads(handle.read(length))


def _weight_files(source: str) -> list[Path]:
    index = _local_file(source, "model.safetensors.index.json")
    if index is not None:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        found = [_local_file(source, shard) for shard in shards]
        return [f for f in found if f is not None] if all(found) else []
    single = _local_file(source, "model.safetensors")
    return [single] if single is not None else []


def _header_counts(files: list[Path]) -> tuple[int, int, int, int, int]:
    """``(2-D weight params, their rows, other float params, largest, bytes per param)``."""
    matrices = rows = others = largest = 0
    stored = 4
    for file in files:
        for name, entry in _safetensors_header(file).items():
            if name == "__metadata__" or entry["dtype"] not in _FLOAT_BYTES:
                continue
            shape = entry["shape"]
            numel = 1
            for dim in shape:
                numel *= dim
            stored = _FLOAT_BYTES[entry["dtype"]]
            largest = max(largest, numel)
            if len(shape) == 2 and name.endswith(".weight"):
                matrices += numel
                rows += shape[0]
            else:
                others += numel
    return matrices, rows, others, largest, stored


def _meta_counts(
    source: str, model_class: type
) -> tuple[int, int, int, int, int, int, tuple[int, int, int, int, int]]:
    """The model on ``meta``: ``(linear params, their rows, other float params, largest,
    params upcast to fp32 under fp16, under bf16, (int4 params, rows, groups, largest int4
    layer, largest int8 layer of an int4 load))``."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    with torch.device("meta"):
        model = model_class(config)
    # What transformers' quantizers leave in float: the output embeddings (often tied to the
    # input ones) and the module holding the last parameter (a classifier head).
    output = model.get_output_embeddings()
    last_parameter = list(model.named_parameters())[-1][0].rsplit(".", 1)[0]
    skipped = {name for name, module in model.named_modules() if module is output}
    skipped.add(last_parameter)
    # Modules a model keeps in fp32 (transformers' _keep_in_fp32_modules, e.g. BLIP-2's
    # Q-Former) are never quantized either, and are upcast under fp16.
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    strict = set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())

    def within(name: str, keys: set[str]) -> bool:
        return any(f".{key}." in f".{name}." for key in keys)

    quantized: set[int] = set()
    sizes: dict[str, int] = {}  # quantized layers by name: their weights
    linear = rows = 0
    for name, module in model.named_modules():
        linear_layer = isinstance(module, torch.nn.Linear) and name not in skipped
        if linear_layer and not within(name, keep | strict) and id(module.weight) not in quantized:
            quantized.add(id(module.weight))
            sizes[name] = module.weight.numel()
            linear += module.weight.numel()
            rows += module.weight.shape[0]
    others = largest = under_fp16 = under_bf16 = 0
    for name, parameter in model.named_parameters():  # tied parameters are yielded once
        largest = max(largest, parameter.numel())
        if id(parameter) not in quantized and parameter.is_floating_point():
            others += parameter.numel()
            if within(name, keep | strict):
                under_fp16 += parameter.numel()
            if within(name, strict):
                under_bf16 += parameter.numel()
    int4 = _int4_counts(model, keep | strict, sizes)
    return linear, rows, others, largest, under_fp16, under_bf16, int4


def _int4_counts(
    model: torch.nn.Module, keep: set[str], sizes: dict[str, int]
) -> tuple[int, int, int, int, int]:
    """``(weights, output rows, groups, largest layer)`` of the layers an int4 load packs
    (vqa_core.int4_cpu picks them: the language model's linear layers with widths its kernel
    takes), and the largest of the other quantized layers (``sizes``), which int8 stores."""
    from .int4_cpu import int4_group_size, int4_layer_names

    kept = [name for name, _ in model.named_modules() if any(f".{k}." in f".{name}." for k in keep)]
    params = rows = groups = largest = 0
    packed = int4_layer_names(model, skip=kept)[0]
    for name in packed:
        layer = model.get_submodule(name)
        group = int4_group_size(layer.in_features, layer.out_features) or layer.in_features
        params += layer.weight.numel()
        rows += layer.out_features
        groups += layer.weight.numel() // group
        largest = max(largest, layer.weight.numel())
    packed_names = set(packed)
    int8_largest = max((n for name, n in sizes.items() if name not in packed_names), default=0)
    return params, rows, groups, largest, int8_largest


def measure_checkpoint(source: str, model_class: type | None = None) -> Footprint | None:
    """Count ``source``'s parameters without loading it; ``None`` when nothing is readable."""
    files = _weight_files(source)
    stored = 4
    header = None
    if files:
        try:
            header = _header_counts(files)
            stored = header[4]
        except (OSError, ValueError, KeyError, struct.error) as err:
            logger.warning("could not read the safetensors headers of %s: %s", source, err)
    if model_class is not None:
        try:
            linear, rows, others, largest, fp16_up, bf16_up, int4 = _meta_counts(
                source, model_class
            )
            if not files:  # not mapped from safetensors: the general transient rule
                int4 = (*int4[:3], 0, 0)
            return Footprint(
                source, linear, rows, others, largest, stored, "config", fp16_up, bf16_up, *int4
            )
        except Exception as err:  # any failure here only means: count another way
            logger.info("could not build %s on the meta device (%s)", source, err)
    if header is not None:
        matrices, rows, others, largest, stored = header
        return Footprint(source, matrices, rows, others, largest, stored, "safetensors headers")
    for name in ("pytorch_model.bin", "model.safetensors"):
        found = _local_file(source, name)
        if found is not None:
            params = found.stat().st_size // 4
            return Footprint(source, params, 0, 0, params // 10, 4, "file size")
    return None


# ---------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class _Candidate:
    placement: Placement
    quantization: str = "none"
    device_map: str | None = None
    why: Sentence = field(default_factory=lambda: Sentence("", ""))


def _precision_words(candidate: _Candidate) -> str:
    if candidate.quantization != "none":
        return candidate.quantization
    return candidate.placement.dtype_name.replace("bfloat16", "bf16").replace("float", "fp")


def _cpu_float(dtype: str, footprint: Footprint | None = None) -> tuple[Placement, Sentence]:
    """The CPU's float choice and why: bf16 where native, fp32 otherwise, or the request.

    A model this small runs faster in fp32 even where bf16 is native (the per-layer casts
    cost more than the smaller matmuls save): measured on this project's AMX CPU, the demo
    models (2.6 MB and 1.2 MB of weights) answered in 4.3 / 6.5 ms in fp32 and 5.2 / 8.4 ms
    in bf16, while ViLT-B/32 (470 MB) and BLIP-2 ran 2.2-2.3x faster in bf16. The line is
    drawn between the two measured sizes.
    """
    if dtype != "auto":
        placement = resolve_placement("cpu", dtype)
        return placement, Sentence.of(
            "plan_as_requested", f"{placement.dtype_name} as requested", dtype=placement.dtype_name
        )
    feature = cpu_bf16_feature()
    if feature and footprint is not None and footprint.params * 4 < SMALL_MODEL_BYTES:
        size = f"{SMALL_MODEL_BYTES // 1024**2} MB"
        return resolve_placement("cpu", "float32"), Sentence.of(
            "plan_small_fp32",
            f"fp32: under {size} of weights fp32 is faster than bf16 even on {feature}",
            size=size,
            feature=feature,
        )
    if feature:
        return resolve_placement("cpu", "bfloat16"), Sentence.of(
            "plan_bf16_native", f"bf16 runs natively on this CPU ({feature})", feature=feature
        )
    return resolve_placement("cpu", "float32"), Sentence.of(
        "plan_no_bf16", "fp32: this CPU has no native bf16"
    )


def _candidates(
    device: str,
    dtype: str,
    quantization: str,
    device_map: str | None,
    footprint: Footprint | None = None,
) -> list[_Candidate]:
    """Every placement the request allows, fastest first."""
    import importlib.util

    target = resolve_placement(device, dtype)
    kind = target.device.type
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    has_torchao = importlib.util.find_spec("torchao") is not None
    found: list[_Candidate] = []
    if kind == "cuda":
        half = resolve_placement(target.device, dtype)  # auto is fp16 on CUDA
        words = _precision_words(_Candidate(half))
        if quantization in ("auto", "none"):
            if device_map is None:
                why = Sentence.of("plan_gpu", f"{words} on the GPU", precision=words)
                found.append(_Candidate(half, why=why))
            else:
                why = Sentence.of(
                    "plan_gpu_split",
                    f"{words}, spread over GPU and CPU memory as asked (device_map={device_map})",
                    precision=words,
                    device_map=device_map,
                )
                found.append(_Candidate(half, "none", device_map, why))
        # Measured on an H200 with BLIP-2 OPT-2.7B (docs/what-runs-where.md): torchao's
        # weight-only int8 answered in 1.44x fp16's time, dynamic-activation int8 in 13.7x;
        # a split over GPU and CPU memory in 48x, 3.6x the host's CPUs alone.
        if quantization == "int8" or (quantization == "auto" and has_torchao):
            why = Sentence.of(
                "plan_gpu_int8",
                "int8 weight-only on the GPU (torchao; 1.44x fp16's time on an H200)",
            )
            found.append(_Candidate(half, "int8", None, why))
        if quantization in ("8bit", "4bit"):
            why = Sentence.of(
                "plan_bitsandbytes", f"{quantization} weights (bitsandbytes)", bits=quantization
            )
            found.append(_Candidate(half, quantization, "auto", why))
        elif quantization == "auto" and has_bnb:
            # Unmeasured here, so after torchao; planned to fit on the GPU alone (no split).
            for bits in ("4bit",) if has_torchao else ("8bit", "4bit"):
                why = Sentence.of(
                    "plan_gpu_bitsandbytes", f"{bits} weights on the GPU (bitsandbytes)", bits=bits
                )
                found.append(_Candidate(half, bits, None, why))
        if device != "auto":
            return found
    if kind == "mps":
        # No quantization runs on MPS here: asking for one is refused, not ignored.
        if quantization not in ("auto", "none"):
            return []
        why = Sentence.of("plan_mps", f"{target.dtype_name} on MPS", dtype=target.dtype_name)
        return [_Candidate(target, "none", device_map, why)]
    cpu, why = _cpu_float(dtype, footprint)
    if quantization in ("auto", "none"):
        found.append(_Candidate(cpu, "none", None, why))
    # Quantizing is a fallback under auto; an explicit float dtype is honoured as asked.
    if quantization == "int8" or (quantization == "auto" and dtype == "auto"):
        # int8 computes in fp32 unless a dtype was asked for: the layers left in float (the
        # embeddings, BLIP-2's Q-Former) then stay as the checkpoint stores them instead of
        # being copied to bf16, and the int8 layers cast to bf16 themselves where that is
        # faster. Measured with torchao's int8 on BLIP-2 at full width (8 of 39 ViT-g and 8
        # of 32 OPT layers): fp32 activations answered in 4.6 s holding 1158 MB, bf16 ones in
        # 24.3 s holding 1611 MB (docs/performance.md, the int8 methods' table).
        compute = cpu if dtype != "auto" else resolve_placement("cpu", "float32")
        why = Sentence.of(
            "plan_int8",
            f"int8 weights with {compute.dtype_name} activations (torchao)",
            dtype=compute.dtype_name,
        )
        found.append(_Candidate(compute, "int8", None, why))
    # int4 comes after int8 under auto: it halves the language model's weights again and
    # reads them faster per generated token, but runs a prompt's rows slower (one layer,
    # 44 rows: 26.4 ms against int8's 8.6) and is coarser (docs/performance.md). A model
    # with no language model to pack (ViLT) would load exactly as int8 does, so auto does
    # not offer it twice.
    packs_int4 = footprint is not None and footprint.int4_params > 0
    if quantization == "int4" or (quantization == "auto" and dtype == "auto" and packs_int4):
        if packs_int4 or footprint is None:
            why = Sentence.of(
                "plan_int4",
                f"int4 weights for the language model (PyTorch's int4 kernel), int8 for the "
                f"rest, {cpu.dtype_name} activations",
                dtype=cpu.dtype_name,
            )
        else:
            why = Sentence.of(
                "plan_int4_as_int8",
                "int4 asked for, but no layer generates text here, so int8 weights (torchao)",
            )
        found.append(_Candidate(cpu, "int4", None, why))
    if quantization in ("8bit", "4bit"):
        why = Sentence.of("plan_bitsandbytes_cpu", "bitsandbytes", bits=quantization)
        found.append(_Candidate(cpu, quantization, device_map or "auto", why))
    return found


def _gpu_free(device: torch.device) -> int | None:
    """Free bytes on a CUDA device, or ``None`` where the reading cannot be trusted.

    On a ZeroGPU Space no GPU is attached at start-up: ``spaces`` makes torch report one
    and answers ``mem_get_info`` with the lent GPU's total less PyTorch's own share, a fixed
    figure that does not move as models load (they wait in CPU memory until a call borrows
    the GPU). That is a usable reading. A reading that fails (a driver that cannot be
    asked) or is nonsense (no total, or more free than the total) says nothing about the
    card, so the GPU is kept and the load is left to report its own error, rather than
    being refused over a number.
    """
    try:
        free, total = read_cuda_memory(device)
    except (RuntimeError, AssertionError, AttributeError, ValueError) as err:
        logger.warning("could not read free memory on %s (%s); not checking the fit", device, err)
        return None
    if total <= 0 or free < 0 or free > total:
        logger.warning(
            "unusual memory reading on %s (free %d of %d bytes); not checking the fit",
            device,
            free,
            total,
        )
        return None
    return free


def _free_for(candidate: _Candidate, host: MemoryReport) -> tuple[int | None, Sentence]:
    """Bytes free where the candidate puts its weights, and how to say it."""
    if candidate.placement.device.type == "cuda":
        gpu_free = _gpu_free(candidate.placement.device)
        if gpu_free is None:
            return None, Sentence.of(
                "memory_gpu_unread",
                "this GPU's free memory could not be read, so the fit is unchecked",
            )
        if candidate.device_map == "auto":
            total = gpu_free + (host.free or 0)
            return total, Sentence.of(
                "memory_gpu_and_host",
                f"this GPU and memory have {format_gb(total)} free together",
                free=format_gb(total),
            )
        return gpu_free, Sentence.of(
            "memory_gpu", f"this GPU has {format_gb(gpu_free)} free", free=format_gb(gpu_free)
        )
    return host.free, host.where()


def plan_load(
    label: str,
    footprint: Footprint | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    quantization: str = "auto",
    device_map: str | None = None,
    instead: str = "",
    memory: Callable[[], MemoryReport] = read_memory,
) -> LoadPlan:
    """Pick the fastest placement of ``label`` that fits, or none, with one sentence why.

    ``instead`` is the command that would still serve something (``--only vilt``) and is
    offered when nothing fits. An unmeasurable checkpoint (``footprint`` is ``None``) gets
    the first candidate unchecked: loading will report its own error if it fails.
    """
    if quantization not in QUANTIZATION_CHOICES:
        from .errors import PlacementError

        raise PlacementError(
            f"Unknown quantization {quantization!r}; choose one of: "
            f"{', '.join(QUANTIZATION_CHOICES)}."
        )
    candidates = _candidates(device, dtype, quantization, device_map, footprint)
    if not candidates:
        from .errors import PlacementError

        # Which quantizations have a choice on this device (the dtype does not change that).
        there = resolve_placement(device).device
        valid = [q for q in QUANTIZATION_CHOICES if _candidates(device, "auto", q, None)]
        raise PlacementError(
            f"--quantization {quantization} does not apply on {there.type}; "
            f"choose one of: {', '.join(valid)}."
        )
    if footprint is None:
        first = candidates[0]
        unchecked = Sentence.of(
            "plan_unchecked", "its size could not be read before loading, so it is unchecked"
        )
        return LoadPlan(
            label,
            first.placement,
            first.quantization,
            first.device_map,
            reason=f"{first.why}; {unchecked}",
            reasons=(first.why, unchecked),
        )
    host = memory()
    # What did not fit, as (precision, need): on the GPU alone (said once, with its free
    # memory), and elsewhere.
    tried: list[tuple[str, int]] = []
    gpu_tried: list[tuple[str, int]] = []
    gpu_free: int | None = None
    for candidate in candidates:
        need = footprint.need_bytes(candidate.placement.dtype, candidate.quantization)
        free, where = _free_for(candidate, host)
        if free is None or need <= free:
            needs = Sentence.of(
                "plan_needs",
                f"needs about {format_gb(need)}, {where}",
                need=format_gb(need),
                where=where,
            )
            notes = []
            if gpu_tried:
                notes.append(
                    Sentence.of(
                        "plan_gpu_too_small",
                        f"on the GPU {' and '.join(_needs_words(gpu_tried))}, more than its "
                        f"{format_gb(gpu_free)} free",
                        tried=_sizes(gpu_tried),
                        free=format_gb(gpu_free),
                    )
                )
            if tried:
                notes.append(
                    Sentence.of(
                        "plan_too_big",
                        f"{'; '.join(_needs_words(tried))} would not fit",
                        tried=_sizes(tried),
                    )
                )
            if gpu_tried and candidate.placement.device.type == "cpu":
                notes.append(
                    Sentence.of(
                        "plan_split_when_asked",
                        "a split over GPU and CPU memory is used only when asked "
                        "(device_map=auto): it answered 3.6x slower than the CPU alone",
                    )
                )
            reason = f"{candidate.why}; {needs}"
            if notes:
                reason += f" ({'; '.join(map(str, notes))})"
            return LoadPlan(
                label,
                candidate.placement,
                candidate.quantization,
                candidate.device_map,
                need,
                free,
                reason,
                (
                    *(f"{words} on the GPU" for words in _needs_words(gpu_tried)),
                    *_needs_words(tried),
                ),
                (candidate.why, needs, *notes),
            )
        if candidate.placement.device.type == "cuda" and candidate.device_map is None:
            gpu_tried.append((_precision_words(candidate), need))
            gpu_free = free
        else:
            tried.append((_precision_words(candidate), need))
    smallest = min(
        candidates,
        key=lambda c: footprint.need_bytes(c.placement.dtype, c.quantization),
    )
    need = footprint.need_bytes(smallest.placement.dtype, smallest.quantization)
    free, where = _free_for(smallest, host)
    needs = Sentence.of(
        "plan_does_not_fit",
        f"{label} needs about {format_gb(need)} in {_precision_words(smallest)}; {where}.",
        model=label,
        need=format_gb(need),
        precision=_precision_words(smallest),
        where=where,
    )
    remedies = ["Close other programs", "use a larger machine"]
    said = [Sentence.of("plan_remedy_memory", "close other programs or use a larger machine")]
    # What auto would load instead, where that is smaller than what was asked for.
    auto_candidates = _candidates(device, "auto", "auto", None, footprint)
    auto_smallest = min(
        auto_candidates, key=lambda c: footprint.need_bytes(c.placement.dtype, c.quantization)
    )
    auto_need = footprint.need_bytes(auto_smallest.placement.dtype, auto_smallest.quantization)
    if auto_need < need:
        words = _precision_words(auto_smallest)
        remedies.insert(
            0, f"Leave --dtype and --quantization on auto ({words} needs {format_gb(auto_need)})"
        )
        remedies[1] = remedies[1].lower()
        said.insert(
            0,
            Sentence.of(
                "plan_remedy_auto", remedies[0], precision=words, need=format_gb(auto_need)
            ),
        )
    if instead:
        remedies.append(f"run `{instead}`")
        said.append(Sentence.of("plan_remedy_instead", remedies[-1], command=instead))
    sentence = f"{needs} {', '.join(remedies[:-1])}, or {remedies[-1]}."
    alternatives = (
        *(f"{words} on the GPU" for words in _needs_words(gpu_tried)),
        *_needs_words(tried),
    )
    return LoadPlan(
        label, None, smallest.quantization, None, need, free, sentence, alternatives, (needs, *said)
    )


def _needs_words(tried: list[tuple[str, int]]) -> list[str]:
    return [f"{words} needs {format_gb(need)}" for words, need in tried]


def _sizes(tried: list[tuple[str, int]]) -> str:
    """``fp32 3.9 GB, int8 1.2 GB``: precisions with their needs, in no language."""
    return ", ".join(f"{words} {format_gb(need)}" for words, need in tried)
