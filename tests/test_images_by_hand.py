"""The image intake's padding and downscaling, checked pixel by pixel."""

from __future__ import annotations

import io
import struct
import warnings

import pytest
from PIL import Image

from vqa_core import images as images_module
from vqa_core.decode_memory import DecodeBudget, estimate_decode_bytes
from vqa_core.errors import ImageInputError
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


def grey_row(mode: str, values: list[float]) -> Image.Image:
    """One row of ``values`` in a wide grey mode (16-bit in either byte order, 32-bit, float)."""
    picture = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        picture.putpixel((x, 0), value)
    return picture


def greys(image: Image.Image) -> list[int]:
    pixels = [image.getpixel((x, 0)) for x in range(image.width)]
    assert all(r == g == b for r, g, b in pixels)
    return [r for r, _, _ in pixels]


@pytest.mark.parametrize("mode", ["I;16B", "I;16L", "I"])
def test_wide_grey_is_stretched_from_its_darkest_to_its_brightest(mode):
    # 300 to 3300 becomes 0 to 255: (v - 300) x 255 / 3000, the fraction dropped. 500 gives
    # exactly 17 and 1000 gives 59.5, so 59. Four pixels in a row are exactly 4:1: no padding.
    loaded = load_image(grey_row(mode, [300, 500, 1000, 3300]))
    assert loaded.size == (4, 1)
    assert greys(loaded) == [0, 17, 59, 255]


def test_float_grey_below_zero_is_stretched_too():
    # -1 to 3 becomes 0 to 255: (v + 1) x 63.75, the fraction dropped: 0, 63.75, 191.25, 255.
    assert greys(load_image(grey_row("F", [-1.0, 0.0, 2.0, 3.0]))) == [0, 63, 191, 255]


def test_sixteen_bit_grey_is_stretched_by_hand():
    # The same stretch in the byte order 16-bit PNGs open in: 700 x 0.085 = 59.5, 1000 x
    # 0.085 = 85, 2000 x 0.085 = 170.
    assert greys(load_image(grey_row("I;16", [300, 1000, 1300, 2300, 3300]))) == [
        0,
        59,
        85,
        170,
        255,
    ]


def test_thirty_two_bit_grey_is_stretched_from_its_exact_extrema():
    # 16,778,235 (= 255 x 65,797) is beyond what a float holds exactly: its float copy reads
    # 16,778,236. From the integers, 6,579,700 and 13,159,400 are exactly levels 100 and 200;
    # from the float copy's extrema they would fall just under, to 99 and 199.
    row = [0, 16_778_235, 65_797 * 100, 65_797 * 200]
    assert greys(load_image(grey_row("I", row))) == [0, 255, 100, 200]


def test_sixteen_bit_grey_is_stretched_without_a_float_copy(monkeypatch):
    # I;16 stretches in its own mode: a float copy would double what the picture holds.
    conversions = []
    convert = Image.Image.convert

    def recorded(self, mode=None, *args, **kwargs):
        conversions.append((self.mode, mode))
        return convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", recorded)
    assert greys(load_image(grey_row("I;16", [300, 1000, 3300]))) == [0, 59, 255]
    assert ("I;16", "F") not in conversions and ("I;16", "I") not in conversions


def test_a_warning_while_opening_other_than_the_bomb_does_not_refuse_the_picture(monkeypatch):
    # Pillow warns about odd but readable files (a malformed EXIF block, an odd MPO); only its
    # decompression-bomb warning is turned into a refusal.
    real_open = Image.open

    def open_with_a_warning(*args, **kwargs):
        warnings.warn("Possibly corrupt EXIF data.", UserWarning, stacklevel=2)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(images_module.Image, "open", open_with_a_warning)
    data = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(data, "PNG")
    with pytest.warns(UserWarning, match="EXIF"):
        assert load_image(data.getvalue()).size[0] > 0


def test_a_header_that_cannot_be_priced_is_refused_as_damaged(monkeypatch):
    # Pillow may fail reading what a picture would cost before decoding it (a truncated
    # header, a frame it cannot seek to): the intake says the file is damaged, no traceback.
    def unreadable(*args, **kwargs):
        raise OSError("broken header")

    monkeypatch.setattr(images_module, "estimate_decode_bytes", unreadable)
    with pytest.raises(ImageInputError) as refused:
        load_image(grey_row("L", [1, 2, 3]))
    assert str(refused.value) == (
        "The image file is damaged or incomplete and could not be decoded."
    )
    assert refused.value.code == "image_damaged"


def test_the_price_counts_the_files_own_size_and_the_shrink(monkeypatch):
    # A JPEG above the models' side is drafted smaller before it is priced: the price still
    # counts the file's own size (its coefficients) and the shrink to max_side.
    picture = Image.new("RGB", (3000, 2000), (90, 120, 30))
    data = io.BytesIO()
    picture.save(data, "JPEG", quality=90)
    seen = []
    real = estimate_decode_bytes

    def priced(image, **kwargs):
        seen.append((image.size, kwargs))
        return real(image, **kwargs)

    monkeypatch.setattr(images_module, "estimate_decode_bytes", priced)
    load_image(data.getvalue(), max_side=384)
    ((drafted, kwargs),) = seen
    assert max(drafted) < 3000  # the draft happened before pricing
    assert kwargs == {"full_size": (3000, 2000), "max_side": 384}


def test_sixteen_bit_grey_at_an_exact_step_is_not_rounded_down():
    assert greys(load_image(grey_row("I;16", [300, 500, 3300, 3300]))) == [0, 17, 255, 255]


def test_sixteen_bit_grey_in_the_machines_own_byte_order_is_stretched_not_black():
    values = [300, 500, 1000, 3300]
    native = Image.frombytes("I;16N", (4, 1), grey_row("I;16", values).tobytes())
    assert greys(load_image(native)) == [0, 17, 59, 255]


def test_a_palette_without_transparency_keeps_its_colours():
    picture = Image.new("P", (4, 1), 0)
    picture.putpalette([10, 20, 30, 200, 100, 50] + [0, 0, 0] * 254)
    picture.putpixel((1, 0), 1)
    picture.putpixel((3, 0), 1)
    loaded = load_image(png(picture))
    assert [loaded.getpixel((x, 0)) for x in range(4)] == [(10, 20, 30), (200, 100, 50)] * 2


@pytest.mark.parametrize("size", [(5216, 8), (8, 5216)])
def test_a_jpeg_a_few_pixels_thin_is_drafted_to_one_pixel_across(size):
    # 5216 x 8: ViLT's long side asks for 640 / 5216 of it, x 0.95 slack: 608 x 0.93, at least
    # one pixel across. 1/8 (652 x 1) covers that; the 4:1 padding then makes 652 x 163. Asking
    # for two pixels across would need 1/4 (1304 x 2), shrunk to 1280 and padded to 1280 x 320.
    long = 652
    padded = load_image(jpeg(Image.new("RGB", size, RED)))
    assert padded.size == ((long, long // 4) if size[0] > size[1] else (long // 4, long))


def refusal(source, **limits) -> ImageInputError:
    with pytest.raises(ImageInputError) as refused:
        load_image(source, **limits)
    return refused.value


def test_a_url_is_refused_by_name():
    err = refusal("https://example.com/cat.jpg")
    assert err.code == "image_url"
    assert str(err) == (
        "Images are not fetched from URLs; download the picture and upload the file."
    )


def test_an_unsupported_source_names_its_type():
    err = refusal(12345)
    assert str(err) == (
        "Unsupported image input of type int; give a PIL image, a file path or the file's bytes."
    )


def test_a_file_that_is_no_image_lists_the_formats_read():
    err = refusal(b"this is not an image at all")
    assert err.code == "image_not_image"
    formats = err.values["formats"]
    assert formats.startswith("JPEG, PNG, GIF, WebP, BMP, TIFF")
    assert str(err) == f"This file is not an image that can be read (supported: {formats})."


@pytest.mark.parametrize("cap", [60, 40])
def test_more_pixels_than_pillow_allows_is_refused(monkeypatch, cap):
    # 10 x 10 = 100 pixels: over a cap of 60 Pillow warns, over twice the cap (40) it raises;
    # both are the same refusal.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", cap)
    err = refusal(png(Image.new("RGB", (10, 10), RED)))
    assert err.code == "image_too_many_pixels"
    assert str(err) == (
        "The image has too many pixels to process safely; please upload a smaller picture."
    )


def test_a_file_pillow_cannot_open_says_why():
    # A BMP header asking for 7 bits per pixel, which no BMP has.
    header = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 7, 0, 0, 0, 0, 0, 0)
    err = refusal(header + info)
    assert err.code == "image_damaged"
    assert str(err) == "The image could not be read: Unsupported BMP pixel depth (7)."


@pytest.mark.parametrize("size", [(0, 5), (5, 0)])
def test_a_picture_without_pixels_is_refused(size):
    err = refusal(Image.new("RGB", size))
    assert (str(err), err.code) == ("The image has no pixels.", "image_damaged")


def test_the_pixel_limit_names_both_counts_in_megapixels():
    # 3500 x 1000 = 3.5 MP against 1.5 MP; both round half to even: 4 and 2.
    err = refusal(Image.new("RGB", (3500, 1000)), max_pixels=1_500_000)
    assert err.code == "image_too_many_pixels"
    assert str(err) == (
        "The image is 3500x1000 (4 megapixels); the limit is 2 megapixels. "
        "Please upload a smaller picture."
    )
    # At the limit exactly, the picture is taken.
    assert load_image(Image.new("RGB", (100, 100)), max_pixels=10_000).size == (100, 100)


def test_the_memory_limit_names_the_estimate_and_the_limit_in_mib():
    data = png(halves(2000, 2000))
    with Image.open(io.BytesIO(data)) as opened:
        estimate = estimate_decode_bytes(opened, full_size=(2000, 2000), max_side=1280)
    # 3.5 MiB is said as 4 MB (half to even), counted in MiB: 3.5 MB of 10^6 bytes, or in
    # units of 1025^2, would be under 3.5 and said as 3.
    err = refusal(data, max_decode_bytes=7 * 1024**2 // 2)
    assert err.code == "image_too_much_memory"
    assert str(err) == (
        f"The image is 2000x2000 and would need about {estimate / 1024**2:,.0f} MB of memory "
        "to read; the limit is 4 MB. Please upload a smaller picture, or save it as a JPEG."
    )
    # A limit of exactly the estimate admits it.
    assert load_image(data, max_decode_bytes=estimate).size == (1280, 1280)


def test_a_file_cut_short_is_refused_as_damaged():
    data = png(halves(400, 400).rotate(30))
    err = refusal(data[: len(data) // 2])
    assert err.code == "image_damaged"
    assert str(err) == "The image file is damaged or incomplete and could not be decoded."


def test_no_room_to_decode_is_refused_as_busy(monkeypatch):
    # The whole budget is taken by another decode for longer than the wait.
    budget = DecodeBudget(limit=1024**2, wait_s=0.05)
    monkeypatch.setattr(images_module, "DECODE_BUDGET", budget)
    with budget.reserve(1024**2):
        err = refusal(png(Image.new("RGB", (100, 100), RED)))
    assert err.code == "image_busy"
    assert str(err) == (
        "The server is busy reading other large pictures; please try again in a minute."
    )


def test_a_caller_s_animation_is_read_from_its_first_frame():
    frames = [Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), BLACK)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with Image.open(buffer) as animation:
        animation.seek(1)
        assert load_image(animation).getpixel((0, 0)) == RED


def test_a_caller_s_mirrored_picture_is_turned_back():
    # EXIF orientation 2 is a left-right mirror: red, black becomes black, red.
    picture = Image.new("RGB", (2, 1), RED)
    picture.putpixel((1, 0), BLACK)
    picture.getexif()[0x0112] = 2
    loaded = load_image(picture)
    assert [loaded.getpixel((x, 0)) for x in range(2)] == [BLACK, RED]


def _two_pixels(mode: str, opaque, clear) -> Image.Image:
    picture = Image.new(mode, (2, 1))
    if mode == "PA":
        picture.putpalette([0, 0, 0, 200, 100, 50] + [0, 0, 0] * 254)
    picture.putpixel((0, 0), opaque)
    picture.putpixel((1, 0), clear)
    return picture


@pytest.mark.parametrize(
    ("picture", "colour"),
    [
        (_two_pixels("LA", (100, 255), (50, 0)).convert("La"), (100, 100, 100)),
        (_two_pixels("PA", (1, 255), (1, 0)), (200, 100, 50)),
        (_two_pixels("RGBA", (200, 100, 50, 255), (200, 100, 50, 0)).convert("RGBa"), None),
    ],
    ids=["La", "PA", "RGBa"],
)
def test_premultiplied_and_paletted_alpha_lies_on_white(picture, colour):
    # An opaque pixel keeps its colour, a fully transparent one shows the white background.
    loaded = load_image(picture)
    assert [loaded.getpixel((x, 0)) for x in range(2)] == [colour or (200, 100, 50), WHITE]


@pytest.mark.parametrize("size", [(1000, 1000), (1280, 960)])
def test_a_jpeg_within_the_bound_is_decoded_at_full_size(size):
    # Only a JPEG longer than 1280 px is drafted; these are kept at their own size.
    assert load_image(jpeg(Image.new("RGB", size, RED))).size == size


@pytest.mark.parametrize("size", [(5, 1), (1, 5)])
def test_a_strip_one_pixel_thin_is_padded_to_one_pixel(size):
    # 5 x 1 is past 4:1, and 5 / 4 = 1.25 rounds to 1: the padding adds nothing.
    assert load_image(Image.new("RGB", size, RED)).size == size
