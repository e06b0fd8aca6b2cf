"""The page's client of the model server (serving/client.py), against servers that misbehave.

No Ray here (tests/test_serving.py runs the real Serve backend): a port nobody listens on,
a server that accepts and never answers, and one that answers with errors. Each request
ends within its timeout with one sentence naming the server, the page's column shows it,
and the next request after the server recovers is answered.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from serving.client import (
    BackendUnavailableError,
    ModelServer,
    RemoteViltAnswerer,
    load_remote_services,
)
from serving.protocol import decode_image, encode_image, int_option
from vqa_core import ImageInputError, InferenceError, InputError, QuestionError, load_image

PICTURE = Image.new("RGB", (16, 16), "red")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _SilentServer:
    """Accepts connections and never answers: a model server stuck on a long batch."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        self.socket.close()


def _scripted_server(replies: list[tuple[int, object]], port: int = 0):
    """An HTTP server answering each request with the next (status, body) in ``replies``."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append({"path": self.path, "body": json.loads(body) if body else None})
            status, payload = replies.pop(0) if replies else (500, "no reply left")
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:  # keep pytest's output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", seen


VILT_REPLY = {
    "model": "vilt-easyvqa",
    "answers": [{"answer": "red", "score": 0.9}, {"answer": "blue", "score": 0.05}],
    "truncated": False,
    "seconds": 0.01,
    "batch_size": 3,
    "question": "what color?",
}


def test_a_server_that_is_down_gets_one_sentence_and_no_wait():
    url = f"http://127.0.0.1:{_free_port()}"
    services = load_remote_services(url, timeout=5)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as caught:
        services.vilt.answer(PICTURE, "what color?")
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"The model server at {url} could not be reached; it may be stopped or still starting."
    )
    assert isinstance(caught.value, InferenceError)


def test_a_server_that_never_answers_times_out_with_the_sentence():
    silent = _SilentServer()
    try:
        answerer = RemoteViltAnswerer(ModelServer(silent.url, timeout=0.5))
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            answerer.answer_batch([PICTURE] * 4, ["what color?"] * 4)
        assert time.monotonic() - started < 3, "a request outlived its timeout"
        assert str(caught.value) == f"The model server at {silent.url} did not answer within 0.5 s."
    finally:
        silent.close()


def test_the_page_column_says_so_and_the_next_request_after_recovery_succeeds():
    from ui.handlers import VQAHandlers

    infos = [(200, {"name": "vilt-easyvqa"}), (200, {"name": "blip2-easyvqa"})]
    server, url, _ = _scripted_server(infos)
    handlers = VQAHandlers(load_remote_services(url, timeout=5))
    server.shutdown()
    server.server_close()
    labels, statuses = handlers.answer_vilt([PICTURE], ["what color?"], [2])
    assert labels == [None]
    assert statuses[0].startswith("⚠")
    assert f"The model server at {url} could not be reached" in statuses[0]
    # The server comes back on the same address: the very next request is answered.
    port = int(url.rsplit(":", 1)[1])
    revived, _, seen = _scripted_server([(200, VILT_REPLY)], port=port)
    try:
        labels, statuses = handlers.answer_vilt([PICTURE], ["what color?"], [2])
    finally:
        revived.shutdown()
        revived.server_close()
    assert labels[0] == {"red": 0.9, "blue": 0.05}
    assert "batch" in statuses[0] and not statuses[0].startswith("⚠")
    sent = seen[0]["body"]
    assert seen[0]["path"] == "/vilt" and sent["question"] == "what color?" and sent["top_k"] == 2
    assert load_image(decode_image(sent["image"])).tobytes() == PICTURE.tobytes()


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (422, {"error": "The image file is empty.", "field": "image"}, ImageInputError, None),
        (422, {"error": "Please type a question.", "field": "question"}, QuestionError, None),
        (422, {"error": "top_k must be a whole number.", "field": "options"}, InputError, None),
        (
            503,
            {"error": "ViLT ran out of memory on this request."},
            InferenceError,
            "could not answer: ViLT ran out of memory on this request.",
        ),
        (503, "Service Unavailable", BackendUnavailableError, "answered /vilt with HTTP 503"),
        (200, "not json", InferenceError, "sent a reply this page cannot read"),
    ],
)
def test_server_errors_become_the_matching_vqa_error(status, body, error, text):
    server, url, _ = _scripted_server([(status, body)])
    try:
        answerer = RemoteViltAnswerer(ModelServer(url, timeout=5))
        with pytest.raises(error) as caught:
            answerer.answer(PICTURE, "what color?")
    finally:
        server.shutdown()
        server.server_close()
    expected = body["error"] if status == 422 else text
    assert expected in str(caught.value)
    if status != 422:
        assert url in str(caught.value)


def test_a_model_the_server_could_not_load_is_unavailable_with_its_reason():
    vilt = {
        "name": "v",
        "source": "/m/vilt",
        "reason": "named",
        "is_demo": False,
        "placement": {"device": "cuda:0", "dtype": "float16"},
    }
    blip2 = {"error": "Could not load BLIP-2 from 'x': no such folder"}
    server, url, seen = _scripted_server([(200, vilt), (200, blip2)])
    try:
        services = load_remote_services(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert [request["path"] for request in seen] == ["/vilt/info", "/blip2/info"]
    assert services.blip2 is None
    assert services.blip2_error.startswith("Could not load BLIP-2 from 'x'")
    assert url in services.blip2_error
    assert services.vilt.placement.describe() == f"cuda:0 / float16 via Ray Serve at {url}"
    assert services.vilt_choice.source == "/m/vilt" and url in services.vilt_choice.reason


def test_wire_format_round_trip_and_option_checks():
    assert load_image(decode_image(encode_image(PICTURE))).tobytes() == PICTURE.tobytes()
    assert decode_image("data:image/png;base64," + encode_image(PICTURE))[:4] == b"\x89PNG"
    with pytest.raises(ImageInputError, match="Please upload an image"):
        decode_image(None)
    assert int_option("top_k", "3", default=5, low=1, high=13) == 3
    assert int_option("top_k", 99, default=5, low=1, high=13) == 13
    assert int_option("top_k", None, default=5, low=1, high=13) == 5
    for bad in ("x", 2.5, True, float("nan")):
        with pytest.raises(InputError, match="top_k must be a whole number from 1 to 13"):
            int_option("top_k", bad, default=5, low=1, high=13)
    with pytest.raises(ValueError, match="http:// or https://"):
        ModelServer("127.0.0.1:8000")


def test_app_with_a_backend_builds_the_same_page_over_remote_answerers(monkeypatch, capsys):
    import app
    from ui.page import about_markdown

    infos = [
        (
            200,
            {
                "name": f"/srv/{kind}-easyvqa",
                "source": f"/srv/{kind}-easyvqa",
                "reason": "the embedded demo preset was requested (argument)",
                "is_demo": True,
                "placement": {"device": "cpu", "dtype": "float32"},
                "labels": ["red", "circle"] if kind == "vilt" else None,
            },
        )
        for kind in ("vilt", "blip2")
    ]
    server, url, _ = _scripted_server(infos)
    built = {}

    class Launched:
        def launch(self, **kwargs):
            built["launch"] = kwargs

    def build_demo(services, **kwargs):
        built["services"] = services
        return Launched()

    monkeypatch.setattr(app, "build_demo", build_demo)
    monkeypatch.setenv("VQA_TRANSLATION", "off")
    try:
        app.main(["--backend", url, "--port", "7999"])
    finally:
        server.shutdown()
        server.server_close()
    services = built["services"]
    assert isinstance(services.vilt, RemoteViltAnswerer) and services.vilt.labels == [
        "red",
        "circle",
    ]
    out = capsys.readouterr().out
    assert f"Backend: the model server at {url} (Ray Serve)" in out
    assert f"ViLT: /srv/vilt-easyvqa on cpu / float32 via Ray Serve at {url}" in out
    about = about_markdown(services)
    assert f"on cpu / float32 via Ray Serve at {url}" in about and "demo models" in about


def test_app_backend_arguments():
    import app

    assert app.parse_args(["--backend", "http://10.0.0.5:8000"]).backend == "http://10.0.0.5:8000"
    with pytest.raises(SystemExit):
        app.parse_args(["--backend", "http://10.0.0.5:8000", "--vilt", "real"])
    with pytest.raises(SystemExit):
        app.parse_args(["--backend", "http://x:8000", "--backend-timeout", "0"])


def test_a_model_application_that_is_not_up_yet_still_gets_an_answerer():
    """A 404 for one model's /info (its application still deploying) leaves the other
    model's info read, and both columns answer once the server has them."""
    blip2 = {"name": "b", "source": "/m/blip2", "is_demo": False}
    server, url, seen = _scripted_server([(404, "Path '/vilt/info' not found."), (200, blip2)])
    try:
        services = load_remote_services(url, timeout=5)
        assert services.vilt is not None and services.vilt_error is None
        assert services.blip2_choice.source == "/m/blip2"
        assert [request["path"] for request in seen] == ["/vilt/info", "/blip2/info"]
    finally:
        server.shutdown()
        server.server_close()


def test_make_serve_waits_until_each_model_application_is_deployed():
    """`python -m serving wait`: Serve's 404 for an application still deploying is not up."""
    from serving.__main__ import main

    server, url, seen = _scripted_server([(404, "Path '/vilt/info' not found.")] * 3)
    try:
        started = time.monotonic()
        assert main(["wait", f"{url}/vilt/info", "--timeout", "1.5"]) == 1
        assert 1.5 <= time.monotonic() - started < 10
        assert seen and all(request["path"] == "/vilt/info" for request in seen)
    finally:
        server.shutdown()
        server.server_close()
    server, url, seen = _scripted_server([(200, {"kind": "vilt"}), (200, {"kind": "blip2"})])
    try:
        assert main(["wait", f"{url}/vilt/info", f"{url}/blip2/info", "--timeout", "10"]) == 0
        assert [request["path"] for request in seen] == ["/vilt/info", "/blip2/info"]
    finally:
        server.shutdown()
        server.server_close()
