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
from .sentences import Sentence

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
    # ``reason`` as a sentence a page can reword (None where the chooser gave only English).
    words: Sentence | None = None


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


def _choice(kind: str, source: str, words: Sentence, is_demo: bool = False) -> ModelChoice:
    return ModelChoice(kind, source, str(words), is_demo, words)


def _demo(kind: str, words: Sentence) -> ModelChoice:
    folder = DEMO_CHECKPOINTS[kind]
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"The embedded demo {kind} model is missing at {folder} ({words}); "
            "rebuild it with `make demo-models` or name a model explicitly."
        )
    return _choice(kind, str(folder), words, is_demo=True)


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
        if os.environ.get(env_name, "").strip():
            origin = Sentence.of("choice_by_variable", env_name, variable=env_name)
        else:
            origin = Sentence.of("choice_by_default", "default")
    else:
        origin = Sentence.of("choice_by_argument", "argument")
    requested = str(requested).strip()
    real = REAL_CHECKPOINTS[kind]
    if requested == "demo":
        choice = _demo(
            kind,
            Sentence.of(
                "choice_demo_requested",
                f"the embedded demo preset was requested ({origin})",
                origin=origin,
            ),
        )
    elif requested == "real":
        choice = _choice(
            kind,
            real,
            Sentence.of(
                "choice_real_requested",
                f"the real checkpoint was requested ({origin})",
                origin=origin,
            ),
        )
    elif requested == "auto":
        if _in_local_cache(real):
            words = Sentence.of("choice_cached", "the real checkpoint is in the local cache")
            choice = _choice(kind, real, words)
        elif _hub_answers(real):
            words = Sentence.of("choice_on_hub", "the real checkpoint is reachable on the hub")
            choice = _choice(kind, real, words)
        else:
            choice = _demo(
                kind,
                Sentence.of(
                    "choice_offline",
                    "the real checkpoint is neither cached nor reachable (offline); "
                    f"set {env_name} to a hub id or a local folder to change this",
                    variable=env_name,
                ),
            )
    else:
        local = Path(requested).expanduser()
        source = str(local.resolve()) if local.exists() else requested
        choice = _choice(
            kind, source, Sentence.of("choice_named", f"named by {origin}", origin=origin)
        )
    logger.info("%s: using %s (%s)", kind, choice.source, choice.reason)
    return choice
