"""``python -m serving wait URL``: block until a URL answers, for ``make serve``.

Ray's own CLI does the rest (``ray start``, ``serve run``/``serve deploy``, ``serve
shutdown``); this only waits, with a deadline and one sentence when it passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import httpx

__all__ = ["main"]


def wait_for(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser("wait", help="wait until URL answers (any status below 500)")
    wait.add_argument("url")
    wait.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    args = parser.parse_args(argv)
    if wait_for(args.url, args.timeout):
        return 0
    print(f"{args.url} did not answer within {args.timeout:g} s.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
