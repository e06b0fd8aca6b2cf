"""bench/gpu.py on a machine without a GPU: it imports, parses, and prints its table.

The measurement itself needs a CUDA GPU. ``--dry-run`` prints the steps and the table's rows;
``--smoke`` runs every step on the CPU with tiny models (the budgets handed to the planner as
host memory), which checks the loading, timing, side-by-side and table code paths; only the
lines that hold GPU memory and read its peak are left unexercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.py"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def table_rows(stdout: str) -> dict[str, str]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 2 and cells[0] not in ("what", "---"):
            rows[cells[0]] = cells[1]
    return rows


def test_dry_run_lists_each_budget_and_comparison():
    done = run("--dry-run", "--budgets", "15,8,6")
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert list(rows) == [
        "15 GB of the GPU free, auto",
        "8 GB of the GPU free, auto",
        "6 GB of the GPU free, auto",
        "ours vs plain, ViLT fp16",
        "ours vs plain, BLIP-2 fp16",
        "batch vs singles, ViLT x32",
        "batch vs singles, BLIP-2 x8",
        "static KV cache vs eager, BLIP-2 fp16",
    ]
    assert set(rows.values()) == {"not run (dry run)"}
    skipped = table_rows(run("--dry-run", "--no-compile").stdout)
    assert "static KV cache vs eager, BLIP-2 fp16" not in skipped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budgets", "15,lots"), "--budgets takes numbers of GB"),
        (("--budgets", "0"), "--budgets needs at least one positive number"),
        (("--depth", "4"), "--depth takes two layer counts"),
        (("--dry-run", "--smoke"), "not allowed with argument"),
    ],
)
def test_bad_arguments_are_one_sentence(args, message):
    done = run(*args)
    assert done.returncode == 2 and message in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU to measure")
def test_without_a_gpu_it_says_so_and_measures_nothing():
    done = run()
    assert done.returncode == 2
    assert "none is present here; --dry-run shows the steps" in done.stdout


@pytest.mark.slow
def test_smoke_runs_every_step_on_the_cpu():
    done = run("--smoke", "--budgets", "4", "--repeats", "1", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SMOKE RUN on the CPU" in done.stdout
    rows = table_rows(done.stdout)
    assert rows["4 GB of the GPU free, auto"].startswith("ViLT **cpu / float32** ")
    assert "BLIP-2 **cpu / float32** " in rows["4 GB of the GPU free, auto"]
    # The same models through vqa_core and through the plain recipe answer alike.
    assert rows["ours vs plain, ViLT float32"].endswith("same answer: yes")
    assert rows["ours vs plain, BLIP-2 float32"].endswith("same answer: yes")
    assert "one batch" in rows["batch vs singles, ViLT x32"]
    assert "one batch" in rows["batch vs singles, BLIP-2 x8"]
    static = rows["static KV cache vs eager, BLIP-2 float32"]
    assert static.startswith("first call ") and static.endswith("same answer: yes")
