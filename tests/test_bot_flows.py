"""The Telegram handlers and the terminal chat around a stand-in Library: who gets answered,
which question follows up on which answer, who may remove articles, and what a failure costs.

The Library here is a fake with canned answers, so these tests need no model and check only
the bot's side: what it passes to the Library and what users see.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from bot.app import build_application
from bot.terminal import TerminalChat
from index.errors import UnknownArticle
from index.records import Answer, Article, Quote
from tests.telegram_standin import BotApiStandin, Chat, User

TOKEN = "123456:FLOWS"
BOT = "article_test_bot"
ALICE = User(3001, "Alice", "alice", "en")
BOB = User(3002, "Bob", "bob", "de")
CAROL = User(3003, "Carol", "carol", "en")
GROUP = Chat(-100400, "supergroup", "Readers")
APOLOGY = "Sorry, something went wrong"


class FakeMemory:
    """Stands in for index.answer.followup.AnswerMemory: answers by chat and message id."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, int], Answer] = {}

    def record(self, chat_id: str, message_id: int, answer: Answer) -> None:
        self.answers[(chat_id, message_id)] = answer

    show = record

    def recall(self, chat_id: str, message_id: int | None) -> Answer | None:
        return self.answers.get((chat_id, message_id)) if message_id is not None else None

    def interrupt(self, chat_id: str) -> None:
        pass


class FakeLibrary:
    """Stands in for index.Library: five canned quotes per question, and a log of questions
    with what the bot said about them (the message replied to, whether the chat is private).
    Which question follows up on which answer is the index's call (tests/test_index_followup)."""

    def __init__(self) -> None:
        self.settings = SimpleNamespace(max_quotes=3, feed_check_seconds=60.0)
        self.asked: list[tuple[str, str, int | None, bool]] = []
        self.chats: dict[str, list[Article]] = {}
        self.memory = FakeMemory()

    def ask(
        self, chat_id: str, question: str, replied_to: int | None = None, private: bool = False
    ) -> Answer:
        if question == "boom":
            raise RuntimeError("the index broke")
        self.asked.append((chat_id, question, replied_to, private))
        quotes = [self._quote(f"Satz {n} zu {question}", n) for n in range(5)]
        return Answer(question, quotes, found=True)

    def context(self, chat_id: str, quote: Quote, around: int = 2) -> list[Quote]:
        return [self._quote("Davor.", quote.position - 1), quote]

    def add_url(
        self, chat_id: str, url: str, added_by: str | None = None, request: str | None = None
    ) -> Article:
        return self._add(chat_id, url, added_by)

    def add_text(
        self, chat_id: str, text: str, added_by: str | None = None, request: str | None = None
    ) -> Article:
        return self._add(chat_id, text[:20], added_by)

    def articles(self, chat_id: str) -> list[Article]:
        return list(self.chats.get(chat_id, []))

    def article(self, chat_id: str, number: int | str) -> Article:
        for article in self.chats.get(chat_id, []):
            if str(article.number) == str(number).lstrip("#"):
                return article
        raise UnknownArticle(number)

    def remove(self, chat_id: str, number: int | str) -> Article:
        article = self.article(chat_id, number)
        self.chats[chat_id].remove(article)
        return article

    def forget(self, chat_id: str) -> int:
        return len(self.chats.pop(chat_id, []))

    def _add(self, chat_id: str, title: str, added_by: str | None) -> Article:
        articles = self.chats.setdefault(chat_id, [])
        article = Article(
            id=len(articles) + 1, chat_id=chat_id, number=len(articles) + 1, title=title,
            text="", language="de", source="url", url=None, canonical_url=None, author=None,
            published=None, added_at="2025-03-05", added_by=added_by, text_hash=title,
            sentence_count=9,
        )  # fmt: skip
        articles.append(article)
        return article

    @staticmethod
    def _quote(text: str, position: int) -> Quote:
        """A sentence of an article where each sentence takes 100 characters."""
        start = 100 * position
        return Quote(
            text=text, start=start, end=start + len(text), score=0.9, sentence_id=position,
            position=position, article_id=1, article_number=1, title="Artikel", url=None,
            published=None, language="de",
        )  # fmt: skip


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    # Privacy mode off: the bot receives every group message and must pick its own.
    with BotApiStandin(TOKEN, BOT, privacy_mode=False) as server:
        yield server


@pytest.fixture
def library(standin: BotApiStandin) -> Iterator[FakeLibrary]:
    """The real Application with its real handlers, polling the stand-in in a thread."""
    library = FakeLibrary()
    application = build_application(library, TOKEN, standin.base_url, standin.base_file_url)
    started, loop_ready = threading.Event(), threading.Event()
    state: dict = {}

    async def serve() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        loop_ready.set()
        async with application:
            await application.start()
            await application.updater.start_polling(timeout=1)
            started.set()
            await state["stop"].wait()
            await application.updater.stop()
            await application.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    assert loop_ready.wait(10) and started.wait(10)
    yield library
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def says(standin: BotApiStandin, chat: Chat, user: User, text: str, **kwargs: object) -> dict:
    standin.send_message(chat, user, text, **kwargs)
    return standin.wait_for_message(chat.id, timeout=10)


def test_in_a_group_the_bot_answers_only_when_addressed(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    standin.send_message(GROUP, ALICE, "Who is mediating with Iran, does anyone know?")
    standin.send_message(GROUP, ALICE, "/ask@otherbot Who is mediating?")
    answer = says(standin, GROUP, ALICE, f"@{BOT} Who is mediating?")
    follow = says(standin, GROUP, BOB, "And the Kremlin?", reply_to=answer)
    standin.send_message(GROUP, BOB, "Und was sagte Chamenei?")  # no reply: not for the bot
    assert says(standin, GROUP, BOB, "/ask Und Chamenei?", reply_to=follow)
    assert says(standin, GROUP, CAROL, "/help")["text"].startswith("I answer questions")
    chat = str(GROUP.id)
    assert library.asked == [
        (chat, "Who is mediating?", None, False),
        (chat, "And the Kremlin?", answer["message_id"], False),
        (chat, "Und Chamenei?", follow["message_id"], False),
    ]
    assert library.memory.recall(chat, follow["message_id"]).question == "And the Kremlin?"


def test_in_a_private_chat_questions_are_asked_as_private_ones(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    me = Chat(ALICE.id)
    first = says(standin, me, ALICE, "Who is mediating with Iran?")
    says(standin, me, ALICE, "What did the Kremlin say?")
    assert says(standin, me, ALICE, "https://example.com/a")["text"].startswith("Added #1:")
    says(standin, me, ALICE, "Und Trump?", reply_to=first)
    chat = str(ALICE.id)
    assert library.asked == [
        (chat, "Who is mediating with Iran?", None, True),
        (chat, "What did the Kremlin say?", None, True),
        (chat, "Und Trump?", first["message_id"], True),
    ]


def test_messages_of_one_chat_are_handled_in_order(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    me = Chat(ALICE.id)
    for question in ("Who is mediating?", "And the Kremlin?", "Und Chamenei?"):
        standin.send_message(me, ALICE, question)  # without waiting for the answers
    replies = [standin.wait_for_message(me.id, timeout=10)["text"] for _ in range(3)]
    assert [reply.split(" zu ")[1].split("\n")[0] for reply in replies] == [
        "Who is mediating?",
        "And the Kremlin?",
        "Und Chamenei?",
    ]
    assert [question for _, question, _, _ in library.asked] == [
        "Who is mediating?",
        "And the Kremlin?",
        "Und Chamenei?",
    ]


def test_buttons_show_more_quotes_and_the_context(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    me = Chat(BOB.id)
    answer = says(standin, me, BOB, "Wer vermittelt?")
    labels = [b["text"] for b in answer["reply_markup"]["inline_keyboard"][0]]
    assert labels == ["Mehr", "Kontext"]
    standin.press_button(me, BOB, answer, "more:3")
    more = standin.wait_for_edit(me.id, timeout=10)
    assert "Satz 3 zu Wer vermittelt?" in more["text"] and "Satz 0" not in more["text"]
    assert [b["callback_data"] for b in more["reply_markup"]["inline_keyboard"][0]] == ["context:3"]
    standin.press_button(me, BOB, more, "context:3")
    context = standin.wait_for_message(me.id, timeout=10)
    assert context["text"].startswith("Davor. Satz 3 zu Wer vermittelt?")
    assert context["reply_to"] == answer["message_id"]
    follow = says(standin, me, BOB, "Und dann?", reply_to=context)
    assert follow and library.asked[-1][2:] == (context["message_id"], True)
    remembered = library.memory.recall(str(BOB.id), context["message_id"])
    assert remembered.question == "Wer vermittelt?"  # the context belongs to the answer


def test_in_a_group_admins_and_the_person_who_added_may_remove(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    standin.set_admins(GROUP.id, [CAROL])
    says(standin, GROUP, ALICE, "/add https://example.com/1")
    says(standin, GROUP, ALICE, "/add https://example.com/2")
    refused = says(standin, GROUP, BOB, "/remove 1")["text"]
    assert refused.startswith("Nur Admins und wer einen Artikel hinzugefügt hat")
    assert says(standin, GROUP, ALICE, "/remove 1")["text"].startswith("Removed #1:")
    assert says(standin, GROUP, CAROL, "/remove 2")["text"].startswith("Removed #2:")
    assert says(standin, GROUP, CAROL, "/remove 2")["text"].startswith("There is no article #2")
    assert says(standin, GROUP, BOB, "/remove 2")["text"].startswith("In dieser Bibliothek gibt")


def test_a_failure_costs_one_apology_and_the_bot_carries_on(
    standin: BotApiStandin, library: FakeLibrary
) -> None:
    me = Chat(CAROL.id)
    assert says(standin, me, CAROL, "boom")["text"].startswith(APOLOGY)
    assert says(standin, me, CAROL, "Who is mediating?")["text"].startswith("Satz 0")


def test_the_terminal_chat_decides_like_a_private_chat() -> None:
    library = FakeLibrary()
    chat = TerminalChat(library, "terminal")
    assert chat.respond("/more") == "Ask a question first."
    assert chat.respond("Who is mediating with Iran?").startswith("1. “Satz 0 zu Who")
    chat.respond("What did the Kremlin say?")
    assert library.asked[-1] == ("terminal", "What did the Kremlin say?", None, True)
    assert chat.respond("/more").startswith("4. “Satz 3 zu What did the Kremlin say?”")
    assert chat.respond("/more") == "No more quotes."
    assert chat.respond("/context").startswith("Davor. »Satz 3 zu What did the Kremlin say?«")
    assert chat.respond("https://example.com/a").startswith("Added #1: https://example.com/a")
    assert chat.respond("/remove 9") == "There is no article #9 in this library; /list shows them."
    assert chat.respond("/forget").endswith("Type yes to confirm: ")
    assert chat.respond("no") == "Nothing was forgotten."
    chat.respond("/forget")
    assert chat.respond("yes") == "Done: the library is empty now (1 forgotten)."
    assert chat.respond("   ") == ""
    assert chat.respond("/frobnicate") == "I don't know that command; /help lists what I can do."
    assert chat.respond("/quit") is None
