"""Photo-like text pictures for the OCR benchmark, rendered from Debian fonts with a seed.

Each picture is a scene on a canvas larger than the frame (a wall, often a label plate on it,
one to four lines of English, Arabic or both), lit unevenly, then tilted up to 10 degrees,
seen at a slight perspective, cropped to the frame, blurred, darkened, given sensor noise and
saved as a JPEG. The text's own ink is rendered on a mask that goes through the same
geometry, so whether a line runs off an edge is read from the pixels, not guessed: an "uncut"
picture keeps every inked pixel at least :data:`CLEAR_MARGIN` pixels inside the frame (some of
them deliberately close to an edge), a "cut" one has ink on the chosen border.

    from bench.ocr_set import render_set
    for sample in render_set(seed=1, count=40, cut_share=0.25): ...

Fonts come from ``fonts-dejavu-core``, ``fonts-liberation``, ``fonts-noto-core``,
``fonts-hosny-amiri`` and ``fonts-kacst``/``fonts-kacst-one``; the ones not installed are
left out (the set then differs, and :func:`fonts_used` says so).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["CLEAR_MARGIN", "TextSample", "render_sample", "render_set", "fonts_used"]

# An uncut picture keeps all ink at least this far inside the frame; nearer is ambiguous.
CLEAR_MARGIN = 6

_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf",
)
_ARABIC_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Bold.ttf",
    "/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf",
    "/usr/share/fonts/truetype/kacst-one/KacstOne.ttf",
    "/usr/share/fonts/truetype/kacst/KacstBook.ttf",
)

# Words a museum visitor photographs: labels, room signs, notices.
_ENGLISH_WORDS = (
    "Gallery Room Exit Entrance Museum Ancient Bronze Bowl Glass Vase Silver Gold Coin "
    "Manuscript Painting Oil on canvas Wood Stone Carved Ivory Textile Silk Carpet Lamp Mosque "
    "Century Dynasty Empire Kingdom Period Collection Donated by the of and from with for "
    "Please do not touch No photography Quiet please Lift Stairs Toilets Cafe Shop Tickets "
    "Open daily Closed Monday Guided tours Children Family Ground floor First Second Third "
    "Cairo Baghdad Damascus Cordoba Persia Egypt Syria Iraq Andalusia Ottoman Abbasid Fatimid "
    "Mamluk Umayyad Pottery Tile Mosaic Astrolabe Compass Map Scroll Seal Helmet Sword Shield"
).split()
_ARABIC_WORDS = (
    "متحف الفن الإسلامي قاعة المعرض مخرج مدخل ممنوع التصوير الدخول مجاني الطابق الأول "
    "الثاني الثالث تاريخ القرن التاسع عشر مخطوطة نحاس فخار زجاج خشب ذهب فضة لوحة زيتية على "
    "قماش من في إلى مصر بغداد دمشق القاهرة الأندلس مكتبة الساعة مفتوح مغلق يوميا الأطفال "
    "الزوار يرجى عدم اللمس الهدوء شكرا الصيانة المصعد الدرج الطوارئ سجادة حرير مصباح مسجد "
    "العصر العباسي الفاطمي المملوكي الأموي العثماني خزف بلاط فسيفساء إسطرلاب خريطة خوذة سيف"
).split()

_FRAME_SIZES = ((1280, 960), (1280, 960), (1024, 768), (960, 1280), (1600, 1200))


@dataclass(frozen=True)
class TextSample:
    """One rendered picture and what is true about it."""

    image: Image.Image
    lines: tuple[str, ...]  # top to bottom, each in logical (typing) order
    scripts: tuple[str, ...]  # "latin" or "arabic", one per line
    kind: str  # "latin", "arabic" or "mixed"
    cut_edges: tuple[str, ...]  # the borders the ink reaches; () for an uncut picture
    seed: int
    index: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def fonts_used() -> dict[str, list[str]]:
    """The fonts this machine has, per script (the set depends on them)."""
    return {
        "latin": [Path(p).name for p in _LATIN_FONTS if Path(p).exists()],
        "arabic": [Path(p).name for p in _ARABIC_FONTS if Path(p).exists()],
    }


def _line(rng: random.Random, script: str) -> str:
    words = _ENGLISH_WORDS if script == "latin" else _ARABIC_WORDS
    count = rng.randint(1, 4)
    chosen = [rng.choice(words) for _ in range(count)]
    if script == "latin" and rng.random() < 0.25:
        chosen.append(str(rng.randint(1, 1900)))
    if script == "latin" and rng.random() < 0.3:
        chosen = [word.upper() for word in chosen]
    return " ".join(chosen)


def _wall(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A painted wall: a colour and a little plaster texture."""
    width, height = size
    base = np.array([rng.randint(40, 230) for _ in range(3)], dtype=np.float32)
    texture = np.asarray(
        Image.effect_noise((max(1, width // 8), max(1, height // 8)), 20).resize(
            size, Image.Resampling.BICUBIC
        ),
        dtype=np.float32,
    )
    pixels = base[None, None, :] + (texture[..., None] - 128) * 0.25
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _contrasting(rng: random.Random, background: tuple[int, ...]) -> tuple[int, int, int]:
    """An ink colour that reads on ``background``: dark on light, light on dark."""
    luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    if luma > 110:
        return tuple(rng.randint(0, 70) for _ in range(3))
    return tuple(rng.randint(190, 255) for _ in range(3))


def _perspective_coefficients(
    source: list[tuple[float, float]], target: list[tuple[float, float]]
) -> list[float]:
    """Pillow's eight PERSPECTIVE coefficients mapping ``target`` corners to ``source``."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.extend([u, v])
    return list(np.linalg.solve(np.array(rows, float), np.array(values, float)))


def _ink_extent(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render_sample(seed: int, index: int, *, cut: bool, kind: str | None = None) -> TextSample:
    """One picture, fully decided by (seed, index, cut, kind)."""
    rng = random.Random(f"{seed}:{index}:{cut}:{kind}")
    kind = kind or rng.choice(("latin", "arabic", "mixed"))
    frame_w, frame_h = rng.choice(_FRAME_SIZES)
    line_count = rng.randint(1, 4)
    if kind == "mixed":
        line_count = max(2, line_count)
        scripts = ["latin", "arabic"] + [rng.choice(("latin", "arabic")) for _ in range(2)]
        scripts = scripts[:line_count]
        rng.shuffle(scripts)
    else:
        scripts = [kind] * line_count
    lines = [_line(rng, script) for script in scripts]
    latin_fonts = [p for p in _LATIN_FONTS if Path(p).exists()]
    arabic_fonts = [p for p in _ARABIC_FONTS if Path(p).exists()]
    fonts = {"latin": rng.choice(latin_fonts), "arabic": rng.choice(arabic_fonts)}
    # Text from small print to a room sign, relative to the frame (a label photographed from
    # arm's length fills a good part of it).
    size = int(frame_w * rng.uniform(0.028, 0.075))

    measured = []
    for text, script in zip(lines, scripts):
        font = _font(fonts[script], size)
        options = {"direction": "rtl", "language": "ar"} if script == "arabic" else {}
        box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font, **options)
        measured.append((text, font, options, box))
    # Shrink until the block fits in 90% of the frame width, as a real label would.
    widest = max(box[2] - box[0] for *_, box in measured)
    if widest > 0.9 * frame_w:
        size = int(size * 0.9 * frame_w / widest)
        measured = []
        for text, script in zip(lines, scripts):
            font = _font(fonts[script], size)
            options = {"direction": "rtl", "language": "ar"} if script == "arabic" else {}
            box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font, **options)
            measured.append((text, font, options, box))
    leading = int(size * rng.uniform(1.35, 1.8))
    block_w = max(box[2] - box[0] for *_, box in measured)
    block_h = leading * (len(measured) - 1) + (measured[-1][3][3] - measured[-1][3][1])

    # The label (plate and text) is drawn on its own layer with room to turn, tilted and seen
    # at a slant, then laid on the wall at the place the picture's framing asks for.
    room = int(0.3 * max(block_w, block_h)) + 4 * size
    layer_w, layer_h = block_w + 2 * room, block_h + 2 * room
    layer = Image.new("RGBA", (layer_w, layer_h), (0, 0, 0, 0))
    mask = Image.new("L", (layer_w, layer_h), 0)
    left, top = room, room
    wall = _wall(rng, (frame_w, frame_h))
    background = tuple(int(v) for v in wall.getpixel((frame_w // 2, frame_h // 2)))
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.7:
        # A label plate a little larger than the text, in a colour or in white.
        pad = int(size * rng.uniform(0.6, 2.0))
        plate = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            plate = (rng.randint(215, 250),) * 3
        draw.rectangle(
            (left - pad, top - pad, left + block_w + pad, top + block_h + pad), (*plate, 255)
        )
        background = plate
    ink = _contrasting(rng, background)
    mask_draw = ImageDraw.Draw(mask)
    align = rng.choice(("start", "centre"))
    for row, (text, font, options, box) in enumerate(measured):
        width = box[2] - box[0]
        arabic = bool(options)
        if align == "centre":
            x = left + (block_w - width) // 2
        else:
            x = left + block_w - width if arabic else left
        y = top + row * leading
        draw.text((x - box[0], y - box[1]), text, (*ink, 255), font, **options)
        mask_draw.text((x - box[0], y - box[1]), text, 255, font, **options)

    angle = rng.uniform(-10, 10)
    layer = layer.rotate(angle, Image.Resampling.BICUBIC)
    mask = mask.rotate(angle, Image.Resampling.BILINEAR)
    if rng.random() < 0.6:
        jitter = 0.05 * max(block_w, block_h)
        corners = [(0, 0), (layer_w, 0), (layer_w, layer_h), (0, layer_h)]
        moved = [
            (x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter)) for x, y in corners
        ]
        coefficients = _perspective_coefficients(moved, corners)
        layer = layer.transform(
            layer.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC
        )
        mask = mask.transform(
            mask.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
        )

    ink_mask = np.asarray(mask) > 96
    extent = _ink_extent(ink_mask)
    assert extent is not None
    x0, y0, x1, y1 = extent
    ink_w, ink_h = x1 - x0, y1 - y0
    # (crop_x, crop_y): where the frame's top-left corner falls on the layer.
    if cut:
        edge = rng.choice(("left", "right", "top", "bottom"))
        if edge in ("left", "right"):
            # Cut off 8-35% of the block's width: a word or more runs off the frame.
            inside = int(ink_w * rng.uniform(0.65, 0.92))
            crop_x = x0 + ink_w - inside if edge == "left" else x0 + inside - frame_w
            crop_y = y0 - rng.randint(0, max(0, frame_h - ink_h))
        else:
            # Cut through the outermost line, 25-65% of its height off the frame.
            reach = int(size * rng.uniform(0.25, 0.65))
            crop_y = y0 + reach if edge == "top" else y1 - reach - frame_h
            crop_x = x0 - rng.randint(0, max(0, frame_w - ink_w))
    else:
        # Anywhere with the margin kept; a third of the pictures put the text just inside
        # an edge.
        crop_x = x0 - CLEAR_MARGIN - rng.randint(0, max(0, frame_w - ink_w - 2 * CLEAR_MARGIN))
        crop_y = y0 - CLEAR_MARGIN - rng.randint(0, max(0, frame_h - ink_h - 2 * CLEAR_MARGIN))
        if rng.random() < 1 / 3:
            near = rng.choice(("left", "right", "top", "bottom"))
            gap = CLEAR_MARGIN + rng.randint(0, 30)
            if near == "left":
                crop_x = x0 - gap
            elif near == "right":
                crop_x = x1 + gap - frame_w
            elif near == "top":
                crop_y = y0 - gap
            else:
                crop_y = y1 + gap - frame_h
    frame = wall.convert("RGBA")
    frame.alpha_composite(_shifted(layer, -crop_x, -crop_y, frame.size))
    frame = _lit(rng, frame.convert("RGB"))
    framed = _shifted(mask, -crop_x, -crop_y, frame.size)
    framed_ink = np.asarray(framed) > 96
    touched = {
        "left": framed_ink[:, :2].any(),
        "right": framed_ink[:, -2:].any(),
        "top": framed_ink[:2, :].any(),
        "bottom": framed_ink[-2:, :].any(),
    }
    near_edge = (
        framed_ink[:, :CLEAR_MARGIN].any()
        or framed_ink[:, -CLEAR_MARGIN:].any()
        or framed_ink[:CLEAR_MARGIN, :].any()
        or framed_ink[-CLEAR_MARGIN:, :].any()
    )
    cut_edges = tuple(edge for edge, hit in touched.items() if hit)
    if near_edge and not cut_edges:
        # Ink within the margin but not on the border: neither clearly cut nor clear.
        cut_edges = ("near",)

    frame = _photograph(rng, frame, size)
    return TextSample(
        image=frame,
        lines=tuple(lines),
        scripts=tuple(scripts),
        kind=kind,
        cut_edges=cut_edges,
        seed=seed,
        index=index,
    )


def _shifted(image: Image.Image, dx: int, dy: int, size: tuple[int, int]) -> Image.Image:
    """``image`` placed with its corner at (dx, dy) on a transparent canvas of ``size``."""
    canvas = Image.new(image.mode, size, 0)
    canvas.paste(image, (int(dx), int(dy)))
    return canvas


def _lit(rng: random.Random, frame: Image.Image) -> Image.Image:
    """Uneven light across the whole scene: one side brighter than the other."""
    width, height = frame.size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(0.0, 0.45)
    light = 1.0 - ramp + ramp.mean()
    pixels = np.asarray(frame, dtype=np.float32) * light[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _photograph(rng: random.Random, frame: Image.Image, size: int) -> Image.Image:
    """What a phone does to the scene: blur, dim light, sensor noise, JPEG."""
    radius = rng.uniform(0.0, min(1.6, size / 30))
    if radius > 0.3:
        frame = frame.filter(ImageFilter.GaussianBlur(radius))
    pixels = np.asarray(frame, dtype=np.float32)
    if rng.random() < 0.4:
        # Low light: a dim exposure, with the noise a dim exposure brings.
        pixels = pixels * rng.uniform(0.25, 0.6)
        noise = rng.uniform(3, 8)
    else:
        noise = rng.uniform(0, 4)
    np_rng = np.random.default_rng(rng.randrange(2**32))
    pixels = pixels + np_rng.normal(0, noise, pixels.shape)
    frame = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=rng.randint(35, 90))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_set(seed: int, count: int, *, cut_share: float = 0.0) -> Iterator[TextSample]:
    """``count`` pictures: kinds in turn (latin, arabic, mixed), the first share of each
    three rounds uncut and ``cut_share`` of them with text running off an edge."""
    kinds = ("latin", "arabic", "mixed")
    cut_every = round(1 / cut_share) if cut_share > 0 else 0
    for index in range(count):
        cut = bool(cut_every) and index % cut_every == cut_every - 1
        yield render_sample(seed, index, cut=cut, kind=kinds[index % 3])
