"""Int8 on CPU: torchao's int8 weights run on PyTorch's int8 kernels, with the same results."""

from __future__ import annotations

import pytest
import torch

# torchao is in the lock: a broken import must fail these tests, never skip them.
import torchao.quantization as torchao_quantization

from vqa_core import Blip2Answerer, ViltAnswerer
from vqa_core.int8_cpu import FEW_ROWS, Int8CpuLinear, use_pytorch_int8_kernels


def torchao_int8(in_features: int, out_features: int, bias: bool, seed: int = 0):
    """A linear layer quantized by torchao exactly as an int8 load quantizes it."""
    torch.manual_seed(seed)
    float_layer = torch.nn.Linear(in_features, out_features, bias=bias)
    quantized = torch.nn.Sequential(torch.nn.Linear(in_features, out_features, bias=bias))
    quantized.load_state_dict({f"0.{k}": v for k, v in float_layer.state_dict().items()})
    torchao_quantization.quantize_(
        quantized, torchao_quantization.Int8DynamicActivationInt8WeightConfig()
    )
    return float_layer, quantized


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


# Rows on both sides of FEW_ROWS: the weight-reading kernel and the int8 product.
@pytest.mark.parametrize("rows", [1, FEW_ROWS, FEW_ROWS + 1, 257])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torchao_and_the_float_layer(rows, dtype, bias):
    float_layer, quantized = torchao_int8(256, 96, bias)
    x = torch.randn(2, rows, 256)
    with torch.inference_mode():
        want_float = float_layer(x)
        want_torchao = quantized(x.to(dtype))
        assert use_pytorch_int8_kernels(quantized) == 1
        assert isinstance(quantized[0], Int8CpuLinear)
        given = x.to(dtype)
        before = given.clone()
        got = quantized(given)
    assert got.shape == want_float.shape and got.dtype == dtype
    assert torch.equal(given, before), "the input was changed in place"
    # int8 weights and activations: about 1 % from the float layer, as torchao's own path.
    assert relative_error(got, want_float) < 0.03
    assert relative_error(got, want_torchao) < 0.03


def test_a_width_the_packed_kernel_cannot_take_uses_the_int8_product():
    # torch._weight_int8pack_mm crashes or is wrong on widths that are not a multiple of 16.
    float_layer, quantized = torchao_int8(40, 8, bias=True)
    use_pytorch_int8_kernels(quantized)
    x = torch.randn(1, 40)
    with torch.inference_mode():
        assert relative_error(quantized(x), float_layer(x)) < 0.03


def test_float_layers_are_left_alone():
    plain = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    assert use_pytorch_int8_kernels(plain) == 0
    assert all(type(m) is not Int8CpuLinear for m in plain.modules())


def _int8_layers(model: torch.nn.Module) -> tuple[int, int]:
    from torchao.utils import TorchAOBaseTensor

    on_torchao = [
        m for m in model.modules() if isinstance(getattr(m, "weight", None), TorchAOBaseTensor)
    ]
    return len(on_torchao), sum(isinstance(m, Int8CpuLinear) for m in on_torchao)


def test_an_int8_load_on_cpu_runs_every_int8_layer_on_pytorch_kernels(
    tiny_vilt_dir, tiny_blip2_dir, easy_vqa_sample
):
    paths, questions, _ = easy_vqa_sample
    vilt_int8 = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", quantization="int8")
    blip2_int8 = Blip2Answerer.from_pretrained(
        str(tiny_blip2_dir), device="cpu", quantization="int8"
    )
    for answerer in (vilt_int8, blip2_int8):
        quantized, on_pytorch = _int8_layers(answerer.model)
        assert quantized > 0 and on_pytorch == quantized
    vilt_float = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", dtype="float32")
    for path, question in zip(paths[:4], questions[:4]):
        int8_scores = dict(vilt_int8.answer(path, question, top_k=3).answers)
        float_scores = dict(vilt_float.answer(path, question, top_k=3).answers)
        top = max(float_scores, key=float_scores.get)
        assert abs(int8_scores.get(top, 0.0) - float_scores[top]) < 0.05
        assert blip2_int8.answer(path, question, max_new_tokens=3).answer
