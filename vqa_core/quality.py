"""Photo-quality cues: is this picture too dark, too bright, blurred, too small or blank?

Both models answer a black or blurred photo with the same confidence as a good one, so the
intake measures what makes an answer unreliable and hands it back with the picture; the page
turns the codes into a sentence in its own language. Every measure runs on a thumbnail of at
most :data:`THUMBNAIL_SIDE` pixels per side, so its cost hardly depends on the photo's size
(bench/quality_speed.py).

The thresholds were fitted by ``python -m train.quality_set`` on easy-VQA pictures and the
example photos with controlled degradations, and checked on a held-out part (easy-VQA's test
pictures and photos the fit never saw); docs/accessibility.md has the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image, ImageChops, ImageStat

__all__ = [
    "QUALITY_CODES",
    "DEFAULT_MIN_SIDE",
    "DEMO_MIN_SIDE",
    "QualityThresholds",
    "PhotoQuality",
    "measure_quality",
]

# In the order the page names them: one sentence is shown, for the first code raised. A dark
# or washed-out photo is also nearly blank, and "try more light" is the advice that helps.
QUALITY_CODES = ("dark", "bright", "uniform", "blurred", "small")

# Measures run on a thumbnail no larger than this per side: enough to see a blur that the
# models would see (ViLT looks at 384 px, BLIP-2 at 224 px), small enough to cost ~1 ms.
THUMBNAIL_SIDE = 256
# "Too small" is about what the models can use, not about pixels as such. Real checkpoints
# look at 224 px (BLIP-2) and 384 px (ViLT): a picture under half of BLIP-2's side is blown up
# more than 2x (3.4x for ViLT) and its detail is guessed. The embedded demo models were
# trained on easy-VQA's 64x64 pictures and answer them well, so demo mode uses 64: its own
# example pictures are not "too small" for the models that serve them.
DEFAULT_MIN_SIDE = 112
DEMO_MIN_SIDE = 64
# "Washed out" asks whether anything at all is still dark: the darkest 0.2% of pixels, since an
# easy-VQA shape can be as small as 15 of 4,096 pixels.
_SHADOW_SHARE = 0.002
# Edges counted for sharpness: the strongest tenth, and none fainter than JPEG and sensor noise.
_EDGE_SHARE = 0.9
_EDGE_FLOOR = 8


@dataclass(frozen=True)
class QualityThresholds:
    """Where each cue switches on, fitted by ``python -m train.quality_set`` (seed 0).

    Each sits between what the clean and the degraded fit pictures measured (the geometric
    middle of the gap between the clean pictures' 0.5% tail and the degraded ones' 1% tail).
    """

    # 95th percentile of each pixel's brightest channel: at or below this, nothing but a few
    # highlights (a lamp) rises above deep shadow. Clean photos measured 125 and more,
    # darkened ones 35 and less.
    dark_highlights: float = 67.0
    # 0.2th percentile of each pixel's darkest channel: at or above this, nothing in the
    # picture is dark or strongly coloured any more, it is washed out. A clean easy-VQA picture
    # with a grey shape measures 128; over-exposed ones 150 and more (JPEG ringing takes a few
    # photos lower).
    bright_shadows: float = 138.0
    # The largest per-channel standard deviation in grey levels: below it the picture is an
    # almost flat field (a wall, a covered lens). Clean pictures measured 10 and more.
    uniform_contrast: float = 8.3
    # Edge steepness on the strongest edges, 1 (smeared over 3 px or more) to 3 (a one-pixel
    # step): clean pictures measured 1.62 and more, blurred ones 1.49 and less.
    blurred_sharpness: float = 1.61
    min_side: int = DEFAULT_MIN_SIDE


@dataclass(frozen=True)
class PhotoQuality:
    """What was measured on one picture, and the cues it raised (codes, not sentences)."""

    flags: tuple[str, ...]
    width: int
    height: int
    highlights: float
    shadows: float
    contrast: float
    sharpness: float

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def primary(self) -> str | None:
        """The one cue worth saying, or None for a usable picture."""
        return self.flags[0] if self.flags else None

    def with_thresholds(self, thresholds: QualityThresholds) -> PhotoQuality:
        """The same measures judged against other thresholds (what the fitter varies)."""
        return replace(self, flags=_raise_flags(self, thresholds))

    def as_dict(self) -> dict:
        values = asdict(self)
        values["flags"] = list(self.flags)
        return values


def _thumbnail(image: Image.Image) -> Image.Image:
    width, height = image.size
    scale = THUMBNAIL_SIDE / max(width, height)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # BOX averages every source pixel once: the cheapest resize that does not alias, which
    # would otherwise add false sharp detail to a blurred photo.
    return image.resize(size, Image.Resampling.BOX)


def _percentile(histogram: list[int], fraction: float) -> float:
    """The value below which ``fraction`` of the pixels lie, from a 256-bin histogram."""
    cumulative = np.cumsum(histogram)
    return float(np.searchsorted(cumulative, fraction * (cumulative[-1] - 1), side="right"))


def _edge_steepness(channel: np.ndarray) -> tuple[float, float]:
    """Over the strongest edges along rows: (3 x steepest one-pixel step, three-pixel rise).

    A sharp step rises in one pixel, so its steepest step is its whole three-pixel rise and
    the ratio of the two sums is 3; an edge smeared over three pixels or more rises evenly and
    scores 1. Smooth shading and faint texture are left out: only rises among the strongest
    tenth (and above sensor noise) count, so the score is about edges, not content.
    """
    if channel.shape[1] < 4:
        return 0.0, 0.0
    step = np.abs(np.diff(channel, axis=1))
    steepest = np.maximum(np.maximum(step[:, :-2], step[:, 1:-1]), step[:, 2:])
    rise = np.abs(channel[:, 3:] - channel[:, :-3])
    histogram = np.bincount(rise.ravel(), minlength=256)
    floor = max(_EDGE_FLOOR, _percentile(histogram, _EDGE_SHARE))
    strong = rise >= floor
    return 3.0 * float(steepest[strong].sum()), float(rise[strong].sum())


def _sharpness(channel: np.ndarray) -> float:
    steep_x, rise_x = _edge_steepness(channel)
    steep_y, rise_y = _edge_steepness(np.ascontiguousarray(channel.T))
    rise = rise_x + rise_y
    return (steep_x + steep_y) / rise if rise > 0 else 0.0


def measure_quality(
    image: Image.Image,
    *,
    original_size: tuple[int, int] | None = None,
    thresholds: QualityThresholds | None = None,
) -> PhotoQuality:
    """Measure an RGB picture (as :func:`~vqa_core.load_image` returns it) and raise its cues.

    ``original_size`` is the file's own size when the intake decoded it smaller (a JPEG
    draft): "too small" is judged on what the person sent.
    """
    limits = thresholds or QualityThresholds()
    thumb = _thumbnail(image if image.mode == "RGB" else image.convert("RGB"))
    # Pillow's C loops: numpy's reductions over a 3-wide axis cost several times more here.
    bands = thumb.split()
    brightest = ImageChops.lighter(ImageChops.lighter(bands[0], bands[1]), bands[2])
    darkest = ImageChops.darker(ImageChops.darker(bands[0], bands[1]), bands[2])
    highlights = _percentile(brightest.histogram(), 0.95)
    shadows = _percentile(darkest.histogram(), _SHADOW_SHARE)
    spread = ImageStat.Stat(thumb).stddev
    contrast = float(max(spread))
    # Edges are judged in the channel that varies most: a yellow shape on a cream background
    # is all but invisible in grey (7 grey levels) and plain in blue.
    varied = bands[int(np.argmax(spread))]
    sharpness = _sharpness(np.asarray(varied, dtype=np.int16))
    width, height = original_size or image.size
    measured = PhotoQuality(
        flags=(),
        width=width,
        height=height,
        highlights=highlights,
        shadows=shadows,
        contrast=contrast,
        sharpness=sharpness,
    )
    return measured.with_thresholds(limits)


def _raise_flags(measured: PhotoQuality, limits: QualityThresholds) -> tuple[str, ...]:
    flat = measured.contrast < limits.uniform_contrast
    raised = {
        "dark": measured.highlights <= limits.dark_highlights,
        "bright": measured.shadows >= limits.bright_shadows,
        "uniform": flat,
        # A flat field has no edges to be sharp or blurred.
        "blurred": not flat and measured.sharpness < limits.blurred_sharpness,
        "small": min(measured.width, measured.height) < limits.min_side,
    }
    return tuple(code for code in QUALITY_CODES if raised[code])
