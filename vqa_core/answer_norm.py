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


# The reference evaluator's table, entry by entry as "word:what it becomes", quirks kept:
# "somebody'd" becomes "somebodyd", "she's" maps to itself, "twas" gains an apostrophe in
# front, and ordinary words such as "well", "were", "shes" or "whore" are left alone. Its
# capitalised keys ("Id've", "I'dve", "Im", "Ive") are left out: the word pass lower-cases
# every word first, so they can never match.
_CONTRACTION_TABLE = """
aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've
couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've
hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's
howd:how'd howll:how'll hows:how's isnt:isn't itd:it'd itd've:it'd've it'dve:it'd've
itll:it'll let's:let's maam:ma'am mightnt:mightn't mightnt've:mightn't've
mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've neednt:needn't
notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at
'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's
shouldve:should've shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've
somebody'd:somebodyd somebodyd've:somebody'd've somebody'dve:somebody'd've
somebodyll:somebody'll somebodys:somebody's someoned:someone'd someoned've:someone'd've
someone'dve:someone'd've someonell:someone'll someones:someone's somethingd:something'd
somethingd've:something'd've something'dve:something'd've somethingll:something'll
thats:that's thered:there'd thered've:there'd've there'dve:there'd've therere:there're
theres:there's theyd:they'd theyd've:they'd've they'dve:they'd've theyll:they'll
theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've we'dve:we'd've
weve:we've werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've
whens:when's whered:where'd wheres:where's whereve:where've whod:who'd whod've:who'd've
who'dve:who'd've wholl:who'll whos:who's whove:who've whyll:why'll whyre:why're whys:why's
wont:won't wouldve:would've wouldnt:wouldn't wouldnt've:wouldn't've wouldn'tve:wouldn't've
yall:y'all yall'll:y'all'll y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've
y'all'dve:y'all'd've youd:you'd youd've:you'd've you'dve:you'd've youll:you'll
youre:you're youve:you've
"""


def _contractions() -> dict[str, str]:
    return dict(entry.split(":", 1) for entry in _CONTRACTION_TABLE.split())


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
