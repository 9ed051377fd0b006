"""Find the sentences of a chat's library that answer a question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.embeddings import Embedder
from index.vectors import VectorIndexes

_CANDIDATES = 256


@dataclass(frozen=True)
class Hit:
    sentence_id: int
    score: float


class Retriever:
    """Ranks a chat's sentences for a question by the similarity of their embeddings."""

    def __init__(self, embedder: Embedder, vectors: VectorIndexes) -> None:
        self.embedder = embedder
        self.vectors = vectors

    def search(self, chat_id: str, question: str, limit: int) -> list[Hit]:
        query = self.embedder.embed_queries([question])[0]
        scores, ids = self.vectors.search(chat_id, query, max(limit, _CANDIDATES))
        order = np.argsort(-scores, kind="stable")[:limit]
        return [Hit(int(ids[i]), float(scores[i])) for i in order]
