"""Spelling: a question typed without umlauts is searched as the library spells it.

People type "Tuerkei" or "Strasse" on keyboards without ä, ö, ü or ß, and Swiss German
writes "ss" where German writes "ß". The model reads "Tuerkei" and "Türkei" as different
words, so such a question misses the sentences that hold its words. A word of the question
that the chat's articles do not contain, but whose umlaut or ß spelling they do, is searched
in that spelling. Words the library knows are never changed ("neue" stays "neue").
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from index.answer.chat_cache import ChatCache
from index.storage.base import Storage

# Spellings without umlauts or ß, and what they may stand for.
_STAND_INS = {"ae": "ä", "oe": "ö", "ue": "ü", "ss": "ß", "ß": "ss"}
_STAND_IN = re.compile("|".join(_STAND_INS))
_WORD = re.compile(r"\w+")
# A word with more stand-ins than this is left as it is (2^n spellings would be tried).
_MOST_STAND_INS = 4


class SpellingMatcher:
    """Rewrites a question's words into the spelling the chat's articles use (see above)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.vocabulary: ChatCache[frozenset[str]] = ChatCache(storage, self._words)

    def run(self, chat_id: str, question: str) -> str:
        question = unicodedata.normalize("NFC", question)
        if not _STAND_IN.search(question.lower()):
            return question  # nothing to respell: the library need not be read
        known = self.vocabulary.get(chat_id)
        return _WORD.sub(lambda word: _respelt(word.group(), known), question)

    def _words(self, chat_id: str) -> frozenset[str]:
        """The words (lower case) of the chat's articles."""
        return frozenset(
            word
            for article in self.storage.articles(chat_id)
            for word in _WORD.findall(article.text.lower())
        )


def _respelt(word: str, known: frozenset[str]) -> str:
    lower = word.lower()
    if lower in known or len(lower) != len(word):
        return word
    places = list(_STAND_IN.finditer(lower))
    if not places or len(places) > _MOST_STAND_INS:
        return word
    for choice in itertools.product((False, True), repeat=len(places)):
        if not any(choice):
            continue
        spelt, end = [], 0
        for place, swap in zip(places, choice, strict=True):
            spelt += [word[end : place.start()], _swap(word[place.start() : place.end()], swap)]
            end = place.end()
        candidate = "".join(spelt) + word[end:]
        if candidate.lower() in known:
            return candidate
    return word


def _swap(stand_in: str, swap: bool) -> str:
    """`stand_in` as the letter it stands for, keeping an upper-case first letter."""
    if not swap:
        return stand_in
    letter = _STAND_INS[stand_in.lower()]
    return letter.upper() if stand_in[0].isupper() and letter != "ß" else letter
