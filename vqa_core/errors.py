"""The package's own error types: every failure a user can cause or meet is one of these."""

from __future__ import annotations

__all__ = [
    "VQAError",
    "InputError",
    "ImageInputError",
    "QuestionError",
    "ModelLoadError",
    "PlacementError",
    "InferenceError",
    "PartialBatchError",
]


class VQAError(Exception):
    """Base class: its message is written for a person, not a developer.

    ``code`` names the sentence (``"image_empty"``) and ``values`` what fills it in, so a
    page in another language can say the same in its own words; the message is English.
    """

    def __init__(self, *args: object, code: str | None = None, **values: object) -> None:
        super().__init__(*args)
        self.code = code
        self.values = values


class InputError(VQAError, ValueError):
    """Something the user gave cannot be answered."""


class ImageInputError(InputError):
    """The image is unreadable, too large, or otherwise unusable."""


class QuestionError(InputError):
    """The question is empty or otherwise unusable."""


class PlacementError(VQAError, ValueError):
    """A device or precision request that cannot be honoured on this machine."""


class ModelLoadError(VQAError):
    """A model or its processor could not be loaded."""


class InferenceError(VQAError):
    """A loaded model failed while answering (out of memory, a runtime error)."""


class PartialBatchError(InferenceError):
    """Some items of a batch failed and others were answered (a model server answers each
    item in its own request). ``outcomes`` holds, item by item, the result or the error, so
    each caller gets their own answer or their own sentence, never a neighbour's."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = list(outcomes)
        failures = [item for item in self.outcomes if isinstance(item, BaseException)]
        super().__init__(str(failures[0]) if failures else "Some items of the batch failed.")
