"""Photo-quality cues: the labelled-set floors, each cue on its own, and the intake hook."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from train.quality_set import build_set, fit_thresholds, measure_set, score
from vqa_core.images import inspect_image, load_image
from vqa_core.quality import (
    DEFAULT_MIN_SIDE,
    DEMO_MIN_SIDE,
    QUALITY_CODES,
    QualityThresholds,
    measure_quality,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PHOTOS = sorted((EXAMPLES / "photos").glob("*.jpg"))
EASY_VQA = sorted((EXAMPLES / "easy_vqa").glob("*.png"))


def _jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _photo(name: str = "cat.jpg") -> Image.Image:
    with Image.open(EXAMPLES / "photos" / name) as opened:
        return opened.convert("RGB")


@pytest.fixture(scope="module")
def small_sets():
    """A small labelled set: both parts, every degradation, measured through the intake."""
    fit = build_set("fit", easy_count=40, crops_per_photo=6, seed=3)
    held_out = build_set("held_out", easy_count=40, crops_per_photo=4, seed=3)
    return fit, measure_set(fit), held_out, measure_set(held_out)


def test_shipped_thresholds_meet_the_floors_on_the_held_out_part(small_sets):
    _, _, held_out, measured = small_sets
    labels = {p.label for p in held_out}
    assert labels == {"clean", *QUALITY_CODES}
    report = score(held_out, measured)["all"]
    assert report["degraded_flagged"] >= 0.95, report
    assert report["clean_flagged"] <= 0.03, report
    for code in QUALITY_CODES:
        assert report[f"recall_{code}"] >= 0.9, (code, report)


def test_fitting_on_the_fit_part_lands_thresholds_that_generalise(small_sets):
    fit, fit_measured, held_out, held_measured = small_sets
    fitted = fit_thresholds(fit, fit_measured)
    judged = [
        m.with_thresholds(QualityThresholds(**{**vars(fitted), "min_side": p.min_side}))
        for p, m in zip(held_out, held_measured)
    ]
    report = score(held_out, judged)["all"]
    assert report["degraded_flagged"] >= 0.95, (fitted, report)
    assert report["clean_flagged"] <= 0.03, (fitted, report)


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_the_example_photos_raise_no_cue(path):
    assert inspect_image(path).quality.flags == ()


@pytest.mark.parametrize("path", EASY_VQA, ids=lambda p: p.name)
def test_demo_pictures_are_not_too_small_for_the_demo_models(path):
    demo = inspect_image(path, thresholds=QualityThresholds(min_side=DEMO_MIN_SIDE)).quality
    assert demo.flags == ()
    # The same 64 px picture is too small for real checkpoints, which look at 224-384 px.
    assert inspect_image(path).quality.flags == ("small",)


def test_a_darkened_photo_is_dark_first():
    values = np.asarray(_photo(), dtype=np.float32) * 0.06
    quality = inspect_image(_jpeg(Image.fromarray(values.astype(np.uint8)))).quality
    assert quality.primary == "dark"
    assert quality.highlights <= QualityThresholds().dark_highlights


def test_a_lamp_in_a_dark_room_is_not_dark():
    values = np.asarray(_photo(), dtype=np.float32) * 0.06
    values[:60, :120] = 250.0  # a bright window: more than 5% of the picture
    quality = measure_quality(Image.fromarray(values.astype(np.uint8)))
    assert "dark" not in quality.flags


def test_an_overexposed_photo_is_bright():
    values = np.asarray(_photo("coffee.jpg"), dtype=np.float32) * 1.5 + 170
    quality = inspect_image(_jpeg(Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))))
    assert quality.quality.primary == "bright"


def test_a_pale_picture_with_a_small_dark_shape_is_not_bright():
    canvas = Image.new("RGB", (64, 64), (245, 240, 250))
    canvas.paste((0, 0, 200), (30, 30, 35, 34))  # 20 of 4,096 pixels
    assert measure_quality(canvas, thresholds=QualityThresholds(min_side=64)).flags == ()


def test_a_flat_field_is_uniform_and_not_blurred():
    rng = np.random.default_rng(0)
    field = 128 + rng.normal(0, 2, size=(300, 400, 3))
    quality = measure_quality(Image.fromarray(field.astype(np.uint8)))
    assert quality.flags == ("uniform",)


def test_a_blurred_photo_is_blurred_and_the_sharp_one_is_not():
    photo = _photo("astronaut.jpg")
    blurred = photo.filter(ImageFilter.GaussianBlur(radius=0.03 * min(photo.size)))
    assert inspect_image(_jpeg(blurred)).quality.flags == ("blurred",)
    assert inspect_image(_jpeg(photo)).quality.flags == ()


def test_sharpness_is_about_edge_width_not_contrast():
    """A one-pixel step scores 3 at any contrast; the same step smeared scores near 1."""
    step = np.zeros((64, 64, 3), dtype=np.uint8)
    step[:, 32:] = 60
    faint = measure_quality(Image.fromarray(step))
    step[:, 32:] = 220
    strong = measure_quality(Image.fromarray(step))
    assert faint.sharpness == pytest.approx(3.0)
    assert strong.sharpness == pytest.approx(3.0)
    ramp = np.tile(np.linspace(0, 220, 64, dtype=np.float32)[None, :, None], (64, 1, 3))
    assert measure_quality(Image.fromarray(ramp.astype(np.uint8))).sharpness < 1.2


def test_too_small_is_judged_on_the_size_sent():
    tiny = _photo().resize((48, 32))
    assert inspect_image(_jpeg(tiny)).quality.primary == "small"
    assert inspect_image(_jpeg(_photo().resize((168, 112)))).quality.flags == (), DEFAULT_MIN_SIDE


def test_a_12_megapixel_photo_is_measured_on_its_draft_but_sized_as_sent():
    big = _photo().resize((4000, 3000), Image.Resampling.BILINEAR)
    data = _jpeg(big)
    inspected = inspect_image(data)
    assert (inspected.quality.width, inspected.quality.height) == (4000, 3000)
    assert inspected.image.size == load_image(data).size
    assert max(inspected.image.size) < 1000  # the draft decode, not the full picture


def test_inspect_image_hands_back_exactly_what_load_image_does():
    for source in [*PHOTOS, *EASY_VQA]:
        inspected = inspect_image(source).image
        plain = load_image(source)
        assert inspected.size == plain.size
        assert inspected.tobytes() == plain.tobytes()


def test_padding_of_a_long_strip_does_not_hide_that_it_is_dark():
    strip = Image.fromarray(
        (np.asarray(_photo().resize((1000, 120)), dtype=np.float32) * 0.05).astype(np.uint8)
    )
    inspected = inspect_image(strip)
    assert inspected.image.size == load_image(strip).size  # padded to 4:1 with white
    assert inspected.quality.primary == "dark"


def test_quality_is_plain_data_for_the_api():
    quality = inspect_image(_jpeg(_photo().resize((40, 30)))).quality
    payload = json.loads(json.dumps(quality.as_dict()))
    assert payload["flags"] == ["small"]
    assert payload["width"] == 40
