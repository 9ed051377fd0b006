"""How records become table rows and back, the same way in every engine.

Encodings are stored as raw little-endian arrays, in one of three formats (a column says
which):

- FULL: the sentence vector in float32, token ids and spans in int32, token vectors in float16.
  What a model's first tokens are kept as, and what older versions wrote.
- COMPACT: the sentence vector in int8 with a float32 scale, token ids in int32, spans in
  uint16, token vectors as product-quantiser codes (see `index.storage.compact`). Written by
  the previous version; still read.
- PACKED: as COMPACT, but token ids in three bytes (every vocabulary here is under 2**24) and
  each span as two bytes: how far it starts after the previous token's start, and its length.
  What is written once the model's codebook has been learnt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from index.records import Article, ArticleDraft, ArticleExport, Encoding, Sentence, TokenVectors
from index.storage.compact import TokenCodebook

FULL, COMPACT, PACKED = 0, 1, 2
_ID_BYTES = 3
_LARGEST_PACKED_ID = 2 ** (8 * _ID_BYTES) - 1
_LARGEST_PACKED_STEP = np.iinfo(np.uint8).max


def encode(
    encoding: Encoding, codebook: TokenCodebook | None
) -> tuple[bytes, bytes, bytes, bytes, int]:
    """(vector, token ids, token spans, token vectors, format) of an encoding: PACKED when
    the model has a codebook (and the tokens fit the packing, as all but absurd ones do),
    else FULL."""
    tokens = encoding.tokens
    steps = _span_steps(tokens.spans)
    if (
        codebook is None
        or steps is None
        or (tokens.ids.size and tokens.ids.max() > _LARGEST_PACKED_ID)
    ):
        return (
            encoding.vector.astype(np.float32).tobytes(),
            tokens.ids.astype(np.int32).tobytes(),
            tokens.spans.astype(np.int32).tobytes(),
            tokens.vectors.astype(np.float16).tobytes(),
            FULL,
        )
    scale = max(float(np.abs(encoding.vector).max()), 1e-9) / 127
    vector = np.round(encoding.vector / scale).astype(np.int8)
    ids = tokens.ids.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :_ID_BYTES]
    return (
        np.float32(scale).tobytes() + vector.tobytes(),
        ids.tobytes(),
        steps.tobytes(),
        codebook.encode(tokens.vectors),
        PACKED,
    )


def _span_steps(spans: np.ndarray) -> np.ndarray | None:
    """Token spans as uint8 (start after the previous token's start, length) pairs; None when
    a token starts before its predecessor or a step does not fit a byte."""
    if not spans.size:
        return np.zeros((0, 2), dtype=np.uint8)
    starts = spans[:, 0].astype(np.int64)
    steps = np.stack([np.diff(starts, prepend=0), spans[:, 1] - starts], axis=1)
    if steps.min() < 0 or steps.max() > _LARGEST_PACKED_STEP:
        return None
    return steps.astype(np.uint8)


def _unpack_spans(blob: bytes) -> np.ndarray:
    steps = np.frombuffer(blob, dtype=np.uint8).reshape(-1, 2)
    spans = np.empty(steps.shape, dtype=np.int32)
    np.cumsum(steps[:, 0], dtype=np.int32, out=spans[:, 0])
    spans[:, 1] = spans[:, 0] + steps[:, 1]
    return spans


def decode(blobs: Sequence, codebook: TokenCodebook | None) -> Encoding:
    """An encoding from its stored (vector, token ids, token spans, token vectors, format).

    A COMPACT or PACKED row needs its model's codebook, which exists whenever such a row
    does."""
    return decode_rows([(None, *blobs)], codebook)[None]


def decode_rows(rows: Sequence[Sequence], codebook: TokenCodebook | None) -> dict:
    """Encodings by key from stored rows of (key, *the columns `decode` reads), with the token
    codes of all of them rebuilt in one call of the codebook (a question reads some sixty)."""
    codes = [bytes(row[4]) for row in rows if row[5] != FULL]
    if codes and codebook is None:
        raise RuntimeError("Compact encodings are stored without their model's codebook.")
    rebuilt = iter(())
    if codes:
        counts = [len(blob) // codebook.code_size for blob in codes]
        rebuilt = iter(np.split(codebook.decode(b"".join(codes)), np.cumsum(counts)[:-1]))
    return {row[0]: _decode(row[1:], next(rebuilt) if row[5] != FULL else None) for row in rows}


def _decode(blobs: Sequence, rebuilt: np.ndarray | None) -> Encoding:
    """One row, its token vectors already `rebuilt` from their codes unless stored in full."""
    vector_blob, ids_blob, spans_blob, tokens_blob, form = blobs
    vector = sentence_vector(vector_blob, form)
    ids = token_ids(ids_blob, form)
    if form == FULL:
        spans = np.frombuffer(spans_blob, dtype=np.int32).reshape(-1, 2)
        vectors = np.frombuffer(tokens_blob, dtype=np.float16).reshape(len(ids), len(vector))
    elif form == PACKED:
        spans, vectors = _unpack_spans(spans_blob), rebuilt
    else:
        spans = np.frombuffer(spans_blob, dtype=np.uint16).astype(np.int32).reshape(-1, 2)
        vectors = rebuilt
    return Encoding(vector, TokenVectors(ids, spans, vectors, np.ones(len(ids), dtype=bool)))


def sentence_vector(blob: bytes, form: int) -> np.ndarray:
    """A stored sentence vector as float32."""
    if form != FULL:
        scale = np.frombuffer(blob[:4], dtype=np.float32)[0]
        return np.frombuffer(blob[4:], dtype=np.int8).astype(np.float32) * scale
    return np.frombuffer(blob, dtype=np.float32)


def full_token_vectors(blob: bytes, dimension: int) -> np.ndarray:
    """The token vectors of a FULL row (what a codebook is learnt from)."""
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, dimension)


def token_ids(blob: bytes, form: int) -> np.ndarray:
    """Stored token ids as int32."""
    if form != PACKED:
        return np.frombuffer(blob, dtype=np.int32)
    packed = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _ID_BYTES)
    wide = np.zeros((len(packed), 4), dtype=np.uint8)
    wide[:, :_ID_BYTES] = packed
    return wide.view("<u4").reshape(-1).astype(np.int32)


def vectors(rows: Sequence[tuple[bytes, int]]) -> np.ndarray:
    """Stored sentence vectors, (blob, format) each, as one float32 matrix."""
    return np.array([sentence_vector(blob, form) for blob, form in rows], dtype=np.float32)


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
    codebooks: Callable[[str], TokenCodebook | None],
) -> ArticleExport:
    """An article for another engine. `readings` are rows of (sentence id, model, passage,
    key, *encoding columns): how each model read each sentence."""
    by_sentence: dict[int, list[tuple[str, int, str]]] = {s.id: [] for s in sentences}
    encodings: dict[str, dict[str, Encoding]] = {}
    for sentence_id, model, passage, key, *blobs in readings:
        by_sentence[sentence_id].append((model, passage, key))
        encodings.setdefault(model, {})[key] = decode(blobs, codebooks(model))
    return ArticleExport(
        article=article,
        request=request,
        sentences=sentences,
        readings=[by_sentence[s.id] for s in sentences],
        encodings=encodings,
    )
