"""The running app under load, faults, bad input and prying requests, on tiny local models.

Served for real (``build_demo(...).launch``) and driven over HTTP with ``gradio_client``:
- load: 20 concurrent clients x 10 requests, none fails, memory does not grow per request;
- a low queue bound answers the excess at once with a "queue is full" refusal, not a hang or a 500;
- a fault (out of memory, a runtime error) in one model shows in that model's column only,
  and the next request gets both answers;
- bad uploads and questions through the API: an answer or a message, the app keeps serving;
- file safety: ``/gradio_api/file=`` refuses ``../`` and absolute paths; kiosk uploads are
  deleted after the configured time; no outbound connection during a whole session.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import contextlib
import http.client
import ipaddress
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import httpx
import psutil
import pytest
import torch
from gradio_client import Client, handle_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import app as vqa_app
import ui
import ui.messages
import ui.page
from tests.doubles import FailOnce
from train.builders import build_blip2, build_vilt
from vqa_core import Blip2Answerer, Services, ViltAnswerer

pytestmark = pytest.mark.slow

QUESTIONS = ["what shape is this?", "what colour is the shape?", "is there a circle?"]
WARNING = "⚠️"


# ---- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("app-hardening-models")
    vilt_model, vilt_processor = build_vilt(QUESTIONS * 10, ["circle", "square", "yes", "no"])
    vilt_model.save_pretrained(folder / "vilt")
    vilt_processor.save_pretrained(folder / "vilt")
    blip2_model, blip2_processor = build_blip2(
        [f"Question: {q} Answer: no" for q in QUESTIONS] * 10
    )
    blip2_model.save_pretrained(folder / "blip2")
    blip2_processor.save_pretrained(folder / "blip2")
    return folder / "vilt", folder / "blip2"


def _load(model_dirs) -> Services:
    return Services(
        vilt=ViltAnswerer.from_pretrained(str(model_dirs[0]), device="cpu"),
        blip2=Blip2Answerer.from_pretrained(str(model_dirs[1]), device="cpu"),
    )


@pytest.fixture(scope="module")
def services(model_dirs) -> Services:
    return _load(model_dirs)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("pictures") / "shape.png"
    image = Image.new("RGB", (64, 64), "white")
    image.paste((200, 30, 30), (16, 16, 48, 48))
    image.save(path)
    return str(path)


@contextlib.contextmanager
def served(services: Services, **options):
    demo = ui.build_demo(services, **options)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **ui.launch_kwargs())
    try:
        yield demo
    finally:
        demo.close()


def _client(demo) -> Client:
    return Client(demo.local_url, verbose=False, download_files=False)


def _ask(client: Client, image: str, question: str = QUESTIONS[0]):
    return client.predict(handle_file(image), question, 3, 4, 1, api_name="/answer")


def _assert_both_answered(result) -> None:
    label, vilt_status, answer, blip2_status, _line = result
    assert label and len(label["confidences"]) == 3, result
    assert not vilt_status.startswith(WARNING) and not blip2_status.startswith(WARNING), result
    assert isinstance(answer, str) and answer, result


# ---- load --------------------------------------------------------------------------------
# The server runs in its own process, as in production, so its memory is measured alone.
SERVER = """
import sys
import ui
import ui.page
from vqa_core import Blip2Answerer, Services, ViltAnswerer
services = Services(
    vilt=ViltAnswerer.from_pretrained(sys.argv[1], device="cpu"),
    blip2=Blip2Answerer.from_pretrained(sys.argv[2], device="cpu"),
)
demo = ui.build_demo(services, max_batch_size=8, queue_size=64)
demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1",
            server_port=int(sys.argv[3]), **ui.launch_kwargs())
print("READY", demo.local_url, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server_process(model_dirs):
    repo = Path(vqa_app.__file__).resolve().parent
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model_dirs[0]), str(model_dirs[1]), str(_free_port())],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    try:
        line = ""
        deadline = time.monotonic() + 120
        while not line.startswith("READY") and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"the app exited with status {process.returncode}")
        assert line.startswith("READY"), "the app did not start within 120 s"
        yield process, line.split()[1]
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=30)


def test_twenty_clients_ten_requests_each_no_failure_no_growth(model_dirs, picture):
    clients, per_client = 20, 10
    with server_process(model_dirs) as (process, url):
        server = psutil.Process(process.pid)

        def session(index: int, requests: int) -> list[str]:
            failures = []
            client = Client(url, verbose=False, download_files=False)
            try:
                for j in range(requests):
                    try:
                        _assert_both_answered(
                            _ask(client, picture, QUESTIONS[(index + j) % len(QUESTIONS)])
                        )
                    except Exception as err:  # every failure is counted, whatever its kind
                        failures.append(f"client {index} request {j}: {err!r}")
            finally:
                client.close()
            return failures

        def round_of(requests: int) -> list[str]:
            with ThreadPoolExecutor(clients) as pool:
                return [
                    f for fs in pool.map(lambda i: session(i, requests), range(clients)) for f in fs
                ]

        # A first round at the same concurrency brings every worker thread, allocator arena
        # and cache up, so the measured round shows growth per request, not start-up costs.
        assert round_of(2) == []
        before = server.memory_info().rss
        started = time.perf_counter()
        failures = round_of(per_client)
        elapsed = time.perf_counter() - started
        after = server.memory_info().rss
    assert failures == [], failures[:5]
    # Memory growth and time are figures, not verdicts, on a shared machine: printed only.
    print(
        f"{clients * per_client} requests in {elapsed:.1f} s; server RSS "
        f"{before >> 20} -> {after >> 20} MiB"
    )


def test_low_queue_bound_refuses_the_excess_quickly_and_recovers(services, picture):
    from gradio_client.utils import QueueError

    class Slow:
        """ViLT that takes a while, so the queue really fills up."""

        def __init__(self, inner):
            self.inner = inner

        def answer_batch(self, *args, **kwargs):
            time.sleep(1.0)
            return self.inner.answer_batch(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    slow = Services(vilt=Slow(services.vilt), blip2=None, blip2_error="switched off")
    with served(slow, queue_size=2, max_batch_size=1) as demo:
        client = _client(demo)
        try:
            jobs = [
                client.submit(handle_file(picture), QUESTIONS[0], 3, api_name="/vilt")
                for _ in range(8)
            ]
            outcomes, refusals = [], []
            for job in jobs:
                try:
                    label, status = job.result(timeout=60)
                    assert len(label["confidences"]) == 3 and not status.startswith(WARNING)
                    outcomes.append("ok")
                except QueueError as err:
                    outcomes.append("busy")
                    refusals.append(str(err))
            assert "busy" in outcomes and "ok" in outcomes, outcomes
            assert all("queue is full" in r.lower() for r in refusals), refusals
            # Over HTTP the refusal is a 503 "busy", never a 500 or a hang.
            replies = _raw_join_statuses(demo, picture, language="ar")
            statuses = [status for status, _detail in replies]
            assert 503 in statuses and set(statuses) <= {200, 503}, statuses
            # The refusal says, in the caller's language, to try again shortly.
            busy = {detail for status, detail in replies if status == 503}
            assert busy == {ui.messages.message("queue_full", "ar")}, busy
            # Once the burst has drained the app serves again.
            deadline = time.monotonic() + 60
            while True:
                try:
                    label, _status = client.predict(
                        handle_file(picture), QUESTIONS[1], 3, api_name="/vilt"
                    )
                    break
                except QueueError:
                    assert time.monotonic() < deadline, "still busy a minute after the burst"
                    time.sleep(0.5)
            assert len(label["confidences"]) == 3
        finally:
            client.close()


def _upload_body(picture: str) -> dict:
    return {"files": (Path(picture).name, Path(picture).read_bytes(), "image/png")}


def _raw_join_statuses(demo, picture: str, language: str = "en") -> list[tuple[int, str]]:
    """POST straight to the queue's join endpoint while it may be full: (status, detail)."""
    upload = httpx.post(
        f"{demo.local_url}gradio_api/upload", files=_upload_body(picture), timeout=10
    )
    path = upload.json()[0]
    fn_index = next(
        i for i, dep in enumerate(demo.config["dependencies"]) if dep.get("api_name") == "vilt"
    )
    payload = {
        # The picture, the question, top-k and the page-language state (None from the API).
        "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, QUESTIONS[0], 3, None],
        "fn_index": fn_index,
        "session_hash": "hardeningprobe",
        "event_data": None,
        "trigger_id": None,
    }
    responses = [
        httpx.post(
            f"{demo.local_url}gradio_api/queue/join",
            json=payload,
            headers={"Accept-Language": language},
            timeout=10,
        )
        for _ in range(4)
    ]
    return [(r.status_code, r.json().get("detail", "")) for r in responses]


# ---- faults through the API --------------------------------------------------------------


@pytest.mark.parametrize("failing", ["vilt", "blip2"])
@pytest.mark.parametrize("error", ["oom", "runtime"])
def test_a_fault_shows_in_one_column_only_then_both_answer(services, picture, failing, error):
    module = (
        services.vilt.model.vilt.encoder.layer[0]
        if failing == "vilt"
        else services.blip2.model.language_model.get_decoder().layers[0]
    )
    exception = (
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if error == "oom"
        else RuntimeError("simulated kernel failure")
    )
    with served(services) as demo:
        client = _client(demo)
        try:
            with FailOnce(module, exception) as fault:
                label, vilt_status, answer, blip2_status, line = _ask(client, picture)
                assert fault.raised
                expected = "ran out of memory" if error == "oom" else "failed on this request"
                if failing == "vilt":
                    assert label is None or not label.get("confidences")
                    assert vilt_status.startswith(WARNING) and expected in vilt_status
                    assert not blip2_status.startswith(WARNING) and isinstance(answer, str)
                    assert answer, "BLIP-2 must still answer while ViLT fails"
                else:
                    assert len(label["confidences"]) == 3 and not vilt_status.startswith(WARNING)
                    assert blip2_status.startswith(WARNING) and expected in blip2_status
                assert "Tried to allocate" not in vilt_status + blip2_status
                assert "Only one model answered" in line
                _assert_both_answered(_ask(client, picture))
        finally:
            client.close()


# ---- bad input through the API -----------------------------------------------------------
@pytest.fixture(scope="module")
def shared_app(services):
    with served(services, max_batch_size=4) as demo:
        client = _client(demo)
        yield demo, client
        client.close()


BAD_FILES = {
    "random.png": b"\x89PNG\r\n\x1a\n" + os.urandom(300),
    "empty.jpg": b"",
    "text.jpg": b"hello, not a picture",
    "truncated.png": None,  # filled in below from a real PNG
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_uploads_get_a_message_and_the_app_keeps_serving(shared_app, picture, tmp_path, name):
    _demo, client = shared_app
    data = BAD_FILES[name]
    if data is None:
        data = Path(picture).read_bytes()[:60]
    path = tmp_path / name
    path.write_bytes(data)
    try:
        _label, vilt_status, _answer, blip2_status, _line = _ask(client, str(path))
    except Exception as err:
        # Gradio's own pre-processing may refuse the file before the app sees it: that is
        # still an answer with a reason, not a crash, as long as the app keeps serving.
        assert str(err).strip()
    else:
        assert vilt_status.startswith(WARNING) and blip2_status.startswith(WARNING)
        assert "image" in vilt_status.lower()
    _assert_both_answered(_ask(client, picture))


def test_a_non_image_upload_gets_a_plain_message_without_server_paths(shared_app, tmp_path):
    """Not Gradio's pre-processing traceback, which named the handler and the cache path."""
    _demo, client = shared_app
    path = tmp_path / "holiday.jpg"
    path.write_bytes(b"this is not a picture")
    try:
        _label, vilt_status, _answer, blip2_status, _line = _ask(client, str(path))
        text = vilt_status + blip2_status
    except Exception as err:
        text = str(err)
    assert "image" in text.lower()
    assert "/tmp/" not in text and "gradio" not in text.lower() and "index 0" not in text


@settings(
    max_examples=12,
    deadline=None,  # each example answers through the models: time is no verdict here
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    question=st.one_of(
        st.text(max_size=80),
        st.sampled_from(["", "   ", "?" * 10_000, "ما هذا؟", "这是什么？", "<b>what</b>?"]),
    )
)
def test_any_question_through_the_api_answers_or_explains(shared_app, picture, question):
    _demo, client = shared_app
    label, vilt_status, _answer, blip2_status, _line = _ask(client, picture, question)
    for status in (vilt_status, blip2_status):
        assert status.strip(), "every column says something"
    if vilt_status.startswith(WARNING):
        assert "question" in vilt_status.lower()
    else:
        assert len(label["confidences"]) == 3


# ---- file safety and privacy -------------------------------------------------------------
def _raw_get(base_url: str, raw_path: str) -> tuple[int, bytes]:
    """GET without any client-side path normalisation (httpx would collapse ``../``)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_file_route_refuses_paths_outside_the_allowed_ones(shared_app, picture, tmp_path):
    demo, _client = shared_app
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    app_file = Path(vqa_app.__file__).resolve()
    cache = Path(demo.GRADIO_CACHE).resolve()
    attempts = [
        "/gradio_api/file=/etc/passwd",
        f"/gradio_api/file={secret}",
        f"/gradio_api/file={app_file}",
        f"/gradio_api/file={cache}/../../../../etc/passwd",
        f"/gradio_api/file={cache}/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file=../../../../etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        f"/gradio_api/file={quote(str(secret))}",
        "/file=/etc/passwd",
    ]
    for raw_path in attempts:
        status, body = _raw_get(demo.local_url, raw_path)
        assert status in (400, 403, 404, 405), (raw_path, status)
        assert b"root:" not in body and b"not for the web" not in body, raw_path
    # Positive control: a file the app itself served is reachable, so the route is live.
    upload = httpx.post(
        f"{demo.local_url}gradio_api/upload", files=_upload_body(picture), timeout=10
    )
    status, body = _raw_get(demo.local_url, f"/gradio_api/file={upload.json()[0]}")
    assert status == 200 and body == Path(picture).read_bytes()


def test_kiosk_uploads_are_deleted_after_the_configured_time(services, picture, monkeypatch):
    monkeypatch.setattr(ui.page, "KIOSK_CACHE_SECONDS", (1, 1))
    with served(services, kiosk=True) as demo:
        response = httpx.post(
            f"{demo.local_url}gradio_api/upload", files=_upload_body(picture), timeout=10
        )
        uploaded = Path(response.json()[0])
        assert uploaded.exists() and uploaded.read_bytes() == Path(picture).read_bytes()
        client = _client(demo)
        try:
            _assert_both_answered(_ask(client, picture))
        finally:
            client.close()
        deadline = time.monotonic() + 15
        while uploaded.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not uploaded.exists(), f"{uploaded} still on disk after the configured 1 s"


class OutboundConnection(AssertionError):
    pass


@contextlib.contextmanager
def no_outbound_network():
    """Record every connect and name lookup; anything not loopback is refused and recorded."""
    attempts: list[str] = []
    loopback: list[str] = []
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def is_local(address) -> bool:
        if not isinstance(address, tuple):
            return True  # AF_UNIX paths stay on this machine
        host = address[0]
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def check(address) -> None:
        if is_local(address):
            loopback.append(str(address))
            return
        attempts.append(str(address))
        raise OutboundConnection(f"outbound connection attempted: {address}")

    def connect(self, address):
        check(address)
        return original_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return original_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        check((name, 0))
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts, loopback
    finally:
        socket.socket.connect = original_connect
        socket.socket.connect_ex = original_connect_ex
        socket.getaddrinfo = original_getaddrinfo


def test_the_socket_guard_catches_an_outbound_connection():
    with no_outbound_network() as (attempts, _loopback):
        with pytest.raises(OutboundConnection):
            socket.create_connection(("192.0.2.1", 80), timeout=0.5)  # TEST-NET-1
        with pytest.raises(OutboundConnection):
            socket.getaddrinfo("huggingface.co", 443)
    assert len(attempts) == 2


def test_a_whole_session_with_local_models_makes_no_outbound_connection(model_dirs, picture):
    with no_outbound_network() as (attempts, loopback):
        session_services = _load(model_dirs)
        with served(session_services) as demo:
            client = _client(demo)
            try:
                _assert_both_answered(_ask(client, picture))
                label, _status = client.predict(
                    handle_file(picture), QUESTIONS[1], 2, api_name="/vilt"
                )
                assert len(label["confidences"]) == 2
            finally:
                client.close()
    assert attempts == [], attempts
    assert loopback, "the guard saw no connection at all, so it was not in the path"


# ---- the picture door: only this page's pictures are read (issue 20) ----------------------
REFUSED = "This picture did not come from this page"


def _call(demo, api: str, data: list, *, session: str | None = None, headers=None):
    """One call of ``/gradio_api/call/<api>`` as any HTTP client could make it, with no
    client-side help (``gradio_client`` would add Gradio's file marker itself)."""
    base = demo.local_url.rstrip("/")
    body: dict = {"data": data}
    if session:
        body["session_hash"] = session
    posted = httpx.post(f"{base}/gradio_api/call/{api}", json=body, headers=headers, timeout=30)
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.text
    stream = httpx.get(f"{base}/gradio_api/call/{api}/{posted.json()['event_id']}", timeout=120)
    event, payload = None, None
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            payload = json.loads(line.split(":", 1)[1])
    return event, payload


def _uploaded(demo, picture: str, name: str | None = None) -> str:
    files = {"files": (name or Path(picture).name, Path(picture).read_bytes(), "image/png")}
    response = httpx.post(f"{demo.local_url}gradio_api/upload", files=files, timeout=10)
    return response.json()[0]


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


# Every event that reads the picture, with its other inputs.
PICTURE_EVENTS = {
    "answer": lambda image: [image, QUESTIONS[0], 3, 4, 1],
    "vilt": lambda image: [image, QUESTIONS[0], 3],
    "blip2": lambda image: [image, QUESTIONS[0], 4, 1],
    "ask": lambda image: [image, QUESTIONS[0], 3, 4, 1, []],
    "describe": lambda image: [image, 4, 1],
}


def test_a_server_file_is_refused_by_every_picture_event_alike(shared_app, picture, tmp_path):
    """A path sent without Gradio's marker skipped Gradio's "uploaded files only" check and
    was answered about; the sentence also told which paths exist."""
    import pillow_heif

    demo, _client = shared_app
    secret_text = tmp_path / "secret.txt"
    secret_text.write_text("root:x:0:0")
    server_files = [picture, str(secret_text), str(tmp_path / "no-such-file.png"), "/etc/passwd"]
    for api, arguments in PICTURE_EVENTS.items():
        seen = set()
        for path in server_files:
            for form in ({"path": path}, path, _file(path)):
                event, payload = _call(demo, api, arguments(form))
                text = json.dumps(payload, ensure_ascii=False)
                if event == "error":  # Gradio's own check (marker present): still refused
                    assert form == _file(path) and "not uploaded" in text, (api, form, text)
                    continue
                assert event == "complete", (api, form, event, text)
                statuses = [s for s in payload if isinstance(s, str) and s.startswith(WARNING)]
                assert statuses and all(REFUSED in s for s in statuses), (api, form, payload)
                assert "confidences" not in text and path not in text, (api, form, text)
                seen.add(tuple(statuses))
        assert len(seen) == 1, f"/{api} words refusals differently per path: {seen}"
    # /preview would hand back a PNG copy of any HEIC file on the server.
    heic = tmp_path / "private.heic"
    pillow_heif.from_pillow(Image.open(picture).convert("RGB")).save(heic, quality=90)
    for form in ({"path": str(heic)}, str(heic)):
        event, payload = _call(demo, "preview", [form])
        assert event == "complete" and payload == [{"__type__": "update"}], payload
    # Positive control: the same picture uploaded through the page is answered.
    event, payload = _call(
        demo, "answer", PICTURE_EVENTS["answer"](_file(_uploaded(demo, picture)))
    )
    assert event == "complete" and len(payload[0]["confidences"]) == 3, payload


def test_a_refused_picture_fails_only_its_own_item_of_a_batch(services, picture):
    """A malformed picture used to fail Gradio's validation for the whole batch it joined."""

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def answer_batch(self, *args, **kwargs):
            time.sleep(0.5)
            return self.inner.answer_batch(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    slow = Services(vilt=Slow(services.vilt), blip2=None, blip2_error="switched off")
    with served(slow, max_batch_size=8) as demo:
        good = _file(_uploaded(demo, picture))
        forms = [good, "/etc/passwd", good, {"path": picture}, good, 42, good]
        with ThreadPoolExecutor(len(forms)) as pool:
            results = list(
                pool.map(lambda form: _call(demo, "vilt", [form, QUESTIONS[0], 3]), forms)
            )
    for form, (event, payload) in zip(forms, results):
        assert event == "complete", (form, event, payload)
        label, status, _route = payload
        if form is good:
            assert len(label["confidences"]) == 3 and not status.startswith(WARNING), payload
        else:
            assert REFUSED in status and "validation" not in status, payload


def test_a_kiosk_reset_deletes_only_what_no_one_else_shows(services, picture, tmp_path):
    """A reset deleted the shared example (a 403 for every later visitor), another visitor's
    identical upload, and any cached upload whose path the call named."""
    with served(services, kiosk=True) as demo:
        examples = sorted(
            path for block in demo.blocks.values() for path in getattr(block, "keep_in_cache", ())
        )
        assert examples, "the kiosk shows examples"
        example = examples[0]
        _call(demo, "new_picture", [_file(example)], session="visitor-a")
        _call(demo, "reset", [_file(example)], session="visitor-a")
        assert Path(example).exists(), "a reset deleted the shared example"
        _event, payload = _call(
            demo, "answer", PICTURE_EVENTS["answer"](_file(example)), session="visitor-b"
        )
        assert len(payload[0]["confidences"]) == 3, payload
        # Two visitors with the same photo share one stored file.
        shared = _uploaded(demo, picture, "phone.png")
        assert _uploaded(demo, picture, "phone.png") == shared
        for session in ("visitor-a", "visitor-b"):
            _call(demo, "new_picture", [_file(shared)], session=session)
        _call(demo, "reset", [_file(shared)], session="visitor-a")
        # A caller naming a picture it never showed deletes nothing either.
        _call(demo, "reset", [_file(shared)], session="visitor-c")
        assert Path(shared).exists(), "one visitor's reset deleted another's picture"
        _event, payload = _call(
            demo, "answer", PICTURE_EVENTS["answer"](_file(shared)), session="visitor-b"
        )
        assert len(payload[0]["confidences"]) == 3, payload
        # The last visitor showing it leaves: now it goes at once.
        _call(demo, "reset", [_file(shared)], session="visitor-b")
        assert not Path(shared).exists(), "kiosk mode kept a picture no one shows"


def test_a_kiosk_picture_in_use_outlives_the_cache_age(services, picture, monkeypatch):
    """The sweep went by upload time: a visitor still asking lost the picture after 5 min.
    Scaled down: a 3 s cache age, a visitor asking for three times as long."""
    monkeypatch.setattr(ui.page, "KIOSK_CACHE_SECONDS", (1, 3))
    with served(services, kiosk=True) as demo:
        uploaded = _uploaded(demo, picture)
        _call(demo, "new_picture", [_file(uploaded)], session="visitor")
        until = time.monotonic() + 9
        asked = 0
        while time.monotonic() < until:
            event, payload = _call(
                demo, "vilt", [_file(uploaded), QUESTIONS[0], 3], session="visitor"
            )
            assert event == "complete" and len(payload[0]["confidences"]) == 3, (asked, payload)
            asked += 1
            time.sleep(0.5)
        assert Path(uploaded).exists() and asked >= 5
        # Once nobody uses it, it goes by the same sweep.
        deadline = time.monotonic() + 15
        while Path(uploaded).exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not Path(uploaded).exists(), "an abandoned picture outlived the cache age"


def test_data_urls_and_request_bodies_follow_the_upload_size_rule(shared_app, picture):
    """A 30 MB JPEG as a data: URL was accepted although the upload route refuses 10 MB."""
    import base64

    demo, _client = shared_app
    small = "data:image/png;base64," + base64.b64encode(Path(picture).read_bytes()).decode()
    event, payload = _call(demo, "vilt", [{"url": small, "path": None}, QUESTIONS[0], 3])
    assert event == "complete" and len(payload[0]["confidences"]) == 3, payload
    over = "data:image/jpeg;base64," + base64.b64encode(os.urandom(10_600_000)).decode()
    event, payload = _call(demo, "vilt", [{"url": over, "path": None}, QUESTIONS[0], 3])
    assert event == "complete" and "larger than 10 MB" in payload[1], payload
    huge = "data:image/jpeg;base64," + "A" * (30 << 20)
    event, text = _call(demo, "vilt", [{"url": huge, "path": None}, QUESTIONS[0], 3])
    assert event == "http 413" and "larger than 16 MB" in text, (event, text[:200])
    event, payload = _call(demo, "vilt", [{"url": small, "path": None}, QUESTIONS[1], 3])
    assert event == "complete" and len(payload[0]["confidences"]) == 3, payload


def test_a_picture_url_is_refused_without_a_request(shared_app, monkeypatch):
    """Gradio downloads a public URL sent as a picture: the canary (on loopback, made to look
    public to Gradio's check) must see no request at all."""
    import http.server
    import threading

    import safehttpx

    hits: list[str] = []

    class Canary(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(b"")

        def log_message(self, *args):
            pass

    canary = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    threading.Thread(target=canary.serve_forever, daemon=True).start()
    monkeypatch.setattr(safehttpx, "is_public_ip", lambda ip: True)
    demo, _client = shared_app
    url = f"http://127.0.0.1:{canary.server_address[1]}/photo.png"
    try:
        forms = (_file(url), {"path": url}, {"path": None, "url": url}, url)
        results = [_call(demo, "vilt", [form, QUESTIONS[0], 3]) for form in forms]
    finally:
        canary.shutdown()
    assert hits == [], f"the server fetched {hits}"
    for form, (event, payload) in zip(forms, results):
        assert event == "complete" and payload[1].startswith(WARNING), (form, payload)


def test_a_history_over_the_bound_is_refused_before_it_is_read(shared_app, picture):
    """100,000 turns were accepted and cost 10 s of CPU, delaying every other visitor."""
    demo, _client = shared_app
    image = _file(_uploaded(demo, picture))
    history = [["what shape is it?", "a circle"]] * 100_000
    event, payload = _call(demo, "ask", [image, QUESTIONS[0], 3, 4, 1, history])
    assert event == "complete", payload
    assert "history is too long" in payload[1] and "history is too long" in payload[3], payload
    event, payload = _call(demo, "ask", [image, QUESTIONS[0], 3, 4, 1, history[:3]])
    assert len(payload[0]["confidences"]) == 3 and not payload[3].startswith(WARNING), payload


def test_what_a_model_writes_is_shown_as_text_in_every_line(tiny_vilt_for_markdown):
    """A generated link or image rendered in the agreement and description lines (images
    load from a third party); so did a translated question's notice."""
    from markdown_it import MarkdownIt

    from ui.conversation import render_conversation
    from ui.handlers import VQAHandlers
    from vqa_core.translation import QuestionRoute

    hostile = "![x](http://198.51.100.7/x.png) [win](http://198.51.100.7) <img src=x> **b**"
    vilt, picture = tiny_vilt_for_markdown

    class Writes:
        name = "writer"
        placement = vilt.placement

        def answer_batch(self, images, questions, **kwargs):
            from vqa_core import Blip2Result

            return [
                Blip2Result(hostile, q, seconds=0.01, batch_size=len(images), model="writer")
                for q in questions
            ]

        def describe_batch(self, images, **kwargs):
            return self.answer_batch(images, [""] * len(images))

    handlers = VQAHandlers(Services(vilt=vilt, blip2=Writes()))
    renderer = MarkdownIt("commonmark")

    def assert_text(markdown: str) -> None:
        html = renderer.render(markdown)
        assert "<img" not in html and "<a " not in html, html
        assert "**b**" in html and "198.51.100.7" in html, html  # shown, as text

    *_, lines = handlers.answering.answer_both([picture], [QUESTIONS[0]], [3], [4], [1])
    assert_text(lines[0])

    request = SimpleNamespace(headers={"accept-language": "en"}, session_hash="s")
    _caption, _status, line, _quality, conversation, view = handlers.describing.describe_page(
        picture, [], request
    )
    assert_text(line)
    assert_text(view)
    assert_text(render_conversation(conversation))
    route = QuestionRoute(
        original="ما هذا؟", english=hostile, status="translated", script="ar", error=None
    )
    assert_text(handlers.lines.notice(route, "en"))


@pytest.fixture
def tiny_vilt_for_markdown(services, picture):
    return services.vilt, picture


def test_the_lines_say_what_happened_in_plain_words(shared_app, picture):
    demo, _client = shared_app
    # Neither model answered: not "only one model answered".
    _event, payload = _call(demo, "answer", PICTURE_EVENTS["answer"]("not a picture"))
    assert "Neither model answered" in payload[4], payload
    # A raw string as the picture: a sentence, not pydantic's validation message.
    assert REFUSED in payload[1] and "validation" not in json.dumps(payload), payload
    # /agreement with its four documented arguments, ViLT's answers in either form a Label
    # value takes: a line, never a traceback.
    _demo, client = shared_app
    for label in (
        {"label": "red", "confidences": [{"label": "red", "confidence": 0.9}]},
        {"label": "red"},
    ):
        line, *_rest = client.predict(label, "Red.", "ok", "ok", api_name="/agreement")
        assert line.startswith("ViLT: red. BLIP-2: Red. The two models agree"), (label, line)
