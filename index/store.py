"""SQLite storage: chats' articles, their sentences, and the encoding cache.

SQLite is the source of truth. The FAISS files are derived from it and can always be rebuilt
from the cached vectors stored here. Each change is one transaction, so an article is either
fully stored or not at all, whenever the process stops.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.embeddings import Encoding, TokenVectors
from index.records import Article, ArticleDraft, Sentence

SCHEMA_VERSION = 4
_IN_CHUNK = 500  # values per IN (...) list, well under SQLite's limit on parameters
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    next_number INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL DEFAULT 0  -- counts changes to the chat's articles
);
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    canonical_url TEXT,
    author TEXT,
    published TEXT,
    added_at TEXT NOT NULL,
    added_by TEXT,
    text_hash TEXT NOT NULL,
    UNIQUE (chat_id, number),
    UNIQUE (chat_id, text_hash)
);
CREATE INDEX IF NOT EXISTS articles_by_url ON articles (chat_id, canonical_url);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_by_article ON sentences (article_id, position);
-- How each model read each sentence: in which passage, and under which cached encoding.
CREATE TABLE IF NOT EXISTS sentence_encodings (
    sentence_id INTEGER NOT NULL REFERENCES sentences(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    passage INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (sentence_id, model)
);
CREATE INDEX IF NOT EXISTS sentence_encodings_by_key ON sentence_encodings (key, model);
CREATE TABLE IF NOT EXISTS encodings (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    token_ids BLOB NOT NULL,
    token_spans BLOB NOT NULL,
    token_vectors BLOB NOT NULL,
    PRIMARY KEY (model, key)
);
"""

_SENTENCE_COLUMNS = 's.id, s.article_id, s.position, s.paragraph, s.start, s."end"'
_ARTICLE_COLUMNS = (
    "a.id, a.chat_id, a.number, a.title, a.text, a.language, a.source, a.url, a.canonical_url,"
    " a.author, a.published, a.added_at, a.added_by, a.text_hash,"
    " (SELECT COUNT(*) FROM sentences s WHERE s.article_id = a.id)"
)


class Store:
    """Thread-safe access to the library database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._create_schema(path)

    def _create_schema(self, path: Path) -> None:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            (tables,) = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if tables and version != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path} was written by an older articlebot (schema {version}, this one "
                    f"reads {SCHEMA_VERSION}). Move the data folder away and add the articles "
                    "again."
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:  # an error, or a COMMIT that failed
                    self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _query_in(self, sql: str, values: Iterable, *params: object) -> list[tuple]:
        """Run `sql`, whose `{marks}` stands for an IN list, over `values` in chunks small
        enough for SQLite; `params` come before the values."""
        unique = sorted(set(values))
        rows: list[tuple] = []
        for i in range(0, len(unique), _IN_CHUNK):
            chunk = unique[i : i + _IN_CHUNK]
            rows += self._query(sql.format(marks=",".join("?" * len(chunk))), [*params, *chunk])
        return rows

    # Articles

    def add_article(
        self,
        chat_id: str,
        draft: ArticleDraft,
        text_hash: str,
        sentences: list[tuple[int, int, int]],
        model: str,
        encodings: list[tuple[int, str]],
        added_by: str | None = None,
    ) -> tuple[Article, list[Sentence]]:
        """Store an article with its sentences `(start, end, paragraph)` and how `model` read
        them `(passage, encoding key)`, in one transaction (the encodings are cached first)."""
        added_at = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO chats (id) VALUES (?)", (chat_id,))
            (number,) = db.execute(
                "UPDATE chats SET next_number = next_number + 1, version = version + 1"
                " WHERE id = ? RETURNING next_number - 1",
                (chat_id,),
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO articles (chat_id, number, title, text, language, source, url,"
                " canonical_url, author, published, added_at, added_by, text_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chat_id, number, draft.title, draft.text, draft.language, draft.source,
                    draft.url, draft.canonical_url, draft.author, draft.published, added_at,
                    added_by, text_hash,
                ),
            )  # fmt: skip
            article_id = cursor.lastrowid
            for position, ((start, end, paragraph), (passage, key)) in enumerate(
                zip(sentences, encodings, strict=True)
            ):
                sentence_id = db.execute(
                    'INSERT INTO sentences (article_id, position, paragraph, start, "end")'
                    " VALUES (?, ?, ?, ?, ?)",
                    (article_id, position, paragraph, start, end),
                ).lastrowid
                db.execute(
                    "INSERT INTO sentence_encodings (sentence_id, model, passage, key)"
                    " VALUES (?, ?, ?, ?)",
                    (sentence_id, model, passage, key),
                )
        article = self.article_by_id(article_id)
        assert article is not None
        return article, self.sentences_of(article_id)

    def article_by_id(self, article_id: int) -> Article | None:
        rows = self._query(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles a WHERE a.id = ?", (article_id,)
        )
        return Article(*rows[0]) if rows else None

    def article(self, chat_id: str, number: int) -> Article | None:
        rows = self._query(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ? AND a.number = ?",
            (chat_id, number),
        )
        return Article(*rows[0]) if rows else None

    def chat_languages(self, chat_id: str) -> set[str]:
        """The languages of a chat's articles (empty: the library is empty)."""
        rows = self._query("SELECT DISTINCT language FROM articles WHERE chat_id = ?", (chat_id,))
        return {row[0] for row in rows}

    def articles(self, chat_id: str) -> list[Article]:
        rows = self._query(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ? ORDER BY a.number",
            (chat_id,),
        )
        return [Article(*row) for row in rows]

    def articles_by_ids(self, article_ids: Iterable[int]) -> dict[int, Article]:
        rows = self._query_in(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles a WHERE a.id IN ({{marks}})",
            (int(i) for i in article_ids),
        )
        return {row[0]: Article(*row) for row in rows}

    def find_duplicate(
        self, chat_id: str, canonical_url: str | None, text_hash: str
    ) -> Article | None:
        """An article of this chat with the same canonical URL or the same normalised text."""
        rows = self._query(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ?"
            " AND (a.text_hash = ? OR (a.canonical_url IS NOT NULL AND a.canonical_url = ?))",
            (chat_id, text_hash, canonical_url),
        )
        return Article(*rows[0]) if rows else None

    def remove_article(self, chat_id: str, number: int) -> tuple[Article, list[int]] | None:
        """Delete an article and its sentences; returns it with the removed sentence ids."""
        article = self.article(chat_id, number)
        if article is None:
            return None
        with self._transaction() as db:
            ids = [
                r[0]
                for r in db.execute("SELECT id FROM sentences WHERE article_id = ?", (article.id,))
            ]
            keys = _encoding_keys(db, "s.article_id = ?", article.id)
            db.execute("DELETE FROM articles WHERE id = ?", (article.id,))
            _forget_encodings(db, keys)
            db.execute("UPDATE chats SET version = version + 1 WHERE id = ?", (chat_id,))
        return article, ids

    def forget_chat(self, chat_id: str) -> int:
        """Delete every article of a chat; returns how many there were."""
        with self._transaction() as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM articles WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            keys = _encoding_keys(
                db, "s.article_id IN (SELECT id FROM articles WHERE chat_id = ?)", chat_id
            )
            db.execute("DELETE FROM articles WHERE chat_id = ?", (chat_id,))
            _forget_encodings(db, keys)
            db.execute("UPDATE chats SET version = version + 1 WHERE id = ?", (chat_id,))
        return int(count)

    def chat_version(self, chat_id: str) -> int:
        """A number that changes whenever the chat's articles change (in any process)."""
        rows = self._query("SELECT version FROM chats WHERE id = ?", (chat_id,))
        return int(rows[0][0]) if rows else 0

    # Sentences

    def sentences_of(self, article_id: int) -> list[Sentence]:
        rows = self._query(
            f"SELECT {_SENTENCE_COLUMNS} FROM sentences s WHERE article_id = ? ORDER BY position",
            (article_id,),
        )
        return [Sentence(*row) for row in rows]

    def sentence_sources(self, sentence_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """For each sentence, its article's id and language."""
        rows = self._query_in(
            "SELECT s.id, a.id, a.language FROM sentences s JOIN articles a ON a.id = s.article_id"
            " WHERE s.id IN ({marks})",
            (int(i) for i in sentence_ids),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def sentences_by_ids(self, sentence_ids: Iterable[int]) -> dict[int, Sentence]:
        rows = self._query_in(
            f"SELECT {_SENTENCE_COLUMNS} FROM sentences s WHERE id IN ({{marks}})",
            (int(i) for i in sentence_ids),
        )
        return {row[0]: Sentence(*row) for row in rows}

    def chat_vectors(self, chat_id: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        """Sentence ids of a chat with their cached vectors (for rebuilding its FAISS file)."""
        rows = self._query(
            "SELECT s.id, e.vector FROM sentences s JOIN articles a ON a.id = s.article_id"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " JOIN encodings e ON e.key = se.key AND e.model = se.model"
            " WHERE a.chat_id = ? ORDER BY s.id",
            (model, chat_id),
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.array([np.frombuffer(r[1], dtype=np.float32) for r in rows], dtype=np.float32)
        return ids, vectors

    def chat_sentence_ids(self, chat_id: str) -> np.ndarray:
        rows = self._query(
            "SELECT s.id FROM sentences s JOIN articles a ON a.id = s.article_id"
            " WHERE a.chat_id = ? ORDER BY s.id",
            (chat_id,),
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chat_token_ids(self, chat_id: str, model: str) -> list[np.ndarray]:
        """The token ids of every sentence of a chat (for word rarity statistics)."""
        rows = self._query(
            "SELECT e.token_ids FROM sentences s JOIN articles a ON a.id = s.article_id"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " JOIN encodings e ON e.key = se.key AND e.model = se.model WHERE a.chat_id = ?",
            (model, chat_id),
        )
        return [np.frombuffer(r[0], dtype=np.int32) for r in rows]

    def articles_lacking_encodings(self, chat_id: str, model: str) -> list[int]:
        """Articles of a chat with sentences that have no encoding by `model` (the model was
        changed since they were added)."""
        rows = self._query(
            "SELECT DISTINCT s.article_id FROM sentences s JOIN articles a ON a.id = s.article_id"
            " LEFT JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " WHERE a.chat_id = ? AND se.key IS NULL",
            (model, chat_id),
        )
        return [row[0] for row in rows]

    def set_encodings(self, model: str, sentences: list[tuple[int, int, str]]) -> None:
        """Record how `model` read sentences: `(sentence id, passage, encoding key)`; the
        encodings themselves must be cached already."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO sentence_encodings (sentence_id, model, passage, key)"
                " VALUES (?, ?, ?, ?)",
                [(sentence_id, model, passage, key) for sentence_id, passage, key in sentences],
            )

    def passage_mates(self, model: str, sentence_ids: Iterable[int]) -> dict[int, list[int]]:
        """For each sentence, the ids of all sentences `model` read in the same passage."""
        rows = self._query_in(
            "SELECT s.id, m.id FROM sentences s"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " JOIN sentences m ON m.article_id = s.article_id"
            " JOIN sentence_encodings me ON me.sentence_id = m.id AND me.model = se.model"
            " AND me.passage = se.passage WHERE s.id IN ({marks}) ORDER BY m.position",
            (int(i) for i in sentence_ids),
            model,
        )
        mates: dict[int, list[int]] = {}
        for sentence, mate in rows:
            mates.setdefault(sentence, []).append(mate)
        return mates

    def sentence_tokens(self, model: str, sentence_ids: Iterable[int]) -> dict[int, TokenVectors]:
        rows = self._query_in(
            "SELECT s.id, e.vector, e.token_ids, e.token_spans, e.token_vectors FROM sentences s"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " JOIN encodings e ON e.key = se.key AND e.model = se.model"
            " WHERE s.id IN ({marks})",
            (int(i) for i in sentence_ids),
            model,
        )
        return {row[0]: _decode(row[1:]).tokens for row in rows}

    # Encoding cache: what the model made of each sentence, keyed by sentence and context

    def cached_encodings(self, model: str, keys: Iterable[str]) -> dict[str, Encoding]:
        rows = self._query_in(
            "SELECT key, vector, token_ids, token_spans, token_vectors FROM encodings"
            " WHERE model = ? AND key IN ({marks})",
            keys,
            model,
        )
        return {row[0]: _decode(row[1:]) for row in rows}

    def cache_encodings(self, model: str, encodings: dict[str, Encoding]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO encodings"
                " (model, key, vector, token_ids, token_spans, token_vectors)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(model, key, *_encode(encoding)) for key, encoding in encodings.items()],
            )


def _encoding_keys(db: sqlite3.Connection, where: str, value: object) -> list[tuple[str, str]]:
    """The (model, key) pairs of the encodings of the sentences matching `where`."""
    return db.execute(
        "SELECT DISTINCT se.model, se.key FROM sentence_encodings se"
        f" JOIN sentences s ON s.id = se.sentence_id WHERE {where}",
        (value,),
    ).fetchall()


def _forget_encodings(db: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
    """Delete cached encodings no sentence uses any more: what a model made of a removed
    article (its token ids spell out its text) must go with it."""
    db.executemany(
        "DELETE FROM encodings WHERE model = ? AND key = ? AND NOT EXISTS"
        " (SELECT 1 FROM sentence_encodings se WHERE se.model = ? AND se.key = ?)",
        [(model, key, model, key) for model, key in keys],
    )


def _encode(encoding: Encoding) -> tuple[bytes, bytes, bytes, bytes]:
    tokens = encoding.tokens
    return (
        encoding.vector.astype(np.float32).tobytes(),
        tokens.ids.astype(np.int32).tobytes(),
        tokens.spans.astype(np.int32).tobytes(),
        tokens.vectors.astype(np.float16).tobytes(),
    )


def _decode(blobs: tuple[bytes, bytes, bytes, bytes]) -> Encoding:
    vector = np.frombuffer(blobs[0], dtype=np.float32)
    ids = np.frombuffer(blobs[1], dtype=np.int32)
    spans = np.frombuffer(blobs[2], dtype=np.int32).reshape(-1, 2)
    vectors = np.frombuffer(blobs[3], dtype=np.float16).reshape(len(ids), len(vector))
    return Encoding(vector, TokenVectors(ids, spans, vectors, np.ones(len(ids), dtype=bool)))
