"""The image intake's padding and downscaling, checked pixel by pixel."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from vqa_core.images import inspect_image, load_image

RED, WHITE, BLACK = (255, 0, 0), (255, 255, 255), (0, 0, 0)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rows_of(image: Image.Image, column: int) -> list[tuple[int, int, int]]:
    return [image.getpixel((column, y)) for y in range(image.height)]


@pytest.mark.parametrize("as_bytes", [True, False])
def test_a_wide_strip_is_padded_white_above_and_below_equally(as_bytes):
    strip = Image.new("RGB", (400, 40), RED)  # 10:1, past the 4:1 limit
    padded = load_image(png(strip) if as_bytes else strip)
    # 400 / 4 = 100 rows: 30 white, the 40 red rows, 30 white.
    assert padded.size == (400, 100)
    for column in (0, 200, 399):
        assert rows_of(padded, column) == [WHITE] * 30 + [RED] * 40 + [WHITE] * 30


def test_a_tall_strip_is_padded_white_left_and_right_equally():
    strip = Image.new("RGB", (40, 400), RED)
    padded = load_image(png(strip))
    assert padded.size == (100, 400)
    for y in (0, 200, 399):
        row = [padded.getpixel((x, y)) for x in range(100)]
        assert row == [WHITE] * 30 + [RED] * 40 + [WHITE] * 30


def test_an_odd_margin_puts_the_extra_row_below():
    strip = Image.new("RGB", (404, 40), RED)  # 101 rows: 61 to share, 30 above, 31 below
    padded = load_image(png(strip))
    assert padded.size == (404, 101)
    assert rows_of(padded, 0) == [WHITE] * 30 + [RED] * 40 + [WHITE] * 31


def test_a_shape_within_the_limit_is_not_padded():
    picture = Image.new("RGB", (300, 100), RED)  # 3:1
    assert load_image(png(picture)).size == (300, 100)


def test_inspect_image_pads_the_same_way():
    padded = inspect_image(png(Image.new("RGB", (400, 40), RED))).image
    assert rows_of(padded, 100) == [WHITE] * 30 + [RED] * 40 + [WHITE] * 30


def halves(width: int, height: int) -> Image.Image:
    """Black on the left half, white on the right."""
    picture = Image.new("RGB", (width, height), WHITE)
    picture.paste(BLACK, (0, 0, width // 2, height))
    return picture


@pytest.mark.parametrize("as_bytes", [True, False])
def test_a_large_picture_is_downscaled_to_1280_on_its_long_side(as_bytes):
    picture = halves(2560, 1280)
    original = picture.copy()
    loaded = load_image(png(picture) if as_bytes else picture)
    assert loaded.size == (1280, 640)
    # Halved, the black half is columns 0-639; far from the edge the pixels are exact.
    for y in (0, 320, 639):
        assert loaded.getpixel((0, y)) == BLACK
        assert loaded.getpixel((600, y)) == BLACK
        assert loaded.getpixel((680, y)) == WHITE
        assert loaded.getpixel((1279, y)) == WHITE
    # The caller's own picture is left as it was.
    assert picture.size == (2560, 1280) and picture.tobytes() == original.tobytes()


def test_max_side_is_a_setting():
    assert load_image(png(halves(1000, 500)), max_side=500).size == (500, 250)
    assert load_image(png(halves(1000, 500)), max_side=None).size == (1000, 500)


def test_a_picture_at_the_limit_is_kept_pixel_for_pixel():
    picture = halves(1280, 640)
    loaded = load_image(png(picture))
    assert loaded.size == (1280, 640) and loaded.tobytes() == picture.tobytes()


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_wide_jpeg_is_drafted_to_cover_vilts_long_side_not_its_short_one():
    # 4000x1000: ViLT's long side (640) asks for 0.16 of it, its short side (384) for 0.384.
    # 0.16 x 0.95 slack = 608x152 wanted; the JPEG scales are 1/2, 1/4, 1/8, and 1/4
    # (1000x250) is the smallest that still covers it, under the 1280 bound: no resize.
    picture = load_image(jpeg(Image.new("RGB", (4000, 1000), RED)))
    assert picture.size == (1000, 250)


def test_inspect_image_measures_the_picture_it_decodes():
    inspected = inspect_image(png(Image.new("RGB", (200, 200), BLACK)))
    assert inspected.image.size == (200, 200)
    assert inspected.quality.primary == "dark"  # its brightest pixels are all 0


def test_inspect_image_judges_with_the_thresholds_it_is_given():
    from vqa_core.quality import QualityThresholds

    black = png(Image.new("RGB", (200, 200), BLACK))
    # A "dark" line below 0 can never be reached: black is no longer dark.
    never_dark = QualityThresholds(dark_highlights=-1.0)
    assert "dark" not in inspect_image(black, thresholds=never_dark).quality.flags


def test_inspect_image_reports_the_files_own_size_and_keeps_max_side():
    # A 2600x2000 JPEG is drafted: ViLT's short side asks for 384 / 2000 = 0.192 of it, x 0.95
    # = 474x364, which 1/4 (650x500) covers. "Too small" and the reported size are still
    # about the file the person sent.
    big = jpeg(Image.new("RGB", (2600, 2000), RED))
    inspected = inspect_image(big)
    assert inspected.image.size == (650, 500)
    assert (inspected.quality.width, inspected.quality.height) == (2600, 2000)
    # A caller's own bound is honoured: 600 on the long side, 2600:2000 kept (600x462).
    assert inspect_image(png(Image.new("RGB", (2600, 2000), RED)), max_side=600).image.size == (
        600,
        462,
    )
