"""What both engines do alike, written once in SQL that SQLite and PostgreSQL both speak.

Queries here use `?` placeholders; the PostgreSQL engine runs them with `%s`. What differs
between the engines (transactions, IN lists, vectors, models) stays in each engine.
"""

from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np
from tqdm import tqdm

from index.errors import FeedRejected
from index.quotas import ADDS_KEPT_SECONDS
from index.records import Article, Feed, Sentence
from index.storage import codec
from index.storage.base import ANSWERS_PER_CHAT, Storage
from index.storage.compact import TRAINING_TOKENS, TokenCodebook

logger = logging.getLogger(__name__)

# An encoding as `codec.decode` reads it.
ENCODING_COLUMNS = "e.vector, e.token_ids, e.token_spans, e.token_vectors, e.format"
# FULL rows compacted per transaction.
_COMPACT_BATCH = 500
SENTENCE_COLUMNS = 's.id, s.article_id, s.position, s.paragraph, s.start, s."end"'
ARTICLE_COLUMNS = (
    "a.id, a.chat_id, a.number, a.title, a.text, a.language, a.source, a.url, a.canonical_url,"
    " a.author, a.published, a.added_at, a.added_by, a.text_hash,"
    " (SELECT COUNT(*) FROM sentences s WHERE s.article_id = a.id)"
)
DUPLICATE = (
    f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ?"
    " AND (a.text_hash = ? OR (a.canonical_url IS NOT NULL AND a.canonical_url = ?))"
    " ORDER BY a.id LIMIT 1"
)
CHAT_USAGE = "SELECT COUNT(*), COALESCE(SUM(LENGTH(text)), 0) FROM articles WHERE chat_id = ?"
INSERT_ARTICLE = (
    "INSERT INTO articles (chat_id, number, title, text, language, source, url, canonical_url,"
    " author, published, added_at, added_by, text_hash, request)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
FEED_COLUMNS = (
    "id, chat_id, url, title, added_by, added_at, language, etag, last_modified, last_success,"
    " last_error, failures, reported, paused"
)
INSERT_SENTENCE = (
    'INSERT INTO sentences (article_id, position, paragraph, start, "end")'
    " VALUES (?, ?, ?, ?, ?) RETURNING id"
)


class Transaction(Protocol):
    """Statements (with `?` placeholders) run in one database transaction."""

    def run(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Run one statement; its rows (none for a statement that returns none)."""

    def run_many(self, sql: str, rows: list[Sequence]) -> None:
        """Run one statement once per row of parameters."""


class SQLStorage(Storage):
    """The part of `Storage` both engines share."""

    # How `encodings` and `sentence_encodings` name the model: by key, or by id.
    _MODEL_COLUMN: str

    @abstractmethod
    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        """Rows of one query (with `?` placeholders)."""

    @abstractmethod
    def _statements(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed when the block ends, rolled back on an error."""

    def __init__(self, compact: bool = False) -> None:
        self.compact = compact  # learn a token codebook (see `compact_encodings` in config/)
        self._codebooks: dict[object, TokenCodebook] = {}
        self._compact_lock = threading.Lock()

    @abstractmethod
    def _model_value(self, model: str) -> object | None:
        """How the tables name `model` (its key, or its id); None for a model never used."""

    def _chat_statements(self, chat_id: str) -> AbstractContextManager[Transaction]:
        """A transaction during which no other one changes the chat: SQLite's write
        transactions run one at a time anyway; PostgreSQL's lock the chat's row."""
        return self._statements()

    def _query_once(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of one statement that changes data, run in a transaction of its own."""
        with self._statements() as transaction:
            return transaction.run(sql, params)

    def _execute(self, *statements: tuple[str, tuple]) -> None:
        with self._statements() as transaction:
            for sql, params in statements:
                transaction.run(sql, params)

    def _vectors_removed(self, chat_id: str, sentence_ids: list[int], whole_chat: bool) -> None:
        """Called after sentences were deleted, for vectors kept outside the database."""

    # Compact encodings (see `index.storage.compact` and `index.storage.codec`)

    def _codebook(self, model_value: object | None) -> TokenCodebook | None:
        """The model's token codebook, once it has been learnt (by any process)."""
        if model_value is None:
            return None
        codebooks = self._codebooks
        if model_value not in codebooks:
            column = self._MODEL_COLUMN
            rows = self._query(
                f"SELECT codebook FROM token_codebooks WHERE {column} = ?", (model_value,)
            )
            if not rows:
                return None
            codebooks[model_value] = TokenCodebook.from_bytes(bytes(rows[0][0]))
        return codebooks[model_value]

    def codebook_of(self, model: str) -> TokenCodebook | None:
        return self._codebook(self._model_value(model))

    def _compact_all(self) -> None:
        """Compact what an older version (or a model's first articles) stored in FULL."""
        column = self._MODEL_COLUMN
        for (model_value,) in self._query(
            f"SELECT DISTINCT {column} FROM encodings WHERE format = {codec.FULL}"
        ):
            self._compact(model_value)

    def _compact(self, model_value: object | None) -> None:
        """Learn the model's codebook once it has read `TRAINING_TOKENS` tokens, then rewrite
        its FULL encodings compactly. Cheap when there is nothing to do."""
        if model_value is None:
            return
        with self._compact_lock:
            codebook = self._codebook(model_value) or self._learn_codebook(model_value)
            if codebook is not None:
                self._rewrite_full_rows(model_value, codebook)

    def _learn_codebook(self, model_value: object) -> TokenCodebook | None:
        if not self.compact:
            return None
        column = self._MODEL_COLUMN
        ((tokens,),) = self._query(
            f"SELECT COALESCE(SUM(LENGTH(token_ids)), 0) / 4 FROM encodings"
            f" WHERE {column} = ? AND format = {codec.FULL}",
            (model_value,),
        )
        if tokens < TRAINING_TOKENS:
            return None
        # Ordered by key, a hash: an even sample of everything read so far (sentences have
        # tens of tokens, so these rows hold several times the tokens needed).
        rows = self._query(
            f"SELECT {ENCODING_COLUMNS} FROM encodings e WHERE {column} = ?"
            f" AND format = {codec.FULL} ORDER BY key LIMIT {TRAINING_TOKENS // 4}",
            (model_value,),
        )
        vectors = np.concatenate([codec.decode(row, None).tokens.vectors for row in rows])
        sample = np.random.default_rng(0).permutation(len(vectors))[:TRAINING_TOKENS]
        logger.info("Learning the token codebook from %d token vectors", len(sample))
        learnt = TokenCodebook.learn(vectors[sample])
        self._execute(
            (
                f"INSERT INTO token_codebooks ({column}, codebook) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (model_value, learnt.to_bytes()),
            )
        )
        return self._codebook(model_value)  # another process's, if it was quicker

    def _rewrite_full_rows(self, model_value: object, codebook: TokenCodebook) -> None:
        column = self._MODEL_COLUMN
        # Walked by key: a row that stays FULL (a sentence too long for compact spans) is
        # passed once, not met again.
        select = (
            f"SELECT key, {ENCODING_COLUMNS} FROM encodings e WHERE {column} = ?"
            f" AND format = {codec.FULL} AND key > ? ORDER BY key LIMIT {_COMPACT_BATCH}"
        )
        rows = self._query(select, (model_value, ""))
        if not rows:
            return
        ((total,),) = self._query(
            f"SELECT COUNT(*) FROM encodings WHERE {column} = ? AND format = {codec.FULL}",
            (model_value,),
        )
        logger.info("Compacting %d stored encodings (token vectors to %d-byte codes)", total,
                    codebook.code_size)  # fmt: skip
        with tqdm(total=total, desc="compacting encodings", unit=" sentences",
                  disable=total < 5 * _COMPACT_BATCH) as bar:  # fmt: skip
            while rows:
                with self._statements() as transaction:
                    transaction.run_many(
                        f"UPDATE encodings SET vector = ?, token_ids = ?, token_spans = ?,"
                        f" token_vectors = ?, format = ? WHERE {column} = ? AND key = ?",
                        [
                            (*codec.encode(codec.decode(row[1:], None), codebook), model_value,
                             row[0])
                            for row in rows
                        ],
                    )  # fmt: skip
                bar.update(len(rows))
                rows = self._query(select, (model_value, rows[-1][0]))
        self._reclaim_space()

    def _reclaim_space(self) -> None:
        """Give the space the full rows took back, where the engine does not do so itself."""

    def remove_article(self, chat_id: str, number: int) -> Article | None:
        article = self.article(chat_id, number)
        if article is None:
            return None
        sentence_ids, _count = self._delete_articles(chat_id, "id = ?", article.id)
        self._vectors_removed(chat_id, sentence_ids, whole_chat=False)
        return article

    def forget_chat(self, chat_id: str) -> int:
        sentence_ids, count = self._delete_articles(chat_id, "chat_id = ?", chat_id)
        self._vectors_removed(chat_id, sentence_ids, whole_chat=True)
        return count

    def _delete_articles(self, chat_id: str, where: str, value: object) -> tuple[list[int], int]:
        """Delete the chat's articles matching `where`, with their sentences and the encodings
        no other sentence uses (what a model made of an article, its token ids, spells out its
        text, so it goes with it); returns the deleted sentence ids and the article count."""
        model = self._MODEL_COLUMN
        chosen = f"SELECT id FROM articles WHERE chat_id = ? AND {where}"
        with self._statements() as transaction:
            sentences = transaction.run(
                f"SELECT id FROM sentences WHERE article_id IN ({chosen})", (chat_id, value)
            )
            keys = transaction.run(
                f"SELECT DISTINCT se.{model}, se.key FROM sentence_encodings se"
                f" JOIN sentences s ON s.id = se.sentence_id WHERE s.article_id IN ({chosen})",
                (chat_id, value),
            )
            deleted = transaction.run(
                f"DELETE FROM articles WHERE chat_id = ? AND {where} RETURNING id",
                (chat_id, value),
            )
            transaction.run_many(
                f"DELETE FROM encodings WHERE {model} = ? AND key = ? AND NOT EXISTS (SELECT 1"
                f" FROM sentence_encodings se WHERE se.{model} = ? AND se.key = ?)",
                [(m, key, m, key) for m, key in keys],
            )
            transaction.run("UPDATE chats SET version = version + 1 WHERE id = ?", (chat_id,))
        return [row[0] for row in sentences], len(deleted)

    def article(self, chat_id: str, number: int) -> Article | None:
        rows = self._query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ? AND a.number = ?",
            (chat_id, number),
        )
        return Article(*rows[0]) if rows else None

    def articles(self, chat_id: str) -> list[Article]:
        rows = self._query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ? ORDER BY a.number",
            (chat_id,),
        )
        return [Article(*row) for row in rows]

    def stored_for(self, chat_id: str, request: str) -> Article | None:
        rows = self._query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.chat_id = ? AND a.request = ?",
            (chat_id, request),
        )
        return Article(*rows[0]) if rows else None

    def find_duplicate(
        self, chat_id: str, canonical_url: str | None, text_hash: str
    ) -> Article | None:
        rows = self._query(DUPLICATE, (chat_id, text_hash, canonical_url))
        return Article(*rows[0]) if rows else None

    def chat_languages(self, chat_id: str) -> set[str]:
        rows = self._query("SELECT DISTINCT language FROM articles WHERE chat_id = ?", (chat_id,))
        return {row[0] for row in rows}

    def chat_version(self, chat_id: str) -> int:
        rows = self._query("SELECT version FROM chats WHERE id = ?", (chat_id,))
        return int(rows[0][0]) if rows else 0

    def article_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM articles")[0][0])

    def sentences_of(self, article_id: int) -> list[Sentence]:
        rows = self._query(
            f"SELECT {SENTENCE_COLUMNS} FROM sentences s WHERE s.article_id = ?"
            " ORDER BY s.position",
            (article_id,),
        )
        return [Sentence(*row) for row in rows]

    def _request_of(self, article_id: int) -> str | None:
        return self._query("SELECT request FROM articles WHERE id = ?", (article_id,))[0][0]

    # Quotas

    def chat_usage(self, chat_id: str) -> tuple[int, int]:
        ((articles, characters),) = self._query(CHAT_USAGE, (chat_id,))
        return int(articles), int(characters)

    def note_add(self, user_id: str, at: float) -> None:
        self._execute(
            ("DELETE FROM adds WHERE at < ?", (at - ADDS_KEPT_SECONDS,)),
            ("INSERT INTO adds (user_id, at) VALUES (?, ?)", (user_id, at)),
        )

    def adds_since(self, user_id: str, since: float) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM adds WHERE user_id = ? AND at >= ?", (user_id, since)
        )
        return int(rows[0][0])

    # Conversation memory

    def remember_answer(self, chat_id: str, message_id: int, record: str, latest: bool) -> None:
        statements = [
            (
                "INSERT INTO answer_messages (chat_id, message_id, record) VALUES (?, ?, ?)"
                " ON CONFLICT (chat_id, message_id) DO UPDATE SET record = excluded.record",
                (chat_id, message_id, record),
            ),
            (
                "DELETE FROM answer_messages WHERE chat_id = ? AND id <= (SELECT id FROM"
                " answer_messages WHERE chat_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (chat_id, chat_id, ANSWERS_PER_CHAT),
            ),
        ]
        if latest:
            statements.append(
                (
                    "INSERT INTO latest_answers (chat_id, message_id) VALUES (?, ?)"
                    " ON CONFLICT (chat_id) DO UPDATE SET message_id = excluded.message_id",
                    (chat_id, message_id),
                )
            )
        self._execute(*statements)

    def recall_answer(self, chat_id: str, message_id: int) -> str | None:
        rows = self._query(
            "SELECT record FROM answer_messages WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return rows[0][0] if rows else None

    def latest_answer(self, chat_id: str) -> str | None:
        rows = self._query(
            "SELECT m.record FROM latest_answers l JOIN answer_messages m"
            " ON m.chat_id = l.chat_id AND m.message_id = l.message_id WHERE l.chat_id = ?",
            (chat_id,),
        )
        return rows[0][0] if rows else None

    def clear_latest_answer(self, chat_id: str) -> None:
        self._execute(("DELETE FROM latest_answers WHERE chat_id = ?", (chat_id,)))

    # Feeds and per-chat settings

    def add_feed(
        self,
        chat_id: str,
        url: str,
        title: str,
        added_by: str | None,
        language: str,
        claimed_until: float,
        limit: int = 0,
    ) -> Feed:
        with self._chat_statements(chat_id) as transaction:
            followed = {
                u for (u,) in transaction.run("SELECT url FROM feeds WHERE chat_id = ?", (chat_id,))
            }
            if limit and len(followed) >= limit and url not in followed:
                raise FeedRejected("too_many_feeds", limit=limit)
            ((feed_id,),) = transaction.run(
                "INSERT INTO feeds (chat_id, url, title, added_by, added_at, language, next_poll,"
                " claimed_until) VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (chat_id, url)"
                " DO UPDATE SET title = excluded.title, language = excluded.language,"
                " next_poll = 0, claimed_until = excluded.claimed_until, failures = 0,"
                " reported = 0, paused = 0 RETURNING id",
                (chat_id, url, title, added_by, codec.now(), language, claimed_until),
            )
        return self.feed(chat_id, feed_id)

    def feeds(self, chat_id: str) -> list[Feed]:
        rows = self._query(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE chat_id = ? ORDER BY id", (chat_id,)
        )
        return [_feed(row) for row in rows]

    def feed(self, chat_id: str, feed_id: int) -> Feed | None:
        rows = self._query(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE chat_id = ? AND id = ?", (chat_id, feed_id)
        )
        return _feed(rows[0]) if rows else None

    def remove_feed(self, chat_id: str, feed_id: int) -> Feed | None:
        rows = self._query_once(
            f"DELETE FROM feeds WHERE chat_id = ? AND id = ? RETURNING {FEED_COLUMNS}",
            (chat_id, feed_id),
        )
        return _feed(rows[0]) if rows else None

    def claim_due_feed(self, now: float, until: float) -> Feed | None:
        # The conditions are checked again on the row itself: a second process claiming at
        # the same moment waits for the first one's row lock, then finds the feed claimed.
        due = "paused = 0 AND next_poll <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
        rows = self._query_once(
            f"UPDATE feeds SET claimed_until = ? WHERE id = (SELECT id FROM feeds WHERE {due}"
            f" ORDER BY next_poll, id LIMIT 1) AND {due} RETURNING {FEED_COLUMNS}",
            (until, now, now, now, now),
        )
        return _feed(rows[0]) if rows else None

    def unseen_items(self, feed_id: int, keys: list[str]) -> list[str]:
        rows = self._query("SELECT key FROM feed_items WHERE feed_id = ?", (feed_id,))
        seen = {row[0] for row in rows}
        return [key for key in keys if key not in seen]

    def record_feed_poll(
        self, feed: Feed, seen: list[str], next_poll: float, success_at: str | None
    ) -> None:
        with self._statements() as transaction:
            updated = transaction.run(
                "UPDATE feeds SET etag = ?, last_modified = ?, last_error = ?, failures = ?,"
                " reported = ?, paused = ?, next_poll = ?, claimed_until = NULL,"
                " last_success = COALESCE(?, last_success) WHERE id = ? RETURNING id",
                (feed.etag, feed.last_modified, feed.last_error, feed.failures,
                 int(feed.reported), int(feed.paused), next_poll, success_at, feed.id),
            )  # fmt: skip
            if updated and seen:  # else the feed was unfollowed meanwhile
                rows = transaction.run("SELECT key FROM feed_items WHERE feed_id = ?", (feed.id,))
                known, listed = {key for (key,) in rows}, set(seen)
                transaction.run_many(
                    "INSERT INTO feed_items (feed_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(feed.id, key) for key in listed - known],
                )
                transaction.run_many(
                    "DELETE FROM feed_items WHERE feed_id = ? AND key = ?",
                    [(feed.id, key) for key in known - listed],
                )

    def collects_links(self, chat_id: str) -> bool:
        rows = self._query("SELECT collect_links FROM chat_settings WHERE chat_id = ?", (chat_id,))
        return bool(rows and rows[0][0])

    def set_collects_links(self, chat_id: str, on: bool) -> None:
        self._execute(
            (
                "INSERT INTO chat_settings (chat_id, collect_links) VALUES (?, ?) ON CONFLICT"
                " (chat_id) DO UPDATE SET collect_links = excluded.collect_links",
                (chat_id, int(on)),
            )
        )


def _feed(row: tuple) -> Feed:
    *head, reported, paused = row
    return Feed(*head, reported=bool(reported), paused=bool(paused))
