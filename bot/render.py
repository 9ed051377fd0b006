"""Answers and article lists as messages: HTML for Telegram, plain text for the terminal.

Everything that comes from articles or users is escaped here and nowhere else, and no
message ever exceeds Telegram's 4096 characters.
"""

from __future__ import annotations

from html import escape

from index.answers import Answer, Quote
from index.records import Article

MESSAGE_LIMIT = 4096
_QUOTE_LIMIT = 1200  # a single "sentence" longer than this is shortened in display only


def _date(value: str | None) -> str:
    return value[:10] if value else ""


def _source_line(quote: Quote) -> tuple[str, str]:
    """(title, "date · #n") for a quote's source."""
    details = " · ".join(x for x in (_date(quote.published), f"#{quote.article_number}") if x)
    return quote.title, details


def _shorten(text: str, limit: int = _QUOTE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Plain text (terminal)


def plain_answer(answer: Answer, start: int = 0, size: int = 3) -> str:
    if answer.library_empty:
        return EMPTY_LIBRARY_PLAIN
    if not answer.found:
        return NO_ANSWER
    quotes = answer.page(start, size)
    if not quotes:
        return "No more quotes."
    blocks = []
    for number, quote in enumerate(quotes, start=start + 1):
        title, details = _source_line(quote)
        link = f"\n   {quote.url}" if quote.url else ""
        blocks.append(f"{number}. “{quote.text}”\n   — {title} ({details}){link}")
    return "\n\n".join(blocks)


def plain_article_list(articles: list[Article]) -> str:
    if not articles:
        return EMPTY_LIBRARY_PLAIN
    lines = []
    for article in articles:
        when = f", {_date(article.published)}" if article.published else ""
        where = f"\n    {article.url}" if article.url else ""
        lines.append(
            f"#{article.number}  {article.title} ({article.language}{when}, "
            f"{article.sentence_count} sentences){where}"
        )
    return "\n".join(lines)


NO_ANSWER = "The articles in this library don't answer that."
EMPTY_LIBRARY_PLAIN = (
    "The library is empty. Add an article first: `articlebot add URL|FILE|-` "
    "(or /add <link or text> in the chat)."
)


# HTML (Telegram)


def html_quote(quote: Quote) -> str:
    """A quote in a blockquote, matched question words in bold, then its linked source."""
    text = quote.text
    parts, cursor = [], 0
    for start, end in quote.highlights:
        if start < cursor or end > len(text):
            continue
        parts.append(escape(text[cursor:start]))
        parts.append(f"<b>{escape(text[start:end])}</b>")
        cursor = end
    parts.append(escape(text[cursor:]))
    body = "".join(parts)
    if len(text) > _QUOTE_LIMIT:
        body = escape(_shorten(text))
    title, details = _source_line(quote)
    source = escape(title)
    if quote.url:
        source = f'<a href="{escape(quote.url, quote=True)}">{source}</a>'
    return f"<blockquote>{body}</blockquote>\n— {source} <i>({escape(details)})</i>"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain text at line breaks into pieces Telegram accepts."""
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(line) > limit:
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
