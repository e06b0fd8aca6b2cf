"""``python -m vqa_core`` end to end on the tiny checkpoints, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "vqa_core", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )


def test_json_answers_from_both_models(tiny_vilt_dir, tiny_blip2_dir, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    done = run_cli(
        "--image", paths[0], "--question", questions[0],
        "--vilt", str(tiny_vilt_dir), "--blip2", str(tiny_blip2_dir),
        "--top-k", "3", "--device", "cpu", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["question"] == questions[0]
    assert len(report["vilt"]["answers"]) == 3
    # auto keeps a model this small in fp32 (measured faster than bf16; vqa_core.fit).
    assert report["vilt"]["seconds"] > 0 and report["vilt"]["device"] == "cpu / float32"
    blip2_answer = report["blip2"]["answer"]
    assert isinstance(blip2_answer, str) and blip2_answer and report["blip2"]["seconds"] > 0


def test_only_one_model_does_not_need_the_other(tiny_vilt_dir, easy_vqa_sample):
    paths, questions, _ = easy_vqa_sample
    done = run_cli(
        "--image", paths[0], "--question", questions[0], "--vilt", str(tiny_vilt_dir),
        "--blip2", "/nonexistent/blip2", "--only", "vilt",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Q: ") and "ViLT [" in done.stdout
    assert "BLIP-2" not in done.stdout


def test_a_broken_model_still_prints_the_other(tiny_vilt_dir, easy_vqa_sample, tmp_path):
    paths, questions, _ = easy_vqa_sample
    done = run_cli(
        "--image", paths[0], "--question", questions[0], "--vilt", str(tiny_vilt_dir),
        "--blip2", str(tmp_path), "--json",
    )  # fmt: skip
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["vilt"]["answers"]
    assert "Could not load BLIP-2" in report["blip2"]["error"]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("case", "expected"),
    [("missing", "No image file"), ("text", "not an image"), ("empty-question", "question")],
)
def test_bad_input_exits_nonzero_with_one_line(case, expected, tmp_path, easy_vqa_sample):
    paths, _, _ = easy_vqa_sample
    image, question = paths[0], "what shape is it?"
    if case == "missing":
        image = str(tmp_path / "nope.png")
    elif case == "text":
        fake = tmp_path / "fake.png"
        fake.write_text("not really a picture")
        image = str(fake)
    else:
        question = "   "
    done = run_cli("--image", image, "--question", question, "--vilt", "demo")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in done.stderr
