"""What Ray Serve costs and buys: full-size ViLT-B/32 (random weights) in-process vs on Serve.

1. Overhead, batch 1, warm: ``ViltAnswerer.answer`` in this process against
   ``RemoteViltAnswerer.answer`` through Serve (HTTP, HAProxy, the replica's intake and
   Serve's batcher), the same JPEG bytes and question, interleaved rounds, same torch thread
   count. Target: remote / in-process <= 1.10.
2. Replicas: requests/s and latency for 16 concurrent users (closed loop, no think time)
   with one ViLT replica (all the threads) against two (the threads split between them).

Run: ``python bench/serve_overhead.py`` (``--dtype bfloat16``, ``--rounds``, ``--requests``).
It starts and stops its own local Ray (2 CPUs, no dashboard) in the mode ``make serve`` uses
(serving.RAY_CLUSTER_ENV); ``--serve-proxy`` measures Serve's own Python proxy instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from _common import REPO_ROOT, easy_vqa_texts, free_port, jpeg_bytes, machine_line, photo_like

QUESTION = "what is the colour of the shape in the middle?"


def save_vilt_b32(folder: Path) -> Path:
    """Random ViLT-B/32 at full width and depth, with a small tokenizer, saved to load by path."""
    from train.builders import build_vilt
    from train.hub_cache import vilt_b32_size

    torch.manual_seed(0)
    questions, answers = easy_vqa_texts()
    model, processor = build_vilt(questions, answers, size=vilt_b32_size())
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def deploy(serve, settings: dict, port: int) -> None:
    """The ViLT application as serving/config.yaml runs it (BLIP-2 plays no part here)."""
    from serving.deployments import build_vilt_app

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_vilt_app(settings), name="vilt", route_prefix="/vilt")


def load_test(answerer, image: bytes, users: int, requests: int) -> dict:
    """``users`` threads asking back to back until ``requests`` are answered."""
    latencies: list[float] = []
    failures: list[str] = []
    batch_sizes: list[int] = []
    lock = threading.Lock()
    remaining = [requests]

    def user() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                result = answerer.answer(image, QUESTION)
            except Exception as err:  # counted and reported, never hidden
                with lock:
                    failures.append(str(err))
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                batch_sizes.append(result.batch_size)

    threads = [threading.Thread(target=user) for _ in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "mean_batch": statistics.mean(batch_sizes),
        "failures": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="auto", help="auto|float32|bfloat16 (both paths)")
    parser.add_argument("--rounds", type=int, default=20, help="batch-1 rounds per path")
    parser.add_argument("--requests", type=int, default=64, help="requests per replica setting")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--batch-waits",
        type=lambda text: [float(v) for v in text.split(",")],
        default=[0.0],
        help="batch_wait_timeout_s values to measure the overhead with (default 0, as served)",
    )
    parser.add_argument(
        "--parts", default="overhead,replicas", help="which measurements: overhead, replicas"
    )
    parser.add_argument(
        "--serve-proxy",
        action="store_true",
        help="Serve's Python proxy in front instead of HAProxy (serving.RAY_CLUSTER_ENV off)",
    )
    args = parser.parse_args()

    from serving import RAY_CLUSTER_ENV

    if not args.serve_proxy:
        # Before Ray is imported: its processes, and this driver, read them at start.
        os.environ.update(RAY_CLUSTER_ENV)
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    import ray
    from ray import serve

    from serving.client import load_remote_services
    from serving.deployments import ServeSettings
    from vqa_core import ViltAnswerer

    torch.set_num_threads(args.threads)
    print(machine_line())
    front = "Serve's proxy" if args.serve_proxy else "HAProxy (serving.RAY_CLUSTER_ENV)"
    print(f"ray {ray.__version__}; ViLT-B/32, random weights, dtype {args.dtype}; {front}")
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    image = jpeg_bytes(photo_like(640, 480))
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_vilt_b32(Path(tmp) / "vilt-b32")
        local = ViltAnswerer.from_pretrained(str(folder), device="cpu", dtype=args.dtype)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        )
        # "local": a fresh instance even when `make serve` left a cluster running here.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        base = {
            "vilt": str(folder),
            "blip2": "demo",
            "device": "cpu",
            "dtype": args.dtype,
            # Ray's CPU count only places replicas; torch_threads sets what each one uses.
            "num_cpus": 0.5,
            "replicas": 1,
            "torch_threads": args.threads,
        }
        try:
            started = time.perf_counter()
            deploy(serve, base, port)
            print(f"Serve up with full-size ViLT in {time.perf_counter() - started:.0f} s")
            remote = load_remote_services(url, only="vilt").vilt

            # 1. Overhead at batch 1, warm, interleaved.
            parts = {part.strip() for part in args.parts.split(",")}
            for _ in range(3 if "overhead" in parts else 0):
                local.answer(image, QUESTION)
                remote.answer(image, QUESTION)
            assert [a for a, _ in remote.answer(image, QUESTION).answers] == [
                a for a, _ in local.answer(image, QUESTION).answers
            ], "the two paths disagree"
            if "overhead" in parts:
                for wait in args.batch_waits:
                    if wait != ServeSettings().batch_wait_timeout_s:
                        deploy(serve, {**base, "batch_wait_timeout_s": wait}, port)
                        remote = load_remote_services(url, only="vilt").vilt
                        for _ in range(3):
                            remote.answer(image, QUESTION)
                    print(f"\nServe's batch_wait_timeout_s = {wait:g} s:", end="")
                    measure_overhead(local, remote, image, args.rounds)
            if "replicas" in parts:
                compare_replicas(serve, base, port, url, image, args)
            print("load average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
        finally:
            serve.shutdown()
            ray.shutdown()


def measure_overhead(local, remote, image: bytes, rounds: int) -> None:
    """Batch 1, warm, interleaved rounds: the same bytes and question down both paths."""
    times: dict[str, list[float]] = {"in-process": [], "Serve": []}
    # The model's own time (result.seconds), to tell transport from compute.
    model_times: dict[str, list[float]] = {"in-process": [], "Serve": []}
    for round_index in range(rounds):
        order = [("in-process", local), ("Serve", remote)]
        if round_index % 2:
            order.reverse()
        for name, answerer in order:
            start = time.perf_counter()
            result = answerer.answer(image, QUESTION)
            times[name].append(time.perf_counter() - start)
            model_times[name].append(result.seconds)
    ours = statistics.median(times["in-process"]) * 1000
    served = statistics.median(times["Serve"]) * 1000
    ours_model = statistics.median(model_times["in-process"]) * 1000
    served_model = statistics.median(model_times["Serve"]) * 1000
    print(
        f" batch 1, warm, {rounds} rounds, medians: in-process {ours:.1f} ms, "
        f"through Serve {served:.1f} ms (+{served - ours:.1f} ms): "
        f"ratio {served / ours:.3f} (target <= 1.10)"
    )
    print(
        f"  the model's forward pass: in-process {ours_model:.1f} ms, in the replica "
        f"{served_model:.1f} ms; the rest (intake, HTTP, Serve's hops): in-process "
        f"{ours - ours_model:.1f} ms, through Serve {served - served_model:.1f} ms"
    )


def compare_replicas(serve, base: dict, port: int, url: str, image: bytes, args) -> None:
    """One replica with every thread against two with half each, under the same load."""
    from serving.client import load_remote_services

    print(f"\n{args.users} concurrent users, {args.requests} requests each setting:")
    per_replica = max(1, args.threads // 2)
    for replicas, threads in ((1, args.threads), (2, per_replica)):
        deploy(serve, {**base, "replicas": replicas, "torch_threads": threads}, port)
        remote = load_remote_services(url, only="vilt").vilt
        load_test(remote, image, replicas * 2, replicas * 4)  # warm every replica
        figures = load_test(remote, image, args.users, args.requests)
        print(
            f"  {replicas} replica(s) x {threads} torch thread(s): "
            f"{figures['rps']:.2f} req/s, p50 {figures['p50']:.2f} s, "
            f"p95 {figures['p95']:.2f} s, mean batch {figures['mean_batch']:.1f}, "
            f"failures {figures['failures']}"
        )


if __name__ == "__main__":
    sys.exit(main())
