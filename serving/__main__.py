"""``python -m serving``: the helpers ``make serve`` needs beside Ray's own CLI.

- ``config key=value ...``: serving/config.yaml with these settings in every application's
  ``args`` (checked against ServeSettings), printed for ``serve run``.
- ``free HOST:PORT ...``: one sentence and exit status 1 when something already listens on
  one of them (else ``wait`` would take that for the page or the models coming up).
- ``wait URL [URL ...]``: block until every URL answers (below 400: a 404 from Serve means
  that application is not deployed yet), with a deadline and one sentence when it passes.

Ray's CLI does the rest (``ray start``, ``serve run``/``serve deploy``, ``serve shutdown``).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import yaml

__all__ = ["main", "config_with", "listening"]

CONFIG = Path(__file__).with_name("config.yaml")


def wait_for(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code < 400:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return False


def listening(address: str) -> bool:
    """Whether something accepts connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host or "127.0.0.1", int(port))) == 0


def config_with(settings: Sequence[str], *, host: str | None = None) -> dict:
    """The checked-in Serve config with ``key=value`` settings applied to every application."""
    from .deployments import ServeSettings

    overrides: dict[str, str] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"Settings are key=value; got {setting!r}.")
        overrides[key] = value
    config = yaml.safe_load(CONFIG.read_text())
    for application in config["applications"]:
        application["args"] = {**application["args"], **overrides}
        ServeSettings.from_args(application["args"])  # one sentence for a bad setting
    if host:
        config["http_options"]["host"] = host
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wait = commands.add_parser("wait", help="wait until every URL answers (status below 400)")
    wait.add_argument("urls", nargs="+", metavar="url")
    wait.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    config = commands.add_parser("config", help="serving/config.yaml with these settings")
    config.add_argument("settings", nargs="*", help="key=value settings of ServeSettings")
    config.add_argument("--host", help="the address Serve listens on (default: the file's)")
    free = commands.add_parser("free", help="fail if something listens on any HOST:PORT")
    free.add_argument("addresses", nargs="+", metavar="host:port")
    args = parser.parse_args(argv)
    if args.command == "free":
        busy = [address for address in args.addresses if listening(address)]
        if busy:
            print(
                f"Something already listens on {', '.join(busy)}: stop it first (`make "
                "serve-stop` if it is an earlier `make serve`), or give the page another port "
                "with GRADIO_SERVER_PORT.",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.command == "config":
        try:
            print(yaml.safe_dump(config_with(args.settings, host=args.host), sort_keys=False))
        except ValueError as err:
            print(err, file=sys.stderr)
            return 2
        return 0
    deadline = time.monotonic() + args.timeout
    for url in args.urls:
        if not wait_for(url, deadline):
            print(f"{url} did not answer within {args.timeout:g} s.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
