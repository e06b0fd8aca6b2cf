"""The page's side of the model server: remote answerers with vqa_core's interface.

:class:`RemoteViltAnswerer` and :class:`RemoteBlip2Answerer` answer ``answer_batch`` like the
in-process answerers and return the same result objects (:class:`vqa_core.ViltResult`,
:class:`vqa_core.Blip2Result`), so the page is built over them unchanged. Every request
carries a timeout; a server that is down or slow raises :class:`BackendUnavailableError`
(an :class:`vqa_core.InferenceError`) with one sentence naming the server, and the next
request after it recovers simply succeeds (nothing is cached about the failure).

A request whose replica went away under it (the front's own plain 500/502/503, or a
connection dropped mid-request) is asked once more, with the same image and question, within the same deadline:
by then the front sends it to another replica or the replacement. Nothing else is retried.
Each item of a batch is its own request and keeps its own outcome
(:class:`vqa_core.PartialBatchError` when only some failed).

Needs only httpx, never Ray: the page runs anywhere the server can be reached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from vqa_core import (
    Blip2Result,
    ImageInputError,
    InferenceError,
    InputError,
    ModelChoice,
    PartialBatchError,
    QuestionError,
    Services,
    ViltResult,
)
from vqa_core.blip2 import DEFAULT_MAX_NEW_TOKENS
from vqa_core.images import ImageSource
from vqa_core.services import MODEL_LABELS

from .protocol import (
    DEFAULT_TOP_K,
    MODEL_ROUTES,
    blip2_result_from_json,
    encode_image,
    vilt_result_from_json,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "BackendUnavailableError",
    "ModelServer",
    "RemotePlacement",
    "RemoteViltAnswerer",
    "RemoteBlip2Answerer",
    "load_remote_services",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
# A refused or unroutable connection is known within milliseconds; a slow one is not worth
# more than a few seconds before saying so.
CONNECT_TIMEOUT_S = 5.0
# The page batches at most a few dozen requests at once; each is one HTTP call.
MAX_PARALLEL_REQUESTS = 32
# The statuses a front (Serve's HAProxy, which rewrites its own 502/503/504 into a plain-text
# 500, or Serve's Python proxy) gives when the replica it chose is gone or none is up yet.
# The replicas themselves always answer errors as JSON with a sentence, and are not retried.
REPLICA_LOST_STATUSES = frozenset({500, 502, 503})
# Before asking again, a moment for the front to stop routing to the dead replica (Serve's
# HAProxy checks a failing server every 250 ms and takes it out after two failed checks).
RETRY_PAUSE_S = 1.0
# A second try with less time than this left would only turn one error into another.
RETRY_MIN_S = 1.0


class BackendUnavailableError(InferenceError):
    """The model server did not answer: down, unreachable, or slower than the timeout."""


class _Unreachable(BackendUnavailableError):
    """No HTTP answer at all (refused, unroutable, timed out), as opposed to an error status."""


class _ReplicaLost(BackendUnavailableError):
    """The request reached a replica that went away under it: worth asking once more."""


def _sentence_of(body: object) -> tuple[str | None, dict[str, Any]]:
    """The sentence code and values a server's error reply carries, if it carries them."""
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return None, {}
    values = body.get("values")
    return body["code"], {str(k): v for k, v in values.items()} if isinstance(values, dict) else {}


class ModelServer:
    """One model server (Serve's HTTP front, /vilt and /blip2): a timeout on every request."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if not str(url).startswith(("http://", "https://")):
            raise ValueError(
                f"The model server URL must start with http:// or https://; got {url!r}."
            )
        if timeout <= 0:
            raise ValueError("The timeout must be a positive number of seconds.")
        self.url = str(url).rstrip("/")
        self.timeout = float(timeout)
        self._client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout)),
            limits=httpx.Limits(max_connections=MAX_PARALLEL_REQUESTS),
        )
        self._pool = ThreadPoolExecutor(MAX_PARALLEL_REQUESTS, thread_name_prefix="model-server")

    def __repr__(self) -> str:
        return f"ModelServer({self.url!r}, timeout={self.timeout:g})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _request(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, route, **kwargs)
        except httpx.TimeoutException:
            raise _Unreachable(
                f"The model server at {self.url} did not answer within {self.timeout:g} s.",
                code="server_timeout",
                url=self.url,
                seconds=f"{self.timeout:g}",
            ) from None
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            # Connected, then cut off mid-request: the replica (or its node) died under it.
            raise _ReplicaLost(
                f"The model server at {self.url} dropped the connection to {route}; it may be "
                "restarting, try again shortly.",
                code="server_dropped",
                url=self.url,
            ) from None
        except httpx.TransportError:
            raise _Unreachable(
                f"The model server at {self.url} could not be reached; it may be stopped or "
                "still starting.",
                code="server_unreachable",
                url=self.url,
            ) from None

    def get_json(self, route: str) -> dict[str, Any]:
        return self._reply(self._request("GET", route), route)

    def post_json(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One answer; asked once more, within the same deadline, if its replica was lost."""
        deadline = time.monotonic() + self.timeout
        try:
            return self._reply(self._request("POST", route, json=payload), route)
        except _ReplicaLost as lost:
            pause = min(RETRY_PAUSE_S, max(0.0, deadline - time.monotonic() - RETRY_MIN_S))
            time.sleep(pause)
            left = deadline - time.monotonic()
            if left < RETRY_MIN_S:
                raise
            logger.info("%s Asking once more.", lost)
        timeout = httpx.Timeout(left, connect=min(CONNECT_TIMEOUT_S, left))
        return self._reply(self._request("POST", route, json=payload, timeout=timeout), route)

    def _reply(self, response: httpx.Response, route: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        # The server names its sentence as vqa_core's errors do, so the page can word it.
        code, values = _sentence_of(body)
        if response.status_code == 422 and error:
            # The server's intake refused the input: the same sentence the local intake gives.
            field = body.get("field")
            kind = {"image": ImageInputError, "question": QuestionError}.get(field, InputError)
            raise kind(error, code=code, **values)
        if response.status_code >= 400:
            if error:
                if code is None:
                    code, values = "server_failed", {"url": self.url, "error": error}
                raise InferenceError(
                    f"The model server at {self.url} could not answer: {error}",
                    code=code,
                    **values,
                )
            lost = response.status_code in REPLICA_LOST_STATUSES
            raise (_ReplicaLost if lost else BackendUnavailableError)(
                f"The model server at {self.url} answered {route} with HTTP "
                f"{response.status_code}; it may be starting or overloaded, try again shortly.",
                code="server_status",
                url=self.url,
                status=response.status_code,
            )
        if not isinstance(body, dict):
            raise InferenceError(
                f"The model server at {self.url} sent a reply this page cannot read.",
                code="server_unreadable",
                url=self.url,
            )
        return body

    def model_info(self, kind: str, *, wait_seconds: float = 0.0) -> dict[str, Any]:
        """One model's ``/info`` (``/vilt/info``), retried for up to ``wait_seconds``."""
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                return self.get_json(f"{MODEL_ROUTES[kind]}/info")
            except BackendUnavailableError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(1.0)

    def map(self, call: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``call`` on every item at once: Serve batches concurrent requests, not serial ones.

        Waits for every item (each request has its own deadline). When some failed, raises
        :class:`vqa_core.PartialBatchError` holding each item's result or its own error, so
        one visitor's failure is never another's; when every item failed alike (the server is
        down), or only one item was sent, raises that error itself.
        """
        if len(items) == 1:
            return [call(items[0])]
        futures = [self._pool.submit(call, item) for item in items]
        outcomes: list[Any] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as err:
                outcomes.append(err)
        failures = [item for item in outcomes if isinstance(item, Exception)]
        if not failures:
            return outcomes
        first = failures[0]
        if len(failures) == len(outcomes) and all(
            type(err) is type(first) and str(err) == str(first) for err in failures
        ):
            raise first
        raise PartialBatchError(outcomes)


@dataclass(frozen=True)
class RemotePlacement:
    """Where a remote model runs, as its server reported it, and which server that is."""

    device: str
    dtype: str
    server_url: str

    @property
    def dtype_name(self) -> str:
        return self.dtype

    def describe(self) -> str:
        return f"{self.device} / {self.dtype} via Ray Serve at {self.server_url}"


def _placement(server: ModelServer, info: dict[str, Any] | None) -> RemotePlacement:
    placement = (info or {}).get("placement") or {}
    return RemotePlacement(
        device=str(placement.get("device", "unknown device")),
        dtype=str(placement.get("dtype", "unknown precision")),
        server_url=server.url,
    )


def _check_pairs(images: Sequence, questions: Sequence) -> None:
    if len(images) != len(questions):
        raise InputError(
            f"A batch needs one question per image; got {len(images)} images and "
            f"{len(questions)} questions."
        )
    if not images:
        raise InputError("The batch is empty.")


class RemoteViltAnswerer:
    """ViLT on the model server, with :class:`vqa_core.ViltAnswerer`'s answering interface."""

    kind = "vilt"

    def __init__(self, server: ModelServer, info: dict[str, Any] | None = None) -> None:
        self.server = server
        self.info = info or {}
        self.name = str(self.info.get("name") or f"ViLT at {server.url}")
        self.placement = _placement(server, info)
        # The answer vocabulary, as the server reported it (empty if it was not reached).
        self.labels: list[str] = [str(label) for label in self.info.get("labels") or []]

    def __repr__(self) -> str:
        return f"RemoteViltAnswerer({self.name!r}, {self.server!r})"

    def answer(self, image: ImageSource, question: str, top_k: int = DEFAULT_TOP_K) -> ViltResult:
        return self.answer_batch([image], [question], top_k=top_k)[0]

    def answer_batch(
        self,
        images: Sequence[ImageSource],
        questions: Sequence[str],
        top_k: int = DEFAULT_TOP_K,
    ) -> list[ViltResult]:
        _check_pairs(images, questions)

        def ask(pair: tuple[ImageSource, str]) -> ViltResult:
            payload = {"image": encode_image(pair[0]), "question": pair[1], "top_k": int(top_k)}
            return vilt_result_from_json(self.server.post_json(MODEL_ROUTES["vilt"], payload))

        return self.server.map(ask, list(zip(images, questions)))


class RemoteBlip2Answerer:
    """BLIP-2 on the model server, with :class:`vqa_core.Blip2Answerer`'s answering interface."""

    kind = "blip2"

    def __init__(self, server: ModelServer, info: dict[str, Any] | None = None) -> None:
        self.server = server
        self.info = info or {}
        self.name = str(self.info.get("name") or f"BLIP-2 at {server.url}")
        self.placement = _placement(server, info)

    def __repr__(self) -> str:
        return f"RemoteBlip2Answerer({self.name!r}, {self.server!r})"

    def answer(
        self,
        image: ImageSource,
        question: str,
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> Blip2Result:
        return self.answer_batch(
            [image], [question], max_new_tokens=max_new_tokens, num_beams=num_beams
        )[0]

    def answer_batch(
        self,
        images: Sequence[ImageSource],
        questions: Sequence[str],
        *,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        num_beams: int = 1,
    ) -> list[Blip2Result]:
        _check_pairs(images, questions)

        def ask(pair: tuple[ImageSource, str]) -> Blip2Result:
            payload = {
                "image": encode_image(pair[0]),
                "question": pair[1],
                "max_new_tokens": int(max_new_tokens),
                "num_beams": int(num_beams),
            }
            return blip2_result_from_json(self.server.post_json(MODEL_ROUTES["blip2"], payload))

        return self.server.map(ask, list(zip(images, questions)))


def load_remote_services(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    wait_seconds: float = 0.0,
    only: str | None = None,
) -> Services:
    """Services whose answerers are the models on the server at ``url``.

    Waits up to ``wait_seconds`` for the server to answer ``/vilt/info``. A model the server
    reports as not loaded is recorded as unavailable with the server's reason, as
    :func:`vqa_core.load_services` records a local load failure. A server that cannot be
    reached at all still yields both answerers: each request then says the server is not
    answering, and the first one after it comes up succeeds.
    """
    if only not in (None, "vilt", "blip2"):
        raise ValueError(f"Unknown model {only!r}; choose one of: vilt, blip2.")
    server = ModelServer(url, timeout=timeout)
    services = Services()
    answerer_types = {"vilt": RemoteViltAnswerer, "blip2": RemoteBlip2Answerer}
    reached = True
    for kind, answerer_type in answerer_types.items():
        if only not in (None, kind):
            continue
        info: dict[str, Any] = {}
        if reached:
            try:
                info = server.model_info(kind, wait_seconds=wait_seconds)
            except _Unreachable as err:
                # Down, or not started yet: answers come once it is up; no second wait.
                logger.warning("%s Answers will come once it is up.", err)
                reached = False
            except InferenceError as err:
                # Reached, but this model's application answered with an error (still
                # deploying, or not deployed): its requests will say so, or succeed once
                # it is there.
                logger.warning("%s", err)
        if info.get("error"):
            setattr(
                services, f"{kind}_error", f"{info['error']} (on the model server at {server.url})"
            )
            logger.error("%s unavailable on %s: %s", MODEL_LABELS[kind], server.url, info["error"])
            continue
        setattr(services, kind, answerer_type(server, info))
        if info.get("source"):
            reason = f"{info.get('reason') or 'chosen by the server'}; served by Ray Serve at {server.url}"
            choice = ModelChoice(kind, str(info["source"]), reason, bool(info.get("is_demo")))
            setattr(services, f"{kind}_choice", choice)
    return services
