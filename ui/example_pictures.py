"""The examples under the page: the built-in ones for the models served, or a museum's own."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vqa_core import Services

__all__ = [
    "DEMO_EXAMPLES",
    "EXAMPLES_DIR",
    "EXAMPLES_FILE",
    "PHOTO_EXAMPLES",
    "choose_examples",
    "load_examples",
]

logger = logging.getLogger("vqa_app")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEMO_EXAMPLES = [
    ("easy_vqa/0.png", "what is the red shape?"),
    ("easy_vqa/3.png", "what is the color of the circle?"),
    ("easy_vqa/1.png", "does the image contain a triangle?"),
    ("easy_vqa/5.png", "is there not a triangle in the image?"),
]
PHOTO_EXAMPLES = [
    ("photos/cat.jpg", "What animal is this?"),
    ("photos/coffee.jpg", "What is in the cup?"),
    ("photos/rocket.jpg", "What is this?"),
    ("photos/astronaut.jpg", "What is the person wearing?"),
]
# A museum's own examples: a folder with this file, one {"image": ..., "question": ...} a line.
EXAMPLES_FILE = "examples.jsonl"


def load_examples(folder: str | Path) -> list[list[str]]:
    """A museum's own examples: ``folder/examples.jsonl``, one ``{"image", "question"}`` a line.

    ``image`` is a file inside ``folder``; the question may be in any language. A line that
    is not JSON, names no readable picture inside the folder or has no question is skipped
    with a log line, so one bad entry never keeps the kiosk from starting.
    """
    from vqa_core import load_image

    root = Path(folder).resolve()
    listing = root / EXAMPLES_FILE
    if not listing.is_file():
        logger.warning(
            "--examples %s: no %s there; showing the built-in examples", root, EXAMPLES_FILE
        )
        return []
    examples: list[list[str]] = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{listing}:{number}"
        try:
            entry = json.loads(line)
            image = (root / str(entry["image"])).resolve()
            question = str(entry["question"]).strip()
        except (ValueError, KeyError, TypeError) as err:
            logger.warning('Skipping example %s: not a {"image", "question"} line (%s)', where, err)
            continue
        if not image.is_relative_to(root) or not image.is_file():
            logger.warning(
                "Skipping example %s: no picture %s inside %s", where, entry["image"], root
            )
            continue
        if not question:
            logger.warning("Skipping example %s: the question is empty", where)
            continue
        try:
            load_image(image)
        except Exception as err:  # any unreadable file: skipped, never a crash at start
            logger.warning("Skipping example %s: %s", where, err)
            continue
        examples.append([str(image), question])
    logger.info("Examples: %d from %s", len(examples), listing)
    return examples


def choose_examples(services: Services, examples_dir: str | Path | None = None) -> list[list[str]]:
    if examples_dir is not None:
        museum = load_examples(examples_dir)
        if museum:
            return museum
    chosen = DEMO_EXAMPLES if services.uses_demo or not _any_real(services) else PHOTO_EXAMPLES
    return [
        [str(EXAMPLES_DIR / path), question]
        for path, question in chosen
        if (EXAMPLES_DIR / path).is_file()
    ]


def _any_real(services: Services) -> bool:
    return any(
        c is not None and not c.is_demo for c in (services.vilt_choice, services.blip2_choice)
    )
