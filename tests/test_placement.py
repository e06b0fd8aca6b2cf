import logging

import pytest
import torch

from vqa_core import PlacementError, ViltAnswerer, resolve_placement


def test_auto_on_cpu_is_fp32():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the CPU rule is tested explicitly below")
    placement = resolve_placement("auto", "auto")
    assert placement.device.type in ("cpu", "mps")
    if placement.device.type == "cpu":
        assert placement.dtype == torch.float32


@pytest.mark.parametrize("dtype", ["float16", "fp16", "half", torch.float16])
def test_fp16_request_on_cpu_falls_back_with_warning(dtype, caplog):
    with caplog.at_level(logging.WARNING, logger="vqa_core.placement"):
        placement = resolve_placement("cpu", dtype)
    assert placement.dtype == torch.float32
    assert "float16 is not supported on CPU" in caplog.text


def test_bf16_on_cpu_is_honoured():
    assert resolve_placement("cpu", "bf16").dtype == torch.bfloat16


def test_fp16_request_never_reaches_a_cpu_model(tiny_vilt_dir, easy_vqa_sample):
    answerer = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", dtype="float16")
    assert {p.dtype for p in answerer.model.parameters()} == {torch.float32}
    paths, questions, _ = easy_vqa_sample
    result = answerer.answer(paths[0], questions[0])  # would raise 'Half' kernel errors
    assert result.answers


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(PlacementError) as caught:
        resolve_placement("cuda")
    message = str(caught.value)
    assert "no CUDA GPU" in message and "cpu" in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("device", "dtype", "expected"),
    [("tpu", "auto", "auto, cpu, cuda, mps"), ("cpu", "int8", "auto, float32, float16, bfloat16")],
)
def test_unknown_choices_list_the_valid_ones(device, dtype, expected):
    with pytest.raises(PlacementError, match=expected):
        resolve_placement(device, dtype)


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n", "AMX-BF16"),
        ("flags\t\t: fpu sse avx2 avx512f avx512_bf16\n", "AVX512-BF16"),
        ("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n", "Arm BF16"),
        ("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n", None),
        ("", None),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, expected):
    from vqa_core.placement import cpu_bf16_feature

    assert cpu_bf16_feature(cpuinfo) == expected


def test_native_bf16_on_this_machine_agrees_with_torch():
    from vqa_core.placement import cpu_bf16_feature

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if probe is None:
        pytest.skip("this torch has no bf16 probe to compare with")
    assert (cpu_bf16_feature() is not None) == (probe() or torch.cpu._is_amx_tile_supported())
