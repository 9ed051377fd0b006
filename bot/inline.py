"""Inline answers: "@bot question" typed in any chat, answered from the asker's own library.

The library is the one of the user's private chat with the bot (a private chat's id is its
user's id), never a group's: an inline query can come from any chat, and a group's articles
are for its members to ask about there. Each result is a quote with its article's title;
choosing one posts the quote and its source into the chat the user is typing in. Results
are personal and cached only briefly, since the library changes as the user adds articles.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.constants import ParseMode

from bot.handlers import Context, library_of
from bot.render import html_quote, shorten, source_line
from bot.texts import language_of, say
from index.records import Quote

RESULTS = 5
CACHE_SECONDS = 10
# Telegram sends at most 256 characters; a longer query is refused, not cut.
MAX_QUERY = 256
_DESCRIPTION_LIMIT = 200


async def inline_query(update: Update, context: Context) -> None:
    """Answer an inline query with up to five quotes, or one result that says why not."""
    query = update.inline_query
    language = language_of(query.from_user.language_code)
    question = query.query.strip()
    bot = context.bot.username
    if not question:
        results = [_note(say("inline_type", language), say("inline_type_text", language, bot=bot))]
    elif len(question) > MAX_QUERY:
        text = say("inline_too_long_text", language, limit=MAX_QUERY, length=len(question))
        results = [_note(say("inline_too_long", language), text)]
    else:
        library = library_of(context)
        answer = await asyncio.to_thread(library.ask, str(query.from_user.id), question)
        if answer.library_empty:
            text = say("inline_empty_text", language, bot=bot)
            results = [_note(say("inline_empty", language), text)]
        elif not answer.found:
            results = [_note(say("inline_no_answer", language), say("no_answer", language))]
        else:
            results = [_quote(number, quote) for number, quote in enumerate(answer.quotes)]
    await query.answer(results[:RESULTS], cache_time=CACHE_SECONDS, is_personal=True)


def _quote(number: int, quote: Quote) -> InlineQueryResultArticle:
    """A quote as a result: its article's title, the quote and its source to choose by; the
    message it posts is the quote with its linked source (the words that matched the
    question are not marked: the chat does not see the question)."""
    description = "\n".join(
        filter(None, [shorten(quote.text, _DESCRIPTION_LIMIT), source_line(quote)])
    )
    message = html_quote(replace(quote, highlights=()), numbered=False)
    return InlineQueryResultArticle(
        id=f"quote-{number}",
        title=shorten(quote.title, _DESCRIPTION_LIMIT),
        description=description,
        input_message_content=InputTextMessageContent(message, parse_mode=ParseMode.HTML),
    )


def _note(title: str, text: str) -> InlineQueryResultArticle:
    """The one result that explains why there are no quotes; choosing it posts the text."""
    return InlineQueryResultArticle(
        id="note",
        title=title,
        description=text,
        input_message_content=InputTextMessageContent(text, parse_mode=None),
    )
