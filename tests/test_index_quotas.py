"""Quotas, on both engines: a chat's library has a size, a user an hourly number of adds, and
every refusal names the limit and leaves the library as it was."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from index.config import Settings
from index.embeddings import Embedder
from index.errors import ArticleRejected, DuplicateArticle, QuotaExceeded
from index.library import Library
from index.records import ArticleDraft

pytestmark = pytest.mark.both_engines

CHAT = "-100300"
VELO = (
    "Neue Veloroute zwischen Basel und Liestal\n"
    "Der Kanton Basel-Landschaft baut bis 2027 eine durchgehende Veloroute von Basel nach "
    "Liestal. Die Strecke ist 14 Kilometer lang und kostet rund 38 Millionen Franken."
)
BATH = (
    "Neues Hallenbad in Riehen\n"
    "Das Hallenbad in Riehen öffnet nach zwei Jahren Bauzeit am Samstag. Es hat ein "
    "25-Meter-Becken und eine Sauna. Der Eintritt kostet neun Franken."
)
ZOO = (
    "Nachwuchs im Zoo Basel\n"
    "Im Zoo Basel ist ein junges Nashorn zur Welt gekommen. Es wiegt 60 Kilogramm und ist "
    "wohlauf, teilte der Zoo am Dienstag mit."
)


@pytest.fixture
def limited(settings: Settings, embedder: Embedder) -> Iterator[Callable[..., Library]]:
    opened: list[Library] = []

    def open_library(**limits: int) -> Library:
        opened.append(Library(settings.with_overrides(**limits), embedder=embedder))
        return opened[-1]

    yield open_library
    for library in opened:
        library.close()


def test_a_full_chat_refuses_more_articles_until_one_is_removed(limited) -> None:
    library = limited(max_articles_per_chat=2)
    library.add_text(CHAT, VELO)
    library.add_text(CHAT, BATH)
    with pytest.raises(QuotaExceeded) as refused:
        library.add_text(CHAT, ZOO)
    assert "holds 2 articles, the limit" in str(refused.value)
    assert "Sie enthält 2 Artikel" in refused.value.message("de")
    assert [a.title for a in library.articles(CHAT)] == [VELO.split("\n")[0], BATH.split("\n")[0]]
    library.add_text("another chat", ZOO)  # the limit is per chat
    library.remove(CHAT, 1)
    assert library.add_text(CHAT, ZOO).number == 3


def test_a_chat_holds_a_bounded_number_of_characters(limited) -> None:
    library = limited(max_chars_per_chat=len(VELO) + len(BATH) - 1)
    library.add_text(CHAT, VELO)
    with pytest.raises(QuotaExceeded) as refused:
        library.add_text(CHAT, BATH)
    assert str(refused.value) == (
        f"This article ({len(BATH)} characters) does not fit: the chat's library holds "
        f"{len(VELO)} of at most {len(VELO) + len(BATH) - 1:,} characters. /remove an "
        "article first."
    )
    assert len(library.articles(CHAT)) == 1


@pytest.mark.parametrize(
    "limits",
    [{"max_articles_per_chat": 1}, {"max_chars_per_chat": len(VELO) + len(BATH) - 1}],
    ids=["articles", "characters"],
)
def test_adds_at_the_same_moment_do_not_overfill_a_chat(limited, limits: dict) -> None:
    """Two processes each let an add past the early checks while the chat still had room;
    the one that stores second is refused, and the chat holds exactly one of the two."""
    first, second = limited(**limits), limited(**limits)
    both_read = threading.Barrier(2, timeout=60)
    for library in (first, second):
        encode = library.ingest.encoder.run

        def encoded_once_both_read(*args, encode=encode):
            both_read.wait()  # either add is now past every check made before storing
            return encode(*args)

        library.ingest.encoder.run = encoded_once_both_read
    with ThreadPoolExecutor(2) as pool:
        adds = [pool.submit(first.add_text, CHAT, VELO), pool.submit(second.add_text, CHAT, BATH)]
        outcomes = [add.exception() or add.result() for add in adds]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert len(refused) == 1, outcomes
    stored = first.articles(CHAT)
    assert len(stored) == 1
    assert stored[0].title in {VELO.split("\n")[0], BATH.split("\n")[0]}
    assert "/remove" in str(refused[0])


def test_a_duplicate_in_a_full_chat_is_named_a_duplicate(limited) -> None:
    """Sending an article again to a chat with no room left says it is there already."""
    library = limited(max_chars_per_chat=len(VELO))
    library.add_text(CHAT, VELO)
    with pytest.raises(DuplicateArticle) as refused:
        library.add_text(CHAT, VELO)
    assert refused.value.existing.number == 1


def test_a_user_adds_a_bounded_number_of_articles_per_hour_in_all_chats(
    limited, settings: Settings, embedder: Embedder
) -> None:
    """Failed adds count too (each cost work), and so do bulk adds such as feed items; the
    count outlives a restart. Other users, and the command line (no user), are not held up."""
    library = limited(max_adds_per_user_per_hour=3)
    library.add_text(CHAT, VELO, added_by="7")
    with pytest.raises(ArticleRejected):
        library.add_text(CHAT, "Zu kurz.", added_by="7")
    feed_item = ArticleDraft("Nachwuchs im Zoo Basel", ZOO.split("\n")[1], "de", "url")
    library.add_draft("-100301", feed_item, added_by="7")
    restarted = limited(max_adds_per_user_per_hour=3)
    with pytest.raises(QuotaExceeded) as refused:
        restarted.add_text("-100302", BATH, added_by="7")
    assert str(refused.value).startswith("You have added 3 articles in the last hour, the limit")
    assert refused.value.message("de").startswith("Du hast in der letzten Stunde 3 Artikel")
    assert restarted.articles("-100302") == []
    assert restarted.add_text("-100302", BATH, added_by="8").number == 1
    assert restarted.add_text(CHAT, BATH).number == 2
