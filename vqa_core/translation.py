"""Questions in Arabic, answers back in Arabic: a Marian translation pair around both models.

ViLT and BLIP-2 read English only. With a translation pair loaded, an Arabic question is put
into English before either model sees it, and their English answers are put back into
Arabic for the page, which shows both. Which pair loads is chosen like the models
(:func:`resolve_translation`): ``auto`` (the default) takes Helsinki-NLP's opus-mt pair when
it is in the local cache or the hub answers, else none; ``off`` and ``demo`` load none (the
embedded demo models are English-only and no translation pair is embedded: a randomly
initialised one would answer Arabic with confident nonsense, the very thing to avoid);
``real`` insists on the hub pair; anything else names the pair itself.

Without a pair, :func:`route_question` still says plainly that a question is not in a
language the models read, so the page can say so instead of showing an answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._runtime import load_errors, model_errors, timed
from .errors import InferenceError, ModelLoadError, VQAError
from .language import ARABIC, is_understood, question_script
from .placement import Placement, resolve_placement
from .questions import clean_question

__all__ = [
    "REAL_TRANSLATION_PAIRS",
    "TRANSLATION_ENV_VAR",
    "TRANSLATION_PRESETS",
    "TranslationChoice",
    "MarianDirection",
    "Translator",
    "QuestionRoute",
    "resolve_translation",
    "load_translator",
    "default_label_cache_dir",
    "plan_pair",
    "route_question",
    "route_questions",
]

logger = logging.getLogger(__name__)

TRANSLATION_ENV_VAR = "VQA_TRANSLATION"
TRANSLATION_PRESETS = ("auto", "off", "demo", "real")
# The language each pair serves -> (into English, out of English).
REAL_TRANSLATION_PAIRS: dict[str, tuple[str, str]] = {
    ARABIC: ("Helsinki-NLP/opus-mt-ar-en", "Helsinki-NLP/opus-mt-en-ar"),
}
# A folder holding a pair keeps each direction in a subfolder named like this.
PAIR_FOLDER_NAMES = {ARABIC: ("ar-en", "en-ar")}
# A question is a sentence; a translation several times its length is the model looping.
MAX_NEW_TOKENS = 64
DEFAULT_NUM_BEAMS = 4  # opus-mt's own generation setting
LABEL_BATCH_SIZE = 64
# Where translated answer labels are kept between starts (model-derived text only);
# "off" keeps them in memory only.
LABEL_CACHE_ENV_VAR = "VQA_TRANSLATION_CACHE"


@dataclass(frozen=True)
class TranslationChoice:
    """Which translation pair to load, if any, and why (one log line)."""

    language: str
    to_english: str | None
    from_english: str | None
    reason: str

    @property
    def enabled(self) -> bool:
        return self.to_english is not None and self.from_english is not None


def _off(reason: str, language: str = ARABIC) -> TranslationChoice:
    return TranslationChoice(language, None, None, reason)


def _named_pair(requested: str, origin: str, language: str) -> TranslationChoice:
    """``INTO_EN,OUT_OF_EN`` (hub ids or folders), or one folder with ``ar-en``/``en-ar`` in it."""
    if "," in requested:
        parts = [part.strip() for part in requested.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ModelLoadError(
                f"A translation pair is two models separated by a comma (into English, "
                f"then out of English), e.g. {','.join(REAL_TRANSLATION_PAIRS[language])}; "
                f"got {requested!r}. Or use one of: {', '.join(TRANSLATION_PRESETS)}."
            )
        sources = [_local_or_hub(part) for part in parts]
        return TranslationChoice(language, sources[0], sources[1], f"named by {origin}")
    folder = Path(requested).expanduser()
    into_name, out_name = PAIR_FOLDER_NAMES[language]
    if (folder / into_name).is_dir() and (folder / out_name).is_dir():
        return TranslationChoice(
            language,
            str((folder / into_name).resolve()),
            str((folder / out_name).resolve()),
            f"named by {origin}",
        )
    raise ModelLoadError(
        f"Unknown translation setting {requested!r}; choose one of: "
        f"{', '.join(TRANSLATION_PRESETS)}, a pair 'INTO_ENGLISH,OUT_OF_ENGLISH' of hub ids or "
        f"folders, or a folder holding {into_name}/ and {out_name}/."
    )


def _local_or_hub(name: str) -> str:
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def resolve_translation(
    requested: str | None = None, *, language: str = ARABIC
) -> TranslationChoice:
    """Resolve a translation setting (or its absence) to a pair to load, or to none.

    ``None`` falls back to ``$VQA_TRANSLATION``, then ``auto``. Raises
    :class:`ModelLoadError` listing the valid choices for a setting it cannot read.
    """
    # The hub probes are the registry's, so both decide "available" the same way.
    from .registry import _hub_answers, _in_local_cache

    if language not in REAL_TRANSLATION_PAIRS:
        raise ModelLoadError(
            f"No translation pair is known for {language!r}; "
            f"choose one of: {', '.join(REAL_TRANSLATION_PAIRS)}."
        )
    from_env = os.environ.get(TRANSLATION_ENV_VAR, "").strip()
    if requested is None or not str(requested).strip():
        requested, origin = (from_env, TRANSLATION_ENV_VAR) if from_env else ("auto", "default")
    else:
        origin = "argument"
    requested = str(requested).strip()
    real = REAL_TRANSLATION_PAIRS[language]
    if requested == "off":
        choice = _off(f"translation was switched off ({origin})", language)
    elif requested == "demo":
        choice = _off(
            f"the demo preset has no translation models ({origin}); questions the models "
            "cannot read get a notice instead of an answer",
            language,
        )
    elif requested == "real":
        choice = TranslationChoice(
            language, real[0], real[1], f"the opus-mt pair was requested ({origin})"
        )
    elif requested == "auto":
        if all(_in_local_cache(repo) for repo in real):
            choice = TranslationChoice(
                language, real[0], real[1], "the opus-mt pair is in the local cache"
            )
        elif all(_hub_answers(repo) for repo in real):
            choice = TranslationChoice(
                language, real[0], real[1], "the opus-mt pair is reachable on the hub"
            )
        else:
            choice = _off(
                "the opus-mt pair is neither cached nor reachable (offline); questions the "
                f"models cannot read get a notice instead. Set {TRANSLATION_ENV_VAR} to a "
                "pair or a folder to change this",
                language,
            )
    else:
        choice = _named_pair(requested, origin, language)
    logger.info(
        "translation (%s): %s (%s)",
        language,
        f"{choice.to_english} + {choice.from_english}" if choice.enabled else "off",
        choice.reason,
    )
    return choice


@dataclass
class MarianDirection:
    """One direction of a pair: a seq2seq model and its tokenizer."""

    model: torch.nn.Module
    tokenizer: object
    placement: Placement
    name: str

    @classmethod
    def from_pretrained(cls, name_or_path: str, placement: Placement) -> MarianDirection:
        # Auto classes, so any seq2seq checkpoint with a tokenizer works, not only Marian.
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        with load_errors("the translation model", name_or_path):
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, dtype=placement.dtype)
            if not model.config.is_encoder_decoder:
                raise ValueError("it is not an encoder-decoder (translation) model")
        model.to(placement.device).eval()
        logger.info("translation %s loaded on %s", name_or_path, placement.describe())
        return cls(model, tokenizer, placement, str(name_or_path))

    def translate(self, texts: Sequence[str], *, num_beams: int = DEFAULT_NUM_BEAMS) -> list[str]:
        if not texts:
            return []
        with model_errors("Translation"), torch.inference_mode():
            inputs = self.tokenizer(
                list(texts), padding=True, truncation=True, return_tensors="pt"
            ).to(self.placement.device)
            generated = self.model.generate(
                **inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=num_beams, do_sample=False
            )
            outputs = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [output.strip() for output in outputs]


@dataclass
class Translator:
    """A language's pair: questions into English, answers and ViLT's labels out of it.

    ViLT's labels are a fixed list, so each is translated once and kept (in memory, and in
    ``label_cache_dir`` when given: a file keyed by both models and the label list, holding
    nothing a visitor typed). BLIP-2's answers are free text about a visitor's picture and
    are translated each time, never kept.
    """

    to_english_model: MarianDirection
    from_english_model: MarianDirection
    language: str = ARABIC
    num_beams: int = DEFAULT_NUM_BEAMS
    label_cache_dir: Path | None = None
    _labels: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_pretrained(
        cls,
        to_english: str,
        from_english: str,
        *,
        language: str = ARABIC,
        device: str = "auto",
        dtype: str = "auto",
        num_beams: int = DEFAULT_NUM_BEAMS,
        label_cache_dir: str | Path | None = None,
        placement: Placement | None = None,
    ) -> Translator:
        placement = placement or resolve_placement(device, dtype)
        return cls(
            MarianDirection.from_pretrained(to_english, placement),
            MarianDirection.from_pretrained(from_english, placement),
            language=language,
            num_beams=num_beams,
            label_cache_dir=Path(label_cache_dir) if label_cache_dir else None,
        )

    @property
    def name(self) -> str:
        return f"{self.to_english_model.name} + {self.from_english_model.name}"

    def to_english(self, texts: Sequence[str]) -> list[str]:
        """Questions in :attr:`language`, in English."""
        return self.to_english_model.translate(texts, num_beams=self.num_beams)

    def from_english(self, texts: Sequence[str]) -> list[str]:
        """English answers, in :attr:`language`; empty texts stay empty."""
        translated = iter(
            self.from_english_model.translate(
                [text for text in texts if text.strip()], num_beams=self.num_beams
            )
        )
        return [next(translated) if text.strip() else "" for text in texts]

    def labels_from_english(self, labels: Sequence[str]) -> list[str]:
        """ViLT labels in :attr:`language`, each translated once per loaded pair."""
        with self._lock:
            missing = list(dict.fromkeys(label for label in labels if label not in self._labels))
        if missing:
            found = self.from_english(missing)
            with self._lock:
                self._labels.update(zip(missing, found))
        with self._lock:
            return [self._labels[label] for label in labels]

    def warm_labels(self, labels: Sequence[str]) -> int:
        """Translate a whole answer vocabulary now (or read it from the disk cache).

        Returns how many labels were translated rather than found; call it once per ViLT
        model, e.g. while the page starts, so answers do not wait for their labels.
        """
        labels = list(dict.fromkeys(str(label) for label in labels))
        cache_file = self._label_cache_file(labels)
        if cache_file is not None and cache_file.is_file():
            try:
                stored = json.loads(cache_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                logger.warning("ignoring unreadable label cache %s: %s", cache_file, err)
            else:
                if isinstance(stored, dict) and all(label in stored for label in labels):
                    with self._lock:
                        self._labels.update({label: str(stored[label]) for label in labels})
                    return 0
        with self._lock:
            missing = [label for label in labels if label not in self._labels]
        with timed() as watch:
            for start in range(0, len(missing), LABEL_BATCH_SIZE):
                self.labels_from_english(missing[start : start + LABEL_BATCH_SIZE])
        logger.info("translated %d answer labels in %.1f s", len(missing), watch.seconds)
        if cache_file is not None:
            with self._lock:
                table = {label: self._labels[label] for label in labels}
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                partial = cache_file.with_suffix(".tmp")
                partial.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
                partial.replace(cache_file)  # never leave a half-written cache behind
            except OSError as err:
                logger.warning("could not keep the label translations in %s: %s", cache_file, err)
        return len(missing)

    def _label_cache_file(self, labels: Sequence[str]) -> Path | None:
        if self.label_cache_dir is None:
            return None
        key = hashlib.sha256()
        for direction in (self.to_english_model, self.from_english_model):
            key.update(_model_identity(direction).encode())
        key.update(json.dumps(list(labels), ensure_ascii=False).encode())
        return self.label_cache_dir / f"labels-{self.language}-{key.hexdigest()[:24]}.json"


def _model_identity(direction: MarianDirection) -> str:
    """What a label cache depends on: the checkpoint's name and revision (or file state)."""
    identity = [direction.name, str(getattr(direction.model.config, "_commit_hash", "") or "")]
    folder = Path(direction.name)
    if folder.is_dir():
        for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            stat = weights.stat()
            identity.append(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(identity)


def default_label_cache_dir() -> Path | None:
    """``$VQA_TRANSLATION_CACHE``, else ``$XDG_CACHE_HOME/vqa-demo/label-translations``."""
    named = os.environ.get(LABEL_CACHE_ENV_VAR, "").strip()
    if named.lower() == "off":
        return None
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "vqa-demo" / "label-translations"


def _seq2seq_on_config(config):
    # What fit builds on the meta device to count parameters: the pair's own model class.
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_config(config)


def plan_pair(choice: TranslationChoice, *, device: str = "auto", dtype: str = "auto", memory=None):
    """Where both directions of ``choice`` fit together (float only), or one sentence why not."""
    import gc

    from .fit import Footprint, measure_checkpoint, plan_load
    from .memory import read_memory

    assert choice.to_english is not None and choice.from_english is not None
    gc.collect()  # memory freed by the models' loads counts only once Python lets go of it
    parts = [
        measure_checkpoint(source, _seq2seq_on_config)
        for source in (choice.to_english, choice.from_english)
    ]
    both = None
    if all(part is not None for part in parts):
        both = Footprint(
            source=f"{choice.to_english} + {choice.from_english}",
            linear_params=sum(part.linear_params for part in parts),
            linear_rows=sum(part.linear_rows for part in parts),
            other_params=sum(part.other_params for part in parts),
            largest_param=max(part.largest_param for part in parts),
            stored_bytes=max(part.stored_bytes for part in parts),
            counted_from=parts[0].counted_from,
        )
    # Marian models are loaded in float: int8 was never measured on them here.
    return plan_load(
        "Translation",
        both,
        device=device,
        dtype=dtype,
        quantization="none",
        instead="--translation off",
        memory=memory or read_memory,
    )


def load_translator(
    requested: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    label_cache_dir: str | Path | None = None,
    memory=None,
) -> tuple[Translator | None, TranslationChoice | None, str | None]:
    """Resolve and load the translation pair; failures are returned, not raised.

    Returns ``(translator, choice, error)``: no translator and no error when translation
    is off, no translator and a person's sentence when it was asked for and failed to load.
    ``label_cache_dir`` defaults to :func:`default_label_cache_dir`. Like the models, the
    pair is planned before it loads (:mod:`vqa_core.fit`): when what is left of the memory
    cannot hold it, translation stays off and the error says why.
    """
    try:
        choice = resolve_translation(requested)
        if not choice.enabled:
            return None, choice, None
        assert choice.to_english is not None and choice.from_english is not None
        plan = plan_pair(choice, device=device, dtype=dtype, memory=memory)
        if not plan.fits:
            logger.error("Translation not loaded: %s", plan.reason)
            return None, choice, plan.reason
        logger.info("Translation: %s: %s", plan.describe(), plan.reason)
        translator = Translator.from_pretrained(
            choice.to_english,
            choice.from_english,
            language=choice.language,
            label_cache_dir=label_cache_dir or default_label_cache_dir(),
            placement=plan.placement,
        )
    except VQAError as err:
        logger.error("Translation unavailable: %s", err)
        return None, None, str(err)
    return translator, choice, None


@dataclass(frozen=True)
class QuestionRoute:
    """What the models get for a question, and what the page must say about it.

    ``status`` is ``as_is`` (English, or nothing to translate), ``translated`` (``english``
    is the translation), ``not_understood`` (no translation available: no model is asked)
    or ``translation_failed`` (translation was there but failed on this question).
    """

    original: str
    script: str
    status: str
    english: str | None
    error: str | None = None

    @property
    def answerable(self) -> bool:
        return self.english is not None

    @property
    def translated(self) -> bool:
        return self.status == "translated"


def route_questions(questions: Sequence[str], translator: Translator | None) -> list[QuestionRoute]:
    """Decide what the models are asked for each question: it as is, its translation, or nothing.

    Questions to translate go through the pair in one batch. Raises :class:`QuestionError`
    for an empty or over-long question, like every answerer; clean questions first to keep
    one bad question from failing its batch.
    """
    texts = [clean_question(question) for question in questions]
    scripts = [question_script(text) for text in texts]
    routes: list[QuestionRoute | None] = [None] * len(texts)
    to_translate = []
    for i, (text, script) in enumerate(zip(texts, scripts)):
        if is_understood(script):
            routes[i] = QuestionRoute(text, script, "as_is", text)
        elif translator is None or script != translator.language:
            routes[i] = QuestionRoute(text, script, "not_understood", None)
        else:
            to_translate.append(i)
    if to_translate:
        try:
            englishes = translator.to_english([texts[i] for i in to_translate])
        except InferenceError as err:
            logger.error("Translating questions failed: %s", err)
            englishes, failure = [""] * len(to_translate), str(err)
        else:
            failure = "the translation came back empty"
        for i, english in zip(to_translate, englishes):
            if english:
                routes[i] = QuestionRoute(texts[i], scripts[i], "translated", english)
            else:
                routes[i] = QuestionRoute(texts[i], scripts[i], "translation_failed", None, failure)
    return [route for route in routes if route is not None]


def route_question(question: str, translator: Translator | None) -> QuestionRoute:
    """:func:`route_questions` for one question."""
    return route_questions([question], translator)[0]
