"""The page's client of the model server (serving/client.py), against servers that misbehave.

No Ray here (tests/test_serving.py runs the real Serve backend): a port nobody listens on,
a server that accepts and never answers, and one that answers with errors. Each request
ends within its timeout with one sentence naming the server, the page's column shows it,
and the next request after the server recovers is answered. A request whose replica went
away under it (the front's plain 500/502/503, a reset connection) is asked once more within
its deadline, nothing else is; in a batch, one visitor's failure stays theirs.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

import serving.client
from serving.client import (
    BackendUnavailableError,
    ModelServer,
    RemoteBlip2Answerer,
    RemoteViltAnswerer,
    load_remote_services,
)
from serving.protocol import decode_image, encode_image, int_option
from vqa_core import (
    ImageInputError,
    InferenceError,
    InputError,
    PartialBatchError,
    QuestionError,
    load_image,
)

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


# What a handler of _model_server returns to cut the connection instead of answering.
RESET = object()


def _model_server(reply):
    """An HTTP server that answers each request with ``reply(path, body, attempt)``: a
    (status, body) pair, or RESET to drop the connection mid-request as a dying replica
    does. ``attempt`` counts the requests seen so far with the same path and body."""
    seen: list[dict] = []
    counts: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with lock:
                seen.append({"path": self.path, "body": body})
                counts[(self.path, raw)] += 1
                attempt = counts[(self.path, raw)]
            outcome = reply(self.path, body, attempt)
            if outcome is RESET:
                # SO_LINGER 0: close() sends a reset, as the kernel does for a killed process.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            status, payload = outcome
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", seen


def _stop(server) -> None:
    server.shutdown()
    server.server_close()


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
    with pytest.raises(BackendUnavailableError) as caught:
        services.vilt.answer(PICTURE, "what color?")
    assert str(caught.value) == (
        f"The model server at {url} could not be reached; it may be stopped or still starting."
    )
    assert isinstance(caught.value, InferenceError)


def test_a_server_that_never_answers_times_out_with_the_sentence():
    silent = _SilentServer()
    try:
        answerer = RemoteViltAnswerer(ModelServer(silent.url, timeout=0.5))
        with pytest.raises(BackendUnavailableError) as caught:
            answerer.answer_batch([PICTURE] * 4, ["what color?"] * 4)
        assert str(caught.value) == f"The model server at {silent.url} did not answer within 0.5 s."
        time.sleep(0.3)
        assert len(silent.held) == 4, "a request that timed out was sent again"
    finally:
        silent.close()


def test_the_page_column_says_so_and_the_next_request_after_recovery_succeeds():
    from ui.handlers import VQAHandlers

    infos = [(200, {"name": "vilt-easyvqa"}), (200, {"name": "blip2-easyvqa"})]
    server, url, _ = _scripted_server(infos)
    handlers = VQAHandlers(load_remote_services(url, timeout=5))
    server.shutdown()
    server.server_close()
    labels, statuses = handlers.answering.answer_vilt([PICTURE], ["what color?"], [2])
    assert labels == [None]
    assert statuses[0].startswith("⚠")
    assert f"The model server at {url} could not be reached" in statuses[0]
    # The server comes back on the same address: the very next request is answered.
    port = int(url.rsplit(":", 1)[1])
    revived, _, seen = _scripted_server([(200, VILT_REPLY)], port=port)
    try:
        labels, statuses = handlers.answering.answer_vilt([PICTURE], ["what color?"], [2])
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
        (
            500,
            {"error": "An unexpected error stopped this request."},
            InferenceError,
            "could not answer: An unexpected error stopped this request.",
        ),
        (504, "Gateway Timeout", BackendUnavailableError, "answered /vilt with HTTP 504"),
        (200, "not json", InferenceError, "sent a reply this page cannot read"),
    ],
)
def test_server_errors_become_the_matching_vqa_error(status, body, error, text):
    """The replica's own errors (JSON with a sentence) and a timeout are asked once only."""
    server, url, seen = _scripted_server([(status, body), (200, VILT_REPLY)])
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
    assert len(seen) == 1, "an error that is not a lost replica was retried"


def test_a_server_that_is_down_is_said_in_arabic_on_the_arabic_page():
    from ui.messages import error_sentence

    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BackendUnavailableError) as caught:
        load_remote_services(url, timeout=5).vilt.answer(PICTURE, "what color?")
    said = error_sentence(caught.value, "ar")
    assert said.startswith("تعذّر الوصول إلى خادم النماذج") and url in said
    assert "could not" not in said
    # ... and so does the answer column that shows it, on the Arabic page only.
    from ui.events import item_status

    column = item_status(caught.value, "ViLT", "ar")
    assert "تعذّر الوصول إلى خادم النماذج" in column and "could not be reached" not in column
    assert "could not be reached" in item_status(caught.value, "ViLT", "en")


@pytest.mark.parametrize(
    ("status", "body", "arabic"),
    [
        # The server's intake names its sentence: the Arabic page words it as the local intake.
        (
            422,
            {"error": "The image file is empty.", "field": "image", "code": "image_empty",
             "values": {}},
            "ملف الصورة فارغ.",
        ),
        (
            422,
            {"error": "The question is too long.", "field": "question",
             "code": "question_too_long", "values": {"limit": 500}},
            "السؤال طويل جدًا",
        ),
        (503, {"error": "ViLT ran out of memory on this request."}, "لم يستطع خادم النماذج"),
        (504, "Gateway Timeout", "برمز"),
        (200, "not json", "ردًّا لا تستطيع هذه الصفحة قراءته"),
    ],
)  # fmt: skip
def test_server_errors_are_said_in_arabic(status, body, arabic):
    from ui.messages import error_sentence

    server, url, _ = _scripted_server([(status, body)])
    try:
        answerer = RemoteViltAnswerer(ModelServer(url, timeout=5))
        with pytest.raises(InferenceError if status != 422 else InputError) as caught:
            answerer.answer(PICTURE, "what color?")
    finally:
        server.shutdown()
        server.server_close()
    said = error_sentence(caught.value, "ar")
    assert arabic in said
    assert error_sentence(caught.value, "en") == str(caught.value)  # English unchanged


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
    from ui.about import about_markdown

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
        assert time.monotonic() - started >= 1.5  # it waited its whole timeout
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


# A replica lost under a request: asked once more -------------------------------------------

LOST_REPLIES = {
    "HAProxy's own 502": (502, "Bad Gateway"),
    "no replica up yet (503)": (503, "Service Unavailable"),
    # Serve's HAProxy rewrites its 502/503/504 into this (its errorfile).
    "Serve's HAProxy rewrite (500)": (500, "Internal Server Error"),
    "a reset connection": RESET,
}


@pytest.fixture
def quick_retry(monkeypatch):
    monkeypatch.setattr(serving.client, "RETRY_PAUSE_S", 0.05)
    monkeypatch.setattr(serving.client, "RETRY_MIN_S", 0.2)


@pytest.mark.parametrize("lost", LOST_REPLIES.values(), ids=LOST_REPLIES.keys())
def test_a_request_whose_replica_died_is_asked_once_more_and_answered(lost, quick_retry):
    server, url, seen = _model_server(
        lambda path, body, attempt: lost if attempt == 1 else (200, VILT_REPLY)
    )
    try:
        result = RemoteViltAnswerer(ModelServer(url, timeout=5)).answer(PICTURE, "what color?", 2)
    finally:
        _stop(server)
    assert result.answers == [("red", 0.9), ("blue", 0.05)]
    assert [request["path"] for request in seen] == ["/vilt", "/vilt"]
    first, second = (request["body"] for request in seen)
    assert first == second and first["question"] == "what color?" and first["top_k"] == 2
    assert load_image(decode_image(second["image"])).tobytes() == PICTURE.tobytes()


@pytest.mark.parametrize("lost", LOST_REPLIES.values(), ids=LOST_REPLIES.keys())
def test_a_lost_replica_is_retried_once_only_then_the_sentence(lost, quick_retry):
    server, url, seen = _model_server(lambda path, body, attempt: lost)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            RemoteBlip2Answerer(ModelServer(url, timeout=5)).answer(PICTURE, "what color?")
    finally:
        _stop(server)
    assert len(seen) == 2
    assert str(caught.value).startswith(f"The model server at {url} ")
    assert "try again shortly." in str(caught.value)


def test_the_second_try_stays_within_the_requests_deadline(quick_retry):
    # The first try fails at once; the second hangs: the request still ends at its deadline.
    def reply(path, body, attempt):
        if attempt == 1:
            return (502, "Bad Gateway")
        time.sleep(3)
        return (200, VILT_REPLY)

    server, url, seen = _model_server(reply)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            RemoteViltAnswerer(ModelServer(url, timeout=1.0)).answer(PICTURE, "what color?")
    finally:
        _stop(server)
    # Without the deadline the second try would have been answered (200, after 3 s).
    assert len(seen) == 2
    assert str(caught.value) == f"The model server at {url} did not answer within 1 s."
    # A loss with too little of the deadline left is not asked again.
    server, url, seen = _model_server(
        lambda path, body, attempt: time.sleep(0.85) or (502, "Bad Gateway")
    )
    try:
        with pytest.raises(BackendUnavailableError, match="answered /vilt with HTTP 502"):
            RemoteViltAnswerer(ModelServer(url, timeout=1.0)).answer(PICTURE, "what color?")
    finally:
        _stop(server)
    assert len(seen) == 1


# One failing item of a batch fails only its own visitor -------------------------------------

COLOURS = ["red", "blue", "green"]
BROKEN = "what is this broken one?"


def _per_question_server():
    """Answers each question with its own colour; the BROKEN one fails, differently on each
    route: ViLT's replica with its 500 sentence, BLIP-2's intake with a 422."""

    def reply(path, body, attempt):
        if path.endswith("/info"):
            kind = path.split("/")[1]
            return (200, {"name": f"{kind}-easyvqa", "source": f"/srv/{kind}", "is_demo": True})
        question = body["question"]
        if question == BROKEN:
            if path == "/vilt":
                return (500, {"error": "ViLT tripped over this one picture"})
            return (422, {"error": "BLIP-2 cannot read this question", "field": "question"})
        colour = question.split()[-1].rstrip("?")
        if path == "/vilt":
            answers = [{"answer": colour, "score": 0.9}, {"answer": "yes", "score": 0.1}]
            return (200, {**VILT_REPLY, "answers": answers, "question": question})
        return (
            200,
            {
                "model": "blip2-easyvqa",
                "answer": colour,
                "seconds": 0.01,
                "batch_size": 4,
                "question": question,
            },
        )

    return _model_server(reply)


def _plain(status: str) -> str:
    return status.replace("\\", "")  # the page escapes Markdown in a server's words


def test_one_failing_item_of_a_remote_batch_fails_only_its_own_visitor():
    from ui.handlers import VQAHandlers

    server, url, seen = _per_question_server()
    try:
        handlers = VQAHandlers(load_remote_services(url, timeout=5))
        questions = [f"is it {colour}?" for colour in COLOURS]
        questions.insert(1, BROKEN)
        count = len(questions)
        images = [PICTURE] * count
        vilt_failure = f"ViLT could not answer: The model server at {url} could not answer: "
        vilt_failure += "ViLT tripped over this one picture"
        blip2_failure = "BLIP-2 could not answer: BLIP-2 cannot read this question"

        labels, vilt_statuses, answers, blip2_statuses, _ = handlers.answering.answer_both(
            images, questions, [2] * count, [5] * count, [1] * count
        )
        vilt_only, vilt_only_statuses = handlers.answering.answer_vilt(
            images, questions, [2] * count
        )
        blip2_only, blip2_only_statuses = handlers.answering.answer_blip2(
            images, questions, [5] * count, [1] * count
        )
    finally:
        _stop(server)
    for labels_, statuses in ((labels, vilt_statuses), (vilt_only, vilt_only_statuses)):
        assert labels_[1] is None
        assert statuses[1].startswith("⚠") and vilt_failure in _plain(statuses[1])
        for i, colour in zip((0, 2, 3), COLOURS):
            assert labels_[i] == {colour: 0.9, "yes": 0.1}
            assert not statuses[i].startswith("⚠") and "tripped" not in statuses[i], statuses[i]
    for answers_, statuses in ((answers, blip2_statuses), (blip2_only, blip2_only_statuses)):
        assert answers_[1] == ""
        assert statuses[1].startswith("⚠") and blip2_failure in _plain(statuses[1])
        assert [answers_[i] for i in (0, 2, 3)] == COLOURS
        assert not any(statuses[i].startswith("⚠") for i in (0, 2, 3)), statuses
    # Each question was asked once per model and call: a replica's own error is not retried.
    asked = Counter((request["path"], request["body"]["question"]) for request in seen[2:])
    assert set(asked.values()) == {2}, asked


def test_the_client_reports_each_item_of_a_batch_on_its_own():
    server, url, _ = _per_question_server()
    try:
        answerer = RemoteViltAnswerer(ModelServer(url, timeout=5))
        with pytest.raises(PartialBatchError) as caught:
            answerer.answer_batch([PICTURE] * 3, ["is it red?", BROKEN, "is it blue?"])
        with pytest.raises(InferenceError, match="tripped over this one picture"):
            answerer.answer_batch([PICTURE], [BROKEN])  # one item: its own error, as before
    finally:
        _stop(server)
    red, broken, blue = caught.value.outcomes
    assert red.best == "red" and blue.best == "blue"
    assert isinstance(broken, InferenceError) and "tripped over" in str(broken)
    assert "tripped over this one picture" in str(caught.value)


def test_make_serve_refuses_ports_another_server_holds(capsys):
    """`python -m serving free`: `make serve` stops with one sentence, before starting Ray,
    when the page's or the models' port is taken (its wait would take that server for ours)."""
    from serving.__main__ import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        free = f"127.0.0.1:{_free_port()}"
        assert main(["free", free, busy]) == 1
        error = capsys.readouterr().err
        assert f"Something already listens on {busy}:" in error and free not in error
    assert main(["free", free, busy]) == 0
