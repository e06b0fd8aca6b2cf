"""Questions the models cannot read: script detection, the translation pair, the page's answer.

The pair is a tiny Marian built here (SentencePiece trained on the spot, random weights
taught a few easy-VQA sentences by heart) and loaded from folders through the same
``from_pretrained`` path as Helsinki-NLP's opus-mt models.
"""

from __future__ import annotations

import json

import pytest
from translation_fixtures import ANSWERS_EN_AR, QUESTIONS_AR_EN, build_tiny_pair

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
def tiny_pair_dir(tmp_path_factory):
    return build_tiny_pair(tmp_path_factory.mktemp("tiny-marian"))


@pytest.fixture(scope="session")
def translator(tiny_pair_dir) -> Translator:
    # Greedy decoding keeps the tests quick; beams are the real pair's default.
    return Translator.from_pretrained(
        str(tiny_pair_dir / "ar-en"), str(tiny_pair_dir / "en-ar"), device="cpu", num_beams=1
    )


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
