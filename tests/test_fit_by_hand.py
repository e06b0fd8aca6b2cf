"""The memory planner's byte counts against numbers worked out by hand, not by the planner.

``tests/test_fit.py`` checks plans against ``Footprint.need_bytes`` itself; here every
expected number comes from the model's config (the parameter count of each layer, written
out below) and from the rule the planner promises: the weights at their width (BLIP-2's
Q-Former and query tokens stay fp32 under fp16), one extra fp32 copy of the largest tensor
while it is converted, 256 MiB, and a tenth of the weights.
"""

from __future__ import annotations

import json

import torch
from transformers import Blip2ForConditionalGeneration, ViltForQuestionAnswering

from vqa_core.fit import Footprint, measure_checkpoint

MIB = 1024**2


def test_need_bytes_of_a_footprint_small_enough_to_add_up_by_hand():
    # 1000 linear weights in 10 rows, 200 other floats of which 50 stay fp32 under fp16;
    # the largest tensor has 100 elements and is stored in bf16 (converted through fp32).
    footprint = Footprint("hand", 1000, 10, 200, 100, 2, "config", fp32_under_fp16=50)
    # fp32: 1200 * 4 = 4800 of weights, 480 of margin, 400 of transient copy.
    assert footprint.need_bytes(torch.float32) == 4800 + 480 + 400 + 256 * MIB
    # fp16: 1200 * 2 + 50 * 2 (the fp32-kept part's other half) = 2500; margin 250.
    assert footprint.weight_bytes(torch.float16) == 2500
    assert footprint.need_bytes(torch.float16) == 2500 + 250 + 400 + 256 * MIB
    # bf16 keeps nothing in fp32 here: 2400; margin 240.
    assert footprint.need_bytes(torch.bfloat16) == 2400 + 240 + 400 + 256 * MIB
    # int8: one byte per linear weight, 4 + 1 bytes of scale and zero point per row, the
    # rest in the activation type: 1000 + 50 + 800 = 1850 under fp32; margin 185.
    assert footprint.need_bytes(torch.float32, "int8") == 1850 + 185 + 400 + 256 * MIB
    # int8 with fp16 activations still keeps the 50 in fp32: 1000 + 50 + 400 + 100 = 1550.
    assert footprint.weight_bytes(torch.float16, "int8") == 1550
    # 4-bit: half a byte per linear weight: 500 + 50 + 800 = 1350.
    assert footprint.weight_bytes(torch.float32, "4bit") == 1350


def test_int4_need_counts_the_packing_of_its_largest_layer_by_hand():
    # Of the 1000 linear weights, 640 in 6 rows are packed in int4 (20 groups of 32), the
    # largest packed layer has 320 weights, the largest left in int8 180.
    footprint = Footprint(
        "hand", 1000, 10, 200, 100, 4, "config",
        int4_params=640, int4_rows=6, int4_groups=20, int4_largest=320, int8_largest=180,
    )  # fmt: skip
    # Weights under bf16: int8 360 + 5 * 4 rows = 380; int4 640 / 2 + 5 * 20 groups + 4 * 6
    # rows = 444; the other floats 200 * 2 = 400. Total 1224; margin 122.4.
    assert footprint.weight_bytes(torch.bfloat16, "int4") == 1224
    # Transient: packing holds the largest layer's bf16 copy (2), its int32 codes and the
    # packing's own bytes (6) per weight, 320 * 8 = 2560, plus one block of two fp32
    # temporaries (2 * 4 * 2**22 = 32 MiB); the int8 layer's 180 * (2 + 10) = 2160 is less.
    assert footprint.need_bytes(torch.bfloat16, "int4") == 1224 + 122 + 2560 + 32 * MIB + 256 * MIB
    # Under fp32 the copy is 4 bytes: weights 360 + 20 + 444 + 800 = 1624, margin 162.4,
    # transient 320 * 10 = 3200.
    assert footprint.need_bytes(torch.float32, "int4") == 1624 + 162 + 3200 + 32 * MIB + 256 * MIB
    # int8 keeps the general rule: an fp32 copy of the largest tensor (100 * 4).
    assert footprint.need_bytes(torch.float32, "int8") == 1850 + 185 + 400 + 256 * MIB


def test_an_fp32_checkpoint_is_converted_through_its_own_width():
    # Stored in fp64: the transient copy of the largest tensor is 8 bytes a value, not 4.
    footprint = Footprint("hand", 0, 0, 10, 10, 8, "config")
    assert footprint.need_bytes(torch.float32) == 40 + 4 + 80 + 256 * MIB


def _config(folder) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_tiny_vilt_counted_layer_by_layer(tiny_vilt_dir):
    config = _config(tiny_vilt_dir)
    # train.builders' default ViltSize: 32 wide, 2 layers, 64 in the MLP, 8 px patches of a
    # 64 px image (64 patches), 40 text positions.
    assert config["hidden_size"] == 32 and config["num_hidden_layers"] == 2
    assert config["intermediate_size"] == 64 and config["patch_size"] == 8
    vocab, labels = config["vocab_size"], len(config["id2label"])
    embeddings = (
        32  # image [class] token
        + 65 * 32  # image positions: 64 patches + [class]
        + vocab * 32  # words
        + 40 * 32  # text positions
        + 2 * 32  # text token types
        + 2 * 32  # text LayerNorm
        + 32 * 3 * 8 * 8
        + 32  # patch projection (a convolution) and its bias
        + 2 * 32  # modality types
    )
    layer_linear = 4 * 32 * 32 + 32 * 64 + 64 * 32  # q, k, v, output; MLP in and out
    layer_other = 4 * 32 + 64 + 32 + 2 * 2 * 32  # their biases, two LayerNorms
    head_linear = 32 * 32 + 32 * 64  # pooler, classifier's first layer
    head_other = 2 * 32 + 32 + 64 + 2 * 64 + 64 * labels + labels  # LN, biases, LN, last
    linear = 2 * layer_linear + head_linear
    total = embeddings + 2 * (layer_linear + layer_other) + head_linear + head_other

    footprint = measure_checkpoint(str(tiny_vilt_dir), ViltForQuestionAnswering)
    assert footprint.params == total
    # The classifier's last layer is never quantized: it is not among the linear weights.
    assert footprint.linear_params == linear
    assert footprint.linear_rows == 2 * (4 * 32 + 64 + 32) + 32 + 64
    assert footprint.largest_param == max(vocab * 32, 32 * 3 * 8 * 8)
    assert footprint.fp32_under_fp16 == 0
    weights = 4 * total
    need = footprint.need_bytes(torch.float32)
    expected = weights + weights / 10 + 4 * footprint.largest_param + 256 * MIB
    assert abs(need - expected) <= 1


def _blip2_counts(vocab: int) -> dict[str, int]:
    """train.builders' default Blip2Size: everything 32 wide, 64 in every MLP, 2 layers each,
    4 query tokens, 8 px patches of a 64 px image, 128 text positions (OPT adds 2)."""
    dense = 32 * 32 + 32  # a 32 -> 32 linear layer with its bias
    mlp = (32 * 64 + 64) + (64 * 32 + 32)
    norm = 2 * 32
    vision = (
        32 + 65 * 32 + (32 * 3 * 8 * 8 + 32)  # [class], positions, patch convolution
        + 2 * ((96 * 32 + 96) + dense + norm + mlp + norm)  # fused qkv, projection
        + norm  # post LayerNorm
    )  # fmt: skip
    attention = 4 * dense + norm  # query, key, value, output and its LayerNorm
    # Cross-attention every second layer (layer 0); both layers have the query MLP.
    qformer = norm + 2 * (attention + mlp + norm) + attention
    query_tokens = 4 * 32
    projection = dense
    opt = vocab * 32 + 130 * 32 + norm + 2 * (4 * dense + norm + mlp + norm)
    # Quantizable linear weights: vision's qkv, projection and MLP, the language projection,
    # OPT's q, k, v, out and MLP. Not the Q-Former (kept in float) nor the tied LM head.
    linear = 2 * (96 * 32 + 32 * 32 + 2 * 32 * 64) + 32 * 32 + 2 * (4 * 32 * 32 + 2 * 32 * 64)
    rows = 2 * (96 + 32 + 64 + 32) + 32 + 2 * (4 * 32 + 64 + 32)
    return {
        "total": vision + qformer + query_tokens + projection + opt,
        "kept_fp32": qformer + query_tokens,
        "linear": linear,
        "rows": rows,
    }


def test_tiny_blip2_counted_layer_by_layer(tiny_blip2_dir):
    config = _config(tiny_blip2_dir)
    vocab = config["text_config"]["vocab_size"]
    assert config["num_query_tokens"] == 4
    assert config["qformer_config"]["cross_attention_frequency"] == 2
    counts = _blip2_counts(vocab)

    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    assert footprint.params == counts["total"]
    assert footprint.linear_params == counts["linear"]
    assert footprint.linear_rows == counts["rows"]
    assert footprint.fp32_under_fp16 == counts["kept_fp32"]
    total, kept = counts["total"], counts["kept_fp32"]
    linear, rows = counts["linear"], counts["rows"]
    largest = footprint.largest_param
    assert largest == max(vocab * 32, 32 * 3 * 8 * 8)

    def expected(weights: int) -> float:
        return weights + weights / 10 + 4 * largest + 256 * MIB

    # fp16: two bytes a parameter, four for the Q-Former and the query tokens.
    fp16 = 2 * (total - kept) + 4 * kept
    assert footprint.weight_bytes(torch.float16) == fp16
    assert abs(footprint.need_bytes(torch.float16) - expected(fp16)) <= 1
    # bf16: transformers keeps nothing of BLIP-2 in fp32 under bf16.
    assert abs(footprint.need_bytes(torch.bfloat16) - expected(2 * total)) <= 1
    # int8 with fp16 activations: one byte a linear weight, 5 a row, the Q-Former in fp32.
    int8 = linear + 5 * rows + 2 * (total - linear - kept) + 4 * kept
    assert abs(footprint.need_bytes(torch.float16, "int8") - expected(int8)) <= 1


def test_fp16_footprint_is_what_the_loaded_blip2_holds(tiny_blip2_dir):
    """Loaded in fp16, transformers keeps the Q-Former in fp32: the count must say so."""
    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    model = Blip2ForConditionalGeneration.from_pretrained(tiny_blip2_dir, dtype=torch.float16)
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    assert model.qformer.layernorm.weight.dtype == torch.float32  # the premise
    assert footprint.weight_bytes(torch.float16) == held


def test_bitsandbytes_8bit_counts_as_int8_and_4bit_as_half_a_byte_by_hand():
    footprint = Footprint("hand", 1001, 10, 200, 100, 4, "config", fp32_under_fp16=50)
    # 8-bit: 1001 + 5 * 10 + the others in fp16 (200 * 2 + 50 * 2) = 1551.
    assert footprint.weight_bytes(torch.float16, "8bit") == 1551
    # 4-bit: half a byte per weight, rounded down (500), + 50 + 500 = 1050, an integer.
    four = footprint.weight_bytes(torch.float16, "4bit")
    assert four == 1050 and isinstance(four, int)


def test_odd_int4_counts_stay_whole_bytes_by_hand():
    footprint = Footprint(
        "hand", 1001, 10, 0, 100, 4, "config", int4_params=641, int4_rows=6, int4_groups=20
    )
    # int8: 360 + 5 * 4 = 380; int4: 641 // 2 + 5 * 20 + 4 * 6 = 444.
    weights = footprint.weight_bytes(torch.float32, "int4")
    assert weights == 824 and isinstance(weights, int)


def test_an_int4_load_whose_largest_int8_layer_dominates_counts_that_layer_by_hand():
    footprint = Footprint(
        "hand", 10_000, 100, 0, 100, 4, "config",
        int4_params=1000, int4_rows=10, int4_groups=10, int4_largest=10, int8_largest=9000,
    )  # fmt: skip
    # bf16: packing 10 * 8 + 32 MiB of temporaries; int8's 9000 weights at (2 + 10) bytes
    # each is 108,000: less than the packing's fixed 32 MiB, so the packing counts.
    transient = footprint.int4_load_transient(torch.bfloat16)
    assert transient == 80 + 32 * MIB and isinstance(transient, int)
    huge = Footprint(
        "hand", 10_000, 100, 0, 100, 4, "config",
        int4_params=1000, int4_rows=10, int4_groups=10, int4_largest=10, int8_largest=5 * MIB,
    )  # fmt: skip
    # 5 Mi weights at 12 bytes (a bf16 copy and torchao's 10) = 60 MiB, more than packing's.
    assert huge.int4_load_transient(torch.bfloat16) == 12 * 5 * MIB
    assert huge.int4_load_transient(torch.float32) == 14 * 5 * MIB
