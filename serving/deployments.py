"""Ray Serve deployments: one per model, and an HTTP ingress in front of both.

Each model replica holds one vqa_core answerer, loaded through vqa_core's registry (``demo``,
``real``, a hub id or a local folder), and answers concurrent requests in batches formed by
Serve (``@serve.batch``). The ingress validates every request with vqa_core's own intake
(:func:`vqa_core.load_image`, :func:`vqa_core.clean_question`) so a bad image or question
gets the intake's sentence as HTTP 422, never a stack trace.

Run it with ``serve run serving.deployments:build_app vilt=demo blip2=demo`` or
``serve deploy serving/config.yaml``; ``python -m serving`` wraps both for ``make serve``.
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
from ray.exceptions import RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

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
    "VqaIngress",
    "build_app",
    "model_deployment_options",
]

logger = logging.getLogger("ray.serve")

# Replicas report themselves unhealthy after this many failed batches in a row, so Serve
# replaces a replica whose device got into a bad state instead of failing every request.
UNHEALTHY_AFTER_FAILURES = 3
MODEL_LABELS = {"vilt": "ViLT", "blip2": "BLIP-2"}


def _as_bool(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServeSettings:
    """What ``build_app`` deploys; every field can be given as ``key=value`` to ``serve run``."""

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
    # The ingress answers 504 after this, before a client's own 30 s timeout fires.
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
    """What a model replica hands back to the ingress: a result, or a sentence and a status."""

    result: Any = None
    error: str | None = None
    status: int = 200


@dataclass(frozen=True)
class _Item:
    image: Any
    question: str
    options: tuple[tuple[str, int], ...]


def _set_torch_threads(requested: int) -> int:
    import torch

    threads = requested
    if threads <= 0:
        assigned = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        threads = max(1, math.floor(assigned))
    torch.set_num_threads(threads)
    return threads


class _ModelReplica:
    """What both model deployments share: loading, health, failure accounting, info."""

    kind = ""

    def _load(self, model: str, device: str, dtype: str, torch_threads: int) -> None:
        self.threads = _set_torch_threads(torch_threads)
        self.answerer = None
        self.choice = None
        self.load_error: str | None = None
        self.consecutive_failures = 0
        self.last_failure = ""
        self._waiting: list[tuple[list[_Item], Any, asyncio.Future]] = []
        self._draining = False
        try:
            self.choice = resolve_model(self.kind, model)
            self.answerer = self._from_pretrained(self.choice.source, device, dtype)
        except VQAError as err:
            # The replica stays up and answers every request with this sentence: one model
            # failing to load must not take the other model's column down.
            self.load_error = str(err)
            logger.error("%s unavailable: %s", MODEL_LABELS[self.kind], err)

    def _from_pretrained(self, source: str, device: str, dtype: str):
        raise NotImplementedError

    def _configure_batching(self, batcher, max_batch_size: int, wait_s: float) -> None:
        batcher.set_max_batch_size(max_batch_size)
        batcher.set_batch_wait_timeout_s(wait_s)
        self.batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": wait_s}

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
        }

    def check_health(self) -> None:
        if self.consecutive_failures >= UNHEALTHY_AFTER_FAILURES:
            raise RuntimeError(
                f"{MODEL_LABELS[self.kind]} failed {self.consecutive_failures} batches in a "
                f"row (last: {self.last_failure})"
            )

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
                        future.set_exception(err)
                    continue
                start = 0
                for items, _, future in taken:
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
            return ModelReply(error=str(err), status=422)
        except VQAError as err:
            self.consecutive_failures += 1
            self.last_failure = str(err)
            return ModelReply(error=str(err), status=503)
        self.consecutive_failures = 0
        return ModelReply(result=result)


@serve.deployment(name="ViltDeployment")
class ViltDeployment(_ModelReplica):
    """A ViLT classifier replica: top-k answers, batched by Serve."""

    kind = "vilt"

    def __init__(
        self,
        model: str = "demo",
        *,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int = 0,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.0,
    ) -> None:
        self._load(model, device, dtype, torch_threads)
        self._configure_batching(self._answer_batch, max_batch_size, batch_wait_timeout_s)

    def _from_pretrained(self, source: str, device: str, dtype: str) -> ViltAnswerer:
        return ViltAnswerer.from_pretrained(source, device=device, dtype=dtype)

    def label_count(self) -> int:
        return len(self.answerer.labels) if self.answerer is not None else 1

    async def answer(self, image: Any, question: str, top_k: int) -> ModelReply:
        return await self._answer_batch(_Item(image, question, (("top_k", top_k),)))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0, max_concurrent_batches=64)
    async def _answer_batch(self, items: list[_Item]) -> list[ModelReply]:
        return await self._run_batch(items, self._classify)

    def _classify(self, items: list[_Item]) -> list:
        # One forward pass at the largest top_k asked; each item keeps its own top_k.
        wanted = [dict(item.options)["top_k"] for item in items]
        results = self.answerer.answer_batch(
            [item.image for item in items], [item.question for item in items], top_k=max(wanted)
        )
        return [replace(result, answers=result.answers[:k]) for result, k in zip(results, wanted)]


@serve.deployment(name="Blip2Deployment")
class Blip2Deployment(_ModelReplica):
    """A BLIP-2 generator replica: free-text answers, batched by Serve."""

    kind = "blip2"

    def __init__(
        self,
        model: str = "demo",
        *,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int = 0,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.0,
    ) -> None:
        self._load(model, device, dtype, torch_threads)
        self._configure_batching(self._answer_batch, max_batch_size, batch_wait_timeout_s)

    def _from_pretrained(self, source: str, device: str, dtype: str) -> Blip2Answerer:
        return Blip2Answerer.from_pretrained(source, device=device, dtype=dtype)

    async def answer(
        self, image: Any, question: str, max_new_tokens: int, num_beams: int
    ) -> ModelReply:
        options = (("max_new_tokens", max_new_tokens), ("num_beams", num_beams))
        return await self._answer_batch(_Item(image, question, options))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0, max_concurrent_batches=64)
    async def _answer_batch(self, items: list[_Item]) -> list[ModelReply]:
        return await self._run_batch(items, self._generate)

    def _generate(self, items: list[_Item]) -> list:
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


class _Refusal(Exception):
    """A request the ingress answers with an error status and one sentence."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status)


def _input_field(err: InputError) -> str:
    if isinstance(err, ImageInputError):
        return "image"
    if isinstance(err, QuestionError):
        return "question"
    return "options"


async def _resolve(response: Any) -> Any:
    # wait_for needs a coroutine; a DeploymentResponse is only awaitable.
    return await response


api = FastAPI(title="Visual question answering on Ray Serve", docs_url=None, redoc_url=None)


@serve.deployment(name="VqaIngress", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(api)
class VqaIngress:
    """HTTP in front of both models: intake, routing, timeouts, and one-sentence errors."""

    def __init__(
        self,
        vilt: DeploymentHandle,
        blip2: DeploymentHandle,
        *,
        request_timeout_s: float = 25.0,
        deployment_config: dict[str, Any] | None = None,
    ) -> None:
        self.handles = {"vilt": vilt, "blip2": blip2}
        self.request_timeout_s = request_timeout_s
        self.deployment_config = deployment_config or {}
        self._label_count: int | None = None

    # Reading and checking a request -------------------------------------------------------
    async def _payload(self, request: Request) -> tuple[bytes, dict[str, Any]]:
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

    async def _intake(self, request: Request):
        data, payload = await self._payload(request)
        # Decoding a photo takes milliseconds to a second; keep the event loop free meanwhile.
        picture = await asyncio.to_thread(load_image, data)
        question = clean_question(payload.get("question"))
        return picture, question, payload

    # Calling a model ----------------------------------------------------------------------
    async def _ask(self, kind: str, method: str, *args: Any) -> ModelReply:
        label = MODEL_LABELS[kind]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout_s
        for attempt in (1, 2):
            response = getattr(self.handles[kind], method).remote(*args)
            remaining = deadline - loop.time()
            try:
                return await asyncio.wait_for(_resolve(response), max(remaining, 0.01))
            except asyncio.TimeoutError:
                response.cancel()
                raise _Refusal(
                    504,
                    f"{label} did not answer within {self.request_timeout_s:g} s; the server "
                    "is busy, please try again.",
                ) from None
            except (RayActorError, ReplicaUnavailableError) as err:
                # The replica died under this request (killed, out of memory, node lost).
                # Serve is already starting a replacement; one retry usually lands on it.
                logger.warning("%s replica lost on attempt %d: %s", label, attempt, err)
                if attempt == 2 or deadline - loop.time() < 1.0:
                    raise _Refusal(
                        503,
                        f"The {label} replica answering this request stopped; Serve is "
                        "starting a new one, please try again in a few seconds.",
                    ) from None
        raise AssertionError("unreachable")

    async def _answer(self, request: Request, kind: str) -> JSONResponse:
        try:
            picture, question, payload = await self._intake(request)
            if kind == "vilt":
                if self._label_count is None:
                    self._label_count = int(await self._ask("vilt", "label_count"))
                options = vilt_options(payload, self._label_count)
                reply = await self._ask("vilt", "answer", picture, question, options["top_k"])
            else:
                options = blip2_options(payload)
                reply = await self._ask(
                    "blip2",
                    "answer",
                    picture,
                    question,
                    options["max_new_tokens"],
                    options["num_beams"],
                )
        except InputError as err:
            return _error_response(422, str(err), _input_field(err))
        except _Refusal as err:
            return _error_response(err.status, str(err), err.field)
        except Exception:
            logger.exception("Unexpected failure answering a %s request", kind)
            return _error_response(
                500, "An unexpected error stopped this request; the server log has the details."
            )
        if reply.error is not None:
            return _error_response(reply.status, reply.error)
        to_json = vilt_result_to_json if kind == "vilt" else blip2_result_to_json
        return JSONResponse(to_json(reply.result))

    # Routes -------------------------------------------------------------------------------
    @api.post("/vilt")
    async def vilt(self, request: Request) -> JSONResponse:
        return await self._answer(request, "vilt")

    @api.post("/blip2")
    async def blip2(self, request: Request) -> JSONResponse:
        return await self._answer(request, "blip2")

    @api.get("/info")
    async def info(self) -> JSONResponse:
        """Which model each deployment serves, where it runs, and how it batches and scales."""
        models: dict[str, Any] = {}
        for kind in self.handles:
            try:
                models[kind] = await self._ask(kind, "info")
            except _Refusal as err:
                models[kind] = {"kind": kind, "error": str(err)}
        return JSONResponse(
            {
                "backend": "ray-serve",
                "ray_version": ray.__version__,
                "models": models,
                "deployment": self.deployment_config,
                "request_timeout_s": self.request_timeout_s,
            }
        )

    @api.get("/health")
    async def health(self) -> JSONResponse:
        """200 when both models are loaded and answering, 503 naming the one that is not."""
        info = json.loads((await self.info()).body)
        problems = {
            kind: model["error"] for kind, model in info["models"].items() if model.get("error")
        }
        status = {kind: problems.get(kind, "ok") for kind in info["models"]}
        return JSONResponse(status, status_code=503 if problems else 200)


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The application ``serve run``/``serve deploy`` start: both models behind the ingress."""
    settings = ServeSettings.from_args(args)
    options = model_deployment_options(settings, _cluster_gpus())
    model_args = {
        "device": settings.device,
        "dtype": settings.dtype,
        "torch_threads": settings.torch_threads,
        "max_batch_size": settings.max_batch_size,
        "batch_wait_timeout_s": settings.batch_wait_timeout_s,
    }
    vilt = ViltDeployment.options(**options).bind(settings.vilt, **model_args)
    blip2 = Blip2Deployment.options(**options).bind(settings.blip2, **model_args)
    return VqaIngress.bind(
        vilt,
        blip2,
        request_timeout_s=settings.request_timeout_s,
        deployment_config={"settings": asdict(settings), "model_deployments": options},
    )
