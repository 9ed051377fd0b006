"""Which language a text is written in (ISO 639-1 code), for splitting and lexical matching."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

_SAMPLE_CHARS = 3000


@cache
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detectable_languages() -> frozenset[str]:
    """Every language `detect_language` can return."""
    return frozenset(_identifier().nb_classes)


def detect_language(text: str, among: Collection[str] | None = None) -> str:
    """The most likely language of `text`, e.g. "de" or "en".

    `among` restricts the answer to languages that make sense here: short questions such as
    "Trump Iran?" are ambiguous, but not between the languages of the chat's articles.
    """
    ranking = _identifier().rank(text[:_SAMPLE_CHARS])
    if among:
        for language, _probability in ranking:
            if language in among:
                return language
    return ranking[0][0]
