"""A tiny Arabic<->English Marian pair, built here and taught a few easy-VQA sentences.

Random weights translate into noise, so each direction learns a dozen pairs by heart:
tests can then say exactly what an Arabic question must arrive as ("what color is the
shape?") and what ViLT's labels must come back as ("أحمر"). Both directions are saved with
``save_pretrained`` under ``ar-en/`` and ``en-ar/`` and load through the app's own path.
"""

from __future__ import annotations

from pathlib import Path

import torch

# Arabic questions a visitor might type about an easy-VQA picture, and their English.
QUESTIONS_AR_EN = [
    ("ما لون الشكل؟", "what color is the shape?"),
    ("ما الشكل في الصورة؟", "what shape is in the image?"),
    ("هل يوجد شكل أحمر؟", "is there a red shape?"),
    ("هل توجد دائرة في الصورة؟", "is there a circle in the image?"),
    ("ما لون المثلث؟", "what color is the triangle?"),
]
# easy-VQA's whole answer vocabulary, which is the tiny ViLT's label list.
ANSWERS_EN_AR = [
    ("yes", "نعم"),
    ("no", "لا"),
    ("circle", "دائرة"),
    ("rectangle", "مستطيل"),
    ("triangle", "مثلث"),
    ("red", "أحمر"),
    ("green", "أخضر"),
    ("blue", "أزرق"),
    ("black", "أسود"),
    ("gray", "رمادي"),
    ("teal", "أزرق مخضر"),
    ("brown", "بني"),
    ("yellow", "أصفر"),
]


def _fit(pairs, *, source_lang: str, target_lang: str, steps: int):
    from train.builders import MarianSize, build_marian, fit_marian

    sources = [source for source, _ in pairs]
    targets = [target for _, target in pairs]
    model, tokenizer = build_marian(
        sources,
        targets,
        source_lang=source_lang,
        target_lang=target_lang,
        size=MarianSize(d_model=64, ffn_dim=128, spm_vocab_size=120),
    )
    return fit_marian(model, tokenizer, pairs, steps=steps), tokenizer


def build_tiny_pair(folder: Path, *, steps: int = 250) -> Path:
    """Save a tiny ar->en and en->ar pair under ``folder`` (``ar-en/``, ``en-ar/``)."""
    threads = torch.get_num_threads()
    # A model this small trains fastest on one thread; on a busy 2-core machine two threads
    # made each step 60x slower.
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        into = _fit(QUESTIONS_AR_EN, source_lang="ar", target_lang="en", steps=steps)
        out_of = _fit(
            ANSWERS_EN_AR + [(en, ar) for ar, en in QUESTIONS_AR_EN],
            source_lang="en",
            target_lang="ar",
            steps=steps,
        )
    finally:
        torch.set_num_threads(threads)
    for name, (model, tokenizer) in (("ar-en", into), ("en-ar", out_of)):
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
    return folder
