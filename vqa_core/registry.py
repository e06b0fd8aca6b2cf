"""Which checkpoint each answerer loads when the user names none, a preset, or a path.

Order when nothing is given (``auto``): the real checkpoint if it is in the local Hugging
Face cache or the hub answers within a few seconds, else the embedded ``demo`` preset
(small models trained here on easy-VQA), with one log line saying which and why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError

__all__ = [
    "MODEL_KINDS",
    "REAL_CHECKPOINTS",
    "DEMO_CHECKPOINTS",
    "ENV_VARS",
    "ModelChoice",
    "resolve_model",
]

logger = logging.getLogger(__name__)

MODEL_KINDS = ("vilt", "blip2")
REAL_CHECKPOINTS = {
    "vilt": "dandelin/vilt-b32-finetuned-vqa",
    "blip2": "Salesforce/blip2-opt-2.7b",
}
DEMO_ROOT = Path(__file__).resolve().parent / "demo_models"
DEMO_CHECKPOINTS = {
    "vilt": DEMO_ROOT / "vilt-easyvqa",
    "blip2": DEMO_ROOT / "blip2-easyvqa",
}
ENV_VARS = {"vilt": "VQA_VILT_MODEL", "blip2": "VQA_BLIP2_MODEL"}
PRESET_NAMES = ("auto", "demo", "real")
HUB_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class ModelChoice:
    kind: str
    source: str
    reason: str
    is_demo: bool = False


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _in_local_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _hub_answers(repo_id: str) -> bool:
    if _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE"):
        return False
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(repo_id, timeout=HUB_PROBE_SECONDS)
    except Exception:  # any failure means "not reachable now"; the reason is logged below
        return False
    return True


def _demo(kind: str, reason: str) -> ModelChoice:
    folder = DEMO_CHECKPOINTS[kind]
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"The embedded demo {kind} model is missing at {folder} ({reason}); "
            "rebuild it with `make demo-models` or name a model explicitly."
        )
    return ModelChoice(kind, str(folder), reason, is_demo=True)


def resolve_model(kind: str, requested: str | None = None) -> ModelChoice:
    """Resolve a user's request (or its absence) for ``kind`` to a loadable source.

    ``requested`` is a hub id, a local folder, or one of the presets ``auto``, ``demo`` and
    ``real``; ``None`` falls back to the kind's environment variable, then ``auto``.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model kind {kind!r}; choose one of: {', '.join(MODEL_KINDS)}.")
    env_name = ENV_VARS[kind]
    if requested is None or not str(requested).strip():
        requested = os.environ.get(env_name, "").strip() or "auto"
        origin = f"{env_name}" if os.environ.get(env_name, "").strip() else "default"
    else:
        origin = "argument"
    requested = str(requested).strip()
    real = REAL_CHECKPOINTS[kind]
    if requested == "demo":
        choice = _demo(kind, f"the embedded demo preset was requested ({origin})")
    elif requested == "real":
        choice = ModelChoice(kind, real, f"the real checkpoint was requested ({origin})")
    elif requested == "auto":
        if _in_local_cache(real):
            choice = ModelChoice(kind, real, "the real checkpoint is in the local cache")
        elif _hub_answers(real):
            choice = ModelChoice(kind, real, "the real checkpoint is reachable on the hub")
        else:
            choice = _demo(
                kind,
                "the real checkpoint is neither cached nor reachable (offline); "
                f"set {env_name} to a hub id or a local folder to change this",
            )
    else:
        local = Path(requested).expanduser()
        source = str(local.resolve()) if local.exists() else requested
        choice = ModelChoice(kind, source, f"named by {origin}")
    logger.info("%s: using %s (%s)", kind, choice.source, choice.reason)
    return choice
