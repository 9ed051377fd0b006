"""The quotas: how much a chat may hold and how often a user may add.

Adding an article costs model time and disk, and the bot serves strangers, so every add goes
past `Quotas` (in `Library`, so the bot, the command line, the terminal chat and feeds alike):
`admit` before anything is fetched or read, counting the attempt towards the user's hourly
limit; `fits` once the text is known, before any model time is spent. The limits are the
`max_*_per_*` settings; 0 turns one off.
"""

from __future__ import annotations

import time

from index.config import Settings
from index.errors import QuotaExceeded
from index.storage.base import ADDS_KEPT_SECONDS, Storage


class Quotas:
    """Refuses adds past a chat's or a user's limits, with a message that names the limit."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    def admit(self, chat_id: str, user_id: str | None) -> None:
        """Let an add begin, or raise QuotaExceeded; an add begun counts for its user."""
        articles, _chars = self.storage.chat_usage(chat_id)
        most_articles = self.settings.max_articles_per_chat
        if most_articles and articles >= most_articles:
            raise QuotaExceeded("quota_articles", count=most_articles)
        if user_id is None:
            return
        now, most_adds = time.time(), self.settings.max_adds_per_user_per_hour
        if most_adds and self.storage.adds_since(user_id, now - ADDS_KEPT_SECONDS) >= most_adds:
            raise QuotaExceeded("quota_adds", count=most_adds)
        self.storage.note_add(user_id, now)

    def fits(self, chat_id: str, length: int) -> None:
        """Raise QuotaExceeded if a text of `length` characters would overfill the chat."""
        limit = self.settings.max_chars_per_chat
        _articles, used = self.storage.chat_usage(chat_id)
        if limit and used + length > limit:
            raise QuotaExceeded("quota_chars", length=length, used=used, limit=limit)
