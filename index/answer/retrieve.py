"""Find the sentences of a chat's library that answer a question.

Plain sentence embeddings find the right passage but often pick the wrong sentence in it, and
a lexical ranker cannot help across languages. So candidates found by embedding similarity are
re-ranked with three pieces of evidence, all from the same multilingual model:

- `sentence`: how well the question's words are matched, one by one, by the words of the
  sentence read in context (late interaction: every question token takes its most similar
  sentence token; rare words count more, question words and punctuation not at all, and a
  word cut into several tokens counts once). This
  works across languages because the token vectors are multilingual: "Kremlin" finds "Kreml".
- `passage`: the same matching against the sentence's whole passage, so a sentence whose
  subject is named one sentence earlier ("He said ...") is still found.
- `vector`: the similarity of the sentence's in-context vector to the question's.

The score is their weighted mean, a number on the scale of a cosine that is comparable across
questions, so one threshold decides "no answer". The constants below were chosen on XQuAD dev
and are deliberately few and round.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from index.answer.chat_cache import ChatCache
from index.answer.query import Query
from index.records import Hit, TokenVectors
from index.storage.base import Storage

# How many embedding neighbours are re-ranked.
CANDIDATES = 40
# Weights of the evidence; measured on XQuAD dev (see README), robust to +-0.1 changes.
WEIGHT_SENTENCE = 0.6
WEIGHT_PASSAGE = 0.2
WEIGHT_VECTOR = 0.2
# In a follow-up, sentences of the earlier answer's articles get this much extra score.
FOLLOW_UP_BONUS = 0.05
# Words match less closely across languages (English question, German article) for the same
# meaning; this much extra score keeps one confidence threshold right for both cases and lets
# articles in another language compete fairly in a mixed library.
CROSS_LANGUAGE_BONUS = 0.05
# A question token matched at least this well marks the sentence word for highlighting.
HIGHLIGHT_SIMILARITY = 0.6


def _spread_over_words(weights: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Token weights under which each word counts once, as much as its rarest token.

    Tokenizers cut rare words ("Probleminstanz") into several tokens; without this a word
    would count as often as it has tokens."""
    spread = np.zeros_like(weights)
    for word in np.unique(words[weights > 0]):
        pieces = (words == word) & (weights > 0)
        spread[pieces] = weights[pieces].max() / pieces.sum()
    return spread


class WordRarity:
    """Inverse document frequency of token ids per chat, computed when first needed and again
    whenever the chat's articles have changed."""

    def __init__(self, storage: Storage, model_key: str) -> None:
        self.storage = storage
        self.model_key = model_key
        self._tables: ChatCache[tuple[int, Counter]] = ChatCache(storage, self._count)

    def weights(self, chat_id: str, ids: np.ndarray) -> np.ndarray:
        total, counts = self._tables.get(chat_id)
        return np.array(
            [math.log(1 + total / (1 + counts.get(int(i), 0))) for i in ids], dtype=np.float32
        )

    def _count(self, chat_id: str) -> tuple[int, Counter]:
        """How many sentences the chat has, and in how many of them each token id occurs."""
        counts: Counter = Counter()
        sentences = self.storage.chat_token_ids(chat_id, self.model_key)
        for token_ids in sentences:
            counts.update(set(token_ids.tolist()))
        return len(sentences), counts


def _match(
    query: np.ndarray, weights: np.ndarray, tokens: TokenVectors
) -> tuple[float, np.ndarray]:
    """Weighted mean of each query token's best similarity, and which token it matched."""
    total = weights.sum()
    if len(tokens.ids) == 0 or total <= 0:  # total 0: a question of invisible characters only
        return 0.0, np.zeros(len(weights), dtype=np.int64)
    similarity = query @ np.asarray(tokens.vectors, dtype=np.float32).T
    best = similarity.argmax(axis=1)
    score = float((similarity[np.arange(len(best)), best] * weights).sum() / total)
    return score, best


def _highlights(
    query: np.ndarray, weights: np.ndarray, tokens: TokenVectors
) -> tuple[tuple[int, int], ...]:
    """Character spans of sentence tokens that a telling question word matched well.

    Only the rarer half of the question's words count, so "with" or "the" are never bold."""
    if len(tokens.ids) == 0 or not (weights > 0).any():
        return ()
    similarity = query @ np.asarray(tokens.vectors, dtype=np.float32).T
    best = similarity.argmax(axis=1)
    telling = weights >= np.median(weights[weights > 0])
    good = telling & (similarity[np.arange(len(best)), best] >= HIGHLIGHT_SIMILARITY)
    spans = sorted({tuple(int(x) for x in tokens.spans[i]) for i in best[good]})
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return tuple(merged)


class Retriever:
    """Ranks a chat's sentences for a query; see the module docstring for how."""

    def __init__(self, storage: Storage, model_key: str, contextual: bool) -> None:
        self.storage = storage
        self.model_key = model_key
        self.contextual = contextual
        self.rarity = WordRarity(storage, model_key)

    def run(self, chat_id: str, query: Query, limit: int) -> list[Hit]:
        """The `limit` best sentences of the chat for `query`, best first."""
        scores, ids = self.storage.search(chat_id, self.model_key, query.vector, CANDIDATES)
        if not self.contextual:
            return [Hit(int(i), float(s)) for s, i in list(zip(scores, ids, strict=True))[:limit]]
        mates = self.storage.passage_mates(self.model_key, ids)
        sources = self.storage.sentence_sources(ids)
        tokens = self.storage.sentence_tokens(
            self.model_key, {m for group in mates.values() for m in group}
        )
        weights = self.rarity.weights(chat_id, query.tokens.ids) * query.tokens.content
        weights = weights * query.emphasis
        if weights.sum() == 0:  # a question of nothing but question words: take all
            weights = query.emphasis.copy()
        word_weights = _spread_over_words(weights, query.words)
        matrix = query.tokens.vectors.astype(np.float32)
        passage_scores: dict[tuple[int, ...], float] = {}
        ranked = []
        for vector_score, sentence_id in zip(scores, ids, strict=True):
            sentence_id = int(sentence_id)
            if sentence_id not in tokens or sentence_id not in sources:
                continue
            group = tuple(mates.get(sentence_id, [sentence_id]))
            if group not in passage_scores:
                passage_tokens = _concatenate([tokens[m] for m in group if m in tokens])
                passage_scores[group] = _match(matrix, word_weights, passage_tokens)[0]
            sentence_score = _match(matrix, word_weights, tokens[sentence_id])[0]
            score = (
                WEIGHT_SENTENCE * sentence_score
                + WEIGHT_PASSAGE * passage_scores[group]
                + WEIGHT_VECTOR * float(vector_score)
                + self._bonus(query, *sources[sentence_id])
            )
            ranked.append((score, sentence_id))
        ranked.sort(reverse=True)
        return [
            Hit(sentence_id, score, _highlights(matrix, weights, tokens[sentence_id]))
            for score, sentence_id in ranked[:limit]
        ]

    @staticmethod
    def _bonus(query: Query, article_id: int, language: str) -> float:
        bonus = FOLLOW_UP_BONUS if article_id in query.prefer_articles else 0.0
        return bonus + (CROSS_LANGUAGE_BONUS if language != query.language else 0.0)


def _concatenate(parts: list[TokenVectors]) -> TokenVectors:
    return TokenVectors(
        ids=np.concatenate([p.ids for p in parts]),
        spans=np.concatenate([p.spans for p in parts]),
        vectors=np.concatenate([p.vectors for p in parts]),
        content=np.concatenate([p.content for p in parts]),
    )
