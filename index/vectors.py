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
# A number that changes whenever a chat's articles change in the database.
VersionSource = Callable[[str], int]


def _new_index(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


class VectorIndexes:
    """Per-chat exact inner-product search (vectors are normalised, so this is cosine).

    Each chat has its own lock, so one chat's rebuild never holds up another's search. A chat's
    index in memory is reloaded whenever the database's version of the chat has moved on (the
    command line added an article while the bot runs)."""

    def __init__(
        self,
        folder: Path,
        dimension: int,
        vectors_of: VectorSource,
        ids_of: IdSource,
        version_of: VersionSource,
    ) -> None:
        self.folder = folder
        self.dimension = dimension
        self._vectors_of = vectors_of
        self._ids_of = ids_of
        self._version_of = version_of
        self._indexes: dict[str, tuple[int, faiss.IndexIDMap2]] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def _lock(self, chat_id: str) -> threading.RLock:
        with self._locks_lock:
            return self._locks.setdefault(chat_id, threading.RLock())

    def _path(self, chat_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", chat_id)
        if safe != chat_id:  # "a.b" and "a/b" must not share the file of chat "a_b"
            safe += "-" + hashlib.sha1(chat_id.encode()).hexdigest()[:12]
        return self.folder / f"chat_{safe}.faiss"

    def _index(
        self, chat_id: str, adding: np.ndarray | None = None, removing: np.ndarray | None = None
    ) -> faiss.IndexIDMap2:
        """The chat's index, current with the database (call with the chat's lock held)."""
        version = self._version_of(chat_id)
        cached = self._indexes.get(chat_id)
        if cached is None or cached[0] != version:
            cached = (version, self._load_or_rebuild(chat_id, adding, removing))
            self._indexes[chat_id] = cached
        return cached[1]

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
        with self._lock(chat_id):
            index = self._index(chat_id, adding=ids)
            present = set(faiss.vector_to_array(index.id_map).tolist())
            new = np.array([i not in present for i in ids.tolist()], dtype=bool)
            if new.any():
                index.add_with_ids(vectors[new], ids[new])
            self._save(chat_id, index)

    def remove(self, chat_id: str, ids: list[int]) -> None:
        with self._lock(chat_id):
            index = self._index(chat_id, removing=np.array(ids, dtype=np.int64))
            if ids:
                index.remove_ids(np.array(ids, dtype=np.int64))
            self._save(chat_id, index)

    def forget(self, chat_id: str) -> None:
        with self._lock(chat_id):
            self._indexes[chat_id] = (self._version_of(chat_id), _new_index(self.dimension))
            self._path(chat_id).unlink(missing_ok=True)

    def size(self, chat_id: str) -> int:
        with self._lock(chat_id):
            return int(self._index(chat_id).ntotal)

    def search(self, chat_id: str, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most similar sentences: (scores, sentence ids), best first."""
        with self._lock(chat_id):
            index = self._index(chat_id)
            k = min(k, index.ntotal)
            if k == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            scores, ids = index.search(query.reshape(1, -1).astype(np.float32), k)
        return scores[0], ids[0]
