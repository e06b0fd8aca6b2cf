"""vqa_core.ocr on rendered pictures: both scripts, reading order, the framing cue, and the
ways a reading ends without text (nothing there, out of time, no Tesseract).

The pictures are drawn with DejaVu Sans (Debian ``fonts-dejavu-core``; it has Arabic glyphs,
shaped by Pillow's raqm layout) and read by the real Tesseract (``tesseract-ocr``,
``tesseract-ocr-eng``, ``tesseract-ocr-ara``), which CI installs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from vqa_core.ocr import TextReading, read_text, tesseract_available

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
# A loaded machine must not turn a reading into a time-out: the tests judge what is read.
NO_TIME_LIMIT = 120.0


def edit_distance(first: str, second: str) -> int:
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i]
        for j, b in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def cer(reference: str, got: str) -> float:
    return edit_distance(reference, got) / len(reference)


def photo(
    lines: list[str],
    *,
    size: tuple[int, int] = (1000, 700),
    at: tuple[int, int] = (150, 200),
    font_size: int = 56,
    ink: tuple[int, int, int] = (25, 25, 30),
    wall: tuple[int, int, int] = (226, 214, 190),
    tilt: float = 0.0,
    blur: float = 0.0,
    dim: float = 1.0,
    font_path: str = FONT,
    texture: float = 0.0,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A label photo: lines drawn from ``at`` on a wall (plaster-textured by ``texture``),
    tilted, blurred, dimmed, noisy, JPEG'd. Returns the picture and each line's drawn box
    (before the tilt)."""
    image = Image.new("RGB", size, wall)
    if texture:
        blotches = np.random.default_rng(1).normal(0, 20, (size[1] // 8, size[0] // 8))
        plaster = Image.fromarray(np.clip(128 + blotches, 0, 255).astype(np.uint8)).resize(
            size, Image.Resampling.BICUBIC
        )
        pixels = np.asarray(image, np.float32)
        pixels += (np.asarray(plaster, np.float32)[..., None] - 128) * texture
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(font_path, font_size, layout_engine=ImageFont.Layout.RAQM)
    boxes = []
    x, y = at
    for line in lines:
        arabic = any("\u0600" <= char <= "\u06ff" for char in line)
        options = {"direction": "rtl", "language": "ar"} if arabic else {}
        box = draw.textbbox((x, y), line, font, **options)
        draw.text((x, y), line, ink, font, **options)
        boxes.append(box)
        y += int(font_size * 1.5)
    if tilt:
        image = image.rotate(tilt, Image.Resampling.BICUBIC, fillcolor=wall)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, dtype=np.float32) * dim
    pixels += np.random.default_rng(0).normal(0, 3, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), boxes


def test_tesseract_and_the_arabic_shaping_the_tests_draw_with_are_installed() -> None:
    assert tesseract_available(), "install tesseract-ocr, tesseract-ocr-eng, tesseract-ocr-ara"
    assert tesseract_available(("ara",))
    assert features.check("raqm"), "Pillow without raqm draws Arabic unshaped"


def test_english_label_tilted_blurred_and_dim_is_read_in_order() -> None:
    lines = ["MUSEUM OF ISLAMIC ART", "Bronze bowl, Iran", "Open daily"]
    image, _ = photo(lines, tilt=6.0, blur=1.0, dim=0.5)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert reading.script == "latin"
    assert [line.script for line in reading.lines] == ["latin"] * len(reading.lines)
    assert cer("\n".join(lines), reading.text) <= 0.08, reading.text
    # Top to bottom: each reference line is best matched by the output line in its place.
    assert len(reading.lines) == 3
    for reference, line in zip(lines, reading.lines):
        assert cer(reference, line.text) <= 0.2, (reference, line.text)
    assert all(0.0 <= line.confidence <= 1.0 for line in reading.lines)


def test_arabic_lines_come_top_to_bottom_with_words_in_logical_order() -> None:
    lines = ["متحف الفن الإسلامي", "ممنوع التصوير"]
    image, _ = photo(lines, at=(150, 200), tilt=-4.0, blur=0.8)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert reading.script == "arabic"
    assert len(reading.lines) == 2, reading.text
    assert cer(lines[0], reading.lines[0].text) <= 0.15, reading.lines[0].text
    assert cer(lines[1], reading.lines[1].text) <= 0.15, reading.lines[1].text
    # Logical order: the word read first (rightmost on the picture) comes first in the text.
    first = reading.lines[1].text
    assert first.find("ممنوع") < first.find("التصوير"), first
    assert reading.lines[0].box[1] < reading.lines[1].box[1]


def test_a_label_in_both_scripts_says_both() -> None:
    image, _ = photo(["Ground floor", "الطابق الأرضي"], at=(200, 200))
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert reading.script == "both"
    assert [line.script for line in reading.lines] == ["latin", "arabic"], reading.text


def test_line_boxes_are_in_the_pictures_own_pixels() -> None:
    image, boxes = photo(["Exit", "Stairs to the cafe"], size=(1200, 900), at=(300, 400))
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert len(reading.lines) == 2, reading.text
    for drawn, line in zip(boxes, reading.lines):
        left, top, right, bottom = line.box
        overlap_w = min(right, drawn[2]) - max(left, drawn[0])
        overlap_h = min(bottom, drawn[3]) - max(top, drawn[1])
        assert overlap_w > 0.8 * (drawn[2] - drawn[0]), (drawn, line.box)
        assert overlap_h > 0.6 * (drawn[3] - drawn[1]), (drawn, line.box)


def test_a_picture_without_text_says_no_text() -> None:
    wall = Image.effect_noise((900, 600), 12).convert("RGB")
    reading = read_text(wall, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "no_text"
    assert reading.lines == () and reading.text == "" and reading.script is None
    assert reading.cut_edges == ()


def test_running_out_of_time_says_timeout() -> None:
    image, _ = photo(["Please do not touch"])
    reading = read_text(image, timeout_s=0.001)
    assert reading.status == "timeout"
    assert reading.lines == ()
    # The budget is kept: it stopped before the whole reading would have ended.
    assert reading.seconds < read_text(image, timeout_s=NO_TIME_LIMIT).seconds


def test_without_tesseract_the_reading_says_engine_missing(monkeypatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not tesseract_available()
    image, _ = photo(["Exit"])
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert isinstance(reading, TextReading)
    assert reading.status == "engine_missing"
    assert reading.lines == ()


def test_tesseract_runs_on_one_thread_without_binding_this_process() -> None:
    before = os.environ.get("OMP_THREAD_LIMIT")
    image, _ = photo(["Exit"])
    read_text(image, timeout_s=NO_TIME_LIMIT)
    assert pytesseract.pytesseract.environ["OMP_THREAD_LIMIT"] == "1"
    assert dict(pytesseract.pytesseract.environ)["OMP_THREAD_LIMIT"] == "1"
    # This process (torch, and every child it starts) keeps its own setting.
    assert os.environ.get("OMP_THREAD_LIMIT") == before


@pytest.mark.parametrize("edge", ["right", "left"])
def test_text_running_off_an_edge_names_that_edge(edge: str) -> None:
    line = "Bronze bowl from Iran"
    # Drawn so that about a third of the line lies outside the frame, the edge through a
    # letter. (At x=560 the edge falls in the gap after "fro", 4 px past its last ink: a
    # line ending that far inside is not called cut, as a label ending there is not.)
    at = (550, 300) if edge == "right" else (-300, 300)
    image, _ = photo([line, "Room 12"] if edge == "right" else [line], at=at)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert edge in reading.cut_edges, (reading.cut_edges, reading.text)


@pytest.mark.parametrize("edge", ["top", "bottom"])
def test_a_line_cut_across_by_the_top_or_bottom_edge_names_that_edge(edge: str) -> None:
    lines = ["Bronze bowl from Iran", "Room 12, first floor", "Open daily"]
    # 56 px text, 84 px apart: the outer line drawn half off the frame.
    at = (150, -22) if edge == "top" else (150, 700 - 2 * 84 - 34)
    image, _ = photo(lines, at=at)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert edge in reading.cut_edges, (reading.cut_edges, reading.text)
    assert set(reading.cut_edges) <= {edge}, reading.cut_edges


@pytest.mark.parametrize("edge", ["top", "bottom"])
def test_lines_just_inside_the_top_or_bottom_are_not_called_cut(edge: str) -> None:
    lines = ["Bronze bowl from Iran", "Room 12, first floor"]
    # About 15 px between the ink and the edge.
    at = (150, 15) if edge == "top" else (150, 700 - 84 - 70)
    image, _ = photo(lines, at=at)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert reading.cut_edges == (), (reading.cut_edges, reading.text)


def test_photos_and_shape_pictures_without_text_say_no_text() -> None:
    photos = Path(__file__).resolve().parent.parent / "examples" / "photos"
    pictures = sorted(photos.glob("*.jpg"))[:2]
    assert pictures, photos
    shape = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(shape).ellipse((12, 14, 50, 52), fill=(30, 90, 200))
    for image in [Image.open(path) for path in pictures] + [shape]:
        reading = read_text(image, timeout_s=NO_TIME_LIMIT)
        assert reading.status == "no_text", (reading.text, reading.lines)


def test_text_ending_just_inside_the_frame_is_not_called_cut() -> None:
    font = ImageFont.truetype(FONT, 56)
    width = round(font.getlength("Bronze bowl from Iran"))
    # 20 px between the last letter and the right edge, 20 px from the left for the other.
    right, _ = photo(["Bronze bowl from Iran"], at=(1000 - 20 - width, 300))
    left, _ = photo(["Bronze bowl from Iran"], at=(20, 300))
    for image in (right, left):
        reading = read_text(image, timeout_s=NO_TIME_LIMIT)
        assert reading.status == "read"
        assert reading.cut_edges == (), reading.cut_edges


def test_a_huge_picture_is_read_within_bounds() -> None:
    # 6400 x 4800 = 31 MP: reduced before anything else, the reading image stays bounded.
    image, _ = photo(
        ["NO PHOTOGRAPHY"], size=(6400, 4800), at=(1400, 2000), font_size=360, wall=(240, 240, 235)
    )
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert cer("NO PHOTOGRAPHY", reading.text) <= 0.1, reading.text
    left, top, right, bottom = reading.lines[0].box
    assert 0 <= left < right <= 6400 and 0 <= top < bottom <= 4800
    assert left > 1000 and top > 1800


@pytest.mark.parametrize("word", ["مصر", "سيف"])
def test_a_short_arabic_word_alone_on_a_plain_wall_is_read(word: str) -> None:
    # A few hundred pixels of ink: stretching the wall's grey levels over the whole range
    # made its noise look like text everywhere, and nothing was read.
    image, _ = photo([word], at=(450, 300), font_size=48)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read", reading
    assert cer(word, reading.text) <= 0.34, reading.text
    assert reading.script == "arabic"


@pytest.mark.parametrize("lines", [["مكتبة", "الطابق الأول"], ["يرجى"]])
def test_a_short_label_in_bold_arabic_type_is_read(lines: list[str]) -> None:
    # Tesseract's page layout drops short rows of bold Arabic letters (as noise, or it
    # finds no line there); each row read on its own, or as a lone line, is read. Tesseract
    # misreads some bold letters, so a letter wrong in four is allowed.
    image, _ = photo(lines, at=(400, 250), font_size=44, font_path=BOLD_FONT, tilt=3.0)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert len(reading.lines) == len(lines), reading.text
    for reference, line in zip(lines, reading.lines):
        assert cer(reference, line.text) <= 0.25, (reference, line.text)
        assert line.script == "arabic"


def test_a_one_word_line_under_a_long_line_is_read() -> None:
    # The short line holds a tenth of the long one's ink; it is a row of text all the same.
    lines = ["CORDOBA FATIMID CORDOBA PLEASE 1059", "مجاني"]
    image, _ = photo(lines, at=(60, 250), font_size=40)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert [line.script for line in reading.lines] == ["latin", "arabic"], reading.text
    assert cer(lines[1], reading.lines[1].text) <= 0.25, reading.text


@pytest.mark.parametrize(("edge", "off", "tilt"), [("top", 10, 3.0), ("bottom", 26, 0.0)])
def test_arabic_lines_cut_across_by_the_top_or_bottom_edge_name_that_edge(
    edge: str, off: int, tilt: float
) -> None:
    # Arabic letters join along the baseline: a cut through them leaves long runs of ink on
    # the border, which alone do not look like letters cut across; the cut line's box, turned
    # back into the picture, runs past the edge.
    lines = ["الفاطمي مخطوطة مكتبة فخار", "القاهرة اللمس الأول", "مسجد دمشق"]
    at = (200, -off) if edge == "top" else (200, 700 - 2 * 84 - 70 + off)
    image, _ = photo(lines, at=at, tilt=tilt)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert edge in reading.cut_edges, (reading.cut_edges, reading.text)
    assert set(reading.cut_edges) <= {edge}, reading.cut_edges


def test_small_text_on_a_textured_wall_is_read_and_the_bare_wall_stays_silent() -> None:
    # Stretched, the plaster's blotches vary as much as small text does; the text varies
    # clearly more than the typical patch.
    lines = ["الثالث سيف عشر", "القرن القاهرة دمشق"]
    wall = (200, 170, 190)
    image, _ = photo(lines, size=(1024, 768), at=(700, 40), font_size=26, wall=wall, texture=0.8)
    reading = read_text(image, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "read"
    assert cer(lines[1], reading.lines[-1].text) <= 0.2, reading.text
    bare, _ = photo([], size=(1024, 768), wall=wall, texture=0.8)
    reading = read_text(bare, timeout_s=NO_TIME_LIMIT)
    assert reading.status == "no_text", reading.text
    assert reading.cut_edges == ()
