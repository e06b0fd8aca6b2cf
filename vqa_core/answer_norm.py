"""Answer normalization as the official VQA evaluator does it.

The evaluator compares answers after two passes: punctuation (dropped or turned into a
space depending on context, periods removed unless part of a number) and words
(lower-cased, number words to digits, articles dropped, apostrophe-less contractions
restored). Scores are only comparable with published ones if these rules match exactly,
quirks included: the period rule is applied at most 32 times, as in the reference code.
"""

from __future__ import annotations

import re

__all__ = ["normalize_answer", "normalize_punctuation", "normalize_words"]

_PUNCTUATION = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
)  # fmt: skip
# A period not followed by a digit (the reference's lookbehind is mistyped as a lookahead
# on "<=", so "1.5" keeps its period but "5." loses it).
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
_REFERENCE_PERIOD_LIMIT = 32  # re.UNICODE passed as `count` in the reference implementation

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})


def _contractions() -> dict[str, str]:
    # Written as the restored forms; the key is the form with apostrophes removed.
    restored = """
    ain't aren't can't could've couldn't couldn't've couldn't've didn't doesn't don't
    hadn't hadn't've hasn't haven't he'd he'd've he's how'd how'll how's i'd've i'm i've
    isn't it'd it'd've it'll let's ma'am mightn't mightn't've might've mustn't must've
    needn't not've o'clock oughtn't 'ow's'at shan't she'd've she's should've shouldn't
    shouldn't've somebody'd somebody'd've somebody'll somebody's someone'd someone'd've
    someone'll someone's something'd something'd've something'll that's there'd
    there'd've there're there's they'd they'd've they'll they're they've twas wasn't
    we'd've we've weren't what'll what're what's what've when's where'd where's where've
    who'd who'd've who'll who're who's who've why'll why're why's won't would've wouldn't
    wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
    """.split()
    table = {word.replace("'", ""): word for word in restored}
    # Forms where a single apostrophe was dropped, as the reference also lists them.
    partial = {
        "couldnt've": "couldn't've", "couldn'tve": "couldn't've", "hadnt've": "hadn't've",
        "hadn'tve": "hadn't've", "hed've": "he'd've", "he'dve": "he'd've", "Im": "I'm",
        "Id've": "I'd've", "I'dve": "I'd've", "itd've": "it'd've", "it'dve": "it'd've",
        "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "shed've": "she'd've",
        "she'dve": "she'd've", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
        "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
        "someoned've": "someone'd've", "someone'dve": "someone'd've",
        "somethingd've": "something'd've", "something'dve": "something'd've",
        "thered've": "there'd've", "there'dve": "there'd've", "theyd've": "they'd've",
        "they'dve": "they'd've", "wed've": "we'd've", "we'dve": "we'd've",
        "whod've": "who'd've", "who'dve": "who'd've", "wouldnt've": "wouldn't've",
        "wouldn'tve": "wouldn't've", "yall'll": "y'all'll", "yall'd've": "y'all'd've",
        "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd've": "you'd've",
        "you'dve": "you'd've", "Ill": "I'll", "Ive": "I've", "Id": "I'd",
    }  # fmt: skip
    table.update(partial)
    # Ordinary words that an apostrophe-stripping rule would wrongly restore; the reference
    # lists only their capitalised forms ("Id", "Im", "Ive", "Ill"), which never match after
    # lower-casing, and leaves the rest out.
    for word in ("id", "id've", "im", "ive", "ill", "its", "lets", "wed", "well", "were",
                 "hell", "shell", "shed"):  # fmt: skip
        table.pop(word, None)
    table.pop("id've", None)
    return table


_CONTRACTIONS = _contractions()


def normalize_punctuation(text: str) -> str:
    """The evaluator's punctuation pass."""
    out = text
    for mark in _PUNCTUATION:
        if f"{mark} " in text or f" {mark}" in text or _DIGIT_COMMA.search(text):
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_REFERENCE_PERIOD_LIMIT)


def normalize_words(text: str) -> str:
    """The evaluator's word pass: lower case, number words, articles, contractions."""
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [word for word in words if word not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words)


def normalize_answer(text: str) -> str:
    """Normalize an answer the way the official VQA evaluator does before comparing."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return normalize_words(normalize_punctuation(text))
