"""What ``auto`` plans on a CUDA machine, proven on a CPU with the GPU's readings faked.

torch is told a GPU is present and ``torch.cuda.mem_get_info`` returns a chosen free memory,
so :func:`vqa_core.memory.read_cuda_memory` and the planner run their real code. The order
under test was measured on an H200 with BLIP-2 OPT-2.7B (docs/what-runs-where.md): fp16 on
the GPU, then torchao's weight-only int8 on the GPU (1.44x fp16's time; its
dynamic-activation int8 took 13.7x), then the whole model on the CPU; a split over GPU and
CPU memory (8.2 s per answer, 3.6x the CPU alone) only when asked for.
"""

from __future__ import annotations

import types
import warnings

import pytest
import torch
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

from vqa_core import fit as fit_module
from vqa_core import load_services
from vqa_core.fit import Footprint, plan_load, quantization_config
from vqa_core.loading import load_pretrained
from vqa_core.memory import GIB, MemoryReport, format_gb
from vqa_core.placement import Placement

# BLIP-2 OPT-2.7B's footprint: fp16 needs 8.4 GB with its margin, int8 4.7 GB, bf16 8.4 GB.
BLIP2 = Footprint("blip2", 3_600_000_000, 400_000, 140_000_000, 128_700_000, 4, "config")
HOST = MemoryReport(host_available=20 * GIB, host_total=24 * GIB)
# PyTorch's own share of a lent GPU, which spaces subtracts from its total (0.51.3,
# spaces/zero/torch/static.py; that module needs a CUDA torch to import).
SPACES_PYTORCH_BASE = 309_002_240


@pytest.fixture
def gpu_with(monkeypatch):
    """A CUDA GPU that reports ``free`` GB free of 16 GB (set by calling the fixture)."""
    reading = {"free": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (reading["free"], 16 * GIB))
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")

    def set_free(gigabytes: float) -> None:
        reading["free"] = int(gigabytes * GIB)

    return set_free


def plan(**kwargs):
    return plan_load("BLIP-2", BLIP2, memory=lambda: HOST, **kwargs)


def test_15_gb_free_is_fp16_on_the_gpu(gpu_with):
    gpu_with(15)
    chosen = plan()
    assert chosen.placement == Placement(torch.device("cuda"), torch.float16)
    assert chosen.quantization == "none" and chosen.device_map is None
    assert chosen.reason.startswith("fp16 on the GPU; needs about ")
    assert "this GPU has 15.0 GB free" in chosen.reason


def test_6_gb_free_is_int8_weight_only_on_the_gpu(gpu_with):
    gpu_with(6)
    chosen = plan()
    assert chosen.placement == Placement(torch.device("cuda"), torch.float16)
    assert chosen.quantization == "int8" and chosen.device_map is None
    assert chosen.describe() == "cuda / int8 (float16 activations)"
    config = quantization_config(
        chosen.quantization, chosen.placement.dtype, chosen.placement.device
    )
    assert isinstance(config.quant_type, Int8WeightOnlyConfig)
    fp16 = format_gb(BLIP2.need_bytes(torch.float16))
    assert "int8 weight-only on the GPU" in chosen.reason
    assert f"on the GPU fp16 needs {fp16}, more than its 6.0 GB free" in chosen.reason


def test_2_gb_free_is_the_whole_model_on_the_cpu_not_a_split(gpu_with):
    gpu_with(2)
    chosen = plan()
    assert chosen.placement == Placement(torch.device("cpu"), torch.bfloat16)
    assert chosen.quantization == "none" and chosen.device_map is None
    int8 = format_gb(BLIP2.need_bytes(torch.float16, "int8"))
    assert f"and int8 needs {int8}, more than its 2.0 GB free" in chosen.reason
    assert "split over GPU and CPU memory is used only when asked" in chosen.reason
    assert chosen.alternatives[:2] == (
        f"fp16 needs {format_gb(BLIP2.need_bytes(torch.float16))} on the GPU",
        f"int8 needs {int8} on the GPU",
    )


def test_a_split_over_gpu_and_cpu_only_when_asked(gpu_with):
    gpu_with(2)
    chosen = plan(device_map="auto")
    assert chosen.placement == Placement(torch.device("cuda"), torch.float16)
    assert chosen.device_map == "auto" and chosen.quantization == "none"
    assert chosen.describe() == "cuda / float16, device_map=auto"
    assert "as asked (device_map=auto)" in chosen.reason


def test_the_start_up_lines_say_why(gpu_with, monkeypatch, tiny_vilt_dir, tiny_blip2_dir):
    """load_services plans BLIP-2 at 6 GB as int8 on the GPU and hands the loader that plan."""
    from vqa_core import services as services_module

    gpu_with(6)
    loaded = {}

    def record(kind):
        def from_pretrained(source, **kwargs):
            loaded[kind] = kwargs
            return types.SimpleNamespace(name=source)

        return from_pretrained

    monkeypatch.setattr(services_module.ViltAnswerer, "from_pretrained", record("vilt"))
    monkeypatch.setattr(services_module.Blip2Answerer, "from_pretrained", record("blip2"))
    real_measure = services_module.measure_checkpoint
    monkeypatch.setattr(
        services_module,
        "measure_checkpoint",
        lambda source, model_class: (
            BLIP2 if source == str(tiny_blip2_dir) else real_measure(source, model_class)
        ),
    )
    services = load_services(str(tiny_vilt_dir), str(tiny_blip2_dir), memory=lambda: HOST)
    assert loaded["vilt"]["placement"].device.type == "cuda"
    assert loaded["blip2"]["quantization"] == "int8"
    assert loaded["blip2"]["placement"] == Placement(torch.device("cuda"), torch.float16)
    assert loaded["blip2"]["device_map"] is None
    vilt_line, blip2_line = services.plan_lines()
    assert vilt_line.startswith("ViLT: cuda / float16: fp16 on the GPU")
    assert blip2_line.startswith(
        "BLIP-2: cuda / int8 (float16 activations): int8 weight-only on the GPU (torchao"
    )


def test_int8_on_cuda_is_weight_only_and_the_cpu_keeps_its_own():
    on_gpu = quantization_config("int8", torch.float16, torch.device("cuda"))
    assert isinstance(on_gpu.quant_type, Int8WeightOnlyConfig)
    assert isinstance(
        quantization_config("int8", torch.float16, "cuda:1").quant_type, Int8WeightOnlyConfig
    )
    for cpu in (torch.device("cpu"), "cpu", None):
        config = quantization_config("int8", torch.float32, cpu)
        assert isinstance(config.quant_type, Int8DynamicActivationInt8WeightConfig)


def test_the_loader_asks_for_weight_only_int8_on_a_cuda_placement():
    """No GPU is needed to see what load_pretrained hands from_pretrained for a CUDA plan."""
    asked = {}

    class Processor:
        @classmethod
        def from_pretrained(cls, source):
            return cls()

    class Model:
        @classmethod
        def from_pretrained(cls, source, **kwargs):
            asked.update(kwargs)
            return torch.nn.Linear(2, 2).to(kwargs["dtype"])

    placement = Placement(torch.device("cuda"), torch.float16)
    load_pretrained("BLIP-2", Model, Processor, "x", placement=placement, quantization="int8")
    assert isinstance(asked["quantization_config"].quant_type, Int8WeightOnlyConfig)
    assert asked["device_map"] == {"": "cuda"} and asked["dtype"] == torch.float16
    asked.clear()
    cpu = Placement(torch.device("cpu"), torch.float32)
    load_pretrained("BLIP-2", Model, Processor, "x", placement=cpu, quantization="int8")
    assert isinstance(
        asked["quantization_config"].quant_type, Int8DynamicActivationInt8WeightConfig
    )


# ---------------------------------------------------------------------------------------
# ZeroGPU: no GPU is attached at start-up; `spaces` makes torch report the one it lends.


def _spaces_lent_gpu_total() -> int:
    """The memory of the GPU spaces emulates here: its configs.json default (an H200 slice)."""
    from spaces.zero.config import get_config

    with warnings.catch_warnings():
        # Off a Space there is no /proc/driver/nvidia to read; spaces warns and uses the default.
        warnings.simplefilter("ignore")
        return int(get_config()["memory"])


@pytest.fixture
def zerogpu(monkeypatch):
    """torch as spaces 0.51 patches it on import on a ZeroGPU Space (spaces.zero.torch.patch):
    a CUDA device that is "available", device 0, and ``cudart()`` its own module, whose
    ``cudaMemGetInfo`` answers the lent GPU's total less PyTorch's base share, always."""
    total = _spaces_lent_gpu_total()
    answer = {"reading": lambda device: (total - SPACES_PYTORCH_BASE, total)}
    cudart = types.SimpleNamespace(cudaMemGetInfo=lambda device: answer["reading"](device))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "cudart", lambda: cudart)
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")
    return total, answer


def test_on_zerogpu_spaces_readings_give_both_models_the_gpu_in_fp16(zerogpu, tiny_vilt_dir):
    from transformers import ViltForQuestionAnswering

    from vqa_core.fit import measure_checkpoint

    total, _ = zerogpu
    free = format_gb(total - SPACES_PYTORCH_BASE)
    vilt = plan_load(
        "ViLT",
        measure_checkpoint(str(tiny_vilt_dir), ViltForQuestionAnswering),
        memory=lambda: HOST,
    )
    # The reading does not move after ViLT "loads" (it waits in CPU memory): BLIP-2 sees it too.
    blip2 = plan()
    for chosen in (vilt, blip2):
        assert chosen.placement == Placement(torch.device("cuda"), torch.float16)
        assert chosen.quantization == "none" and chosen.device_map is None
        assert f"this GPU has {free} free" in chosen.reason


@pytest.mark.parametrize(
    "reading",
    [
        pytest.param("raises", id="cuda-init-reached"),
        pytest.param((0, 0), id="no-total"),
        pytest.param((5 * GIB, 4 * GIB), id="more-free-than-total"),
    ],
)
def test_a_gpu_reading_that_cannot_be_trusted_keeps_the_gpu(zerogpu, reading, caplog):
    """The GPU is not refused over a number: the load is left to report its own error."""
    _, answer = zerogpu
    if reading == "raises":

        def refuse(device):
            # What spaces raises when CUDA is touched outside its emulation.
            raise RuntimeError("Low-level CUDA init (`torch._C._cuda_init`) reached.")

        answer["reading"] = refuse
    else:
        answer["reading"] = lambda device: reading
    chosen = plan()
    assert chosen.placement == Placement(torch.device("cuda"), torch.float16)
    assert chosen.quantization == "none" and chosen.device_map is None
    assert "free memory could not be read, so the fit is unchecked" in chosen.reason
    assert "not checking the fit" in caplog.text
