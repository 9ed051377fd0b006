"""The embedded engine: one SQLite file (WAL) plus one FAISS file per chat and model.

SQLite is the source of truth. The FAISS files are derived from it and rebuilt from the
vectors stored in SQLite whenever they are missing, damaged or out of step (see
`index.storage.faiss_files`). Each change is one transaction, so an article is either fully
stored or not at all, whenever the process stops.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.errors import DuplicateArticle
from index.quotas import NO_LIMITS, ChatLimits
from index.records import Article, ArticleExport, EncodedArticle, Encoding, Sentence, TokenVectors
from index.storage import codec
from index.storage.compact import TokenCodebook
from index.storage.faiss_files import VectorFiles
from index.storage.migrations import SQLITE, latest, pending
from index.storage.sql import (
    ARTICLE_COLUMNS,
    CHAT_USAGE,
    DUPLICATE,
    ENCODING_COLUMNS,
    INSERT_ARTICLE,
    INSERT_SENTENCE,
    SENTENCE_COLUMNS,
    SQLStorage,
)

_IN_CHUNK = 500  # values per IN (...) list, well under SQLite's limit on parameters


class SQLiteStorage(SQLStorage):
    """Thread-safe access to the data folder (one connection, one lock)."""

    name = "sqlite"
    _MODEL_COLUMN = "model"

    def __init__(self, data_dir: Path, compact: bool = False) -> None:
        super().__init__(compact)
        path = data_dir / "library.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._migrate(path)
        self._vector_files: dict[str, VectorFiles] = {}
        self._vectors_dir = data_dir / "vectors"
        self._compact_all()

    def _model_value(self, model: str) -> str:
        return model

    def _reclaim_space(self) -> None:
        """SQLite keeps freed pages inside its file: after compacting, it is rewritten."""
        with self._lock:
            self._db.execute("VACUUM")

    def _migrate(self, path: Path) -> None:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            (tables,) = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if tables and version < SQLITE[0].version:
                raise RuntimeError(
                    f"{path} was written by a development version of articlebot (schema "
                    f"{version}) that cannot be upgraded. Move the data folder away and add the "
                    "articles again."
                )
            if version > latest(SQLITE):
                raise RuntimeError(
                    f"{path} was written by a newer articlebot (schema {version}; this one "
                    f"knows up to {latest(SQLITE)}). Update articlebot."
                )
            for migration in pending(SQLITE, version):
                with self._transaction() as db:
                    # executescript would commit on its own; run statement by statement.
                    for statement in migration.sql.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {migration.version}")

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

    @contextmanager
    def _statements(self) -> Iterator[_Transaction]:
        with self._transaction() as db:
            yield _Transaction(db)

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
        article: EncodedArticle,
        added_by: str | None,
        request: str | None,
        limits: ChatLimits = NO_LIMITS,
    ) -> Article:
        draft = article.draft
        codebook = self._codebook(article.model)
        try:
            with self._transaction() as db:  # IMMEDIATE: other adds wait until it ends
                existing = self._duplicate(db, chat_id, draft.canonical_url, article.text_hash)
                if existing is not None:
                    raise DuplicateArticle(existing)
                limits.check(*db.execute(CHAT_USAGE, (chat_id,)).fetchone(), len(draft.text))
                _insert_encodings(db, article.model, article.new_encodings, codebook)
                number = _next_number(db, chat_id)
                (article_id,) = db.execute(
                    INSERT_ARTICLE,
                    (chat_id, number, *codec.draft_columns(draft), codec.now(), added_by,
                     article.text_hash, request),
                ).fetchone()  # fmt: skip
                for position, sentence in enumerate(article.sentences):
                    (sentence_id,) = db.execute(
                        INSERT_SENTENCE,
                        (article_id, position, sentence.paragraph, sentence.start, sentence.end),
                    ).fetchone()
                    db.execute(
                        "INSERT INTO sentence_encodings (sentence_id, model, passage, key)"
                        " VALUES (?, ?, ?, ?)",
                        (sentence_id, article.model, sentence.passage, sentence.key),
                    )
        except sqlite3.IntegrityError:  # another process stored the same article just now
            existing = self.find_duplicate(chat_id, draft.canonical_url, article.text_hash)
            if existing is None:
                raise
            raise DuplicateArticle(existing) from None
        stored = self.articles_by_ids([article_id])[article_id]
        sentences = self.sentences_of(article_id)
        ids = np.array([s.id for s in sentences], dtype=np.int64)
        vectors = np.array([s.encoding.vector for s in article.sentences], dtype=np.float32)
        self._vectors(article.model).add(chat_id, ids, vectors)
        self._compact(article.model)
        return stored

    def _duplicate(
        self, db: sqlite3.Connection, chat_id: str, canonical_url: str | None, text_hash: str
    ) -> Article | None:
        rows = db.execute(DUPLICATE, (chat_id, text_hash, canonical_url)).fetchall()
        return Article(*rows[0]) if rows else None

    def articles_by_ids(self, article_ids: Iterable[int]) -> dict[int, Article]:
        rows = self._query_in(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.id IN ({{marks}})",
            (int(i) for i in article_ids),
        )
        return {row[0]: Article(*row) for row in rows}

    def _vectors_removed(self, chat_id: str, sentence_ids: list[int], whole_chat: bool) -> None:
        for vectors in self._all_vector_files():
            if whole_chat:
                vectors.forget(chat_id)
            else:
                vectors.remove(chat_id, sentence_ids)

    # Sentences

    def sentences_by_ids(self, sentence_ids: Iterable[int]) -> dict[int, Sentence]:
        rows = self._query_in(
            f"SELECT {SENTENCE_COLUMNS} FROM sentences s WHERE id IN ({{marks}})",
            (int(i) for i in sentence_ids),
        )
        return {row[0]: Sentence(*row) for row in rows}

    def sentence_sources(self, sentence_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        rows = self._query_in(
            "SELECT s.id, a.id, a.language FROM sentences s JOIN articles a ON a.id = s.article_id"
            " WHERE s.id IN ({marks})",
            (int(i) for i in sentence_ids),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def passage_mates(self, model: str, sentence_ids: Iterable[int]) -> dict[int, list[int]]:
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
        # CROSS JOIN keeps SQLite to this order; left to itself, it may walk every encoding of
        # the model and look each up, which costs time with the size of the whole database.
        rows = self._query_in(
            f"SELECT se.sentence_id, {ENCODING_COLUMNS} FROM sentence_encodings se"
            " CROSS JOIN encodings e ON e.model = se.model AND e.key = se.key"
            " WHERE se.model = ? AND se.sentence_id IN ({marks})",
            (int(i) for i in sentence_ids),
            model,
        )
        encodings = codec.decode_rows(rows, self._codebook(model))
        return {sentence_id: encoding.tokens for sentence_id, encoding in encodings.items()}

    def chat_token_ids(self, chat_id: str, model: str) -> list[np.ndarray]:
        rows = self._query(
            "SELECT e.token_ids, e.format FROM articles a"
            " CROSS JOIN sentences s ON s.article_id = a.id"
            " CROSS JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " CROSS JOIN encodings e ON e.model = se.model AND e.key = se.key"
            " WHERE a.chat_id = ?",
            (model, chat_id),
        )
        return [codec.token_ids(bytes(r[0]), r[1]) for r in rows]

    # The encoding cache

    def cached_encodings(self, model: str, keys: Iterable[str]) -> dict[str, Encoding]:
        rows = self._query_in(
            f"SELECT e.key, {ENCODING_COLUMNS} FROM encodings e"
            " WHERE e.model = ? AND e.key IN ({marks})",
            keys,
            model,
        )
        return codec.decode_rows(rows, self._codebook(model))

    def articles_lacking_encodings(self, chat_id: str, model: str) -> list[int]:
        rows = self._query(
            "SELECT DISTINCT s.article_id FROM sentences s JOIN articles a ON a.id = s.article_id"
            " LEFT JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " WHERE a.chat_id = ? AND se.key IS NULL",
            (model, chat_id),
        )
        return [row[0] for row in rows]

    def set_encodings(
        self,
        chat_id: str,
        model: str,
        sentences: list[tuple[int, int, str]],
        encodings: dict[str, Encoding],
    ) -> None:
        with self._transaction() as db:
            _insert_encodings(db, model, encodings, self._codebook(model))
            db.executemany(
                "INSERT OR REPLACE INTO sentence_encodings (sentence_id, model, passage, key)"
                " VALUES (?, ?, ?, ?)",
                [(sentence_id, model, passage, key) for sentence_id, passage, key in sentences],
            )
            # The chat's vector file lacks these sentences: a new version makes it catch up.
            db.execute("UPDATE chats SET version = version + 1 WHERE id = ?", (chat_id,))
        self._compact(model)

    # Search

    def _vectors(self, model: str) -> VectorFiles:
        """The FAISS files of one model (a folder per model, so vectors are never mixed)."""
        with self._lock:
            if model not in self._vector_files:
                folder = self._vectors_dir / hashlib.sha1(model.encode()).hexdigest()[:12]
                self._vector_files[model] = VectorFiles(folder, model, self)
            return self._vector_files[model]

    def _all_vector_files(self) -> list[VectorFiles]:
        with self._lock:
            return list(self._vector_files.values())

    def search(
        self, chat_id: str, model: str, vector: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._vectors(model).search(chat_id, vector, k)

    def vector_count(self, chat_id: str, model: str) -> int:
        return self._vectors(model).size(chat_id)

    def chat_vectors(self, chat_id: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        """A chat's sentence ids with their vectors of `model` (to rebuild its FAISS file)."""
        rows = self._query(
            "SELECT s.id, e.vector, e.format FROM sentences s"
            " JOIN articles a ON a.id = s.article_id"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model = ?"
            " JOIN encodings e ON e.key = se.key AND e.model = se.model"
            " WHERE a.chat_id = ? ORDER BY s.id",
            (model, chat_id),
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return ids, codec.vectors([r[1:] for r in rows])

    def chat_sentence_ids(self, chat_id: str) -> np.ndarray:
        rows = self._query(
            "SELECT s.id FROM sentences s JOIN articles a ON a.id = s.article_id"
            " WHERE a.chat_id = ? ORDER BY s.id",
            (chat_id,),
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    # Moving data between engines

    def export_articles(self) -> Iterator[ArticleExport]:
        ids = [row[0] for row in self._query("SELECT id FROM articles ORDER BY id")]
        for article_id in ids:
            article = self.articles_by_ids([article_id])[article_id]
            sentences = self.sentences_of(article_id)
            readings = self._query(
                f"SELECT se.sentence_id, se.model, se.passage, se.key, {ENCODING_COLUMNS}"
                " FROM sentence_encodings se JOIN sentences s ON s.id = se.sentence_id"
                " JOIN encodings e ON e.model = se.model AND e.key = se.key"
                " WHERE s.article_id = ?",
                (article_id,),
            )
            yield codec.export(
                article, self._request_of(article_id), sentences, readings, self.codebook_of
            )

    def import_article(self, export: ArticleExport) -> bool:
        article = export.article
        with self._transaction() as db:
            if self._duplicate(db, article.chat_id, article.canonical_url, article.text_hash):
                return False
            db.execute("INSERT OR IGNORE INTO chats (id) VALUES (?)", (article.chat_id,))
            db.execute(
                "UPDATE chats SET next_number = MAX(next_number, ?), version = version + 1"
                " WHERE id = ?",
                (article.number + 1, article.chat_id),
            )
            (article_id,) = db.execute(
                INSERT_ARTICLE, codec.article_columns(article, export.request)
            ).fetchone()
            for model, encodings in export.encodings.items():
                _insert_encodings(db, model, encodings, self._codebook(model))
            for sentence, readings in zip(export.sentences, export.readings, strict=True):
                (sentence_id,) = db.execute(
                    INSERT_SENTENCE,
                    (article_id, sentence.position, sentence.paragraph, sentence.start,
                     sentence.end),
                ).fetchone()  # fmt: skip
                db.executemany(
                    "INSERT INTO sentence_encodings (sentence_id, model, passage, key)"
                    " VALUES (?, ?, ?, ?)",
                    [(sentence_id, model, passage, key) for model, passage, key in readings],
                )
        for model in export.encodings:
            self._compact(model)
        return True


def _next_number(db: sqlite3.Connection, chat_id: str) -> int:
    """The chat's next short article id (creating the chat on its first article)."""
    db.execute("INSERT OR IGNORE INTO chats (id) VALUES (?)", (chat_id,))
    (number,) = db.execute(
        "UPDATE chats SET next_number = next_number + 1, version = version + 1"
        " WHERE id = ? RETURNING next_number - 1",
        (chat_id,),
    ).fetchone()
    return int(number)


def _insert_encodings(
    db: sqlite3.Connection,
    model: str,
    encodings: dict[str, Encoding],
    codebook: TokenCodebook | None,
) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO encodings (model, key, vector, token_ids, token_spans,"
        " token_vectors, format) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(model, key, *codec.encode(encoding, codebook)) for key, encoding in encodings.items()],
    )


class _Transaction:
    """`index.storage.sql.Transaction` on the SQLite connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def run(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.db.execute(sql, tuple(params)).fetchall()

    def run_many(self, sql: str, rows: list[Sequence]) -> None:
        self.db.executemany(sql, rows)
