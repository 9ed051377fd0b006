"""The real bot process, seen by Telegram users: private chats and a group in privacy mode.

Each test talks in chats of its own, so they share one bot process (and its start-up time)
without seeing each other's articles.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import (
    BOT_USERNAME,
    IRAN_TITLE,
    PAGES,
    RUSSIA_OFFERS_HELP,
    STRIKE_TITLE,
    BotProcess,
)
from tests.e2e.people import Person, buttons, quoted, quotes
from tests.telegram_standin import BotApiStandin, Chat, User

# The Russia/Iran article as scraped text (caption, teaser and byline included).
SCRAPED = PAGES / "russland-iran.txt"
APOLOGY = "Sorry, something went wrong"

ALICE = User(1001, "Alice", "alice", "en")
BOB = User(1002, "Bob", "bob", "de")
CAROL = User(1003, "Carol", "carol", "en")
ERIN = User(1005, "Erin", "erin", "en")


def private(standin: BotApiStandin, user: User) -> Person:
    return Person(standin, Chat(user.id), user)


@pytest.fixture
def alice(standin: BotApiStandin, bot: BotProcess) -> Person:
    return private(standin, ALICE)


def added(reply: dict, number: int, title: str) -> bool:
    """Whether the reply says the article was added (in English or German)."""
    return reply["text"].startswith(
        (f"Added #{number}: {title} (German, ", f"Hinzugefügt als #{number}: {title} (Deutsch, ")
    )


def test_private_chat_adds_a_link_and_answers_in_english_and_german(
    standin: BotApiStandin, alice: Person, news_site: str
) -> None:
    reply = alice.says(f"{news_site}/russland-iran.html")
    assert added(reply, 1, IRAN_TITLE), reply["text"]
    assert {"chat_id": ALICE.id, "action": "typing"} in standin.chat_actions

    answer = alice.says("Who is mediating with Iran?")
    assert quoted(RUSSIA_OFFERS_HELP, answer), answer["text"]
    links = [e["url"] for e in answer["entities"] if e["type"] == "text_link"]
    assert links and set(links) == {f"{news_site}/russland-iran.html"}
    assert f"— {IRAN_TITLE} (2025-03-05 · #1)" in answer["text"]
    assert buttons(answer) == ["more:3", "context:0"]

    german = alice.says("Was sagte Chamenei über Trump?")
    assert "Chamenei" in quotes(german)[0], german["text"]

    alice.presses(answer, "more:3")
    more = alice.edit(answer["message_id"])
    assert quotes(more) and not set(quotes(more)) & set(quotes(answer)), more["text"]
    assert buttons(more)[-1] == "context:3"

    alice.presses(german, "context:0")
    context = alice.reply()
    assert context["reply_to"] == german["message_id"]
    (around,) = quotes(context)
    assert quotes(german)[0] in around and len(around) > len(quotes(german)[0])


def test_follow_up_by_reply_finds_what_the_bare_question_misses(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    bob = private(standin, BOB)
    assert added(bob.says(f"/add {news_site}/russland-iran.html"), 1, IRAN_TITLE)
    assert added(bob.says(f"/add {news_site}/bahnstreik.html"), 2, STRIKE_TITLE)
    question = "What did the spokesperson say?"
    bare = quotes(bob.says(question))

    strike = bob.says("Wie viele Fernzüge sind vom Streik betroffen?")
    assert "80 Prozent der Fernzüge" in strike["text"], strike["text"]
    iran = bob.says("Who is mediating with Iran?")
    assert quoted(RUSSIA_OFFERS_HELP, iran), iran["text"]

    on_strike = quotes(bob.says(question, reply_to=strike))[0]
    on_iran = quotes(bob.says(question, reply_to=iran))[0]
    assert "sagte eine Bahnsprecherin" in on_strike
    assert "sagte Kremlsprecher Dimitri Peskow" in on_iran
    # Both articles quote a spokesperson: alone, the question finds one of them at most.
    assert bare[:1] in ([], [on_strike], [on_iran])


def test_group_of_two_adds_asks_follows_up_and_removes(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    group = Chat(-100200, "supergroup", "Nachrichten")
    alice, bob = Person(standin, group, ALICE), Person(standin, group, BOB)
    standin.set_admins(group.id, [CAROL])
    carol = Person(standin, group, CAROL)

    link = alice.send(f"/add@{BOT_USERNAME} {news_site}/russland-iran.html")
    reply = alice.reply()
    assert added(reply, 1, IRAN_TITLE) and reply["reply_to"] == link["message_id"]
    bob.send("Hat jemand den Artikel über den Iran gelesen? Wer vermittelt da eigentlich?")

    question = bob.send("/ask Who is mediating with Iran?")
    answer = bob.reply()
    assert answer["reply_to"] == question["message_id"], "the chatter before was answered"
    assert quoted(RUSSIA_OFFERS_HELP, answer), answer["text"]
    labels = [b["text"] for b in answer["reply_markup"]["inline_keyboard"][0]]
    assert labels == ["Mehr", "Kontext"]  # Bob's Telegram speaks German

    kremlin = alice.says("What did the Kremlin say?", reply_to=answer)
    assert "sagte Kremlsprecher Dimitri Peskow" in quotes(kremlin)[0], kremlin["text"]
    khamenei = bob.says("Was sagte Chamenei über Trump?", reply_to=kremlin)
    assert "Chamenei" in quotes(khamenei)[0], khamenei["text"]

    alice.presses(answer, "more:3")
    assert not set(quotes(alice.edit(answer["message_id"]))) & set(quotes(answer))

    assert "/ask" in bob.says("/help")["text"]

    strike_link = bob.send(f"Lest mal das hier: {news_site}/bahnstreik.html")
    assert added(alice.says("/add", reply_to=strike_link), 2, STRIKE_TITLE)
    note = (PAGES / "notiz.md").read_bytes()
    assert added(bob.says("/add", document=("notiz.md", "text/markdown", note)), 3, "Notiz")

    assert bob.says("/remove 1")["text"].startswith("Nur Admins und wer einen Artikel")
    assert alice.says("/remove 1")["text"] == f"Removed #1: {IRAN_TITLE}."
    listing = carol.says("/list")["text"]
    assert IRAN_TITLE not in listing and STRIKE_TITLE in listing and "#3" in listing

    assert bob.says("/forget")["text"].startswith("Nur Admins können")
    confirm = carol.says("/forget")
    assert buttons(confirm) == ["forget:yes", "forget:no"]
    bob.presses(confirm, "forget:yes")
    carol.presses(confirm, "forget:yes")
    assert carol.edit(confirm["message_id"])["text"].startswith("Done: the library is empty")
    refused = standin.answered_callbacks[-2]
    assert refused["show_alert"] and refused["text"].startswith("Nur Admins können")
    assert "empty" in carol.says("/ask Who is mediating with Iran?")["text"]


def test_another_chat_cannot_see_the_articles(
    standin: BotApiStandin, alice: Person, news_site: str
) -> None:
    alice.says(f"/add {news_site}/russland-iran.html")
    carol = private(standin, CAROL)
    assert carol.says("Who is mediating with Iran?")["text"].startswith(
        "This chat's library is empty"
    )
    assert carol.says("/list")["text"].startswith("This chat's library is empty")


def test_article_added_as_text_and_as_file_and_asked_in_german(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    dana = private(standin, User(1004, "Dana", "dana", "de"))
    reply = dana.says("/add " + SCRAPED.read_text(encoding="utf-8"))
    assert reply["text"].startswith("Hinzugefügt als #1: ") and "(Deutsch, " in reply["text"]
    answer = dana.says("Was sagte Chamenei über Trump?")
    assert "man könne Trump nicht trauen" in quotes(answer)[0], answer["text"]

    strike = (PAGES / "bahnstreik.html").read_bytes()
    reply = dana.says("", document=("bahnstreik.html", "text/html", strike))
    assert added(reply, 2, STRIKE_TITLE)
    again = dana.says("/add " + SCRAPED.read_text(encoding="utf-8"))
    assert again["text"].startswith("Dieser Artikel ist schon als #1")  # in Dana's language


def test_bad_input_gets_a_sensible_reply_or_none(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    erin = private(standin, ERIN)
    assert added(erin.says(f"{news_site}/russland-iran.html"), 1, IRAN_TITLE)

    standin.send_sticker(erin.chat, ERIN)
    assert erin.reply()["text"].startswith("I read questions, links")
    assert erin.says("   ")["text"].startswith("I read questions, links")
    assert erin.says("/frobnicate")["text"].startswith("I don't know that command")
    missing = erin.says(f"/add {news_site}/missing.html")["text"]
    assert missing.startswith("127.0.0.1 answered with HTTP 404")
    assert erin.says("/remove 7")["text"].startswith("There is no article #7")

    long_question = ("Wer vermittelt zwischen den USA und dem Iran? " * 90)[:4000]
    long_answer = erin.says(long_question)
    assert not long_answer["text"].startswith(APOLOGY) and len(long_answer["text"]) <= 4096

    asked = erin.send("Who is mediating with Iran?")
    standin.edit_message(erin.chat, ERIN, asked, "Edited: who is mediating with Iran?")
    erin.reply()  # the answer to the original message
    erin.send("/ask@someotherbot Who is mediating?")
    listing = erin.says("/list")  # nothing came between: the edit and the command were ignored
    assert listing["text"].startswith(f"#1 {IRAN_TITLE}") and "#2" not in listing["text"]

    everything = [m.get("text", "") for m in standin.sent_messages(ERIN.id)]
    assert not any(text.startswith(APOLOGY) for text in everything)


def test_slow_article_does_not_hold_up_other_chats(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    fast, slow = private(standin, User(1006, "Fay")), private(standin, User(1007, "Gus"))
    assert added(fast.says(f"{news_site}/russland-iran.html"), 1, IRAN_TITLE)
    slow.send(f"{news_site}/bahnstreik.html?delay=4")
    answer = fast.says("Who is mediating with Iran?")
    assert quotes(answer)
    assert added(slow.reply(), 1, STRIKE_TITLE)
    order = [m["chat"]["id"] for m in standin.sent_messages() if m["chat"]["id"] in (1006, 1007)]
    assert order[-2:] == [1006, 1007], "the answer waited for the other chat's article"


def test_rate_limited_messages_are_sent_again(standin: BotApiStandin, bot: BotProcess) -> None:
    hal = private(standin, User(1008, "Hal"))
    standin.fail_next("sendMessage", retry_after=1)
    assert hal.says("/help")["text"].startswith("I answer questions")
    assert any(e["error_code"] == 429 for e in standin.errors)


def long_article(chars: int = 300_000) -> bytes:
    """A text file of `chars` characters whose sentences all differ, so none of its model
    time is saved by the encoding cache."""
    lines, length, day = [], 0, 0
    while True:
        day += 1
        line = " ".join(
            f"Am Tag {day} meldete das Amt {day * 7 + n} neue Anträge aus dem Bezirk "
            f"{(day + n) % 97}, {n + 3} mehr als erwartet."
            for n in range(5)
        )
        if length + len(line) + 1 > chars:
            return "\n".join(lines).encode()
        lines.append(line)
        length += len(line) + 1


def test_questions_are_answered_while_long_articles_are_added(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    """Adds have threads of their own: while one chat adds a 300,000-character article and
    five more chats add links from a slow site (more adds than the bot has threads), a
    question in another chat is answered at once, before any of those adds is done."""
    asker = private(standin, User(1010, "Ida"))
    assert added(asker.says(f"{news_site}/russland-iran.html"), 1, IRAN_TITLE)
    started = time.monotonic()
    assert quotes(asker.says("Who is mediating with Iran?"))
    alone = time.monotonic() - started

    big = private(standin, User(1011, "Jan"))
    slow = [private(standin, User(1020 + n, f"Slow {n}")) for n in range(5)]
    sent_big = time.monotonic()
    big.send("", document=("bericht.txt", "text/plain", long_article()))
    standin.wait_for_chat_action(big.chat.id)  # the add has begun
    for person in slow:
        person.send(f"{news_site}/bahnstreik.html?delay=10")
    started = time.monotonic()
    answer = asker.says("Who is mediating with Iran?")
    during = time.monotonic() - started
    assert quotes(answer), answer["text"]
    assert big.reply(timeout=900)["text"].startswith("Added #1: ")
    adding = time.monotonic() - sent_big
    for person in slow:
        assert added(person.reply(timeout=900), 1, STRIKE_TITLE)
    waiting = {1010, 1011, *(1020 + n for n in range(5))}
    order = [m["chat"]["id"] for m in standin.sent_messages() if m["chat"]["id"] in waiting]
    assert order[2] == 1010, "the question waited for an add"
    print(f"question alone {alone:.1f} s, during the adds {during:.1f} s; add {adding:.0f} s")
    assert during < adding / 3
