"""The inbox: Telegram updates kept in PostgreSQL from the moment they arrive until handled.

The webhook stores each update here before Telegram gets its "200", so an update that has
arrived is never lost. Worker processes (on one machine or several) take updates out:

- A worker claims an update with a session-level advisory lock on its id, so one worker
  handles it at a time. A worker that dies (`kill -9`, a lost machine) loses its database
  session and with it its claims: another worker takes the update over.
- An update is claimed only when no earlier update of its chat is still waiting, so a chat's
  updates are handled in order, and different chats' in parallel.
- A retried update that was answered already (`replied_at`) is closed without answering twice.
- An update that keeps failing is given up after `MAX_ATTEMPTS`, so its chat moves on.

New updates are announced with NOTIFY, so idle workers start at once instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_CHANNEL = "articlebot_inbox"
# Handled updates are kept this long (to recognise Telegram's repeated deliveries).
_KEEP_DONE = "1 day"


@dataclass(frozen=True)
class Claim:
    """An update a worker holds: handle it, then `finish` or `retry_later`."""

    update_id: int
    body: dict[str, Any]
    attempts: int
    replied: bool


def chat_key(update: dict[str, Any]) -> str:
    """What orders an update: its chat, or for chat-less updates (inline queries) its user."""
    for payload in update.values():
        if not isinstance(payload, dict):
            continue
        message = payload if "chat" in payload else payload.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            return f"chat:{message['chat'].get('id')}"
        if isinstance(payload.get("from"), dict):
            return f"user:{payload['from'].get('id')}"
    return "none"


def valid_update(body: object) -> bool:
    """Whether a request body is shaped like a Telegram update."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("update_id"), int)
        and not isinstance(body.get("update_id"), bool)
        and 0 <= body["update_id"] < 2**63
    )


class Inbox:
    """The inbox table of one PostgreSQL database (created by the storage migrations)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._writer: psycopg.AsyncConnection | None = None
        self._writer_lock = asyncio.Lock()
        self._listener: asyncio.Task | None = None
        self._news = asyncio.Event()

    async def connect(self) -> psycopg.AsyncConnection:
        """A connection of its own for a worker slot: its claims live as long as it does."""
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        if self._writer is not None:
            await self._writer.close()

    async def _write(self, sql: str, params: tuple) -> psycopg.AsyncCursor:
        """Run one statement on the shared writing connection (reconnecting if it was lost)."""
        async with self._writer_lock:
            if self._writer is None or self._writer.closed:
                self._writer = await self.connect()
            try:
                return await self._writer.execute(sql, params)
            except psycopg.OperationalError:
                await self._writer.close()
                self._writer = None
                raise

    # The webhook's side

    async def put(self, update: dict[str, Any]) -> bool:
        """Store an update (committed when this returns); False if it was stored before."""
        cursor = await self._write(
            "WITH stored AS (INSERT INTO inbox (update_id, chat_key, body) VALUES (%s, %s, %s)"
            " ON CONFLICT (update_id) DO NOTHING RETURNING update_id)"
            " SELECT pg_notify(%s, ''), update_id FROM stored",
            (update["update_id"], chat_key(update), Jsonb(update), _CHANNEL),
        )
        return await cursor.fetchone() is not None

    # The workers' side

    async def claim(self, connection: psycopg.AsyncConnection) -> Claim | None:
        """The oldest update whose chat has nothing earlier waiting, locked for this
        connection; None when there is nothing to do."""
        rows = await (
            await connection.execute(
                "SELECT i.update_id FROM inbox i WHERE i.done_at IS NULL"
                " AND i.not_before <= now() AND NOT EXISTS (SELECT 1 FROM inbox e"
                " WHERE e.chat_key = i.chat_key AND e.done_at IS NULL"
                " AND e.update_id < i.update_id) ORDER BY i.update_id LIMIT 32"
            )
        ).fetchall()
        for (update_id,) in rows:
            locked = await (
                await connection.execute("SELECT pg_try_advisory_lock(%s)", (update_id,))
            ).fetchone()
            if not locked[0]:
                continue  # another worker has it
            row = await (
                await connection.execute(
                    "UPDATE inbox SET attempts = attempts + 1 WHERE update_id = %s"
                    " AND done_at IS NULL RETURNING body, attempts, replied_at IS NOT NULL",
                    (update_id,),
                )
            ).fetchone()
            if row is None:  # finished by its worker a moment ago
                await self._unlock(connection, update_id)
                continue
            body, attempts, replied = row
            return Claim(update_id, body, attempts, replied)
        return None

    async def finish(
        self, connection: psycopg.AsyncConnection, claim: Claim, failed: bool = False
    ) -> None:
        """The update is handled (or given up): close it and let its chat's next one go."""
        await connection.execute(
            "UPDATE inbox SET done_at = now(), failed = %s WHERE update_id = %s",
            (failed, claim.update_id),
        )
        await self._unlock(connection, claim.update_id)
        await connection.execute("SELECT pg_notify(%s, '')", (_CHANNEL,))

    async def retry_later(
        self, connection: psycopg.AsyncConnection, claim: Claim, seconds: float
    ) -> None:
        """Leave the update for later (its chat waits meanwhile)."""
        await connection.execute(
            "UPDATE inbox SET not_before = now() + make_interval(secs => %s) WHERE update_id = %s",
            (seconds, claim.update_id),
        )
        await self._unlock(connection, claim.update_id)

    @staticmethod
    async def note_reply(connection: psycopg.AsyncConnection, update_id: int) -> None:
        """The bot sent a message in answer to this update (noted on the connection of the
        worker slot handling it: no wait for a shared one)."""
        await connection.execute(
            "UPDATE inbox SET replied_at = now() WHERE update_id = %s AND replied_at IS NULL",
            (update_id,),
        )

    async def prune(self) -> None:
        """Forget updates handled long ago."""
        await self._write(f"DELETE FROM inbox WHERE done_at < now() - interval '{_KEEP_DONE}'", ())

    @staticmethod
    async def _unlock(connection: psycopg.AsyncConnection, update_id: int) -> None:
        await connection.execute("SELECT pg_advisory_unlock(%s)", (update_id,))

    # Waking idle workers

    async def wait_for_news(self, timeout: float) -> None:
        """Return when an update was stored or finished (another may be free now), or after
        `timeout` seconds."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._news.wait(), timeout)
        self._news.clear()

    async def _listen(self) -> None:
        try:
            async with await self.connect() as connection:
                await connection.execute(f"LISTEN {_CHANNEL}")
                async for _notice in connection.notifies():
                    self._news.set()
        except psycopg.OperationalError:
            logger.warning("Lost the inbox's notification channel; polling until it is back")
