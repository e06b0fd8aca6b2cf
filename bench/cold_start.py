"""Seconds from ``python app.py`` to the first answer.

    python bench/cold_start.py [--repeats 3] [--models demo|scratch]

Each round starts a fresh ``python app.py`` (the embedded default when the demo models are
present, else small random models built with train.builders and named by folder), waits
until the page is served, then asks one question through ``/answer``. Printed per round:
process start -> page served, -> first answer (both models), and that first answer's own
latency against a warm second one, which is what a visitor waits beyond start-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

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
from gradio_client import Client, handle_file


def ask(client: Client, image: str) -> float:
    start = time.perf_counter()
    _label, vilt_status, _answer, blip2_status, _line = client.predict(
        handle_file(image), "what shape is in the image?", 5, 10, 1, api_name="/answer"
    )
    if vilt_status.startswith("⚠") or blip2_status.startswith("⚠"):
        raise RuntimeError(f"the first answer failed: {vilt_status} / {blip2_status}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", choices=["scratch", "demo"], default=None)
    args = parser.parse_args()
    use_demo = args.models == "demo" or (args.models is None and demo_models_present())

    with tempfile.TemporaryDirectory() as folder:
        image = str(Path(folder) / "photo.jpg")
        photo_like(640, 480).save(image, quality=90)
        if use_demo:
            model_args, label = [], "embedded default (demo models)"
        else:
            vilt_dir, blip2_dir = build_scratch_models(Path(folder))
            model_args = ["--vilt", str(vilt_dir), "--blip2", str(blip2_dir)]
            label = "tiny random models by folder (the demo models are not in this checkout)"
        print(f"machine: {machine_line()}")
        print(f"models: {label}")
        print(
            f"{'round':>5} {'served s':>9} {'first answer s':>15} {'1st req ms':>11} {'warm req ms':>12}"
        )
        totals = []
        for round_index in range(args.repeats):
            port = free_port()
            started = time.perf_counter()
            process = start_app([*model_args, "--device", "cpu"], port)
            try:
                url = f"http://127.0.0.1:{port}/"
                served = wait_until_serving(url, process) - started
                client = Client(url, verbose=False, download_files=False)
                first = ask(client, image)
                answered = time.perf_counter() - started
                warm = ask(client, image)
                client.close()
            finally:
                stop(process)
            totals.append(answered)
            print(
                f"{round_index + 1:5d} {served:9.2f} {answered:15.2f} "
                f"{first * 1000:11.0f} {warm * 1000:12.0f}"
            )
        print(
            f"median seconds from `python app.py` to first answer: {statistics.median(totals):.2f}"
        )


if __name__ == "__main__":
    main()
