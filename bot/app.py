"""`articlebot run`: the Telegram bot, from reading its configuration to stopping cleanly.

`run_bot` reads like a table of contents: the token (or how to get one), the Library, the
Application and its handlers, then long polling until SIGINT or SIGTERM, or, with a webhook
URL, webhook mode (`bot.webhook`). The Library is loaded once before updates are handled and
closed after the last one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import weakref
from collections.abc import Awaitable

import httpx
from telegram import BotCommand, LinkPreviewOptions, MessageEntity, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    SimpleUpdateProcessor,
    filters,
)
from telegram.request import HTTPXRequest

from bot import feeds, handlers, inline
from bot.cli import TERMINAL_CHAT
from bot.delivery import RATE_LIMIT_RETRIES
from bot.terminal import run_terminal_chat
from bot.texts import ENGLISH, GERMAN, say
from bot.webhook import run_webhook
from bot.worker import AnsweringBot
from index.config import Settings
from index.library import Library
from index.storage import StorageUnavailable

logger = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"
POLL_TIMEOUT = 25  # seconds a getUpdates long poll waits for news
# The commands, in the order Telegram's command menu shows them; each has a description
# "command_<name>" in bot.texts.
COMMANDS = {
    "start": handlers.help_command,
    "help": handlers.help_command,
    "add": handlers.add_command,
    "ask": handlers.ask_command,
    "list": handlers.list_command,
    "remove": handlers.remove_command,
    "forget": handlers.forget_command,
    "follow": feeds.follow_command,
    "feeds": feeds.feeds_command,
    "unfollow": feeds.unfollow_command,
    "collect": feeds.collect_command,
}
NO_TOKEN = """\
To run as a Telegram bot, articlebot needs a bot token from Telegram. To get one:
  1. In Telegram, open a chat with @BotFather and send /newbot.
  2. Pick a name and a username ending in "bot"; BotFather answers with a token.
  3. export TELEGRAM_BOT_TOKEN=123456789:AAE...   and start again (make run).
TELEGRAM_BASE_URL and TELEGRAM_BASE_FILE_URL can point the bot at another Bot API server,
such as a local telegram-bot-api.

Meanwhile you can talk to the bot right here: `articlebot chat` (or make chat) behaves the
same, with answers as plain text."""


def run_bot(settings: Settings) -> int:
    """Run the Telegram bot until SIGINT/SIGTERM; without a token, explain how to get one."""
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        return _without_token(settings)
    logging.getLogger("bot").setLevel(logging.INFO)
    base_url = os.environ.get("TELEGRAM_BASE_URL") or TELEGRAM_API
    base_file_url = os.environ.get("TELEGRAM_BASE_FILE_URL") or TELEGRAM_FILES
    try:
        if settings.webhook_url:
            return run_webhook(
                settings,
                token,
                lambda library: build_application(library, token, base_url, base_file_url),
            )
        return _run_polling(settings, token, base_url, base_file_url)
    except StorageUnavailable as error:
        print(f"{error} ({error.__cause__})", file=sys.stderr)
        return 1
    except InvalidToken:
        print("Telegram refused TELEGRAM_BOT_TOKEN; check it with @BotFather.", file=sys.stderr)
        return 1


def _run_polling(settings: Settings, token: str, base_url: str, base_file_url: str) -> int:
    """Long polling: one process asks Telegram for updates (the default)."""
    application = build_application(Library(settings), token, base_url, base_file_url)
    application.run_polling(
        timeout=POLL_TIMEOUT, bootstrap_retries=5, allowed_updates=handlers.ALLOWED_UPDATES
    )
    return 0


def _without_token(settings: Settings) -> int:
    """Say how to get a token and offer the terminal chat instead (exit code 2 if not)."""
    print(NO_TOKEN, file=sys.stderr)
    if not sys.stdin.isatty():
        return 2
    try:
        reply = input("\nStart a terminal chat now? [Y/n] ")
    except EOFError:
        return 2
    if reply.strip().lower() not in ("", "y", "yes"):
        return 2
    return run_terminal_chat(settings, TERMINAL_CHAT)


def build_application(
    library: Library, token: str, base_url: str, base_file_url: str
) -> Application:
    """The bot: its connection to the Bot API, its handlers, and the Library they use."""
    bot = AnsweringBot(
        token,
        base_url=base_url,
        base_file_url=base_file_url,
        request=_http(read_timeout=20.0),
        get_updates_request=_http(read_timeout=10.0),
        rate_limiter=AIORateLimiter(max_retries=RATE_LIMIT_RETRIES),
        defaults=Defaults(
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            allow_sending_without_reply=True,
        ),
    )
    application = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(ChatByChat(max_concurrent_updates=64))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data[handlers.LIBRARY] = library
    application.bot_data[handlers.ADDS] = handlers.adding_pool()
    _add_handlers(application)
    every = library.settings.feed_check_seconds
    application.job_queue.run_repeating(feeds.poll_feeds, interval=every, first=every)
    return application


def _http(read_timeout: float) -> HTTPXRequest:
    """HTTP to the Bot API. Failed connections are retried with exponential backoff (httpx
    does it before anything is sent, so no message goes out twice); RetryAfter is the rate
    limiter's job."""
    transport = httpx.AsyncHTTPTransport(retries=3, limits=httpx.Limits(max_connections=64))
    return HTTPXRequest(
        connect_timeout=10.0,
        read_timeout=read_timeout,
        write_timeout=20.0,
        pool_timeout=10.0,
        httpx_kwargs={"transport": transport},
    )


def _add_handlers(application: Application) -> None:
    """Which handler gets which update; the first that matches takes it. Only new messages
    count: an edited one (should Telegram deliver it) leaves the answer to the original."""
    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE
    # A post forwarded into the private chat is an article to add, whatever it says; a
    # forwarded file is a file like any other.
    forwarded = new & private & filters.FORWARDED & ~filters.Document.ALL
    application.add_handlers(
        [
            MessageHandler(forwarded, handlers.forwarded_message),
            *(CommandHandler(name, callback, new) for name, callback in COMMANDS.items()),
            MessageHandler(new & filters.TEXT & ~filters.COMMAND, handlers.text_message),
            MessageHandler(new & filters.Document.ALL, handlers.document_message),
            MessageHandler(new & private & filters.COMMAND, handlers.unknown_command),
            MessageHandler(new & private & ~filters.StatusUpdate.ALL, handlers.other_message),
            CallbackQueryHandler(handlers.more_pressed, pattern=r"^more:\d+$"),
            CallbackQueryHandler(handlers.context_pressed, pattern=r"^context:\d+$"),
            CallbackQueryHandler(handlers.forget_pressed, pattern=r"^forget:(yes|no)$"),
            CallbackQueryHandler(handlers.stale_button),
            InlineQueryHandler(inline.inline_query),
        ]
    )
    # Links in group conversations: looked at after the handlers above (a later group), so a
    # message that also addresses the bot is answered as usual.
    links = filters.Entity(MessageEntity.URL) | filters.Entity(MessageEntity.TEXT_LINK)
    links |= filters.CaptionEntity(MessageEntity.URL)
    links |= filters.CaptionEntity(MessageEntity.TEXT_LINK)
    collected = new & filters.ChatType.GROUPS & links & ~filters.COMMAND
    application.add_handler(MessageHandler(collected, feeds.collected_link), group=1)
    application.add_error_handler(handlers.report_error)


async def _post_init(application: Application) -> None:
    """Before updates are handled: load the model, register the command menu, say who we
    are. A menu Telegram will not take (after the retries of `bot.delivery`) is no reason
    not to answer: it stays as it was, with a warning."""
    await asyncio.to_thread(application.bot_data[handlers.LIBRARY].warm_up)
    for language in (ENGLISH, GERMAN):
        commands = [BotCommand(name, say(f"command_{name}", language)) for name in COMMANDS]
        try:
            await application.bot.set_my_commands(
                commands, language_code=None if language == ENGLISH else language
            )
        except TelegramError as error:
            logger.warning("Could not register the %s command menu: %s", language, error)
    if not application.bot.supports_inline_queries:
        logger.info("Inline answers are off: send /setinline to @BotFather to turn them on")
    logger.info("Running as @%s", application.bot.username)


async def _post_shutdown(application: Application) -> None:
    """After the last update: close the Library (every change is already committed)."""
    application.bot_data[handlers.ADDS].shutdown()
    application.bot_data[handlers.LIBRARY].close()


class ChatByChat(SimpleUpdateProcessor):
    """Updates of different chats are handled at the same time, so one chat's slow article
    holds up no one else; those of one chat one after another, in order, so a question sent
    right after an answer finds that answer remembered."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def process_update(self, update: object, coroutine: Awaitable[object]) -> None:
        """Wait for the chat's turn first and only then for a free slot, so a chat with a long
        queue holds one slot, not all of them."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await super().process_update(update, coroutine)
            return
        lock = self._locks.get(chat.id)
        if lock is None:
            lock = self._locks[chat.id] = asyncio.Lock()
        async with lock:
            await super().process_update(update, coroutine)
