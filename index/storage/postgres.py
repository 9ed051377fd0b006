"""The engine for many chats on several processes and machines: PostgreSQL with pgvector.

Chosen with `ARTICLEBOT_DATABASE_URL=postgresql://...`. Everything the embedded engine keeps
in SQLite and FAISS files lives here in tables; sentence vectors sit in a pgvector column next
to their chat, with one HNSW index per model, so a search is a query filtered by chat. The
planner scans a small chat's rows exactly and walks the HNSW graph for a large one (iterative
scans keep filtered results complete). Processes share nothing but the database.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from index.errors import DuplicateArticle
from index.quotas import NO_LIMITS, ChatLimits
from index.records import Article, ArticleExport, EncodedArticle, Encoding, Sentence, TokenVectors
from index.storage import codec
from index.storage.base import StorageUnavailable
from index.storage.compact import TokenCodebook
from index.storage.migrations import POSTGRES, latest, pending
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

logger = logging.getLogger(__name__)

# One advisory lock for schema changes, so processes starting together migrate once.
_SCHEMA_LOCK = 0x61727469636C65  # "article"
# How many graph neighbours an HNSW search visits: well above the 40 candidates re-ranked.
_EF_SEARCH = 200


def hide_password(url: str) -> str:
    """The database URL as it may appear in messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class PostgresStorage(SQLStorage):
    """A pool of connections to one PostgreSQL database with the pgvector extension."""

    name = "postgresql"
    _MODEL_COLUMN = "model_id"

    def __init__(self, url: str, pool_size: int = 8, compact: bool = False) -> None:
        super().__init__(compact)
        self.location = hide_password(url)
        self._models: dict[str, tuple[int, int]] = {}
        self._models_lock = threading.Lock()
        try:
            with psycopg.connect(url, connect_timeout=15) as connection:
                self._migrate(connection)
        except psycopg.OperationalError as error:
            raise StorageUnavailable(f"Cannot reach the database at {self.location}.") from error
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            configure=_configure,
            check=ConnectionPool.check_connection,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=15)
        except PoolTimeout as error:
            self._pool.close()
            raise StorageUnavailable(f"Cannot reach the database at {self.location}.") from error
        self._compact_all()

    def _model_value(self, model: str) -> int | None:
        known = self._model(model)
        return None if known is None else known[0]

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one transaction: committed when the block ends, rolled back on an
        error. A database that cannot be reached is reported as `StorageUnavailable`."""
        try:
            with self._pool.connection(timeout=30) as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise StorageUnavailable(f"The database at {self.location} is unavailable.") from error

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._connection() as db:
            return db.execute(_placeholders(sql), tuple(params)).fetchall()

    @contextmanager
    def _statements(self) -> Iterator[_Transaction]:
        with self._connection() as db:
            yield _Transaction(db)

    @contextmanager
    def _chat_statements(self, chat_id: str) -> Iterator[_Transaction]:
        with self._connection() as db:
            _lock_chat(db, chat_id)
            yield _Transaction(db)

    def _migrate(self, db: psycopg.Connection) -> None:
        """Apply the pending migrations, under a lock so processes starting together
        migrate once."""
        db.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            db.commit()
            (current,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
            ).fetchone()
            if current > latest(POSTGRES):
                raise RuntimeError(
                    f"The database at {self.location} was migrated by a newer articlebot "
                    f"(schema {current}; this one knows up to {latest(POSTGRES)})."
                )
            for migration in pending(POSTGRES, current):
                logger.info("Migrating %s to schema %d", self.location, migration.version)
                db.execute(migration.sql)
                db.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (migration.version, migration.description),
                )
                db.commit()
        finally:
            db.rollback()
            db.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
            db.commit()

    # Models and their vector indexes

    def _model(self, model: str, dimension: int | None = None) -> tuple[int, int] | None:
        """(id, dimension) of a model, registered with its HNSW index when `dimension` is
        given and the model is new; None for a model never used here."""
        with self._models_lock:
            if model in self._models:
                return self._models[model]
        rows = self._query("SELECT id, dimension FROM models WHERE key = %s", (model,))
        if not rows and dimension is not None:
            with self._connection() as db:
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(
                    "INSERT INTO models (key, dimension) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (model, dimension),
                )
                rows = db.execute(
                    "SELECT id, dimension FROM models WHERE key = %s", (model,)
                ).fetchall()
                model_id, size = rows[0]
                db.execute(
                    f"CREATE INDEX IF NOT EXISTS sentence_vectors_hnsw_{model_id}"
                    f" ON sentence_vectors USING hnsw ((vector::vector({size})) vector_ip_ops)"
                    f" WHERE model_id = {model_id}"
                )
        if not rows:
            return None
        with self._models_lock:
            self._models[model] = (int(rows[0][0]), int(rows[0][1]))
            return self._models[model]

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
        dimension = len(article.sentences[0].encoding.vector) if article.sentences else 1
        model_id, _ = self._model(article.model, dimension)
        codebook = self._codebook(model_id)
        try:
            with self._connection() as db:
                _lock_chat(db, chat_id)
                existing = _duplicate(db, chat_id, draft.canonical_url, article.text_hash)
                if existing is not None:
                    raise DuplicateArticle(existing)
                usage = db.execute(_placeholders(CHAT_USAGE), (chat_id,)).fetchone()
                limits.check(*usage, len(draft.text))
                number = _take_number(db, chat_id)
                _insert_encodings(db, model_id, article.new_encodings, codebook)
                (article_id,) = db.execute(
                    _placeholders(INSERT_ARTICLE),
                    (chat_id, number, *codec.draft_columns(draft), codec.now(), added_by,
                     article.text_hash, request),
                ).fetchone()  # fmt: skip
                ids = _insert_sentences(
                    db,
                    article_id,
                    [(i, s.paragraph, s.start, s.end) for i, s in enumerate(article.sentences)],
                )
                db.cursor().executemany(
                    "INSERT INTO sentence_encodings (sentence_id, model_id, passage, key)"
                    " VALUES (%s, %s, %s, %s)",
                    [
                        (sentence_id, model_id, s.passage, s.key)
                        for sentence_id, s in zip(ids, article.sentences, strict=True)
                    ],
                )
                db.cursor().executemany(
                    "INSERT INTO sentence_vectors (sentence_id, model_id, chat_id, vector)"
                    " VALUES (%s, %s, %s, %s)",
                    [
                        (sentence_id, model_id, chat_id, s.encoding.vector)
                        for sentence_id, s in zip(ids, article.sentences, strict=True)
                    ],
                )
                db.execute("UPDATE chats SET version = version + 1 WHERE id = %s", (chat_id,))
        except psycopg.errors.UniqueViolation:  # another process stored it just now
            existing = self.find_duplicate(chat_id, draft.canonical_url, article.text_hash)
            if existing is None:
                raise
            raise DuplicateArticle(existing) from None
        self._compact(model_id)
        return self.articles_by_ids([article_id])[article_id]

    def articles_by_ids(self, article_ids: Iterable[int]) -> dict[int, Article]:
        rows = self._query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.id = ANY(%s)",
            (sorted({int(i) for i in article_ids}),),
        )
        return {row[0]: Article(*row) for row in rows}

    # Sentences

    def sentences_by_ids(self, sentence_ids: Iterable[int]) -> dict[int, Sentence]:
        rows = self._query(
            f"SELECT {SENTENCE_COLUMNS} FROM sentences s WHERE s.id = ANY(%s)",
            (_ids(sentence_ids),),
        )
        return {row[0]: Sentence(*row) for row in rows}

    def sentence_sources(self, sentence_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        rows = self._query(
            "SELECT s.id, a.id, a.language FROM sentences s JOIN articles a ON a.id = s.article_id"
            " WHERE s.id = ANY(%s)",
            (_ids(sentence_ids),),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def passage_mates(self, model: str, sentence_ids: Iterable[int]) -> dict[int, list[int]]:
        known = self._model(model)
        if known is None:
            return {}
        rows = self._query(
            "SELECT s.id, m.id FROM sentences s"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model_id = %s"
            " JOIN sentences m ON m.article_id = s.article_id"
            " JOIN sentence_encodings me ON me.sentence_id = m.id AND me.model_id = se.model_id"
            " AND me.passage = se.passage WHERE s.id = ANY(%s) ORDER BY s.id, m.position",
            (known[0], _ids(sentence_ids)),
        )
        mates: dict[int, list[int]] = {}
        for sentence, mate in rows:
            mates.setdefault(sentence, []).append(mate)
        return mates

    def sentence_tokens(self, model: str, sentence_ids: Iterable[int]) -> dict[int, TokenVectors]:
        known = self._model(model)
        if known is None:
            return {}
        rows = self._query(
            f"SELECT se.sentence_id, {ENCODING_COLUMNS} FROM sentence_encodings se"
            " JOIN encodings e ON e.key = se.key AND e.model_id = se.model_id"
            " WHERE se.model_id = %s AND se.sentence_id = ANY(%s)",
            (known[0], _ids(sentence_ids)),
        )
        encodings = codec.decode_rows(rows, self._codebook(known[0]))
        return {sentence_id: encoding.tokens for sentence_id, encoding in encodings.items()}

    def chat_token_ids(self, chat_id: str, model: str) -> list[np.ndarray]:
        known = self._model(model)
        if known is None:
            return []
        rows = self._query(
            "SELECT e.token_ids, e.format FROM sentences s JOIN articles a ON a.id = s.article_id"
            " JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model_id = %s"
            " JOIN encodings e ON e.key = se.key AND e.model_id = se.model_id"
            " WHERE a.chat_id = %s",
            (known[0], chat_id),
        )
        return [codec.token_ids(bytes(r[0]), r[1]) for r in rows]

    # The encoding cache

    def cached_encodings(self, model: str, keys: Iterable[str]) -> dict[str, Encoding]:
        known = self._model(model)
        if known is None:
            return {}
        rows = self._query(
            f"SELECT e.key, {ENCODING_COLUMNS} FROM encodings e"
            " WHERE e.model_id = %s AND e.key = ANY(%s)",
            (known[0], sorted(set(keys))),
        )
        return codec.decode_rows(rows, self._codebook(known[0]))

    def articles_lacking_encodings(self, chat_id: str, model: str) -> list[int]:
        known = self._model(model)
        rows = self._query(
            "SELECT DISTINCT s.article_id FROM sentences s JOIN articles a ON a.id = s.article_id"
            " LEFT JOIN sentence_encodings se ON se.sentence_id = s.id AND se.model_id = %s"
            " WHERE a.chat_id = %s AND se.key IS NULL",
            (known[0] if known else -1, chat_id),
        )
        return [row[0] for row in rows]

    def set_encodings(
        self,
        chat_id: str,
        model: str,
        sentences: list[tuple[int, int, str]],
        encodings: dict[str, Encoding],
    ) -> None:
        if not sentences:
            return
        dimension = len(next(iter(encodings.values())).vector) if encodings else None
        known = self._model(model, dimension)
        if known is None:
            raise ValueError(f"No encodings of {model} to store")
        model_id = known[0]
        codebook = self._codebook(model_id)
        with self._connection() as db:
            _insert_encodings(db, model_id, encodings, codebook)
            db.cursor().executemany(
                "INSERT INTO sentence_encodings (sentence_id, model_id, passage, key)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (sentence_id, model_id)"
                " DO UPDATE SET passage = EXCLUDED.passage, key = EXCLUDED.key",
                [(sentence_id, model_id, passage, key) for sentence_id, passage, key in sentences],
            )
            _insert_vectors(db, model_id, chat_id, sentences, encodings, codebook)
            db.execute("UPDATE chats SET version = version + 1 WHERE id = %s", (chat_id,))
        self._compact(model_id)

    # Search

    def search(
        self, chat_id: str, model: str, vector: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        known = self._model(model)
        if known is None or k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        model_id, dimension = known
        rows = self._query(
            f"SELECT sentence_id, (vector::vector({dimension})) <#> %s AS distance"
            f" FROM sentence_vectors WHERE model_id = {model_id} AND chat_id = %s"
            f" ORDER BY (vector::vector({dimension})) <#> %s LIMIT %s",
            (vector.astype(np.float32), chat_id, vector.astype(np.float32), k),
        )
        rows.sort(key=lambda row: row[1])  # iterative scans may return neighbours loosely
        scores = np.array([-row[1] for row in rows], dtype=np.float32)
        return scores, np.array([row[0] for row in rows], dtype=np.int64)

    def vector_count(self, chat_id: str, model: str) -> int:
        known = self._model(model)
        if known is None:
            return 0
        rows = self._query(
            "SELECT COUNT(*) FROM sentence_vectors WHERE model_id = %s AND chat_id = %s",
            (known[0], chat_id),
        )
        return int(rows[0][0])

    # Moving data between engines

    def export_articles(self) -> Iterator[ArticleExport]:
        ids = [row[0] for row in self._query("SELECT id FROM articles ORDER BY id")]
        for article_id in ids:
            article = self.articles_by_ids([article_id])[article_id]
            readings = self._query(
                f"SELECT se.sentence_id, m.key, se.passage, se.key, {ENCODING_COLUMNS}"
                " FROM sentence_encodings se JOIN sentences s ON s.id = se.sentence_id"
                " JOIN models m ON m.id = se.model_id"
                " JOIN encodings e ON e.model_id = se.model_id AND e.key = se.key"
                " WHERE s.article_id = %s",
                (article_id,),
            )
            yield codec.export(
                article,
                self._request_of(article_id),
                self.sentences_of(article_id),
                readings,
                self.codebook_of,
            )

    def import_article(self, export: ArticleExport) -> bool:
        article = export.article
        models = {
            model: self._model(model, len(next(iter(encodings.values())).vector))
            for model, encodings in export.encodings.items()
            if encodings
        }
        with self._connection() as db:
            _lock_chat(db, article.chat_id)
            if _duplicate(db, article.chat_id, article.canonical_url, article.text_hash):
                return False
            db.execute(
                "UPDATE chats SET next_number = GREATEST(next_number, %s) WHERE id = %s",
                (article.number + 1, article.chat_id),
            )
            (article_id,) = db.execute(
                _placeholders(INSERT_ARTICLE),
                codec.article_columns(article, export.request),
            ).fetchone()
            ids = _insert_sentences(
                db,
                article_id,
                [(s.position, s.paragraph, s.start, s.end) for s in export.sentences],
            )
            for model, (model_id, _dimension) in models.items():
                encodings = export.encodings[model]
                readings = [
                    (sentence_id, passage, key)
                    for sentence_id, reads in zip(ids, export.readings, strict=True)
                    for reading_model, passage, key in reads
                    if reading_model == model
                ]
                codebook = self._codebook(model_id)
                _insert_encodings(db, model_id, encodings, codebook)
                db.cursor().executemany(
                    "INSERT INTO sentence_encodings (sentence_id, model_id, passage, key)"
                    " VALUES (%s, %s, %s, %s)",
                    [
                        (sentence_id, model_id, passage, key)
                        for sentence_id, passage, key in readings
                    ],
                )
                _insert_vectors(db, model_id, article.chat_id, readings, encodings, codebook)
            db.execute("UPDATE chats SET version = version + 1 WHERE id = %s", (article.chat_id,))
        for model_id, _dimension in models.values():
            self._compact(model_id)
        return True


def _configure(connection: psycopg.Connection) -> None:
    """Each new connection knows the vector type and searches HNSW indexes thoroughly."""
    register_vector(connection)
    connection.execute(f"SET hnsw.ef_search = {_EF_SEARCH}")
    connection.execute("SET hnsw.iterative_scan = relaxed_order")
    connection.commit()


def _placeholders(sql: str) -> str:
    """SQL written with `?` placeholders (see `index.storage.sql`) as psycopg takes it."""
    return sql.replace("?", "%s")


def _ids(values: Iterable[int]) -> list[int]:
    return sorted({int(v) for v in values})


def _lock_chat(db: psycopg.Connection, chat_id: str) -> None:
    """Lock the chat's row for this transaction (creating it on its first article), so
    changes to one chat's articles happen one after another."""
    db.execute("INSERT INTO chats (id) VALUES (%s) ON CONFLICT DO NOTHING", (chat_id,))
    db.execute("SELECT 1 FROM chats WHERE id = %s FOR UPDATE", (chat_id,))


def _take_number(db: psycopg.Connection, chat_id: str) -> int:
    """The chat's next short article id (with the chat's row locked)."""
    (number,) = db.execute(
        "UPDATE chats SET next_number = next_number + 1 WHERE id = %s RETURNING next_number - 1",
        (chat_id,),
    ).fetchone()
    return int(number)


def _duplicate(
    db: psycopg.Connection, chat_id: str, canonical_url: str | None, text_hash: str
) -> Article | None:
    rows = db.execute(_placeholders(DUPLICATE), (chat_id, text_hash, canonical_url)).fetchall()
    return Article(*rows[0]) if rows else None


def _insert_sentences(
    db: psycopg.Connection, article_id: int, rows: list[tuple[int, int, int, int]]
) -> list[int]:
    """Insert (position, paragraph, start, end) rows; returns their ids in the same order."""
    ids = []
    with db.cursor() as cursor:
        cursor.executemany(
            _placeholders(INSERT_SENTENCE),
            [(article_id, *row) for row in rows],
            returning=True,
        )
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                break
    return ids


def _insert_encodings(
    db: psycopg.Connection,
    model_id: int,
    encodings: dict[str, Encoding],
    codebook: TokenCodebook | None,
) -> None:
    db.cursor().executemany(
        "INSERT INTO encodings (model_id, key, vector, token_ids, token_spans, token_vectors,"
        " format) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(model_id, key, *codec.encode(encoding, codebook)) for key, encoding in encodings.items()],
    )


def _insert_vectors(
    db: psycopg.Connection,
    model_id: int,
    chat_id: str,
    readings: list[tuple[int, int, str]],
    encodings: dict[str, Encoding],
    codebook: TokenCodebook | None,
) -> None:
    """The search vectors of sentences read as `(sentence id, passage, key)`; encodings
    not given here are taken from the cache."""
    missing = sorted({key for _s, _p, key in readings} - set(encodings))
    known = dict(encodings)
    if missing:
        rows = db.execute(
            f"SELECT e.key, {ENCODING_COLUMNS} FROM encodings e"
            " WHERE e.model_id = %s AND e.key = ANY(%s)",
            (model_id, missing),
        ).fetchall()
        known.update(codec.decode_rows(rows, codebook))
    db.cursor().executemany(
        "INSERT INTO sentence_vectors (sentence_id, model_id, chat_id, vector)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (model_id, sentence_id)"
        " DO UPDATE SET vector = EXCLUDED.vector",
        [(sentence_id, model_id, chat_id, known[key].vector) for sentence_id, _p, key in readings],
    )


class _Transaction:
    """`index.storage.sql.Transaction` on a PostgreSQL connection."""

    def __init__(self, db: psycopg.Connection) -> None:
        self.db = db

    def run(self, sql: str, params: Sequence = ()) -> list[tuple]:
        cursor = self.db.execute(_placeholders(sql), tuple(params))
        return cursor.fetchall() if cursor.description else []

    def run_many(self, sql: str, rows: list[Sequence]) -> None:
        self.db.cursor().executemany(_placeholders(sql), rows)
