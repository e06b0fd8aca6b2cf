"""The commands the README and docs/scaling.md give, run as a new user runs them.

Each runs in a fresh home: ``HOME`` and Ray's temp dir (``RAY_TMPDIR``) are empty folders,
no ``RAY_*`` or Hugging Face cache variable is passed on, nothing is left from earlier runs
(a Ray token in ``~/.ray`` once hid that ``make serve`` could not start on a new machine).

- ``make serve``: the page comes up and both models answer through its ``/answer`` via Ray
  Serve; the models' own routes answer the documented multipart request. Then
  ``make serve-stop``: no Ray, HAProxy or page process started for that home is left.
- ``make run``: the page answers ``/answer``.
- The README's command-line examples, with an example picture for its placeholders.

Ray and Serve are in requirements-dev.lock, so `make install` brings them; this test does
not skip without them. ``make serve-stop`` runs ``ray stop``, which stops every Ray process
of this user: the test refuses to start while another Ray cluster runs here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PICTURE = REPO / "examples" / "easy_vqa" / "0.png"  # a triangle
QUESTION = "what shape is this?"
SERVE_PORT = 8000  # the Makefile's
# Ray processes, by the names `ray stop` looks for, and the front Serve starts.
CLUSTER_PROCESSES = {"raylet", "gcs_server", "haproxy"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def fresh_home() -> Iterator[dict[str, str]]:
    """The environment of a new user: empty HOME and Ray temp dir, a free page port."""
    home = tempfile.mkdtemp(prefix="vqa-home-")
    # Ray's sockets live under its temp dir and a socket path has at most 107 bytes: short.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    dropped = ("RAY_", "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "XDG_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env.update(
        HOME=home,
        RAY_TMPDIR=ray_tmp,
        GRADIO_SERVER_PORT=str(_free_port()),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    yield env
    for leftover in _started_in(home):  # only after a failure: kill what this test started
        leftover.kill()
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def _started_in(home: str) -> list[psutil.Process]:
    """Every live process whose environment has this HOME: what the commands started."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.environ().get("HOME") == home and process.status() != "zombie":
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _make(target: str, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        ["make", target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"make {target} failed:\n{output[-3000:]}"
    return output


def _answer_through_the_page(port: str) -> tuple:
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    try:
        return client.predict(handle_file(str(PICTURE)), QUESTION, 5, 10, 1, api_name="/answer")
    finally:
        client.close()


def _assert_both_answered(reply: tuple) -> None:
    vilt, vilt_status, blip2, blip2_status, _ = reply
    assert vilt["label"] == "triangle", reply
    assert blip2 == "triangle", reply
    assert not vilt_status.startswith("⚠") and not blip2_status.startswith("⚠"), reply


def _refuse_if_ray_runs_here() -> None:
    others = [
        process.pid
        for process in psutil.process_iter(["name"])
        if process.info["name"] in CLUSTER_PROCESSES
    ]
    busy = [port for port in (SERVE_PORT, 6379, 8265) if _listening(port)]
    if others or busy:
        pytest.fail(
            f"Ray is already running on this machine (processes {others}, ports {busy}); "
            "make serve-stop would stop it, so this test does not run until it is stopped."
        )


def test_make_serve_and_serve_stop_in_a_fresh_home(fresh_home):
    _refuse_if_ray_runs_here()
    env, home = fresh_home, fresh_home["HOME"]
    try:
        _make("serve", env, timeout=480)
        token = Path(home, ".ray", "auth_token")
        assert token.is_file() and token.read_text().strip()
        assert stat.S_IMODE(token.stat().st_mode) == 0o600

        _assert_both_answered(_answer_through_the_page(env["GRADIO_SERVER_PORT"]))
        log = (REPO / ".serve" / "page.log").read_text()
        assert f"Backend: the model server at http://127.0.0.1:{SERVE_PORT} (Ray Serve)" in log
        # docs/scaling.md's request: `curl -F image=@… -F question=… localhost:8000/vilt`.
        for route in ("vilt", "blip2"):
            response = httpx.post(
                f"http://127.0.0.1:{SERVE_PORT}/{route}",
                files={"image": (PICTURE.name, PICTURE.read_bytes(), "image/png")},
                data={"question": QUESTION},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            best = body["answers"][0]["answer"] if route == "vilt" else body["answer"]
            assert best == "triangle", body

        running = {process.name() for process in _started_in(home)}
        assert running >= CLUSTER_PROCESSES, running  # what "none left" below is about
        page = int((REPO / ".serve" / "page.pid").read_text())
        assert psutil.pid_exists(page)
    finally:
        _make("serve-stop", env, timeout=180)

    deadline = time.monotonic() + 30
    while (left := _started_in(home)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [(process.pid, process.name()) for process in left]
    assert not _listening(SERVE_PORT) and not _listening(int(env["GRADIO_SERVER_PORT"]))
    assert not (REPO / ".serve" / "page.pid").exists()


def test_make_run_in_a_fresh_home(fresh_home):
    env, port = fresh_home, fresh_home["GRADIO_SERVER_PORT"]
    log = Path(env["HOME"], "make-run.log")
    with log.open("w") as out:
        page = subprocess.Popen(
            ["make", "run"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the app it starts: one group to stop
        )
    try:
        deadline = time.monotonic() + 180
        while not _listening(int(port)):
            assert page.poll() is None, f"make run stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the page did not come up within 180 s"
            time.sleep(0.5)
        _assert_both_answered(_answer_through_the_page(port))
    finally:
        os.killpg(page.pid, signal.SIGTERM)
        try:
            page.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(page.pid, signal.SIGKILL)
            page.wait(10)


def _readme_cli_examples() -> list[str]:
    readme = (REPO / "README.md").read_text()
    return re.findall(r"^python -m vqa_core .+$", readme, flags=re.MULTILINE)


def test_readme_command_line_examples_in_a_fresh_home(fresh_home):
    commands = _readme_cli_examples()
    assert len(commands) == 2, commands
    replies = []
    for command in commands:
        # The placeholders become an example picture; "[--json]" is the optional flag, given.
        command = command.replace("[--json]", "--json")
        argv = [
            str(PICTURE) if arg in ("photo.jpg", "shape.png") else arg
            for arg in shlex.split(command)
        ]
        assert argv[0] == "python"
        done = subprocess.run(
            [sys.executable, *argv[1:]],
            cwd=REPO,
            env=fresh_home,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr[-2000:]}"
        replies.append((argv, done.stdout))
    (first_argv, first), (second_argv, second) = replies
    assert "--json" in first_argv
    answered = json.loads(first)
    blip2_answer = answered["blip2"]["answer"]
    assert answered["vilt"]["answers"] and isinstance(blip2_answer, str) and blip2_answer, answered
    assert "--only" in second_argv and second_argv[second_argv.index("--only") + 1] == "vilt"
    assert "ViLT" in second and "triangle" in second and "BLIP-2" not in second, second
