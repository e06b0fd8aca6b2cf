"""The README's Hugging Face Spaces header: what a Space builds and preloads.

A Space reads the YAML block at the top of README.md. ``preload_from_hub`` fetches weights at
build time instead of on every cold start, and must name the same files the offline download
selects (one copy of the weights, safetensors, never the duplicate ``.bin`` shards).
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio
import yaml

from tests.hub_listings import BLIP2_OPT_27B, VILT_B32_VQA
from vqa_core.download import select_files
from vqa_core.registry import REAL_CHECKPOINTS

ROOT = Path(__file__).resolve().parents[1]
LISTINGS = {
    REAL_CHECKPOINTS["vilt"]: [*VILT_B32_VQA, "model.safetensors"],
    REAL_CHECKPOINTS["blip2"]: BLIP2_OPT_27B,
}


def space_header() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "README.md must start with the Spaces YAML header"
    return yaml.safe_load(match.group(1))


def test_the_space_runs_the_gradio_and_python_ci_tests():
    header = space_header()
    assert header["sdk"] == "gradio"
    assert header["sdk_version"] == gradio.__version__
    lock = (ROOT / "requirements-dev.lock").read_text(encoding="utf-8")
    assert f"\ngradio=={header['sdk_version']} " in lock
    # A string: YAML would read 3.10 as the number 3.1.
    assert isinstance(header["python_version"], str)
    assert re.fullmatch(r"3\.\d+", header["python_version"])
    assert (ROOT / header["app_file"]).is_file()


def test_the_space_names_both_real_checkpoints():
    header = space_header()
    assert header["models"] == list(REAL_CHECKPOINTS.values())
    assert header["suggested_hardware"]


def test_preload_names_exactly_what_the_offline_download_selects():
    entries = [entry.split() for entry in space_header()["preload_from_hub"]]
    assert [entry[0] for entry in entries] == list(REAL_CHECKPOINTS.values())
    for entry in entries:
        repo_id = entry[0]
        if repo_id == REAL_CHECKPOINTS["vilt"]:
            # Whole repo on purpose: whether ViLT's hub repo holds model.safetensors beside
            # pytorch_model.bin could not be checked from here, and naming a file the repo
            # lacks would fail the Space's build; both copies together are under 1 GB.
            assert len(entry) == 1, entry
            continue
        named = entry[1].split(",")
        assert len(named) == len(set(named))
        assert set(named) == set(select_files(repo_id, LISTINGS[repo_id]).files)
        assert not any(name.endswith(".bin") for name in named)
