"""A labelled set of clean and degraded pictures for the photo-quality cues; fit and check.

    python -m train.quality_set                      # fit on one part, report the held-out one
    python -m train.quality_set --easy_count 300 --crops_per_photo 10   # quicker

Clean pictures are easy-VQA's (as the package ships them, 64x64 PNG) and photos (random crops,
saved as JPEG at a random quality, like an upload). Each clean picture also comes degraded in
one of the ways that make answers unreliable, strongly enough that a person would call it
clearly degraded:

* ``dark``: light scaled to 3-12% with sensor noise (an unlit room, a thumb on the flash);
* ``bright``: gain and a lifted black level, clipped (over-exposure: washed out to white);
* ``blurred``: a Gaussian blur of 2-4% of the short side (out of focus, shaken);
* ``small``: shrunk to 16-40 px on the short side (a thumbnail, a crop of a crop);
* ``uniform``: a flat field with a faint gradient and noise (a wall, a covered lens), or the
  picture with its contrast crushed to 2-5% (fog, a lens pressed against something).

The fit part is easy-VQA's train pictures and the example photos in examples/photos; the
held-out part is easy-VQA's test pictures and the photos gradio installs with itself, which the
fit never sees. Every picture goes through :func:`vqa_core.images.inspect_image`, the intake
the app uses, from its encoded bytes. Thresholds are fitted per cue: the loosest threshold that
raises the cue on at most ``clean_budget`` of the clean pictures, moved to the middle of the
gap when the degraded pictures leave one.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from vqa_core.images import inspect_image
from vqa_core.quality import (
    DEFAULT_MIN_SIDE,
    DEMO_MIN_SIDE,
    PhotoQuality,
    QualityThresholds,
)

__all__ = [
    "DEGRADATIONS",
    "LabelledPicture",
    "build_set",
    "measure_set",
    "fit_thresholds",
    "score",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEGRADATIONS = ("dark", "bright", "blurred", "small", "uniform")
PARTS = ("fit", "held_out")
# Gaussian blur sigma as a share of the short side: 1.3-2.6 px on a 64 px easy-VQA picture,
# 10-20 px on a 512 px photo (5-10 px on the cue's 256 px thumbnail). Milder blur is not
# "clearly degraded" on a 64 px picture; --blur_share measures it anyway.
BLUR_SHARE = (0.02, 0.04)


@dataclass(frozen=True)
class LabelledPicture:
    """One encoded picture, ``clean`` or the degradation applied, and where it came from."""

    data: bytes
    label: str
    source: str
    # The models that would answer it: easy-VQA pictures are what the demo models serve.
    min_side: int


def _encode(picture: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        picture.save(buffer, format="JPEG", quality=quality)
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _as_uint8(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "RGB")


def darken(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    values = np.asarray(picture, dtype=np.float32) * rng.uniform(0.03, 0.12)
    values += rng.normal(0.0, rng.uniform(0.0, 3.0), size=values.shape)
    return _as_uint8(values)


def overexpose(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    values = np.asarray(picture, dtype=np.float32) * rng.uniform(1.0, 2.0)
    return _as_uint8(values + rng.uniform(150.0, 210.0))


def blur(
    picture: Image.Image, rng: np.random.Generator, share: tuple[float, float] = BLUR_SHARE
) -> Image.Image:
    sigma = rng.uniform(*share) * min(picture.size)
    return picture.filter(ImageFilter.GaussianBlur(radius=sigma))


def shrink(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    short = int(rng.integers(16, 41))
    scale = short / min(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.LANCZOS)


def flatten(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Half the time a flat field of the picture's size, else the picture's contrast crushed."""
    values = np.asarray(picture, dtype=np.float32)
    if rng.random() < 0.5:
        height, width = values.shape[:2]
        ramp = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
        field = rng.uniform(30.0, 225.0, size=3) + rng.uniform(0.0, 8.0) * ramp
        values = np.broadcast_to(field, (height, width, 3)).copy()
    else:
        mean = values.mean(axis=(0, 1), keepdims=True)
        values = mean + (values - mean) * rng.uniform(0.02, 0.05)
    values += rng.normal(0.0, rng.uniform(0.0, 2.5), size=values.shape)
    return _as_uint8(values)


_DEGRADE: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "dark": darken,
    "bright": overexpose,
    "blurred": blur,
    "small": shrink,
    "uniform": flatten,
}


def _easy_vqa_paths(part: str, count: int) -> list[str]:
    import easy_vqa

    paths = easy_vqa.get_train_image_paths() if part == "fit" else easy_vqa.get_test_image_paths()
    return [paths[i] for i in sorted(paths)[:count]]


def _photo_paths(part: str) -> list[Path]:
    if part == "fit":
        return sorted((REPO_ROOT / "examples" / "photos").glob("*.jpg"))
    import gradio

    root = Path(gradio.__file__).parent
    found = [
        *sorted((root / "media_assets" / "images").glob("*.jp*g")),
        *sorted((root / "test_data").glob("*.jp*g")),
    ]
    unique: dict[str, Path] = {}
    for path in found:  # gradio ships one photo twice under two names
        unique.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return list(unique.values())


def _photo_crop(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (35-100% of the area, aspect 0.6-1.7), scaled to a 128 px short side or more."""
    width, height = photo.size
    area = rng.uniform(0.35, 1.0) * width * height
    aspect = rng.uniform(0.6, 1.7)
    crop_w = int(min(width, max(16, round((area * aspect) ** 0.5))))
    crop_h = int(min(height, max(16, round((area / aspect) ** 0.5))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    crop = photo.crop((left, top, left + crop_w, top + crop_h))
    short = min(crop.size)
    target = rng.uniform(min(128, short), short)
    if target < short:
        scale = target / short
        size = (round(crop.width * scale), round(crop.height * scale))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
    return crop


def build_set(
    part: str,
    *,
    easy_count: int = 1000,
    crops_per_photo: int = 40,
    seed: int = 0,
    blur_share: tuple[float, float] = BLUR_SHARE,
) -> list[LabelledPicture]:
    """Clean pictures of ``part`` and, for each, one degraded copy per kind in turn."""
    if part not in PARTS:
        raise ValueError(f"Unknown part {part!r}; choose one of: {', '.join(PARTS)}.")
    rng = np.random.default_rng([seed, PARTS.index(part)])
    originals: list[tuple[Image.Image, str, str, int]] = []
    for path in _easy_vqa_paths(part, easy_count):
        with Image.open(path) as opened:
            originals.append(
                (opened.convert("RGB"), "PNG", f"easy-vqa:{Path(path).name}", DEMO_MIN_SIDE)
            )
    photos = _photo_paths(part)
    if not photos:
        raise FileNotFoundError(f"No photos found for the {part} part.")
    for path in photos:
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        originals.extend(
            (_photo_crop(photo, rng), "JPEG", f"photo:{path.name}", DEFAULT_MIN_SIDE)
            for _ in range(crops_per_photo)
        )
    pictures: list[LabelledPicture] = []
    for index, (picture, fmt, source, min_side) in enumerate(originals):
        quality = int(rng.integers(70, 96))
        pictures.append(LabelledPicture(_encode(picture, fmt, quality), "clean", source, min_side))
        kind = DEGRADATIONS[index % len(DEGRADATIONS)]
        if kind == "blurred":
            degraded = blur(picture, rng, blur_share)
        else:
            degraded = _DEGRADE[kind](picture, rng)
        pictures.append(LabelledPicture(_encode(degraded, fmt, quality), kind, source, min_side))
    return pictures


def measure_set(pictures: Sequence[LabelledPicture]) -> list[PhotoQuality]:
    """Every picture through the app's intake, judged with the shipped thresholds."""
    return [
        inspect_image(p.data, thresholds=QualityThresholds(min_side=p.min_side)).quality
        for p in pictures
    ]


def _judge(
    pictures: Sequence[LabelledPicture], measured: Sequence[PhotoQuality], limits: QualityThresholds
) -> list[PhotoQuality]:
    return [
        m.with_thresholds(replace(limits, min_side=p.min_side)) for p, m in zip(pictures, measured)
    ]


def _fit_one(clean: np.ndarray, degraded: np.ndarray, flag_below: bool, budget: float) -> float:
    """The threshold raising the cue on at most ``budget`` of ``clean``, centred in any gap."""
    if flag_below:
        return 1.0 / _fit_one(
            1.0 / np.maximum(clean, 1e-6), 1.0 / np.maximum(degraded, 1e-6), False, budget
        )
    # Flag values at or above the threshold: the clean quantile leaves `budget` above it.
    clean_line = float(np.quantile(clean, 1.0 - budget)) if clean.size else float("inf")
    if degraded.size == 0:
        return clean_line
    degraded_floor = float(np.quantile(degraded, 0.01))
    if degraded_floor > clean_line:
        # The geometric middle: these measures are ratios or levels on a scale where a
        # factor, not a difference, is what separates a picture from its degraded copy.
        if clean_line > 0:
            return float(np.sqrt(degraded_floor * clean_line))
        return (degraded_floor + clean_line) / 2.0
    return float(np.nextafter(clean_line, np.inf))


def fit_thresholds(
    pictures: Sequence[LabelledPicture],
    measured: Sequence[PhotoQuality],
    *,
    clean_budget: float = 0.005,
) -> QualityThresholds:
    """Thresholds for dark, bright, uniform and blurred from the fit part's measures."""

    def values(label: str, field: str) -> np.ndarray:
        return np.array(
            [getattr(m, field) for p, m in zip(pictures, measured) if p.label == label],
            dtype=np.float64,
        )

    uniform = _fit_one(
        values("clean", "contrast"), values("uniform", "contrast"), True, clean_budget
    )
    # Blur is only judged on pictures that are not flat, as the cue itself does.
    sharp_clean = np.array(
        [
            m.sharpness
            for p, m in zip(pictures, measured)
            if p.label == "clean" and m.contrast >= uniform
        ]
    )
    sharp_blurred = np.array(
        [
            m.sharpness
            for p, m in zip(pictures, measured)
            if p.label == "blurred" and m.contrast >= uniform
        ]
    )
    return QualityThresholds(
        dark_highlights=round(
            _fit_one(
                values("clean", "highlights"), values("dark", "highlights"), True, clean_budget
            )
        ),
        bright_shadows=round(
            _fit_one(values("clean", "shadows"), values("bright", "shadows"), False, clean_budget)
        ),
        uniform_contrast=round(uniform, 1),
        blurred_sharpness=round(_fit_one(sharp_clean, sharp_blurred, True, clean_budget), 3),
    )


def score(pictures: Sequence[LabelledPicture], judged: Sequence[PhotoQuality]) -> dict:
    """Recall on degraded pictures, false alarms on clean ones, per kind and per source kind."""
    report: dict = {}
    groups = {
        "all": lambda p: True,
        "easy-vqa": lambda p: p.source.startswith("easy-vqa:"),
        "photos": lambda p: p.source.startswith("photo:"),
    }
    for group, keep in groups.items():
        rows = [(p, q) for p, q in zip(pictures, judged) if keep(p)]
        clean = [q for p, q in rows if p.label == "clean"]
        degraded = [(p, q) for p, q in rows if p.label != "clean"]
        flagged = [(p, q) for p, q in rows if q.flags]
        entry = {
            "clean": len(clean),
            "degraded": len(degraded),
            "clean_flagged": sum(bool(q.flags) for q in clean) / max(1, len(clean)),
            "degraded_flagged": sum(bool(q.flags) for _, q in degraded) / max(1, len(degraded)),
            "precision": sum(p.label != "clean" for p, _ in flagged) / max(1, len(flagged)),
        }
        for kind in DEGRADATIONS:
            of_kind = [q for p, q in degraded if p.label == kind]
            entry[f"recall_{kind}"] = sum(kind in q.flags for q in of_kind) / max(1, len(of_kind))
            raised = [p for p, q in rows if kind in q.flags]
            entry[f"precision_{kind}"] = sum(p.label != "clean" for p in raised) / max(
                1, len(raised)
            )
        report[group] = entry
    return report


def _print_report(title: str, report: dict) -> None:
    print(f"\n{title}")
    for group, entry in report.items():
        kinds = "  ".join(
            f"{kind} R {entry[f'recall_{kind}']:.1%} P {entry[f'precision_{kind}']:.1%}"
            for kind in DEGRADATIONS
        )
        print(
            f"  {group:9s} clean {entry['clean']:5d} flagged {entry['clean_flagged']:6.2%} | "
            f"degraded {entry['degraded']:5d} flagged {entry['degraded_flagged']:6.2%} | "
            f"precision {entry['precision']:6.2%}\n            {kinds}"
        )


def _describe_misses(
    pictures: Sequence[LabelledPicture], judged: Sequence[PhotoQuality], limit: int = 8
) -> None:
    misses = [(p, q) for p, q in zip(pictures, judged) if (p.label == "clean") == bool(q.flags)]
    for p, q in misses[:limit]:
        print(
            f"    miss: {p.label:8s} {p.source:28s} flags={list(q.flags)} {q.width}x{q.height} "
            f"hi={q.highlights:.0f} lo={q.shadows:.0f} contrast={q.contrast:.1f} sharp={q.sharpness:.3f}"
        )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--easy_count", type=int, default=1000, help="easy-VQA pictures per part")
    parser.add_argument("--crops_per_photo", type=int, default=40, help="clean crops per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clean_budget",
        type=float,
        default=0.005,
        help="share of clean fit pictures each cue may raise",
    )
    parser.add_argument(
        "--blur_share",
        type=float,
        nargs=2,
        default=BLUR_SHARE,
        metavar=("LOW", "HIGH"),
        help="blur sigma range, share of the short side",
    )
    parser.add_argument("--output", type=Path, help="write the thresholds and reports as JSON")
    args = parser.parse_args(argv)

    fit_set = build_set(
        "fit",
        easy_count=args.easy_count,
        crops_per_photo=args.crops_per_photo,
        seed=args.seed,
        blur_share=tuple(args.blur_share),
    )
    held_set = build_set(
        "held_out",
        easy_count=args.easy_count,
        crops_per_photo=args.crops_per_photo,
        seed=args.seed,
        blur_share=tuple(args.blur_share),
    )
    fit_measured, held_measured = measure_set(fit_set), measure_set(held_set)
    fitted = fit_thresholds(fit_set, fit_measured, clean_budget=args.clean_budget)
    shipped = QualityThresholds()
    print(f"fitted : {fitted}")
    print(f"shipped: {shipped}")
    results = {"fitted": vars(fitted), "shipped": vars(shipped)}
    for name, limits in (("fitted", fitted), ("shipped", shipped)):
        for part, pictures, measured in (
            ("fit", fit_set, fit_measured),
            ("held_out", held_set, held_measured),
        ):
            judged = _judge(pictures, measured, limits)
            report = score(pictures, judged)
            results[f"{name}_{part}"] = report
            _print_report(f"{name} thresholds on the {part} part", report)
            _describe_misses(pictures, judged)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
