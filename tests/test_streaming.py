"""BLIP-2's words as they come (issue 26, item 3): the stream, its final text, its failures,
and the model servers and ZeroGPU Spaces that answer whole."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace

import pytest

from tests.doubles import FailOnce, RecordingAnswerer
from ui.answering import can_stream
from ui.handlers import VQAHandlers
from ui.zerogpu import ZeroGPU
from vqa_core import Blip2Answerer, InferenceError, Services

TOKENS = 8
REQUEST = SimpleNamespace(headers={"accept-language": "en"}, session_hash="streaming")


def readable_blip2(folder, *, tokens: int = TOKENS) -> Blip2Answerer:
    """The tiny untrained BLIP-2, made to write ``tokens`` readable tokens.

    Untrained, it picks byte pieces that decode to nothing printable (or stops at once), so
    a stream of it would show nothing. Its own generation settings, which every way of
    answering reads alike, keep it to printable tokens and to ``tokens`` of them.
    """
    blip2 = Blip2Answerer.from_pretrained(str(folder), device="cpu")
    tokenizer = blip2.processor.tokenizer
    unreadable = [
        token
        for token in range(len(tokenizer))
        if not (piece := tokenizer.decode([token])).strip()
        or "\ufffd" in piece
        or not piece.isprintable()
    ]
    settings = blip2.model.language_model.generation_config
    settings.suppress_tokens = unreadable
    settings.min_new_tokens = tokens
    return blip2


def slowed(blip2: Blip2Answerer, seconds: float) -> Blip2Answerer:
    """Each decoding step of ``blip2`` takes ``seconds`` longer (a page can watch it)."""
    blip2.model.language_model.register_forward_pre_hook(lambda *_: time.sleep(seconds))
    return blip2


@pytest.fixture(scope="module")
def blip2(tiny_blip2_dir) -> Blip2Answerer:
    return readable_blip2(tiny_blip2_dir)


@pytest.fixture(scope="module")
def picture(easy_vqa_sample) -> str:
    return easy_vqa_sample[0][0]


def handlers_for(blip2, vilt=None) -> VQAHandlers:
    return VQAHandlers(Services(vilt=vilt, blip2=blip2))


# The model ------------------------------------------------------------------------------------
def test_the_stream_grows_token_by_token_and_ends_on_the_whole_answer(blip2, picture):
    whole = blip2.answer(picture, "what shape is this?", max_new_tokens=TOKENS)
    stream = blip2.stream_answer(picture, "what shape is this?", max_new_tokens=TOKENS)
    texts = list(stream)
    assert len(texts) > 1, texts
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts)), texts
    assert texts[-1] == whole.answer and stream.result.answer == whole.answer
    assert stream.result.question == whole.question and stream.result.seconds > 0


def test_a_description_streams_and_ends_on_the_whole_description(blip2, picture):
    whole = blip2.describe(picture, max_new_tokens=TOKENS)
    stream = blip2.stream_description(picture, max_new_tokens=TOKENS)
    texts = list(stream)
    assert len(texts) > 1 and texts[-1] == whole.answer == stream.result.answer, texts


def test_beam_search_comes_whole_and_equals_the_batched_answer(blip2, picture):
    whole = blip2.answer(picture, "what color is it?", max_new_tokens=TOKENS, num_beams=2)
    stream = blip2.stream_answer(picture, "what color is it?", max_new_tokens=TOKENS, num_beams=2)
    assert list(stream) == [] and stream.result.answer == whole.answer


def test_a_failure_mid_stream_is_raised_after_the_words_so_far(blip2, picture):
    stream = blip2.stream_answer(picture, "what shape?", max_new_tokens=TOKENS)
    texts = []
    # The language model's third decoding step fails (the first is the prompt's).
    with (
        FailOnce(blip2.model.language_model, RuntimeError("boom"), on_call=3),
        pytest.raises(InferenceError, match="boom"),
    ):
        for text in stream:
            texts.append(text)
    assert len(texts) == 2, texts


def test_a_reader_that_leaves_stops_the_generation(blip2, picture):
    steps = []
    hook = blip2.model.language_model.register_forward_pre_hook(lambda *_: steps.append(1))
    try:
        # Read to the end: the language model runs once per token (and once for the prompt).
        whole = blip2.stream_answer(picture, "what shape?", max_new_tokens=60)
        for _ in whole:
            pass
        full = len(steps)
        steps.clear()
        texts = iter(blip2.stream_answer(picture, "what shape?", max_new_tokens=60))
        next(texts)
        texts.close()  # joins the generation, which stops at the next token
        # The generation thread may run a few tokens ahead of the reader before it leaves
        # (how many depends on the machine's load); it must not run on to the end.
        assert full >= 60 and len(steps) < full // 2, (len(steps), full)
    finally:
        hook.remove()


# The page's handlers ----------------------------------------------------------------------------
def test_the_page_stream_ends_exactly_as_the_batched_answer(blip2, picture):
    handlers = handlers_for(blip2)
    answers, statuses = handlers.answering.answer_blip2(
        [picture], ["What shape is it?"], [TOKENS], [1]
    )
    updates = list(
        handlers.answering.stream_blip2(picture, "What shape is it?", TOKENS, 1, None, [], "en")
    )
    assert len(updates) > 2, updates
    final_answer, final_status = updates[-1]
    assert final_answer == answers[0] and final_answer
    # The status line is the same sentence (its timing aside) and only the last update sets it.
    assert final_status.split()[0] == statuses[0].split()[0] and "⚠" not in final_status
    assert all(isinstance(status, dict) for _, status in updates[:-1]), updates  # gr.skip()


def test_the_page_stream_reads_the_conversation_as_the_batched_answer(blip2, picture):
    handlers = handlers_for(blip2)
    conversation = [
        {"kind": "ask", "question": "What shape?", "english": "What shape?", "blip2": "circle"}
    ]
    answers, _ = handlers.answering.answer_blip2(
        [picture], ["What color?"], [TOKENS], [1], None, [conversation]
    )
    *_, (final, _) = handlers.answering.stream_blip2(
        picture, "What color?", TOKENS, 1, None, conversation, "en"
    )
    assert final == answers[0]


def test_a_failure_mid_stream_ends_with_the_columns_sentence(blip2, picture):
    handlers = handlers_for(blip2)
    with FailOnce(blip2.model.language_model, RuntimeError("boom"), on_call=3):
        updates = list(
            handlers.answering.stream_blip2(picture, "What shape?", TOKENS, 1, None, [], "en")
        )
    assert len(updates) >= 2
    answer, status = updates[-1]
    assert answer == "" and status.startswith("⚠") and "BLIP-2" in status and "boom" in status
    # The same sentence as the batched answer's for the same failure.
    with FailOnce(blip2.model.language_model, RuntimeError("boom"), on_call=3):
        _, statuses = handlers.answering.answer_blip2([picture], ["What shape?"], [TOKENS], [1])
    assert status == statuses[0]


def test_a_bad_picture_or_question_gets_its_sentence_in_one_update(blip2, tmp_path):
    handlers = handlers_for(blip2)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    for image, question in ((None, "What shape?"), (str(broken), "What shape?")):
        updates = list(handlers.answering.stream_blip2(image, question, TOKENS, 1, None, [], "en"))
        _, statuses = handlers.answering.answer_blip2([image], [question], [TOKENS], [1])
        assert updates == [("", statuses[0])] and statuses[0].startswith("⚠")


def test_the_page_description_streams_then_ends_as_describe_page(blip2, picture):
    handlers = handlers_for(blip2)
    whole = handlers.describing.describe_page(picture, [], REQUEST)
    updates = list(handlers.describing.stream_page(picture, [], REQUEST))
    assert len(updates) > 2
    # Before the last update only BLIP-2's box changes: the announced line stays put.
    assert all(all(isinstance(part, dict) for part in update[1:]) for update in updates[:-1])
    final = updates[-1]
    assert final[0] == whole[0] and final[2] == whole[2] and final[4] == whole[4]
    assert final[1].split()[0] == whole[1].split()[0]


def test_a_description_failing_mid_stream_ends_with_the_sentence(blip2, picture):
    handlers = handlers_for(blip2)
    with FailOnce(blip2.model.language_model, RuntimeError("boom"), on_call=3):
        *_, final = handlers.describing.stream_page(picture, [], REQUEST)
    assert final[0] == "" and final[1].startswith("⚠") and "boom" in final[2]
    assert final[4] == []  # a failed description does not join the conversation


def test_an_arrival_without_a_picture_changes_nothing(blip2):
    updates = list(handlers_for(blip2).describing.stream_arrival(None, [], REQUEST))
    assert len(updates) == 1 and all(isinstance(part, dict) for part in updates[0])


# Where the answer comes whole ------------------------------------------------------------------
class Server:
    """A model server's client: answers and describes, in one piece (serving/client.py)."""

    def __init__(self, local: Blip2Answerer) -> None:
        self.local = local
        self.name = "server"
        self.placement = local.placement

    def answer_batch(self, images, questions, **kwargs):
        return self.local.answer_batch(images, questions, **kwargs)

    def describe_batch(self, images, **kwargs):
        return self.local.describe_batch(images, **kwargs)


def test_a_model_server_answers_whole_in_one_update(blip2, picture):
    from serving.client import RemoteBlip2Answerer

    assert not can_stream(RemoteBlip2Answerer.__new__(RemoteBlip2Answerer))
    handlers = handlers_for(Server(blip2))
    updates = list(
        handlers.answering.stream_blip2(picture, "What shape?", TOKENS, 1, None, [], "en")
    )
    answer = blip2.answer(picture, "What shape?", max_new_tokens=TOKENS).answer
    assert len(updates) == 1 and updates[0][0] == answer
    described = list(handlers.describing.stream_page(picture, [], REQUEST))
    assert len(described) == 1 and described[0][0] == blip2.describe(picture).answer


def test_on_zerogpu_the_wrapped_model_answers_whole_inside_the_wrapper(tiny_blip2_dir, picture):
    blip2 = readable_blip2(tiny_blip2_dir)
    calls = []

    def gpu(function):
        def borrowed(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)

        return borrowed

    services = Services(blip2=blip2)
    assert can_stream(blip2)
    ZeroGPU(gpu=gpu).wrap(services)
    assert not can_stream(blip2)
    handlers = VQAHandlers(services)
    updates = list(
        handlers.answering.stream_blip2(picture, "What shape?", TOKENS, 1, None, [], "en")
    )
    assert len(updates) == 1 and updates[0][0] and calls == ["answer_batch"]
    described = list(handlers.describing.stream_page(picture, [], REQUEST))
    assert len(described) == 1 and calls == ["answer_batch", "describe_batch"]


def test_a_wrapper_around_the_model_keeps_its_own_calls(blip2, picture):
    recorder = RecordingAnswerer(blip2)  # hands on stream_answer, but records answer_batch
    assert can_stream(blip2) and not can_stream(recorder)
    updates = list(
        handlers_for(recorder).answering.stream_blip2(
            picture, "What shape?", TOKENS, 1, None, [], "en"
        )
    )
    assert len(updates) == 1 and recorder.batch_sizes == [1]


def test_without_blip2_the_column_says_so_in_one_update(picture):
    updates = list(
        handlers_for(None).answering.stream_blip2(picture, "What shape?", TOKENS, 1, None, [], "en")
    )
    assert len(updates) == 1 and updates[0][0] == "" and updates[0][1].startswith("⚠")


def test_the_page_streams_only_where_the_model_can(blip2, tiny_vilt):
    import ui

    def routes(answerer) -> dict[str, dict]:
        demo = ui.build_demo(Services(vilt=tiny_vilt, blip2=answerer))
        return {dep["api_name"]: dep for dep in demo.config["dependencies"] if dep["api_name"]}

    streaming = routes(blip2)
    # /blip2 stays batched for API callers; the page's stream shares BLIP-2's queue.
    assert streaming["blip2"]["batch"] and streaming["blip2_stream"]["types"]["generator"]
    assert streaming["blip2_stream"]["api_visibility"] == "undocumented"
    whole = routes(Server(blip2))
    assert "blip2_stream" not in whole and whole["blip2"]["batch"]
