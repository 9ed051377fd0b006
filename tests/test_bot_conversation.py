"""The decisions Telegram and the terminal share: commands, group manners, follow-ups, rights."""

from __future__ import annotations

import pytest

from bot.conversation import (
    Intent,
    Request,
    add,
    group_text,
    owns,
    parse_command,
    read_message,
    source_of,
)
from index.records import Article

BOT = "article_test_bot"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ask Who is mediating?", Request(Intent.ASK, "Who is mediating?")),
        (f"/ask@{BOT} Who?", Request(Intent.ASK, "Who?")),
        ("/ask@Article_Test_Bot Who?", Request(Intent.ASK, "Who?")),
        ("/ask@otherbot Who?", Request(Intent.IGNORE)),
        ("/ASK who", Request(Intent.ASK, "who")),
        ("  /list  ", Request(Intent.LIST)),
        ("/start", Request(Intent.HELP)),
        ("/remove #2", Request(Intent.REMOVE, "#2")),
        (
            "/add First line.\n\nSecond paragraph.",
            Request(Intent.ADD, "First line.\n\nSecond paragraph."),
        ),
        ("/frobnicate now", Request(Intent.UNKNOWN, "now")),
        ("/ask?", None),
        ("Who is /ask?", None),
        ("plain words", None),
    ],
)
def test_commands_are_read_like_telegram_reads_them(text: str, expected: Request | None) -> None:
    assert parse_command(text, BOT) == expected


def test_the_terminal_has_no_bot_name_to_check() -> None:
    assert parse_command("/ask@whatever Who?") == Request(Intent.ASK, "Who?")
    assert parse_command("/more") == Request(Intent.MORE)
    assert parse_command("/exit") == Request(Intent.QUIT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://example.com/news/1", Request(Intent.ADD, "https://example.com/news/1")),
        ("  http://127.0.0.1:8000/a.html \n", Request(Intent.ADD, "http://127.0.0.1:8000/a.html")),
        (
            "What about https://example.com/news/1?",
            Request(Intent.ASK, "What about https://example.com/news/1?"),
        ),
        ("Who is mediating with Iran?", Request(Intent.ASK, "Who is mediating with Iran?")),
        (" \n\t ", Request(Intent.UNCLEAR)),
    ],
)
def test_a_plain_message_is_a_question_unless_it_is_only_a_link(
    text: str, expected: Request
) -> None:
    assert read_message(text) == expected


def test_the_source_to_add_is_the_link_of_a_short_note_and_otherwise_the_text() -> None:
    assert (
        source_of("Lest mal das hier: https://example.com/a.html.") == "https://example.com/a.html"
    )
    assert source_of("«https://example.com/b»") == "https://example.com/b"
    article = "Ein langer Artikel mit Wörtern. " * 20 + "Quelle: https://example.com/c"
    assert source_of(article) == article
    assert source_of("Nur Text ohne Link.") == "Nur Text ohne Link."


class RecordingLibrary:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_url(self, chat_id: str, url: str, added_by: str | None, request: str | None) -> str:
        self.calls.append(("url", chat_id, url, added_by, request))
        return "article"

    def add_text(self, chat_id: str, text: str, added_by: str | None, request: str | None) -> str:
        self.calls.append(("text", chat_id, text, added_by, request))
        return "article"


def test_adding_fetches_links_and_keeps_texts() -> None:
    library = RecordingLibrary()
    add(library, "7", "see https://example.com/x", "42", "update:9")
    add(library, "7", "Ein ganzer Artikel.\n\nMit Absätzen.")
    assert library.calls == [
        ("url", "7", "https://example.com/x", "42", "update:9"),
        ("text", "7", "Ein ganzer Artikel.\n\nMit Absätzen.", None, None),
    ]


@pytest.mark.parametrize(
    ("text", "mentioned", "replied", "expected"),
    [
        ("Has anyone read the Iran article?", False, False, None),
        (f"@{BOT} who is mediating?", True, False, "who is mediating?"),
        (f"Who is mediating, @{BOT.upper()}?", True, False, "Who is mediating, ?"),
        ("And what did the Kremlin say?", False, True, "And what did the Kremlin say?"),
        (f"@{BOT}", True, False, ""),
    ],
)
def test_in_a_group_the_bot_only_hears_what_is_addressed_to_it(
    text: str, mentioned: bool, replied: bool, expected: str | None
) -> None:
    assert group_text(text, BOT, mentioned=mentioned, replied_to_bot=replied) == expected


def article(number: int, added_by: str | None) -> Article:
    return Article(
        id=number, chat_id="-100", number=number, title="T", text="x", language="de",
        source="url", url=None, canonical_url=None, author=None, published=None,
        added_at="2025-03-05", added_by=added_by, text_hash=str(number), sentence_count=1,
    )  # fmt: skip


def test_people_own_the_articles_they_added() -> None:
    assert owns([article(1, "42"), article(2, "42")], "42")
    assert not owns([article(1, "42"), article(2, "7")], "42")
    assert not owns([article(1, None)], "42")
    assert not owns([], "42")
