"""How shared news is read: forwarded posts (their origin, their links, their captions), pasted
articles told apart from long questions, and local files named in the terminal chat."""

from __future__ import annotations

import datetime as dtm
from pathlib import Path

import pytest
from telegram import (
    Chat,
    Message,
    MessageEntity,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    User,
)

from bot.conversation import Intent, read_message, reads_like_article
from bot.forwarded import ForwardedPost, forwarded_post, origin_of
from bot.terminal import TerminalChat, local_file
from index.library import Library
from index.records import Origin
from tests.conftest import fixture_path

WHEN = dtm.datetime(2025, 3, 5, 9, 30, tzinfo=dtm.UTC)
CHANNEL = Chat(-1001, Chat.CHANNEL, title="Blick News", username="blicknews")
ARTICLE = (
    "Russland hat sich bereiterklärt, die Regierung von Donald Trump bei der Kommunikation "
    "mit dem Iran zu unterstützen. So berichtet es Bloomberg unter Berufung auf vertraute "
    "Personen. Konkret soll es um Teherans Atomprogramm gehen. Der Kreml äusserte sich "
    "zurückhaltend zu den Berichten. Viele Hardliner in Teheran lehnen eine Zusammenarbeit "
    "mit Washington ab, und der Oberste Führer sagte, man könne Trump nicht trauen."
)


def forwarded(
    text: str = "", caption: str = "", entities: tuple[MessageEntity, ...] = ()
) -> Message:
    """A message forwarded from the public channel, as PTB reads it."""
    message = Message(
        1,
        WHEN,
        Chat(7, Chat.PRIVATE),
        from_user=User(7, "Ann", False),
        text=text or None,
        caption=caption or None,
        entities=entities if text else None,
        caption_entities=entities if caption else None,
        forward_origin=MessageOriginChannel(WHEN, CHANNEL, 4711),
    )
    message.set_bot(None)
    return message


def url_entities(text: str, url: str) -> tuple[MessageEntity, ...]:
    offset = text.index(url)
    return (MessageEntity(MessageEntity.URL, offset, len(url)),)


def test_a_forwarded_post_keeps_its_channel_link_and_date() -> None:
    post = forwarded_post(forwarded(ARTICLE))
    assert post == ForwardedPost(
        text=ARTICLE, origin=Origin("Blick News", "https://t.me/blicknews/4711", "2025-03-05")
    )


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (MessageOriginChannel(WHEN, Chat(-2, Chat.CHANNEL, title="Intern"), 5), Origin("Intern")),
        (MessageOriginChat(WHEN, Chat(-3, Chat.SUPERGROUP, title="Leser")), Origin("Leser")),
        (MessageOriginUser(WHEN, User(9, "Marian", False, "Nadler")), Origin("Marian Nadler")),
        (MessageOriginHiddenUser(WHEN, "M. N."), Origin("M. N.")),
    ],
)
def test_private_channels_groups_and_people_have_a_name_but_no_link(
    origin: object, expected: Origin
) -> None:
    assert origin_of(origin) == Origin(expected.name, None, "2025-03-05")


def test_a_post_that_is_mostly_a_link_adds_the_linked_article() -> None:
    text = "Lokführer streiken wieder.\nexample.com/bahn/streik"
    post = forwarded_post(forwarded(text, entities=url_entities(text, "example.com/bahn/streik")))
    assert post == ForwardedPost(link="https://example.com/bahn/streik")
    hidden = "Lokführer streiken wieder. Mehr lesen"
    more = MessageEntity(MessageEntity.TEXT_LINK, 27, 10, url="https://example.com/s")
    assert forwarded_post(forwarded(hidden, entities=(more,))).link == "https://example.com/s"


def test_links_to_other_posts_and_long_posts_with_a_source_keep_the_text() -> None:
    teaser = "Mehr dazu im Kanal: https://t.me/blicknews/4700"
    assert forwarded_post(forwarded(teaser, entities=url_entities(teaser, teaser[20:]))).text
    sourced = f"{ARTICLE}\nQuelle: https://example.com/iran"
    post = forwarded_post(forwarded(sourced, entities=url_entities(sourced, sourced[-25:])))
    assert post.text == sourced and not post.link


def test_a_caption_is_the_text_and_a_post_without_text_is_empty() -> None:
    assert forwarded_post(forwarded(caption=ARTICLE)).text == ARTICLE
    assert forwarded_post(forwarded()).empty


@pytest.mark.parametrize(
    "text",
    [
        ARTICLE,
        ARTICLE.replace("Teheran lehnen", "Teheran – warum auch? – lehnen"),  # a question inside
    ],
)
def test_a_pasted_article_is_added(text: str) -> None:
    assert reads_like_article(text)
    assert read_message(text).intent is Intent.ADD


@pytest.mark.parametrize(
    "text",
    [
        "Who is mediating with Iran?",
        ARTICLE + " Was sagte der Kreml dazu?",  # context, then the question
        "Russland vermittelt. Der Kreml schweigt. Trump wartet. Und Teheran?",  # few words
        " ".join(["Explain the talks between Russia and the United States"] * 8),  # one sentence
        ("Wer vermittelt zwischen den USA und dem Iran? " * 90)[:4000],  # questions, cut off
    ],
)
def test_long_questions_stay_questions(text: str) -> None:
    assert not reads_like_article(text)
    assert read_message(text).intent is Intent.ASK


@pytest.mark.parametrize(
    ("argument", "path"),
    [
        ("./article.txt", "article.txt"),
        ("'/tmp/news folder/b.md'", "/tmp/news folder/b.md"),
        ("notes.html", "notes.html"),
        ("~/c", str(Path.home() / "c")),
        ("https://example.com/a.txt", None),
        ("Russland bietet Trump Hilfe an.", None),
        ("./a.txt\nmore lines", None),
    ],
)
def test_the_terminal_reads_paths_as_files(argument: str, path: str | None) -> None:
    found = local_file(argument)
    assert (str(found) if found else None) == path


def test_the_terminal_adds_a_local_file_and_explains_a_missing_one(
    library: Library, tmp_path: Path
) -> None:
    article = tmp_path / "russland.txt"
    article.write_bytes(fixture_path("seed_russland_iran.txt").read_bytes())
    chat = TerminalChat(library, "terminal")
    assert chat.respond(f"/add {article}").startswith("Added #1: ")
    assert chat.respond(f"/add {tmp_path}/missing.txt") == (
        f"{tmp_path}/missing.txt is neither a link nor a readable file."
    )
    assert len(library.articles("terminal")) == 1
