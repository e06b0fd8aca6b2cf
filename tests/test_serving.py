"""The models on Ray Serve, through HTTP, as the page sees them (serving/).

One local Ray (the machine's 2 CPUs, no dashboard) in Serve's HAProxy mode, as `make serve`
and kuberay.yaml run it, and the applications of serving/config.yaml with the embedded demo
models serve every test in this module; the fixture shuts both down.

- Through Serve both models answer as they do in-process (ViLT's scores within 1e-5,
  BLIP-2's text equal), and 16 concurrent requests are answered in batches larger than 1.
- Bad input over HTTP, drawn like the intake hardening tests: a result, or HTTP 422 with
  the intake's own sentence; never a 500, never a stack trace.
- A ViLT replica killed under load: every request is answered (the page's client asks once
  more when the replica it reached died under it), none past its timeout, and Serve brings a
  replacement up.
- The whole backend stopped and restarted under a running page: each column says the
  server is not answering, and the first request after the restart is answered.

Skipped only where ray is not installed (``pip install -r requirements-serve.txt``).
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from serving import RAY_CLUSTER_ENV

# Ray's processes read these when they start, the driver's `ray.serve` when it is imported.
os.environ.update(RAY_CLUSTER_ENV)
# One machine: no 30 s for load balancers to forget a stopped replica (as `make serve`).
os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")

# ray[serve] is in the lock CI installs, so it is imported plainly: a broken import fails
# these tests instead of skipping them.
import httpx
import ray
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from ray import serve
from test_hardening_intake import SETTINGS as INTAKE_SETTINGS
from test_hardening_intake import image_sources, questions

from serving.__main__ import config_with
from serving.client import (
    RemoteBlip2Answerer,
    RemoteViltAnswerer,
    load_remote_services,
)
from serving.deployments import (
    ServeSettings,
    model_deployment_options,
    wants_gpu,
)
from serving.protocol import image_to_bytes
from vqa_core import (
    Blip2Answerer,
    Blip2Result,
    InferenceError,
    InputError,
    ViltAnswerer,
    ViltResult,
    clean_question,
    load_image,
)
from vqa_core.registry import DEMO_CHECKPOINTS

REPO = Path(__file__).resolve().parents[1]
# Small CPU shares so both models (and a ViLT replacement) fit the 2 CPUs Ray is given.
TEST_SETTINGS = {
    "vilt": "demo",
    "blip2": "demo",
    "device": "cpu",
    "num_cpus": 0.5,
    "replicas": 1,
    "torch_threads": 1,
    "max_batch_size": 8,
    "request_timeout_s": 20,
    "health_check_period_s": 2,
}
CLIENT_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Backend:
    """The running Serve application and how to redeploy it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def deploy(self) -> None:
        """The applications of serving/config.yaml, with the test's settings."""
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        config = config_with([f"{key}={value}" for key, value in TEST_SETTINGS.items()])
        for application in config["applications"]:
            module, _, builder = application["import_path"].partition(":")
            build = getattr(importlib.import_module(module), builder)
            serve.run(
                build(application["args"]),
                name=application["name"],
                route_prefix=application["route_prefix"],
            )

    def info(self, kind: str) -> dict:
        response = httpx.get(f"{self.url}/{kind}/info", timeout=CLIENT_TIMEOUT_S)
        return response.raise_for_status().json()

    def post(self, route: str, payload: object) -> httpx.Response:
        return httpx.post(f"{self.url}{route}", json=payload, timeout=CLIENT_TIMEOUT_S)


def _ray_token_file(folder: Path) -> Path:
    """A token of the test's own, owner-only, as `ray get-auth-token --generate` writes one."""
    token = folder / "auth_token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_hex(32))
    return token


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    # Replica processes import `serving` and `vqa_core` from this checkout; they inherit the
    # environment of the Ray instance started here. Token authentication as `make serve` runs
    # it, whatever the shell says, with a token file of the test's own: with none found, a new
    # cluster writes one into ~/.ray/auth_token, the developer's real home.
    # RAY_AUTH_TOKEN_PATH is read by every Ray process, before ~/.ray, after RAY_AUTH_TOKEN.
    # RAY_AUTH_MODE is left unset: ray.init() then turns token mode on for a new cluster and
    # reloads the driver's settings. Set here, after `import ray`, the started cluster would
    # use it but the driver would not (it read its settings at import) and never reach GCS.
    token = _ray_token_file(tmp_path_factory.mktemp("ray-token"))
    wanted = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "RAY_AUTH_MODE": None,
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_AUTH_TOKEN": None,
    }
    saved = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    home_token = Path.home() / ".ray" / "auth_token"
    home_token_before = home_token.read_bytes() if home_token.exists() else None
    try:
        # "local": a fresh instance even when `make serve` left a cluster running here.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        running = Backend(_free_port())
        try:
            # The cluster found the test's token: none was written into the home.
            assert (home_token.read_bytes() if home_token.exists() else None) == home_token_before
            running.deploy()
            yield running
        finally:
            serve.shutdown()
            ray.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def local():
    """The same demo models in this process, as vqa_core serves them without Serve."""
    return (
        ViltAnswerer.from_pretrained(str(DEMO_CHECKPOINTS["vilt"]), device="cpu"),
        Blip2Answerer.from_pretrained(str(DEMO_CHECKPOINTS["blip2"]), device="cpu"),
    )


@pytest.fixture(scope="module")
def remote(backend):
    services = load_remote_services(backend.url, timeout=CLIENT_TIMEOUT_S)
    assert services.vilt is not None and services.blip2 is not None, services
    return services


def _assert_same_vilt(remote_result: ViltResult, local_result: ViltResult) -> None:
    assert [label for label, _ in remote_result.answers] == [
        label for label, _ in local_result.answers
    ]
    for (_, theirs), (_, ours) in zip(remote_result.answers, local_result.answers):
        assert abs(theirs - ours) <= 1e-5
    assert remote_result.question == local_result.question


# The same answers ---------------------------------------------------------------------------


def test_both_models_answer_through_serve_as_in_process(remote, local, easy_vqa_sample):
    vilt, blip2 = local
    paths, questions_, _ = easy_vqa_sample
    for path, question in list(zip(paths, questions_))[:6]:
        theirs = remote.vilt.answer(path, question, top_k=5)
        assert isinstance(theirs, ViltResult) and theirs.batch_size >= 1
        _assert_same_vilt(theirs, vilt.answer(path, question, top_k=5))
        generated = remote.blip2.answer(path, question, max_new_tokens=6)
        assert isinstance(generated, Blip2Result)
        assert generated.answer == blip2.answer(path, question, max_new_tokens=6).answer


def test_the_page_sees_the_backend_in_about_and_names(remote, backend):
    assert isinstance(remote.vilt, RemoteViltAnswerer)
    assert isinstance(remote.blip2, RemoteBlip2Answerer)
    assert remote.vilt.name == str(DEMO_CHECKPOINTS["vilt"])
    assert remote.vilt.placement.describe() == f"cpu / float32 via Ray Serve at {backend.url}"
    assert remote.uses_demo and remote.vilt_choice.is_demo
    assert backend.url in remote.blip2_choice.reason


def test_sixteen_concurrent_requests_are_batched_by_serve(remote, local, easy_vqa_sample):
    vilt, blip2 = local
    paths, questions_, _ = easy_vqa_sample
    paths, questions_ = paths[:16], questions_[:16]
    # The client sends each item as its own request, all at once, as 16 users would.
    results = remote.vilt.answer_batch(paths, questions_, top_k=3)
    sizes = [result.batch_size for result in results]
    assert max(sizes) > 1, f"Serve answered every request alone: {sizes}"
    for result, path, question in zip(results, paths, questions_):
        _assert_same_vilt(result, vilt.answer(path, question, top_k=3))
    generated = remote.blip2.answer_batch(paths, questions_, max_new_tokens=6)
    assert max(result.batch_size for result in generated) > 1
    expected = blip2.answer_batch(paths, questions_, max_new_tokens=6)
    assert [g.answer for g in generated] == [e.answer for e in expected]


def test_page_pictures_travel_losslessly(remote, local, easy_vqa_sample):
    """The page hands the client decoded pictures (not files); PNG keeps every pixel."""
    vilt, _ = local
    paths, questions_, _ = easy_vqa_sample
    picture = load_image(paths[0]).resize((300, 200))
    _assert_same_vilt(
        remote.vilt.answer(picture, questions_[0]), vilt.answer(picture, questions_[0])
    )


# Bad input over HTTP -----------------------------------------------------------------------


def _intake_refusal(source, question) -> str | None:
    """What vqa_core's own intake says about this input, or None when it accepts it."""
    try:
        load_image(source)
        clean_question(question)
    except InputError as err:
        return str(err)
    return None


@settings(INTAKE_SETTINGS, max_examples=40, deadline=None)
@given(source=image_sources(), question=questions, route=st.sampled_from(["/vilt", "/blip2"]))
def test_bad_input_over_http_answers_or_gets_the_intakes_message(backend, source, question, route):
    if isinstance(source, Image.Image):
        # What a client does with a picture object: the intake runs before it is sent.
        try:
            source = image_to_bytes(source)
        except InputError as err:
            assert str(err) == _intake_refusal(source, question)
            return
    payload = {"image": base64.b64encode(source).decode(), "question": question}
    if route == "/blip2":
        payload["max_new_tokens"] = 3
    response = backend.post(route, payload)
    assert response.status_code in (200, 422), response.text
    refusal = _intake_refusal(source, question)
    if refusal is not None:
        assert response.status_code == 422
        assert response.json()["error"] == refusal
    elif response.status_code == 200:
        body = response.json()
        if route == "/vilt":
            assert body["answers"], body
        else:  # the demo BLIP-2 answers every readable picture and question with some text
            assert isinstance(body["answer"], str) and body["answer"], body
    else:  # accepted by the intake, refused by the model's own checks: still a sentence
        assert response.json()["error"].strip()


@pytest.mark.parametrize(
    ("payload", "field", "expected"),
    [
        ({"question": "what shape?"}, "image", "Please upload an image."),
        ({"image": "not base64!", "question": "what?"}, "image", "not valid base64"),
        ({"image": "", "question": "q"}, "image", "The image file is empty."),
        (
            {"image": base64.b64encode(b"GIF89a").decode(), "question": "q"},
            "image",
            "not an image that can be read",
        ),
        ({"image": "<png>", "question": None}, "question", "Please type a question"),
        ({"image": "<png>", "question": 42}, "question", "must be text, not int"),
        ({"image": "<png>", "question": ["a"]}, "question", "must be text, not list"),
        ({"image": "<png>", "question": "q", "top_k": "five"}, "options", "whole number"),
        ({"image": "<png>", "question": "q", "top_k": True}, "options", "whole number"),
        ([1, 2], None, "JSON object"),
    ],
)
def test_malformed_requests_get_one_sentence_and_422(backend, payload, field, expected):
    png = base64.b64encode(image_to_bytes(Image.new("RGB", (32, 32), "red"))).decode()
    if isinstance(payload, dict):
        payload = {key: png if value == "<png>" else value for key, value in payload.items()}
    response = backend.post("/vilt", payload)
    assert response.status_code == 422
    body = response.json()
    assert expected in body["error"] and "Traceback" not in response.text
    assert body.get("field") == field
    if expected == "The image file is empty.":
        # The intake's sentence is named, so a page in another language words it itself.
        assert body["code"] == "image_empty" and body["values"] == {}


def test_not_json_and_multipart_uploads(backend):
    response = httpx.post(f"{backend.url}/vilt", content=b"\x00garbage", timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 422 and "JSON object" in response.json()["error"]
    png = image_to_bytes(Image.new("RGB", (32, 32), "blue"))
    response = httpx.post(
        f"{backend.url}/vilt",
        files={"image": ("blue.png", png, "image/png")},
        data={"question": "what color is the shape?", "top_k": "2"},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["answers"]) == 2


def test_info_and_health_describe_models_and_placement(backend):
    for kind in ("vilt", "blip2"):
        model = backend.info(kind)
        assert model["kind"] == kind and model["error"] is None and model["is_demo"]
        assert model["placement"] == {
            "device": "cpu",
            "dtype": "float32",
            "describe": "cpu / float32",
        }
        assert model["batching"]["max_batch_size"] == TEST_SETTINGS["max_batch_size"]
        assert model["deployment"]["options"]["ray_actor_options"] == {"num_cpus": 0.5}
        health = httpx.get(f"{backend.url}/{kind}/health", timeout=CLIENT_TIMEOUT_S)
        assert health.status_code == 200 and health.json() == {kind: "ok"}
    # The bare route answers too: a redirect would make every client send its image twice.
    response = httpx.post(f"{backend.url}/vilt", json={"question": "q"}, timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 422 and response.json()["field"] == "image"


# Faults -----------------------------------------------------------------------------------


def _vilt_replica_names() -> list[str]:
    prefix = "SERVE_REPLICA::vilt#ViltDeployment#"
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(prefix)
    ]


def test_a_replica_killed_under_load_is_replaced_and_nothing_hangs(
    backend, remote, easy_vqa_sample, caplog
):
    paths, questions_, _ = easy_vqa_sample
    caplog.set_level(logging.INFO, logger="serving.client")
    (victim,) = _vilt_replica_names()
    before = backend.info("vilt")["replica"]
    stop = threading.Event()
    outcomes: list[tuple[float, float, str | None]] = []  # (started, seconds, error)
    lock = threading.Lock()

    in_flight = [0]

    def user(offset: int) -> None:
        i = offset
        while not stop.is_set():
            started = time.monotonic()
            with lock:
                in_flight[0] += 1
            try:
                remote.vilt.answer(paths[i % len(paths)], questions_[i % len(paths)])
                error = None
            except InferenceError as err:
                error = str(err)
            except Exception as err:  # kept, so the assertions below show it
                error = f"unexpected {err!r}"
            with lock:
                in_flight[0] -= 1
                outcomes.append((started, time.monotonic() - started, error))
            i += 4

    users = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(4)]
    for thread in users:
        thread.start()
    # Kill only once requests are answered and more are on their way: on a loaded machine
    # a fixed pause may end before the first one has even been sent.
    ready_by = time.monotonic() + 60
    while time.monotonic() < ready_by:
        with lock:
            if outcomes and in_flight[0] >= 2:
                break
        time.sleep(0.05)
    else:
        pytest.fail(f"the users never got going: {outcomes[:3]}")
    with lock:
        killed_at = time.monotonic()
        pending = in_flight[0]
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    deadline = killed_at + 90
    while time.monotonic() < deadline:
        try:
            if backend.info("vilt")["replica"] != before:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        pytest.fail("Serve brought no ViLT replica back within 90 s")
    replaced_at = time.monotonic()
    time.sleep(3)
    stop.set()
    for thread in users:
        thread.join(CLIENT_TIMEOUT_S + 5)
        assert not thread.is_alive(), "a request hung past the client's timeout"

    # Requests were in flight when the replica died: the front answers them with its error
    # (or the connection drops) and the client asks once more, which the replacement (or,
    # until it is up, Serve's fallback proxy) answers; those sent meanwhile wait for it.
    assert pending >= 2
    assert any(started < killed_at < started + seconds for started, seconds, _ in outcomes)
    failed = [error for *_, error in outcomes if error is not None]
    slowest = max(seconds for _, seconds, _ in outcomes)
    # What made the client ask again, without the server's address: "answered /vilt with
    # HTTP 500", "dropped the connection to /vilt".
    retried = Counter(
        record.getMessage().split(" ", 5)[-1].split(";")[0]
        for record in caplog.records
        if record.name == "serving.client" and "Asking once more" in record.getMessage()
    )
    print(
        f"\nkill: {len(outcomes)} requests, {len(failed)} failed, slowest {slowest:.1f} s "
        f"(timeout {CLIENT_TIMEOUT_S:g} s), replacement answering "
        f"{replaced_at - killed_at:.1f} s after the kill; asked once more: {dict(retried)}"
    )
    assert failed == [], failed
    assert slowest <= CLIENT_TIMEOUT_S + 2
    # And once more from a fresh start: every request is answered.
    results = remote.vilt.answer_batch(paths[:8], questions_[:8])
    assert all(result.answers for result in results)
    assert _vilt_replica_names() != [victim]


def test_backend_stopped_and_restarted_under_a_running_page(backend, easy_vqa_sample):
    from ui.handlers import VQAHandlers

    paths, questions_, _ = easy_vqa_sample
    handlers = VQAHandlers(load_remote_services(backend.url, timeout=CLIENT_TIMEOUT_S))
    labels, statuses = handlers.answering.answer_vilt([paths[0]], [questions_[0]], [3])
    assert labels[0] and not statuses[0].startswith("⚠")

    serve.shutdown()
    started = time.monotonic()
    labels, statuses = handlers.answering.answer_vilt([paths[0]], [questions_[0]], [3])
    answers, blip2_statuses = handlers.answering.answer_blip2([paths[0]], [questions_[0]], [5], [1])
    assert time.monotonic() - started < CLIENT_TIMEOUT_S
    expected = (
        f"The model server at {backend.url} could not be reached; it may be stopped or still "
        "starting."
    )
    assert labels == [None] and statuses[0].startswith("⚠") and expected in statuses[0]
    assert answers == [""] and expected in blip2_statuses[0]

    backend.deploy()
    labels, statuses = handlers.answering.answer_vilt([paths[0]], [questions_[0]], [3])
    assert labels[0] and not statuses[0].startswith("⚠"), statuses
    answers, blip2_statuses = handlers.answering.answer_blip2([paths[0]], [questions_[0]], [5], [1])
    assert answers[0] and not blip2_statuses[0].startswith("⚠"), blip2_statuses


# Configuration (no cluster needed) -----------------------------------------------------


def test_settings_from_serve_run_arguments_and_their_errors():
    settings_ = ServeSettings.from_args({"vilt": "real", "replicas": "2", "num_cpus": "0.5"})
    assert (settings_.vilt, settings_.replicas, settings_.num_cpus) == ("real", 2, 0.5)
    with pytest.raises(ValueError, match="choose from: vilt, blip2"):
        ServeSettings.from_args({"vilt_model": "real"})
    with pytest.raises(ValueError, match="replicas='many' must be a int"):
        ServeSettings.from_args({"replicas": "many"})
    with pytest.raises(ValueError, match="min_replicas <= max_replicas"):
        ServeSettings.from_args({"min_replicas": 3, "max_replicas": 2})


def test_replicas_ask_for_a_gpu_exactly_when_the_model_goes_on_cuda():
    assert wants_gpu("cuda", 0) and wants_gpu("cuda:1", 0)
    assert wants_gpu("auto", 4) and not wants_gpu("auto", 0)
    assert not wants_gpu("cpu", 4) and not wants_gpu("mps", 0)
    gpu = model_deployment_options(ServeSettings(device="auto", num_gpus=0.5), cluster_gpus=1)
    assert gpu["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.5}
    cpu = model_deployment_options(ServeSettings(), cluster_gpus=0)
    assert cpu["ray_actor_options"] == {"num_cpus": 1.0}
    assert cpu["autoscaling_config"]["min_replicas"] == 1
    assert cpu["max_ongoing_requests"] >= ServeSettings().max_batch_size
    fixed = model_deployment_options(ServeSettings(replicas=3), cluster_gpus=0)
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed


def test_make_serve_config_applies_settings_to_both_applications():
    from serving.__main__ import main

    config = config_with(["vilt=real", "max_batch_size=4"], host="127.0.0.1")
    assert config["http_options"]["host"] == "127.0.0.1"
    for application in config["applications"]:
        assert application["args"]["vilt"] == "real"
        assert application["args"]["max_batch_size"] == "4"
        assert application["args"]["blip2"] == "demo"
    with pytest.raises(ValueError, match="choose from: vilt, blip2"):
        config_with(["vilt_model=real"])
    assert main(["config", "replicas=many"]) == 2


def test_checked_in_serve_config_and_kuberay_manifest_are_valid():
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load((REPO / "serving" / "config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config)
    routes = {app.name: (app.route_prefix, app.import_path) for app in schema.applications}
    assert routes == {
        "vilt": ("/vilt", "serving.deployments:build_vilt_app"),
        "blip2": ("/blip2", "serving.deployments:build_blip2_app"),
    }
    vilt_args, blip2_args = (app.args for app in schema.applications)
    assert vilt_args == blip2_args
    ServeSettings.from_args(vilt_args)  # every argument is a setting
    manifest = yaml.safe_load((REPO / "serving" / "kuberay.yaml").read_text())
    assert manifest["kind"] == "RayService"
    embedded = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert json.dumps(embedded["applications"], sort_keys=True) == json.dumps(
        config["applications"], sort_keys=True
    )
    # Every Ray process of the cluster runs in HAProxy mode: each container, and make serve.
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for pod in pods:
        (container,) = pod["template"]["spec"]["containers"]
        assert {e["name"]: e["value"] for e in container["env"]} == RAY_CLUSTER_ENV
    makefile = (REPO / "Makefile").read_text()
    for name, value in RAY_CLUSTER_ENV.items():
        assert f"serve: export {name} ?= {value}" in makefile
