"""Counting a checkpoint before loading it, against counts worked out by hand.

Each way ``measure_checkpoint`` counts (the model built on the meta device, the safetensors
headers alone, the weight files' sizes, a hub cache) is given a checkpoint whose every
parameter is written out here, so each expected number comes from the shapes, not from the
code under test.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import Blip2ForConditionalGeneration, PreTrainedModel

from vqa_core import fit as fit_module
from vqa_core.fit import Footprint, measure_checkpoint
from vqa_core.memory import GIB, MemoryReport


class TwoHeads(PreTrainedModel):
    """Five layers whose counts are plain to see: ``second`` shares ``first``'s weight;
    ``keep`` is kept in fp32 under fp16, ``strict`` under bf16 too; ``head`` holds the last
    parameter (a classifier's head, which quantizers leave in float)."""

    _keep_in_fp32_modules = ("keep",)
    _keep_in_fp32_modules_strict = ("strict",)

    def __init__(self, config):
        super().__init__(config)
        self.first = nn.Linear(8, 4)  # weight 32, bias 4
        self.second = nn.Linear(8, 4)  # its weight is first's; bias 4
        self.second.weight = self.first.weight
        self.keep = nn.Linear(8, 8)  # 64 + 8, fp32 under fp16
        self.strict = nn.Linear(8, 6)  # 48 + 6, fp32 under fp16 and bf16
        self.head = nn.Linear(4, 2, bias=False)  # 8, the last parameter

    def get_output_embeddings(self):
        return None


@pytest.fixture
def two_heads_dir(tiny_vilt_dir, tmp_path):
    # Any config AutoConfig reads will do: TwoHeads takes its shapes from itself.
    shutil.copy(tiny_vilt_dir / "config.json", tmp_path / "config.json")
    return tmp_path


def test_the_meta_count_skips_shared_kept_and_last_layers(two_heads_dir):
    footprint = measure_checkpoint(str(two_heads_dir), TwoHeads)
    assert footprint == Footprint(
        str(two_heads_dir),
        linear_params=32,  # first's weight, once (second shares it)
        linear_rows=4,
        other_params=4 + 4 + 72 + 54 + 8,  # the biases, keep, strict, the head
        largest_param=64,  # keep's weight
        stored_bytes=4,
        counted_from="config",
        fp32_under_fp16=72 + 54,
        fp32_under_bf16=54,
    )


def test_with_its_weights_in_safetensors_the_largest_int8_layer_is_known(two_heads_dir):
    weights = {
        "first.weight": torch.zeros(4, 8),
        "first.bias": torch.zeros(4),
        "second.bias": torch.zeros(4),
        "keep.weight": torch.zeros(8, 8),
        "keep.bias": torch.zeros(8),
        "strict.weight": torch.zeros(6, 8),
        "strict.bias": torch.zeros(6),
        "head.weight": torch.zeros(2, 4),
    }
    save_file(weights, str(two_heads_dir / "model.safetensors"))
    footprint = measure_checkpoint(str(two_heads_dir), TwoHeads)
    # Nothing generates text, so nothing is packed in int4; first's 32 weights are the
    # largest (the only) layer int8 stores.
    assert (footprint.int4_params, footprint.int4_largest, footprint.int8_largest) == (0, 0, 32)
    assert footprint.counted_from == "config" and footprint.linear_params == 32


def test_the_safetensors_headers_alone_count_two_dimensional_weights_as_linear(tmp_path):
    save_file(
        {
            "a.weight": torch.zeros(3, 4),  # linear: 12, 3 rows
            "a.bias": torch.zeros(3),
            "b.weight": torch.zeros(5, 6),  # linear: 30, 5 rows
            "conv.weight": torch.zeros(2, 2, 2),  # not 2-D: other
            "table": torch.zeros(7, 2),  # 2-D but not a weight: other
            "steps": torch.zeros(9, dtype=torch.int64),  # not a float: not counted
        },
        str(tmp_path / "model.safetensors"),
    )
    footprint = measure_checkpoint(str(tmp_path))
    assert footprint == Footprint(str(tmp_path), 42, 8, 3 + 8 + 14, 30, 4, "safetensors headers")


def test_the_headers_say_how_wide_the_stored_floats_are(tmp_path):
    save_file(
        {"a.weight": torch.zeros(3, 4, dtype=torch.bfloat16)}, str(tmp_path / "model.safetensors")
    )
    assert measure_checkpoint(str(tmp_path)).stored_bytes == 2


def test_headers_with_no_float_are_counted_as_fp32(tmp_path):
    save_file({"steps": torch.zeros(9, dtype=torch.int64)}, str(tmp_path / "model.safetensors"))
    footprint = measure_checkpoint(str(tmp_path))
    assert footprint == Footprint(str(tmp_path), 0, 0, 0, 0, 4, "safetensors headers")


def test_a_sharded_checkpoint_missing_a_shard_is_not_counted_from_the_others(tmp_path):
    save_file({"a.weight": torch.zeros(3, 4)}, str(tmp_path / "part-1.safetensors"))
    index = {"weight_map": {"a.weight": "part-1.safetensors", "b.weight": "part-2.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert measure_checkpoint(str(tmp_path)) is None


def test_weight_files_alone_are_counted_by_size(tmp_path):
    # 4022 bytes: 1005 whole fp32 parameters (the 2 bytes over are not one), the largest a
    # tenth of them, rounded down.
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 4022)
    footprint = measure_checkpoint(str(tmp_path))
    assert footprint == Footprint(str(tmp_path), 1005, 0, 0, 100, 4, "file size")
    assert isinstance(footprint.linear_params, int) and isinstance(footprint.largest_param, int)


def test_a_header_claiming_a_byte_more_than_its_file_is_refused(tmp_path):
    # "{}" is whole JSON, but the header says 3 bytes: the file is cut short.
    (tmp_path / "model.safetensors").write_bytes((3).to_bytes(8, "little") + b"{}")
    assert measure_checkpoint(str(tmp_path)).counted_from == "file size"


def test_a_header_that_fills_its_file_exactly_is_read(tmp_path):
    header = b"{}"
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    assert measure_checkpoint(str(tmp_path)) == Footprint(
        str(tmp_path), 0, 0, 0, 0, 4, "safetensors headers"
    )


def test_an_unreadable_header_says_so_and_falls_back_to_the_file_size(tmp_path, caplog):
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 4000)
    with caplog.at_level(logging.WARNING, logger="vqa_core.fit"):
        footprint = measure_checkpoint(str(tmp_path))
    assert footprint == Footprint(str(tmp_path), 1000, 0, 0, 100, 4, "file size")
    (record,) = [r for r in caplog.records if r.name == "vqa_core.fit"]
    assert record.getMessage() == (
        f"could not read the safetensors headers of {tmp_path}: its header claims "
        f"{2**64 - 1} bytes, more than the file holds"
    )


def test_a_model_that_cannot_be_built_is_counted_from_its_headers_and_says_why(tmp_path, caplog):
    save_file({"a.weight": torch.zeros(3, 4)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    with caplog.at_level(logging.INFO, logger="vqa_core.fit"):
        footprint = measure_checkpoint(str(tmp_path), TwoHeads)
    assert footprint == Footprint(str(tmp_path), 12, 3, 0, 12, 4, "safetensors headers")
    (record,) = [r for r in caplog.records if r.name == "vqa_core.fit"]
    message = record.getMessage()
    assert message.startswith(f"could not build {tmp_path} on the meta device (")
    assert "no-such-model" in message and message.endswith(")")


def test_a_checkpoint_in_the_hub_cache_is_counted_as_its_folder(
    two_heads_dir, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--org--two-heads" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (cache / "models--org--two-heads" / "refs").mkdir()
    (cache / "models--org--two-heads" / "refs" / "main").write_text("abc123")
    save_file({"first.weight": torch.zeros(4, 8)}, str(snapshot / "model.safetensors"))
    shutil.copy(two_heads_dir / "config.json", snapshot / "config.json")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    footprint = measure_checkpoint("org/two-heads", TwoHeads)
    assert footprint.source == "org/two-heads" and footprint.linear_params == 32
    assert footprint.int8_largest == 32  # its weight file was found in the cache too
    assert measure_checkpoint("org/not-cached", TwoHeads) is None


def test_a_wider_language_model_is_counted_in_int4_groups_of_128(tiny_blip2_dir, tmp_path):
    """BLIP-2 with a one-layer OPT of width 256 and ffn 512, built on meta only: q, k, v and
    out (256 x 256) have 2 groups of 128 per row, fc1 (256 -> 512) 2 per row, fc2
    (512 -> 256) 4 per row."""
    config = json.loads((tiny_blip2_dir / "config.json").read_text())
    config["text_config"].update(
        hidden_size=256, ffn_dim=512, num_hidden_layers=1, word_embed_proj_dim=256
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    footprint = measure_checkpoint(str(tmp_path), Blip2ForConditionalGeneration)
    assert footprint.int4_params == 4 * 256 * 256 + 2 * 256 * 512
    assert footprint.int4_rows == 4 * 256 + 512 + 256
    assert footprint.int4_groups == 4 * 256 * 2 + 512 * 2 + 256 * 4
    assert isinstance(footprint.int4_groups, int)
    # No weight files: the layers are not known to be mapped one at a time, so the
    # transient falls back to the general rule.
    assert (footprint.int4_largest, footprint.int8_largest) == (0, 0)


def test_the_tiny_blip2_counts_its_packed_and_int8_layers(tiny_blip2_dir):
    config = json.loads((tiny_blip2_dir / "config.json").read_text())
    text = config["text_config"]
    hidden, ffn, layers = text["hidden_size"], text["ffn_dim"], text["num_hidden_layers"]
    assert (hidden, ffn) == (32, 64)  # every width the kernel takes, in groups of 32 or 64
    footprint = measure_checkpoint(str(tiny_blip2_dir), Blip2ForConditionalGeneration)
    assert footprint.int4_params == layers * (4 * hidden * hidden + 2 * hidden * ffn)
    assert footprint.int4_rows == layers * (4 * hidden + ffn + hidden)
    assert footprint.int4_groups == layers * (4 * hidden + ffn + hidden)  # one group per row
    assert footprint.int4_largest == hidden * ffn
    assert footprint.int8_largest == 3 * 32 * 32  # the image encoder's fused q/k/v


# --- a GPU reading that cannot be trusted ---------------------------------------------


@pytest.fixture
def gpu_reading(monkeypatch):
    reading = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: reading["value"])
    monkeypatch.setattr(fit_module, "cpu_bf16_feature", lambda: "AMX-BF16")

    def read(free: int, total: int) -> int | None:
        reading["value"] = (free, total)
        return fit_module._gpu_free(torch.device("cuda"))

    return read


@pytest.mark.parametrize(
    ("free", "total"),
    [(0, 0), (1, 0), (-1, 16), (17, 16)],
    ids=["no-total", "free-of-none", "negative", "more-than-total"],
)
def test_nonsense_gpu_readings_are_not_trusted_and_said(gpu_reading, caplog, free, total):
    with caplog.at_level(logging.WARNING, logger="vqa_core.fit"):
        assert gpu_reading(free * GIB, total * GIB) is None
    (record,) = [r for r in caplog.records if r.name == "vqa_core.fit"]
    assert record.getMessage() == (
        f"unusual memory reading on cuda (free {free * GIB} of {total * GIB} bytes); "
        "not checking the fit"
    )


@pytest.mark.parametrize(
    ("free", "total"), [(0, 16), (16, 16), (1, 1)], ids=["full", "empty", "tiny"]
)
def test_sensible_gpu_readings_are_trusted_at_their_edges(gpu_reading, free, total):
    assert gpu_reading(free, total) == free


def test_a_gpu_reading_that_fails_says_why(monkeypatch, caplog):
    def broken(device=None):
        raise RuntimeError("driver says no")

    monkeypatch.setattr(torch.cuda, "mem_get_info", broken)
    with caplog.at_level(logging.WARNING, logger="vqa_core.fit"):
        assert fit_module._gpu_free(torch.device("cuda")) is None
    (record,) = [r for r in caplog.records if r.name == "vqa_core.fit"]
    assert record.getMessage() == (
        "could not read free memory on cuda (driver says no); not checking the fit"
    )


def test_a_host_reading_is_used_as_it_is():
    report = MemoryReport(host_available=3 * GIB, host_total=8 * GIB)
    candidate = fit_module._Candidate(fit_module.resolve_placement("cpu", "float32"))
    free, where = fit_module._free_for(candidate, report)
    assert free == 3 * GIB and str(where) == "this machine has 3.0 GB free"
