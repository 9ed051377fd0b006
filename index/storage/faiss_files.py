"""FAISS indexes of one model's sentence vectors, one per chat, persisted as one file per chat.

A chat's index maps FAISS ids to sentence ids of the SQLite database. The file is a cache of
what SQLite holds: when it is missing, unreadable or out of step with the database (the
process stopped between the two writes), it is rebuilt from the vectors stored in SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import threading
import uuid
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

logger = logging.getLogger(__name__)


class VectorSource(Protocol):
    """What the files are rebuilt from: the SQLite side of the embedded engine."""

    def chat_vectors(self, chat_id: str, model: str) -> tuple[np.ndarray, np.ndarray]: ...

    def chat_sentence_ids(self, chat_id: str) -> np.ndarray: ...

    def chat_version(self, chat_id: str) -> int: ...


def _new_index(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


# The header faiss writes for an index: kind, dimension, vector count, two unused counts,
# whether it is trained, the metric.
_HEADER = struct.Struct("<4siqqq?i")


def _read(path: Path) -> faiss.IndexIDMap2:
    """The index in `path`, if its size fields agree with its length (else RuntimeError).

    faiss allocates whatever a size field says before reading the data: a damaged field would
    ask for gigabytes (or fail with MemoryError) instead of being seen as damage."""
    data = path.read_bytes()
    try:
        outer = _HEADER.unpack_from(data, 0)
        inner = _HEADER.unpack_from(data, _HEADER.size)
        (floats,) = struct.unpack_from("<Q", data, 2 * _HEADER.size)
        ids_at = 2 * _HEADER.size + 8 + 4 * floats
        (id_count,) = struct.unpack_from("<Q", data, min(ids_at, len(data)))
    except struct.error:
        raise RuntimeError("truncated") from None
    dimension, count = inner[1], inner[2]
    consistent = (
        (outer[0], inner[0]) == (b"IxM2", b"IxFI")
        and dimension > 0
        and outer[2] == count == id_count
        and floats == count * dimension
        and len(data) == ids_at + 8 + 8 * count
    )
    if not consistent:
        raise RuntimeError("size fields disagree with the file")
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


class VectorFiles:
    """Per-chat exact inner-product search (vectors are normalised, so this is cosine).

    Each chat has its own lock, so one chat's rebuild never holds up another's search. A chat's
    index in memory is reloaded whenever the database's version of the chat has moved on
    (another process added an article)."""

    def __init__(self, folder: Path, model: str, source: VectorSource) -> None:
        self.folder = folder
        self.model = model
        self._source = source
        self._indexes: dict[str, tuple[int, faiss.IndexIDMap2]] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def _lock(self, chat_id: str) -> threading.RLock:
        with self._locks_lock:
            return self._locks.setdefault(chat_id, threading.RLock())

    def _path(self, chat_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", chat_id)[:64]
        if safe != chat_id:  # "a.b" and "a/b" must not share the file of chat "a_b"
            safe += "-" + hashlib.sha1(chat_id.encode()).hexdigest()[:12]
        return self.folder / f"chat_{safe}.faiss"

    def _index(
        self, chat_id: str, adding: np.ndarray | None = None, removing: np.ndarray | None = None
    ) -> faiss.IndexIDMap2:
        """The chat's index, current with the database (call with the chat's lock held)."""
        version = self._source.chat_version(chat_id)
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
        expected = np.sort(self._source.chat_sentence_ids(chat_id))
        empty = np.zeros(0, dtype=np.int64)
        adding = empty if adding is None else np.asarray(adding, dtype=np.int64)
        removing = empty if removing is None else np.asarray(removing, dtype=np.int64)
        if path.exists():
            try:
                index = _read(path)
                stored = faiss.vector_to_array(index.id_map)
                current = np.union1d(np.setdiff1d(stored, removing), adding)
                in_step = len(np.unique(stored)) == len(stored)
                if in_step and np.array_equal(current, expected):
                    return index
                logger.warning("Vector file of chat %s is out of date; rebuilding", chat_id)
            except (RuntimeError, AttributeError, MemoryError, OSError):  # damaged, or unreadable
                logger.warning("Vector file of chat %s is unreadable; rebuilding", chat_id)
        ids, vectors = self._source.chat_vectors(chat_id, self.model)
        index = _new_index(vectors.shape[1] if len(ids) else 1)
        if len(ids):
            index.add_with_ids(vectors, ids)
        if len(ids) != len(expected):
            logger.warning("Chat %s: %d sentences lack vectors", chat_id, len(expected) - len(ids))
        self._save(chat_id, index)
        return index

    def _save(self, chat_id: str, index: faiss.IndexIDMap2) -> None:
        """Write the file under a name of its own first, so writers never share a half file."""
        path = self._path(chat_id)
        temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            faiss.write_index(index, str(temporary))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def add(self, chat_id: str, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock(chat_id):
            index = self._index(chat_id, adding=ids)
            if index.ntotal == 0 and index.d != vectors.shape[1]:  # empty so far: d unknown
                index = _new_index(vectors.shape[1])
                self._indexes[chat_id] = (self._indexes[chat_id][0], index)
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
            self._indexes.pop(chat_id, None)
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
