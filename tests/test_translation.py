"""Questions the models cannot read: script detection, the translation pair, the page's answer.

The pair is a tiny Marian built here (SentencePiece trained on the spot, random weights
taught a few easy-VQA sentences by heart) and loaded from folders through the same
``from_pretrained`` path as Helsinki-NLP's opus-mt models.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from types import SimpleNamespace

import pytest

from tests.doubles import RecordingAnswerer
from tests.translation_fixtures import ANSWERS_EN_AR, QUESTIONS_AR_EN
from ui.handlers import VQAHandlers
from ui.messages import message, summary_line
from vqa_core import Services
from vqa_core.errors import ModelLoadError, QuestionError
from vqa_core.language import ARABIC, LATIN, NO_LETTERS, OTHER, question_script
from vqa_core.translation import (
    REAL_TRANSLATION_PAIRS,
    TRANSLATION_ENV_VAR,
    Translator,
    load_translator,
    resolve_translation,
    route_question,
    route_questions,
)

ARABIC_QUESTION, ENGLISH_OF_IT = QUESTIONS_AR_EN[0]


@pytest.fixture(scope="session")
def translator(tiny_translator) -> Translator:
    return tiny_translator


# Script detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("ما لون الشكل؟", ARABIC),
        ("what colour is the shape?", LATIN),
        ("Quelle est la couleur ?", LATIN),  # a script check, not a language check
        ("كم عدد الأشكال؟ ٣ أو 3", ARABIC),  # Arabic-Indic and Latin digits carry no script
        ("ما لون الـ car؟", ARABIC),  # mostly Arabic with an English word
        ("what colour is الشكل?", LATIN),  # mostly English with an Arabic word
        ("رنگ این شکل چیست؟", ARABIC),  # Persian is Arabic script too
        ("Какого цвета фигура?", OTHER),
        ("这个形状是什么颜色？", OTHER),
        ("מה הצבע?", OTHER),
        ("2 + 2 = ?", NO_LETTERS),
        ("🙂 ?!", NO_LETTERS),
    ],
)
def test_question_script(text, script):
    assert question_script(text) == script


# Choosing the pair -----------------------------------------------------------------------


def test_off_and_demo_load_no_pair_and_say_why(monkeypatch):
    monkeypatch.delenv(TRANSLATION_ENV_VAR, raising=False)
    for setting in ("off", "demo"):
        choice = resolve_translation(setting)
        assert not choice.enabled and choice.reason


def test_auto_offline_without_a_cached_pair_is_off(monkeypatch):
    monkeypatch.delenv(TRANSLATION_ENV_VAR, raising=False)
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: False)
    choice = resolve_translation()
    assert not choice.enabled
    assert TRANSLATION_ENV_VAR in choice.reason  # says how to switch it on


def test_auto_takes_the_opus_mt_pair_when_both_are_cached(monkeypatch):
    monkeypatch.delenv(TRANSLATION_ENV_VAR, raising=False)
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: True)
    choice = resolve_translation("auto")
    assert (choice.to_english, choice.from_english) == REAL_TRANSLATION_PAIRS["ar"]
    # Half a pair is no pair: an Arabic page cannot show answers it cannot translate back.
    cached = {REAL_TRANSLATION_PAIRS["ar"][0]}
    monkeypatch.setattr("vqa_core.registry._in_local_cache", lambda repo: repo in cached)
    assert not resolve_translation("auto").enabled


def test_environment_variable_names_a_folder_pair(monkeypatch, tiny_pair_dir):
    monkeypatch.setenv(TRANSLATION_ENV_VAR, str(tiny_pair_dir))
    choice = resolve_translation()
    assert choice.to_english == str((tiny_pair_dir / "ar-en").resolve())
    assert choice.from_english == str((tiny_pair_dir / "en-ar").resolve())
    comma = resolve_translation(f"{tiny_pair_dir / 'ar-en'},{tiny_pair_dir / 'en-ar'}")
    assert (comma.to_english, comma.from_english) == (choice.to_english, choice.from_english)


def test_an_unknown_setting_lists_the_choices(monkeypatch, tmp_path):
    with pytest.raises(ModelLoadError, match="auto, off, demo, real"):
        resolve_translation(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="comma"):
        resolve_translation("one,two,three")


def test_a_pair_that_fails_to_load_is_reported_not_raised(tmp_path, tiny_vilt_dir):
    translator, _, error = load_translator(f"{tmp_path / 'missing'},{tmp_path / 'missing'}")
    assert translator is None and "Could not load the translation model" in error
    # A ViLT folder is a model, but not a translator.
    translator, _, error = load_translator(f"{tiny_vilt_dir},{tiny_vilt_dir}")
    assert translator is None and error


# The pair itself -------------------------------------------------------------------------


def test_questions_reach_english_and_labels_come_back_in_arabic(translator):
    assert translator.to_english([ar for ar, _ in QUESTIONS_AR_EN]) == [
        en for _, en in QUESTIONS_AR_EN
    ]
    labels = [en for en, _ in ANSWERS_EN_AR]
    assert translator.labels_from_english(labels) == [ar for _, ar in ANSWERS_EN_AR]
    assert translator.from_english(["", "red"]) == ["", "أحمر"]  # nothing stays nothing


def test_the_label_vocabulary_is_translated_once_and_kept_on_disk(tiny_pair_dir, tmp_path):
    def fresh() -> Translator:
        return Translator.from_pretrained(
            str(tiny_pair_dir / "ar-en"),
            str(tiny_pair_dir / "en-ar"),
            device="cpu",
            num_beams=1,
            label_cache_dir=tmp_path,
        )

    labels = [en for en, _ in ANSWERS_EN_AR]
    first = fresh()
    assert first.warm_labels(labels) == len(labels)
    assert first.warm_labels(labels) == 0  # in memory now
    (cache_file,) = tmp_path.glob("labels-ar-*.json")
    assert json.loads(cache_file.read_text(encoding="utf-8")) == dict(ANSWERS_EN_AR)
    second = fresh()
    calls = []
    second.from_english_model.model.generate = lambda *a, **k: calls.append(1)  # must not run
    assert second.warm_labels(labels) == 0
    assert second.labels_from_english(["red", "yes"]) == ["أحمر", "نعم"] and not calls


# Routing ---------------------------------------------------------------------------------


def test_an_arabic_question_is_translated_when_a_pair_is_loaded(translator):
    route = route_question(f"  {ARABIC_QUESTION} ", translator)
    assert route.translated and route.answerable
    assert route.original == ARABIC_QUESTION and route.english == ENGLISH_OF_IT


def test_without_a_pair_an_arabic_question_is_not_answered(translator):
    route = route_question(ARABIC_QUESTION, None)
    assert route.status == "not_understood" and not route.answerable
    # A script the pair does not translate is not understood either.
    assert route_question("Какого цвета фигура?", translator).status == "not_understood"


def test_english_and_letterless_questions_pass_untouched(translator):
    routes = route_questions(["What colour is the shape?", "2 + 2?"], translator)
    assert [(r.status, r.english) for r in routes] == [
        ("as_is", "What colour is the shape?"),
        ("as_is", "2 + 2?"),
    ]


def test_a_translation_failure_answers_nothing(translator, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(translator.to_english_model.model, "generate", broken)
    route = route_question(ARABIC_QUESTION, translator)
    assert route.status == "translation_failed" and not route.answerable
    assert "boom" in route.error


def test_an_empty_question_is_still_a_question_error(translator):
    with pytest.raises(QuestionError):
        route_question("   ", translator)


# The page ------------------------------------------------------------------------------


class QuestionRecorder(RecordingAnswerer):
    """A real answerer that also notes every question it is handed."""

    def __init__(self, inner):
        super().__init__(inner)
        self.questions: list[str] = []

    def answer_batch(self, images, questions, **kwargs):
        self.questions.extend(questions)
        return super().answer_batch(images, questions, **kwargs)


class CountingTranslator:
    """The tiny pair, counting how often each direction runs."""

    def __init__(self, translator: Translator):
        self.inner, self.into, self.out_of = translator, 0, 0

    def to_english(self, texts):
        self.into += 1
        return self.inner.to_english(texts)

    def from_english(self, texts):
        self.out_of += 1
        return self.inner.from_english(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _page(language: str) -> SimpleNamespace:
    """What ``summarise`` reads from gr.Request: the browser's languages."""
    return SimpleNamespace(headers={"accept-language": language})


@pytest.fixture
def recorders(tiny_vilt, tiny_blip2):
    return QuestionRecorder(tiny_vilt), QuestionRecorder(tiny_blip2)


def _ask(handlers: VQAHandlers, image, question: str, page_language: str):
    """The page's three steps for one question, as its events chain them."""
    labels, vilt_statuses, routes = handlers.answering.ask_vilt([image], [question], [5])
    answers, blip2_statuses = handlers.answering.answer_blip2([image], [question], [5], [1], routes)
    return (
        handlers.lines.summarise(
            labels[0],
            answers[0],
            vilt_statuses[0],
            blip2_statuses[0],
            routes[0],
            _page(page_language),
        ),
        labels[0],
        answers[0],
    )


def test_an_arabic_question_reaches_both_models_in_english_once(
    translator, recorders, easy_vqa_sample
):
    vilt, blip2 = recorders
    counting = CountingTranslator(translator)
    handlers = VQAHandlers(Services(vilt=vilt, blip2=blip2), translator=counting)
    image = easy_vqa_sample[0][0]
    (line, vilt_arabic, blip2_arabic, _, _), label, answer = _ask(
        handlers, image, ARABIC_QUESTION, "ar-EG,ar;q=0.9"
    )
    assert vilt.questions == [ENGLISH_OF_IT] and blip2.questions == [ENGLISH_OF_IT]
    assert counting.into == 1  # the BLIP-2 step reused the ViLT step's translation
    # The page says, in Arabic, that it translated and what the models were asked.
    assert line.startswith(message("translated", "ar", language="العربية", english=ENGLISH_OF_IT))
    # ViLT's labels: in Arabic, each beside its English original, which stays in the Label.
    english_labels = list(label)
    arabic_labels = translator.labels_from_english(english_labels)
    for english, arabic in zip(english_labels, arabic_labels):
        assert f"{arabic} ({english}," in vilt_arabic
    assert 'lang="ar"' in vilt_arabic
    # BLIP-2's words, in Arabic, beside its English answer (still the column's own text).
    assert answer == blip2.inner.answer(image, ENGLISH_OF_IT, max_new_tokens=5).answer
    (answer_in_arabic,) = translator.from_english([answer])
    if answer_in_arabic:
        assert answer_in_arabic.replace(" ", "") in blip2_arabic.replace("\\", "").replace(" ", "")
    # On an Arabic page the spoken line names ViLT's best answer in Arabic.
    assert f"ViLT: {arabic_labels[0]}." in _unisolated(line)


def test_agreement_still_compares_the_english_answers(translator, tiny_vilt, tiny_blip2):
    handlers = VQAHandlers(Services(vilt=tiny_vilt, blip2=tiny_blip2), translator=translator)
    route = route_question(ARABIC_QUESTION, translator)
    line, vilt_arabic, blip2_arabic, _, _ = handlers.lines.summarise(
        {"red": 0.9, "blue": 0.2},
        "red",
        "ViLT · 0.1 s",
        "BLIP-2 · 0.2 s",
        asdict(route),
        _page("ar"),
    )
    # "أحمر" and "red" agree because "red" and "red" do, and the line says so in Arabic.
    assert "ViLT: أحمر. BLIP-2: أحمر." in _unisolated(line) and "متفقان" in line
    assert "1. أحمر (red, 90%)" in vilt_arabic and "أحمر" in blip2_arabic
    # On an English page the line keeps the English answers; the Arabic ones are shown.
    line, vilt_arabic, _, _, _ = handlers.lines.summarise(
        {"red": 0.9, "blue": 0.2},
        "red",
        "ViLT · 0.1 s",
        "BLIP-2 · 0.2 s",
        asdict(route),
        _page("en-US"),
    )
    assert line.startswith("Translated from Arabic") and "ViLT: red. BLIP-2: red." in line
    assert "In Arabic" in vilt_arabic and "أحمر" in vilt_arabic


@pytest.mark.parametrize("page_language", ["ar", "en"])
def test_without_translation_no_model_answers_and_the_page_says_why(
    recorders, easy_vqa_sample, page_language
):
    vilt, blip2 = recorders
    handlers = VQAHandlers(Services(vilt=vilt, blip2=blip2), translator=None)
    (line, vilt_arabic, blip2_arabic, vilt_status, blip2_status), label, answer = _ask(
        handlers, easy_vqa_sample[0][0], ARABIC_QUESTION, page_language
    )
    assert vilt.questions == [] and blip2.questions == []  # nobody pretended to answer
    assert label is None and answer == ""
    assert line == message("not_understood", page_language)
    assert vilt_status == blip2_status == f"⚠️ {message('not_understood_status', page_language)}"
    assert vilt_arabic == blip2_arabic == ""
    # API callers of /vilt, /blip2 and /answer are told too, in English.
    labels, statuses, _, blip2_statuses, lines = handlers.answering.answer_both(
        [easy_vqa_sample[0][0]], [ARABIC_QUESTION], [5], [5], [1]
    )
    assert labels == [None] and message("not_understood_status") in statuses[0]
    assert message("not_understood_status") in blip2_statuses[0]
    assert lines == [message("not_understood")]


def test_a_question_in_a_script_the_pair_does_not_know_is_not_answered(
    translator, recorders, easy_vqa_sample
):
    vilt, blip2 = recorders
    handlers = VQAHandlers(Services(vilt=vilt, blip2=blip2), translator=translator)
    (line, *_), label, _ = _ask(handlers, easy_vqa_sample[0][0], "Какого цвета фигура?", "ar")
    assert vilt.questions == [] and label is None
    assert line == message("not_understood", "ar")


def test_an_english_question_on_an_arabic_page_is_untouched(translator, recorders, easy_vqa_sample):
    vilt, blip2 = recorders
    counting = CountingTranslator(translator)
    handlers = VQAHandlers(Services(vilt=vilt, blip2=blip2), translator=counting)
    image, question = easy_vqa_sample[0][0], easy_vqa_sample[1][0]
    (line, vilt_arabic, blip2_arabic, vilt_status, _), label, answer = _ask(
        handlers, image, question, "ar-EG,ar"
    )
    assert vilt.questions == [question] and blip2.questions == [question]
    assert counting.into == counting.out_of == 0
    assert vilt_arabic == blip2_arabic == ""
    assert line == summary_line(list(label.items()), answer, "ar")
    assert vilt_status is not None and not str(vilt_status).startswith("⚠")


def test_api_answer_says_it_translated(translator, tiny_vilt, tiny_blip2, easy_vqa_sample):
    handlers = VQAHandlers(Services(vilt=tiny_vilt, blip2=tiny_blip2), translator=translator)
    labels, _, _, _, lines = handlers.answering.answer_both(
        [easy_vqa_sample[0][0]], [ARABIC_QUESTION], [5], [5], [1]
    )
    expected = tiny_vilt.answer(easy_vqa_sample[0][0], ENGLISH_OF_IT, top_k=5).answers
    assert list(labels[0]) == [label for label, _ in expected]
    notice = message("translated_api", language="Arabic", english=ENGLISH_OF_IT)
    assert lines[0].startswith(notice) and "ViLT: " in lines[0]


def test_the_download_command_fetches_what_marian_loading_reads():
    from vqa_core.download import select_files

    # Helsinki-NLP/opus-mt-ar-en's files: the tokenizer is two SentencePiece models.
    listing = [".gitattributes", "README.md", "config.json", "generation_config.json",
               "metadata.json", "pytorch_model.bin", "rust_model.ot", "source.spm",
               "target.spm", "tf_model.h5", "tokenizer_config.json", "vocab.json"]  # fmt: skip
    selection = select_files("Helsinki-NLP/opus-mt-ar-en", listing)
    assert set(selection.files) == {
        "config.json",
        "generation_config.json",
        "pytorch_model.bin",
        "source.spm",
        "target.spm",
        "tokenizer_config.json",
        "vocab.json",
    }


def test_the_pair_is_planned_before_loading_and_skipped_when_it_cannot_fit(tiny_pair_dir):
    from vqa_core.memory import MemoryReport

    pair = str(tiny_pair_dir)
    # 300 MB free: the tiny pair's few hundred KB (and the plan's margin) fit.
    translator, _, error = load_translator(
        pair, device="cpu", memory=lambda: MemoryReport(300 * 2**20, 24 * 2**30)
    )
    assert error is None and translator.to_english([ARABIC_QUESTION]) == [ENGLISH_OF_IT]
    # 10 MB free: nothing is loaded, and the sentence says why and what still works.
    translator, choice, error = load_translator(
        pair, device="cpu", memory=lambda: MemoryReport(10 * 2**20, 24 * 2**30)
    )
    assert translator is None and choice.enabled
    assert "Translation" in error and "--translation off" in error


def _unisolated(text: str) -> str:
    """An Arabic line without the marks that isolate English names and answers in it."""
    return text.replace("\u2068", "").replace("\u2069", "")
