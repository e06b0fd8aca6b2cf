"""The app's two real models under the memory limits people's machines have: what auto picks.

    python bench/memory_limits.py                       # 4, 8 and 16 GB, every BLIP-2 layer
    python bench/memory_limits.py --limits 8 --depth 2,8 --repeats 1   # quick look
    python bench/memory_limits.py --limits 4 --no-fp32  # the 4 GB kiosk: int4 for BLIP-2

ViLT-B/32 and BLIP-2 OPT-2.7B (published widths; every layer unless ``--depth`` says
otherwise) with random weights are written once as sharded fp32 safetensors into a
hub-layout cache (``--cache``), which is what a user's machine holds after downloading
them. For each limit a child process starts inside a fresh memory cgroup (cgroup v1 or v2,
root needed), runs ``load_services()`` on auto exactly as app.py does, and answers with
each model; the limit is the whole process's, the Python interpreter and its imports
included, as on a machine with that much memory. One more run without a limit loads BLIP-2 in
fp32 (``--dtype float32``), the reference the 16 GB target is measured against.

Printed per run: what auto chose for each model, BLIP-2's seconds per answer (10 tokens),
the process's peak anonymous memory (sampled every 10 ms; a mapped checkpoint's file pages
are the kernel's to drop) and whether the kernel killed anything (never, is the target).
Targets: both models serve at 8 GB and at 4 GB (where BLIP-2's int8 does not fit and auto
takes int4 for its language model); at 16 GB an answer takes <= 0.5x fp32's time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import REPO_ROOT, machine_line

sys.path.insert(0, str(REPO_ROOT / "tests"))

from cgroup_limits import run_app_models, unavailable_reason

from train.hub_cache import BLIP2_FULL_DEPTH, build_real_hub_cache
from vqa_core.memory import GIB, format_gb


def row(label: str, report: dict) -> str:
    blip2 = report.get("blip2", {})
    vilt = report.get("vilt", {})
    killed = "OOM-KILLED" if report["oom_kills"] else f"exit {report['returncode']}"
    seconds = f"{blip2['seconds']:.2f}" if "seconds" in blip2 else "-"
    peak = format_gb(report["peak_anon"]) if "peak_anon" in report else "-"
    return (
        f"{label:8} {vilt.get('placement') or '-':34} {blip2.get('placement') or '-':34} "
        f"{seconds:>7} {peak:>8} {killed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="4,8,16", help="GB, comma separated")
    parser.add_argument("--depth", default=",".join(map(str, BLIP2_FULL_DEPTH)))
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "vqa-bench"))
    parser.add_argument("--repeats", type=int, default=3, help="timed answers per model")
    parser.add_argument("--no-fp32", action="store_true", help="skip the fp32 reference run")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    depth = tuple(int(n) for n in args.depth.split(","))
    cache = build_real_hub_cache(
        Path(args.cache) / f"hub-{depth[0]}-{depth[1]}", blip2_layers=depth
    )
    label = (
        "every layer" if depth == BLIP2_FULL_DEPTH else f"ViT-g {depth[0]}/39, OPT {depth[1]}/32"
    )
    print(f"machine: {machine_line()}; BLIP-2 OPT-2.7B ({label}), ViLT-B/32; 10 tokens")
    print(f"{'limit':8} {'ViLT':34} {'BLIP-2':34} {'s/ans':>7} {'peak':>8} outcome")
    results = {}
    for gigabytes in (float(g) for g in args.limits.split(",")):
        report = run_app_models(
            cache.hf_home, int(gigabytes * GIB), repeats=args.repeats, whole=True
        )
        results[gigabytes] = report
        print(row(f"{gigabytes:g} GB", report), flush=True)
        if report["blip2"].get("error"):
            print(f"         BLIP-2: {report['blip2']['error']}")
    if not args.no_fp32:
        reference = run_app_models(
            cache.hf_home, None, repeats=args.repeats, dtype="float32", quantization="none"
        )
        print(row("no limit", reference) + "  (fp32 requested)", flush=True)
        fp32_seconds = reference["blip2"].get("seconds")
        for gigabytes, report in results.items():
            seconds = report["blip2"].get("seconds")
            if fp32_seconds and seconds:
                print(
                    f"  {gigabytes:g} GB: BLIP-2 answers in {seconds / fp32_seconds:.2f}x fp32's time"
                )
    both = [g for g, r in results.items() if r["vilt"].get("answer") and r["blip2"].get("answer")]
    print(f"both models serve at: {', '.join(f'{g:g} GB' for g in both) or 'none'}")
    for target in (4.0, 8.0):
        if target in results:
            print(f"target: both serve at {target:g} GB: {'met' if target in both else 'MISSED'}")
    print(f"OOM kills: {sum(r['oom_kills'] for r in results.values())}")


if __name__ == "__main__":
    main()
