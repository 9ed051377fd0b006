"""The real bot process, fed the way Telegram users share news: forwarded channel posts, pasted
articles, inline queries from any chat, and questions in the topics of a forum.

Each test talks in chats of its own, so they share one bot process.
"""

from __future__ import annotations

from tests.e2e.conftest import IRAN_TITLE, PAGES, RUSSIA_OFFERS_HELP, STRIKE_TITLE, BotProcess
from tests.e2e.people import Person, buttons, quoted, quotes
from tests.telegram_standin import (
    BotApiStandin,
    Chat,
    User,
    channel_origin,
    hidden_user_origin,
)

ARTICLE = (PAGES / "russland-iran.txt").read_text(encoding="utf-8")
# The post as a news channel would write it: the article without the page's picture caption.
POST = ARTICLE.split("\n\n", 1)[1]
KREMLIN_SAID = "sagte Kremlsprecher Dimitri Peskow"


def private(standin: BotApiStandin, user: User) -> Person:
    return Person(standin, Chat(user.id), user)


def links(message: dict) -> set[str]:
    return {e["url"] for e in message.get("entities", []) if e["type"] == "text_link"}


def test_a_forwarded_channel_post_is_added_and_quoted_with_its_link(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    alice = private(standin, User(2101, "Alice", "alice", "en"))
    origin = channel_origin("Blick News", 4711, username="blicknews")
    added = alice.says(POST, forward_origin=origin)
    assert added["text"].startswith("Added #1: "), added["text"]
    assert "It read like an article" not in added["text"]

    answer = alice.says("Who is mediating with Iran?")
    assert quoted(RUSSIA_OFFERS_HELP, answer), answer["text"]
    assert links(answer) == {"https://t.me/blicknews/4711"}
    assert "(Blick News · " in answer["text"]  # the source line names the channel

    again = alice.says(POST, forward_origin=origin)
    assert again["text"].startswith("This article is already in the library as #1")
    listing = alice.says("/list")
    assert listing["text"].count("#") == 1 and "Blick News" in listing["text"]


def test_forwarded_captions_links_polls_and_stickers(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    bob = private(standin, User(2102, "Bob", "bob", "de"))
    # A channel's teaser with a link adds the linked article.
    teaser = f"Lokführer streiken wieder: so geht es weiter.\n{news_site}/bahnstreik.html"
    reply = bob.says(teaser, forward_origin=channel_origin("Bahn-Ticker", 17))
    assert reply["text"].startswith(f"Hinzugefügt als #1: {STRIKE_TITLE} "), reply["text"]
    # A photo's caption is the post's text; a private channel has no link to show.
    caption = POST[:1000].rsplit(". ", 1)[0] + "."
    photo = bob.says(caption, photo=True, forward_origin=hidden_user_origin("Marian N."))
    assert photo["text"].startswith("Hinzugefügt als #2: "), photo["text"]
    answer = bob.says("Wer vermittelt mit dem Iran?")
    assert quoted(RUSSIA_OFFERS_HELP, answer) and "(Marian N. · " in answer["text"]

    standin.send_poll(bob.chat, bob.user, "Streik ok?", ["Ja", "Nein"], channel_origin("X", 1))
    poll = bob.reply()
    standin.send_sticker(bob.chat, bob.user, forward_origin=channel_origin("X", 2))
    sticker = bob.reply()
    for reply in (poll, sticker):
        assert reply["text"].startswith("Diese weitergeleitete Nachricht hat keinen Text")
    listing = bob.says("/list")
    assert "#3" not in listing["text"]


def test_add_as_a_reply_to_a_forwarded_post_in_a_group(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    group = Chat(-100700, "supergroup", "Presseschau")
    carol = Person(standin, group, User(2103, "Carol", "carol", "en"))
    forwarded = carol.send(POST, forward_origin=channel_origin("Blick News", 99, "blicknews"))
    assert standin.sent_messages(group.id) == []  # privacy mode: the bot doesn't see it
    added = carol.says("/add", reply_to=forwarded)
    assert added["text"].startswith("Added #1: "), added["text"]
    answer = carol.says("/ask What did the Kremlin say?")
    assert KREMLIN_SAID in quotes(answer)[0]
    assert links(answer) == {"https://t.me/blicknews/99"}


def test_a_pasted_article_is_added_and_a_long_question_answered(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    dora = private(standin, User(2104, "Dora", "dora", "en"))
    added = dora.says(ARTICLE)
    headline = "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"  # not the caption
    assert added["text"].startswith(f"Added #1: {headline} ("), added["text"]
    assert added["text"].endswith(
        "It read like an article, so I added it instead of answering it; /remove 1 takes it "
        "out again."
    )
    long_question = (
        "I read about the talks yesterday. Russia offered to help, it says. The US may "
        "accept. Iran is sceptical. My colleague thinks nothing will come of it, and the "
        "papers say the same about the earlier attempts. So what did the Kremlin say?"
    )
    answer = dora.says(long_question)
    assert KREMLIN_SAID in quotes(answer)[0], answer["text"]


def test_inline_answers_come_from_the_private_library_only(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    erin_user = User(2105, "Erin", "erin", "en")
    erin = private(standin, erin_user)
    group = Person(standin, Chat(-100701, "supergroup", "Bahnfans"), erin_user)
    assert group.says(f"/add {news_site}/bahnstreik.html")["text"].startswith("Added #1")

    empty = standin.wait_for_inline_answer(standin.inline_query(erin_user, "Streik?"))
    (note,) = empty["results"]
    assert note["title"] == "Your library is empty"
    assert "@article_test_bot" in note["input_message_content"]["message_text"]

    assert erin.says(f"{news_site}/russland-iran.html")["text"].startswith("Added #1")
    query = standin.inline_query(erin_user, "Who is mediating with Iran?")
    found = standin.wait_for_inline_answer(query)
    assert found["is_personal"] and 0 < found["cache_time"] <= 60
    assert 1 <= len(found["results"]) <= 5
    assert {r["title"] for r in found["results"]} == {IRAN_TITLE}
    first = found["results"][0]
    shown, source = first["description"].split("\n")
    assert source == "— 127.0.0.1 · 2025-03-05"

    posted = standin.choose_inline_result(group.chat, erin_user, query, first["id"])
    assert RUSSIA_OFFERS_HELP in quotes(posted)[0]
    assert quotes(posted)[0].startswith(shown.removesuffix("…"))
    assert links(posted) == {f"{news_site}/russland-iran.html"}
    assert f"— {IRAN_TITLE} (2025-03-05)" in posted["text"]  # no chat-local "#1"

    strike = standin.inline_query(erin_user, "Wie viele Fernzüge sind vom Streik betroffen?")
    for result in standin.wait_for_inline_answer(strike)["results"]:
        assert result["title"] != STRIKE_TITLE and "Fernzüge" not in result["description"]

    too_long = standin.wait_for_inline_answer(standin.inline_query(erin_user, "Warum? " * 72))
    (note,) = too_long["results"]
    assert note["title"] == "That question is too long"
    # The quote Erin posted in the group is not a question to the bot: its next message
    # answers the next command.
    listing = group.send("/list")
    assert group.reply()["reply_to"] == listing["message_id"]


def test_questions_in_a_forum_topic_are_answered_in_that_topic(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    forum = Chat(-100702, "supergroup", "Redaktion", is_forum=True)
    frank = Person(standin, forum, User(2106, "Frank", "frank", "en"))
    iran = standin.create_topic(forum, frank.user, "Iran")
    rail = standin.create_topic(forum, frank.user, "Bahn")

    added = frank.says(f"/add {news_site}/russland-iran.html", topic=iran)
    assert added["message_thread_id"] == iran, added
    answer = frank.says("/ask Who is mediating with Iran?", topic=iran)
    assert answer["message_thread_id"] == iran and answer["is_topic_message"]
    assert {"chat_id": forum.id, "action": "typing", "message_thread_id": iran} in (
        standin.chat_actions
    )
    follow_up = frank.says("What did the Kremlin say?", reply_to=answer, topic=iran)
    assert follow_up["message_thread_id"] == iran
    assert KREMLIN_SAID in quotes(follow_up)[0]

    frank.presses(answer, buttons(answer)[0])
    more = frank.edit(answer["message_id"])
    assert more["message_thread_id"] == iran
    frank.presses(more, buttons(more)[-1])
    assert frank.reply()["message_thread_id"] == iran  # the context

    other = frank.says("/ask Who is mediating with Iran?", topic=rail)
    assert other["message_thread_id"] == rail
    general = frank.says("/ask Who is mediating with Iran?")
    assert "message_thread_id" not in general
