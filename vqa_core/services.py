"""Load both answerers once, each independently: one failing leaves the other serving."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .blip2 import Blip2Answerer
from .errors import VQAError
from .registry import ModelChoice, resolve_model
from .vilt import ViltAnswerer

__all__ = ["Services", "load_services"]

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """What the app and the CLI serve: each model, or the reason it is missing."""

    vilt: ViltAnswerer | None = None
    blip2: Blip2Answerer | None = None
    vilt_error: str | None = None
    blip2_error: str | None = None
    vilt_choice: ModelChoice | None = None
    blip2_choice: ModelChoice | None = None

    @property
    def uses_demo(self) -> bool:
        return any(c is not None and c.is_demo for c in (self.vilt_choice, self.blip2_choice))


def load_services(
    vilt: str | None = None,
    blip2: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    only: str | None = None,
    blip2_device_map: str | None = None,
    blip2_quantization: str = "none",
) -> Services:
    """Resolve and load the requested models; failures are recorded, not raised.

    ``only`` is ``"vilt"`` or ``"blip2"`` to load just one. Device and dtype errors
    (e.g. ``cuda`` without a GPU) are raised, since neither model could honour them.
    """
    from .placement import resolve_placement

    resolve_placement(device, dtype)  # fail early and once on an impossible request
    services = Services()
    if only not in (None, "vilt", "blip2"):
        raise ValueError(f"Unknown model {only!r}; choose one of: vilt, blip2.")
    if only in (None, "vilt"):
        try:
            services.vilt_choice = resolve_model("vilt", vilt)
            services.vilt = ViltAnswerer.from_pretrained(
                services.vilt_choice.source, device=device, dtype=dtype
            )
        except VQAError as err:
            services.vilt_error = str(err)
            logger.error("ViLT unavailable: %s", err)
    if only in (None, "blip2"):
        try:
            services.blip2_choice = resolve_model("blip2", blip2)
            services.blip2 = Blip2Answerer.from_pretrained(
                services.blip2_choice.source,
                device=device,
                dtype=dtype,
                device_map=blip2_device_map,
                quantization=blip2_quantization,
            )
        except VQAError as err:
            services.blip2_error = str(err)
            logger.error("BLIP-2 unavailable: %s", err)
    return services
