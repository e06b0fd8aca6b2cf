"""Describe and follow-up questions, served for real and called through gradio_client.

A recording double around the tiny BLIP-2's processor shows the prompt BLIP-2 was handed:
the earlier turns are in a follow-up's prompt, bounded by the model's length; the page's
conversation lives in each session alone and goes with Start over and a new picture.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import ui
from tests.test_followup_prompt import RecordingProcessor
from ui import about as ui_about
from ui import example_pictures as ui_examples
from ui.conversation import render_conversation
from ui.messages import message
from vqa_core import Services, clean_history

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tiny_vilt, tiny_blip2):
    recorder = RecordingProcessor(tiny_blip2.processor)
    blip2 = dataclasses.replace(tiny_blip2, processor=recorder)
    demo = ui.build_demo(Services(vilt=tiny_vilt, blip2=blip2))
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **ui.launch_kwargs())
    clients: list[Client] = []

    def new_client() -> Client:
        client = Client(demo.local_url, verbose=False, download_files=False)
        clients.append(client)
        return client

    yield blip2, recorder, new_client
    for client in clients:
        client.close()
    demo.close()


@pytest.fixture(scope="module")
def picture(easy_vqa_sample) -> str:
    return easy_vqa_sample[0][0]


def squeeze(text: str) -> str:
    """An answer as a history carries it (the random tiny model's hold odd characters)."""
    turns = clean_history([("q?", text)])
    return turns[0].answer if turns else ""


def last_prompt(recorder: RecordingProcessor) -> str | None:
    texts = recorder.prompts[-1]
    return None if texts is None else texts[0]


def test_describe_returns_blip2s_caption_and_the_photo_check(served, picture):
    blip2, recorder, new_client = served
    caption, status, quality = new_client().predict(
        handle_file(picture), 12, 1, api_name="/describe"
    )
    assert last_prompt(recorder) is None  # no question: BLIP-2's captioning start
    assert caption == blip2.describe(picture, max_new_tokens=12).answer
    assert "batch of 1" in status
    assert quality["flags"] == [] and quality["sentence"] == ""
    assert (quality["width"], quality["height"]) == (64, 64)


def test_describe_says_when_a_photo_is_too_dark(served, tmp_path):
    _, _, new_client = served
    rng = np.random.default_rng(0)
    dark = Image.fromarray(rng.integers(0, 12, size=(240, 320, 3), dtype=np.uint8))
    path = tmp_path / "dark.jpg"
    dark.save(path, quality=90)
    _, _, quality = new_client().predict(handle_file(str(path)), 5, 1, api_name="/describe")
    assert quality["flags"][0] == "dark"
    assert quality["sentence"] == message("quality_dark")


def test_describe_without_a_picture_says_so(served):
    _, _, new_client = served
    caption, status, quality = new_client().predict(None, 5, 1, api_name="/describe")
    assert caption == "" and "add an image" in status and quality == {}


def test_ask_hands_the_earlier_turns_to_blip2_and_not_to_vilt(served, picture, tiny_vilt):
    _, recorder, new_client = served
    client = new_client()
    first = client.predict(
        handle_file(picture), "What shape is in the image?", 3, 5, 1, [], api_name="/ask"
    )
    _, _, answer, blip2_status, _, history, _ = first
    assert last_prompt(recorder) == "Question: What shape is in the image? Answer:"
    assert "batch of 1" in blip2_status
    assert history == [["What shape is in the image?", squeeze(answer)]]
    second = client.predict(
        handle_file(picture), "What color is it?", 3, 5, 1, history, api_name="/ask"
    )
    assert last_prompt(recorder) == (
        f"Question: What shape is in the image? Answer: {squeeze(answer)} "
        "Question: What color is it? Answer:"
    )
    assert second[5] == [*history, ["What color is it?", squeeze(second[2])]]
    # ViLT answers the follow-up alone: exactly as if it had been asked first.
    alone = tiny_vilt.answer(picture, "What color is it?", top_k=3).answers
    assert [c["label"] for c in second[0]["confidences"]] == [a for a, _ in alone]


def test_a_long_history_is_cut_to_what_blip2_can_read(served, picture):
    blip2, recorder, new_client = served
    history = [[f"Is there shape number {i} in the picture?", "yes " * 15] for i in range(12)]
    result = new_client().predict(
        handle_file(picture), "What color is the shape?", 3, 5, 1, history, api_name="/ask"
    )
    assert "batch of 1" in result[3]
    prompt = last_prompt(recorder)
    assert prompt.endswith("Question: What color is the shape? Answer:")
    assert blip2.count_tokens(prompt) <= blip2.prompt_token_budget(5)
    assert "number 0 " not in prompt and "number 11 " in prompt


def test_a_malformed_history_gets_a_sentence_not_an_answer(served, picture):
    _, _, new_client = served
    result = new_client().predict(
        handle_file(picture), "What color?", 3, 5, 1, {"not": "a list"}, api_name="/ask"
    )
    assert result[0] is None or not result[0].get("confidences")
    assert "history must be a list of" in result[1] and "history must be a list of" in result[3]


def test_answer_keeps_its_signature(served, picture):
    _, recorder, new_client = served
    outputs = new_client().predict(handle_file(picture), "What shape?", 3, 5, 1, api_name="/answer")
    assert len(outputs) == 5
    assert last_prompt(recorder) == "Question: What shape? Answer:"


# ---- the page's conversation: per session, cleared with the picture ---------------------


def ask_on_page(client: Client, picture: str, question: str) -> tuple[str, str]:
    """What the page's Ask does, step by step: ViLT, BLIP-2 (with this session's
    conversation), the agreement line, then the turn joins the conversation."""
    image = handle_file(picture)
    label, vilt_status = client.predict(image, question, 3, api_name="/vilt")
    answer, blip2_status = client.predict(image, question, 5, 1, api_name="/blip2")
    view = client.predict(question, label, answer, vilt_status, blip2_status, api_name="/remember")
    return answer, view


def test_the_page_remembers_turns_for_the_next_question(served, picture):
    _, recorder, new_client = served
    client = new_client()
    client.predict(handle_file(picture), api_name="/new_picture")
    answer, view = ask_on_page(client, picture, "What shape is in the image?")
    assert last_prompt(recorder) == "Question: What shape is in the image? Answer:"
    assert "What shape is in the image?" in view and view.startswith("**Conversation")
    ask_on_page(client, picture, "What color is it?")
    assert last_prompt(recorder) == (
        f"Question: What shape is in the image? Answer: {squeeze(answer)} "
        "Question: What color is it? Answer:"
    )


def test_start_over_and_a_new_picture_clear_the_conversation(served, picture):
    _, recorder, new_client = served
    client = new_client()
    ask_on_page(client, picture, "What shape is in the image?")
    outputs = client.predict(handle_file(picture), api_name="/reset")
    assert list(outputs[-3:]) == ["", "", ""]  # conversation list, quality note
    ask_on_page(client, picture, "What color is it?")
    assert last_prompt(recorder) == "Question: What color is it? Answer:"

    ask_on_page(client, picture, "What shape is in the image?")
    # A new picture: no quality problem here, an empty list, and the last answers gone.
    outputs = client.predict(handle_file(picture), api_name="/new_picture")
    assert not any(outputs), outputs
    ask_on_page(client, picture, "Is there a circle?")
    assert last_prompt(recorder) == "Question: Is there a circle? Answer:"


def test_two_sessions_never_see_each_others_conversation(served, picture):
    _, recorder, new_client = served
    first, second = new_client(), new_client()
    secret_answer, _ = ask_on_page(first, picture, "Is there a secret triangle?")
    _, view = ask_on_page(second, picture, "What color is it?")
    assert last_prompt(recorder) == "Question: What color is it? Answer:"
    assert "secret" not in view
    _, view = ask_on_page(first, picture, "What color is it?")
    assert "secret triangle" in view and view.count("What color is it?") == 1
    if squeeze(secret_answer):  # BLIP-2 reads its own earlier answers, when it gave one
        assert "secret triangle" in last_prompt(recorder)


def test_the_conversation_reads_in_order_in_both_languages():
    turns = [
        {"kind": "describe", "caption": "a red circle."},
        {
            "kind": "ask",
            "question": "What *shape*?",
            "english": "What *shape*?",
            "vilt": "circle",
            "blip2": "",
        },
    ]
    english = render_conversation(turns, "en").splitlines()
    assert english[0] == "**Conversation about this picture**"
    assert english[2] == "1. Description. BLIP-2 sees: a red circle."
    assert english[3] == "2. You asked “What \\*shape\\*?”. ViLT: circle. BLIP-2: no answer."
    assert render_conversation(turns, "ar").splitlines()[0] == "**المحادثة عن هذه الصورة**"
    assert render_conversation([], "en") == ""


def test_a_picture_too_small_for_real_checkpoints_is_said_only_for_them(tiny_vilt, picture):
    from ui.handlers import VQAHandlers
    from vqa_core.registry import ModelChoice

    plain = VQAHandlers(Services(vilt=tiny_vilt))
    assert plain.photos.sentence(plain.photos.quality(picture)) == ""
    real = VQAHandlers(
        Services(vilt=tiny_vilt, vilt_choice=ModelChoice("vilt", "dandelin/vilt", "named"))
    )
    assert real.photos.sentence(real.photos.quality(picture)) == message(
        "quality_small", width=64, height=64
    )


def test_demo_blip2_answers_follow_ups_alone(tiny_blip2, picture):
    from ui.handlers import VQAHandlers
    from vqa_core.registry import ModelChoice

    recorder = RecordingProcessor(tiny_blip2.processor)
    blip2 = dataclasses.replace(tiny_blip2, processor=recorder)
    demo_choice = ModelChoice("blip2", "/demo/blip2", "demo preset", is_demo=True)
    handlers = VQAHandlers(Services(blip2=blip2, blip2_choice=demo_choice))
    conversation = [{"kind": "ask", "question": "a?", "english": "What shape?", "blip2": "circle"}]
    handlers.answering.answer_blip2([picture], ["What color?"], [5], [1], None, [conversation])
    assert recorder.prompts[-1] == ["Question: What color? Answer:"]
    assert "answer each question alone" in ui_about.about_markdown(
        Services(blip2=blip2, blip2_choice=demo_choice)
    )


# ---- a museum's own examples -------------------------------------------------------------


def test_museum_examples_replace_the_built_in_ones_and_bad_lines_are_skipped(
    tmp_path, caplog, tiny_vilt
):
    import logging

    from PIL import Image

    Image.new("RGB", (200, 150), (180, 40, 40)).save(tmp_path / "vase.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    (tmp_path.parent / "outside.jpg").write_bytes((tmp_path / "vase.jpg").read_bytes())
    lines = [
        '{"image": "vase.jpg", "question": "ما لون المزهرية؟"}',
        "not json at all",
        '{"image": "missing.jpg", "question": "What is this?"}',
        '{"image": "broken.jpg", "question": "What is this?"}',
        '{"image": "../outside.jpg", "question": "Escaping the folder?"}',
        '{"image": "vase.jpg"}',
        '{"image": "vase.jpg", "question": "   "}',
        "",
        '{"image": "vase.jpg", "question": "What colour is the vase?"}',
    ]
    (tmp_path / "examples.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vqa_app"):
        examples = ui_examples.load_examples(tmp_path)
    vase = str((tmp_path / "vase.jpg").resolve())
    assert examples == [[vase, "ما لون المزهرية؟"], [vase, "What colour is the vase?"]]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping")]
    assert len(skipped) == 6
    assert all(f"examples.jsonl:{n}" in m for n, m in zip((2, 3, 4, 5, 6, 7), skipped))

    demo = ui.build_demo(Services(vilt=tiny_vilt), examples_dir=tmp_path)
    shown = [
        block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "vqa-examples"
    ]
    assert shown and [row[1] for row in shown[0].samples] == [e[1] for e in examples]


def test_a_folder_without_examples_keeps_the_built_in_ones(tmp_path, tiny_vilt):
    assert ui_examples.load_examples(tmp_path) == []
    demo = ui.build_demo(Services(vilt=tiny_vilt), examples_dir=tmp_path)
    shown = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "vqa-examples"]
    assert len(shown[0].samples) == len(ui_examples.DEMO_EXAMPLES)


def test_app_takes_the_examples_folder_and_the_auto_describe_opt_out(monkeypatch):
    import app as vqa_app

    monkeypatch.delenv("VQA_EXAMPLES", raising=False)
    args = vqa_app.parse_args(["--kiosk", "--no-auto-describe", "--examples", "/museum"])
    assert (args.auto_describe, args.examples) == (False, "/museum")
    args = vqa_app.parse_args([])
    assert args.auto_describe and args.examples is None


def test_describe_with_the_demo_blip2_says_what_the_demo_can_do(easy_vqa_sample):
    """The demo BLIP-2 never learned to caption: "gave no description" read as a fault."""
    from types import SimpleNamespace

    from ui.handlers import VQAHandlers
    from vqa_core import Blip2Result, ModelChoice, Services

    class Silent:
        name = "blip2-easyvqa"

        def describe_batch(self, images, **kwargs):
            return [Blip2Result("", "", model=self.name) for _ in images]

    def describe(is_demo: bool) -> str:
        choice = ModelChoice("blip2", "blip2-easyvqa", "test", is_demo)
        handlers = VQAHandlers(Services(blip2=Silent(), blip2_choice=choice))
        request = SimpleNamespace(headers={"accept-language": "ar"}, session_hash="s")
        return handlers.describing.describe_page(easy_vqa_sample[0][0], [], request)[2]

    assert describe(True) == message("described_demo", "ar")
    assert describe(False) == message("described_nothing", "ar")
