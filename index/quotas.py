"""The quotas: how much a chat may hold and how often a user may add.

Adding an article costs model time and disk, and the bot serves strangers, so every add goes
past `Quotas` (in `Library`, so the bot, the command line, the terminal chat and feeds alike):
`admit` before anything is fetched or read, counting the attempt towards the user's hourly
limit; `fits` once the text is known, before any model time is spent. Those two refuse early,
but adds of one chat may run at once (threads, processes, machines), so the storage checks
the chat's `limits` once more in the transaction that stores the article. The limits are the
`max_*_per_*` settings; 0 turns one off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.config import Settings
from index.errors import QuotaExceeded

if TYPE_CHECKING:
    from index.storage.base import Storage

# How long an add is counted for a user's quota.
ADDS_KEPT_SECONDS = 3600.0


@dataclass(frozen=True)
class ChatLimits:
    """How much one chat's library may hold; 0 is no limit."""

    articles: int = 0
    characters: int = 0

    def check(self, held_articles: int, held_characters: int, adding: int = 0) -> None:
        """Raise QuotaExceeded unless an article of `adding` characters fits beside what the
        chat holds (`adding` 0: whether any article could still fit)."""
        if self.articles and held_articles >= self.articles:
            raise QuotaExceeded("quota_articles", count=self.articles)
        if self.characters and held_characters + adding > self.characters:
            raise QuotaExceeded(
                "quota_chars", length=adding, used=held_characters, limit=self.characters
            )


NO_LIMITS = ChatLimits()


class Quotas:
    """Refuses adds past a chat's or a user's limits, with a message that names the limit."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.chat_limits = ChatLimits(settings.max_articles_per_chat, settings.max_chars_per_chat)

    def admit(self, chat_id: str, user_id: str | None) -> None:
        """Let an add begin, or raise QuotaExceeded; an add begun counts for its user."""
        self.chat_limits.check(*self.storage.chat_usage(chat_id))
        if user_id is None:
            return
        now, most_adds = time.time(), self.settings.max_adds_per_user_per_hour
        if most_adds and self.storage.adds_since(user_id, now - ADDS_KEPT_SECONDS) >= most_adds:
            raise QuotaExceeded("quota_adds", count=most_adds)
        self.storage.note_add(user_id, now)

    def fits(self, chat_id: str, length: int) -> None:
        """Raise QuotaExceeded if a text of `length` characters would overfill the chat."""
        self.chat_limits.check(*self.storage.chat_usage(chat_id), length)
