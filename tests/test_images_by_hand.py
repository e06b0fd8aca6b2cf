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
