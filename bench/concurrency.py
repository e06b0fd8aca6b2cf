"""The running app under N = 1, 4, 16 concurrent gradio_client users, batching on vs off.

    python bench/concurrency.py [--requests 48] [--users 1,4,16] [--client gradio_client|http]
                                [--models scratch|demo|full-size [--dtype bfloat16]]

Starts ``python app.py`` twice, with ``--max-batch-size 8`` (batching on) and
``--max-batch-size 1`` (off), and drives ``/answer`` (both models) with a fixed total count
of requests spread over N concurrent users: requests/s and p50/p95 latency. Targets at
N=16: >= 3x the requests/s of batching off, and p95 no worse than 2x the N=1 latency.

Models: the embedded demo models when present (``--models demo``), else mid-size random
ViLT / BLIP-2 built with train.builders (same as bench/answer_overhead.py). ``--models
full-size`` serves random ViLT-B/32 and BLIP-2 OPT-2.7B widths at bench/full_size.py's
``--quick`` depth (ViT-g 8/39, OPT 8/32 layers; about 2 GB in bf16), answers forced to 10
tokens: the real models' mix of image encoding and decoding per request. ``--dtype`` is
handed to the app (``auto``: fp32 on CPU).

Clients and server share this machine's cores, so each row also prints the CPU time per
request spent by the app and by the load generator. ``--client http`` drives the same
endpoint through Gradio's documented HTTP API (upload, call, read the event stream) with
httpx, a much lighter load generator than ``gradio_client``, to show what the server does
when the users' machines are not this one.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from _common import (
    build_scratch_models,
    demo_models_present,
    free_port,
    machine_line,
    photo_like,
    start_app,
    stop,
    wait_until_serving,
)
from answer_overhead import BLIP2_MID, VILT_MID
from gradio_client import Client, handle_file

from vqa_core import resolve_placement

QUESTIONS = ["what shape is in the image?", "what color is the shape?", "is there a circle?"]


SECONDS = re.compile(r"(\d+\.\d+)")
MODEL_SECONDS: list[float] = []  # per request: the models' own time, from the timing lines


class GradioClientUser:
    """One user through gradio_client, as the issue asks."""

    def __init__(self, url: str):
        self.client = Client(url, verbose=False, download_files=False)

    def ask(self, image: str, question: str) -> list:
        return list(self.client.predict(handle_file(image), question, 5, 10, 1, api_name="/answer"))

    def close(self) -> None:
        self.client.close()


class HttpUser:
    """One user through Gradio's HTTP API: upload, call /answer, read its event stream."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=300)

    def ask(self, image: str, question: str) -> list:
        with open(image, "rb") as picture:
            uploaded = self.http.post("gradio_api/upload", files={"files": picture})
        uploaded.raise_for_status()
        file = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
        call = self.http.post("gradio_api/call/answer", json={"data": [file, question, 5, 10, 1]})
        call.raise_for_status()
        event = None
        with self.http.stream("GET", f"gradio_api/call/answer/{call.json()['event_id']}") as s:
            for line in s.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    if event == "error":
                        raise RuntimeError(f"request failed: {line}")
                    return json.loads(line[len("data: ") :])
        raise RuntimeError("the event stream ended without a result")

    def close(self) -> None:
        self.http.close()


USERS = {"gradio_client": GradioClientUser, "http": HttpUser}


def drive(url: str, image: str, users: int, total: int, kind: str) -> tuple[float, list[float]]:
    per_user = max(1, total // users)
    MODEL_SECONDS.clear()

    def user(index: int) -> list[float]:
        client = USERS[kind](url)
        latencies = []
        try:
            for j in range(per_user):
                start = time.perf_counter()
                _label, vilt_status, _answer, blip2_status, _line = client.ask(
                    image, QUESTIONS[(index + j) % len(QUESTIONS)]
                )
                latencies.append(time.perf_counter() - start)
                if vilt_status.startswith("⚠") or blip2_status.startswith("⚠"):
                    raise RuntimeError(f"request failed: {vilt_status} / {blip2_status}")
                found = [SECONDS.search(s) for s in (vilt_status, blip2_status)]
                if all(found):
                    MODEL_SECONDS.append(sum(float(m.group(1)) for m in found))
        finally:
            client.close()
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        latencies = [x for xs in pool.map(user, range(users)) for x in xs]
    return len(latencies) / (time.perf_counter() - start), latencies


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def percentile(samples: list[float], q: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[q - 1]
        if len(samples) > 1
        else samples[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="total per (N, batching)")
    parser.add_argument("--users", default="1,4,16")
    parser.add_argument("--models", choices=["scratch", "demo", "full-size"], default=None)
    parser.add_argument("--dtype", default="auto", help="the app's --dtype")
    parser.add_argument("--client", choices=sorted(USERS), default="gradio_client")
    parser.add_argument("--max-batch-size", type=int, default=8, help="with batching on")
    args = parser.parse_args()
    users = [int(n) for n in args.users.split(",")]
    use_demo = args.models == "demo" or (args.models is None and demo_models_present())

    with tempfile.TemporaryDirectory() as folder:
        image = str(Path(folder) / "photo.jpg")
        photo_like(640, 480).save(image, quality=90)
        if args.models == "full-size":
            from full_size import save_servable_checkpoints

            vilt_dir, blip2_dir = save_servable_checkpoints(
                Path(folder), vision_layers=8, opt_layers=8, new_tokens=10,
                # Saved in the precision the app will run them in, resolved as the app does.
                dtype=resolve_placement("cpu", args.dtype).dtype,
            )  # fmt: skip
            model_args = ["--vilt", str(vilt_dir), "--blip2", str(blip2_dir)]
            label = "full-width random ViLT-B/32 + BLIP-2 OPT-2.7B (ViT-g 8/39, OPT 8/32 layers)"
        elif use_demo:
            model_args, label = ["--vilt", "demo", "--blip2", "demo"], "embedded demo models"
        else:
            vilt_dir, blip2_dir = build_scratch_models(Path(folder), VILT_MID, BLIP2_MID)
            model_args = ["--vilt", str(vilt_dir), "--blip2", str(blip2_dir)]
            label = "mid-size random ViLT/BLIP-2 (bench/answer_overhead.py sizes)"
        print(f"machine: {machine_line()}")
        print(
            f"models: {label}; {args.requests} /answer requests per row, 640x480 JPEG; "
            f"users: {args.client}; batching on = max batch {args.max_batch_size}; "
            f"app --dtype {args.dtype}"
        )
        print(
            f"{'batching':9} {'N':>3} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'model ms':>9} {'app cpu':>8} {'users cpu':>10}"
        )
        print(
            "  (model ms: median time inside the two answer_batch calls; "
            "cpu: CPU ms per request in the app and in the load generator)"
        )
        here = psutil.Process()
        table: dict[tuple[bool, int], tuple[float, float, float]] = {}
        for batching in (True, False):
            port = free_port()
            process = start_app(
                [*model_args, "--device", "cpu", "--dtype", args.dtype, "--max-batch-size", str(args.max_batch_size) if batching else "1",
                 "--queue-size", "256"],
                port,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}/"
            try:
                wait_until_serving(url, process)
                drive(url, image, 2, 4, args.client)  # warm-up
                server = psutil.Process(process.pid)
                for n in users:
                    app_before, users_before = cpu_seconds(server), cpu_seconds(here)
                    rps, latencies = drive(url, image, n, args.requests, args.client)
                    app_ms = (cpu_seconds(server) - app_before) * 1000 / len(latencies)
                    users_ms = (cpu_seconds(here) - users_before) * 1000 / len(latencies)
                    p50, p95 = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
                    table[(batching, n)] = (rps, p50, p95)
                    model_ms = statistics.median(MODEL_SECONDS) * 1000 if MODEL_SECONDS else 0.0
                    print(
                        f"{'on' if batching else 'off':9} {n:3d} {rps:7.2f} {p50:8.0f} "
                        f"{p95:8.0f} {model_ms:9.0f} {app_ms:8.0f} {users_ms:10.0f}"
                    )
            finally:
                stop(process)
        top = max(users)
        if (True, top) in table and (False, top) in table and (True, 1) in table:
            speedup = table[(True, top)][0] / table[(False, top)][0]
            p95_ratio = table[(True, top)][2] / table[(True, 1)][1]
            print(
                f"N={top}: batching on/off requests/s {speedup:.2f}x (target >= 3x); "
                f"p95 / N=1 p50 latency {p95_ratio:.2f}x (target <= 2x)"
            )


if __name__ == "__main__":
    main()
