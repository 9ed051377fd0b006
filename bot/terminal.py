"""`articlebot chat`: the bot's conversation in a terminal, for trying it without Telegram.

It behaves like a private chat with the Telegram bot: the same commands, plain lines are
questions (or a link to add), a question right after an answer may follow up on it, and
/more and /context stand in for the buttons. Answers come as plain text.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.conversation import Intent, Request, add, parse_command, read_message
from bot.render import (
    article_added,
    article_removed,
    plain_answer,
    plain_article_list,
    plain_context,
)
from bot.texts import say
from index.config import Settings
from index.errors import ArticleRejected, UnknownArticle
from index.ingest.extract import FILE_SUFFIXES
from index.library import Library
from index.records import Answer

logger = logging.getLogger(__name__)

_YES = {"y", "yes"}
_PATH_STARTS = ("./", "../", "/", "~")


class TerminalChat:
    """One conversation with a chat's library: `respond` turns a line into the reply."""

    def __init__(self, library: Library, chat_id: str) -> None:
        self.library = library
        self.chat_id = chat_id
        self._turn = 0  # numbers the replies, as message ids number Telegram's
        self._shown: tuple[Answer, int] | None = None  # the answer on screen, first quote shown
        self._confirming_forget = False
        library.memory.interrupt(chat_id)  # a new session starts a new conversation

    @property
    def _size(self) -> int:
        return self.library.settings.max_quotes

    def respond(self, line: str) -> str | None:
        """The reply to one line ("" for none); None when the user wants to leave."""
        self._turn += 1
        if self._confirming_forget:
            self._confirming_forget = False
            return self._forget() if line.strip().lower() in _YES else say("forget_cancelled")
        request = parse_command(line) or read_message(line)
        if request.intent is Intent.QUIT:
            return None
        try:
            return self._handle(request)
        except (ArticleRejected, UnknownArticle) as error:
            return str(error)

    def _handle(self, request: Request) -> str:
        argument = request.argument
        match request.intent:
            case Intent.HELP:
                return say("help_terminal")
            case Intent.ADD:
                return self._add(argument) if argument else say("usage_add")
            case Intent.ASK:
                return self._answer(argument) if argument else say("usage_ask")
            case Intent.MORE:
                return self._more()
            case Intent.CONTEXT:
                return self._context()
            case Intent.LIST:
                return plain_article_list(self.library.articles(self.chat_id))
            case Intent.REMOVE:
                return self._remove(argument) if argument else say("usage_remove")
            case Intent.FORGET:
                return self._ask_to_forget()
            case Intent.UNCLEAR | Intent.IGNORE:
                return ""
            case _:
                return say("unknown_command")

    def _add(self, source: str) -> str:
        path = local_file(source)
        if path is None:
            article = add(self.library, self.chat_id, source)
        elif path.is_file():
            self.library.ingest.extractor.check_file(path.name, path.stat().st_size)
            article = self.library.add_file(self.chat_id, path.name, path.read_bytes())
        else:
            raise ArticleRejected("not_a_source", source=source)
        return article_added(article, html=False)

    def _answer(self, question: str) -> str:
        answer = self.library.ask(self.chat_id, question, private=True)
        self.library.memory.record(self.chat_id, self._turn, answer)
        self._shown = (answer, 0)
        return plain_answer(answer, 0, self._size)

    def _more(self) -> str:
        if self._shown is None or not self._shown[0].found:
            return say("nothing_to_show")
        answer, start = self._shown[0], self._shown[1] + self._size
        if not answer.page(start, self._size):
            return say("no_more")
        self._shown = (answer, start)
        return plain_answer(answer, start, self._size)

    def _context(self) -> str:
        page = self._shown[0].page(self._shown[1], 1) if self._shown else []
        if not page:
            return say("nothing_to_show")
        return plain_context(self.library.context(self.chat_id, page[0]), page[0])

    def _remove(self, number: str) -> str:
        return article_removed(self.library.remove(self.chat_id, number), html=False)

    def _ask_to_forget(self) -> str:
        count = len(self.library.articles(self.chat_id))
        if not count:
            return say("empty_library_plain")
        self._confirming_forget = True
        return f"{say('forget_confirm', count=count)} {say('confirm_terminal')}"

    def _forget(self) -> str:
        return say("forgot", count=self.library.forget(self.chat_id))


def local_file(argument: str) -> Path | None:
    """The file an /add argument names, if it looks like a path ("./a.txt", "~/news/b.md",
    "'/tmp/c.html'" as terminals paste dropped files), else None (a link or a text). The
    terminal's user runs the bot, so their files are theirs to add; Telegram users' are not."""
    text = argument.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if not text or "\n" in text or "://" in text:
        return None
    path = Path(text).expanduser()
    if text.startswith(_PATH_STARTS) or path.suffix.lower() in FILE_SUFFIXES:
        return path
    return None


def run_terminal_chat(settings: Settings, chat_id: str) -> int:
    """Talk to the library of `chat_id` on stdin/stdout until /quit, Ctrl-D or Ctrl-C."""
    library = Library(settings)
    try:
        print(say("terminal_loading"), flush=True)
        library.warm_up()
        chat = TerminalChat(library, chat_id)
        print(say("help_terminal"))
        while (reply := _turn(chat)) is not None:
            if reply:
                print(reply, flush=True)
    finally:
        library.close()
    return 0


def _turn(chat: TerminalChat) -> str | None:
    """Read one line and answer it; None to stop. A failure costs one line, not the chat."""
    try:
        return chat.respond(input("\n> "))
    except (EOFError, KeyboardInterrupt):
        print()
        return None
    except Exception:
        logger.exception("Failed to answer a line")
        return say("apology")
