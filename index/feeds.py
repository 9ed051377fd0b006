"""Feeds: chats follow RSS or Atom feeds, and new items become articles of the chat.

    FeedReader          a feed or site URL ──PageFetcher──▶ FeedListing (feedparser)
    FeedSubscriptions   follow / unfollow / claim a due feed / poll it: new items' links go
                        through `Library.add_url` like any other link (same URL rules, same
                        limits, same duplicate check)

Polling is spread over processes through the storage engine: a process claims one due feed at
a time (`Storage.claim_due_feed`), so a feed is never polled twice at once, and records how
the poll went. Nothing here knows about Telegram.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

from index.config import Settings
from index.errors import ArticleRejected, DuplicateArticle, FeedRejected, LibraryError, UnknownFeed
from index.ingest.fetch import FEED_TYPES, HTML_TYPES, PAGE_TYPES, FetchedPage, PageFetcher
from index.records import Article, Feed, FeedPoll, short_id
from index.storage import Storage
from index.storage.codec import now as timestamp

logger = logging.getLogger(__name__)

# What a feed is fetched as: feed types, and pages that may name a feed or be one unlabelled.
_FETCHED_TYPES = FEED_TYPES | PAGE_TYPES
_ALTERNATE_TYPES = {"application/rss+xml", "application/atom+xml", "application/rdf+xml"}

AddUrl = Callable[[str, str, str | None], Article]  # (chat, link, added by) -> the article


@dataclass(frozen=True)
class FeedItem:
    key: str  # the item's id in the feed (its guid, else its link)
    link: str
    title: str


@dataclass(frozen=True)
class FeedListing:
    """A feed as fetched: its items that link somewhere, newest first."""

    url: str
    title: str
    items: list[FeedItem]
    etag: str | None
    last_modified: str | None


class FeedReader:
    """Fetches feeds under the URL rules of `PageFetcher` and reads them with feedparser."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fetcher = PageFetcher(settings)

    def discover(self, url: str) -> FeedListing:
        """The feed at `url`, or the one a web page at `url` names in a
        `<link rel="alternate">`."""
        page = self.fetcher.fetch(url.strip(), _FETCHED_TYPES)
        listing = self._listing(page)
        if listing is not None:
            return listing
        link = _alternate_link(page) if page.content_type in HTML_TYPES else None
        if link is not None:
            listing = self._listing(self.fetcher.fetch(link, _FETCHED_TYPES))
            if listing is not None:
                return listing
        raise FeedRejected("not_a_feed", url=page.url)

    def read(self, feed: Feed) -> FeedListing | None:
        """A followed feed now; None when the server says it has not changed."""
        page = self.fetcher.fetch(feed.url, _FETCHED_TYPES, feed.etag, feed.last_modified)
        if page.not_modified:
            return None
        listing = self._listing(page)
        if listing is None:
            raise FeedRejected("not_a_feed", url=page.url)
        return listing

    def _listing(self, page: FetchedPage) -> FeedListing | None:
        """The page read as a feed; None when it is not one. A stream, never bytes: feedparser
        takes bytes for a file name."""
        headers = {"content-location": page.url, "content-type": page.content_type}
        parsed = feedparser.parse(io.BytesIO(page.body), response_headers=headers)
        if not parsed.version:
            return None
        entries = parsed.entries
        if len(entries) > self.settings.feed_max_items:
            raise FeedRejected(
                "feed_too_large", count=len(entries), limit=self.settings.feed_max_items
            )
        items = [item for entry in _newest_first(entries) if (item := _item(entry, page.url))]
        if entries and not items:
            raise FeedRejected("feed_without_links")
        title = (parsed.feed.get("title") or "").strip() or urlsplit(page.url).hostname or page.url
        return FeedListing(page.url, title, items, page.etag, page.last_modified)


def _newest_first(entries: list) -> list:
    """Entries by date, newest first, where they have dates; else in the feed's order."""
    dated = [e for e in entries if e.get("published_parsed") or e.get("updated_parsed")]
    if len(dated) < len(entries):
        return list(entries)
    return sorted(dated, key=lambda e: e.get("published_parsed") or e.get("updated_parsed"))[::-1]


def _item(entry: dict, feed_url: str) -> FeedItem | None:
    link = (entry.get("link") or "").strip()
    if not link:
        return None
    link = urljoin(feed_url, link)
    key = (entry.get("id") or "").strip() or link
    return FeedItem(key, link, (entry.get("title") or "").strip())


def _alternate_link(page: FetchedPage) -> str | None:
    """The first feed a web page names in `<link rel="alternate" type="...rss+xml">`."""
    try:
        document = lxml.html.fromstring(page.body)
    except (ValueError, etree.ParserError):
        return None
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().strip()
        if "alternate" in rel and kind in _ALTERNATE_TYPES and link.get("href"):
            return urljoin(page.url, link.get("href").strip())
    return None


class FeedSubscriptions:
    """Chats' feeds: following, listing, unfollowing, and polling them for new items."""

    def __init__(self, settings: Settings, storage: Storage, add_url: AddUrl) -> None:
        self.settings = settings
        self.storage = storage
        self.reader = FeedReader(settings)
        self.add_url = add_url

    def follow(self, chat_id: str, url: str, added_by: str | None, language: str) -> FeedPoll:
        """Subscribe the chat to the feed at (or named by the page at) `url` and add its
        newest items at once; older items are not added later either."""
        listing = self.reader.discover(url)
        feed = self.storage.add_feed(
            chat_id,
            listing.url,
            listing.title,
            added_by,
            language,
            self._claim_end(),
            self.settings.feed_max_per_chat,
        )
        return self._take(feed, listing)

    def feeds(self, chat_id: str) -> list[Feed]:
        return self.storage.feeds(chat_id)

    def feed(self, chat_id: str, number: int | str) -> Feed:
        found = self.storage.feed(chat_id, _number(number))
        if found is None:
            raise UnknownFeed(number)
        return found

    def unfollow(self, chat_id: str, number: int | str) -> Feed:
        removed = self.storage.remove_feed(chat_id, _number(number))
        if removed is None:
            raise UnknownFeed(number)
        return removed

    def claim_due(self, due_by: float | None = None) -> Feed | None:
        """A feed due by `due_by` (default: now), now claimed by this process; None when there
        is none. A round of polls passes the time it started, so that a feed it polled is not
        due again within it, however short the interval."""
        return self.storage.claim_due_feed(due_by or time.time(), self._claim_end())

    def poll(self, feed: Feed) -> FeedPoll:
        """Fetch a claimed feed and add its new items (at most `feed_items_per_poll`)."""
        try:
            listing = self.reader.read(feed)
        except (ArticleRejected, FeedRejected) as error:
            return self._failed(feed, error)
        if listing is None:
            return self._succeeded(feed, [], feed.etag, feed.last_modified, [], 0)
        return self._take(feed, listing)

    def _take(self, feed: Feed, listing: FeedListing) -> FeedPoll:
        keys = [item.key for item in listing.items]
        unseen = set(self.storage.unseen_items(feed.id, keys))
        new = [item for item in listing.items if item.key in unseen]
        limit = self.settings.feed_items_per_poll
        added, skipped = [], max(0, len(new) - limit)
        for item in new[:limit]:
            try:
                added.append(self.add_url(feed.chat_id, item.link, feed.added_by))
            except DuplicateArticle:
                pass  # the chat has it already: nothing to tell
            except ArticleRejected as error:
                skipped += 1
                logger.info("Feed %d: item %s not added: %s", feed.id, item.link, error)
        return self._succeeded(feed, keys, listing.etag, listing.last_modified, added, skipped)

    def _succeeded(
        self,
        feed: Feed,
        seen: list[str],
        etag: str | None,
        last_modified: str | None,
        added: list[Article],
        skipped: int,
    ) -> FeedPoll:
        done = replace(
            feed,
            etag=etag,
            last_modified=last_modified,
            last_success=timestamp(),
            last_error=None,
            failures=0,
            reported=False,
            paused=False,
        )
        self.storage.record_feed_poll(done, seen, self._next_poll(), done.last_success)
        return FeedPoll(done, added, skipped)

    def _failed(self, feed: Feed, error: LibraryError) -> FeedPoll:
        """Count the failure; the chat hears of it once it keeps failing, and once more when
        the feed is paused."""
        s = self.settings
        failures = feed.failures + 1
        paused = failures >= s.feed_pause_after_failures
        report = paused or (failures >= s.feed_report_after_failures and not feed.reported)
        message = error.message(feed.language)
        failed = replace(
            feed,
            last_error=message,
            failures=failures,
            reported=feed.reported or report,
            paused=paused,
        )
        self.storage.record_feed_poll(failed, [], self._next_poll(), None)
        logger.info("Feed %d (%s) failed %d times: %s", feed.id, feed.url, failures, error)
        return FeedPoll(failed, [], error=message, report_failure=report, paused=paused)

    def _next_poll(self) -> float:
        return time.time() + self.settings.feed_interval_minutes * 60

    def _claim_end(self) -> float:
        """Until when a claim holds: long enough for the slowest poll (every item fetched up
        to the time limit, and read by the model)."""
        s = self.settings
        return time.time() + s.fetch_timeout_seconds * (s.feed_items_per_poll + 2) + 600


def _number(value: int | str) -> int:
    if (number := short_id(value)) is None:
        raise UnknownFeed(value)
    return number
