"""Fit before loading: counting a checkpoint, choosing a placement, refusing with a sentence."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import Blip2ForConditionalGeneration, ViltForQuestionAnswering

from tests.doubles import parameter_bytes
from vqa_core import PlacementError, ViltAnswerer, load_services
from vqa_core import fit as fit_module
from vqa_core.fit import Footprint, measure_checkpoint, plan_load
from vqa_core.memory import GIB, MemoryReport, format_gb


def fixed_memory(free: int):
    return lambda: MemoryReport(host_available=free, host_total=24 * GIB)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: None)


def loaded_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(quantizable linear weights, all parameters) of a loaded model, counted directly."""
    output = model.get_output_embeddings()
    last = list(model.named_parameters())[-1][0].rsplit(".", 1)[0]
    kept = tuple(model._keep_in_fp32_modules or ())  # BLIP-2's Q-Former is never quantized
    linear = sum(
        module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and module is not output
        and name != last
        and not name.startswith(kept)
    )
    return linear, sum(p.numel() for p in model.parameters())


def test_int8_footprint_matches_what_torchao_stores(tiny_blip2_dir):
    """The int8 weight bytes counted before loading are the bytes the loaded model holds."""

    from vqa_core.blip2 import load_blip2
    from vqa_core.placement import resolve_placement

    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    model, _, _ = load_blip2(
        str(tiny_blip2_dir), placement=resolve_placement("cpu", "float32"), quantization="int8"
    )
    held = parameter_bytes(model)
    assert footprint.weight_bytes(torch.float32, "int8") == held


@pytest.mark.parametrize(
    ("fixture", "model_class"),
    [
        ("tiny_blip2_dir", Blip2ForConditionalGeneration),
        ("tiny_vilt_dir", ViltForQuestionAnswering),
    ],
)
def test_counts_match_the_loaded_model(request, fixture, model_class):
    folder = request.getfixturevalue(fixture)
    footprint = measure_checkpoint(str(folder), model_class)
    assert footprint is not None and footprint.counted_from == "config"
    linear, total = loaded_counts(model_class.from_pretrained(folder))
    assert footprint.params == total
    assert footprint.linear_params == linear
    assert footprint.stored_bytes == 4


def test_sharded_headers_count_every_parameter(tiny_blip2_dir, tmp_path):
    model = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir)
    model.save_pretrained(tmp_path, max_shard_size="200KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    # Without a model class only the safetensors headers are read.
    footprint = measure_checkpoint(str(tmp_path))
    assert footprint is not None and footprint.counted_from == "safetensors headers"
    assert footprint.params == sum(p.numel() for p in model.parameters())


def test_bf16_checkpoint_is_seen_as_two_bytes(tiny_vilt_dir, tmp_path):
    ViltForQuestionAnswering.from_pretrained(tiny_vilt_dir, dtype=torch.bfloat16).save_pretrained(
        tmp_path
    )
    footprint = measure_checkpoint(str(tmp_path))
    assert footprint is not None and footprint.stored_bytes == 2


def test_nothing_readable_is_none(tmp_path):
    assert measure_checkpoint(str(tmp_path / "missing"), ViltForQuestionAnswering) is None


# A BLIP-2-sized footprint: 3.6 B linear weights, 0.14 B others, a 129 M-row embedding.
BIG = Footprint("big", 3_600_000_000, 400_000, 140_000_000, 128_700_000, 4, "config")


def needs(dtype: torch.dtype, quantization: str = "none") -> int:
    return BIG.need_bytes(dtype, quantization)


def test_int8_needs_about_half_of_bf16():
    assert needs(torch.float32, "int8") < 0.6 * needs(torch.bfloat16)
    assert needs(torch.bfloat16) < 0.55 * needs(torch.float32)


def test_plenty_of_memory_picks_bf16_where_native(native_bf16):
    plan = plan_load("BLIP-2", BIG, memory=fixed_memory(20 * GIB))
    assert plan.fits and plan.placement.dtype == torch.bfloat16 and plan.quantization == "none"
    assert "natively" in plan.reason and "AMX-BF16" in plan.reason


def test_a_small_model_stays_fp32_where_bf16_is_native(native_bf16, tiny_vilt_dir):
    # Measured: the demo models answer faster in fp32 than in bf16 on this AMX CPU.
    small = measure_checkpoint(str(tiny_vilt_dir), ViltForQuestionAnswering)
    plan = plan_load("ViLT", small, memory=fixed_memory(20 * GIB))
    assert plan.fits and plan.placement.dtype == torch.float32
    assert "fp32 is faster than bf16" in plan.reason


def test_without_native_bf16_fp32_comes_first(no_native_bf16):
    plan = plan_load("BLIP-2", BIG, memory=fixed_memory(20 * GIB))
    assert plan.fits and plan.placement.dtype == torch.float32 and plan.quantization == "none"


def test_int8_when_only_int8_fits(native_bf16):
    free = (needs(torch.float32, "int8") + needs(torch.bfloat16)) // 2
    plan = plan_load("BLIP-2", BIG, memory=fixed_memory(free))
    assert plan.fits and plan.quantization == "int8"
    assert plan.placement.dtype == torch.float32  # torchao's fast CPU path
    assert plan.describe() == "cpu / int8 (float32 activations)"
    assert "would not fit" in plan.reason and "bf16 needs" in plan.reason


def test_nothing_fits_is_one_sentence_and_no_placement(native_bf16):
    free = needs(torch.float32, "int8") - GIB
    plan = plan_load("BLIP-2", BIG, instead="--only vilt", memory=fixed_memory(free))
    assert not plan.fits and plan.placement is None
    assert plan.reason == (
        f"BLIP-2 needs about {format_gb(needs(torch.float32, 'int8'))} in int8; "
        f"this machine has {format_gb(free)} free. "
        "Close other programs, use a larger machine, or run `--only vilt`."
    )


def test_the_sentence_names_the_container_limit(native_bf16):
    from vqa_core.memory import CgroupMemory

    cgroup = CgroupMemory(1, "/kiosk", 4 * GIB, 3 * GIB)
    report = MemoryReport(host_available=20 * GIB, host_total=24 * GIB, cgroup=cgroup)
    plan = plan_load("BLIP-2", BIG, memory=lambda: report)
    assert "this container has 3.0 GB free of its 4.0 GB limit" in plan.reason


def test_explicit_dtype_is_honoured_or_refused_with_the_way_out(native_bf16):
    free = (needs(torch.float32, "int8") + needs(torch.bfloat16)) // 2
    plan = plan_load(
        "BLIP-2", BIG, dtype="float32", instead="--only vilt", memory=fixed_memory(free)
    )
    assert not plan.fits
    assert plan.reason.startswith(f"BLIP-2 needs about {format_gb(needs(torch.float32))} in fp32")
    assert "Leave --dtype and --quantization on auto (int8 needs" in plan.reason
    roomy = plan_load("BLIP-2", BIG, dtype="float32", memory=fixed_memory(40 * GIB))
    assert roomy.fits and roomy.placement.dtype == torch.float32


def test_explicit_int8_and_none(native_bf16):
    roomy = fixed_memory(40 * GIB)
    assert plan_load("BLIP-2", BIG, quantization="int8", memory=roomy).quantization == "int8"
    tight = fixed_memory((needs(torch.float32, "int8") + needs(torch.bfloat16)) // 2)
    assert not plan_load("BLIP-2", BIG, quantization="none", memory=tight).fits


def test_unknown_quantization_lists_the_choices():
    with pytest.raises(PlacementError, match="auto, none, int8, int4, 8bit, 4bit"):
        plan_load("BLIP-2", BIG, quantization="int3", memory=fixed_memory(GIB))


def test_blip2_that_cannot_fit_is_never_loaded(tiny_vilt_dir, tiny_blip2_dir, monkeypatch):
    from vqa_core import services as services_module

    blip2 = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    smallest = min(blip2.need_bytes(torch.bfloat16), blip2.need_bytes(torch.float32, "int8"))
    # ViLT is planned first and finds room; what is left after it is too little for BLIP-2.
    readings = iter([20 * GIB, smallest - 1])

    def memory():
        return MemoryReport(host_available=next(readings), host_total=24 * GIB)

    def refuse(*args, **kwargs):
        raise AssertionError("BLIP-2 was loaded although it cannot fit")

    monkeypatch.setattr(services_module.Blip2Answerer, "from_pretrained", refuse)
    services = load_services(str(tiny_vilt_dir), str(tiny_blip2_dir), memory=memory)
    assert services.vilt is not None and services.vilt_error is None
    assert services.blip2 is None
    assert services.blip2_error == services.blip2_plan.reason
    assert services.blip2_error.startswith("BLIP-2 needs about ")
    assert services.blip2_error.endswith("or run `--only vilt`.")
    lines = services.plan_lines()
    assert lines[0].startswith("ViLT: cpu / ") and lines[1].startswith("BLIP-2: not loaded: ")


def test_int8_load_quantizes_the_linear_layers_and_answers(tiny_vilt_dir, easy_vqa_sample):
    from torchao.utils import TorchAOBaseTensor

    answerer = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", quantization="int8")
    quantized = [
        m
        for m in answerer.model.modules()
        if isinstance(getattr(m, "weight", None), TorchAOBaseTensor)
    ]
    assert quantized, "no layer was quantized"
    paths, questions, _ = easy_vqa_sample
    result = answerer.answer(paths[0], questions[0])
    assert result.answers and 0.0 <= result.answers[0][1] <= 1.0


def test_cli_takes_int8_and_reports_the_plan(tiny_vilt_dir, easy_vqa_sample, capsys):
    from vqa_core.cli import main

    paths, questions, _ = easy_vqa_sample
    code = main(
        [
            "--image",
            paths[0],
            "--question",
            questions[0],
            "--vilt",
            str(tiny_vilt_dir),
            "--only",
            "vilt",
            "--quantization",
            "int8",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["vilt"]["placement"].startswith("cpu / int8")
    assert "needs about" in report["vilt"]["why"]
