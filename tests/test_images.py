"""Every awkward image either comes out as RGB a processor accepts, or raises ImageInputError."""

import io
import threading
import time

import pytest
from PIL import Image, ImageOps

from vqa_core import ImageInputError, load_image
from vqa_core.decode_memory import DecodeBudget, DecodeBusyError, estimate_decode_bytes
from vqa_core.images import MAX_ASPECT_RATIO


def _png_bytes(image: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _assert_answerable(image: Image.Image) -> None:
    assert image.mode == "RGB"
    width, height = image.size
    assert width >= 1 and height >= 1
    assert max(width, height) / min(width, height) <= MAX_ASPECT_RATIO + 0.01


def test_exif_orientation_is_applied():
    # A 40x20 picture stored with "rotate 90" (orientation 6) is shown 20x40.
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(_png_bytes(image, "JPEG", exif=exif.tobytes()))
    assert loaded.size == (20, 40)
    assert loaded.size == ImageOps.exif_transpose(Image.open(io.BytesIO(
        _png_bytes(image, "JPEG", exif=exif.tobytes())))).size  # fmt: skip


def test_phone_photo_held_upright_is_drafted_then_rotated():
    # Phones store a portrait shot as landscape pixels plus "rotate 90 clockwise" (6); the draft
    # decode must keep that: the stored left half (blue) becomes the top once upright.
    image = Image.new("RGB", (4032, 3024), (200, 20, 20))
    image.paste((20, 20, 200), (0, 0, 2016, 3024))
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(_png_bytes(image, "JPEG", quality=85, exif=exif.tobytes()))
    assert loaded.size == (378, 504)
    top, bottom = loaded.getpixel((189, 60)), loaded.getpixel((189, 440))
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]


def test_transparent_png_is_composited_on_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    loaded = load_image(_png_bytes(image))
    assert loaded.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0] * 256)
    loaded = load_image(_png_bytes(image, transparency=0))
    assert loaded.getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["CMYK", "L", "1", "LA", "I", "F", "YCbCr", "HSV"])
def test_odd_modes_become_rgb(mode):
    loaded = load_image(Image.new(mode, (16, 12)))
    _assert_answerable(loaded)


def test_sixteen_bit_grey_is_stretched_not_clipped():
    image = Image.new("I;16", (4, 1))
    for x, value in enumerate((0, 1000, 2000, 4000)):
        image.putpixel((x, 0), value)
    loaded = load_image(_png_bytes(image))
    greys = [loaded.getpixel((x, 0))[0] for x in range(4)]
    assert greys[0] == 0 and greys[-1] == 255 and greys == sorted(greys)


def test_first_frame_of_an_animation():
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((0, 255, 0), (0, 0, 255))]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    loaded = load_image(data.getvalue())
    _red, green, blue = loaded.getpixel((5, 5))
    assert green > 200 and blue < 50


@pytest.mark.parametrize("size", [(5000, 100), (100, 5000), (1, 1), (3000, 2)])
def test_extreme_aspect_ratios_are_padded(size):
    _assert_answerable(load_image(Image.new("RGB", size, (0, 0, 0))))


def test_large_jpeg_is_downscaled_early():
    image = Image.effect_noise((3000, 2000), 40).convert("RGB")
    loaded = load_image(_png_bytes(image, "JPEG", quality=80))
    assert max(loaded.size) <= 1280
    assert abs(loaded.size[0] / loaded.size[1] - 1.5) < 0.02


@pytest.mark.parametrize(
    ("size", "vilt_size"),
    [((4032, 3024), (384, 512)), ((3024, 4032), (384, 512)), ((4000, 2250), (360, 640))],
)
def test_phone_jpeg_decodes_at_the_smallest_scale_that_covers_vilt(size, vilt_size):
    # (ViLT's short/long side for that shape: 384 and at most 640.) At 1/8 scale a 4:3 photo
    # still gives ViLT 378 of its 384 rows; a 16:9 one would give 281 of 360, so it takes 1/4.
    image = Image.new("RGB", size, (90, 140, 200))
    loaded = load_image(_png_bytes(image, "JPEG", quality=80))
    short, long = sorted(loaded.size)
    assert short >= 0.95 * vilt_size[0] and long >= 0.95 * vilt_size[1]
    # The next DCT scale down would not cover it, so this is the cheapest decode that does.
    assert short / 2 < 0.95 * vilt_size[0] or long / 2 < 0.95 * vilt_size[1]
    assert abs(loaded.size[0] / loaded.size[1] - size[0] / size[1]) < 0.02


def test_normal_size_images_are_untouched():
    image = Image.effect_noise((640, 480), 40).convert("RGB")
    assert load_image(image).tobytes() == image.tobytes()


def test_heic_phone_photo_is_read():
    # iPhones save HEIC; Pillow alone cannot open it. Encoded without registering the
    # Pillow plugin, so only vqa_core's own registration can make this pass.
    import pillow_heif

    photo = Image.new("RGB", (64, 48), (200, 30, 30))
    photo.paste((30, 30, 200), (32, 0, 64, 48))
    buffer = io.BytesIO()
    pillow_heif.from_pillow(photo).save(buffer, quality=95)
    loaded = load_image(buffer.getvalue())
    assert loaded.mode == "RGB" and loaded.size == (64, 48)
    for x, colour in ((8, (200, 30, 30)), (56, (30, 30, 200))):
        assert all(abs(a - b) < 12 for a, b in zip(loaded.getpixel((x, 24)), colour))
    data = buffer.getvalue()
    for cut in (len(data) // 3, len(data) * 2 // 3):  # a phone photo half-sent
        with pytest.raises(ImageInputError):
            load_image(data[:cut])


def test_pixel_cap_rejects_decompression_bombs():
    header_only = _png_bytes(Image.new("L", (2000, 2000)))
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(header_only, max_pixels=1_000_000)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard stays on


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        ("https://example.org/cat.jpg", "URLs"),
        ("/no/such/file.png", "No image file"),
        (12345, "Unsupported image input"),
    ],
)
def test_unusable_sources_have_clear_messages(source, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(source)


def test_truncated_file_is_a_clear_error():
    data = _png_bytes(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageInputError, match="damaged or incomplete"):
        load_image(data[: len(data) // 2])


def test_text_file_named_png(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("hello")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(fake)


def test_awkward_images_answer_through_both_models(tiny_vilt, tiny_blip2):
    awkward = [
        Image.new("CMYK", (30, 20)),
        Image.new("RGBA", (5000, 100)),
        Image.new("I;16", (1, 1)),
        Image.new("P", (100, 5000)),
    ]
    for image in awkward:
        assert tiny_vilt.answer(image, "what shape is it?").answers
        assert tiny_blip2.answer(image, "what shape?", max_new_tokens=2).answer


def test_a_picture_handed_over_is_never_changed():
    """The intake shrinks and turns its own copies in place, never the caller's picture."""
    picture = Image.effect_noise((2000, 1500), 40).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    picture.info["exif"] = exif.tobytes()
    original = picture.tobytes()
    loaded = load_image(picture)
    assert loaded.size == (960, 1280)
    assert picture.size == (2000, 1500) and picture.tobytes() == original


def test_png_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(_png_bytes(Image.new("RGB", (40, 20), (255, 0, 0)), exif=exif.tobytes()))
    assert loaded.size == (20, 40)


def _estimate(data: bytes) -> int:
    return estimate_decode_bytes(Image.open(io.BytesIO(data)))


def test_the_estimate_counts_what_pillow_holds_not_only_pixels():
    size = (1000, 1000)
    grey, rgba = (_estimate(_png_bytes(Image.new(mode, size))) for mode in ("L", "RGBA"))
    assert rgba - grey == 3 * 1000 * 1000  # RGBA + its RGB canvas, against L + its RGB
    # libtiff inflates a whole strip at the file's bit depth: one strip of 16-bit RGBA holds
    # 8 bytes a pixel, of 8-bit RGBA 4.
    strip = {}
    for bits in (8, 16):
        image = Image.new("RGBA", size)
        tiff = _png_bytes(image, "TIFF", compression="tiff_deflate", strip_size=1 << 30)
        if bits == 16:  # Pillow writes no 16-bit RGBA: patch the four BitsPerSample values
            opened = Image.open(io.BytesIO(tiff))
            assert opened.tag_v2[278] == 1000  # one strip
            opened.tag_v2[258] = (16, 16, 16, 16)
            strip[bits] = estimate_decode_bytes(opened)
        else:
            strip[bits] = _estimate(tiff)
    assert strip[16] - strip[8] == 4 * 1000 * 1000


def test_a_jpeg_scanned_one_component_at_a_time_is_priced_whole():
    """libjpeg buffers every coefficient of a JPEG it cannot decode in one pass: progressive,
    or a baseline file whose first scan holds fewer components than the picture."""
    size = (2400, 1600)
    baseline = _png_bytes(Image.new("RGB", size, (9, 90, 200)), "JPEG", quality=90)
    progressive = _png_bytes(Image.new("RGB", size, (9, 90, 200)), "JPEG", progressive=True)
    # The first scan's header, rewritten to hold the first component only.
    start = baseline.index(b"\xff\xda")
    components = baseline[start + 4]
    assert components == 3
    header = b"\xff\xda\x00\x08\x01" + baseline[start + 5 : start + 7] + b"\x00\x3f\x00"
    one_component = baseline[:start] + header + baseline[start + 5 + 2 * components + 3 :]
    coefficients = 2400 * 1600 * 3 // 2 * 2  # 4:2:0: 1.5 samples a pixel, 2 bytes each
    assert _estimate(progressive) - _estimate(baseline) == coefficients
    assert _estimate(one_component) - _estimate(baseline) == coefficients


def test_the_budget_makes_decodes_wait_for_room():
    budget = DecodeBudget(limit=100, wait_s=5.0)
    order: list[str] = []
    with budget.reserve(60):
        waiter = threading.Thread(target=lambda: _reserve_and_log(budget, 60, order))
        waiter.start()
        time.sleep(0.2)
        assert order == []  # 60 + 60 > 100: it waits
        order.append("first done")
    waiter.join(5)
    assert order == ["first done", "second ran"]
    assert budget.in_use == 0 and budget.high_water == 60
    with budget.reserve(150):  # larger than the whole budget: runs, alone
        assert budget.in_use == 150
    impatient = DecodeBudget(limit=100, wait_s=0.05)
    with impatient.reserve(80), pytest.raises(DecodeBusyError), impatient.reserve(30):
        pass
    assert impatient.in_use == 0


def _reserve_and_log(budget: DecodeBudget, size: int, order: list[str]) -> None:
    with budget.reserve(size):
        order.append("second ran")
