"""The question as the retriever reads it: its vector and its words, with the earlier
question's words mixed in when it follows up on an answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from index.records import Encoding, TokenVectors


@dataclass(frozen=True)
class Query:
    """What to search for: a question's encoding, optionally with earlier questions' context.

    `emphasis` scales each token's weight (1 for the question itself, less for context);
    `words` numbers the word each token belongs to."""

    vector: np.ndarray
    tokens: TokenVectors
    emphasis: np.ndarray
    words: np.ndarray
    language: str
    prefer_articles: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, encoding: Encoding, language: str) -> Query:
        emphasis = np.ones(len(encoding.tokens.ids), dtype=np.float32)
        return cls(encoding.vector, encoding.tokens, emphasis, _words(encoding.tokens), language)

    def with_context(self, context: Encoding, weight: float, articles: frozenset[int]) -> Query:
        """This query read in the light of an earlier question (a follow-up).

        The earlier question's words weigh `weight` times as much as this one's in all, so a
        long earlier question never drowns out a short follow-up."""
        vector = self.vector + weight * context.vector
        tokens = TokenVectors(
            ids=np.concatenate([self.tokens.ids, context.tokens.ids]),
            spans=np.concatenate([self.tokens.spans, context.tokens.spans]),
            vectors=np.concatenate([self.tokens.vectors, context.tokens.vectors]),
            content=np.concatenate([self.tokens.content, context.tokens.content]),
        )
        context_words = _words(context.tokens)
        share = _count_words(self.words, self.tokens.content) / _count_words(
            context_words, context.tokens.content
        )
        emphasis = np.concatenate(
            [self.emphasis, np.full(len(context.tokens.ids), weight * share, dtype=np.float32)]
        )
        words = np.concatenate([self.words, self.words.max(initial=-1) + 1 + context_words])
        vector = vector / np.linalg.norm(vector)
        return Query(vector, tokens, emphasis, words, self.language, articles)


def _words(tokens: TokenVectors) -> np.ndarray:
    """Which word each token belongs to: the tokens of one word touch each other."""
    starts = np.ones(len(tokens.ids), dtype=bool)
    touching = tokens.spans[1:, 0] == tokens.spans[:-1, 1]
    starts[1:] = ~(touching & tokens.content[1:] & tokens.content[:-1])
    return np.cumsum(starts) - 1


def _count_words(words: np.ndarray, content: np.ndarray) -> int:
    return max(1, len(np.unique(words[content])))
