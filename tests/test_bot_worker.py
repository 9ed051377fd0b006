"""A webhook worker against a real PostgreSQL inbox and the Bot API stand-in: a question whose
handling meets an unavailable database gets a short apology at once and its answer once the
database is back, and is then closed; other failures cost one apology and no retry."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from bot.app import build_application
from bot.inbox import Inbox
from bot.worker import Worker
from index.storage import StorageUnavailable
from index.storage.postgres import PostgresStorage
from tests.postgres import LocalPostgres
from tests.telegram_standin import BotApiStandin, Chat, User
from tests.test_bot_flows import APOLOGY, FakeLibrary

TOKEN = "123456:WORKER"
READER = User(4001, "Ria", "ria", "en")


class FlakyLibrary(FakeLibrary):
    """Canned answers; the first question meets an unavailable database, "boom" breaks."""

    def __init__(self) -> None:
        super().__init__()
        self.outages = 1

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        if self.outages:
            self.outages -= 1
            raise StorageUnavailable("The database at postgresql://db/x is unavailable.")
        return super().ask(*args, **kwargs)


def handle(standin: BotApiStandin, url: str, texts: list[str], replies: int) -> list[dict]:
    """Store one update per text in the inbox, run a worker until `replies` messages came."""
    chat = Chat(READER.id)
    updates = [
        {"update_id": n, "message": standin.send_message(chat, READER, text)}
        for n, text in enumerate(texts, start=1)
    ]

    async def scenario() -> None:
        inbox = Inbox(url)
        application = build_application(
            FlakyLibrary(), TOKEN, standin.base_url, standin.base_file_url
        )
        async with application:
            for update in updates:
                assert await inbox.put(update)
            assert not await inbox.put(updates[0])  # Telegram delivering it again
            stopping = asyncio.Event()
            worker = asyncio.create_task(Worker(application, inbox, slots=2).run(stopping))
            for _ in range(replies):
                await asyncio.to_thread(standin.wait_for_message, chat.id, timeout=30)
            stopping.set()
            await worker
        await inbox.close()

    asyncio.run(scenario())
    return standin.sent_messages(chat.id)


def test_a_database_outage_costs_an_apology_and_the_answer_comes_later(
    postgres: LocalPostgres,
) -> None:
    url = postgres.new_database()
    PostgresStorage(url).close()  # creates the schema
    with BotApiStandin(TOKEN, "worker_bot") as standin:
        sent = handle(standin, url, ["Who is mediating?", "boom", "And then?"], replies=4)
    texts = [m["text"] for m in sent]
    assert texts[0].startswith(APOLOGY)  # the outage, at once
    # Then the chat's updates in order: the first answered after the retry, "boom" apologised
    # for (no retry), the third answered.
    assert texts[1].startswith("Satz 0 zu Who is mediating?")
    assert texts[2].startswith(APOLOGY)
    assert texts[3].startswith("Satz 0 zu And then?")
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT update_id, attempts, done_at IS NOT NULL, failed FROM inbox ORDER BY 1"
        ).fetchall()
    assert rows == [(1, 2, True, False), (2, 1, True, False), (3, 1, True, False)]
