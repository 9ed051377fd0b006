"""Playing Telegram users in end-to-end tests, and reading the bot's messages as they see them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.telegram_standin import BotApiStandin, Chat, User

REPLY_TIMEOUT = 60.0


class Person:
    """A Telegram user in one chat: says things and waits for the bot's reply."""

    def __init__(self, standin: BotApiStandin, chat: Chat, user: User) -> None:
        self.standin, self.chat, self.user = standin, chat, user

    def send(self, text: str, reply_to: dict | None = None, **kwargs: Any) -> dict:
        return self.standin.send_message(self.chat, self.user, text, reply_to=reply_to, **kwargs)

    def says(self, text: str, reply_to: dict | None = None, **kwargs: Any) -> dict:
        """Send `text` and return the bot's next message in this chat."""
        self.send(text, reply_to, **kwargs)
        return self.reply()

    def reply(
        self, predicate: Callable[[dict], bool] | None = None, timeout: float = REPLY_TIMEOUT
    ) -> dict:
        return self.standin.wait_for_message(self.chat.id, predicate, timeout=timeout)

    def presses(self, message: dict, data: str) -> str:
        return self.standin.press_button(self.chat, self.user, message, data)

    def callback_answer(self, query_id: str, timeout: float = REPLY_TIMEOUT) -> str | None:
        """The text the bot answered a button press with (None for a silent answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for answered in self.standin.answered_callbacks:
                if answered["callback_query_id"] == query_id:
                    return answered["text"]
            time.sleep(0.05)
        raise AssertionError(f"the button press {query_id} was not answered in {timeout}s")

    def edit(self, message_id: int | None = None) -> dict:
        return self.standin.wait_for_edit(
            self.chat.id, timeout=REPLY_TIMEOUT, message_id=message_id
        )


def quotes(message: dict) -> list[str]:
    """The quoted sentences of an answer as users see them (its blockquotes)."""
    text = message["text"]
    blocks = [e for e in message.get("entities", []) if e["type"] == "blockquote"]
    encoded = text.encode("utf-16-le")
    return [
        encoded[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in blocks
    ]


def quoted(sentence: str, message: dict) -> bool:
    """Whether one of an answer's quotes holds `sentence` (a quote may hold a neighbour too)."""
    return any(sentence in quote for quote in quotes(message))


def buttons(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]
