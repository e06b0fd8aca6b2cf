"""Photo-quality measures on pictures whose every number is worked out by hand.

Each picture below is small enough to count: the expected percentiles, contrast and edge
steepness come from the pixel values, not from running the code.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vqa_core.quality import QualityThresholds, measure_quality


def _rows(values: list[int], height: int = 3) -> Image.Image:
    """A grey picture whose every row is ``values`` (columns left to right)."""
    row = np.asarray(values, dtype=np.uint8)
    return Image.fromarray(np.repeat(np.tile(row, (height, 1))[:, :, None], 3, axis=2))


def test_a_flat_colour_measures_its_own_channels():
    # Brightest channel 30 everywhere, darkest 10: both percentiles are those values; no
    # channel varies (contrast 0) and there is no edge (sharpness 0). 200 px: not small.
    quality = measure_quality(Image.new("RGB", (200, 200), (10, 20, 30)))
    assert (quality.highlights, quality.shadows) == (30.0, 10.0)
    assert (quality.contrast, quality.sharpness) == (0.0, 0.0)
    assert quality.flags == ("dark", "uniform") and quality.primary == "dark"
    assert not quality.ok


def test_the_95th_percentile_counts_the_pixels_below_it():
    # 100 pixels: 95 black, 5 at 200. The 95th percentile of 100 values lands on the 95th
    # (index 94.05 of 0..99), still black; "dark" is raised although 5 pixels are bright.
    picture = Image.new("RGB", (10, 10), (0, 0, 0))
    for x in range(5):
        picture.putpixel((x, 9), (200, 200, 200))
    assert measure_quality(picture).highlights == 0.0
    # Six bright pixels: the 95th value is now one of them.
    picture.putpixel((5, 9), (200, 200, 200))
    assert measure_quality(picture).highlights == 200.0


def test_one_dark_pixel_in_501_is_not_the_shadows():
    # 0.2% of 500 (the index range of 501 values) is exactly 1: the percentile is the value
    # above which more than one pixel lies, so a single black pixel does not count.
    picture = Image.new("RGB", (167, 3), (200, 200, 200))
    picture.putpixel((0, 0), (0, 0, 0))
    assert measure_quality(picture).shadows == 200.0
    picture.putpixel((1, 0), (0, 0, 0))
    assert measure_quality(picture).shadows == 0.0


def test_a_two_pixel_ramp_scores_two():
    # Along a row 0, 100, 200: four three-pixel windows rise (100, 200, 200, 100, total 600)
    # and the steepest one-pixel step inside each is 100: 3 x 400 / 600 = 2. Four rising
    # windows of 57 are under a tenth, so the edge floor stays at 8 and all four count.
    # Columns are constant, so nothing rises across rows.
    picture = _rows([0] * 30 + [100] + [200] * 29, height=12)
    assert measure_quality(picture).sharpness == pytest.approx(2.0)


def test_a_picture_four_pixels_wide_is_measured():
    # Columns 0, 0, 200, 200: one three-pixel window rising 200 with a 200 step in it
    # (steepness 3); three rows are too few to measure down the columns.
    assert measure_quality(_rows([0, 0, 200, 200])).sharpness == pytest.approx(3.0)
    # Three columns have no three-pixel window at all.
    assert measure_quality(_rows([0, 200, 200])).sharpness == 0.0


def test_each_threshold_is_where_its_cue_switches_on():
    limits = QualityThresholds(
        dark_highlights=30.0, bright_shadows=10.0, uniform_contrast=0.0, min_side=200
    )
    # Highlights 30 (at the limit: dark), shadows 10 (at the limit: bright), contrast 0 (not
    # under 0: not uniform, so blurred may be judged: sharpness 0 is under 1.61), 200 px.
    quality = measure_quality(Image.new("RGB", (200, 200), (10, 20, 30)), thresholds=limits)
    assert quality.flags == ("dark", "bright", "blurred")
    # One step either side of each.
    limits = QualityThresholds(
        dark_highlights=29.0,
        bright_shadows=11.0,
        uniform_contrast=0.0,
        blurred_sharpness=0.0,
        min_side=201,
    )
    quality = measure_quality(Image.new("RGB", (200, 200), (10, 20, 30)), thresholds=limits)
    assert quality.flags == ("small",)


def test_too_small_is_the_shorter_side_and_the_original_size_wins():
    limits = QualityThresholds(min_side=50)
    picture = Image.new("RGB", (300, 49), (90, 140, 200))
    assert "small" in measure_quality(picture, thresholds=limits).flags
    assert "small" not in measure_quality(picture.resize((300, 50)), thresholds=limits).flags
    measured = measure_quality(picture, original_size=(600, 98), thresholds=limits)
    assert (measured.width, measured.height) == (600, 98) and "small" not in measured.flags


def test_a_large_picture_is_measured_on_a_box_thumbnail():
    # 1024 x 512 becomes 256 x 128 by averaging 4 x 4 blocks: a block of 4 columns at 0 and
    # a block at 240 stay a one-pixel step, and 2 x 2 pixels at 0 among 240s average to 180.
    values = np.full((512, 1024), 240, dtype=np.uint8)
    values[:, :512] = 0
    picture = Image.fromarray(np.repeat(values[:, :, None], 3, axis=2))
    assert measure_quality(picture).sharpness == pytest.approx(3.0)
    values = np.full((512, 1024), 240, dtype=np.uint8)
    values[:2, :2] = 0
    quality = measure_quality(Image.fromarray(np.repeat(values[:, :, None], 3, axis=2)))
    # One thumbnail pixel of 32768 at 180: under the 0.2% share, so shadows stay 240.
    assert quality.shadows == 240.0 and quality.width == 1024


def test_a_grey_picture_is_measured_like_its_rgb_copy():
    grey = _rows([0] * 30 + [100] + [200] * 29, height=12).convert("L")
    assert measure_quality(grey) == measure_quality(grey.convert("RGB"))


def test_as_dict_lists_every_measure():
    quality = measure_quality(Image.new("RGB", (200, 200), (10, 20, 30)))
    assert quality.as_dict() == {
        "flags": ["dark", "uniform"],
        "width": 200,
        "height": 200,
        "highlights": 30.0,
        "shadows": 10.0,
        "contrast": 0.0,
        "sharpness": 0.0,
    }
    clean = quality.with_thresholds(
        QualityThresholds(dark_highlights=0.0, uniform_contrast=0.0, blurred_sharpness=0.0)
    )
    assert clean.ok and clean.primary is None and clean.flags == ()


@pytest.mark.parametrize(
    "colour", [(10, 20, 30), (10, 30, 20), (20, 10, 30), (20, 30, 10), (30, 10, 20), (30, 20, 10)]
)
def test_every_channel_can_be_the_brightest_and_the_darkest(colour):
    # Whichever channel holds 30 is the brightest and whichever holds 10 the darkest.
    quality = measure_quality(Image.new("RGB", (200, 200), colour))
    assert (quality.highlights, quality.shadows) == (30.0, 10.0)


def test_a_white_picture_measures_255_at_both_ends():
    # Every pixel in the histogram's last bin: both percentiles are 255.
    quality = measure_quality(Image.new("RGB", (200, 200), (255, 255, 255)))
    assert (quality.highlights, quality.shadows) == (255.0, 255.0)
    assert quality.flags == ("bright", "uniform")


def _stripes(across_rows: bool) -> Image.Image:
    """1024 x 1024, one-pixel stripes of 0 and 200: columns alternate, or rows do."""
    values = np.zeros((1024, 1024), dtype=np.uint8)
    if across_rows:
        values[1::2, :] = 200
    else:
        values[:, 1::2] = 200
    return Image.fromarray(np.repeat(values[:, :, None], 3, axis=2))


@pytest.mark.parametrize("across_rows", [False, True])
def test_one_pixel_stripes_average_to_flat_grey_on_the_thumbnail(across_rows):
    # The 256 x 256 thumbnail averages 4 x 4 blocks, each two stripes of 0 and two of 200:
    # every thumbnail pixel is 100, so nothing varies. At full size the contrast would be 100.
    quality = measure_quality(_stripes(across_rows))
    assert (quality.highlights, quality.shadows, quality.contrast) == (100.0, 100.0, 0.0)
    assert (quality.width, quality.height) == (1024, 1024)


@pytest.mark.parametrize("size", [(1024, 2), (2, 1024)])
def test_a_thin_strip_keeps_at_least_one_pixel_across(size):
    # 1024 x 2, top row 0 and bottom row 200 (or its transpose): the thumbnail is 256 x 1
    # (2 x 0.25 rounds to 0, raised to 1), so each pixel averages both rows: 100, flat.
    # A thumbnail two pixels across would keep both rows and measure a contrast of 100.
    values = np.zeros(size[::-1], dtype=np.uint8)
    if size[1] == 2:
        values[1, :] = 200
    else:
        values[:, 1] = 200
    quality = measure_quality(Image.fromarray(np.repeat(values[:, :, None], 3, axis=2)))
    assert (quality.highlights, quality.shadows, quality.contrast) == (100.0, 100.0, 0.0)


def test_faint_shading_beside_a_sharp_edge_is_left_out():
    # A row 0, 1, ..., 29 then 229 x 30. Its 57 three-pixel windows: 27 in the ramp rise 3
    # (steepest step 1), the 3 across the jump rise 202, 201, 200 (steepest step 200 each),
    # 27 flat ones rise 0. A tenth of the windows is under 6, so the floor stays at 8 and only
    # the jump counts: 3 x 600 / 603. Counting the ramp too would give 3 x 627 / 684 = 2.75.
    picture = _rows(list(range(30)) + [229] * 30, height=12)
    assert measure_quality(picture).sharpness == pytest.approx(1800 / 603)
