"""Encode: read each sentence of an article within its passage, reusing what was read before.

The model reads a window of neighbouring sentences in one pass (see `index.embeddings`). What
it makes of a sentence depends only on the sentence and its passage, so encodings are cached
under a key of both: an article added again (after a removal, by another process, or read
again under another ranking) costs no model time. The key also names a scope, normally the
chat: were the cache shared, the time an add takes would tell a stranger whether another chat
holds that text.
"""

from __future__ import annotations

import hashlib

from index.embeddings import Embedder
from index.records import Encoding
from index.storage.base import Storage


def encoding_key(scope: str, passage: str, start: int, end: int) -> str:
    """A sentence's encoding depends on its text and on the passage it was read in; it is
    reused within its scope (normally a chat) only."""
    return hashlib.sha1(f"{scope}\0{start}:{end}\0{passage}".encode()).hexdigest()


class SentenceEncoder:
    """Sentences of one text → (passage numbers, encoding keys, encodings, new encodings)."""

    def __init__(self, embedder: Embedder, storage: Storage) -> None:
        self.embedder = embedder
        self.storage = storage

    @property
    def model(self) -> str:
        return self.embedder.model_key

    def run(
        self, scope: str, text: str, bounds: list[tuple[int, int]]
    ) -> tuple[list[int], list[str], list[Encoding], dict[str, Encoding]]:
        """For each sentence `(start, end)` of `text`, added within cache `scope` (normally its
        chat): the passage it was read in, its encoding key and its encoding; and the encodings
        the cache did not hold (to store with it)."""
        windows = self.embedder.passages(text, bounds)
        keys, passage_of, local_spans, passage_texts = [], [], [], []
        for number, (first, last) in enumerate(windows):
            offset = bounds[first][0]
            passage = text[offset : bounds[last - 1][1]]
            local = [(start - offset, end - offset) for start, end in bounds[first:last]]
            passage_texts.append(passage)
            local_spans.append(local)
            keys += [encoding_key(scope, passage, start, end) for start, end in local]
            passage_of += [number] * len(local)
        cached = self.storage.cached_encodings(self.model, keys)
        missing = sorted({passage_of[i] for i, key in enumerate(keys) if key not in cached})
        new: dict[str, Encoding] = {}
        if missing:
            fresh = self.embedder.encode_passages(
                [passage_texts[p] for p in missing], [local_spans[p] for p in missing]
            )
            for number, encodings in zip(missing, fresh, strict=True):
                for (start, end), encoding in zip(local_spans[number], encodings, strict=True):
                    new[encoding_key(scope, passage_texts[number], start, end)] = encoding
        known = cached | new
        return passage_of, keys, [known[key] for key in keys], new
