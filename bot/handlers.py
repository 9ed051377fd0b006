"""Telegram updates in, Library calls and messages out.

Each handler reads one kind of update, lets `bot.conversation` decide what it means, calls
the Library in a worker thread (`asyncio.to_thread`: fetching and model inference take
seconds and must not stall other chats), showing "typing" meanwhile, and sends what
`bot.render` makes of the result. Adds run on a small pool of their own (`ADDS`, made by
`adding_pool`): a long article, or several, can take minutes, and questions must not wait
for a thread meanwhile. The Library lives in `context.bot_data`. Each chat's recent
answers, which the buttons and follow-ups refer to, are kept by the Library's storage engine
(`library.memory`), not in `context.chat_data`: PTB's persistence writes chat data on a timer,
so after a crash, or in another worker process, a reply would not find its answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from functools import partial

from telegram import (
    Chat,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.conversation import (
    Intent,
    Request,
    add,
    argument_of,
    group_text,
    is_url,
    owns,
    parse_command,
    read_message,
)
from bot.forwarded import ForwardedPost, forwarded_post
from bot.render import (
    article_added,
    article_removed,
    html_answer,
    html_article_list,
    html_context,
    rejection,
)
from bot.texts import language_of, say
from bot.worker import retry_later
from index.errors import ArticleRejected, UnknownArticle
from index.library import Library
from index.records import Answer, Article
from index.storage import StorageUnavailable

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
LIBRARY = "library"  # key of the Library in application.bot_data
ADDS = "adds"  # key of the adds' thread pool in application.bot_data
ADDING_THREADS = 2  # adds of this many chats run at once; more wait their turn
# The kinds of update handled here and in bot.inline.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
_TYPING_EVERY = 4.0  # seconds; Telegram shows "typing" for 5 s after each chat action
Source = str | Document | ForwardedPost  # what can be added: a link or text, a file, a post


# What every handler needs


def library_of(context: Context) -> Library:
    return context.bot_data[LIBRARY]


def adding_pool() -> ThreadPoolExecutor:
    """The threads adds run on, apart from those that answer questions."""
    return ThreadPoolExecutor(ADDING_THREADS, thread_name_prefix="adding")


async def _adding(context: Context, add: Callable[..., Article], *args: object) -> Article:
    """Run an add on the adds' own threads."""
    pool = context.bot_data[ADDS]
    return await asyncio.get_running_loop().run_in_executor(pool, partial(add, *args))


def user_language(update: Update) -> str:
    user = update.effective_user
    return language_of(user.language_code if user else None)


def chat_id_of(update: Update) -> str:
    return str(update.effective_chat.id)


def user_id_of(update: Update) -> str | None:
    return str(update.effective_user.id) if update.effective_user else None


def is_private(update: Update) -> bool:
    return update.effective_chat.type == ChatType.PRIVATE


@asynccontextmanager
async def showing_typing(message: Message) -> AsyncIterator[None]:
    """Show "typing" where `message` is (its chat, or its topic of a forum) for as long as
    the block runs."""

    async def keep_typing() -> None:
        while True:
            with suppress(TelegramError):
                await message.reply_chat_action(ChatAction.TYPING)
            await asyncio.sleep(_TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()


async def reply_with(update: Update, key: str) -> None:
    await update.effective_message.reply_text(say(key, user_language(update)))


async def _may_change(update: Update, articles: list[Article]) -> bool:
    """Whether the user may remove these articles: anyone in a private chat; in a group the
    person who added them all, and the chat's admins."""
    if is_private(update) or owns(articles, user_id_of(update)):
        return True
    return await is_admin(update)


async def is_admin(update: Update) -> bool:
    """Whether the sender is one of the chat's admins."""
    chat, message = update.effective_chat, update.message
    if message and message.sender_chat and message.sender_chat.id == chat.id:
        return True  # an anonymous admin, writing as the group
    return await admin_of(chat, update.effective_user.id)


async def admin_of(chat: Chat, user_id: int) -> bool:
    """Whether the user (or bot) `user_id` is one of the chat's admins."""
    member = await chat.get_member(user_id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


# Commands


async def help_command(update: Update, context: Context) -> None:
    """/start and /help: what the bot does; in a group, how to talk to it there."""
    key = "help_private" if is_private(update) else "help_group"
    text = say(key, user_language(update), bot=context.bot.username)
    await update.effective_message.reply_text(text)


async def add_command(update: Update, context: Context) -> None:
    """/add <link or text>, or /add in reply to a message holding a link, text or file."""
    message = update.effective_message
    source: Source = argument_of(message.text)
    if not source and (target := message.reply_to_message):
        if target.forward_origin and not target.document:
            await _add_forwarded(update, context, target)
            return
        source = target.document or target.text or target.caption or ""
    if source:
        await _add(update, context, source)
    else:
        await reply_with(update, "usage_add")


async def ask_command(update: Update, context: Context) -> None:
    """/ask <question>: the way to ask in a group."""
    question = argument_of(update.effective_message.text)
    if question:
        await _answer(update, context, question)
    else:
        await reply_with(update, "usage_ask")


async def list_command(update: Update, context: Context) -> None:
    """/list: the chat's articles with their short ids, dates and sources."""
    articles = await asyncio.to_thread(library_of(context).articles, chat_id_of(update))
    for text in html_article_list(articles, user_language(update)):
        await update.effective_message.reply_text(text)


async def remove_command(update: Update, context: Context) -> None:
    """/remove <id>: remove one article, if the user may."""
    number = argument_of(update.effective_message.text)
    if not number:
        await reply_with(update, "usage_remove")
        return
    library, chat_id = library_of(context), chat_id_of(update)
    try:
        article = await asyncio.to_thread(library.article, chat_id, number)
        if not await _may_change(update, [article]):
            await reply_with(update, "not_allowed_remove")
            return
        removed = await asyncio.to_thread(library.remove, chat_id, number)
    except UnknownArticle as error:
        await update.effective_message.reply_text(rejection(error, user_language(update)))
        return
    await update.effective_message.reply_text(article_removed(removed, user_language(update)))


async def forget_command(update: Update, context: Context) -> None:
    """/forget: ask for confirmation (a button) before emptying the chat's library."""
    articles = await asyncio.to_thread(library_of(context).articles, chat_id_of(update))
    if not articles:
        await reply_with(update, "empty_library")
        return
    if not await _may_change(update, articles):
        await reply_with(update, "not_allowed_forget")
        return
    language = user_language(update)
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(say("button_forget", language), callback_data="forget:yes"),
                InlineKeyboardButton(say("button_cancel", language), callback_data="forget:no"),
            ]
        ]
    )
    await update.effective_message.reply_text(
        say("forget_confirm", language, count=len(articles)), reply_markup=buttons
    )


async def unknown_command(update: Update, context: Context) -> None:
    """A command the bot does not have, in a private chat (in groups it may be another bot's)."""
    request = parse_command(update.effective_message.text, context.bot.username)
    if request is None or request.intent is not Intent.IGNORE:
        await reply_with(update, "unknown_command")


# Other messages


def addresses_bot(message: Message, context: Context) -> tuple[bool, bool]:
    """(does the message mention the bot, does it reply to one of the bot's messages)."""
    bot = context.bot
    mentions = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    mentioned = any(
        (entity.user and entity.user.id == bot.id) or text.lower() == f"@{bot.username}".lower()
        for entity, text in mentions.items()
    )
    target = message.reply_to_message
    replied = bool(target and target.from_user and target.from_user.id == bot.id)
    return mentioned, replied


def _via_this_bot(message: Message, context: Context) -> bool:
    return bool(message.via_bot and message.via_bot.id == context.bot.id)


async def text_message(update: Update, context: Context) -> None:
    """A message that is not a command: in a private chat a question or a link to add; in a
    group only if it mentions the bot or replies to it."""
    text = update.effective_message.text
    if _via_this_bot(update.effective_message, context):
        return  # a quote the user posted with an inline answer, not something to act on
    if not is_private(update):
        mentioned, replied = addresses_bot(update.effective_message, context)
        text = group_text(text, context.bot.username, mentioned=mentioned, replied_to_bot=replied)
        if text is None:
            return
    await _act(update, context, read_message(text))


async def document_message(update: Update, context: Context) -> None:
    """A file: added in a private chat, and in a group when its caption is /add."""
    message = update.effective_message
    if not is_private(update):
        request = parse_command(message.caption or "", context.bot.username)
        if request is None or request.intent is not Intent.ADD:
            return
    await _add(update, context, message.document)


async def forwarded_message(update: Update, context: Context) -> None:
    """A post forwarded into the private chat: added as an article from where it came."""
    await _add_forwarded(update, context, update.effective_message)


async def _add_forwarded(update: Update, context: Context, message: Message) -> None:
    post = forwarded_post(message)
    if post.empty:  # a poll, a sticker, a photo without caption
        await reply_with(update, "forward_without_text")
    else:
        await _add(update, context, post)


async def other_message(update: Update, context: Context) -> None:
    """A sticker, photo, voice message... in a private chat: say what the bot can read."""
    await reply_with(update, "unsupported")


async def _act(update: Update, context: Context, request: Request) -> None:
    if request.intent is Intent.ADD:
        pasted = not is_url(request.argument)  # a long text that reads like an article
        await _add(update, context, request.argument, "added_pasted" if pasted else None)
    elif request.intent is Intent.ASK:
        await _answer(update, context, request.argument)
    else:
        await reply_with(update, "unsupported")


async def _add(update: Update, context: Context, source: Source, note: str | None = None) -> None:
    """Add a link, a text, a forwarded post or a file to the chat's library and say what came
    of it (followed by the text `note`, if given)."""
    library, chat_id, user_id = library_of(context), chat_id_of(update), user_id_of(update)
    request = f"update:{update.update_id}"
    try:
        async with showing_typing(update.effective_message):
            if isinstance(source, ForwardedPost):
                article = await asyncio.to_thread(
                    _add_post, library, chat_id, source, user_id, request
                )
            elif isinstance(source, Document):
                name = source.file_name or "file"
                library.ingest.extractor.check_file(name, source.file_size or 0)
                data = await (await source.get_file()).download_as_bytearray()
                article = await _adding(
                    context, library.add_file, chat_id, name, bytes(data), user_id, request
                )
            else:
                article = await _adding(context, add, library, chat_id, source, user_id, request)
    except ArticleRejected as error:
        await update.effective_message.reply_text(rejection(error, user_language(update)))
        return
    language = user_language(update)
    reply = article_added(article, language)
    if note:
        reply += " " + say(note, language, number=article.number)
    await update.effective_message.reply_text(reply)


def _add_post(
    library: Library, chat_id: str, post: ForwardedPost, user_id: str | None, request: str
) -> Article:
    """A forwarded post's linked article, or its text with where it came from."""
    if post.link:
        return library.add_url(chat_id, post.link, user_id, request)
    return library.add_text(chat_id, post.text, user_id, request, post.origin)


# Answers and their buttons


def _answer_buttons(
    answer: Answer, start: int, shown: int, language: str
) -> InlineKeyboardMarkup | None:
    """The buttons under an answer: "More" while there are further quotes, and "Context"
    for the first quote shown."""
    if not shown:
        return None
    row = []
    if start + shown < len(answer.quotes):
        more = say("button_more", language)
        row.append(InlineKeyboardButton(more, callback_data=f"more:{start + shown}"))
    context = say("button_context", language)
    row.append(InlineKeyboardButton(context, callback_data=f"context:{start}"))
    return InlineKeyboardMarkup([row])


async def _answer(update: Update, context: Context, question: str) -> None:
    """Answer a question from the chat's library, as a follow-up where it is one."""
    message, library, chat_id = update.effective_message, library_of(context), chat_id_of(update)
    replied_to = message.reply_to_message.message_id if message.reply_to_message else None
    async with showing_typing(message):
        answer = await asyncio.to_thread(
            library.ask, chat_id, question, replied_to, is_private(update)
        )
    language = user_language(update)
    text, shown = html_answer(answer, 0, library.settings.max_quotes, language)
    sent = await message.reply_text(text, reply_markup=_answer_buttons(answer, 0, shown, language))
    await asyncio.to_thread(library.memory.record, chat_id, sent.message_id, answer)


async def _pressed(update: Update, context: Context) -> tuple[Answer | None, int]:
    """The answer whose button was pressed (None if forgotten) and the number in its data."""
    query = update.callback_query
    memory = library_of(context).memory
    answer = await asyncio.to_thread(memory.recall, chat_id_of(update), query.message.message_id)
    return answer, int(query.data.split(":")[1])


async def more_pressed(update: Update, context: Context) -> None:
    """The "More" button: show the next quotes in place of the ones shown."""
    query, language = update.callback_query, user_language(update)
    answer, start = await _pressed(update, context)
    if answer is None:
        await query.answer(say("too_old", language))
        return
    text, shown = html_answer(answer, start, library_of(context).settings.max_quotes, language)
    await query.answer()
    try:
        await query.edit_message_text(
            text, reply_markup=_answer_buttons(answer, start, shown, language)
        )
    except BadRequest as error:  # pressed twice before the first edit arrived
        if "not modified" not in error.message.lower():
            raise


async def context_pressed(update: Update, context: Context) -> None:
    """The "Context" button: reply with the sentences around the first quote shown."""
    query = update.callback_query
    answer, index = await _pressed(update, context)
    if answer is None or index >= len(answer.quotes):
        await query.answer(say("too_old", user_language(update)))
        return
    await query.answer()
    quote = answer.quotes[index]
    try:
        quotes = await asyncio.to_thread(library_of(context).context, chat_id_of(update), quote)
    except UnknownArticle as error:  # removed since the answer was given
        await query.message.reply_text(rejection(error, user_language(update)))
        return
    sent = await query.message.reply_text(html_context(quotes, quote), do_quote=True)
    memory = library_of(context).memory
    await asyncio.to_thread(memory.show, chat_id_of(update), sent.message_id, answer)


async def forget_pressed(update: Update, context: Context) -> None:
    """The confirmation of /forget: empty the library, or leave it as it is."""
    query, language = update.callback_query, user_language(update)
    library, chat_id = library_of(context), chat_id_of(update)
    articles = await asyncio.to_thread(library.articles, chat_id)
    if not await _may_change(update, articles):
        await query.answer(say("not_allowed_forget", language), show_alert=True)
        return
    await query.answer()
    if query.data == "forget:no":
        await query.edit_message_text(say("forget_cancelled", language))
        return
    count = await asyncio.to_thread(library.forget, chat_id)
    await query.edit_message_text(say("forgot", language, count=count))


async def stale_button(update: Update, context: Context) -> None:
    """A button this bot no longer knows (from an older version of it)."""
    await update.callback_query.answer(say("too_old", user_language(update)))


# Errors


async def report_error(update: object, context: Context) -> None:
    """Log the traceback and tell the user, briefly, that their request failed. When the
    database was unavailable, a webhook worker tries the update again later."""
    if isinstance(context.error, StorageUnavailable) and retry_later():
        logger.warning("Update postponed: %s", context.error)
    else:
        logger.error("Failed to handle an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    message = update.effective_message
    topic = message.message_thread_id if message and message.is_topic_message else None
    with suppress(TelegramError):
        await context.bot.send_message(
            update.effective_chat.id, say("apology", user_language(update)), message_thread_id=topic
        )
