"""Shared pieces of the benchmarks: offline environment, device choice, side-by-side timing."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# As app.py does: weights on transparent huge pages (child processes inherit it).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import io
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image

transformers.utils.logging.disable_progress_bar()

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def machine_line() -> str:
    where = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
    return (
        f"{platform.machine()} {os.cpu_count()} logical cores, torch threads "
        f"{torch.get_num_threads()}, {where}, torch {torch.__version__}"
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str = "cpu") -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def side_by_side(
    contenders: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 2,
    device: str = "cpu",
) -> dict[str, list[float]]:
    """Time each contender ``repeats`` times, interleaved round by round.

    Interleaving spreads the noise of a shared machine (other jobs, frequency changes)
    evenly over the contenders instead of charging it to whichever ran second.
    """
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(repeats):
        names = list(contenders)
        if round_index % 2:
            names.reverse()
        for name in names:
            times[name].append(time_call(contenders[name], device))
    return times


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def photo_like(width: int, height: int, seed: int = 0, noise: float = 12.0) -> Image.Image:
    """A picture with the statistics of a photo: smooth gradients, blobs, sensor noise.

    Flat synthetic images compress to almost nothing and decode unrealistically fast; noise
    and texture keep the JPEG's entropy, and so its decode cost, close to a real photo's.
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs /= width
    ys /= height
    red = 120 + 100 * np.sin(3.1 * xs + 1.7 * ys)
    green = 110 + 90 * np.cos(2.3 * ys - 1.1 * xs)
    blue = 100 + 80 * np.sin(5.0 * xs * ys + 0.5)
    picture = np.stack([red, green, blue], axis=-1)
    for _ in range(12):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.2)
        mask = ((xs - cx) ** 2 + (ys - cy) ** 2) < radius**2
        picture[mask] = rng.uniform(0, 255, size=3)
    picture += rng.normal(0, noise, size=picture.shape).astype(np.float32)
    return Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def easy_vqa_texts(limit: int = 3000) -> tuple[list[str], list[str]]:
    import easy_vqa

    questions, answers, _ = easy_vqa.get_train_questions()
    return list(questions[:limit]), list(answers[:limit])


def build_scratch_models(folder: Path, vilt_size=None, blip2_size=None) -> tuple[Path, Path]:
    """Random ViLT and BLIP-2 saved with save_pretrained, loadable by path like a checkpoint."""
    from train.builders import Blip2Size, ViltSize, build_blip2, build_vilt

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts()
    vilt_model, vilt_processor = build_vilt(questions, answers, size=vilt_size or ViltSize())
    vilt_model.save_pretrained(folder / "vilt")
    vilt_processor.save_pretrained(folder / "vilt")
    texts = [f"Question: {q} Answer: {a}" for q, a in zip(questions, answers)]
    blip2_model, blip2_processor = build_blip2(texts, size=blip2_size or Blip2Size())
    blip2_model.save_pretrained(folder / "blip2")
    blip2_processor.save_pretrained(folder / "blip2")
    return folder / "vilt", folder / "blip2"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(args: list[str], port: int):
    """``python app.py ARGS --port PORT`` as a child process, output discarded."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "app.py"), *args, "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def wait_until_serving(url: str, process, timeout: float = 300.0) -> float:
    """Poll ``url`` until it answers; returns the time it first did (perf_counter)."""
    import httpx

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"app.py did not serve {url} within {timeout:.0f} s")


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except Exception:
        process.kill()


def demo_models_present() -> bool:
    from vqa_core.registry import DEMO_CHECKPOINTS

    return all(Path(p).is_dir() for p in DEMO_CHECKPOINTS.values())
