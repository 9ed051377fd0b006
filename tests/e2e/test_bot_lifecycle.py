"""The bot process from start to stop: its command menu, a group that does not use privacy
mode (the bot sees all messages there and must still keep out of the conversation), a
restart that keeps every library, and a clean exit on SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import BOT_USERNAME, IRAN_TITLE, TOKEN, BotProcess
from tests.e2e.people import Person, buttons, quotes
from tests.telegram_standin import BotApiStandin, Chat, User

ALICE = User(2001, "Alice", "alice", "en")
BOB = User(2002, "Bob", "bob", "de")


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandin]:
    with BotApiStandin(TOKEN, BOT_USERNAME, privacy_mode=False) as server:
        yield server


def test_commands_are_registered_in_english_and_german(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    english = {c["command"]: c["description"] for c in standin.commands}
    german = {c["command"]: c["description"] for c in standin.get_commands(language_code="de")}
    assert list(english) == [
        *("start", "help", "add", "ask", "list", "remove", "forget"),
        *("follow", "feeds", "unfollow", "collect"),
    ]
    assert german.keys() == english.keys() and german != english


def test_group_conversation_is_left_alone_and_mentions_are_answered(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    group = Chat(-100300, "group", "Stammtisch")
    alice, bob = Person(standin, group, ALICE), Person(standin, group, BOB)
    alice.says(f"/add {news_site}/russland-iran.html")

    bob.send("Wer vermittelt eigentlich mit dem Iran?")
    bob.send(f"Hier noch ein Link dazu: {news_site}/bahnstreik.html")
    mention = bob.send(f"@{BOT_USERNAME} Wer vermittelt mit dem Iran?")
    answer = bob.reply()
    assert answer["reply_to"] == mention["message_id"], "the bot answered ordinary chatter"
    assert any("Russland" in quote for quote in quotes(answer)), answer["text"]
    listing = alice.says("/list")["text"]
    assert "Lokführerstreik" not in listing, "a link in the conversation was added"


def test_restart_keeps_the_library_the_buttons_and_the_follow_ups(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    """After a restart, "More" on an answer given before still pages through it, and a reply
    to that answer is still read as a follow-up to it."""
    alice = Person(standin, Chat(ALICE.id), ALICE)
    alice.says(f"{news_site}/russland-iran.html")
    before = alice.says("Who is mediating with Iran?")
    assert buttons(before) == ["more:3", "context:0"]

    assert bot.stop(signal.SIGTERM) == 0
    assert "Traceback" not in bot.log
    bot.start()

    pressed = alice.presses(before, "more:3")
    more = alice.edit(before["message_id"])
    assert alice.callback_answer(pressed) is None
    assert buttons(more)[-1] == "context:3" and quotes(more)
    assert not set(quotes(more)) & set(quotes(before))
    assert alice.says("/list")["text"].startswith(f"#1 {IRAN_TITLE}")
    after = alice.says("And what did the Kremlin say?", reply_to=before)
    assert "Who is mediating with Iran?" in after["text"]  # read with the earlier question
