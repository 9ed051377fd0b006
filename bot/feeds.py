"""Articles that come in by themselves: followed feeds, and links posted in groups.

/follow, /feeds and /unfollow manage the chat's feeds (`index.feeds`); `poll_feeds` is the
JobQueue job that polls due feeds and tells each chat, quietly, what came in. /collect on
makes the bot add the article of every link posted in a group, answered with a reaction on
the message instead of a reply. Like every handler, these call the Library in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ReactionEmoji
from telegram.error import TelegramError

from bot.conversation import argument_of
from bot.handlers import (
    Context,
    addresses_bot,
    admin_of,
    chat_id_of,
    is_admin,
    is_private,
    library_of,
    reply_with,
    showing_typing,
    user_id_of,
    user_language,
)
from bot.render import feed_followed, feed_list, feed_news, feed_removed, feed_trouble, rejection
from bot.texts import say
from index.errors import ArticleRejected, DuplicateArticle, LibraryError
from index.library import Library
from index.records import FeedPoll

logger = logging.getLogger(__name__)

ADDED, NOT_AN_ARTICLE = ReactionEmoji.THUMBS_UP, ReactionEmoji.SHRUG
_LINKS_PER_MESSAGE = 3  # a message listing more links is not a set of articles to add


# Feeds


async def follow_command(update: Update, context: Context) -> None:
    """/follow <feed or site URL>: follow it, adding its newest articles now."""
    url = argument_of(update.effective_message.text)
    if not url:
        await reply_with(update, "usage_follow")
        return
    if not is_private(update) and not await is_admin(update):
        await reply_with(update, "not_allowed_follow")
        return
    library, language = library_of(context), user_language(update)
    try:
        async with showing_typing(update.effective_chat):
            poll = await asyncio.to_thread(
                library.feeds.follow, chat_id_of(update), url, user_id_of(update), language
            )
    except LibraryError as error:
        await update.effective_message.reply_text(rejection(error, language))
        return
    minutes = library.settings.feed_interval_minutes
    await update.effective_message.reply_text(feed_followed(poll, minutes, language))


async def feeds_command(update: Update, context: Context) -> None:
    """/feeds: the chat's feeds, each with its last success and error."""
    feeds = await asyncio.to_thread(library_of(context).feeds.feeds, chat_id_of(update))
    for text in feed_list(feeds, user_language(update)):
        await update.effective_message.reply_text(text)


async def unfollow_command(update: Update, context: Context) -> None:
    """/unfollow <id>: stop following a feed (in groups: admins and whoever followed it)."""
    number = argument_of(update.effective_message.text)
    if not number:
        await reply_with(update, "usage_unfollow")
        return
    feeds, chat_id, language = library_of(context).feeds, chat_id_of(update), user_language(update)
    try:
        feed = await asyncio.to_thread(feeds.feed, chat_id, number)
        mine = is_private(update) or feed.added_by == user_id_of(update)
        if not mine and not await is_admin(update):
            await reply_with(update, "not_allowed_unfollow")
            return
        removed = await asyncio.to_thread(feeds.unfollow, chat_id, number)
    except LibraryError as error:
        await update.effective_message.reply_text(rejection(error, language))
        return
    await update.effective_message.reply_text(feed_removed(removed, language))


async def poll_feeds(context: Context) -> None:
    """The JobQueue job: poll every due feed once and tell its chat what came of it. Each
    process claims feeds one at a time, so several bot processes share the work."""
    library: Library = library_of(context)
    started = time.time()
    while (feed := await asyncio.to_thread(library.feeds.claim_due, started)) is not None:
        try:
            poll = await asyncio.to_thread(library.feeds.poll, feed)
        except Exception:  # one feed's trouble must not stop the others; retried later
            logger.exception("Polling feed %d (%s) failed", feed.id, feed.url)
            continue
        await _tell(context.bot, poll, library.settings.feed_items_per_poll)


async def _tell(bot: Bot, poll: FeedPoll, limit: int) -> None:
    """Send the chat one quiet message about a poll that added something or keeps failing.
    Feeds of the command line's own libraries ("terminal") have no chat to tell."""
    chat_id = poll.feed.chat_id
    if not chat_id.lstrip("-").isdigit():
        return
    language = poll.feed.language
    for text in (feed_news(poll, limit, language), feed_trouble(poll, language)):
        if text is None:
            continue
        try:
            await bot.send_message(int(chat_id), text, disable_notification=True)
        except TelegramError as error:  # removed from the group, blocked...
            logger.warning("Chat %s: feed %d news not delivered: %s", chat_id, poll.feed.id, error)


# Collecting links posted in groups


async def collect_command(update: Update, context: Context) -> None:
    """/collect on|off (admins): add the article of every link posted in the group."""
    if is_private(update):
        await reply_with(update, "collect_private")
        return
    choice = argument_of(update.effective_message.text).lower()
    library, chat_id, language = library_of(context), chat_id_of(update), user_language(update)
    if choice not in ("on", "off"):
        on = await asyncio.to_thread(library.collects_links, chat_id)
        state = say("collect_state_on" if on else "collect_state_off", language)
        await update.effective_message.reply_text(say("usage_collect", language, state=state))
        return
    if not await is_admin(update):
        await reply_with(update, "not_allowed_collect")
        return
    if choice == "on" and not await _sees_conversation(update, context):
        await reply_with(update, "collect_cannot_read")
        return
    await asyncio.to_thread(library.set_collects_links, chat_id, choice == "on")
    await reply_with(update, f"collect_{choice}")


async def _sees_conversation(update: Update, context: Context) -> bool:
    """Whether Telegram shows the bot every message of the group: privacy mode is off
    (asked afresh: the owner may have changed it at BotFather meanwhile), or it is an admin."""
    me = await context.bot.get_me()
    if me.can_read_all_group_messages:
        return True
    return await admin_of(update.effective_chat, context.bot.id)


async def collected_link(update: Update, context: Context) -> None:
    """A group message with links, while /collect is on: add their articles and react 👍
    (🤷 when none was an article; nothing for links the library holds already)."""
    message = update.effective_message
    if any(addresses_bot(message, context)):
        return  # spoken to the bot: the other handlers answer it
    links = _links(message)
    library, chat_id = library_of(context), chat_id_of(update)
    if not links or not await asyncio.to_thread(library.collects_links, chat_id):
        return
    request = f"update:{update.update_id}"
    reaction = await asyncio.to_thread(
        _collect, library, chat_id, links, user_id_of(update), request
    )
    if reaction is not None:
        with suppress(TelegramError):  # reactions may be restricted in the group
            await message.set_reaction(reaction)


def _links(message: Message) -> list[str]:
    kinds = [MessageEntity.URL, MessageEntity.TEXT_LINK]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    links = [entity.url or text for entity, text in found.items()]
    return list(dict.fromkeys(links))[:_LINKS_PER_MESSAGE]


def _collect(
    library: Library, chat_id: str, links: list[str], user_id: str | None, request: str
) -> str | None:
    """Add the links' articles; the reaction that says how it went (None: all known)."""
    added = rejected = False
    for number, link in enumerate(links):
        try:
            library.add_url(chat_id, link, user_id, f"{request}:{number}")
            added = True
        except DuplicateArticle:
            pass
        except ArticleRejected as error:
            rejected = True
            logger.info("Chat %s: collected link %s not added: %s", chat_id, link, error)
    if added:
        return ADDED
    return NOT_AN_ARTICLE if rejected else None
