"""What a question needs to know about a whole chat's library, kept between questions."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from index.storage.base import Storage

T = TypeVar("T")

# Chats whose values are kept, the most recently asked; others are computed again when asked.
CHATS_KEPT = 64


class ChatCache(Generic[T]):
    """A value computed from a chat's articles, computed again whenever they have changed."""

    def __init__(self, storage: Storage, compute: Callable[[str], T]) -> None:
        self.storage = storage
        self.compute = compute
        self._values: OrderedDict[str, tuple[int, T]] = OrderedDict()
        self._lock = threading.Lock()  # questions of several chats are answered at once

    def get(self, chat_id: str) -> T:
        version = self.storage.chat_version(chat_id)
        with self._lock:
            known = self._values.get(chat_id)
        if known is None or known[0] != version:
            # Computed outside the lock, so a large chat never holds up the others.
            known = (version, self.compute(chat_id))
        with self._lock:
            self._values[chat_id] = known
            self._values.move_to_end(chat_id)
            while len(self._values) > CHATS_KEPT:
                self._values.popitem(last=False)
        return known[1]
