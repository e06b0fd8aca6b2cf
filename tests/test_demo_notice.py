"""The notice above the answers when the demo models serve, and only then.

Shape-trained demo models answer a cat photo "no" at 98% from both columns; without a word
above the answers that reads as a broken product. The notice is page text (words, with a bold
label, not a colour), in the page's language, and sits before the answers in reading order,
so a screen reader reaches it first.
"""

from __future__ import annotations

import re

import httpx
import pytest

import ui
from vqa_core import ModelChoice, Services

NOTICE_ID = "vqa-demo-notice"


def services(tiny_vilt, tiny_blip2, *, is_demo: bool) -> Services:
    return Services(
        vilt=tiny_vilt,
        blip2=tiny_blip2,
        vilt_choice=ModelChoice("vilt", tiny_vilt.name, "named by argument", is_demo=is_demo),
        blip2_choice=ModelChoice("blip2", tiny_blip2.name, "named by argument", is_demo=is_demo),
    )


def layout_ids(demo) -> list[tuple[str, list]]:
    """(elem_id, elem_ids of its subtree in page order) for every component with an elem_id."""
    by_id = {c["id"]: c["props"].get("elem_id") for c in demo.config["components"]}

    def walk(node) -> list[str]:
        own = [by_id.get(node["id"])] if by_id.get(node["id"]) else []
        return own + [eid for child in node.get("children", []) for eid in walk(child)]

    found = []

    def collect(node) -> None:
        if by_id.get(node["id"]):
            found.append((by_id[node["id"]], walk(node)[1:]))
        for child in node.get("children", []):
            collect(child)

    collect(demo.config["layout"])
    return found


def test_demo_models_get_a_notice_above_the_answers(tiny_vilt, tiny_blip2):
    demo = ui.build_demo(services(tiny_vilt, tiny_blip2, is_demo=True))
    subtree = dict(layout_ids(demo))
    answers = subtree["vqa-answers"]
    # First thing in the answers column: above both models' answers and the agreement line.
    assert answers[0] == NOTICE_ID
    assert answers.index(NOTICE_ID) < answers.index("vqa-vilt") < answers.index("vqa-agreement")
    assert answers.index(NOTICE_ID) < answers.index("vqa-blip2")
    (notice,) = [c for c in demo.config["components"] if c["props"].get("elem_id") == NOTICE_ID]
    assert notice["type"] == "markdown" and "demo_notice" in str(notice["props"]["value"])
    # Not only in the About panel, which is collapsed and outside the answers column.
    assert NOTICE_ID not in subtree["vqa-about"]


@pytest.mark.parametrize("which", ["vilt", "blip2"])
def test_one_demo_model_is_enough_for_the_notice(tiny_vilt, tiny_blip2, which):
    mixed = services(tiny_vilt, tiny_blip2, is_demo=False)
    choice = getattr(mixed, f"{which}_choice")
    setattr(mixed, f"{which}_choice", ModelChoice(which, choice.source, "demo", is_demo=True))
    assert NOTICE_ID in dict(layout_ids(ui.build_demo(mixed)))


def test_real_models_get_no_notice(tiny_vilt, tiny_blip2):
    demo = ui.build_demo(services(tiny_vilt, tiny_blip2, is_demo=False))
    assert NOTICE_ID not in dict(layout_ids(demo))
    assert NOTICE_ID not in str(demo.config["components"])


def test_the_served_page_words_the_notice_in_english_and_arabic(tiny_vilt, tiny_blip2):
    demo = ui.build_demo(services(tiny_vilt, tiny_blip2, is_demo=True))
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **ui.launch_kwargs())
    try:
        config = httpx.get(demo.local_url + "config", timeout=30).json()
    finally:
        demo.close()
    english = config["i18n_translations"]["en"]["demo_notice"]
    arabic = config["i18n_translations"]["ar"]["demo_notice"]
    # A bold label in words starts it: the notice does not rely on colour to be noticed.
    assert english.startswith("**Demo models:**")
    assert re.match(r"\*\*[\u0600-\u06FF ]+:\*\*", arabic)
    assert "shapes" in english and "photo" in english and "meaningless" in english
    assert "أشكال" in arabic and "بلا معنى" in arabic
