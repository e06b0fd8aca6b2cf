"""What the planner says, word for word, and what it hands transformers.

Each plan's reason is the sentence a person reads in the log, the CLI and the About panel,
and its parts (``LoadPlan.reasons``) are what the Arabic page rewords by code: both are
written out here by hand for every branch of the plan, on the CPU and on a GPU whose memory
reading is faked, as are the ``quantization_config`` each loadable choice gives.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
from transformers import BitsAndBytesConfig, TorchAoConfig

from vqa_core import ModelLoadError, PlacementError
from vqa_core import fit as fit_module
from vqa_core.fit import Footprint, LoadPlan, plan_load, quantization_config
from vqa_core.memory import GIB, CgroupMemory, MemoryReport
from vqa_core.placement import resolve_placement

MIB = 1024**2
# Round figures: 2 G linear weights in 100 k rows, 0.5 G other floats, the largest tensor
# 0.1 G, stored in fp32. Needs (weights + one fp32 copy of the largest + 256 MiB + a tenth):
#   fp32: 10e9 + 0.4e9 + 1e9 + 256 MiB = 10.9 GB      bf16: 5e9 + 0.4e9 + 0.5e9 = 5.7 GB
#   int8 (fp32 activations): 2e9 + 5 * 1e5 + 2e9 = 4.0005e9, + 0.4e9 + 0.40005e9 = 4.7 GB
BIG = Footprint("big", 2_000_000_000, 100_000, 500_000_000, 100_000_000, 4, "config")
# The same with its language model's 1.6 G weights packed in int4 (12,500,000 groups of 128):
#   int4: int8 0.4e9 + 5 * 2e4 + int4 0.8e9 + 5 * 12.5e6 + 4 * 8e4 + floats 2e9 = 3.26292e9
#   = 3.04 GiB,
#   its margin 0.33 GB, its transient (fp32 copy + codes of its largest packed layer) ...
LM = Footprint(
    "lm", 2_000_000_000, 100_000, 500_000_000, 100_000_000, 4, "config",
    int4_params=1_600_000_000, int4_rows=80_000, int4_groups=12_500_000,
    int4_largest=26_214_400, int8_largest=10_000_000,
)  # fmt: skip


def memory(free_gb: float):
    return lambda: MemoryReport(host_available=int(free_gb * GIB), host_total=24 * GIB)


@pytest.fixture
def amx(monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: None)


@pytest.fixture
def gpu(monkeypatch, amx):
    """A CUDA GPU with ``free`` GB free of 80 (set by calling the fixture; None: unreadable)."""
    reading = {"free": 0}

    def mem_get_info(device=None):
        if reading["free"] is None:
            raise RuntimeError("driver says no")
        return reading["free"], 80 * GIB

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)

    def set_free(gigabytes: float | None) -> None:
        reading["free"] = None if gigabytes is None else int(gigabytes * GIB)

    return set_free


def packages(monkeypatch, **present: bool) -> None:
    """Make ``importlib.util.find_spec`` find (or not) the packages named, as installed."""
    real = importlib.util.find_spec
    specs = {name: object() if found else None for name, found in present.items()}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: specs[name] if name in specs else real(name, *args),
    )


@pytest.fixture
def with_bitsandbytes(monkeypatch):
    packages(monkeypatch, bitsandbytes=True)


def codes(plan: LoadPlan) -> list[str]:
    return [part.code for part in plan.reasons]


def values(plan: LoadPlan, index: int) -> dict:
    return dict(plan.reasons[index].values)


# --- the CPU ----------------------------------------------------------------------------


def test_plenty_of_memory_on_an_amx_cpu_is_bf16(amx):
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cpu / bfloat16"
    assert plan.reason == (
        "bf16 runs natively on this CPU (AMX-BF16); needs about 5.7 GB, this machine has 20.0 GB free"
    )
    assert codes(plan) == ["plan_bf16_native", "plan_needs"]
    assert values(plan, 0) == {"feature": "AMX-BF16"}
    assert values(plan, 1)["need"] == "5.7 GB"
    where = values(plan, 1)["where"]
    assert (where.code, dict(where.values)) == ("memory_machine", {"free": "20.0 GB"})
    assert plan.alternatives == ()


def test_a_cpu_without_bf16_says_so(no_bf16):
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cpu / float32"
    assert plan.reason == (
        "fp32: this CPU has no native bf16; needs about 10.9 GB, this machine has 20.0 GB free"
    )
    assert codes(plan) == ["plan_no_bf16", "plan_needs"]


def test_a_small_model_says_why_it_stays_fp32(amx):
    small = Footprint("small", 1_000_000, 1_000, 1_000_000, 100_000, 4, "config")
    plan = plan_load("ViLT", small, memory=memory(20))
    assert plan.reason.startswith(
        "fp32: under 32 MB of weights fp32 is faster than bf16 even on AMX-BF16; needs about "
    )
    assert codes(plan) == ["plan_small_fp32", "plan_needs"]
    assert values(plan, 0) == {"size": "32 MB", "feature": "AMX-BF16"}


def test_a_requested_dtype_is_said_as_requested(amx):
    plan = plan_load("BLIP-2", BIG, dtype="float32", memory=memory(20))
    assert plan.reason.startswith("float32 as requested; needs about 10.9 GB")
    assert codes(plan) == ["plan_as_requested", "plan_needs"]
    assert values(plan, 0) == {"dtype": "float32"}


def test_int8_after_bf16_names_what_did_not_fit(amx):
    plan = plan_load("BLIP-2", BIG, memory=memory(5))
    assert plan.describe() == "cpu / int8 (float32 activations)"
    assert plan.reason == (
        "int8 weights with float32 activations (torchao); needs about 4.7 GB, this machine "
        "has 5.0 GB free (bf16 needs 5.7 GB would not fit)"
    )
    assert codes(plan) == ["plan_int8", "plan_needs", "plan_too_big"]
    assert values(plan, 0) == {"dtype": "float32"}
    assert values(plan, 2) == {"tried": "bf16 5.7 GB"}
    assert plan.alternatives == ("bf16 needs 5.7 GB",)


def test_int4_after_int8_names_both_that_did_not_fit(amx):
    int4 = LM.need_bytes(torch.bfloat16, "int4")
    plan = plan_load("BLIP-2", LM, memory=lambda: MemoryReport(int4 + MIB, 24 * GIB))
    assert plan.describe() == "cpu / int4 (bfloat16 activations)"
    assert plan.reason.startswith(
        "int4 weights for the language model (PyTorch's int4 kernel), int8 for the rest, "
        "bfloat16 activations; needs about "
    )
    assert plan.reason.endswith("(bf16 needs 5.7 GB; int8 needs 4.7 GB would not fit)")
    assert codes(plan) == ["plan_int4", "plan_needs", "plan_too_big"]
    assert values(plan, 0) == {"dtype": "bfloat16"}
    assert values(plan, 2) == {"tried": "bf16 5.7 GB, int8 4.7 GB"}
    assert plan.alternatives == ("bf16 needs 5.7 GB", "int8 needs 4.7 GB")


def test_int4_asked_of_a_model_with_nothing_to_pack_says_it_is_int8(amx):
    plan = plan_load("ViLT", BIG, quantization="int4", memory=memory(20))
    assert plan.quantization == "int4"
    assert plan.reason.startswith(
        "int4 asked for, but no layer generates text here, so int8 weights (torchao); "
    )
    assert codes(plan)[0] == "plan_int4_as_int8"


def test_auto_does_not_offer_int4_to_a_model_with_nothing_to_pack(amx):
    plan = plan_load("ViLT", BIG, memory=memory(3))
    assert not plan.fits and plan.quantization == "int8"


def test_bitsandbytes_on_the_cpu_is_said_as_such(amx):
    plan = plan_load("BLIP-2", BIG, quantization="8bit", memory=memory(20))
    assert plan.device_map == "auto" and plan.quantization == "8bit"
    assert plan.describe() == "cpu / 8bit (bfloat16 activations), device_map=auto"
    assert plan.reason.startswith("bitsandbytes; needs about ")
    assert codes(plan)[0] == "plan_bitsandbytes_cpu"
    assert values(plan, 0) == {"bits": "8bit"}


def test_a_checkpoint_that_cannot_be_measured_is_loaded_unchecked(amx):
    plan = plan_load("BLIP-2", None, memory=memory(0.1))
    assert plan.fits and plan.need is None and plan.free is None
    assert plan.reason == (
        "bf16 runs natively on this CPU (AMX-BF16); its size could not be read before "
        "loading, so it is unchecked"
    )
    assert codes(plan) == ["plan_bf16_native", "plan_unchecked"]


def test_a_container_limit_is_named_with_its_figures(amx):
    cgroup = CgroupMemory(1, "/kiosk", 8 * GIB, 6 * GIB)
    report = MemoryReport(host_available=20 * GIB, host_total=24 * GIB, cgroup=cgroup)
    plan = plan_load("BLIP-2", BIG, memory=lambda: report)
    assert plan.reason.endswith(
        "needs about 5.7 GB, this container has 6.0 GB free of its 8.0 GB limit"
    )
    where = values(plan, 1)["where"]
    assert (where.code, dict(where.values)) == (
        "memory_container",
        {"free": "6.0 GB", "limit": "8.0 GB"},
    )


def test_unreadable_memory_is_said(amx):
    plan = plan_load("BLIP-2", BIG, memory=lambda: MemoryReport(None, None))
    assert plan.fits
    assert plan.reason.endswith(
        "; needs about 5.7 GB, this machine's free memory could not be read"
    )
    assert values(plan, 1)["where"].code == "memory_unread"


# --- nothing fits ---------------------------------------------------------------------


def test_nothing_fits_names_the_smallest_and_the_ways_out(amx):
    plan = plan_load("BLIP-2", BIG, instead="--only vilt", memory=memory(2))
    assert not plan.fits and plan.placement is None and plan.quantization == "int8"
    assert plan.reason == (
        "BLIP-2 needs about 4.7 GB in int8; this machine has 2.0 GB free. Close other "
        "programs, use a larger machine, or run `--only vilt`."
    )
    assert codes(plan) == ["plan_does_not_fit", "plan_remedy_memory", "plan_remedy_instead"]
    said = values(plan, 0)
    assert (said["model"], said["need"], said["precision"]) == ("BLIP-2", "4.7 GB", "int8")
    assert values(plan, 2) == {"command": "--only vilt"}
    assert plan.alternatives == ("bf16 needs 5.7 GB", "int8 needs 4.7 GB")


def test_nothing_fits_without_another_model_has_two_ways_out(amx):
    plan = plan_load("BLIP-2", BIG, memory=memory(2))
    assert plan.reason.endswith("free. Close other programs, or use a larger machine.")
    assert codes(plan) == ["plan_does_not_fit", "plan_remedy_memory"]


def test_an_explicit_dtype_that_does_not_fit_points_back_to_auto(amx):
    plan = plan_load("BLIP-2", BIG, dtype="float32", instead="--only vilt", memory=memory(5))
    assert plan.reason == (
        "BLIP-2 needs about 10.9 GB in fp32; this machine has 5.0 GB free. Leave --dtype "
        "and --quantization on auto (int8 needs 4.7 GB), close other programs, use a larger "
        "machine, or run `--only vilt`."
    )
    assert codes(plan) == [
        "plan_does_not_fit",
        "plan_remedy_auto",
        "plan_remedy_memory",
        "plan_remedy_instead",
    ]
    assert values(plan, 1) == {"precision": "int8", "need": "4.7 GB"}


def test_explicit_int8_that_does_not_fit_has_no_auto_to_point_to(amx):
    plan = plan_load("BLIP-2", BIG, quantization="int8", memory=memory(2))
    assert "Leave --dtype" not in plan.reason
    assert codes(plan) == ["plan_does_not_fit", "plan_remedy_memory"]


def test_an_explicit_request_no_smaller_than_auto_has_no_auto_to_point_to(amx):
    # fp32 asked with int8: auto's smallest is the same int8, so "leave it on auto" would
    # not help.
    plan = plan_load("BLIP-2", BIG, dtype="float32", quantization="int8", memory=memory(2))
    assert "Leave --dtype" not in plan.reason


def test_an_unknown_quantization_lists_the_choices():
    with pytest.raises(PlacementError) as refused:
        plan_load("BLIP-2", BIG, quantization="int3", memory=memory(20))
    assert str(refused.value) == (
        "Unknown quantization 'int3'; choose one of: auto, none, int8, int4, 8bit, 4bit."
    )


# --- a GPU ------------------------------------------------------------------------------
# On the GPU fp16 weights: 5e9 + 0.4e9 (fp32 copy) + 0.5e9 + 256 MiB = 5.7 GB; int8 there
# keeps fp16 for the rest: 2e9 + 5e5 + 1e9 + 0.4e9 + 0.30005e9 + 256 MiB = 3.7 GB.


def test_plenty_on_the_gpu_is_fp16_there(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cuda / float16"
    assert plan.reason == "fp16 on the GPU; needs about 5.7 GB, this GPU has 40.0 GB free"
    assert codes(plan) == ["plan_gpu", "plan_needs"]
    assert values(plan, 0) == {"precision": "fp16"}
    assert values(plan, 1)["where"].code == "memory_gpu"


def test_int8_on_a_small_gpu_names_what_did_not_fit_there(gpu):
    gpu(4)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cuda / int8 (float16 activations)"
    assert plan.reason == (
        "int8 weight-only on the GPU (torchao; 1.44x fp16's time on an H200); needs about "
        "3.7 GB, this GPU has 4.0 GB free (on the GPU fp16 needs 5.7 GB, more than its "
        "4.0 GB free)"
    )
    assert codes(plan) == ["plan_gpu_int8", "plan_needs", "plan_gpu_too_small"]
    assert values(plan, 2) == {"tried": "fp16 5.7 GB", "free": "4.0 GB"}
    assert plan.alternatives == ("fp16 needs 5.7 GB on the GPU",)


def test_a_gpu_too_small_for_either_leaves_the_model_on_the_cpu_alone(gpu):
    gpu(2)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cpu / bfloat16"
    assert plan.reason == (
        "bf16 runs natively on this CPU (AMX-BF16); needs about 5.7 GB, this machine has "
        "20.0 GB free (on the GPU fp16 needs 5.7 GB and int8 needs 3.7 GB, more than its "
        "2.0 GB free; a split over GPU and CPU memory is used only when asked "
        "(device_map=auto): it answered 3.6x slower than the CPU alone)"
    )
    assert codes(plan) == [
        "plan_bf16_native",
        "plan_needs",
        "plan_gpu_too_small",
        "plan_split_when_asked",
    ]
    assert values(plan, 2) == {"tried": "fp16 5.7 GB, int8 3.7 GB", "free": "2.0 GB"}


def test_a_split_when_asked_counts_gpu_and_memory_together(gpu):
    gpu(4)
    plan = plan_load("BLIP-2", BIG, device_map="auto", memory=memory(20))
    assert plan.device_map == "auto" and plan.quantization == "none"
    assert plan.describe() == "cuda / float16, device_map=auto"
    assert plan.reason == (
        "fp16, spread over GPU and CPU memory as asked (device_map=auto); needs about 5.7 GB, "
        "this GPU and memory have 24.0 GB free together"
    )
    assert codes(plan) == ["plan_gpu_split", "plan_needs"]
    assert values(plan, 0) == {"precision": "fp16", "device_map": "auto"}
    assert dict(values(plan, 1)["where"].values) == {"free": "24.0 GB"}


def test_an_unreadable_gpu_is_kept_and_said_unchecked(gpu):
    gpu(None)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "cuda / float16" and plan.free is None
    assert plan.reason == (
        "fp16 on the GPU; needs about 5.7 GB, this GPU's free memory could not be read, so "
        "the fit is unchecked"
    )
    assert values(plan, 1)["where"].code == "memory_gpu_unread"


def test_bitsandbytes_comes_after_torchao_on_a_gpu(gpu, with_bitsandbytes):
    gpu(3)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert (plan.quantization, plan.device_map) == ("4bit", None)
    assert plan.reason.startswith("4bit weights on the GPU (bitsandbytes); needs about ")
    assert codes(plan)[0] == "plan_gpu_bitsandbytes" and values(plan, 0) == {"bits": "4bit"}


def test_int4_asked_for_on_a_gpu_does_not_apply_there(gpu):
    gpu(40)
    with pytest.raises(PlacementError) as refused:
        plan_load("BLIP-2", BIG, device="cuda", quantization="int4", memory=memory(20))
    assert str(refused.value) == (
        "--quantization int4 does not apply on cuda; choose one of: auto, none, int8, 8bit, 4bit."
    )


def test_bitsandbytes_asked_for_on_a_gpu_is_spread_as_needed(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, quantization="8bit", memory=memory(20))
    assert (plan.quantization, plan.device_map) == ("8bit", "auto")
    assert plan.reason.startswith("8bit weights (bitsandbytes); needs about ")
    assert codes(plan)[0] == "plan_bitsandbytes"


# --- LoadPlan.describe -------------------------------------------------------------------


@pytest.mark.parametrize("quantization", ["int8", "int4", "8bit", "4bit"])
def test_every_quantized_plan_names_its_activations(quantization):
    plan = LoadPlan("x", resolve_placement("cpu", "bfloat16"), quantization)
    assert plan.describe() == f"cpu / {quantization} (bfloat16 activations)"


def test_a_plan_that_does_not_fit_is_described_as_not_loaded():
    assert LoadPlan("x", None, "int8").describe() == "not loaded"
    assert not LoadPlan("x", None).fits


# --- quantization_config --------------------------------------------------------------


def test_no_quantization_is_no_config():
    assert quantization_config("none", torch.float32) is None


def test_an_unknown_quantization_to_load_lists_the_choices():
    with pytest.raises(ModelLoadError) as refused:
        quantization_config("auto", torch.float32)
    assert str(refused.value) == (
        "Unknown quantization 'auto'; choose one of: none, int8, int4, 8bit, 4bit."
    )


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
def test_int8_off_the_gpu_is_dynamic_activation_int8(device):
    config = quantization_config("int8", torch.float32, device)
    assert isinstance(config, TorchAoConfig)
    assert isinstance(config.quant_type, Int8DynamicActivationInt8WeightConfig)


def test_int8_on_a_gpu_is_weight_only():
    config = quantization_config("int8", torch.float16, "cuda")
    assert isinstance(config.quant_type, Int8WeightOnlyConfig)


def test_int4_packs_the_named_layers_and_leaves_the_others_int8():
    config = quantization_config("int4", torch.bfloat16, "cpu", (["lm.fc1"], ["vision.fc"]))
    assert isinstance(config, TorchAoConfig)
    assert not isinstance(config.quant_type, Int8DynamicActivationInt8WeightConfig)
    assert "lm.fc1" in repr(config.quant_type)


def test_int4_with_nothing_to_pack_is_int8():
    config = quantization_config("int4", torch.bfloat16, None, ((), ("vision.fc",)))
    assert isinstance(config.quant_type, Int8DynamicActivationInt8WeightConfig)


def test_int4_on_a_gpu_is_refused_with_the_choices_there():
    with pytest.raises(ModelLoadError) as refused:
        quantization_config("int4", torch.float16, "cuda")
    assert str(refused.value) == (
        "int4 runs on PyTorch's CPU kernel, not on cuda; choose one of: int8, 8bit, 4bit "
        "(bitsandbytes, CUDA) there, or --device cpu."
    )


@pytest.mark.parametrize("quantization", ["int8", "int4"])
def test_torchao_missing_says_how_to_install_it(monkeypatch, quantization):
    packages(monkeypatch, torchao=False)
    with pytest.raises(ModelLoadError) as refused:
        quantization_config(quantization, torch.float32)
    assert str(refused.value) == (
        f"{quantization} loading needs the torchao package; install it with "
        "`pip install torchao`, or load with --quantization none."
    )


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_bitsandbytes_missing_says_how_to_install_it(monkeypatch, quantization):
    packages(monkeypatch, bitsandbytes=False)
    with pytest.raises(ModelLoadError) as refused:
        quantization_config(quantization, torch.float16)
    assert str(refused.value) == (
        f"{quantization} loading needs the bitsandbytes package and a CUDA GPU; install it "
        "with `pip install bitsandbytes`, or load without --quantization."
    )


def test_bitsandbytes_configs_say_their_bits(with_bitsandbytes):
    eight = quantization_config("8bit", torch.float16)
    four = quantization_config("4bit", torch.bfloat16)
    assert isinstance(eight, BitsAndBytesConfig) and isinstance(four, BitsAndBytesConfig)
    assert eight.load_in_8bit and not eight.load_in_4bit
    assert four.load_in_4bit and not four.load_in_8bit
    assert four.bnb_4bit_compute_dtype == torch.bfloat16


# --- the plan's own fields, and the edges -------------------------------------------------


def test_a_plan_that_fits_carries_what_it_needs_and_what_was_free(amx):
    plan = plan_load("BLIP-2", BIG, memory=memory(5))
    need = BIG.need_bytes(torch.float32, "int8")
    assert (plan.label, plan.need, plan.free) == ("BLIP-2", need, 5 * GIB)
    assert (plan.quantization, plan.device_map) == ("int8", None)


def test_exactly_as_much_free_as_needed_fits(amx):
    need = BIG.need_bytes(torch.bfloat16)
    plan = plan_load("BLIP-2", BIG, memory=lambda: MemoryReport(need, 24 * GIB))
    assert plan.fits and plan.quantization == "none" and plan.free == need
    short = plan_load("BLIP-2", BIG, memory=lambda: MemoryReport(need - 1, 24 * GIB))
    assert short.quantization == "int8"


def test_an_unchecked_plan_keeps_what_was_asked(amx):
    plan = plan_load("BLIP-2", None, quantization="8bit", memory=memory(0.1))
    assert (plan.label, plan.quantization, plan.device_map) == ("BLIP-2", "8bit", "auto")
    assert plan.placement.device.type == "cpu"


def test_a_plan_that_does_not_fit_carries_its_figures(amx):
    plan = plan_load("BLIP-2", BIG, memory=memory(2))
    assert (plan.label, plan.need, plan.free) == (
        "BLIP-2",
        BIG.need_bytes(torch.float32, "int8"),
        2 * GIB,
    )
    where = values(plan, 0)["where"]
    assert (where.code, str(where)) == ("memory_machine", "this machine has 2.0 GB free")
    assert str(plan.reasons[1]) == "close other programs or use a larger machine"


def test_each_way_out_is_its_own_words(amx):
    plan = plan_load("BLIP-2", BIG, dtype="float32", instead="--only vilt", memory=memory(2))
    assert [str(part) for part in plan.reasons[1:]] == [
        "Leave --dtype and --quantization on auto (int8 needs 4.7 GB)",
        "close other programs or use a larger machine",
        "run `--only vilt`",
    ]


def test_an_explicit_int8_is_pointed_to_a_smaller_int4_under_auto(amx):
    int4 = LM.need_bytes(torch.bfloat16, "int4")
    plan = plan_load("BLIP-2", LM, quantization="int8", memory=memory(2))
    assert not plan.fits
    assert f"Leave --dtype and --quantization on auto (int4 needs {int4 / GIB:.1f} GB)" in (
        plan.reason
    )
    assert values(plan, 1)["precision"] == "int4"


def test_an_explicit_float_is_pointed_to_int4_where_the_model_packs_it(amx):
    plan = plan_load("BLIP-2", LM, dtype="float32", memory=memory(2))
    assert values(plan, 1)["precision"] == "int4"


def test_auto_points_to_what_auto_would_load_on_the_device_asked_for(gpu):
    # On the CPU, as asked: its int8 (4.7 GB), not the GPU's (3.7 GB).
    gpu(40)
    plan = plan_load("BLIP-2", BIG, device="cpu", dtype="float32", memory=memory(2))
    assert plan.reason.startswith("BLIP-2 needs about 10.9 GB in fp32; ")
    assert values(plan, 1) == {"precision": "int8", "need": "4.7 GB"}


@pytest.mark.parametrize(
    ("params", "dtype"),
    [(SMALL := fit_module.SMALL_MODEL_BYTES // 4, torch.bfloat16), (SMALL - 1, torch.float32)],
    ids=["at-the-line", "under-it"],
)
def test_the_small_model_line_is_drawn_at_its_size_in_fp32(amx, params, dtype):
    footprint = Footprint("edge", params, 1, 0, 1, 4, "config")
    assert plan_load("ViLT", footprint, memory=memory(20)).placement.dtype == dtype


def test_a_model_of_many_weights_is_not_small(amx):
    footprint = Footprint("mid", 16 * 1024**2, 1_000, 0, 1, 4, "config")  # 64 MB in fp32
    assert plan_load("ViLT", footprint, memory=memory(20)).placement.dtype == torch.bfloat16


def test_one_packed_weight_is_enough_to_offer_int4(amx):
    # No group counted, so that one weight's int4 bytes (a 4-byte base) stay under its int8
    # bytes (1 + 5); with a group's 5 bytes int4 would not be the smaller one.
    one = Footprint(
        "one", 1_000, 10, 10, 100, 4, "config", int4_params=1, int4_rows=1, int4_groups=0
    )
    int8 = one.need_bytes(torch.float32, "int8")
    plan = plan_load("BLIP-2", one, memory=lambda: MemoryReport(int8 - 1, 24 * GIB))
    assert plan.quantization == "int4"


def test_int8_with_an_explicit_float_computes_in_it(amx):
    plan = plan_load("BLIP-2", BIG, dtype="bfloat16", quantization="int8", memory=memory(20))
    assert plan.describe() == "cpu / int8 (bfloat16 activations)"


def test_4bit_on_the_cpu_is_bitsandbytes_spread_as_needed(amx):
    plan = plan_load("BLIP-2", BIG, quantization="4bit", memory=memory(20))
    assert (plan.quantization, plan.device_map) == ("4bit", "auto")
    assert values(plan, 0) == {"bits": "4bit"}


# --- the CPU's choices while a GPU is present -------------------------------------------
# With a GPU present an unnamed device means the GPU: each CPU choice must name the CPU.


def test_behind_a_full_gpu_a_cpu_without_bf16_loads_fp32_on_the_cpu(gpu, monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: None)
    gpu(0.5)
    assert plan_load("BLIP-2", BIG, memory=memory(20)).describe() == "cpu / float32"


def test_behind_a_full_gpu_a_small_model_loads_fp32_on_the_cpu(gpu):
    gpu(0)
    small = Footprint("small", 1_000_000, 1_000, 1_000_000, 100_000, 4, "config")
    plan = plan_load("ViLT", small, memory=memory(20))
    assert plan.describe() == "cpu / float32"
    assert "more than its 0.0 GB free" in plan.reason


def test_behind_a_full_gpu_int8_loads_on_the_cpu(gpu):
    gpu(0.5)
    plan = plan_load("BLIP-2", BIG, memory=memory(5))
    assert plan.describe() == "cpu / int8 (float32 activations)"


def test_the_cpu_asked_for_by_name_with_a_gpu_present(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, device="cpu", dtype="float32", memory=memory(20))
    assert plan.describe() == "cpu / float32"


def test_no_quantization_on_a_gpu_is_fp16_there(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, quantization="none", memory=memory(20))
    assert plan.describe() == "cuda / float16"


def test_int8_asked_for_on_a_gpu_is_weight_only_there(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, quantization="int8", memory=memory(20))
    assert plan.describe() == "cuda / int8 (float16 activations)"
    assert codes(plan)[0] == "plan_gpu_int8"


def test_4bit_asked_for_on_a_gpu_is_bitsandbytes_spread_as_needed(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, quantization="4bit", memory=memory(20))
    assert (plan.placement.device.type, plan.quantization, plan.device_map) == (
        "cuda",
        "4bit",
        "auto",
    )
    assert values(plan, 0) == {"bits": "4bit"}


def test_without_torchao_bitsandbytes_offers_8bit_then_4bit_on_a_gpu(gpu, monkeypatch):
    packages(monkeypatch, bitsandbytes=True, torchao=False)
    gpu(40)
    roomy = plan_load("BLIP-2", BIG, quantization="auto", memory=memory(20))
    assert roomy.describe() == "cuda / float16"
    gpu(4)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert (plan.quantization, plan.device_map) == ("8bit", None)
    assert plan.alternatives == ("fp16 needs 5.7 GB on the GPU",)
    gpu(3)  # 8-bit's 3.7 GB does not fit; 4-bit's half-byte weights do
    smaller = plan_load("BLIP-2", BIG, memory=memory(20))
    assert (smaller.quantization, smaller.placement.device.type) == ("4bit", "cuda")


def test_with_torchao_bitsandbytes_offers_only_4bit_after_it(gpu, with_bitsandbytes):
    gpu(3)
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.alternatives == ("fp16 needs 5.7 GB on the GPU", "int8 needs 3.7 GB on the GPU")


def test_a_split_with_unreadable_host_memory_counts_the_gpu_alone(gpu):
    gpu(8)
    plan = plan_load("BLIP-2", BIG, device_map="auto", memory=lambda: MemoryReport(None, None))
    assert plan.free == 8 * GIB
    where = values(plan, 1)["where"]
    assert (where.code, dict(where.values)) == ("memory_gpu_and_host", {"free": "8.0 GB"})


def test_the_gpu_sentence_carries_its_free_memory(gpu):
    gpu(40)
    where = values(plan_load("BLIP-2", BIG, memory=memory(20)), 1)["where"]
    assert (where.code, dict(where.values)) == ("memory_gpu", {"free": "40.0 GB"})


# --- MPS ---------------------------------------------------------------------------------


@pytest.fixture
def mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


def test_mps_by_default_is_fp16_there(mps):
    plan = plan_load("BLIP-2", BIG, memory=memory(20))
    assert plan.describe() == "mps / float16" and plan.quantization == "none"
    assert plan.reason.startswith("float16 on MPS; needs about ")
    assert codes(plan) == ["plan_mps", "plan_needs"] and values(plan, 0) == {"dtype": "float16"}


def test_mps_takes_the_dtype_and_spread_asked_for(mps):
    plan = plan_load("BLIP-2", BIG, dtype="float32", device_map="auto", memory=memory(20))
    assert plan.describe() == "mps / float32, device_map=auto"
    assert values(plan, 0) == {"dtype": "float32"}


def test_a_numbered_gpu_keeps_its_number(gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    gpu(40)
    plan = plan_load("BLIP-2", BIG, device="cuda:1", memory=memory(20))
    assert plan.placement.device == torch.device("cuda:1")


def test_a_float_asked_for_on_a_gpu_is_used_there(gpu):
    gpu(40)
    plan = plan_load("BLIP-2", BIG, dtype="float32", memory=memory(20))
    assert plan.describe() == "cuda / float32"
    assert values(plan, 0) == {"precision": "fp32"}


@pytest.mark.parametrize("quantization", ["int8", "int4", "8bit", "4bit"])
def test_a_quantization_asked_for_on_mps_is_refused_not_ignored(mps, quantization):
    with pytest.raises(PlacementError) as refused:
        plan_load("BLIP-2", BIG, quantization=quantization, memory=memory(20))
    assert str(refused.value) == (
        f"--quantization {quantization} does not apply on mps; choose one of: auto, none."
    )


def test_no_quantization_on_mps_is_its_float(mps):
    assert plan_load("BLIP-2", BIG, quantization="none", memory=memory(20)).fits


def test_on_mps_asked_for_by_name_beside_a_gpu_the_refusal_names_mps(gpu, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    gpu(40)
    with pytest.raises(PlacementError) as refused:
        plan_load("BLIP-2", BIG, device="mps", quantization="int8", memory=memory(20))
    assert str(refused.value) == (
        "--quantization int8 does not apply on mps; choose one of: auto, none."
    )
