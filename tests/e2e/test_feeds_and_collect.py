"""Articles that come in by themselves, seen by Telegram users: a followed feed whose next poll
brings a new article that is then quoted, and a group that collects the links posted in its
conversation (and is told what to change when the bot cannot see them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import IRAN_TITLE, RUSSIA_OFFERS_HELP, STRIKE_TITLE, BotProcess
from tests.e2e.people import Person, quoted, quotes
from tests.feed_site import FeedSite
from tests.telegram_standin import BotApiStandin, Chat, User

ALICE = User(2001, "Alice", "alice", "en")
BOB = User(2002, "Bob", "bob", "de")
CAROL = User(2003, "Carol", "carol", "en")


@pytest.fixture(scope="module")
def bot(standin: BotApiStandin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    """The bot looking for due feeds every second, each feed due again a second after its
    last poll."""
    settings = {"ARTICLEBOT_FEED_CHECK_SECONDS": "1", "ARTICLEBOT_FEED_INTERVAL_MINUTES": "0.02"}
    process = BotProcess(standin, tmp_path_factory.mktemp("feed-bot"), settings)
    process.start()
    yield process
    if process.process.poll() is None:
        assert process.stop() == 0, process.log


@pytest.fixture
def site() -> Iterator[FeedSite]:
    with FeedSite() as server:
        yield server


def test_a_followed_site_brings_its_next_article_which_is_then_quoted(
    standin: BotApiStandin, bot: BotProcess, site: FeedSite
) -> None:
    alice = Person(standin, Chat(ALICE.id), ALICE)
    site.publish("russland-iran.html")
    followed = alice.says(f"/follow {site.url()}")["text"]
    assert followed.startswith(f"Following {FeedSite.TITLE} (feed #1). I look for new"), followed
    assert f"1 new article from {FeedSite.TITLE}:\n#1 {IRAN_TITLE}" in followed

    site.publish("bahnstreik.html")  # the next poll finds it
    news = alice.reply()
    assert news["text"] == f"1 new article from {FeedSite.TITLE}:\n#2 {STRIKE_TITLE}"
    assert news["request"]["disable_notification"] in (True, "true")  # quiet
    strike = alice.says("Wie viele Fernzüge sind vom Streik betroffen?")
    assert any("80 Prozent der Fernzüge" in quote for quote in quotes(strike)), strike["text"]

    listed = alice.says("/feeds")["text"]
    assert f"#1 {FeedSite.TITLE}\n{site.url('feed.xml')}\nlast checked " in listed
    assert alice.says("/unfollow 1")["text"].startswith(f"Stopped following {FeedSite.TITLE}")
    assert alice.says("/feeds")["text"].startswith("This chat follows no feeds.")


def test_what_cannot_be_followed_gets_a_short_reply_and_changes_nothing(
    standin: BotApiStandin, bot: BotProcess, site: FeedSite
) -> None:
    bob = Person(standin, Chat(BOB.id), BOB)
    huge = bob.says(f"/follow {site.url('huge.xml')}")["text"]
    assert huge == "Der Feed enthält 10000 Einträge; ich folge Feeds mit höchstens 500."
    page = bob.says(f"/follow {site.url('bahnstreik.html')}")["text"]
    assert page.endswith("ist kein RSS- oder Atom-Feed und keine Seite, die einen nennt.")
    no_links = bob.says(f"/follow {site.url('no-links.xml')}")["text"]
    assert no_links.startswith("Keiner der Einträge des Feeds verlinkt einen Artikel")
    assert bob.says("/follow")["text"].startswith("Schick /follow mit dem Link")
    assert bob.says("/feeds")["text"].startswith("Dieser Chat folgt keinen Feeds.")
    assert bob.says("/list")["text"].startswith("Die Bibliothek dieses Chats ist leer.")

    group = Chat(-100301, "supergroup", "Redaktion")
    standin.set_admins(group.id, [CAROL])
    refused = Person(standin, group, BOB).says(f"/follow {site.url()}")["text"]
    assert refused == "In Gruppen können nur Admins Feeds folgen."


def test_collecting_links_in_a_group_reacts_instead_of_replying(
    standin: BotApiStandin, bot: BotProcess, news_site: str
) -> None:
    group = Chat(-100302, "supergroup", "Lesezirkel")
    standin.set_admins(group.id, [CAROL, standin.bot_user])  # an admin bot sees every message
    carol, bob = Person(standin, group, CAROL), Person(standin, group, BOB)
    assert bob.says("/collect on")["text"].startswith("Nur Admins der Gruppe")
    assert carol.says("/collect on")["text"].startswith("From now on I add the article of")

    link = bob.send(f"Habt ihr das gesehen? {news_site}/russland-iran.html")
    assert standin.wait_for_reaction(group.id, link["message_id"], timeout=60) == ["👍"]
    again = bob.send(f"Nochmal: {news_site}/russland-iran.html")
    missing = bob.send(f"Und das hier: {news_site}/gibt-es-nicht.html")
    assert standin.wait_for_reaction(group.id, missing["message_id"], timeout=60) == ["🤷"]
    assert again["message_id"] not in [r["message_id"] for r in standin.reactions]

    answer = carol.says("/ask Who is mediating with Iran?")
    assert quoted(RUSSIA_OFFERS_HELP, answer), answer["text"]
    said = [m["text"] for m in standin.sent_messages(group.id)]
    assert not [text for text in said if text.startswith(("Added", "Hinzugefügt"))], said

    assert carol.says("/collect off")["text"].startswith("I no longer add links")
    later = bob.send(f"{news_site}/bahnstreik.html")
    assert carol.says("/list")["text"].startswith(f"#1 {IRAN_TITLE}")
    assert later["message_id"] not in [r["message_id"] for r in standin.reactions]


def test_collect_explains_what_to_change_when_the_bot_cannot_read_the_group(
    standin: BotApiStandin, bot: BotProcess
) -> None:
    group = Chat(-100303, "supergroup", "Stammtisch")
    standin.set_admins(group.id, [ALICE])
    alice = Person(standin, group, ALICE)
    explained = alice.says("/collect on")["text"]
    assert "privacy mode" in explained and "/setprivacy" in explained
    assert "make me an admin of the group" in explained
    assert "Collecting links is off here." in alice.says("/collect")["text"]
