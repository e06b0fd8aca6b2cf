"""vqa_core: answer visual questions with ViLT (top-k classifier) and BLIP-2 (generator).

Public API::

    from vqa_core import ViltAnswerer, Blip2Answerer, load_services, load_image

Device and precision are resolved once by :func:`resolve_placement`; every image passes
through :func:`load_image`; every error a user can cause is a :class:`VQAError`.
"""

from . import _quiet  # noqa: F401  (first: quiets optional kernels before they load)
from .blip2 import Blip2Answerer, Blip2Result, load_blip2
from .errors import (
    ImageInputError,
    InferenceError,
    InputError,
    ModelLoadError,
    PartialBatchError,
    PlacementError,
    QuestionError,
    VQAError,
)
from .images import InspectedImage, inspect_image, load_image
from .placement import Placement, resolve_placement
from .quality import PhotoQuality, QualityThresholds, measure_quality
from .questions import DEFAULT_PROMPT_TEMPLATE, Turn, clean_history, clean_question
from .registry import ModelChoice, resolve_model
from .services import Services, load_services
from .vilt import ViltAnswerer, ViltResult, load_vilt

__all__ = [
    "Blip2Answerer",
    "Blip2Result",
    "DEFAULT_PROMPT_TEMPLATE",
    "ImageInputError",
    "InferenceError",
    "InspectedImage",
    "InputError",
    "ModelChoice",
    "ModelLoadError",
    "PartialBatchError",
    "PhotoQuality",
    "Placement",
    "PlacementError",
    "QualityThresholds",
    "QuestionError",
    "Services",
    "Turn",
    "VQAError",
    "ViltAnswerer",
    "ViltResult",
    "clean_history",
    "clean_question",
    "inspect_image",
    "load_blip2",
    "load_image",
    "load_services",
    "load_vilt",
    "measure_quality",
    "resolve_model",
    "resolve_placement",
]
