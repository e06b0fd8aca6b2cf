"""Load both answerers once, each independently: one failing leaves the other serving.

Before each model loads, :mod:`vqa_core.fit` counts what it will need and reads what the
machine has left (ViLT first, so BLIP-2's plan sees the memory ViLT now holds); a model
that cannot fit is not loaded and its error is the sentence saying why, so the process is
never killed halfway through a load and the other model keeps serving.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

from transformers import Blip2ForConditionalGeneration, ViltForQuestionAnswering

from .blip2 import Blip2Answerer
from .errors import VQAError
from .fit import LoadPlan, measure_checkpoint, plan_load
from .memory import MemoryReport, read_memory
from .registry import ModelChoice, resolve_model
from .sentences import Sentence
from .vilt import ViltAnswerer

__all__ = ["MODEL_LABELS", "Services", "load_services"]

logger = logging.getLogger(__name__)

MODEL_LABELS = {"vilt": "ViLT", "blip2": "BLIP-2"}


@dataclass
class Services:
    """What the app and the CLI serve: each model, or the reason it is missing.

    ``vilt_plan`` / ``blip2_plan`` say where each model was placed and why (or, when it did
    not fit, the sentence that is also its error); :meth:`plan_lines` words them for the
    start-up log and the About panel.
    """

    vilt: ViltAnswerer | None = None
    blip2: Blip2Answerer | None = None
    vilt_error: str | None = None
    blip2_error: str | None = None
    vilt_choice: ModelChoice | None = None
    blip2_choice: ModelChoice | None = None
    vilt_plan: LoadPlan | None = None
    blip2_plan: LoadPlan | None = None
    # Each ``*_error`` in parts a page can reword (empty where only English is known).
    vilt_error_words: tuple[Sentence, ...] = ()
    blip2_error_words: tuple[Sentence, ...] = ()

    @property
    def uses_demo(self) -> bool:
        return any(c is not None and c.is_demo for c in (self.vilt_choice, self.blip2_choice))

    def plan_lines(self) -> list[str]:
        """One line per planned model: ``BLIP-2: cpu / int8 (bfloat16 activations): why``."""
        lines = []
        for kind in ("vilt", "blip2"):
            plan = getattr(self, f"{kind}_plan")
            if plan is not None:
                lines.append(f"{MODEL_LABELS[kind]}: {plan.describe()}: {plan.reason}")
        return lines


def _plan(
    kind: str,
    source: str,
    *,
    device: str,
    dtype: str,
    quantization: str,
    device_map: str | None,
    instead: str,
    memory: Callable[[], MemoryReport],
) -> LoadPlan:
    model_class = ViltForQuestionAnswering if kind == "vilt" else Blip2ForConditionalGeneration
    # Memory freed by an earlier load is only visible once Python has let go of it.
    gc.collect()
    return plan_load(
        MODEL_LABELS[kind],
        measure_checkpoint(source, model_class),
        device=device,
        dtype=dtype,
        quantization=quantization,
        device_map=device_map,
        instead=instead,
        memory=memory,
    )


def load_services(
    vilt: str | None = None,
    blip2: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    only: str | None = None,
    quantization: str = "auto",
    blip2_device_map: str | None = None,
    blip2_quantization: str | None = None,
    blip2_static_cache: bool = False,
    memory: Callable[[], MemoryReport] = read_memory,
) -> Services:
    """Resolve, plan and load the requested models; failures are recorded, not raised.

    ``only`` is ``"vilt"`` or ``"blip2"`` to load just one. ``quantization`` applies to both
    models (``auto`` lets the plan fall back to int8 when a float load would not fit);
    ``blip2_quantization``, when given, overrides it for BLIP-2. ``blip2_static_cache`` has
    BLIP-2 generate with transformers' static KV cache (compiled on a GPU; the first answer
    waits for the compilation). ``memory`` reads what the machine has (tests hand in fixed
    figures). Device and dtype errors (e.g. ``cuda`` without a GPU) are raised, since
    neither model could honour them.
    """
    from .placement import resolve_placement

    resolve_placement(device, dtype)  # fail early and once on an impossible request
    services = Services()
    if only not in (None, "vilt", "blip2"):
        raise ValueError(f"Unknown model {only!r}; choose one of: vilt, blip2.")
    kinds = [kind for kind in ("vilt", "blip2") if only in (None, kind)]
    for kind in kinds:
        label = MODEL_LABELS[kind]
        other = [k for k in ("vilt", "blip2") if k != kind and k in kinds]
        try:
            choice = resolve_model(kind, vilt if kind == "vilt" else blip2)
            setattr(services, f"{kind}_choice", choice)
            model_quantization = quantization
            if kind == "blip2" and blip2_quantization is not None:
                model_quantization = blip2_quantization
            plan = _plan(
                kind,
                choice.source,
                device=device,
                dtype=dtype,
                quantization=model_quantization,
                device_map=blip2_device_map if kind == "blip2" else None,
                instead=f"--only {other[0]}" if other else "",
                memory=memory,
            )
            setattr(services, f"{kind}_plan", plan)
            if not plan.fits:
                setattr(services, f"{kind}_error", plan.reason)
                setattr(services, f"{kind}_error_words", plan.reasons)
                logger.error("%s not loaded: %s", label, plan.reason)
                continue
            logger.info("%s: %s: %s", label, plan.describe(), plan.reason)
            if kind == "vilt":
                services.vilt = ViltAnswerer.from_pretrained(
                    choice.source, placement=plan.placement, quantization=plan.quantization
                )
            else:
                services.blip2 = Blip2Answerer.from_pretrained(
                    choice.source,
                    placement=plan.placement,
                    device_map=plan.device_map,
                    quantization=plan.quantization,
                    static_cache=blip2_static_cache,
                )
        except VQAError as err:
            setattr(services, f"{kind}_error", str(err))
            if err.code:
                words = Sentence(str(err), f"error_{err.code}", tuple(err.values.items()))
                setattr(services, f"{kind}_error_words", (words,))
            logger.error("%s unavailable: %s", label, err)
    for kind in ("vilt", "blip2"):
        if kind not in kinds:
            left_out = Sentence.of(
                "services_left_out", f"it was left out on purpose (--only {only})", only=only
            )
            setattr(services, f"{kind}_error", str(left_out))
            setattr(services, f"{kind}_error_words", (left_out,))
    return services
