"""Run by tests/cgroup_limits.py inside a memory cgroup: plan, load and answer once each.

Prints ``{"ready": true}`` once imported, waits for a line on stdin (the parent sets the
limit then), loads the app's models with ``load_services()`` as app.py does (on auto unless
argv names a dtype and a quantization after the number of timed answers), answers one question with each, and prints one JSON line: the plans, the
errors, the answers, seconds per answer, and the process's peak anonymous memory sampled
every 10 ms (file pages of a mapped checkpoint are not the model's: the kernel drops them).
"""

from __future__ import annotations

import json
import sys
import threading
import time


def rss_anon() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_anon())
            time.sleep(0.01)


def main() -> None:
    from PIL import Image

    from vqa_core import load_services

    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    sampler = PeakSampler()
    sampler.start()
    started = time.perf_counter()
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    dtype = sys.argv[2] if len(sys.argv) > 2 else "auto"
    quantization = sys.argv[3] if len(sys.argv) > 3 else "auto"
    services = load_services(dtype=dtype, quantization=quantization)
    report: dict = {"load_s": time.perf_counter() - started}
    picture = Image.new("RGB", (640, 480), (200, 40, 40))
    for kind in ("vilt", "blip2"):
        plan = getattr(services, f"{kind}_plan")
        answerer = getattr(services, kind)
        entry: dict = {
            "error": getattr(services, f"{kind}_error"),
            "placement": plan.describe() if plan else None,
            "reason": plan.reason if plan else None,
            "need": plan.need if plan else None,
        }
        if answerer is not None:
            answerer.answer(picture, "what shape is this?")  # warm-up
            seconds = []
            for _ in range(repeats):
                result = answerer.answer(picture, "what shape is this?")
                seconds.append(result.seconds)
            entry["answer"] = result.best if kind == "vilt" else result.answer
            entry["seconds"] = sorted(seconds)[len(seconds) // 2]
        report[kind] = entry
    sampler.running = False
    sampler.join()
    report["peak_anon"] = max(sampler.peak, rss_anon())
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
