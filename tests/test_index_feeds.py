"""Feeds in the library: following a site or feed, polling it for new items, the limits, a
feed that keeps failing, and subscriptions that outlive the process, on both engines."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from index.config import Settings
from index.embeddings import Embedder
from index.errors import ArticleRejected, FeedRejected, UnknownFeed
from index.library import Library
from tests.feed_site import FeedSite

pytestmark = pytest.mark.both_engines

BASEL = "Hitze in Basel: Freibäder bleiben bis 22 Uhr offen"
LEEDS = "Leeds approves night bus trial for shift workers"


@pytest.fixture
def site() -> Iterator[FeedSite]:
    with FeedSite() as server:
        yield server


@pytest.fixture
def feed_settings(settings: Settings) -> Settings:
    """Feeds due again at once (no waiting between polls), reported after two failures in a
    row and paused after three."""
    return settings.with_overrides(
        feed_interval_minutes=0, feed_report_after_failures=2, feed_pause_after_failures=3
    )


@pytest.fixture
def library(feed_settings: Settings, embedder: Embedder) -> Iterator[Library]:
    lib = Library(feed_settings, embedder=embedder)
    yield lib
    lib.close()


def test_following_a_site_adds_its_newest_item_and_a_poll_the_next(
    library: Library, site: FeedSite
) -> None:
    site.publish("de_article.html")
    first = library.feeds.follow("chat", site.url(), "7", "de")
    assert first.feed.url == site.url("feed.xml") and first.feed.title == FeedSite.TITLE
    assert [a.title for a in first.added] == [BASEL]
    assert [a.added_by for a in first.added] == ["7"]

    unchanged = library.feeds.poll(library.feeds.claim_due())
    assert unchanged.added == [] and unchanged.error is None
    assert site.feed_requests()[-1] == '"1"'  # asked with the ETag, answered 304

    site.publish("en_article.html")
    second = library.feeds.poll(library.feeds.claim_due())
    assert [a.title for a in second.added] == [LEEDS]
    answer = library.ask("chat", "What will the night bus trial cost?")
    assert answer.quotes and answer.quotes[0].title == LEEDS
    (listed,) = library.feeds.feeds("chat")
    assert listed.last_success and listed.last_error is None


def test_a_poll_adds_at_most_the_limit_and_skips_what_is_not_an_article(
    feed_settings: Settings, embedder: Embedder, site: FeedSite
) -> None:
    library = Library(feed_settings.with_overrides(feed_items_per_poll=2), embedder=embedder)
    try:
        library.feeds.follow("chat", site.url("feed.xml"), None, "en")
        for page in ("en_article.html", "de_article.html", "missing.html"):
            site.publish(page)
        poll = library.feeds.poll(library.feeds.claim_due())
        # The newest two are tried: a page that is not there, and Basel. Leeds is over the
        # limit and skipped for good, not left for the next poll.
        assert [a.title for a in poll.added] == [BASEL] and poll.skipped == 2
        assert library.feeds.poll(library.feeds.claim_due()).added == []
        assert [a.title for a in library.articles("chat")] == [BASEL]
    finally:
        library.close()


def test_a_feed_remembers_only_the_items_it_still_lists(library: Library, site: FeedSite) -> None:
    """What a feed no longer lists is forgotten, so following a busy feed for years keeps a
    short memory; what it still lists is never added again, even once removed from the chat."""
    site.publish("de_article.html")
    followed = library.feeds.follow("chat", site.url("feed.xml"), None, "de")
    feed_id = followed.feed.id
    library.remove("chat", followed.added[0].number)
    site.publish("en_article.html")
    site.withdraw("de_article.html")
    assert [a.title for a in library.feeds.poll(library.feeds.claim_due()).added] == [LEEDS]
    de, en = site.url("de_article.html"), site.url("en_article.html")
    assert library.storage.unseen_items(feed_id, [de, en]) == [de]

    site.publish("missing.html")  # the feed changes; Leeds stays listed
    assert library.feeds.poll(library.feeds.claim_due()).added == []
    assert [a.title for a in library.articles("chat")] == [LEEDS]


def test_a_claimed_feed_is_not_claimed_again_until_its_poll_is_recorded(
    library: Library, site: FeedSite
) -> None:
    library.feeds.follow("chat", site.url("feed.xml"), None, "en")
    claimed = library.feeds.claim_due()
    assert claimed is not None
    assert library.feeds.claim_due() is None  # another process finds nothing to do
    library.feeds.poll(claimed)
    assert library.feeds.claim_due() is not None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("de_article.html", "not_a_feed"),
        ("huge.xml", "feed_too_large"),
        ("no-links.xml", "feed_without_links"),
    ],
)
def test_what_is_not_a_followable_feed_is_refused_and_nothing_changes(
    library: Library, site: FeedSite, path: str, reason: str
) -> None:
    with pytest.raises(FeedRejected) as refused:
        library.feeds.follow("chat", site.url(path), None, "en")
    assert refused.value.reason == reason
    assert library.feeds.feeds("chat") == [] and library.articles("chat") == []


def test_private_addresses_are_refused_for_feeds_too(
    feed_settings: Settings, embedder: Embedder, site: FeedSite
) -> None:
    library = Library(feed_settings.with_overrides(allow_private_urls=False), embedder=embedder)
    try:
        with pytest.raises(ArticleRejected) as refused:
            library.feeds.follow("chat", site.url("feed.xml"), None, "en")
        assert refused.value.reason == "private_host"
        assert library.feeds.feeds("chat") == []
    finally:
        library.close()


def test_a_chat_follows_a_limited_number_of_feeds(
    feed_settings: Settings, embedder: Embedder, site: FeedSite
) -> None:
    library = Library(feed_settings.with_overrides(feed_max_per_chat=1), embedder=embedder)
    try:
        library.feeds.follow("chat", site.url("feed.xml"), None, "en")
        library.feeds.follow("chat", site.url(), None, "en")  # the same feed again: fine
        with pytest.raises(FeedRejected) as refused:
            library.feeds.follow("chat", site.url("other.xml"), None, "en")
        assert refused.value.reason == "too_many_feeds"
        assert len(library.feeds.feeds("chat")) == 1
    finally:
        library.close()


def test_follows_at_the_same_moment_keep_to_the_limit(
    feed_settings: Settings, embedder: Embedder, site: FeedSite
) -> None:
    """Two processes each read a new feed for a chat that has room for one more; the one
    that subscribes second is refused, and the chat follows one feed."""
    limited = feed_settings.with_overrides(feed_max_per_chat=1)
    first, second = Library(limited, embedder=embedder), Library(limited, embedder=embedder)
    both_read = threading.Barrier(2, timeout=60)
    for library in (first, second):
        discover = library.feeds.reader.discover

        def discovered_once_both_read(url: str, discover=discover):
            listing = discover(url)
            both_read.wait()
            return listing

        library.feeds.reader.discover = discovered_once_both_read
    try:
        with ThreadPoolExecutor(2) as pool:
            follows = [
                pool.submit(first.feeds.follow, "chat", site.url("feed.xml"), None, "en"),
                pool.submit(second.feeds.follow, "chat", site.url("other.xml"), None, "en"),
            ]
            outcomes = [follow.exception() or follow.result() for follow in follows]
        refused = [o for o in outcomes if isinstance(o, FeedRejected)]
        assert [r.reason for r in refused] == ["too_many_feeds"], outcomes
        assert len(first.feeds.feeds("chat")) == 1
    finally:
        first.close()
        second.close()


def test_a_failing_feed_is_reported_once_then_paused_and_resumed_by_following_again(
    library: Library, site: FeedSite
) -> None:
    followed = library.feeds.follow("chat", site.url("feed.xml"), None, "de").feed
    site.broken = True
    polls = [library.feeds.poll(library.feeds.claim_due()) for _ in range(3)]
    assert [p.report_failure for p in polls] == [False, True, True]
    assert [p.paused for p in polls] == [False, False, True]
    assert polls[0].error == "127.0.0.1 hat mit HTTP 500 (Internal Server Error) geantwortet."
    assert library.feeds.claim_due() is None  # paused: not polled any more
    (listed,) = library.feeds.feeds("chat")
    assert listed.paused and listed.failures == 3 and listed.last_error == polls[0].error

    site.broken = False
    resumed = library.feeds.follow("chat", site.url("feed.xml"), None, "de").feed
    assert resumed.id == followed.id and not resumed.paused and resumed.failures == 0


def test_subscriptions_and_the_collect_setting_survive_a_restart(
    feed_settings: Settings, embedder: Embedder, site: FeedSite
) -> None:
    first = Library(feed_settings, embedder=embedder)
    feed = first.feeds.follow("chat", site.url("feed.xml"), "7", "en").feed
    first.set_collects_links("group", True)
    first.close()

    again = Library(feed_settings, embedder=embedder)
    try:
        assert [f.url for f in again.feeds.feeds("chat")] == [feed.url]
        assert again.collects_links("group") and not again.collects_links("chat")
        assert again.feeds.claim_due().id == feed.id
        assert again.feeds.unfollow("chat", f"#{feed.id}").id == feed.id
        assert again.feeds.feeds("chat") == []
        with pytest.raises(UnknownFeed):
            again.feeds.unfollow("chat", feed.id)
        with pytest.raises(UnknownFeed):
            again.feeds.unfollow("other chat", "x1")
    finally:
        again.close()
