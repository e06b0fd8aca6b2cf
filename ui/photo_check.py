"""The photo check: whether a picture is too dark, washed out, blank, blurred or small for
the answers about it to be trusted, said in one sentence."""

from __future__ import annotations

from vqa_core import Services, VQAError
from vqa_core.quality import DEFAULT_MIN_SIDE, DEMO_MIN_SIDE, PhotoQuality, QualityThresholds

from .intake import inspect_picture
from .messages import message

__all__ = ["PhotoCheck"]


class PhotoCheck:
    """The photo-quality cues of the pictures the page is given, for the models it serves."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # Photo quality ---------------------------------------------------------------------------
    @property
    def thresholds(self) -> QualityThresholds:
        """ "Too small" against real checkpoints' input sizes only when one is served: the
        demo models (and models of unknown origin) were trained on 64 px pictures."""
        real = any(
            choice is not None and not choice.is_demo
            for choice in (self.services.vilt_choice, self.services.blip2_choice)
        )
        return QualityThresholds(min_side=DEFAULT_MIN_SIDE if real else DEMO_MIN_SIDE)

    def quality(self, image) -> PhotoQuality | None:
        if image is None:
            return None
        try:
            return inspect_picture(image, thresholds=self.thresholds).quality
        except VQAError:
            return None  # an unreadable picture is explained in the columns when asked

    def payload(self, image) -> dict:
        quality = self.quality(image)
        if quality is None:
            return {}
        return {**quality.as_dict(), "sentence": self.sentence(quality, "en")}

    @staticmethod
    def sentence(quality: PhotoQuality | None, lang: str = "en") -> str:
        """One sentence for the first cue raised, in ``lang``; empty for a usable picture."""
        if quality is None or quality.ok:
            return ""
        return message(
            f"quality_{quality.primary}", lang, width=quality.width, height=quality.height
        )

    def sentence_for(self, image, lang: str = "en") -> str:
        """The sentence for ``image``'s first cue, in ``lang``; empty for a usable picture."""
        return self.sentence(self.quality(image), lang)
