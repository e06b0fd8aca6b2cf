"""Int8 linear layers on CPU: torchao stores the weights, PyTorch's own int8 kernels run them.

torchao (through transformers' ``TorchAoConfig``) quantizes each weight as it is read, which
is what keeps an int8 load at half of bf16's memory. Its CPU matmul for those weights was
the slow part: on BLIP-2 OPT-2.7B it answered in 1.37x bf16's time. Most of that was
overhead around the kernel, in two regimes measured on this project's 2-core AMX CPU
(docs/performance.md):

* a few rows (generating one token at a time): reading the weights dominates.
  ``torch._weight_int8pack_mm`` reads the int8 weights once and multiplies in bf16;
* many rows (the image encoder's 257 patches, a prompt): the arithmetic dominates.
  Each row of activations is quantized to int8 on the fly and ``torch._int_mm`` runs the
  int8 x int8 product (AMX or VNNI where the CPU has them), then the result is rescaled.

Both read the same int8 bytes torchao stored; nothing is copied or re-quantized.
"""

from __future__ import annotations

import logging

import torch

__all__ = ["Int8CpuLinear", "float_parts_in_fp32", "use_pytorch_int8_kernels"]

logger = logging.getLogger(__name__)

# Up to this many rows the weight-reading kernel wins; from 8 rows the int8 product does
# (measured per layer, 2560 -> 10240: 0.70 / 1.16 / 2.38 ms at 1 / 4 / 8 rows, against
# 1.04 / 1.07 / 0.97 ms).
FEW_ROWS = 4
# torch._weight_int8pack_mm gives wrong results, or crashes, on this torch's CPU build
# when the input width is not a multiple of 16; 32 leaves room (every real model's is).
_PACKED_WIDTH_MULTIPLE = 32


class Int8CpuLinear(torch.nn.Linear):
    """A linear layer over a torchao int8 weight (one scale per output row), on CPU.

    ``weight`` stays the torchao tensor (so parameter counts, ``state_dict`` and the memory
    planner see what was loaded); the forward pass reads its int8 data and scales directly.
    It is still an ``nn.Linear`` to code that looks for linear layers.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        torch.nn.Module.__init__(self)  # not Linear's: it would allocate a float weight
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        qdata = linear.weight.qdata
        self._int8 = qdata if qdata.is_contiguous() else qdata.contiguous()
        scale = linear.weight.scale.reshape(-1)
        self._scale = scale.to(torch.float32)
        self._scale_bf16 = scale.to(torch.bfloat16)
        self._packed_ok = self.in_features % _PACKED_WIDTH_MULTIPLE == 0

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] <= FEW_ROWS and self._packed_ok:
            out = torch._weight_int8pack_mm(rows.to(torch.bfloat16), self._int8, self._scale_bf16)
            if self.bias is not None:
                out = out + self.bias
        else:
            quantized, step = quantize_rows(rows.to(torch.float32))
            product = torch._int_mm(quantized, self._int8.t()).to(torch.float32)
            product.mul_(step).mul_(self._scale)
            if self.bias is not None:
                product.add_(self.bias)
            out = product
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)


def quantize_rows(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(int8 rows, step per row)`` of fp32 ``values``: symmetric per-row quantization, as
    torchao's own dynamic-activation int8 does; ``values`` is not changed."""
    step = torch.linalg.vector_norm(values, float("inf"), dim=1, keepdim=True)
    step = step.clamp_(min=1e-12).div_(127)
    return (values / step).round_().to(torch.int8), step


def _is_per_row_int8(weight: object) -> bool:
    qdata = getattr(weight, "qdata", None)
    scale = getattr(weight, "scale", None)
    if not isinstance(qdata, torch.Tensor) or not isinstance(scale, torch.Tensor):
        return False
    if qdata.dtype != torch.int8 or qdata.dim() != 2 or qdata.device.type != "cpu":
        return False
    block_size = getattr(weight, "block_size", None)
    per_row = block_size is not None and list(block_size)[-1] == qdata.shape[-1]
    return per_row and scale.numel() == qdata.shape[0]


def use_pytorch_int8_kernels(model: torch.nn.Module) -> int:
    """Run every torchao int8 linear layer of a CPU ``model`` on PyTorch's int8 kernels.

    Returns how many layers now do; 0 leaves the model as torchao made it (another device,
    another quantization, or a torch without these kernels).
    """
    if not (hasattr(torch, "_weight_int8pack_mm") and hasattr(torch, "_int_mm")):
        logger.info("this torch has no CPU int8 kernels; int8 layers keep torchao's path")
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and _is_per_row_int8(child.weight):
                setattr(parent, name, Int8CpuLinear(child))
                replaced += 1
    return replaced


def float_parts_in_fp32(module: torch.nn.Module) -> int:
    """Cast ``module``'s plain half-precision parameters and buffers (layer norms, biases,
    embeddings) to fp32 in place, leaving torchao's int8 weights as they are; returns how many
    tensors were cast. Int8 layers take fp32 rows whatever the model's type, so a module
    whose linear layers are int8 then computes in fp32 throughout."""
    cast = 0
    for part in module.modules():
        for name, parameter in list(part.named_parameters(recurse=False)):
            # torchao's weights are tensor subclasses that report their float type.
            if type(parameter.data) is torch.Tensor and parameter.dtype in _HALF:
                widened = parameter.detach().to(torch.float32)
                setattr(part, name, torch.nn.Parameter(widened, requires_grad=False))
                cast += 1
        for name, buffer in list(part.named_buffers(recurse=False)):
            if buffer is not None and type(buffer) is torch.Tensor and buffer.dtype in _HALF:
                persistent = name not in part._non_persistent_buffers_set
                part.register_buffer(name, buffer.to(torch.float32), persistent=persistent)
                cast += 1
    return cast


_HALF = (torch.bfloat16, torch.float16)
