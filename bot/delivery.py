"""Getting through to a flaky Telegram: every Bot API call is tried again before it fails.

Telegram answers now and then with "429 Too Many Requests" (with the seconds to wait), with a
502 or 504 while it restarts, or not at all. A bot that gives up on the first of these loses
answers it has already worked out, or does not even start. So every call but the long poll
(which PTB retries itself) is tried again:

- after a 429, once the `retry_after` Telegram names has passed, up to `RATE_LIMIT_RETRIES`
  times (PTB's rate limiter does this, holding back the bot's other calls meanwhile);
- after a 5xx, a broken connection or a timeout, after 1, 2, 4, 8 and 16 seconds.

A call that still fails then raises as before: the update's handler fails and the user is
told once (the apology, sent with the same patience).
A timed-out call may have reached Telegram after all; sending it again may, rarely, show a
message twice, which is better than losing an answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, NetworkError
from telegram.ext import ExtBot

logger = logging.getLogger(__name__)

# Seconds to wait before each further try after a 5xx, a broken connection or a timeout.
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)
# How often a call is tried again after a 429 (each time after the retry_after given).
RATE_LIMIT_RETRIES = 10
# Calls not worth waiting for: the long poll retries itself, "typing" is gone in 5 s anyway.
_NOT_RETRIED = frozenset({"getUpdates", "sendChatAction"})


class PatientBot(ExtBot):
    """An ExtBot whose calls survive Telegram's brief failures (see the module's docstring)."""

    async def _do_post(self, endpoint: str, data: dict[str, Any], **kwargs: Any) -> Any:
        if endpoint in _NOT_RETRIED:
            return await super()._do_post(endpoint, data, **kwargs)
        for pause in BACKOFF:
            try:
                return await super()._do_post(endpoint, data, **kwargs)
            except BadRequest:
                raise  # Telegram read the call and refused it: trying again changes nothing
            except NetworkError as error:  # 5xx, broken connections and timeouts
                logger.warning("%s failed (%s); trying again in %g s", endpoint, error, pause)
            await asyncio.sleep(pause)
        return await super()._do_post(endpoint, data, **kwargs)
