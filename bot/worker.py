"""Worker mode: handle the updates of the inbox (`bot.inbox`) with the bot's usual handlers.

Each worker process runs a few slots; each slot claims an update, hands it to the
Application exactly as polling would (`Application.process_update`), and closes it. A slot
holds one database connection, and with it its claim, so a worker that dies releases what it
held. Updates whose handling met an unavailable database are tried again later; the user gets
a short apology meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from telegram import Update
from telegram.ext import Application

from bot.delivery import PatientBot
from bot.inbox import MAX_ATTEMPTS, Claim, Inbox

logger = logging.getLogger(__name__)

# Slots per worker process: updates of this many chats are handled at once.
SLOTS = 4
# After an unavailable database, wait this long before trying an update again.
RETRY_SECONDS = 5.0
_PRUNE_EVERY = 3600.0
# Bot API methods that answer the user.
_ANSWERS = frozenset(
    {"sendMessage", "sendDocument", "editMessageText", "answerCallbackQuery", "answerInlineQuery"}
)


@dataclass
class _Handling:
    """The update a worker slot is handling, with the slot's own database connection."""

    update_id: int
    connection: psycopg.AsyncConnection
    retry: bool = False


_handling: ContextVar[_Handling | None] = ContextVar("handling", default=None)


def retry_later() -> bool:
    """Ask for the update being handled to be tried again later (its handling met an
    unavailable database). False outside worker mode: the update is then lost."""
    handling = _handling.get()
    if handling is None:
        return False
    handling.retry = True
    return True


class AnsweringBot(PatientBot):
    """The bot's connection to the Bot API, patient with Telegram's brief failures
    (`bot.delivery`); in worker mode it notes in the inbox, the moment
    Telegram has taken an answer, that the update has been answered, so a worker that takes
    the update over after a crash does not answer it twice."""

    async def _do_post(self, endpoint: str, data: dict[str, Any], **kwargs: Any) -> Any:
        result = await super()._do_post(endpoint, data, **kwargs)
        handling = _handling.get()
        if handling and not handling.retry and endpoint in _ANSWERS:
            with suppress(psycopg.Error):
                await Inbox.note_reply(handling.connection, handling.update_id)
        return result


class Worker:
    """Runs `slots` claim-and-handle loops until `stopping` is set, then lets the updates in
    hand finish."""

    def __init__(self, application: Application, inbox: Inbox, slots: int = SLOTS) -> None:
        self.application = application
        self.inbox = inbox
        self.slots = slots
        self._pruned = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        await asyncio.gather(*(self._slot(stopping) for _ in range(self.slots)))

    async def _slot(self, stopping: asyncio.Event) -> None:
        connection: psycopg.AsyncConnection | None = None
        pause = 0.5
        while not stopping.is_set():
            try:
                if connection is None or connection.closed:
                    connection = await self.inbox.connect()
                claim = await self.inbox.claim(connection)
                if claim is None:
                    await self._idle()
                    continue
                await self._handle(connection, claim)
                pause = 0.5
            except psycopg.OperationalError as error:
                logger.warning("The inbox's database is unavailable (%s); retrying", error)
                if connection is not None:
                    await connection.close()  # its claims go with it
                connection = None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
        if connection is not None:
            await connection.close()

    async def _idle(self) -> None:
        if time.monotonic() - self._pruned > _PRUNE_EVERY:
            self._pruned = time.monotonic()
            await self.inbox.prune()
        await self.inbox.wait_for_news(1.0)

    async def _handle(self, connection: psycopg.AsyncConnection, claim: Claim) -> None:
        if claim.attempts > 1:
            logger.info(
                "Taking over update %d (attempt %d, answered before: %s)",
                claim.update_id, claim.attempts, claim.replied,
            )  # fmt: skip
        if claim.replied:  # answered before its worker stopped; only the closing was lost
            await self.inbox.finish(connection, claim)
            return
        if claim.attempts > MAX_ATTEMPTS:
            logger.error("Giving up update %d after %d attempts", claim.update_id, MAX_ATTEMPTS)
            await self.inbox.finish(connection, claim, failed=True)
            return
        try:
            update = Update.de_json(claim.body, self.application.bot)
        except Exception:  # shaped like an update, but not one this library can read
            logger.exception("Cannot read update %d; dropping it", claim.update_id)
            await self.inbox.finish(connection, claim, failed=True)
            return
        handling = _Handling(claim.update_id, connection)
        token = _handling.set(handling)
        try:
            await self.application.process_update(update)
        finally:
            _handling.reset(token)
        if handling.retry:
            await self.inbox.retry_later(connection, claim, RETRY_SECONDS)
        else:
            await self.inbox.finish(connection, claim)
