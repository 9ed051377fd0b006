"""Answers, articles and replies as messages: HTML for Telegram, plain text for the terminal.

Everything that comes from articles or users is escaped here and nowhere else, and no
message ever exceeds Telegram's 4096 characters.
"""

from __future__ import annotations

import re
from html import escape, unescape
from urllib.parse import urlsplit

from bot.texts import ENGLISH, language_name, say
from index.errors import LibraryError
from index.records import Answer, Article, Feed, FeedPoll, Quote

MESSAGE_LIMIT = 4096
_QUOTE_LIMIT = 1200  # a single "sentence" longer than this is shortened in display only
_TITLE_LIMIT = 200
_QUESTION_LIMIT = 200
_TAG = re.compile(r"<[^>]*>")


def _date(value: str | None) -> str:
    return value[:10] if value else ""


def shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with "…" if it is longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _details(quote: Quote, numbered: bool = True) -> str:
    """Where a quote's source came from (a forwarded post's channel), its date and short id:
    "Tagesschau · 2025-03-05 · #1"; without the id where the chat's numbers mean nothing."""
    number = f"#{quote.article_number}" if numbered else ""
    return " · ".join(x for x in (quote.origin, _date(quote.published), number) if x)


def _fill(key: str, language: str, html: bool, **values: object) -> str:
    """A catalogue text with `values` filled in, escaped when it is to be sent as HTML."""
    if html:
        values = {name: escape(str(value)) for name, value in values.items()}
    return say(key, language, **values)


def visible_length(html: str) -> int:
    """How long Telegram counts a message of ours: its text without tags, in UTF-16 units
    (at least the number of characters, so the limit holds whichever Telegram counts)."""
    text = unescape(_TAG.sub("", html))
    return len(text.encode("utf-16-le")) // 2


def pack(blocks: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Join blocks of HTML, each well under the limit, into as few messages as the limit
    allows, never cutting one (a cut could split a tag or an entity)."""
    messages: list[str] = []
    for block in blocks:
        joined = f"{messages[-1]}\n\n{block}" if messages else block
        if messages and visible_length(joined) <= limit:
            messages[-1] = joined
        else:
            messages.append(block)
    return messages


# Replies to commands


def rejection(error: LibraryError, language: str = ENGLISH) -> str:
    """The one sentence an index error carries for the user, ready to send as HTML."""
    return escape(error.message(language))


def article_added(article: Article, language: str = ENGLISH, html: bool = True) -> str:
    return _fill(
        "added",
        language,
        html,
        number=article.number,
        title=shorten(article.title, _TITLE_LIMIT),
        article_language=language_name(article.language, language),
        sentences=article.sentence_count,
    )


def article_removed(article: Article, language: str = ENGLISH, html: bool = True) -> str:
    title = shorten(article.title, _TITLE_LIMIT)
    return _fill("removed", language, html, number=article.number, title=title)


# Plain text (terminal)


def plain_answer(answer: Answer, start: int = 0, size: int = 3, language: str = ENGLISH) -> str:
    if answer.library_empty:
        return say("empty_library_plain", language)
    if not answer.found:
        return say("no_answer", language)
    quotes = answer.page(start, size)
    if not quotes:
        return say("no_more", language)
    blocks = []
    if answer.context:
        blocks.append(say("follow_up", language, question=answer.context))
    for number, quote in enumerate(quotes, start=start + 1):
        link = f"\n   {quote.url}" if quote.url else ""
        text = shorten(quote.text, _QUOTE_LIMIT)
        blocks.append(f"{number}. “{text}”\n   — {quote.title} ({_details(quote)}){link}")
    return "\n\n".join(blocks)


def _within(sentence: Quote, quote: Quote) -> bool:
    """Whether a sentence of the context view is part of the quote it was opened from."""
    return quote.start <= sentence.start and sentence.end <= quote.end


def plain_context(quotes: list[Quote], focus: Quote) -> str:
    """The sentences around a quote, the quote itself marked with » «."""
    text = " ".join(f"»{q.text}«" if _within(q, focus) else q.text for q in quotes)
    return f"{text}\n   — {focus.title} ({_details(focus)})"


def plain_article_list(articles: list[Article], language: str = ENGLISH) -> str:
    if not articles:
        return say("empty_library_plain", language)
    lines = []
    for article in articles:
        when = f", {_date(article.published)}" if article.published else ""
        where = f"\n    {article.url}" if article.url else ""
        lines.append(
            f"#{article.number}  {article.title} ({article.language}{when}, "
            f"{article.sentence_count} sentences){where}"
        )
    return "\n".join(lines)


# HTML (Telegram)


def _marked(text: str, highlights: tuple[tuple[int, int], ...]) -> str:
    """`text` escaped, with the highlighted spans in bold, shortened for display if long."""
    shown = shorten(text, _QUOTE_LIMIT)
    cut = len(shown) if shown == text else len(shown) - 1  # where "…" begins
    parts, cursor = [], 0
    for start, end in sorted(highlights):
        if start < cursor or start >= end or end > cut:
            continue
        parts += [escape(shown[cursor:start]), f"<b>{escape(shown[start:end])}</b>"]
        cursor = end
    parts.append(escape(shown[cursor:]))
    return "".join(parts)


def _linked_title(title: str, url: str | None) -> str:
    """An article's title, escaped and shortened, linked to its page if it has one."""
    shown = escape(shorten(title, _TITLE_LIMIT))
    return f'<a href="{escape(url, quote=True)}">{shown}</a>' if url else shown


def _html_source(quote: Quote, numbered: bool = True) -> str:
    details = _details(quote, numbered)
    shown = f" <i>({escape(details)})</i>" if details else ""
    return f"— {_linked_title(quote.title, quote.url)}{shown}"


def html_quote(quote: Quote, numbered: bool = True) -> str:
    """A quote in a blockquote, matched question words in bold, then its linked source
    (`numbered`: with the article's short id, which only means something in its chat)."""
    body = _marked(quote.text, quote.highlights)
    return f"<blockquote>{body}</blockquote>\n{_html_source(quote, numbered)}"


def source_line(quote: Quote) -> str:
    """Where a quote is from and when, in plain text under its article's title (an inline
    result): "— blick.ch · 2025-03-05", or the channel a forwarded post came from."""
    where = quote.origin or (urlsplit(quote.url).hostname if quote.url else None)
    parts = [x for x in (where, _date(quote.published)) if x]
    return f"— {' · '.join(parts)}" if parts else ""


def html_answer(
    answer: Answer, start: int = 0, size: int = 3, language: str = ENGLISH
) -> tuple[str, int]:
    """The answer's quotes from `start` on, as many of `size` as fit in one message.

    Returns the message and how many quotes it shows (0 for "no answer" and the like), so
    that "More" can go on from `start` plus that.
    """
    if answer.library_empty:
        return say("empty_library", language), 0
    if not answer.found:
        return say("no_answer", language), 0
    quotes = answer.page(start, size)
    if not quotes:
        return say("no_more", language), 0
    blocks = []
    if answer.context:
        question = shorten(answer.context, _QUESTION_LIMIT)
        blocks.append(f"<i>{_fill('follow_up', language, True, question=question)}</i>")
    shown = 0
    for quote in quotes:
        block = html_quote(quote)
        if shown and visible_length("\n\n".join([*blocks, block])) > MESSAGE_LIMIT:
            break
        blocks.append(block)
        shown += 1
    return "\n\n".join(blocks), shown


def html_context(quotes: list[Quote], focus: Quote) -> str:
    """The sentences around a quote in one blockquote, the quote itself in bold."""
    room = (MESSAGE_LIMIT - _TITLE_LIMIT - 100) // max(len(quotes), 1)
    while True:  # emoji and other wide characters count twice in Telegram's limit
        sentences = [
            f"<b>{escape(shorten(q.text, room))}</b>"
            if _within(q, focus)
            else escape(shorten(q.text, room))
            for q in quotes
        ]
        html = f"<blockquote>{' '.join(sentences)}</blockquote>\n{_html_source(focus)}"
        if visible_length(html) <= MESSAGE_LIMIT:
            return html
        room //= 2


def _source_name(article: Article, language: str) -> str:
    if article.source == "forward" and article.author:
        return article.author
    if article.url:
        return urlsplit(article.url).hostname or article.url
    return say(f"source_{article.source}", language)


def html_article_list(articles: list[Article], language: str = ENGLISH) -> list[str]:
    """The chat's articles, one short block each, in as many messages as needed."""
    if not articles:
        return [say("empty_library", language)]
    blocks = []
    for article in articles:
        title = _linked_title(article.title, article.url)
        details = [
            language_name(article.language, language),
            _date(article.published),
            say("sentences", language, count=article.sentence_count),
            _source_name(article, language),
        ]
        line = escape(" · ".join(filter(None, details)))
        blocks.append(f"<b>#{article.number}</b> {title}\n{line}")
    return pack(blocks)


# Feeds: the same text as HTML (Telegram) or plain (the command line)


def feed_followed(poll: FeedPoll, minutes: float, language: str, html: bool = True) -> str:
    """The reply to /follow: which feed, how often, and what it brought at once."""
    feed = poll.feed
    title = shorten(feed.title, _TITLE_LIMIT)
    every = f"{minutes:g}"
    text = _fill("following", language, html, title=title, number=feed.id, minutes=every)
    summary = feed_news(poll, 0, language, html)
    return f"{text}\n\n{summary}" if summary else text


def feed_news(poll: FeedPoll, limit: int, language: str, html: bool = True) -> str | None:
    """ "3 new articles from ...", with their ids and titles; None when the poll added
    nothing. `limit` (the items per poll) is named when items were skipped."""
    if not poll.added:
        return None
    title = shorten(poll.feed.title, _TITLE_LIMIT)
    key = "feed_added_one" if len(poll.added) == 1 else "feed_added"
    lines = [_fill(key, language, html, count=len(poll.added), title=title)]
    for article in poll.added:
        name = shorten(article.title, _TITLE_LIMIT)
        lines.append(f"#{article.number} {escape(name) if html else name}")
    if poll.skipped and limit:
        lines.append(_fill("feed_skipped", language, html, count=poll.skipped, limit=limit))
    return "\n".join(lines)


def feed_trouble(poll: FeedPoll, language: str, html: bool = True) -> str | None:
    """What the chat hears of a feed that keeps failing (once) or was paused; else None."""
    if not poll.report_failure:
        return None
    feed = poll.feed
    values = {
        "title": shorten(feed.title, _TITLE_LIMIT),
        "number": feed.id,
        "error": poll.error,
        "failures": feed.failures,
        "url": feed.url,
    }
    return _fill("feed_paused" if poll.paused else "feed_failing", language, html, **values)


def feed_list(feeds: list[Feed], language: str, html: bool = True) -> list[str]:
    """The chat's feeds with how their last polls went, in as many messages as needed."""
    if not feeds:
        return [say("no_feeds", language)]
    blocks = []
    for feed in feeds:
        state = [
            say("feed_ok", language, when=_time(feed.last_success))
            if feed.last_success
            else say("feed_never", language),
            say("feed_error", language, error=feed.last_error) if feed.last_error else "",
            say("feed_paused_state", language) if feed.paused else "",
        ]
        title, url = shorten(feed.title, _TITLE_LIMIT), feed.url
        line = " · ".join(filter(None, state))
        if html:
            blocks.append(f"<b>#{feed.id}</b> {escape(title)}\n{escape(url)}\n{escape(line)}")
        else:
            blocks.append(f"#{feed.id} {title}\n   {url}\n   {line}")
    heading = say("feeds_title", language)
    return pack([heading, *blocks]) if html else ["\n".join([heading, *blocks])]


def feed_removed(feed: Feed, language: str, html: bool = True) -> str:
    title = shorten(feed.title, _TITLE_LIMIT)
    return _fill("unfollowed", language, html, title=title, number=feed.id)


def _time(value: str) -> str:
    """A stored ISO time as "2026-12-02 16:05 UTC"."""
    return f"{value[:10]} {value[11:16]} UTC"
