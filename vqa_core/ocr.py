"""Read the text in a photo (English and Arabic) with Tesseract, and say which edges cut it.

Tesseract reads scanned pages; a visitor's photo of a label is tilted, dim, unevenly lit,
blurred and small in the frame, and plain ``tesseract`` returns nothing for most of them. So
the picture is prepared first, on a small copy: the text's polarity (dark on light or light on
dark), its ink (strokes that stand out against their own surroundings and are darker than
their morphological closing, so a plate's edge on a wall is not ink), with specks and long
straight rules (frames, edges) taken out, its tilt, and its rows and their height. The text's
region is cut from the full picture, turned upright, scaled so a row of text is the height
Tesseract reads best, binarised the same way, cleared outside the text, and read in English
and Arabic together. Each row of ink is then cut out and read again on its own in its own
script's language alone (a row Tesseract was unsure of, or missed, in both), and the surer
reading kept. Lines of specks (digits, lone letters, unsure short words) are dropped; in a
picture that surely holds text, a row read less surely is kept too, and a row still unread
is read as a lone line. When nothing at all is read, the other polarity is tried. Lines
come back top to bottom, each in logical (typing) order, so an Arabic line reads right to
left when shown right to left.

The framing cue says which picture edges a line of text runs into: a line whose end lies on
a side edge, one whose box runs past the top or bottom edge with ink on the border beside
it, or one near an edge with the text's ink on the border beside it (letters cut across, not
a plate's edge along the border).

Everything here returns codes and data; the page words them. Tesseract is a separate program
(Debian ``tesseract-ocr``, ``tesseract-ocr-eng``, ``tesseract-ocr-ara``): without it
:func:`read_text` answers ``status="engine_missing"`` and nothing else is affected.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pytesseract
from PIL import Image, ImageFilter, ImageOps

__all__ = [
    "READ_STATUSES",
    "TextLine",
    "TextReading",
    "read_text",
    "tesseract_available",
]

# "failed" is Tesseract stopping with an error of its own (a damaged install, a crash).
READ_STATUSES = ("read", "no_text", "timeout", "engine_missing", "failed")
EDGES = ("left", "right", "top", "bottom")
DEFAULT_TIMEOUT_S = 8.0

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextLine:
    """One line of text, in logical order, with its box in the picture's own pixels."""

    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom
    script: str  # "latin" or "arabic"
    confidence: float  # Tesseract's mean word confidence, 0 to 1


@dataclass(frozen=True)
class TextReading:
    """What :func:`read_text` found: lines in reading order, or a status saying why none."""

    lines: tuple[TextLine, ...]
    status: str
    seconds: float
    cut_edges: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def script(self) -> str | None:
        """ "latin", "arabic", "both", or None when nothing was read."""
        found = {line.script for line in self.lines}
        if not found:
            return None
        return "both" if len(found) > 1 else found.pop()


@dataclass(frozen=True)
class _Settings:
    """The pipeline's knobs, tuned on bench/ocr_accuracy.py's tuning seeds (1, 7; never on
    the held-out ones)."""

    # The small copy the layout is found on; big enough for 10 px text in a 12 MP photo.
    analysis_side: int = 1024
    # The largest picture read at all: a bigger one is reduced first (bounds memory and time).
    max_pixels: int = 24_000_000
    # Sauvola's k and dynamic range, and its window as a multiple of the text height.
    sauvola_k: float = 0.2
    sauvola_range: float = 128.0
    # Tilt searched, in degrees either way, coarse then fine.
    max_tilt: float = 10.0
    # The height of a row of text (ascender to descender) Tesseract is given, in pixels.
    target_row_height: float = 48.0
    # Scale bounds for the reading image, and the most pixels it may have.
    max_upscale: float = 4.0
    reading_pixels: int = 4_000_000
    # Words below this confidence (0-100) are dropped when they are also short: specks.
    min_speck_confidence: float = 40.0
    # Lines whose words are on average less sure than this (0-100) are dropped.
    min_line_confidence: float = 60.0
    # A line whose corner lies within this many analysis pixels of an edge is cut there.
    edge_margin: float = 3.0
    # A line whose end lies within this many pixels and this share of a row of a side edge
    # is cut there.
    touch_margin: float = 1.0
    touch_share: float = 0.03
    # A line whose box runs this share of a row past the top or bottom edge, with ink on the
    # border beside it, is cut there.
    cut_overhang: float = 0.05
    # One within this many rows of it is cut there if ink covers this share of a row of the
    # border beside it.
    cut_reach: float = 1.0
    # ... and this many rows more above the first line and below the last (a line cut off
    # there may not be read at all).
    cut_reach_across: float = 0.6
    cut_ink: float = 0.1
    # Pixels whose local spread reaches this share of the picture's strongest count as busy.
    busy_share: float = 0.5
    # ... and this many times the median patch's.
    busy_over_typical: float = 1.6
    # A row of the levelled ink profile is text when it holds this share of the fullest row.
    row_floor: float = 0.03
    psm: int = 6
    # Tesseract's own noise filter drops whole rows of bold letters as noise (their strokes
    # are as thick as its idea of a blot); specks are taken out before it sees the image.
    tesseract_options: str = "-c textord_noise_rejrows=0"
    # Each line is read again in its own script's language; a line read less surely than
    # this (0-100) in the first reading is read again in both.
    reread: bool = True
    reread_confidence: float = 80.0
    # A line's reading in one language is kept unless this much less sure than the first.
    single_language_bonus: float = 10.0
    # The floor on a line's confidence when it was read in one language.
    min_reread_confidence: float = 50.0
    # A line is kept only with a word of three letters read this surely (0-100; four
    # letters: 15 less), or one of two letters read the second this surely.
    min_word_confidence: float = 70.0
    min_short_word_confidence: float = 85.0
    # In a picture with a line read surely, another row is kept with its words this sure on
    # average (0-100) and a word of four letters this sure (three letters: 15 more).
    min_context_confidence: float = 30.0
    min_context_word_confidence: float = 35.0
    # Rows still unread there are read as lone lines, this many at most.
    lone_rows: int = 2
    # A row of text (ascender to descender) is about this many stroke widths tall.
    row_per_stroke: float = 5.0
    # Ink whose neighbourhood holds less than this share of ink is a speck.
    speck_share: float = 0.06
    # Ink in the reading image is at least this much darker than its surroundings (0-255).
    min_ink_contrast: float = 20.0
    # The reading image keeps the text's region and this many rows around it.
    text_margin: float = 0.6
    # A reading image whose text region is inked more than this is not read: text leaves
    # most of its region blank; a wall's texture binarised does not.
    max_ink_share: float = 0.3
    # Ink is darker than its closing by this share of what most strokes are (the 90th
    # percentile over the first guess of ink).
    tophat_share: float = 0.3
    # A reading whose lines are on average less sure than this (0-100) is tried again with
    # the other polarity (light text taken for dark, or the reverse). 1: only a reading of
    # nothing at all (light text on a plate on a lighter wall, a plate's edge taken for the
    # text). It doubles the time spent on pictures without text; a higher value changed
    # little more on the tuning seeds.
    retry_confidence: float = 1.0
    # A row of the profile holding less than this share of the fullest row's ink is stray.
    row_share: float = 0.08
    # ... unless it holds this share, is about a row tall and lies within this many rows of
    # the others (a short line of one word).
    short_row_share: float = 0.01
    short_row_reach: float = 1.5
    # (Its densest part: the dots above and below Arabic letters may fall under the floor.)
    short_row_height: float = 0.35
    # The small copy's grey levels are stretched over at least this many levels of the
    # picture's (so a short word on a plain wall is not lost in its stretched noise).
    least_stretch: float = 48.0
    # Gaussian radii against sensor noise, on the small copy and on the reading image.
    analysis_smoothing: float = 1.2
    reading_smoothing: float = 1.0
    # Above this noise (0-255) the reading image is smoothed again with this radius, and ink
    # must stand this many noise deviations darker than its surroundings.
    noisy: float = 6.0
    noisy_smoothing: float = 1.8
    noise_contrast: float = 4.0
    languages_together: bool = True
    extra: dict = field(default_factory=dict)


SETTINGS = _Settings()


class _TesseractEnvironment(Mapping):
    """os.environ as Tesseract should see it: with one OpenMP thread.

    Two threads made Tesseract 3-50x slower on a 2-core machine (they fight the app's own
    threads). Setting ``OMP_THREAD_LIMIT`` in this process would also bind torch and every
    child process, so only Tesseract's process gets it.
    """

    def __getitem__(self, key: str) -> str:
        if key == "OMP_THREAD_LIMIT":
            return "1"
        return os.environ[key]

    def __iter__(self) -> Iterator[str]:
        yield from (key for key in os.environ if key != "OMP_THREAD_LIMIT")
        yield "OMP_THREAD_LIMIT"

    def __len__(self) -> int:
        return len(os.environ) + ("OMP_THREAD_LIMIT" not in os.environ)


def _use_one_thread() -> None:
    # pytesseract hands the mapping it calls ``environ`` to every subprocess it starts.
    if not isinstance(pytesseract.pytesseract.environ, _TesseractEnvironment):
        pytesseract.pytesseract.environ = _TesseractEnvironment()


@cache
def _installed_languages(command: str) -> frozenset[str]:
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError, OSError):
        return frozenset()


def tesseract_available(languages: Sequence[str] = ("eng", "ara")) -> bool:
    """Whether Tesseract runs here with at least one of ``languages`` (cached per command)."""
    installed = _installed_languages(pytesseract.pytesseract.tesseract_cmd)
    return any(language in installed for language in languages)


# Image preparation --------------------------------------------------------------------------


def _grey(image: Image.Image, smoothing: float = 0.0, least_range: float = 1.0) -> np.ndarray:
    """Luminance as float32, stretched so the darkest and brightest 0.5% reach 0 and 255:
    a dim photo then binarises like a bright one. ``smoothing`` (a Gaussian radius) first
    takes out the sensor noise that the stretch would amplify with it. The stretch spans at
    least ``least_range`` grey levels: a short word on a plain wall is under 0.5% of the
    pixels, and stretching the wall's noise alone over the whole range would drown it."""
    luma = ImageOps.grayscale(image.convert("RGB"))
    if smoothing > 0:
        luma = luma.filter(ImageFilter.GaussianBlur(smoothing))
    grey = np.asarray(luma, dtype=np.float32)
    low, high = np.percentile(grey, (0.5, 99.5))
    if high - low < 1.0:
        return grey
    if high - low < least_range:
        middle = (low + high) / 2
        low, high = middle - least_range / 2, middle + least_range / 2
    return np.clip((grey - low) * (255.0 / (high - low)), 0.0, 255.0)


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The mean over a (2r+1)-square window around each pixel (integral image, reflected
    edges)."""
    size = 2 * radius + 1
    padded = np.pad(values.astype(np.float64), radius + 1, mode="reflect")[:-1, :-1]
    summed = padded.cumsum(axis=0).cumsum(axis=1)
    window = (
        summed[size:, size:]
        - summed[:-size, size:]
        - summed[size:, :-size]
        + summed[:-size, :-size]
    )
    return (window / (size * size)).astype(np.float32)


def _sauvola(grey: np.ndarray, radius: int, k: float, dynamic: float) -> np.ndarray:
    """Dark ink against its own surroundings: True where a pixel is ink (Sauvola 2000).

    A threshold from the local mean and spread copes with a lamp on one side of a label and
    with a wall's texture, which one global threshold does not.
    """
    mean = _box_mean(grey, radius)
    square = _box_mean(grey * grey, radius)
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0))
    threshold = mean * (1.0 + k * (spread / dynamic - 1.0))
    return grey < threshold


def _sliding(values: np.ndarray, size: int, axis: int, pick) -> np.ndarray:
    """``pick`` (np.maximum or np.minimum) over a window of ``size`` along ``axis``, edges
    repeated."""
    half = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half, size - 1 - half)
    padded = np.pad(values, pad, mode="edge")
    length = values.shape[axis]
    result = padded.take(range(0, length), axis=axis)
    for shift in range(1, size):
        result = pick(result, padded.take(range(shift, shift + length), axis=axis))
    return result


def _dark_tophat(grey: np.ndarray, size: int) -> np.ndarray:
    """How much darker each pixel is than the closing of ``grey`` by a ``size`` square: a
    stroke narrower than the square stands out, the step between a plate and a wall (or a
    lamp's gradient) does not."""
    grown = _sliding(_sliding(grey, size, 0, np.maximum), size, 1, np.maximum)
    closed = _sliding(_sliding(grown, size, 0, np.minimum), size, 1, np.minimum)
    return closed - grey


def _resized(image: Image.Image, scale: float) -> Image.Image:
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    return image.resize(size, method)


def _profile_sharpness(ink: Image.Image, angle: float) -> float:
    """How sharply rows of ink stand out when the picture is turned by ``angle``: lines of
    text give a profile of tall peaks and empty gaps only when they are level."""
    turned = ink.rotate(angle, Image.Resampling.NEAREST, expand=True)
    rows = np.asarray(turned, dtype=np.float32).sum(axis=1)
    return float(np.square(np.diff(rows)).sum())


def _tilt(ink: np.ndarray, limit: float) -> float:
    """The angle (degrees, counter-clockwise) that levels the text's rows."""
    image = Image.fromarray((ink * 255).astype(np.uint8))
    # The search runs on at most 512 px: the angle hardly changes, the cost falls 4x.
    scale = min(1.0, 512 / max(image.size))
    image = _resized(image, scale) if scale < 1 else image
    coarse = np.arange(-limit, limit + 0.01, 1.0)
    best = max(coarse, key=lambda angle: _profile_sharpness(image, angle))
    fine = np.arange(best - 0.8, best + 0.81, 0.2)
    return float(max(fine, key=lambda angle: _profile_sharpness(image, angle)))


@dataclass(frozen=True)
class _Layout:
    """What the small copy says about the text: its polarity, tilt, rows and size."""

    dark_text: bool
    angle: float
    row_height: float  # in analysis pixels
    region: tuple[int, int, int, int]  # in the levelled analysis picture
    ink: np.ndarray  # the analysis picture's ink, unlevelled


def _text_rows(profile: np.ndarray, floor: float) -> list[tuple[int, int]]:
    rows = profile > floor
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _stroke_width(ink: np.ndarray) -> float:
    """The typical width of a stroke: the median run of ink along the rows."""
    padded = np.pad(ink, ((0, 0), (1, 1))).astype(np.int8)
    steps = np.diff(padded, axis=1).ravel()
    starts = np.flatnonzero(steps == 1)
    ends = np.flatnonzero(steps == -1)
    runs = ends - starts
    runs = runs[runs >= 1]
    return float(np.median(runs)) if runs.size else 1.0


def _widened(mask: np.ndarray, axis: int, reach: int) -> np.ndarray:
    """``mask`` grown by ``reach`` pixels both ways along ``axis`` (a 1-D dilation)."""
    grown = mask.copy()
    for shift in range(1, reach + 1):
        if axis == 1:
            grown[:, shift:] |= mask[:, :-shift]
            grown[:, :-shift] |= mask[:, shift:]
        else:
            grown[shift:, :] |= mask[:-shift, :]
            grown[:-shift, :] |= mask[shift:, :]
    return grown


def _long_runs(mask: np.ndarray, axis: int, length: float) -> np.ndarray:
    """The pixels of ``mask`` on an unbroken run of at least ``length`` along ``axis``."""
    lines = mask if axis == 1 else mask.T
    padded = np.pad(lines, ((0, 0), (1, 1))).astype(np.int8)
    steps = np.diff(padded, axis=1)
    starts = np.flatnonzero(steps.ravel() == 1)
    ends = np.flatnonzero(steps.ravel() == -1)
    keep = (ends - starts) >= length
    marks = np.zeros(steps.size + 1, np.int32)
    np.add.at(marks, starts[keep], 1)
    np.add.at(marks, ends[keep], -1)
    on = (np.cumsum(marks)[:-1].reshape(steps.shape) > 0)[:, :-1]
    return on if axis == 1 else on.T


def _without_rules(ink: np.ndarray, row_height: float) -> np.ndarray:
    """``ink`` without the long straight strokes no letter has: a label's frame, a plate's
    edge binarised into a line, a shelf. A vertical stroke longer than 1.8 rows of text or
    a horizontal one longer than six is such a rule (Arabic joins letters along the
    baseline, but rarely that far). The search runs on ink widened across the stroke, so a
    rule a few degrees off level still counts as one run."""
    reach = max(2, round(0.06 * row_height))
    vertical = _long_runs(_widened(ink, 1, reach), 0, 1.8 * row_height)
    horizontal = _long_runs(_widened(ink, 0, reach), 1, 6.0 * row_height)
    return ink & ~_widened(_widened(vertical | horizontal, 0, 1), 1, 1)


def _without_specks(ink: np.ndarray, radius: int, share: float) -> np.ndarray:
    """``ink`` without isolated specks: ink whose neighbourhood is almost empty."""
    density = _box_mean(ink.astype(np.float32), radius)
    return ink & (density >= share)


def _row_height(level: np.ndarray, rows: list[tuple[int, int]], by_strokes: float) -> float:
    """The height of a row of text: the ink-weighted median height of the profile's rows,
    unless those look merged (a frame joined them) or split, where the strokes say better."""
    profile = level.sum(axis=1).astype(np.float64)
    heights = np.array([bottom - top for top, bottom in rows], dtype=np.float64)
    weights = np.array([profile[top:bottom].sum() for top, bottom in rows], dtype=np.float64)
    order = np.argsort(heights)
    middle = np.searchsorted(np.cumsum(weights[order]), weights.sum() / 2)
    by_rows = float(heights[order][min(middle, len(order) - 1)])
    if 0.5 * by_strokes <= by_rows <= 2.0 * by_strokes:
        return by_rows
    return math.sqrt(max(by_rows, 4.0) * by_strokes)


def _polar_ink(
    grey: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    busy: np.ndarray,
    dark: bool,
    k: float,
    dynamic: float,
) -> np.ndarray:
    polar = grey if dark else 255.0 - grey
    polar_mean = mean if dark else 255.0 - mean
    threshold = polar_mean * (1.0 + k * (spread / dynamic - 1.0))
    return (polar < threshold) & busy


def _text_columns(band: np.ndarray, row_height: float) -> tuple[int, int]:
    """The columns the text spans: groups of inked columns apart by more than 1.5 rows that
    hold little of the ink (a frame's remains, a speck) are left out."""
    counts = band.sum(axis=0)
    inked = np.flatnonzero(counts)
    gaps = np.flatnonzero(np.diff(inked) > 1.5 * row_height)
    groups = np.split(inked, gaps + 1)
    total = float(counts.sum())
    kept = [group for group in groups if counts[group].sum() >= 0.05 * total] or groups
    return int(min(group[0] for group in kept)), int(max(group[-1] for group in kept)) + 1


def _analyse(
    grey: np.ndarray, settings: _Settings, dark_text: bool | None = None
) -> _Layout | None:
    """Polarity, tilt, rows of text and their height, on the small copy."""
    radius = max(7, round(max(grey.shape) / 60))
    mean = _box_mean(grey, radius)
    spread = np.sqrt(np.maximum(_box_mean(grey * grey, radius) - mean * mean, 0.0))
    # Text is where the picture varies most: a share of the strongest local contrast, and
    # clearly more than the typical patch's, so a wall's texture (stretched by _grey in a dim
    # photo, or when the text is small on it) stays out.
    busy = spread > max(
        12.0,
        settings.busy_share * float(np.percentile(spread, 99.5)),
        settings.busy_over_typical * float(np.median(spread)),
    )
    if busy.sum() < 20:
        return None
    if dark_text is None:
        # Strokes are the minority of a patch of text, so its pixels lean to the ink's side:
        # far below the local mean for dark ink, far above it for light ink.
        deviation = (grey[busy] - mean[busy]) / np.maximum(spread[busy], 1.0)
        dark_text = float(np.mean(deviation**3)) <= 0.0
    ink = _polar_ink(
        grey, mean, spread, busy, dark_text, settings.sauvola_k, settings.sauvola_range
    )
    speck = max(3, round(max(grey.shape) / 128))
    ink = _without_specks(ink, speck, settings.speck_share)
    if ink.sum() < 20:
        return None
    stroke = _stroke_width(ink)
    # Strokes, not the edges of plates: ink must be darker than its closing too.
    tophat = _dark_tophat(grey if dark_text else 255.0 - grey, max(5, round(3 * stroke) | 1))
    ink &= tophat > max(
        settings.min_ink_contrast, settings.tophat_share * float(np.percentile(tophat[ink], 90))
    )
    ink = _without_specks(ink, speck, settings.speck_share)
    if ink.sum() < 20:
        return None
    by_strokes = settings.row_per_stroke * _stroke_width(ink)
    ink = _without_specks(_without_rules(ink, by_strokes), speck, settings.speck_share)
    if ink.sum() < 20:
        return None
    angle = _tilt(ink, settings.max_tilt)
    levelled = Image.fromarray((ink * 255).astype(np.uint8)).rotate(
        angle, Image.Resampling.NEAREST, expand=True
    )
    level = np.asarray(levelled) > 0
    profile = level.sum(axis=1).astype(np.float32)
    rows = _text_rows(profile, max(2.0, settings.row_floor * float(profile.max())))
    if not rows:
        return None
    # Rows of a few stray pixels (specks, a wall's texture) are not text.
    amounts = [float(profile[top:bottom].sum()) for top, bottom in rows]
    all_rows = rows
    rows = [
        (top, bottom)
        for (top, bottom), amount in zip(rows, amounts)
        if amount >= settings.row_share * max(amounts) and bottom - top >= 0.3 * by_strokes
    ]
    if not rows:
        return None
    row_height = _row_height(level, rows, by_strokes)
    # Thin bands are what is left of a frame or a row of dots; the text's rows are taller.
    rows = [(top, bottom) for top, bottom in rows if bottom - top >= 0.45 * row_height] or rows
    row_height = _row_height(level, rows, by_strokes)
    # A short line (one word under a long one) holds little ink but is a row of text of
    # the same height as the others, and near them.
    near = settings.short_row_reach * row_height
    for (top, bottom), amount in zip(all_rows, amounts):
        if (top, bottom) in rows or amount < settings.short_row_share * max(amounts):
            continue
        if not settings.short_row_height * row_height <= bottom - top <= 2.0 * row_height:
            continue
        if any(
            top - near <= other_bottom and other_top <= bottom + near
            for other_top, other_bottom in rows
        ):
            rows.append((top, bottom))
    rows.sort()
    top = min(top for top, _ in rows)
    bottom = max(bottom for _, bottom in rows)
    left, right = _text_columns(level[top:bottom], row_height)
    region = (left, int(top), right, int(bottom))
    return _Layout(dark_text, angle, row_height, region, ink)


# Geometry between the picture, the small copy and the levelled reading image -------------------


def _turn(
    points: np.ndarray, angle: float, size: tuple[int, int], turned: tuple[int, int]
) -> np.ndarray:
    """Where ``points`` (x, y rows) of an image of ``size`` land in its
    ``rotate(angle, expand=True)`` copy of size ``turned`` (Pillow turns counter-clockwise
    about the centre)."""
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    dx = points[:, 0] - size[0] / 2
    dy = points[:, 1] - size[1] / 2
    return np.stack(
        (dx * cos + dy * sin + turned[0] / 2, -dx * sin + dy * cos + turned[1] / 2), axis=1
    )


def _corners(box: Sequence[float]) -> np.ndarray:
    left, top, right, bottom = box
    return np.array([(left, top), (right, top), (right, bottom), (left, bottom)], float)


def _bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(points[:, 0].min()),
        float(points[:, 1].min()),
        float(points[:, 0].max()),
        float(points[:, 1].max()),
    )


def _turned_size(size: tuple[int, int], angle: float) -> tuple[int, int]:
    return Image.new("1", size).rotate(angle, expand=True).size


# Reading ------------------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _is_arabic(char: str) -> bool:
    code = ord(char)
    return (
        0x0600 <= code <= 0x06FF
        or 0x0750 <= code <= 0x077F
        or 0x08A0 <= code <= 0x08FF
        or 0xFB50 <= code <= 0xFDFF
        or 0xFE70 <= code <= 0xFEFF
    )


def _script_of(text: str) -> str:
    arabic = sum(_is_arabic(char) for char in text)
    latin = sum(char.isalpha() and char.isascii() for char in text)
    return "arabic" if arabic > latin else "latin"


# Tesseract marks the direction of a left-to-right run inside right-to-left text with these;
# the page sets each line's direction itself.
_DROPPED_MARKS = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"))
# Arabic short-vowel marks (tashkeel): labels and signs are written without them, and
# Tesseract reads specks above and below a word as them.
_DROPPED_MARKS.update(dict.fromkeys(range(0x064B, 0x0653)))


@dataclass
class _Word:
    text: str
    confidence: float
    box: tuple[int, int, int, int]
    line_key: tuple[int, int, int]


def _tesseract_words(
    image: Image.Image,
    languages: str,
    settings: _Settings,
    deadline: float,
    psm: int | None = None,
) -> list[_Word]:
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise _Timeout
    try:
        data = pytesseract.image_to_data(
            image,
            lang=languages,
            config=f"--psm {psm or settings.psm} {settings.tesseract_options}".strip(),
            output_type=pytesseract.Output.DICT,
            timeout=remaining,
        )
    except RuntimeError as err:
        # pytesseract's only way of saying it killed Tesseract at the time-out.
        if "timeout" in str(err).lower():
            raise _Timeout from err
        raise
    words = []
    for index, raw in enumerate(data["text"]):
        text = raw.translate(_DROPPED_MARKS).strip()
        confidence = float(data["conf"][index])
        if not text or confidence < 0:
            continue
        left, top = int(data["left"][index]), int(data["top"][index])
        box = (left, top, left + int(data["width"][index]), top + int(data["height"][index]))
        key = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
        words.append(_Word(text, confidence, box, key))
    return words


def _meaningful(word: _Word, settings: _Settings) -> bool:
    """Not a speck read as a letter: specks come back short and unsure, or as punctuation."""
    letters = sum(char.isalnum() for char in word.text)
    if letters == 0:
        return False
    return word.confidence >= settings.min_speck_confidence or letters >= 3


@dataclass(frozen=True)
class _Frame:
    """How the reading image's pixels map back to the picture's."""

    angle: float
    scale: float  # reading-image pixels per picture pixel, before turning
    origin: tuple[float, float]  # the crop's corner in the picture
    size: tuple[int, int]  # the scaled crop, before turning
    turned: tuple[int, int]  # the reading image

    def corners_in_picture(self, box: Sequence[float]) -> np.ndarray:
        """The four corners of a box in the reading image, in the picture's pixels."""
        unturned = _turn(_corners(box), -self.angle, self.turned, self.size)
        return unturned / self.scale + np.array(self.origin)

    def to_picture(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        return _bounds(self.corners_in_picture(box))

    def from_picture(self, points: np.ndarray) -> tuple[float, float, float, float]:
        """The reading image's box around ``points`` (x, y rows in the picture's pixels)."""
        scaled = (points - np.array(self.origin)) * self.scale
        return _bounds(_turn(scaled, self.angle, self.size, self.turned))


def _noise(grey: np.ndarray) -> float:
    """The sensor noise's standard deviation: the median absolute difference between a
    pixel and its 3x3 neighbourhood (text is too small a share of pixels to move it)."""
    difference = np.abs(grey - _box_mean(grey, 1))
    return float(1.4826 * 9 / 8 * np.median(difference))


def _reading_image(
    picture: Image.Image, small_scale: float, layout: _Layout, settings: _Settings
) -> tuple[Image.Image, _Frame, float]:
    """The text's part of the picture, levelled, scaled to the best row height, binarised."""
    small_size = (round(picture.width * small_scale), round(picture.height * small_scale))
    level_size = _turned_size(small_size, layout.angle)
    pad = 1.5 * layout.row_height
    left, top, right, bottom = layout.region
    region = (left - pad, top - pad, right + pad, bottom + pad)
    unlevelled = _turn(_corners(region), -layout.angle, level_size, small_size) / small_scale
    x0, y0, x1, y1 = _bounds(unlevelled)
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(picture.width, math.ceil(x1)), min(picture.height, math.ceil(y1))
    crop = picture.crop((x0, y0, x1, y1))
    scale = settings.target_row_height / layout.row_height * small_scale
    area = max(1, crop.width * crop.height)
    scale = min(scale, settings.max_upscale, math.sqrt(settings.reading_pixels / area))
    scaled = _resized(crop, scale)
    grey = _grey(scaled, settings.reading_smoothing)
    if not layout.dark_text:
        grey = 255.0 - grey
    grey_image = Image.fromarray(grey.astype(np.uint8))
    background = int(np.median(grey))
    turned = grey_image.rotate(
        layout.angle, Image.Resampling.BICUBIC, expand=True, fillcolor=background
    )
    levelled = np.asarray(turned, dtype=np.float32)
    noise = _noise(levelled)
    if noise > settings.noisy:
        # A dim photo's sensor noise, stretched with its light: smoothed further, at this
        # scale a stroke is several pixels wide and keeps its shape.
        levelled = np.asarray(
            turned.filter(ImageFilter.GaussianBlur(settings.noisy_smoothing)), dtype=np.float32
        )
        noise = _noise(levelled)
    radius = max(8, round(settings.target_row_height))
    ink = _sauvola(levelled, radius, settings.sauvola_k, settings.sauvola_range)
    # Sauvola marks the noise of a dark, flat wall as ink; ink must also stand out.
    contrast = max(settings.min_ink_contrast, settings.noise_contrast * noise)
    ink &= _box_mean(levelled, radius) - levelled > contrast
    stroke = max(1.0, settings.target_row_height / settings.row_per_stroke)
    tophat = _dark_tophat(levelled, max(5, round(3 * stroke) | 1))
    if ink.any():
        floor = settings.tophat_share * float(np.percentile(tophat[ink], 90))
        ink &= tophat > max(contrast, floor)
    row = settings.target_row_height
    ink = _without_specks(_without_rules(ink, row), max(3, round(row / 8)), settings.speck_share)
    frame = _Frame(
        angle=layout.angle,
        scale=scaled.width / max(1, crop.width),
        origin=(x0, y0),
        size=scaled.size,
        turned=turned.size,
    )
    # Only the text's own rows and columns are kept: the wall, a plate's edges and its
    # frame around them are read as letters otherwise.
    margin = settings.text_margin * layout.row_height
    text = (left - margin, top - margin, right + margin, bottom + margin)
    in_picture = _turn(_corners(text), -layout.angle, level_size, small_size) / small_scale
    kept = frame.from_picture(in_picture)
    keep = np.zeros_like(ink)
    keep[
        max(0, math.floor(kept[1])) : max(0, math.ceil(kept[3])),
        max(0, math.floor(kept[0])) : max(0, math.ceil(kept[2])),
    ] = True
    binary = Image.fromarray(np.where(ink & keep, 0, 255).astype(np.uint8))
    share = float(ink[keep].mean()) if keep.any() else 0.0
    return binary, frame, share


@dataclass
class _Line:
    words: list[_Word]
    box: tuple[int, int, int, int]  # in the reading image

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


def _candidates(words: list[_Word], settings: _Settings) -> list[_Line]:
    """Tesseract's lines, specks left out, before any confidence floor."""
    grouped: dict[tuple[int, int, int], list[_Word]] = {}
    for word in words:
        if _meaningful(word, settings):
            grouped.setdefault(word.line_key, []).append(word)
    return [_Line(members, _box_of(members)) for members in grouped.values()]


def _box_of(words: list[_Word]) -> tuple[int, int, int, int]:
    return (
        min(word.box[0] for word in words),
        min(word.box[1] for word in words),
        max(word.box[2] for word in words),
        max(word.box[3] for word in words),
    )


def _has_a_word(words: list[_Word], settings: _Settings, *, context: bool = False) -> bool:
    """Whether a line holds one word surely read: the shorter the word, the surer. Specks,
    a photo's edges and textures read as digits, lone letters and short unsure words, and a
    line of them as mostly such: at least half its words must have two letters or more."""
    wordy = sum(sum(char.isalpha() for char in word.text) >= 2 for word in words)
    if 2 * wordy < len(words):
        return False
    for word in words:
        letters = sum(char.isalpha() for char in word.text)
        if context:
            if letters >= 4 and word.confidence >= settings.min_context_word_confidence:
                return True
            if letters >= 3 and word.confidence >= settings.min_context_word_confidence + 15:
                return True
            continue
        if letters >= 4 and word.confidence >= settings.min_word_confidence - 15:
            return True
        if letters >= 3 and word.confidence >= settings.min_word_confidence:
            return True
        if letters >= 2 and word.confidence >= settings.min_short_word_confidence:
            return True
    return False


def _mean_confidence(words: list[_Word]) -> float:
    return sum(word.confidence for word in words) / len(words) if words else 0.0


def _lines_of(words: list[_Word], settings: _Settings) -> list[_Line]:
    # A line of specks and frame edges reads as unsure words; a real line may hold one
    # unsure word among sure ones, and keeps it.
    lines = [
        line
        for line in _candidates(words, settings)
        if _mean_confidence(line.words) >= settings.min_line_confidence
        and _has_a_word(line.words, settings)
    ]
    return _reading_order(lines)


def _ink_rows(ink: np.ndarray, row: float) -> list[tuple[int, int]]:
    """The rows of text in the levelled reading image's ``ink``, as bands (top, bottom)
    reaching halfway to the next one: runs of inked pixel rows, joined across gaps under a
    sixth of a ``row``, with the short runs (dots, marks) given to the nearest tall run a
    row or less away and the short runs far from any left out (specks)."""
    profile = ink.sum(axis=1)
    if not profile.any():
        return []
    runs = _text_rows(profile, max(1.0, 0.01 * float(profile.max())))
    joined: list[list[int]] = []
    for top, bottom in runs:
        if joined and top - joined[-1][1] < row / 6:
            joined[-1][1] = bottom
        else:
            joined.append([top, bottom])
    tall = [run for run in joined if run[1] - run[0] >= 0.4 * row]
    if not tall:
        return []
    for top, bottom in joined:
        if bottom - top >= 0.4 * row:
            continue
        distance, nearest = min(
            (max(other[0] - bottom, top - other[1], 0), index) for index, other in enumerate(tall)
        )
        if distance <= row:
            tall[nearest][0] = min(tall[nearest][0], top)
            tall[nearest][1] = max(tall[nearest][1], bottom)
    tall.sort()
    bands = []
    for index, (top, bottom) in enumerate(tall):
        above = tall[index - 1][1] if index else 0
        below = tall[index + 1][0] if index + 1 < len(tall) else ink.shape[0]
        bands.append(
            (
                max(0, top - round(0.5 * row), (top + above + 1) // 2),
                min(ink.shape[0], bottom + round(0.5 * row), (bottom + below) // 2),
            )
        )
    return bands


def _stacked(
    ink: np.ndarray, bands: list[tuple[int, int]], row: float
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """The bands of ``ink`` one under another on white, each cut to its inked columns and
    half a ``row`` around them, and where each went: (top in the stack, bottom in the
    stack, left of the crop, top of the crop)."""
    crops = []
    for top, bottom in bands:
        columns = np.flatnonzero(ink[top:bottom].any(axis=0))
        left = max(0, int(columns[0]) - round(row / 2)) if columns.size else 0
        right = min(ink.shape[1], int(columns[-1]) + 1 + round(row / 2)) if columns.size else 1
        crop = Image.fromarray(np.where(ink[top:bottom, left:right], 0, 255).astype(np.uint8))
        crops.append((crop, (left, top)))
    gap = max(8, round(row))
    width = max(crop.width for crop, _ in crops) + 2 * gap
    height = sum(crop.height for crop, _ in crops) + gap * (len(crops) + 1)
    stack = Image.new("L", (width, height), 255)
    places = []
    y = gap
    for crop, (left, top) in crops:
        stack.paste(crop, (gap, y))
        places.append((y, y + crop.height, left - gap, top - y))
        y += crop.height + gap
    return stack, places


def _split_lines(words: list[_Word]) -> list[_Line]:
    """``words`` grouped by the line Tesseract put them on, each in its (logical) order."""
    groups: dict[tuple[int, int, int], list[_Word]] = {}
    for word in sorted(words, key=lambda word: word.line_key):
        groups.setdefault(word.line_key, []).append(word)
    return [_Line(group, _box_of(group)) for group in groups.values()]


def _kept(
    words: list[_Word], floor: float, settings: _Settings, *, context: bool = False
) -> list[_Line]:
    """The lines of ``words`` that pass the floor on confidence and hold a sure word, the
    pieces of one row (Tesseract may split a row at a wide space) joined in reading order."""
    lines = [
        line
        for line in _split_lines(words)
        if _mean_confidence(line.words) >= floor
        and _has_a_word(line.words, settings, context=context)
    ]
    rows: list[list[_Line]] = []
    for line in _reading_order(lines):
        if rows and _same_row(rows[-1][-1].box, line.box):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [row[0] if len(row) == 1 else _joined(row) for row in rows]


def _joined(pieces: list[_Line]) -> _Line:
    """Pieces of one row as one line: a word read twice (the pieces may overlap) once, the
    surer reading, and the words in reading order (right to left when Arabic)."""
    words: list[_Word] = []
    for word in sorted((w for piece in pieces for w in piece.words), key=lambda w: -w.confidence):
        width = max(1, word.box[2] - word.box[0])
        if all(
            min(word.box[2], other.box[2]) - max(word.box[0], other.box[0])
            < 0.5 * min(width, max(1, other.box[2] - other.box[0]))
            for other in words
        ):
            words.append(word)
    arabic = _script_of(" ".join(word.text for word in words)) == "arabic"
    words.sort(key=lambda word: word.box[0] + word.box[2], reverse=arabic)
    return _Line(words, _box_of(words))


def _same_row(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    """Whether two boxes overlap by more than half the lower one's height."""
    overlap = min(first[3], second[3]) - max(first[1], second[1])
    return overlap > 0.5 * min(first[3] - first[1], second[3] - second[1])


def _letter_confidence(words: list[_Word]) -> float:
    """The words' confidence weighted by their letters (0 with none): a reading of specks
    as digits and lone letters weighs little however sure."""
    letters = [sum(char.isalpha() for char in word.text) for word in words]
    if not sum(letters):
        return 0.0
    return sum(word.confidence * count for word, count in zip(words, letters)) / sum(letters)


def _best_reading(
    choices: list[list[_Word]], settings: _Settings
) -> tuple[list[_Line], list[_Word]]:
    """The lines kept of the surest of a row's readings (the first, mixed one, then one per
    language) that keeps any, and that reading's words. A reading in one language is trusted
    over the mixed first one unless clearly less sure: the mixed one's confidence is high for
    a wrong script's look-alikes. Only readings that keep a line are chosen from (digits read
    surely keep none)."""
    scored = []
    for number, found in enumerate(choices):
        floor = settings.min_line_confidence if number == 0 else settings.min_reread_confidence
        kept = _kept(found, floor, settings)
        if kept:
            bonus = settings.single_language_bonus if number else 0.0
            scored.append((_mean_confidence(found) + bonus, kept, found))
    if not scored:
        return [], []
    _, kept, found = max(scored, key=lambda triple: triple[0])
    return kept, found


def _context_reading(choices: list[list[_Word]], settings: _Settings) -> list[_Line]:
    """The lines of a row read less surely, in a picture that surely holds text: from the
    reading whose letters are surest, those with a long enough word read surely enough."""
    scored = []
    for number, found in enumerate(choices):
        kept = _kept(found, settings.min_context_confidence, settings, context=True)
        if kept:
            bonus = settings.single_language_bonus if number else 0.0
            scored.append((_letter_confidence(found) + bonus, kept))
    return max(scored, key=lambda pair: pair[0])[1] if scored else []


def _without_repeats(lines: list[_Line]) -> list[_Line]:
    """One line per piece of text: of two lines of about one height covering the same ink
    (most of the smaller box inside the other), the one holding more sure text is kept."""

    def area(box: tuple[int, int, int, int]) -> int:
        return max(1, box[2] - box[0]) * max(1, box[3] - box[1])

    kept: list[_Line] = []
    for line in sorted(lines, key=lambda line: -_weight([line])):
        covered = False
        for other in kept:
            width = min(other.box[2], line.box[2]) - max(other.box[0], line.box[0])
            height = min(other.box[3], line.box[3]) - max(other.box[1], line.box[1])
            smaller = min(area(other.box), area(line.box))
            heights = sorted((other.box[3] - other.box[1], line.box[3] - line.box[1]))
            if (
                width > 0
                and height > 0
                and width * height > 0.5 * smaller
                and heights[1] < 1.6 * max(1, heights[0])
            ):
                covered = True
                break
        if not covered:
            kept.append(line)
    return kept


def _reread(
    binary: Image.Image,
    words: list[_Word],
    installed: set[str],
    deadline: float,
    settings: _Settings,
) -> list[_Line]:
    """Each row of text read again on its own, in its own script's language alone (Arabic
    read together with English comes back with Latin letters for Arabic words, and the
    reverse; Tesseract's own lines may run from one row into the next). A row Tesseract was
    unsure of, or missed, is read in both. The surer reading of each row is kept, then the
    floor on confidence applies."""
    row = settings.target_row_height
    ink = np.asarray(binary) < 128
    bands = _ink_rows(ink, row)
    first = [word for word in words if _meaningful(word, settings)]
    slots: list[list[_Word]] = [[] for _ in bands]
    loose: list[_Word] = []
    for word in first:
        middle = (word.box[1] + word.box[3]) / 2
        for slot, (top, bottom) in enumerate(bands):
            if top <= middle < bottom:
                slots[slot].append(word)
                break
        else:
            loose.append(word)
    # A row the first reading missed is read only in a picture that surely holds text.
    text_here = bool(_kept(first, settings.min_line_confidence, settings))
    language_of = {"latin": "eng", "arabic": "ara"}
    queues: dict[str, list[int]] = {"eng": [], "ara": []}
    for slot, found in enumerate(slots):
        if found:
            if not any(sum(char.isalpha() for char in word.text) >= 2 for word in found):
                # Digits and lone letters only: a photo's specks, not worth reading twice.
                continue
            sure = _mean_confidence(found) >= settings.reread_confidence
            script = _script_of(" ".join(word.text for word in found))
        elif text_here:
            sure, script = False, None
        else:
            continue
        for each, language in language_of.items():
            if language in installed and (not sure or script == each):
                queues[language].append(slot)
    options: list[list[list[_Word]]] = [[found] for found in slots]
    for language, indexes in queues.items():
        if not indexes:
            continue
        stack, places = _stacked(ink, [bands[index] for index in indexes], row)
        read: list[list[_Word]] = [[] for _ in indexes]
        for word in _tesseract_words(stack, language, settings, deadline):
            middle = (word.box[1] + word.box[3]) / 2
            for place, (top, bottom, dx, dy) in enumerate(places):
                if top <= middle < bottom:
                    left, upper, right, lower = word.box
                    moved = (left + dx, upper + dy, right + dx, lower + dy)
                    read[place].append(_Word(word.text, word.confidence, moved, word.line_key))
                    break
        for place, index in enumerate(indexes):
            meaningful = [word for word in read[place] if _meaningful(word, settings)]
            if meaningful:
                options[index].append(meaningful)
    result = _kept(loose, settings.min_line_confidence, settings)
    unsure: list[tuple[list[list[_Word]], tuple[int, int] | None]] = []
    for slot, choices in enumerate(options):
        kept, found = _best_reading(choices, settings)
        result.extend(kept)
        if kept:
            # The chosen reading's other lines (a row joined to a surely read one).
            held = {id(word) for line in kept for word in line.words}
            rest = [word for word in found if id(word) not in held]
            if rest:
                unsure.append(([rest], None))
        else:
            unsure.append((choices, bands[slot]))
    if result and unsure:
        # In a picture that surely holds text, a row read less surely is text too (a short
        # word, a bold or blurred one), when its words are long enough not to be specks and
        # its letters about the height of the sure lines'.
        heights = sorted(line.box[3] - line.box[1] for line in result)
        typical = heights[len(heights) // 2]
        lone = 0
        for choices, band in unsure:
            lines = _context_reading(choices, settings)
            if not lines and band is not None and lone < settings.lone_rows:
                # Tesseract's page layout loses some short words in bold Arabic type; read
                # as a line on its own, the row is read.
                lone += 1
                lines = _context_reading(
                    _lone_readings(ink, band, installed, deadline, settings), settings
                )
            result.extend(
                line
                for line in lines
                if 0.6 * typical <= line.box[3] - line.box[1] <= 1.7 * typical
            )
    return _reading_order(_without_repeats(result))


def _lone_readings(
    ink: np.ndarray,
    band: tuple[int, int],
    installed: set[str],
    deadline: float,
    settings: _Settings,
) -> list[list[_Word]]:
    """One row of ``ink`` read as a single line (no page layout) in each language, cut
    close around its ink."""
    row = settings.target_row_height
    part = ink[band[0] : band[1]]
    rows, columns = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    if not rows.size or rows[-1] - rows[0] > 2 * row:
        return []
    pad = max(4, round(0.2 * row))
    top, left = band[0] + int(rows[0]), int(columns[0])
    crop = part[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    image = ImageOps.expand(Image.fromarray(np.where(crop, 0, 255).astype(np.uint8)), pad, 255)
    dx, dy = left - pad, top - pad
    readings = []
    for language in ("eng", "ara"):
        if language not in installed:
            continue
        readings.append(
            [
                _Word(
                    word.text,
                    word.confidence,
                    (word.box[0] + dx, word.box[1] + dy, word.box[2] + dx, word.box[3] + dy),
                    word.line_key,
                )
                for word in _tesseract_words(image, language, settings, deadline, psm=13)
                if _meaningful(word, settings)
            ]
        )
    return readings


def _short_label(
    binary: Image.Image, installed: set[str], deadline: float, settings: _Settings
) -> list[_Line]:
    """A label of a row or two that Tesseract's page layout read nothing in (a short word
    in bold Arabic type), its rows read as lone lines; the usual floors apply."""
    row = settings.target_row_height
    ink = np.asarray(binary) < 128
    bands = _ink_rows(ink, row)
    if not 1 <= len(bands) <= settings.lone_rows:
        return []
    lines = []
    for band in bands:
        kept, _ = _best_reading(
            [[], *_lone_readings(ink, band, installed, deadline, settings)], settings
        )
        lines.extend(kept)
    return _reading_order(lines)


def _reading_order(lines: list[_Line]) -> list[_Line]:
    """Top to bottom; lines side by side (overlapping by half their height) left to right,
    or right to left when they are Arabic."""
    lines = sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2)
    rows: list[list[_Line]] = []
    for line in lines:
        if rows and _same_row(rows[-1][-1].box, line.box):
            rows[-1].append(line)
            continue
        rows.append([line])
    ordered = []
    for row in rows:
        arabic = _script_of(" ".join(line.text for line in row)) == "arabic"
        ordered.extend(sorted(row, key=lambda line: line.box[0], reverse=arabic))
    return ordered


def _crossings(border: np.ndarray, columns: slice, row: float) -> np.ndarray:
    """The border's inked columns beside a line that look like letters cut across: runs no
    longer than a row (a plate's edge along the border is one long run), and none at all
    when the border holds more ink away from the line than beside it (an edge, a shelf)."""
    beside = border[columns]
    if beside.sum() < border.sum() - beside.sum():
        return np.zeros_like(beside)
    steps = np.diff(np.concatenate(([0], beside.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    kept = np.zeros_like(beside)
    for start, end in zip(starts, ends):
        if end - start <= row:
            kept[start:end] = True
    return kept


def _cut_edges(quads: list[np.ndarray], layout: _Layout, settings: _Settings) -> tuple[str, ...]:
    """The edges text runs into, judged on the small copy (each line's four corners in its
    pixels, clockwise from the top left: a tilted line's upright box would reach much nearer
    an edge than its text).

    A line whose corner lies on an edge is cut there. One near an edge is cut only if the
    text's ink touches the border beside it: a label may end a few pixels short of an edge.
    "Near" is up to a row's height: the words or the line cut off may be too cut to read.
    """
    ink = layout.ink
    height, width = ink.shape
    row = layout.row_height
    reach = settings.edge_margin + settings.cut_reach * row
    border = 2
    least = max(2, round(settings.cut_ink * row))
    found = set()
    # A line's end this near a side edge is cut there even without ink on the border: the
    # cut may fall between two letters.
    touching = settings.touch_margin + settings.touch_share * row
    # A line whose box, turned back into the picture, runs past the top or bottom edge is
    # cut there when the border beside it is inked: an uncut line's box hugs its ink, a cut
    # line's ink ends along the edge, at an angle to the line.
    overhang = -settings.cut_overhang * row

    def span(values: np.ndarray, limit: int) -> slice:
        return slice(max(0, math.floor(values.min())), min(limit, math.ceil(values.max()) + 1))

    top_border, bottom_border = ink[:border].any(axis=0), ink[-border:].any(axis=0)
    for quad in quads:
        xs, ys = quad[:, 0], quad[:, 1]
        near = {
            "left": (float(xs[[0, 3]].min()), ink[span(ys[[0, 3]], height), :border].any(axis=1)),
            "right": (
                width - float(xs[[1, 2]].max()),
                ink[span(ys[[1, 2]], height), -border:].any(axis=1),
            ),
            "top": (float(ys[[0, 1]].min()), _crossings(top_border, span(xs, width), row)),
            "bottom": (
                height - float(ys[[2, 3]].max()),
                _crossings(bottom_border, span(xs, width), row),
            ),
        }
        for edge, (distance, touched) in near.items():
            across = edge in ("top", "bottom")
            if not across and distance <= touching:
                found.add(edge)
            if across and distance <= overhang:
                beside = (top_border if edge == "top" else bottom_border)[span(xs, width)]
                if int(beside.sum()) >= least:
                    found.add(edge)
            # Above the first line and below the last, a whole line may be cut off; a line's
            # box there also runs past its ink (accents, dots), so its ink must say so.
            limit = reach + settings.cut_reach_across * row if across else reach
            if distance <= limit and int(touched.sum()) >= least:
                found.add(edge)
    return tuple(edge for edge in EDGES if edge in found)


def _read_layout(
    picture: Image.Image,
    small_scale: float,
    layout: _Layout,
    languages: str,
    deadline: float,
    settings: _Settings,
) -> tuple[list[_Line], _Frame]:
    binary, frame, ink_share = _reading_image(picture, small_scale, layout, settings)
    if ink_share > settings.max_ink_share:
        # Texture or noise, not text (text is a minority of its own region): Tesseract
        # would spend seconds reading specks.
        return [], frame
    words = _tesseract_words(binary, languages, settings, deadline)
    installed = set(languages.split("+"))
    if not settings.reread or len(installed) < 2:
        return _lines_of(words, settings), frame
    try:
        if not any(_meaningful(word, settings) for word in words):
            return _short_label(binary, installed, deadline, settings), frame
        return _reread(binary, words, installed, deadline, settings), frame
    except _Timeout:
        # Out of time for the second reading: the first one stands.
        return _lines_of(words, settings), frame


def _sureness(lines: list[_Line]) -> float:
    """The mean word confidence (0-100) over all lines, weighted by length; 0 for none."""
    words = [word for line in lines for word in line.words]
    if not words:
        return 0.0
    return sum(word.confidence * len(word.text) for word in words) / sum(
        len(word.text) for word in words
    )


def _weight(lines: list[_Line]) -> float:
    """How much sure text a reading holds: characters times confidence."""
    return sum(word.confidence * len(word.text) for line in lines for word in line.words)


def _read(
    image: Image.Image, languages: str, deadline: float, settings: _Settings
) -> tuple[list[TextLine], tuple[str, ...]]:
    picture = image if image.mode == "RGB" else image.convert("RGB")
    # A huge picture is reduced first (whole pixels averaged, cheap): the reading image is
    # bounded anyway, and this bounds the memory and time of getting there.
    factor = 1
    if picture.width * picture.height > settings.max_pixels:
        factor = math.ceil(math.sqrt(picture.width * picture.height / settings.max_pixels))
        picture = picture.reduce(factor)
    small_scale = min(1.0, settings.analysis_side / max(picture.size))
    small = _resized(picture, small_scale)
    grey = _grey(small, settings.analysis_smoothing, settings.least_stretch)
    layout = _analyse(grey, settings)
    if layout is None:
        return [], ()
    began = time.perf_counter()
    lines, frame = _read_layout(picture, small_scale, layout, languages, deadline, settings)
    spent = time.perf_counter() - began
    # The polarity may have been misjudged (light text on a plate on a lighter wall): when
    # the reading is unsure, the other one is read too, and the surer reading kept, if time
    # allows (never at the cost of the first reading).
    if _sureness(lines) < settings.retry_confidence and deadline - time.perf_counter() > 3 * spent:
        other = _analyse(grey, settings, dark_text=not layout.dark_text)
        if other is not None:
            try:
                tried = _read_layout(picture, small_scale, other, languages, deadline, settings)
            except _Timeout:
                tried = ([], frame)
            if _weight(tried[0]) > _weight(lines):
                (lines, frame), layout = tried, other
    found = []
    quads = []
    for line in lines:
        left, top, right, bottom = frame.to_picture(line.box)
        quads.append(frame.corners_in_picture(line.box) * small_scale)
        box = (
            max(0, math.floor(left * factor)),
            max(0, math.floor(top * factor)),
            min(image.width, math.ceil(right * factor)),
            min(image.height, math.ceil(bottom * factor)),
        )
        confidence = sum(word.confidence for word in line.words) / (100 * len(line.words))
        found.append(TextLine(line.text, box, _script_of(line.text), round(confidence, 3)))
    return found, _cut_edges(quads, layout, settings)


def read_text(
    image: Image.Image,
    *,
    languages: Sequence[str] = ("eng", "ara"),
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TextReading:
    """Read the text in ``image`` in reading order; never raises for Tesseract's sake.

    ``languages`` are Tesseract's codes; those not installed are left out, and with none
    left the status is "engine_missing". ``timeout_s`` bounds the whole reading: Tesseract is
    stopped when it runs past it and the status is "timeout".
    """
    started = time.perf_counter()

    def finished(
        status: str, lines: Sequence[TextLine] = (), cut: tuple[str, ...] = ()
    ) -> TextReading:
        return TextReading(tuple(lines), status, time.perf_counter() - started, cut)

    installed = _installed_languages(pytesseract.pytesseract.tesseract_cmd)
    usable = [language for language in languages if language in installed]
    if not usable:
        return finished("engine_missing")
    _use_one_thread()
    try:
        lines, cut = _read(image, "+".join(usable), started + timeout_s, SETTINGS)
    except _Timeout:
        return finished("timeout")
    except pytesseract.TesseractNotFoundError:
        return finished("engine_missing")
    except (pytesseract.TesseractError, OSError) as err:
        _LOG.warning("Tesseract failed: %s", err)
        return finished("failed")
    if not lines:
        return finished("no_text")
    return finished("read", lines, cut)
