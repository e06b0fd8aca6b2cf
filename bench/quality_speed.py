"""What the photo-quality cues cost on a 12-megapixel phone JPEG, after the draft decode.

    python bench/quality_speed.py [--repeats 50]

The intake decodes a 4000x3000 JPEG at 1/8 scale (500x375); the cues are measured on that
picture's thumbnail (at most 256 px a side). Target: well under 10 ms. Side by side, in one
run: the cues on the draft-decoded picture (what ``vqa_core.inspect_image`` adds to
``load_image``), the draft decode itself, ``inspect_image`` whole against ``load_image``, and
the same measures on the fully decoded 12 MP picture, which is what skipping the draft and
the thumbnail would cost.
"""

from __future__ import annotations

import argparse
import io

from _common import jpeg_bytes, machine_line, median_ms, photo_like, side_by_side
from PIL import Image

from vqa_core.images import inspect_image, load_image
from vqa_core.quality import measure_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    data = jpeg_bytes(photo_like(4000, 3000, seed=1))
    drafted = load_image(data)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    print(machine_line())
    print(
        f"12 MP JPEG {len(data) / 1e6:.1f} MB; draft-decoded to {drafted.size[0]}x{drafted.size[1]}"
    )
    print(f"cues on it: {measure_quality(drafted, original_size=(4000, 3000))}")
    times = side_by_side(
        {
            "cues on the draft-decoded picture": lambda: measure_quality(drafted),
            "load_image (draft decode)": lambda: load_image(data),
            "inspect_image (decode + cues)": lambda: inspect_image(data),
            "cues on the full 12 MP picture": lambda: measure_quality(full),
        },
        repeats=args.repeats,
    )
    for name, samples in times.items():
        print(f"  {name:36s} {median_ms(samples):8.2f} ms (median of {len(samples)})")
    cues = median_ms(times["cues on the draft-decoded picture"])
    added = median_ms(times["inspect_image (decode + cues)"]) - median_ms(
        times["load_image (draft decode)"]
    )
    print(
        f"cues / draft decode: {cues / median_ms(times['load_image (draft decode)']):.2f}; "
        f"inspect_image adds {added:.2f} ms to load_image; "
        f"full-size cues cost {median_ms(times['cues on the full 12 MP picture']) / cues:.0f}x the cues "
        "on the draft"
    )


if __name__ == "__main__":
    main()
