"""What both engines do alike, written once in SQL that SQLite and PostgreSQL both speak.

Queries here use `?` placeholders; the PostgreSQL engine runs them with `%s`. What differs
between the engines (transactions, IN lists, vectors, models) stays in each engine.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from index.records import Article, Sentence
from index.storage.base import ADDS_KEPT_SECONDS, ANSWERS_PER_CHAT, Storage

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
INSERT_ARTICLE = (
    "INSERT INTO articles (chat_id, number, title, text, language, source, url, canonical_url,"
    " author, published, added_at, added_by, text_hash, request)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
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

    def _execute(self, *statements: tuple[str, tuple]) -> None:
        with self._statements() as transaction:
            for sql, params in statements:
                transaction.run(sql, params)

    def _vectors_removed(self, chat_id: str, sentence_ids: list[int], whole_chat: bool) -> None:
        """Called after sentences were deleted, for vectors kept outside the database."""

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
        rows = self._query(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(text)), 0) FROM articles WHERE chat_id = ?",
            (chat_id,),
        )
        return int(rows[0][0]), int(rows[0][1])

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
