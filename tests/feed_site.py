"""A news site with an RSS feed on 127.0.0.1, for the feed tests.

`/feed.xml` lists the items the test has published so far (newest first) and answers
conditional requests (ETag, If-None-Match) with 304 while nothing changed; `/` is the home page
that names the feed in `<link rel="alternate">`; articles are the pages of tests/data and
tests/e2e/pages. Some routes are broken on purpose: `/huge.xml` (10,000 items),
`/no-links.xml` (items without links), `/broken.xml` (HTTP 500); `/other.xml` is a second
feed, empty so far.
"""

from __future__ import annotations

import threading
from email.utils import formatdate
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

TESTS = Path(__file__).resolve().parent
PAGE_FOLDERS = (TESTS / "data", TESTS / "e2e" / "pages")


def rss(title: str, items: list[tuple[str, str | None]]) -> bytes:
    """An RSS 2.0 document with items `(title, link or None)`, in the order given."""
    entries = "".join(
        f"<item><title>{escape(name)}</title>"
        + (f"<link>{escape(link)}</link><guid>{escape(link)}</guid>" if link else "")
        + f"<pubDate>{formatdate(1_700_000_000 + 3600 * (len(items) - i))}</pubDate></item>"
        for i, (name, link) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://example.org/</link>"
        f"<description>News</description>{entries}</channel></rss>"
    ).encode()


class FeedSite:
    """The site; `publish(page)` puts an article at the top of its feed, `withdraw(page)`
    takes it off."""

    TITLE = "Testwoche Nachrichten"

    def __init__(self) -> None:
        self.published: list[str] = []  # page names, newest first
        self.requests: list[tuple[str, str | None]] = []  # (path, If-None-Match)
        self.broken = False  # /feed.xml answers 500 while set
        self._revision = 0  # the feed's ETag
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site._route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path}"

    def publish(self, page: str) -> None:
        with self._lock:
            self.published.insert(0, page)
            self._revision += 1

    def withdraw(self, page: str) -> None:
        with self._lock:
            self.published.remove(page)
            self._revision += 1

    def feed_requests(self) -> list[str | None]:
        """The If-None-Match header of each request for /feed.xml so far."""
        return [etag for path, etag in self.requests if path == "/feed.xml"]

    def _feed(self) -> bytes:
        with self._lock:
            pages = list(self.published)
        return rss(self.TITLE, [(page, self.url(page)) for page in pages])

    def _route(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        self.requests.append((path, handler.headers.get("If-None-Match")))
        if path == "/feed.xml":
            if self.broken:
                return _send(handler, 500, "text/plain", b"down for maintenance")
            body = self._feed()
            etag = f'"{self._revision}"'
            if handler.headers.get("If-None-Match") == etag:
                return _send(handler, 304, None, b"", etag)
            return _send(handler, 200, "application/rss+xml; charset=utf-8", body, etag)
        if path == "/":
            home = (
                '<html><head><title>Testwoche</title><link rel="alternate" '
                'type="application/rss+xml" title="RSS" href="/feed.xml"></head>'
                "<body><p>Willkommen bei der Testwoche.</p></body></html>"
            )
            return _send(handler, 200, "text/html; charset=utf-8", home.encode())
        if path == "/huge.xml":
            items = [(f"Meldung {n}", self.url(f"meldung-{n}.html")) for n in range(10_000)]
            return _send(handler, 200, "application/rss+xml", rss("Alles", items))
        if path == "/no-links.xml":
            items = [("Nur ein Titel", None), ("Noch ein Titel", None)]
            return _send(handler, 200, "application/rss+xml", rss("Ohne Links", items))
        if path == "/other.xml":
            return _send(handler, 200, "application/atom+xml", rss("Noch nichts", []))
        if path == "/broken.xml":
            return _send(handler, 500, "text/plain", b"oops")
        for folder in PAGE_FOLDERS:
            page = folder / path.lstrip("/")
            if path.endswith(".html") and page.is_file():
                return _send(handler, 200, "text/html; charset=utf-8", page.read_bytes())
        return _send(handler, 404, "text/plain", b"not found")


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str | None,
    body: bytes,
    etag: str | None = None,
) -> None:
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    if etag:
        handler.send_header("ETag", etag)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if body:
        handler.wfile.write(body)
