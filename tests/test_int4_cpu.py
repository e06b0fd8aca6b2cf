"""Int4 on CPU: the language model's layers packed for PyTorch's int4 kernel as they load,
the planner's bytes and choice, and both models answering where only int4 fits."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import replace

import pytest
import torch
from cgroup_limits import run_app_models, unavailable_reason
from transformers import Blip2ForConditionalGeneration, ViltForQuestionAnswering

from tests.doubles import parameter_bytes
from vqa_core import Blip2Answerer, ViltAnswerer, int4_cpu
from vqa_core import fit as fit_module
from vqa_core.fit import Footprint, measure_checkpoint, plan_load
from vqa_core.int4_cpu import (
    Int4CpuLinear,
    int4_group_size,
    quantize_groups,
    quantize_linear_int4,
)
from vqa_core.int8_cpu import Int8CpuLinear
from vqa_core.memory import GIB, MemoryReport, format_gb


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


def reference_dequantized(weight: torch.Tensor, group: int) -> torch.Tensor:
    """4-bit min/max quantization per group of input columns, written here from its
    definition, not from the code under test: a group's step is the smallest multiple (1 to
    16) of its row's base that covers the group's range in 15 steps, the base being the
    smallest ``m * 2**e`` (``m`` from 4 to 8) that is a sixteenth of the row's widest such
    range or more; code = round((w - zero) / step) + 8, w' = zero + (code - 8) * step, with
    the zero (min + 8 steps) rounded to bf16 as the kernel stores it."""
    rows, columns = weight.shape
    out = torch.empty(rows, columns)
    for row in range(rows):
        groups = weight[row].float().reshape(columns // group, group)
        low = groups.amin(-1)
        wanted = [max(float(r) / 15, 1e-8) for r in groups.amax(-1) - low]
        least = max(wanted) / 16
        exponent = math.floor(math.log2(least))
        base = next(
            m * 2.0 ** (exponent - 2) for m in range(4, 9) if m * 2.0 ** (exponent - 2) >= least
        )
        for g, values in enumerate(groups):
            step = base * min(16, max(1, math.ceil(wanted[g] / base)))
            zero = float(torch.tensor(float(low[g]) + 8 * step).to(torch.bfloat16))
            codes = torch.clamp(torch.round((values - zero) / step) + 8, 0, 15)
            out[row, g * group : (g + 1) * group] = zero + (codes - 8) * step
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 4, 44])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("outputs", [96, 128])
def test_int4_layer_against_the_float_layer_and_a_dequantized_product(bias, rows, dtype, outputs):
    # 44 rows of 128 outputs take the int8 route (MANY_ROWS); 96 outputs (not whole blocks
    # of 64) and fewer rows take the int4 kernel.
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, outputs, bias=bias)
    packed = quantize_linear_int4(layer, "test layer")
    assert isinstance(packed, Int4CpuLinear) and packed.group_size == 128
    assert packed.unpacks == (outputs % 64 == 0)
    x = torch.randn(2, rows, 256)  # 3-D, as the models call their layers
    with torch.inference_mode():
        given = x.to(dtype)
        before = given.clone()
        got = packed(given)
        want_float = layer(x)
        reference = x @ reference_dequantized(layer.weight, 128).t()
        if bias:
            reference = reference + layer.bias
    assert got.shape == (2, rows, outputs) and got.dtype == dtype
    assert torch.equal(given, before), "the input was changed in place"
    # The kernel computes what the dequantized weights compute, up to bf16 rounding (and the
    # odd weight on a rounding boundary getting the neighbouring code) ...
    assert relative_error(got, reference) < 0.02
    # ... and 4 bits per weight are about 10 % from the float layer on Gaussian weights
    # (as measured for the kernel alone); far more would mean a wrong layout or scale.
    assert 0.02 < relative_error(got, want_float) < 0.15


def test_the_float_comparison_catches_a_wrong_scale():
    # The check above must be able to fail: the same layer with its scales negated is far off.
    torch.manual_seed(1)
    layer = torch.nn.Linear(128, 32)
    packed = quantize_linear_int4(layer)
    packed.scales_and_zeros = packed.scales_and_zeros * torch.tensor([-1.0, 1.0]).bfloat16()
    x = torch.randn(3, 128)
    with torch.inference_mode():
        assert relative_error(packed(x), layer(x)) > 0.5


def test_many_rows_take_the_int8_route_and_agree_with_the_kernel(monkeypatch):
    torch.manual_seed(2)
    layer = torch.nn.Linear(512, 192)
    packed = quantize_linear_int4(layer)
    x = torch.randn(int4_cpu.MANY_ROWS, 512)

    def refuse(*args):
        raise AssertionError("the int4 kernel ran for many rows")

    with torch.inference_mode():
        monkeypatch.setattr(int4_cpu, "MANY_ROWS", 10**6)
        on_kernel = packed(x)
        monkeypatch.undo()
        monkeypatch.setattr(torch, "_weight_int4pack_mm_for_cpu", refuse)
        routed = packed(x)
        reference = x @ reference_dequantized(layer.weight, 128).t() + layer.bias
    # The same weights; the activations quantized to int8 rather than bf16: about 1 % apart,
    # where a row sent to the wrong output, a wrong base or a missing zero is 100 % or more.
    assert relative_error(routed, on_kernel) < 0.02
    assert relative_error(routed, reference) < 0.02


def test_the_int8_route_unpacks_each_weight_to_its_code_times_its_multiplier():
    torch.manual_seed(3)
    weight = torch.randn(192, 256) * torch.rand(192, 1)  # rows of different widths
    codes, multipliers, _, _ = quantize_groups(weight, 64)
    packed = Int4CpuLinear.from_weight(weight, None, 64)
    want = ((codes - 8) * multipliers.int().repeat_interleave(64, dim=1)).to(torch.int8)
    # Each block of 64 outputs gives its rows 0-31 (low nibbles) first, then 32-63.
    assert int4_cpu.route_order(128).tolist() == [
        *range(0, 32), *range(64, 96), *range(32, 64), *range(96, 128)
    ]  # fmt: skip
    order = int4_cpu.route_order(192)
    assert torch.equal(packed.int8_weight(), want[order].t())


def test_group_steps_are_exact_in_bf16_cover_their_group_and_fit_int8():
    torch.manual_seed(4)
    # Each row's 8 groups span a thousandfold range of widths.
    weight = torch.randn(64, 1024) * torch.logspace(-3, 0, 8).repeat_interleave(128)
    _, multipliers, bases, _ = quantize_groups(weight, 128)
    steps = multipliers.float() * bases.unsqueeze(1)
    assert torch.equal(steps.to(torch.bfloat16).float(), steps)  # what the kernel reads
    groups = weight.reshape(64, 8, 128)
    wanted = (groups.amax(-1) - groups.amin(-1)) / 15
    assert bool((steps >= wanted * (1 - 1e-6)).all()), "a group's codes would clip"
    assert int(multipliers.min()) >= 1 and int(multipliers.max()) <= 16  # 16 * (code - 8) fits
    # The widest group of a row gets nearly its own step (a multiplier of 13 to 16).
    widest = wanted.argmax(1, keepdim=True)
    assert bool((steps.gather(1, widest) <= wanted.gather(1, widest) * 1.1).all())


def test_each_thread_unpacks_into_its_own_buffer():
    # Streaming generates in a thread while another request may run: one shared buffer would
    # let one layer's weights overwrite another's mid-product.
    held = []
    done = threading.Event()

    def grab():
        held.append(int4_cpu._buffer(4096))
        done.set()

    worker = threading.Thread(target=grab)
    worker.start()
    done.wait(10)
    held.append(int4_cpu._buffer(4096))
    worker.join()
    assert held[0].data_ptr() != held[1].data_ptr()
    assert int4_cpu._buffer(4096).data_ptr() == held[1].data_ptr()  # and keeps it


def test_the_int8_route_runs_in_and_out_of_inference_mode():
    # A buffer first made under inference mode could not be written outside it afterwards.
    torch.manual_seed(6)
    layer = quantize_linear_int4(torch.nn.Linear(256, 128))
    x = torch.randn(64, 256)
    int4_cpu._buffers.__dict__.clear()
    with torch.inference_mode():
        inside = layer(x)
    with torch.no_grad():
        outside = layer(x)
    assert torch.equal(inside, outside)


def test_an_unknown_packing_layout_keeps_many_rows_on_the_kernel(monkeypatch, caplog):
    real = int4_cpu._unpack_int8
    monkeypatch.setattr(int4_cpu, "_unpack_int8", lambda *args: real(*args).flip(0))
    int4_cpu._layout_is_known.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="vqa_core.int4_cpu"):
            torch.manual_seed(5)
            layer = torch.nn.Linear(256, 128)
            packed = quantize_linear_int4(layer)
        assert not packed.unpacks
        assert "layout vqa_core.int4_cpu does not read" in caplog.text
        x = torch.randn(64, 256)
        with torch.inference_mode():
            reference = x @ reference_dequantized(layer.weight, 128).t() + layer.bias
            assert relative_error(packed(x), reference) < 0.02
    finally:
        int4_cpu._layout_is_known.cache_clear()


@pytest.mark.parametrize(("columns", "rows"), [(40, 32), (128, 40), (100, 48)])
def test_odd_widths_fall_back_to_int8_and_say_so(columns, rows, caplog):
    assert int4_group_size(columns, rows) is None
    torch.manual_seed(0)
    layer = torch.nn.Linear(columns, rows)
    with caplog.at_level(logging.WARNING, logger="vqa_core.int4_cpu"):
        kept = quantize_linear_int4(layer, "odd layer")
    assert isinstance(kept, Int8CpuLinear)
    assert f"odd layer ({columns} -> {rows}) stays in int8" in caplog.text
    x = torch.randn(2, 3, columns)
    with torch.inference_mode():
        assert relative_error(kept(x), layer(x)) < 0.03


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantizing_a_block_of_rows_at_a_time_changes_no_code(dtype, monkeypatch):
    # A load packs a layer a block of rows at a time to bound its temporaries; the codes,
    # scales and zeros are those of the whole layer at once, whatever the block, and the
    # weight (a view of the mapped checkpoint while loading) is never written to.
    torch.manual_seed(0)
    weight = torch.randn(48, 256).to(dtype)
    before = weight.clone()
    whole = quantize_groups(weight, 64)
    for block in (256, 5 * 256, 256 + 1, 1):  # one row, five, one (rounded down), one
        monkeypatch.setattr(int4_cpu, "CHUNK_ELEMENTS", block)
        for got, want in zip(quantize_groups(weight, 64), whole, strict=True):
            assert got.dtype == want.dtype and torch.equal(got, want)
    assert torch.equal(weight, before)
    codes = whole[0]
    assert codes.dtype == torch.int32 and int(codes.min()) >= 0 and int(codes.max()) <= 15


def test_group_sizes_the_kernel_takes():
    assert int4_group_size(2560, 10240) == 128  # OPT-2.7B
    assert int4_group_size(96, 48) == 32
    assert int4_group_size(2560, 50272) == 128
    assert int4_group_size(2560, 50) is None  # rows not a multiple of 16


def _language_model_linears(model: torch.nn.Module) -> list[torch.nn.Module]:
    decoder = model.language_model.get_decoder()
    return [m for m in decoder.modules() if isinstance(m, (torch.nn.Linear, Int4CpuLinear))]


def test_an_int4_load_runs_every_language_model_layer_on_the_int4_kernel(
    tiny_blip2_dir, tiny_vilt_dir, easy_vqa_sample
):
    paths, questions, _ = easy_vqa_sample
    blip2 = Blip2Answerer.from_pretrained(str(tiny_blip2_dir), device="cpu", quantization="int4")
    layers = _language_model_linears(blip2.model)
    assert layers and all(isinstance(m, Int4CpuLinear) for m in layers)
    assert blip2.model.int4_report.int4 == len(layers)
    assert blip2.model.int4_report.fallback == ()
    # The image encoder keeps int8 (fastest for its many rows), the Q-Former its fp32.
    vision = [m for m in blip2.model.vision_model.modules() if isinstance(m, torch.nn.Linear)]
    assert vision and all(isinstance(m, Int8CpuLinear) for m in vision)
    assert not any(isinstance(m, Int4CpuLinear) for m in blip2.model.qformer.modules())
    # Every packed layer is really called while answering.
    called: set[int] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: called.add(id(m))) for m in layers]
    answer = blip2.answer(paths[0], questions[0], max_new_tokens=3).answer
    for hook in hooks:
        hook.remove()
    assert isinstance(answer, str) and called == {id(m) for m in layers}
    # ViLT does not generate: int4 packs none of its layers and it loads as int8 does.
    vilt = ViltAnswerer.from_pretrained(str(tiny_vilt_dir), device="cpu", quantization="int4")
    assert not any(isinstance(m, Int4CpuLinear) for m in vilt.model.modules())
    assert any(isinstance(m, Int8CpuLinear) for m in vilt.model.modules())
    assert vilt.answer(paths[0], questions[0]).answers


def test_under_bf16_the_int8_image_encoder_computes_in_fp32(tiny_blip2_dir, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    blip2 = Blip2Answerer.from_pretrained(
        str(tiny_blip2_dir), device="cpu", dtype="bfloat16", quantization="int4"
    )
    vision = blip2.model.vision_model
    linears = [m for m in vision.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, Int8CpuLinear) for m in linears)
    assert all(m.weight.qdata.dtype == torch.int8 for m in linears)  # not widened
    floats = [
        p for m in vision.modules() if not isinstance(m, Int8CpuLinear)
        for p in m.parameters(recurse=False)
    ]  # fmt: skip
    assert floats and all(p.dtype == torch.float32 for p in floats)
    assert blip2.pixel_dtype == torch.float32
    # The rest keeps the planned type: the language model's embeddings, the Q-Former.
    embeddings = blip2.model.language_model.get_input_embeddings().weight
    assert embeddings.dtype == torch.bfloat16
    assert next(blip2.model.qformer.parameters()).dtype == torch.bfloat16
    assert isinstance(blip2.answer(paths[0], questions[0], max_new_tokens=3).answer, str)


@pytest.fixture(scope="module")
def odd_blip2_dir(tmp_path_factory, easy_vqa_texts):
    from train.builders import Blip2Size, build_blip2

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts
    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    # fc1 has 40 output rows and fc2 40 input columns: neither fits the kernel.
    model, processor = build_blip2(texts, Blip2Size(text_ffn_dim=40))
    folder = tmp_path_factory.mktemp("odd-blip2")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_a_loaded_model_with_odd_widths_keeps_them_in_int8_and_counts_them(
    odd_blip2_dir, easy_vqa_sample, caplog
):
    paths, questions, _ = easy_vqa_sample
    with caplog.at_level(logging.WARNING):
        blip2 = Blip2Answerer.from_pretrained(str(odd_blip2_dir), device="cpu", quantization="int4")
    report = blip2.model.int4_report
    decoder = blip2.model.language_model.get_decoder()
    for index, layer in enumerate(decoder.layers):
        assert isinstance(layer.fc1, Int8CpuLinear) and isinstance(layer.fc2, Int8CpuLinear)
        assert isinstance(layer.self_attn.q_proj, Int4CpuLinear)
        assert f"layers.{index}.fc1 stays in int8" in caplog.text
    assert len(report.fallback) == 2 * len(decoder.layers)
    assert report.int4 == 4 * len(decoder.layers)
    assert "in int8 (widths the int4 kernel cannot take)" in report.describe()
    assert isinstance(blip2.answer(paths[0], questions[0], max_new_tokens=3).answer, str)


def test_int4_footprint_matches_what_the_load_holds(tiny_blip2_dir):
    """The int4 bytes counted before loading are the bytes the loaded model holds."""

    from vqa_core.blip2 import load_blip2
    from vqa_core.placement import resolve_placement

    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    assert footprint.int4_params > 0 and footprint.int4_groups > 0
    model, _, _ = load_blip2(
        str(tiny_blip2_dir), placement=resolve_placement("cpu", "float32"), quantization="int4"
    )
    held = parameter_bytes(model)
    held += sum(b.numel() * b.element_size() for b in model.buffers() if b is not None)
    held -= sum(  # buffers that are not weights (position ids and the like)
        b.numel() * b.element_size()
        for m in model.modules()
        if not isinstance(m, Int4CpuLinear)
        for b in m.buffers(recurse=False)
    )
    assert footprint.weight_bytes(torch.float32, "int4") == held
    assert footprint.weight_bytes(torch.float32, "int4") < footprint.weight_bytes(
        torch.float32, "int8"
    )


# OPT-2.7B-like counts: 2.45 G language-model weights in groups of 128, 1 G in the encoder.
BIG = Footprint(
    "big",
    3_440_000_000,
    400_000,
    300_000_000,
    128_700_000,
    4,
    "config",
    int4_params=2_450_000_000,
    int4_rows=250_000,
    int4_groups=2_450_000_000 // 128,
)


def fixed_memory(free: int):
    return lambda: MemoryReport(host_available=free, host_total=24 * GIB)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")


def test_int4_bytes_are_counted_from_its_parts():
    int8 = BIG.weight_bytes(torch.bfloat16, "int8")
    int4 = BIG.weight_bytes(torch.bfloat16, "int4")
    # Half a byte per packed weight, 5 bytes per group (scale, zero, multiplier) and 4 per
    # row (base) instead of int8's 5 per row.
    saved = BIG.int4_params // 2 - 5 * BIG.int4_groups - 4 * BIG.int4_rows + 5 * BIG.int4_rows
    assert int8 - int4 == saved


def test_int4_counts_its_own_loading_transient_not_a_copy_of_the_largest_tensor():
    # OPT-2.7B's fc1 / fc2 (2560 x 10240) are the largest layers packed, ViT-g's MLP
    # (1408 x 6144) the largest left to int8; the embeddings (128.7 M) are the largest tensor.
    opt = replace(BIG, int4_largest=26_214_400, int8_largest=8_650_752)
    chunk = 2 * 4 * 2**22  # one block of two fp32 temporaries while packing
    # bf16 activations: the layer's bf16 copy (2) + int32 codes and packing (6) per weight.
    assert opt.int4_load_transient(torch.bfloat16) == 8 * 26_214_400 + chunk
    # fp32 activations: a 4-byte copy instead.
    assert opt.int4_load_transient(torch.float32) == 10 * 26_214_400 + chunk
    weights = opt.weight_bytes(torch.bfloat16, "int4")
    margin = 256 * 2**20 + weights / 10
    assert opt.need_bytes(torch.bfloat16, "int4") == int(weights + 8 * 26_214_400 + chunk + margin)
    # int8 and the floats keep the rule they had: an fp32 copy of the largest tensor.
    assert opt.need_bytes(torch.bfloat16, "int8") == BIG.need_bytes(torch.bfloat16, "int8")
    int8_weights = opt.weight_bytes(torch.bfloat16, "int8")
    assert opt.need_bytes(torch.bfloat16, "int8") == int(
        int8_weights + 4 * 128_700_000 + 256 * 2**20 + int8_weights / 10
    )
    # A model whose largest int8 layer dwarfs its int4 ones is counted by that layer:
    # torchao holds 8 bytes per weight while quantizing it (counted as 10), plus its copy.
    wide = replace(opt, int4_largest=1_000, int8_largest=50_000_000)
    assert wide.int4_load_transient(torch.bfloat16) == 12 * 50_000_000
    # Unknown layer sizes (no safetensors, or counted without the model): the old rule.
    assert BIG.need_bytes(torch.bfloat16, "int4") == int(
        BIG.weight_bytes(torch.bfloat16, "int4")
        + 4 * 128_700_000
        + 256 * 2**20
        + BIG.weight_bytes(torch.bfloat16, "int4") / 10
    )


def test_int4_layer_sizes_are_counted_from_safetensors_checkpoints_only(tiny_blip2_dir, tmp_path):
    import json
    import shutil

    config = json.loads((tiny_blip2_dir / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    # Packed: OPT's fc1 / fc2 (hidden x ffn) are its largest linear layers. Left to int8: the
    # image encoder's fused q/k/v projection (3 x hidden by hidden) outweighs its MLP here.
    assert text["hidden_size"] == 32 and text["ffn_dim"] == 64
    assert vision["hidden_size"] == 32 and vision["intermediate_size"] == 64
    assert footprint.int4_largest == 32 * 64
    assert footprint.int8_largest == 3 * 32 * 32
    # The same model with no safetensors file: its layers are not known to be mapped, so the
    # int4 transient falls back to the general rule.
    for item in tiny_blip2_dir.iterdir():
        if not item.name.endswith(".safetensors"):
            shutil.copy(item, tmp_path / item.name)
    bare = measure_checkpoint(str(tmp_path), Blip2ForConditionalGeneration)
    assert bare.int4_params == footprint.int4_params
    assert bare.int4_largest == 0 and bare.int8_largest == 0


def test_only_int4_fits_so_auto_picks_it_and_says_why(native_bf16):
    int8 = BIG.need_bytes(torch.float32, "int8")
    int4 = BIG.need_bytes(torch.bfloat16, "int4")
    assert int4 < int8
    plan = plan_load("BLIP-2", BIG, memory=fixed_memory((int4 + int8) // 2))
    assert plan.fits and plan.quantization == "int4"
    assert plan.describe() == "cpu / int4 (bfloat16 activations)"
    assert plan.reason.startswith("int4 weights for the language model")
    assert f"int8 needs {format_gb(int8)}" in plan.reason and "would not fit" in plan.reason
    # Where int8 fits, auto never takes int4.
    roomy = plan_load("BLIP-2", BIG, memory=fixed_memory(int8 + GIB // 10))
    assert roomy.quantization == "int8"
    # Where nothing fits, the sentence names int4's need, the smallest.
    none = plan_load("BLIP-2", BIG, instead="--only vilt", memory=fixed_memory(int4 - GIB // 10))
    assert not none.fits
    assert none.reason.startswith(f"BLIP-2 needs about {format_gb(int4)} in int4; ")


def test_a_model_int4_cannot_pack_is_not_offered_int4_twice(native_bf16):
    vilt_like = Footprint("vilt", 87_000_000, 60_000, 30_000_000, 23_000_000, 4, "config")
    int8 = vilt_like.need_bytes(torch.float32, "int8")
    plan = plan_load("ViLT", vilt_like, memory=fixed_memory(int8 - 1))
    assert not plan.fits and "int4" not in plan.reason
    asked = plan_load("ViLT", vilt_like, quantization="int4", memory=fixed_memory(40 * GIB))
    assert asked.quantization == "int4" and "int8 weights" in asked.reason


# ---------------------------------------------------------------------------------------
# In a real memory cgroup (as tests/test_cgroup_fit.py does, at the same reduced depth)

REASON = unavailable_reason()
TEST_DEPTH = (2, 12)


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    from train.hub_cache import build_real_hub_cache

    return build_real_hub_cache(tmp_path_factory.mktemp("hf-home"), blip2_layers=TEST_DEPTH)


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"no memory cgroup: {REASON}")
def test_only_int4_fits_both_models_answer_in_a_memory_cgroup(real_cache):
    vilt = measure_checkpoint(str(real_cache.vilt), ViltForQuestionAnswering)
    blip2 = measure_checkpoint(str(real_cache.blip2), Blip2ForConditionalGeneration)
    int8 = blip2.need_bytes(torch.float32, "int8")
    int4 = min(blip2.need_bytes(dtype, "int4") for dtype in (torch.float32, torch.bfloat16))
    budget = int8 - GIB // 20  # int8 cannot fit, whatever ViLT takes
    # ViLT takes its share of the budget first; int4 must still fit after it.
    assert budget - int4 > vilt.weight_bytes(torch.bfloat16) + GIB // 8, (budget, int4)
    report = run_app_models(real_cache.hf_home, budget)
    assert report["oom_kills"] == 0, report
    assert report["returncode"] == 0, report["stderr_tail"]
    assert report["vilt"]["error"] is None and report["vilt"]["answer"]
    assert report["blip2"]["error"] is None, report["blip2"]
    assert report["blip2"]["placement"].startswith("cpu / int4"), report["blip2"]
    assert "int8 needs" in report["blip2"]["reason"]
    assert isinstance(report["blip2"]["answer"], str) and report["blip2"]["answer"]
    assert report["idle"] + report["peak_anon"] <= report["limit"], report
