"""The real bot against a Telegram that fails now and then: 502s and a broken connection at
start-up, 429s with retry_after, 502s and unanswered calls while answering. Nothing is lost;
an answer Telegram keeps refusing is apologised for once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import BOT_USERNAME, TOKEN, BotProcess
from tests.e2e.people import Person
from tests.telegram_standin import BotApiStandin, Chat, User

APOLOGY = "Sorry, something went wrong"
HELP = "I answer questions"


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandin]:
    """A stand-in that fails the bot's first calls at start-up."""
    with BotApiStandin(TOKEN, BOT_USERNAME) as server:
        server.break_next("getMe")
        server.fail_next("setMyCommands", error_code=502)
        server.fail_next("setMyCommands", retry_after=1)
        yield server


def person(standin: BotApiStandin, user_id: int) -> Person:
    return Person(standin, Chat(user_id), User(user_id, f"User {user_id}"))


def test_start_up_outlasts_a_lost_call_a_502_and_a_429(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    codes = [e["error_code"] for e in standin.errors if e["method"] == "setMyCommands"]
    assert codes == [502, 429]
    assert [c["command"] for c in standin.commands][:2] == ["start", "help"]
    assert standin.get_commands(language_code="de")
    assert person(standin, 3001).says("/help")["text"].startswith(HELP)


def test_an_answer_outlasts_four_429s(standin: BotApiStandin, bot: BotProcess) -> None:
    standin.fail_next("sendMessage", retry_after=1, times=4)
    reply = person(standin, 3002).says("/help")
    assert reply["text"].startswith(HELP), reply["text"]


def test_an_answer_outlasts_a_502_and_a_call_left_unanswered(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    standin.fail_next("sendMessage", error_code=502)
    standin.break_next("sendMessage")
    reply = person(standin, 3003).says("/help")
    assert reply["text"].startswith(HELP), reply["text"]


def test_an_answer_telegram_keeps_refusing_is_apologised_for_once(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    """Six 502s in a row outlast every retry: the user is told once, and the bot goes on."""
    erin = person(standin, 3004)
    standin.fail_next("sendMessage", error_code=502, times=6)
    assert erin.says("/help")["text"].startswith(APOLOGY)
    assert erin.says("/help")["text"].startswith(HELP)
    texts = [m["text"] for m in standin.sent_messages(3004)]
    assert sum(text.startswith(APOLOGY) for text in texts) == 1
