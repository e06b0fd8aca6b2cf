"""English sentences the core writes for a person, each named so a page can reword it.

The core says what it decided in English (the log, the CLI, the English page). A page in
another language finds the same sentence by its ``code`` in its own language file and fills
it with ``values``; a value may itself be a :class:`Sentence` (the memory a plan had), worded
the same way. This is how :class:`vqa_core.errors.VQAError` carries its code, for sentences
that are not errors: a plan's reasons, a model choice's reason.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Sentence"]


@dataclass(frozen=True)
class Sentence:
    """``text`` in English; ``code`` names it, ``values`` (name, value pairs) fill it in."""

    text: str
    code: str
    values: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, code: str, text: str, **values: object) -> Sentence:
        return cls(text, code, tuple(values.items()))

    def __str__(self) -> str:
        return self.text
