"""Which writing system a question is in, cheaply: enough to know the models cannot read it.

ViLT's BERT tokenizer, its answer vocabulary and BLIP-2's OPT all learnt English, so a
question in another script gets a confident answer to a question the model never saw. The
check counts letters by the script Unicode names them with; digits, punctuation, spaces and
emoji carry no language and are ignored, so "ما لون الشكل؟ 3" is Arabic and "2 + 2?" is
no script at all. It tells scripts apart, not languages: French is Latin script and passes;
Persian and Urdu are Arabic script.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = [
    "ARABIC",
    "LATIN",
    "NO_LETTERS",
    "OTHER",
    "ScriptCount",
    "count_scripts",
    "question_script",
    "is_understood",
]

ARABIC = "ar"
LATIN = "latin"
OTHER = "other"
NO_LETTERS = "none"

# A question is in a script when at least this share of its letters are; below it for every
# script, the mixture is "other" (mostly-foreign text with an English word is still foreign).
MAJORITY = 0.5


@dataclass(frozen=True)
class ScriptCount:
    """Letters of a text by script."""

    latin: int = 0
    arabic: int = 0
    other: int = 0

    @property
    def letters(self) -> int:
        return self.latin + self.arabic + self.other


def _letter_script(char: str) -> str | None:
    if not unicodedata.category(char).startswith("L"):
        return None  # digits, punctuation, symbols, marks, spaces
    # Unicode names every letter after its script ("LATIN SMALL LETTER E WITH ACUTE",
    # "ARABIC LETTER ALEF", "ARABIC LETTER PEH"); presentation forms keep the prefix too.
    name = unicodedata.name(char, "")
    if name.startswith("LATIN"):
        return LATIN
    if name.startswith("ARABIC"):
        return ARABIC
    return OTHER


def count_scripts(text: str) -> ScriptCount:
    """Count ``text``'s letters by script, ignoring everything that is not a letter."""
    latin = arabic = other = 0
    for char in text:
        script = _letter_script(char)
        if script == LATIN:
            latin += 1
        elif script == ARABIC:
            arabic += 1
        elif script == OTHER:
            other += 1
    return ScriptCount(latin=latin, arabic=arabic, other=other)


def question_script(text: str) -> str:
    """The script most of ``text``'s letters are in: ``"ar"``, ``"latin"``, ``"other"`` or ``"none"``.

    Ties and mixtures with no majority resolve away from Latin, since a question the models
    half-read is one they answer wrongly with full confidence.
    """
    counts = count_scripts(text)
    if counts.letters == 0:
        return NO_LETTERS
    if counts.latin / counts.letters > MAJORITY:
        return LATIN
    if counts.arabic / counts.letters >= MAJORITY:
        return ARABIC
    return OTHER


def is_understood(script: str) -> bool:
    """Whether English-only models can read a question in ``script`` as it is."""
    # A question with no letters ("2 + 2?") has nothing to translate; pass it through.
    return script in (LATIN, NO_LETTERS)
