"""FAISS indexes of one model's sentence vectors, one per chat, persisted as one file per chat.

A chat's index maps FAISS ids to sentence ids of the SQLite database. The file is a cache of
what SQLite holds: when it is missing, unreadable or out of step with the database (the
process stopped between the two writes), it is rebuilt from the vectors stored in SQLite.

Search is exact while a chat is small. A chat of `APPROXIMATE_FROM` sentences or more also gets
an approximate index (FAISS IVF: the vectors are grouped around centroids and a question
looks only into the groups nearest to it), built in a background thread from the exact one;
until it is ready, and whenever it falls out of step, search stays exact.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import uuid
from collections.abc import Callable
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


# Exact search over 100,000 int8 vectors of 384 values took 45 ms on one core of a busy
# machine (a million: ten times that): past this size a chat is searched approximately.
APPROXIMATE_FROM = 100_000
# Groups the IVF looks into per question, of about a thousand for a million vectors: 48
# found 98.96% of the exact top 40 on vectors shaped like real ones, short of the 99% aimed
# at, so 64 (bench/bench.py measures recall and time).
PROBES = 64


# Vectors are kept in the files as int8, each value times this scale (392 bytes a sentence
# instead of 1,544). Sentence vectors are unit length and their values stay well inside
# ±0.3; larger ones are clipped. FAISS quantises the query the same way, so a score comes
# out times the scale squared.
_SCALE = 400.0
_KIND = faiss.ScalarQuantizer.QT_8bit_direct_signed


def _new_index(dimension: int) -> faiss.IndexIDMap2:
    quantiser = faiss.IndexScalarQuantizer(dimension, _KIND, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(quantiser)


def _codes(vectors: np.ndarray) -> np.ndarray:
    """Vectors as the files keep them (whole numbers in float32, as FAISS takes them)."""
    return np.clip(np.round(vectors * _SCALE), -127, 127).astype(np.float32)


def _in_step(
    index: faiss.IndexIDMap2, expected: np.ndarray, adding: np.ndarray, removing: np.ndarray
) -> bool:
    """Whether `index` holds the `expected` ids, but for those being added or removed."""
    stored = faiss.vector_to_array(index.id_map)
    current = np.union1d(np.setdiff1d(stored, removing), adding)
    return len(np.unique(stored)) == len(stored) and np.array_equal(current, expected)


def _current_kind(index: faiss.IndexIDMap2) -> bool:
    """Whether a file read holds int8 vectors (older versions wrote float32 ones)."""
    inner = faiss.downcast_index(index.index)
    return isinstance(inner, faiss.IndexScalarQuantizer) and inner.sq.qtype == _KIND


class ApproximateIndex:
    """An inverted-file index over a chat's vectors, in about √n groups of similar vectors."""

    def __init__(self, index: faiss.IndexIVFFlat) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray) -> ApproximateIndex:
        dimension = vectors.shape[1]
        groups = max(1, min(int(math.sqrt(len(ids))), len(ids) // 39))
        quantiser = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantiser, dimension, groups, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        sample = np.random.default_rng(0).permutation(len(ids))[: 40 * groups]
        index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
        index.add_with_ids(vectors, ids)
        index.nprobe = min(PROBES, groups)
        return cls(index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        self._index.remove_ids(ids)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(query, k)
        found = ids[0] >= 0
        return scores[0][found], ids[0][found]


# A vector file is this mark, the SHA-256 of the faiss index that follows, then the index.
# faiss allocates whatever a size field inside says before reading the data, so a damaged
# field would ask for gigabytes; the digest shows damage before faiss reads a byte.
_MARK = b"articlebot-vectors-1\n"
_DIGEST_BYTES = 32


class _OlderFile(Exception):
    """A vector file of an earlier version (plain faiss, without the mark)."""


def _read(path: Path) -> faiss.IndexIDMap2:
    """The index in `path`, if it is whole (RuntimeError if not, _OlderFile if unmarked)."""
    data = path.read_bytes()
    if not data.startswith(_MARK):
        raise _OlderFile
    digest, index = (
        data[len(_MARK) : len(_MARK) + _DIGEST_BYTES],
        data[len(_MARK) + _DIGEST_BYTES :],
    )
    if hashlib.sha256(index).digest() != digest:
        raise RuntimeError("the file does not match its digest")
    return faiss.deserialize_index(np.frombuffer(index, dtype=np.uint8))


def _file_bytes(index: faiss.IndexIDMap2) -> bytes:
    data = faiss.serialize_index(index).tobytes()
    return _MARK + hashlib.sha256(data).digest() + data


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
        # A large chat's approximate index, with the exact index it was built from (and
        # has been kept in step with since).
        self._approximate: dict[str, tuple[faiss.IndexIDMap2, ApproximateIndex]] = {}
        self._changes: dict[str, int] = {}  # adds and removals per chat, seen by builders
        self._building: set[str] = set()
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
        """The chat's index, current with the database (call with the chat's lock held).

        The database is written first, so while sentences are being added (or removed) the
        index may still lack (or hold) exactly those: that is in step, not out of date. When
        the only change since is this process's own, the index in memory is kept (and with
        it a large chat's approximate index); otherwise it is read again from its file."""
        version = self._source.chat_version(chat_id)
        cached = self._indexes.get(chat_id)
        if cached is None or cached[0] != version:
            expected = np.sort(self._source.chat_sentence_ids(chat_id))
            empty = np.zeros(0, dtype=np.int64)
            adding = empty if adding is None else np.asarray(adding, dtype=np.int64)
            removing = empty if removing is None else np.asarray(removing, dtype=np.int64)
            if cached is not None and _in_step(cached[1], expected, adding, removing):
                cached = (version, cached[1])
            else:
                cached = (version, self._load_or_rebuild(chat_id, expected, adding, removing))
            self._indexes[chat_id] = cached
        return cached[1]

    def _load_or_rebuild(
        self, chat_id: str, expected: np.ndarray, adding: np.ndarray, removing: np.ndarray
    ) -> faiss.IndexIDMap2:
        """The chat's index from its file if that is in step with the database (holds the
        `expected` sentence ids but for `adding` and `removing`), else rebuilt."""
        path = self._path(chat_id)
        if path.exists():
            try:
                index = _read(path)
                if _in_step(index, expected, adding, removing) and _current_kind(index):
                    return index
                if not _current_kind(index):
                    logger.info("Vector file of chat %s is of an older kind; rebuilding", chat_id)
                else:
                    logger.warning("Vector file of chat %s is out of date; rebuilding", chat_id)
            except _OlderFile:
                logger.info("Vector file of chat %s is of an older kind; rebuilding", chat_id)
            except (RuntimeError, AttributeError, MemoryError, OSError):  # damaged, unreadable
                logger.warning("Vector file of chat %s is unreadable; rebuilding", chat_id)
        ids, vectors = self._source.chat_vectors(chat_id, self.model)
        index = _new_index(vectors.shape[1] if len(ids) else 1)
        if len(ids):
            index.add_with_ids(_codes(vectors), ids)
        if len(ids) != len(expected):
            logger.warning("Chat %s: %d sentences lack vectors", chat_id, len(expected) - len(ids))
        self._save(chat_id, index)
        return index

    def _save(self, chat_id: str, index: faiss.IndexIDMap2) -> None:
        """Write the file under a name of its own first, so writers never share a half file."""
        path = self._path(chat_id)
        temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_bytes(_file_bytes(index))
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
                codes = _codes(vectors[new])
                index.add_with_ids(codes, ids[new])
                self._changed(chat_id, index, lambda a: a.add(ids[new], codes))
            self._save(chat_id, index)

    def remove(self, chat_id: str, ids: list[int]) -> None:
        with self._lock(chat_id):
            index = self._index(chat_id, removing=np.array(ids, dtype=np.int64))
            if ids:
                removed = np.array(ids, dtype=np.int64)
                index.remove_ids(removed)
                self._changed(chat_id, index, lambda a: a.remove(removed))
            self._save(chat_id, index)

    def forget(self, chat_id: str) -> None:
        with self._lock(chat_id):
            self._indexes.pop(chat_id, None)
            self._approximate.pop(chat_id, None)
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
            query = _codes(query.reshape(1, -1))
            approximate = self._approximate_for(chat_id, index)
            if approximate is not None:
                scores, ids = approximate.search(query, k)
            else:
                scores, ids = (found[0] for found in index.search(query, k))
        return scores / _SCALE**2, ids

    def approximate(self, chat_id: str) -> bool:
        """Whether the chat is searched approximately by now."""
        with self._lock(chat_id):
            return self._approximate_for(chat_id, self._index(chat_id)) is not None

    def _changed(self, chat_id: str, index: faiss.IndexIDMap2, change: Callable) -> None:
        """Note a change of the exact index (chat's lock held) and apply it to the
        approximate one, if that is in step."""
        self._changes[chat_id] = self._changes.get(chat_id, 0) + 1
        current = self._approximate.get(chat_id)
        if current is not None and current[0] is index:
            change(current[1])

    def _approximate_for(self, chat_id: str, index: faiss.IndexIDMap2) -> ApproximateIndex | None:
        """The chat's approximate index if it is large and the index is ready and in step;
        starts building one in the background when it is large and none is."""
        if index.ntotal < APPROXIMATE_FROM:
            return None
        current = self._approximate.get(chat_id)
        if current is not None and current[0] is index:
            return current[1]
        if chat_id not in self._building:
            self._building.add(chat_id)
            threading.Thread(
                target=self._build, args=(chat_id, index), name="approximate-index", daemon=True
            ).start()
        return None

    def _build(self, chat_id: str, index: faiss.IndexIDMap2) -> None:
        """Build the approximate index from a copy of the exact one, without holding the
        chat's lock meanwhile; it is used only if the chat did not change in between."""
        try:
            with self._lock(chat_id):
                changes = self._changes.get(chat_id, 0)
                ids = faiss.vector_to_array(index.id_map).copy()
                vectors = index.index.reconstruct_n(0, index.ntotal)
            logger.info("Building the approximate index of chat %s (%d sentences)", chat_id,
                        len(ids))  # fmt: skip
            approximate = ApproximateIndex.build(vectors, ids)
            with self._lock(chat_id):
                cached = self._indexes.get(chat_id)
                if cached and cached[1] is index and self._changes.get(chat_id, 0) == changes:
                    self._approximate[chat_id] = (index, approximate)
        finally:
            with self._lock(chat_id):
                self._building.discard(chat_id)
