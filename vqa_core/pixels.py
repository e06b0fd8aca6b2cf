"""ViLT's image preprocessing on torch's own kernels, the way transformers' default does it.

transformers 5 has two ``ViltImageProcessor`` back ends. The default resizes uint8 tensors with
torch's antialiased bicubic kernel (through torchvision), then rescales and normalises in one
float pass; the fallback does the same steps in Pillow and numpy. torchvision does not import
beside the CPU torch wheel this project installs, so transformers falls back to Pillow, whose
bicubic resize alone takes 4-7 ms per photo on a 2-core CPU (bench/phone_photo_intake.py). The
steps below are the default back end's, on torch alone: about 2 ms for the same photo, all in.

Against the Pillow fallback the output shapes and pixel masks are identical; where a resize
happens, the two round their fixed-point filter weights differently, so pixel values differ by
a grey level (at most two) on well under 1% of pixels; with no resize they agree to float
rounding (tests/test_pixels.py). Training (``train.collator``) uses this same transform, so a
model sees the same pixels in training and in the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["ViltImageTransform", "vilt_pixel_inputs"]

logger = logging.getLogger(__name__)

# ViLT's own cap on the long side, relative to the short one (COCO's 1333:800).
_LONG_TO_SHORT = 1333 / 800
# Pillow resampling filter ids (PIL.Image.Resampling) that torch has an antialiased kernel for.
_TORCH_MODES = {Image.Resampling.BILINEAR: "bilinear", Image.Resampling.BICUBIC: "bicubic"}


@dataclass(frozen=True)
class ViltImageTransform:
    """Pictures in, ``pixel_values`` (float32, B x 3 x H x W) and ``pixel_mask`` out."""

    shortest_edge: int = 384
    size_divisor: int | None = 32
    resample: str = "bicubic"
    do_resize: bool = True
    rescale_factor: float | None = 1 / 255
    image_mean: tuple[float, ...] | None = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] | None = (0.5, 0.5, 0.5)
    do_pad: bool = True

    def __post_init__(self) -> None:
        if self.resample not in _TORCH_MODES.values():
            raise ValueError(
                f"resample {self.resample!r} is not supported; "
                f"choose one of {sorted(_TORCH_MODES.values())}"
            )
        if (self.image_mean is None) != (self.image_std is None):
            raise ValueError("give both image_mean and image_std, or neither")

    @classmethod
    def from_processor(cls, image_processor) -> ViltImageTransform:
        """The transform a ViLT image processor (either back end) is configured for.

        Raises ``ValueError`` for settings it does not reproduce (a resampling filter torch
        has no antialiased kernel for, a size given other than by ``shortest_edge``).
        """
        size = dict(getattr(image_processor, "size", None) or {})
        if set(size) - {"shortest_edge", "longest_edge"} or "shortest_edge" not in size:
            raise ValueError(f"size {size} is not given as a shortest_edge")
        resample = getattr(image_processor, "resample", Image.Resampling.BICUBIC)
        try:
            mode = _TORCH_MODES[Image.Resampling(int(resample))]
        except (KeyError, ValueError, TypeError):
            raise ValueError(
                f"resample {resample!r} has no antialiased torch kernel; "
                f"supported: {[m.name for m in _TORCH_MODES]}"
            ) from None
        normalize = bool(getattr(image_processor, "do_normalize", True))
        rescale = bool(getattr(image_processor, "do_rescale", True))
        return cls(
            shortest_edge=int(size["shortest_edge"]),
            size_divisor=getattr(image_processor, "size_divisor", None),
            resample=mode,
            do_resize=bool(getattr(image_processor, "do_resize", True)),
            rescale_factor=float(image_processor.rescale_factor) if rescale else None,
            image_mean=tuple(map(float, image_processor.image_mean)) if normalize else None,
            image_std=tuple(map(float, image_processor.image_std)) if normalize else None,
            do_pad=bool(getattr(image_processor, "do_pad", True)),
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize: short side to ``shortest_edge``, long side capped."""
        if not self.do_resize:
            return height, width
        shorter = self.shortest_edge
        longer = int(_LONG_TO_SHORT * shorter)
        if height < width:
            new_height, new_width = float(shorter), width * (shorter / height)
        else:
            new_height, new_width = height * (shorter / width), float(shorter)
        if max(new_height, new_width) > longer:
            scale = longer / max(new_height, new_width)
            new_height, new_width = new_height * scale, new_width * scale
        new_height, new_width = int(new_height + 0.5), int(new_width + 0.5)
        if self.size_divisor:
            new_height = new_height // self.size_divisor * self.size_divisor
            new_width = new_width // self.size_divisor * self.size_divisor
        return new_height, new_width

    def _resized(self, picture: Image.Image) -> torch.Tensor:
        if picture.mode != "RGB":
            picture = picture.convert("RGB")
        # HWC uint8 viewed as 1x3xHxW is channels-last, the layout torch's uint8 kernels want.
        pixels = torch.from_numpy(np.array(picture)).permute(2, 0, 1).unsqueeze(0)
        size = self.output_size(picture.height, picture.width)
        if size != (picture.height, picture.width):
            if min(size) < 1:
                raise ValueError(f"a {picture.width}x{picture.height} picture resizes to nothing")
            pixels = F.interpolate(
                pixels, size=size, mode=self.resample, align_corners=False, antialias=True
            )
        return pixels[0]

    def _normalized(self, pixels: torch.Tensor) -> torch.Tensor:
        values = pixels.to(torch.float32)
        if self.image_mean is not None:
            # Rescale folded into the normalisation, as transformers' default back end does.
            factor = 1.0 / self.rescale_factor if self.rescale_factor is not None else 1.0
            mean = torch.tensor(self.image_mean) * factor
            std = torch.tensor(self.image_std) * factor
            return values.sub_(mean[:, None, None]).div_(std[:, None, None])
        if self.rescale_factor is not None:
            values.mul_(self.rescale_factor)
        return values

    def __call__(self, pictures: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        images = [self._normalized(self._resized(picture)) for picture in pictures]
        if not self.do_pad:
            return {"pixel_values": torch.stack(images)}
        height = max(image.shape[1] for image in images)
        width = max(image.shape[2] for image in images)
        pixel_values = torch.zeros((len(images), 3, height, width), dtype=torch.float32)
        pixel_mask = torch.zeros((len(images), height, width), dtype=torch.int64)
        for row, image in enumerate(images):
            pixel_values[row, :, : image.shape[1], : image.shape[2]] = image
            pixel_mask[row, : image.shape[1], : image.shape[2]] = 1
        return {"pixel_values": pixel_values, "pixel_mask": pixel_mask}


def vilt_pixel_inputs(image_processor) -> Callable[[Sequence[Image.Image]], dict]:
    """The fastest faithful way to turn pictures into this processor's pixel inputs.

    The torch transform where it reproduces the processor's settings; otherwise the processor
    itself, with a warning that says why.
    """
    try:
        return ViltImageTransform.from_processor(image_processor)
    except (ValueError, AttributeError, TypeError) as err:
        logger.warning(
            "ViLT images go through %s itself (slower): %s", type(image_processor).__name__, err
        )

        def processor_pixels(pictures: Sequence[Image.Image]) -> dict:
            return dict(image_processor(list(pictures), return_tensors="pt"))

        return processor_pixels
