"""Ray Serve deployments: one per model, each the HTTP ingress of its own application.

Each model replica holds one vqa_core answerer, loaded through vqa_core's registry (``demo``,
``real``, a hub id or a local folder), answers HTTP at its application's route (``/vilt``,
``/blip2``) and joins concurrent requests into batches with Serve's ``@serve.batch``. Every
request goes through vqa_core's own intake (:func:`vqa_core.load_image`,
:func:`vqa_core.clean_question`) first, so a bad image or question gets the intake's
sentence as HTTP 422, never a stack trace, and never reaches a batch.

Run both with ``serve run serving/config.yaml`` or ``serve deploy serving/config.yaml``
(``make serve`` writes a copy with its own choices); the import paths are
``serving.deployments:build_vilt_app`` and ``serving.deployments:build_blip2_app``.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' `Request`
# annotations at run time, and string annotations inside a Serve ingress class do not resolve.
import asyncio
import json
import logging
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from vqa_core import (
    Blip2Answerer,
    ImageInputError,
    InputError,
    QuestionError,
    ViltAnswerer,
    VQAError,
    clean_question,
    load_image,
    resolve_model,
)
from vqa_core.services import MODEL_LABELS

from .protocol import (
    MAX_REQUEST_BYTES,
    blip2_options,
    blip2_result_to_json,
    decode_image,
    vilt_options,
    vilt_result_to_json,
)

__all__ = [
    "ServeSettings",
    "ViltDeployment",
    "Blip2Deployment",
    "build_model_app",
    "build_vilt_app",
    "build_blip2_app",
    "model_deployment_options",
]

logger = logging.getLogger("ray.serve")

# Replicas report themselves unhealthy after this many failed batches in a row, so Serve
# replaces a replica whose device got into a bad state instead of failing every request.
UNHEALTHY_AFTER_FAILURES = 3


def _as_bool(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServeSettings:
    """What the model applications deploy: the ``args`` of each application in the config."""

    vilt: str = "demo"
    blip2: str = "demo"
    device: str = "auto"
    dtype: str = "auto"
    # Per model replica. 0 lets replicas share cores (fine for tests, slow for real loads).
    num_cpus: float = 1.0
    # Per model replica, only when the model is placed on CUDA.
    num_gpus: float = 1.0
    # A fixed replica count; 0 means autoscale between min_replicas and max_replicas.
    replicas: int = 0
    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 8.0
    max_batch_size: int = 8
    # How long Serve's batcher waits for company after a batch's first request. 0 by
    # default: a lone request pays any wait in full (10 ms cost 14 ms end to end here),
    # while under load the requests queued behind the busy model are merged into one batch
    # anyway (see _ModelReplica._run_batch).
    batch_wait_timeout_s: float = 0.0
    # A replica answers 504 after this, before a client's own 30 s timeout fires.
    request_timeout_s: float = 25.0
    # torch intra-op threads per replica; 0 means the CPUs Ray assigned (at least 1).
    torch_threads: int = 0
    health_check_period_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1.")
        if self.replicas < 0:
            raise ValueError("replicas must be 0 (autoscale) or a positive count.")
        if self.replicas == 0 and not 0 < self.min_replicas <= self.max_replicas:
            raise ValueError("Autoscaling needs 1 <= min_replicas <= max_replicas.")
        if self.request_timeout_s <= 0 or self.batch_wait_timeout_s < 0:
            raise ValueError("request_timeout_s must be positive, batch_wait_timeout_s >= 0.")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError("num_cpus and num_gpus cannot be negative.")

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> "ServeSettings":
        """Settings from ``serve run``/config ``args`` (values may arrive as strings)."""
        args = dict(args or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {', '.join(unknown)}; choose from: {', '.join(known)}."
            )
        values: dict[str, Any] = {}
        for name, value in args.items():
            kind = type(getattr(cls, name))
            try:
                values[name] = _as_bool(value) if kind is bool else kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"Setting {name}={value!r} must be a {kind.__name__}.") from None
        return cls(**values)


def _cluster_gpus() -> float:
    if not ray.is_initialized():
        return 0.0
    return float(ray.cluster_resources().get("GPU", 0.0))


def wants_gpu(device: str, cluster_gpus: float) -> bool:
    """Whether a replica for ``device`` must ask Ray for a GPU.

    ``cuda`` always does; ``auto`` does when the cluster has GPUs (Ray hides GPUs from an
    actor that did not ask for one, so ``auto`` would otherwise land on the CPU).
    """
    kind = str(device).strip().lower().partition(":")[0]
    if kind == "cuda":
        return True
    return kind == "auto" and cluster_gpus > 0


def model_deployment_options(settings: ServeSettings, cluster_gpus: float) -> dict[str, Any]:
    """Serve options for one model deployment: resources, replicas, queueing, health."""
    actor_options: dict[str, Any] = {"num_cpus": settings.num_cpus}
    if wants_gpu(settings.device, cluster_gpus):
        actor_options["num_gpus"] = settings.num_gpus
    options: dict[str, Any] = {
        "ray_actor_options": actor_options,
        # Room for one batch running and the next one forming; Serve's default (5) would cap
        # every batch below max_batch_size.
        "max_ongoing_requests": 2 * settings.max_batch_size,
        "health_check_period_s": settings.health_check_period_s,
    }
    if settings.replicas:
        options["num_replicas"] = settings.replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "initial_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.target_ongoing_requests,
        }
    return options


@dataclass(frozen=True)
class ModelReply:
    """What answering one request came to: a result, or a sentence and an HTTP status."""

    result: Any = None
    error: str | None = None
    status: int = 200
    # The vqa_core error's sentence code and values, so a page in another language can word
    # the refusal itself (vqa_core.errors.VQAError).
    code: str | None = None
    values: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def refusal(cls, err: VQAError, status: int) -> "ModelReply":
        return cls(error=str(err), status=status, code=err.code, values=_json_values(err))


@dataclass(frozen=True)
class _Item:
    image: Any
    question: str
    options: tuple[tuple[str, int], ...]


class _Refusal(Exception):
    """A request answered with an error status and one sentence."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _error_response(
    status: int,
    message: str,
    field: str | None = None,
    code: str | None = None,
    values: tuple[tuple[str, Any], ...] = (),
) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    if code:
        body["code"] = code
        body["values"] = dict(values)
    return JSONResponse(body, status_code=status)


def _json_values(err: VQAError) -> tuple[tuple[str, Any], ...]:
    """The values of ``err``'s sentence as JSON carries them (numbers and text)."""
    return tuple(
        (name, value if isinstance(value, (int, float, str)) else str(value))
        for name, value in err.values.items()
    )


def _input_field(err: InputError) -> str:
    if isinstance(err, ImageInputError):
        return "image"
    if isinstance(err, QuestionError):
        return "question"
    return "options"


async def read_request(request: Request) -> tuple[bytes, dict[str, Any]]:
    """The image's bytes and the other fields of a JSON or multipart request."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _Refusal(413, "The request is larger than 64 MB; send a smaller image.")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("image")
        fields_ = {key: value for key, value in form.items() if key != "image"}
        if upload is None or isinstance(upload, str):
            raise _Refusal(422, "Please upload an image.", "image")
        return await upload.read(), fields_
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        raise _Refusal(413, "The request is larger than 64 MB; send a smaller image.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise _Refusal(
            422,
            "The request must be a JSON object with 'image' (base64) and 'question' fields.",
        )
    return decode_image(payload.get("image")), payload


class _RouteAtPrefix:
    """ASGI middleware: ``POST /vilt`` reaches the route at ``/`` of the app mounted there.

    Without it Starlette answers the bare prefix with a 307 to ``/vilt/``, and every
    client would send its image twice.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            prefix = scope.get("root_path", "").rstrip("/")
            if prefix and scope["path"] == prefix:
                scope = {**scope, "path": prefix + "/"}
        await self.app(scope, receive, send)


def _model_api(kind: str) -> FastAPI:
    api = FastAPI(
        title=f"{MODEL_LABELS[kind]} on Ray Serve", docs_url=None, redoc_url=None, openapi_url=None
    )
    api.add_middleware(_RouteAtPrefix)
    return api


def _set_torch_threads(requested: int) -> int:
    import torch

    threads = requested
    if threads <= 0:
        assigned = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        threads = max(1, math.floor(assigned))
    torch.set_num_threads(threads)
    return threads


class _ModelReplica:
    """What both model deployments share: HTTP, intake, loading, health, batching, info.

    Each model deployment is the HTTP ingress of its own application (``/vilt``,
    ``/blip2``): a request reaches the replica that answers it without a hop through a
    separate ingress deployment (docs/scaling.md has the measurements that led here).
    """

    kind = ""
    # The model's answerer type and how its results are written as JSON (serving.protocol).
    answerer_class: type = type(None)
    result_to_json = staticmethod(lambda result: {})

    def __init__(
        self,
        model: str = "demo",
        *,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int = 0,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.0,
        request_timeout_s: float = 25.0,
        deployment: dict[str, Any] | None = None,
    ) -> None:
        self.threads = _set_torch_threads(torch_threads)
        self.request_timeout_s = request_timeout_s
        self.deployment = deployment or {}
        self.answerer = None
        self.choice = None
        self.load_error: str | None = None
        self.consecutive_failures = 0
        self.last_failure = ""
        self._waiting: list[tuple[list[_Item], Any, asyncio.Future]] = []
        self._draining = False
        try:
            self.choice = resolve_model(self.kind, model)
            self.answerer = self.answerer_class.from_pretrained(
                self.choice.source, device=device, dtype=dtype
            )
        except VQAError as err:
            # The replica stays up and answers every request with this sentence: one model
            # failing to load must not take the other model's column down.
            self.load_error = str(err)
            logger.error("%s unavailable: %s", MODEL_LABELS[self.kind], err)
        self._answer_batch.set_max_batch_size(max_batch_size)
        self._answer_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.batching = {
            "max_batch_size": max_batch_size,
            "batch_wait_timeout_s": batch_wait_timeout_s,
        }

    def _options(self, payload: dict[str, Any]) -> tuple[tuple[str, int], ...]:
        raise NotImplementedError

    def _model_answers(self, items: list[_Item]) -> list:
        """The model's answers to one batch, one result per item."""
        raise NotImplementedError

    # HTTP ---------------------------------------------------------------------------------
    async def _answer_request(self, request: Request) -> JSONResponse:
        """One request: the intake's checks, then the model through Serve's batcher."""
        try:
            data, payload = await read_request(request)
            # Decoding a photo takes milliseconds to a second; keep the event loop free.
            picture = await asyncio.to_thread(load_image, data)
            question = clean_question(payload.get("question"))
            item = _Item(picture, question, self._options(payload))
            reply = await self._answer_within_deadline(item)
        except InputError as err:
            return _error_response(422, str(err), _input_field(err), err.code, _json_values(err))
        except _Refusal as err:
            return _error_response(err.status, str(err), err.field)
        except Exception:
            logger.exception("Unexpected failure answering a %s request", self.kind)
            return _error_response(
                500, "An unexpected error stopped this request; the server log has the details."
            )
        if reply.error is not None:
            return _error_response(reply.status, reply.error, None, reply.code, reply.values)
        return JSONResponse(self.result_to_json(reply.result))

    async def _answer_within_deadline(self, item: _Item) -> ModelReply:
        try:
            return await asyncio.wait_for(self._answer_batch(item), self.request_timeout_s)
        except asyncio.TimeoutError:
            raise _Refusal(
                504,
                f"{MODEL_LABELS[self.kind]} did not answer within {self.request_timeout_s:g} s; "
                "the server is busy, please try again.",
            ) from None

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0, max_concurrent_batches=64)
    async def _answer_batch(self, items: list[_Item]) -> list[ModelReply]:
        return await self._run_batch(items, self._model_answers)

    def info(self) -> dict[str, Any]:
        placement = self.answerer.placement if self.answerer is not None else None
        return {
            "kind": self.kind,
            "name": self.answerer.name if self.answerer is not None else None,
            "source": self.choice.source if self.choice else None,
            "reason": self.choice.reason if self.choice else None,
            "is_demo": bool(self.choice and self.choice.is_demo),
            "error": self.load_error,
            "placement": None
            if placement is None
            else {
                "device": str(placement.device),
                "dtype": placement.dtype_name,
                "describe": placement.describe(),
            },
            "batching": self.batching,
            # The classifier's answer vocabulary (the page translates it once); None for
            # a generator.
            "labels": list(getattr(self.answerer, "labels", None) or []) or None,
            "torch_threads": self.threads,
            "replica": serve.get_replica_context().replica_id.unique_id,
            "backend": "ray-serve",
            "ray_version": ray.__version__,
            "request_timeout_s": self.request_timeout_s,
            "deployment": self.deployment,
        }

    def health(self) -> JSONResponse:
        """200 when the model is loaded, 503 with the reason it is not."""
        if self.load_error is not None:
            return JSONResponse({self.kind: self.load_error}, status_code=503)
        return JSONResponse({self.kind: "ok"})

    def check_health(self) -> None:
        if self.consecutive_failures >= UNHEALTHY_AFTER_FAILURES:
            raise RuntimeError(
                f"{MODEL_LABELS[self.kind]} failed {self.consecutive_failures} batches in a "
                f"row (last: {self.last_failure})"
            )

    # Batching -----------------------------------------------------------------------------
    async def _run_batch(self, items: list[_Item], run) -> list[ModelReply]:
        """Answer a batch Serve formed, merged with the batches waiting beside it.

        Ray 2.60's batcher forms the next batch while one runs (each from whatever arrived
        within ``batch_wait_timeout_s`` of its first request), so under load several small
        batches queue behind the model. They wait here instead, and whatever is waiting when
        the model frees up runs as one batch of up to ``max_batch_size``.
        """
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((items, run, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                limit = self.batching["max_batch_size"]
                taken = [self._waiting.pop(0)]
                while (
                    self._waiting
                    and sum(len(t[0]) for t in taken) + len(self._waiting[0][0]) <= limit
                    and self._waiting[0][1] == taken[0][1]
                ):
                    taken.append(self._waiting.pop(0))
                merged = [item for items, _, _ in taken for item in items]
                try:
                    replies = await self._answer_items(merged, taken[0][1])
                except Exception as err:  # reported to each waiting request, never lost
                    for _, _, future in taken:
                        if not future.done():
                            future.set_exception(err)
                    continue
                start = 0
                for items, _, future in taken:
                    # A request whose deadline passed was cancelled; its answer is dropped.
                    if not future.done():
                        future.set_result(replies[start : start + len(items)])
                    start += len(items)
        finally:
            self._draining = False

    async def _answer_items(self, items: list[_Item], run) -> list[ModelReply]:
        """Answer ``items`` in one call; on failure answer each alone so one bad item
        (or one that needs too much memory) does not fail the others."""
        if self.answerer is None:
            return [ModelReply(error=self.load_error, status=503)] * len(items)
        try:
            results = await asyncio.to_thread(run, items)
        except VQAError:
            if len(items) == 1:
                return [await self._run_one(items[0], run)]
            return [await self._run_one(item, run) for item in items]
        self.consecutive_failures = 0
        return [ModelReply(result=result) for result in results]

    async def _run_one(self, item: _Item, run) -> ModelReply:
        try:
            (result,) = await asyncio.to_thread(run, [item])
        except InputError as err:
            return ModelReply.refusal(err, 422)
        except VQAError as err:
            self.consecutive_failures += 1
            self.last_failure = str(err)
            return ModelReply.refusal(err, 503)
        self.consecutive_failures = 0
        return ModelReply(result=result)


def _with_routes(api: FastAPI) -> type:
    """A model replica whose HTTP routes are registered on that model's own app.

    Each application needs its own FastAPI app (its own routes), and Serve's class-based
    view takes routes from every class in a deployment's MRO.
    """

    class _Routes(_ModelReplica):
        @api.post("/")
        async def answer(self, request: Request) -> JSONResponse:
            return await self._answer_request(request)

        @api.get("/info")
        async def http_info(self) -> JSONResponse:
            return JSONResponse(self.info())

        @api.get("/health")
        async def http_health(self) -> JSONResponse:
            return self.health()

    return _Routes


vilt_api = _model_api("vilt")


@serve.deployment(name="ViltDeployment")
@serve.ingress(vilt_api)
class ViltDeployment(_with_routes(vilt_api)):
    """A ViLT classifier replica: ``POST /vilt`` answers with the top-k, batched by Serve."""

    kind = "vilt"
    answerer_class = ViltAnswerer
    result_to_json = staticmethod(vilt_result_to_json)

    def _options(self, payload: dict[str, Any]) -> tuple[tuple[str, int], ...]:
        # Without a model the request gets the load error; any top_k parses meanwhile.
        label_count = len(self.answerer.labels) if self.answerer is not None else 1
        return tuple(vilt_options(payload, label_count).items())

    def _model_answers(self, items: list[_Item]) -> list:
        # One forward pass at the largest top_k asked; each item keeps its own top_k.
        wanted = [dict(item.options)["top_k"] for item in items]
        results = self.answerer.answer_batch(
            [item.image for item in items], [item.question for item in items], top_k=max(wanted)
        )
        return [replace(result, answers=result.answers[:k]) for result, k in zip(results, wanted)]


blip2_api = _model_api("blip2")


@serve.deployment(name="Blip2Deployment")
@serve.ingress(blip2_api)
class Blip2Deployment(_with_routes(blip2_api)):
    """A BLIP-2 generator replica: ``POST /blip2`` answers in free text, batched by Serve."""

    kind = "blip2"
    answerer_class = Blip2Answerer
    result_to_json = staticmethod(blip2_result_to_json)

    def _options(self, payload: dict[str, Any]) -> tuple[tuple[str, int], ...]:
        return tuple(blip2_options(payload).items())

    def _model_answers(self, items: list[_Item]) -> list:
        # Items with the same decoding settings share one generate() call.
        groups: dict[tuple[tuple[str, int], ...], list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.options, []).append(index)
        results: list = [None] * len(items)
        for options, members in groups.items():
            answered = self.answerer.answer_batch(
                [items[i].image for i in members],
                [items[i].question for i in members],
                **dict(options),
            )
            for index, result in zip(members, answered):
                results[index] = result
        return results


DEPLOYMENTS = {"vilt": ViltDeployment, "blip2": Blip2Deployment}


def build_model_app(kind: str, args: dict[str, Any] | None = None) -> serve.Application:
    """One model's application: its deployment, answering HTTP at ``/vilt`` or ``/blip2``."""
    if kind not in DEPLOYMENTS:
        raise ValueError(f"Unknown model {kind!r}; choose one of: {', '.join(DEPLOYMENTS)}.")
    settings = ServeSettings.from_args(args)
    options = model_deployment_options(settings, _cluster_gpus())
    return (
        DEPLOYMENTS[kind]
        .options(**options)
        .bind(
            getattr(settings, kind),
            device=settings.device,
            dtype=settings.dtype,
            torch_threads=settings.torch_threads,
            max_batch_size=settings.max_batch_size,
            batch_wait_timeout_s=settings.batch_wait_timeout_s,
            request_timeout_s=settings.request_timeout_s,
            deployment={"settings": asdict(settings), "options": options},
        )
    )


def build_vilt_app(args: dict[str, Any] | None = None) -> serve.Application:
    """``serve run``/``serve deploy`` import path of the ViLT application (route ``/vilt``)."""
    return build_model_app("vilt", args)


def build_blip2_app(args: dict[str, Any] | None = None) -> serve.Application:
    """``serve run``/``serve deploy`` import path of the BLIP-2 application (route ``/blip2``)."""
    return build_model_app("blip2", args)
