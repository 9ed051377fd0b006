"""What a message asks of the bot, decided the same way in Telegram and in the terminal.

The Telegram handlers and the terminal chat differ only in how messages arrive and how
answers look; which command a line is, whether a group message is meant for the bot and who
may remove articles is decided here. (Whether a question follows up on an earlier answer is
the index's call: `index.answer.followup`.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from index.library import Library
from index.records import Article


class Intent(StrEnum):
    HELP = "help"
    ADD = "add"
    ASK = "ask"
    LIST = "list"
    REMOVE = "remove"
    FORGET = "forget"
    MORE = "more"
    CONTEXT = "context"
    QUIT = "quit"
    UNKNOWN = "unknown"  # a command the bot does not have
    UNCLEAR = "unclear"  # nothing to act on: only whitespace
    IGNORE = "ignore"  # not for this bot: a command addressed to another one


@dataclass(frozen=True)
class Request:
    """One thing a user asked for, with the text that came with it."""

    intent: Intent
    argument: str = ""


_COMMAND_INTENTS = {
    "start": Intent.HELP,
    "help": Intent.HELP,
    "add": Intent.ADD,
    "ask": Intent.ASK,
    "list": Intent.LIST,
    "remove": Intent.REMOVE,
    "forget": Intent.FORGET,
    "more": Intent.MORE,
    "context": Intent.CONTEXT,
    "quit": Intent.QUIT,
    "exit": Intent.QUIT,
}
_COMMAND = re.compile(r"/(\w+)(?:@(\w+))?(?=\s|$)\s*(.*)", re.DOTALL)
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?…][\"'”“»)]*(?=\s|$)")
# A message with a link and fewer words than this is about the link, not an article itself;
# a message without one is an article when it has as many words and sentences as these.
_ARTICLE_WORDS = 50
_ARTICLE_SENTENCES = 4
_ARTICLE_QUESTIONS = 0.25  # an article may ask a rhetorical question or quote one, not many


def argument_of(text: str | None) -> str:
    """What follows the command in "/cmd@bot argument", line breaks kept (for article texts)."""
    match = _COMMAND.match((text or "").strip())
    return match.group(3).strip() if match else ""


def parse_command(text: str, bot_username: str | None = None) -> Request | None:
    """The request in a command line, or None if `text` is not a command.

    A command addressed to another bot ("/ask@otherbot") is `Intent.IGNORE`; without a
    `bot_username` (the terminal) the address is not checked.
    """
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    name, address, argument = match.groups()
    if address and bot_username and address.lower() != bot_username.lower():
        return Request(Intent.IGNORE)
    return Request(_COMMAND_INTENTS.get(name.lower(), Intent.UNKNOWN), argument.strip())


def is_url(text: str) -> bool:
    """True if `text` is a single link and nothing else."""
    return _URL.fullmatch(text.strip()) is not None


def is_short_note(text: str, links: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether a message holding links is about them rather than an article itself: it has
    few words besides them. `links` are links shown in it that lack "https://"."""
    for link in links:
        text = text.replace(link, " ")
    return len(_WORD.findall(_URL.sub(" ", text))) < _ARTICLE_WORDS


def source_of(text: str) -> str:
    """What to add for a message: its link if it is a short note around one, else its text."""
    link = _URL.search(text)
    if link and is_short_note(text):
        return link.group().rstrip(".,;:!?)»”'\"")
    return text


def reads_like_article(text: str) -> bool:
    """Whether a pasted message is an article rather than a question: many words in several
    sentences, few of them questions, and it does not end by asking something."""
    text = text.strip()
    ends = _SENTENCE_END.findall(text)
    questions = sum(end.startswith("?") for end in ends)
    return (
        len(_WORD.findall(text)) >= _ARTICLE_WORDS
        and len(ends) >= _ARTICLE_SENTENCES
        and questions <= len(ends) * _ARTICLE_QUESTIONS
        and not text.endswith("?")
    )


def read_message(text: str) -> Request:
    """A message that is not a command: a lone link or a pasted article is an article to
    add, anything else a question."""
    if not text.strip():
        return Request(Intent.UNCLEAR)
    if is_url(text) or reads_like_article(text):
        return Request(Intent.ADD, text.strip())
    return Request(Intent.ASK, text.strip())


def group_text(
    text: str, bot_username: str, *, mentioned: bool, replied_to_bot: bool
) -> str | None:
    """The part of a group message meant for the bot, or None if the message is not for it.

    In a group the bot takes part only when addressed: a message that mentions it or replies
    to one of its messages. Everything else is the members' own conversation.
    """
    if not (mentioned or replied_to_bot):
        return None
    mention = rf"\s*@{re.escape(bot_username)}\b\s*"
    return re.sub(mention, " ", text, flags=re.IGNORECASE).strip()


def owns(articles: list[Article], user_id: str) -> bool:
    """True if the user added every one of `articles` (and there is at least one)."""
    return bool(articles) and all(article.added_by == user_id for article in articles)


def add(
    library: Library,
    chat_id: str,
    text: str,
    added_by: str | None = None,
    request: str | None = None,
) -> Article:
    """Add the link or the article a message holds to the chat's library (raises
    ArticleRejected)."""
    source = source_of(text)
    if is_url(source):
        return library.add_url(chat_id, source, added_by, request)
    return library.add_text(chat_id, source, added_by, request)
