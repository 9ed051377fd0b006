"""How records become table rows and back, the same way in every engine.

Encodings are stored as raw little-endian arrays: the sentence vector in float32, token ids and
spans in int32, token vectors in float16 (half the size, the same ranking).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from index.records import Article, ArticleDraft, ArticleExport, Encoding, Sentence, TokenVectors


def encode(encoding: Encoding) -> tuple[bytes, bytes, bytes, bytes]:
    tokens = encoding.tokens
    return (
        encoding.vector.astype(np.float32).tobytes(),
        tokens.ids.astype(np.int32).tobytes(),
        tokens.spans.astype(np.int32).tobytes(),
        tokens.vectors.astype(np.float16).tobytes(),
    )


def decode(blobs: Sequence[bytes]) -> Encoding:
    vector = np.frombuffer(blobs[0], dtype=np.float32)
    ids = token_ids(blobs[1])
    spans = np.frombuffer(blobs[2], dtype=np.int32).reshape(-1, 2)
    vectors = np.frombuffer(blobs[3], dtype=np.float16).reshape(len(ids), len(vector))
    return Encoding(vector, TokenVectors(ids, spans, vectors, np.ones(len(ids), dtype=bool)))


def token_ids(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.int32)


def vectors(blobs: Sequence[bytes]) -> np.ndarray:
    """Sentence vectors stored as float32 blobs, as one matrix."""
    return np.array([np.frombuffer(b, dtype=np.float32) for b in blobs], dtype=np.float32)


def now() -> str:
    """The time an article is added, as stored."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def draft_columns(draft: ArticleDraft) -> tuple:
    """An article's own columns, from title to publication date."""
    return (
        draft.title, draft.text, draft.language, draft.source, draft.url, draft.canonical_url,
        draft.author, draft.published,
    )  # fmt: skip


def article_columns(article: Article, request: str | None) -> tuple:
    """Every stored column of an article but its id, in table order (for imports)."""
    return (
        article.chat_id, article.number, article.title, article.text, article.language,
        article.source, article.url, article.canonical_url, article.author, article.published,
        article.added_at, article.added_by, article.text_hash, request,
    )  # fmt: skip


def export(
    article: Article,
    request: str | None,
    sentences: list[Sentence],
    readings: list[tuple],
) -> ArticleExport:
    """An article for another engine. `readings` are rows of (sentence id, model, passage,
    key, *encoding blobs): how each model read each sentence."""
    by_sentence: dict[int, list[tuple[str, int, str]]] = {s.id: [] for s in sentences}
    encodings: dict[str, dict[str, Encoding]] = {}
    for sentence_id, model, passage, key, *blobs in readings:
        by_sentence[sentence_id].append((model, passage, key))
        encodings.setdefault(model, {})[key] = decode(blobs)
    return ArticleExport(
        article=article,
        request=request,
        sentences=sentences,
        readings=[by_sentence[s.id] for s in sentences],
        encodings=encodings,
    )
