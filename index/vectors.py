"""FAISS indexes of sentence vectors, one per chat, persisted as one file per chat.

A chat's index maps FAISS ids to sentence ids of the SQLite store. The file is a cache of what
SQLite holds: when it is missing, unreadable or out of step with the database (the process
stopped between the two writes), it is rebuilt from the vectors cached in SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

# Rebuilds a chat's (sentence ids, vectors) from the database.
VectorSource = Callable[[str], tuple[np.ndarray, np.ndarray]]
# The sentence ids the database holds for a chat.
IdSource = Callable[[str], np.ndarray]


def _new_index(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


class VectorIndexes:
    """Per-chat exact inner-product search (vectors are normalised, so this is cosine)."""

    def __init__(
        self, folder: Path, dimension: int, vectors_of: VectorSource, ids_of: IdSource
    ) -> None:
        self.folder = folder
        self.dimension = dimension
        self._vectors_of = vectors_of
        self._ids_of = ids_of
        self._indexes: dict[str, faiss.IndexIDMap2] = {}
        self._lock = threading.RLock()
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, chat_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", chat_id)
        if safe != chat_id:  # "a.b" and "a/b" must not share the file of chat "a_b"
            safe += "-" + hashlib.sha1(chat_id.encode()).hexdigest()[:12]
        return self.folder / f"chat_{safe}.faiss"

    def _index(
        self, chat_id: str, adding: np.ndarray | None = None, removing: np.ndarray | None = None
    ) -> faiss.IndexIDMap2:
        with self._lock:
            if chat_id not in self._indexes:
                self._indexes[chat_id] = self._load_or_rebuild(chat_id, adding, removing)
            return self._indexes[chat_id]

    def _load_or_rebuild(
        self, chat_id: str, adding: np.ndarray | None = None, removing: np.ndarray | None = None
    ) -> faiss.IndexIDMap2:
        """The chat's index from its file if that matches the database, else rebuilt.

        The database is written first, so while sentences are being added (or removed) the file
        may still lack (or hold) exactly those: that is in step, not out of date.
        """
        path = self._path(chat_id)
        expected = np.sort(self._ids_of(chat_id))
        empty = np.zeros(0, dtype=np.int64)
        adding = empty if adding is None else np.asarray(adding, dtype=np.int64)
        removing = empty if removing is None else np.asarray(removing, dtype=np.int64)
        if path.exists():
            try:
                index = faiss.read_index(str(path))
                stored = faiss.vector_to_array(index.id_map)
                current = np.union1d(np.setdiff1d(stored, removing), adding)
                in_step = len(np.unique(stored)) == len(stored)
                if in_step and index.d == self.dimension and np.array_equal(current, expected):
                    return index
                logger.warning("Vector file of chat %s is out of date; rebuilding", chat_id)
            except (RuntimeError, AttributeError):  # AttributeError: not an IndexIDMap2
                logger.warning("Vector file of chat %s is unreadable; rebuilding", chat_id)
        ids, vectors = self._vectors_of(chat_id)
        index = _new_index(self.dimension)
        if len(ids):
            index.add_with_ids(vectors, ids)
        if len(ids) != len(expected):
            logger.warning(
                "Chat %s: %d sentences lack cached vectors", chat_id, len(expected) - len(ids)
            )
        self._save(chat_id, index)
        return index

    def _save(self, chat_id: str, index: faiss.IndexIDMap2) -> None:
        path = self._path(chat_id)
        temporary = path.with_suffix(".tmp")
        faiss.write_index(index, str(temporary))
        os.replace(temporary, path)

    def add(self, chat_id: str, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock:
            index = self._index(chat_id, adding=ids)
            present = set(faiss.vector_to_array(index.id_map).tolist())
            new = np.array([i not in present for i in ids.tolist()], dtype=bool)
            if new.any():
                index.add_with_ids(vectors[new], ids[new])
            self._save(chat_id, index)

    def remove(self, chat_id: str, ids: list[int]) -> None:
        with self._lock:
            index = self._index(chat_id, removing=np.array(ids, dtype=np.int64))
            if ids:
                index.remove_ids(np.array(ids, dtype=np.int64))
            self._save(chat_id, index)

    def forget(self, chat_id: str) -> None:
        with self._lock:
            self._indexes[chat_id] = _new_index(self.dimension)
            self._path(chat_id).unlink(missing_ok=True)

    def size(self, chat_id: str) -> int:
        return int(self._index(chat_id).ntotal)

    def search(self, chat_id: str, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most similar sentences: (scores, sentence ids), best first."""
        with self._lock:
            index = self._index(chat_id)
            k = min(k, index.ntotal)
            if k == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            scores, ids = index.search(query.reshape(1, -1).astype(np.float32), k)
        return scores[0], ids[0]

    def vectors(self, chat_id: str, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of the given sentence ids."""
        with self._lock:
            index = self._index(chat_id)
            if len(ids) == 0:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
