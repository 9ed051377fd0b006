"""URL ingestion against a real HTTP server on 127.0.0.1: article pages with boilerplate, and
every kind of bad link the issue lists, each refused with a clear message."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from index.config import Settings
from index.embeddings import Embedder
from index.errors import ArticleRejected, DuplicateArticle
from index.ingest.fetch import PageFetcher, is_public
from index.library import Library
from tests.conftest import ArticleServer, library_state

CHAT = "readers"

# Text of the pages' surroundings that must never end up in the stored article.
GERMAN_BOILERPLATE = [
    "Cookies",
    "Alle akzeptieren",
    "143 Partner",
    "Startseite",
    "Abo abschliessen",
    "Mehr zum Thema",
    "Rheinschwimmen",
    "Hallenbad in Riehen",
    "Newsletter",
    "Impressum",
    "Datenschutz",
    "Rheinkurier AG",
]
ENGLISH_BOILERPLATE = [
    "cookies",
    "Accept all",
    "Manage preferences",
    "Subscribe",
    "Sign in",
    "Related stories",
    "Rail strike",
    "Parking charges",
    "All rights reserved",
    "Privacy policy",
]


def reopened(library: Library, embedder: Embedder, **overrides: object) -> Library:
    """Another Library on the same data folder, with some settings changed."""
    return Library(library.settings.with_overrides(**overrides), embedder=embedder)


def refused(library: Library, url: str) -> str:
    """Adds `url`, expects a refusal that leaves the chat's library as it was; returns the
    message."""
    before = library_state(library, CHAT)
    with pytest.raises(ArticleRejected) as refusal:
        library.add_url(CHAT, url)
    assert library_state(library, CHAT) == before
    message = str(refusal.value)
    assert message.endswith(".") and len(message) > 20, "a clear sentence for the user"
    return message


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackCountsAsPublicFetcher(PageFetcher):
    """The real fetcher, except that the test server's own address 127.0.0.1 counts as a public
    host. This stands in for an allowed public site that redirects to an internal address:
    every other host still goes through the real check."""

    def _check_target(self, url: str) -> None:
        if urlsplit(url).hostname != "127.0.0.1":
            super()._check_target(url)


class RebindingFetcher(PageFetcher):
    """The real fetcher for a host name that no DNS server knows, checked as if it resolved to
    the test server: only a connection pinned to the checked address can reach the page."""

    def _check_target(self, url: str) -> str | None:
        if urlsplit(url).hostname == "rebind.invalid":
            return "127.0.0.1"
        return super()._check_target(url)


def test_connection_goes_to_the_checked_address_not_a_second_lookup(
    settings: Settings, article_server: ArticleServer
) -> None:
    """DNS rebinding: the address that passed the check is the one connected to, with the
    link's host name kept in the Host header."""
    fetcher = RebindingFetcher(settings.with_overrides(allow_private_urls=False))
    url = article_server.url("de_article.html").replace("127.0.0.1", "rebind.invalid")
    page = fetcher.fetch(url)
    assert page.url == url and page.is_html
    assert b"Freib" in page.body


# ---- articles ---------------------------------------------------------------------------------


def test_german_article_page_becomes_a_clean_article(
    library: Library, article_server: ArticleServer
) -> None:
    """A German news page yields title, author, date and language, and only the article text:
    cookie banner, navigation, related box, newsletter box and footer are left out."""
    url = article_server.url("de_article.html")
    article = library.add_url(CHAT, url)

    assert article.title == "Hitze in Basel: Freibäder bleiben bis 22 Uhr offen"
    assert article.author == "Lena Brunner"
    assert (article.published or "").startswith("2024-07-16")
    assert article.language == "de"
    assert article.source == "url"
    assert article.url == url
    assert "Die Regelung gilt zunächst bis zum 31. August." in article.text
    assert "Am Sonntag kamen schon über 9000 Gäste" in article.text
    for boilerplate in GERMAN_BOILERPLATE:
        assert boilerplate not in article.text, boilerplate
    assert library.articles(CHAT) == [article]


def test_english_article_page_becomes_a_clean_article(
    library: Library, article_server: ArticleServer
) -> None:
    """The same for an English page: metadata extracted, boilerplate left out, language en."""
    article = library.add_url(CHAT, article_server.url("en_article.html"))

    assert article.title == "Leeds approves night bus trial for shift workers"
    assert article.author == "Tom Hargreaves"
    assert (article.published or "").startswith("2025-01-14")
    assert article.language == "en"
    assert "The pilot will cost £1.2 million" in article.text
    for boilerplate in ENGLISH_BOILERPLATE:
        assert boilerplate not in article.text, boilerplate


def test_question_about_a_fetched_article_quotes_it_verbatim(
    library: Library, article_server: ArticleServer
) -> None:
    """Asking about a fetched article quotes its sentence with the article's source."""
    article = library.add_url(CHAT, article_server.url("en_article.html"))
    answer = library.ask(CHAT, "How much will the night bus pilot cost?")

    assert answer.found
    best = answer.quotes[0]
    assert "£1.2 million" in best.text
    assert best.text == article.text[best.start : best.end]
    assert (best.article_number, best.title, best.url) == (1, article.title, article.url)
    assert (best.published or "").startswith("2025-01-14")


def test_redirects_are_followed(library: Library, article_server: ArticleServer) -> None:
    """A link that redirects stores the article under the address it finally came from."""
    article = library.add_url(CHAT, article_server.url("redirect/en_article.html"))
    assert article.url == article_server.url("en_article.html")
    assert article.title == "Leeds approves night bus trial for shift workers"


def test_plain_text_page_is_an_article(library: Library, article_server: ArticleServer) -> None:
    """A text/plain page is stored as pasted text is, titled by its headline."""
    article = library.add_url(CHAT, article_server.url("plain"))
    assert article.language == "de"
    assert article.title == "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"
    assert "Russland hat sich bereiterklärt" in article.text


def test_charset_from_the_http_header_is_respected(
    library: Library, article_server: ArticleServer
) -> None:
    """A page in ISO-8859-1, declared only in the Content-Type header, keeps its umlauts."""
    article = library.add_url(CHAT, article_server.url("latin1"))
    assert "Öffnungszeiten ihrer fünf Freibäder" in article.text
    assert "\ufffd" not in article.text


def test_unknown_charset_does_not_crash(library: Library, article_server: ArticleServer) -> None:
    """A text page naming a charset nobody knows is read as UTF-8 instead of crashing."""
    article = library.add_url(CHAT, article_server.url("odd-charset"))
    assert "Russland hat sich bereiterklärt" in article.text


# ---- duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "de_article.html?utm_source=newsletter&utm_medium=email",
        "de_article.html#kommentare",
        "redirect/de_article.html",
    ],
)
def test_same_article_by_another_link_is_a_duplicate(
    library: Library, article_server: ArticleServer, variant: str
) -> None:
    """The same page under a tracking, fragment or redirecting link is reported as the article
    already in the library, and nothing is added."""
    first = library.add_url(CHAT, article_server.url("de_article.html"))
    before = library_state(library, CHAT)
    with pytest.raises(DuplicateArticle) as duplicate:
        library.add_url(CHAT, article_server.url(variant))
    assert duplicate.value.existing.number == first.number
    assert f"#{first.number}" in str(duplicate.value)
    assert library_state(library, CHAT) == before


def test_duplicate_link_is_recognised_without_fetching_again(
    library: Library, article_server: ArticleServer
) -> None:
    """A page without its own canonical link, posted again with tracking parameters, is
    recognised by its canonical URL before anything is downloaded."""
    library.add_url(CHAT, article_server.url("plain"))
    mark = article_server.mark()
    with pytest.raises(DuplicateArticle):
        library.add_url(CHAT, article_server.url("plain?utm_source=telegram&utm_campaign=x"))
    assert article_server.requested_since(mark) == []


def test_text_pasted_after_its_url_is_a_duplicate(
    library: Library, article_server: ArticleServer
) -> None:
    """The fetched article's text pasted later (line breaks and spaces changed) is recognised."""
    article = library.add_url(CHAT, article_server.url("en_article.html"))
    before = library_state(library, CHAT)
    pasted = "  " + article.text.replace("\n", "\n\n").replace(". ", ".  ") + "\n"
    with pytest.raises(DuplicateArticle):
        library.add_text(CHAT, pasted)
    assert library_state(library, CHAT) == before


def test_url_after_its_text_was_pasted_is_a_duplicate(
    library: Library, article_server: ArticleServer
) -> None:
    """The other way round: text pasted first, then the link to the same article."""
    fetched = library.add_url("elsewhere", article_server.url("en_article.html"))
    pasted = library.add_text(CHAT, fetched.text)
    before = library_state(library, CHAT)
    with pytest.raises(DuplicateArticle) as duplicate:
        library.add_url(CHAT, article_server.url("en_article.html"))
    assert duplicate.value.existing.number == pasted.number
    assert library_state(library, CHAT) == before


def test_an_uploaded_page_cannot_claim_a_link(
    library: Library, article_server: ArticleServer
) -> None:
    """A saved page whose HTML names a link as its own (<link rel=canonical>, og:url) is
    filed without any link: it neither shows that link nor blocks the real page."""
    real = article_server.url("en_article.html")
    forged = (
        f'<html><head><title>Night buses cancelled</title><link rel="canonical" href="{real}">'
        f'<meta property="og:url" content="{real}"></head><body><article><p>'
        + "The council has cancelled every night bus in Leeds for good, officials said. " * 3
        + "</p></article></body></html>"
    ).encode()
    uploaded = library.add_file(CHAT, "bus.html", forged)
    assert uploaded.url is None and uploaded.canonical_url is None
    assert library.add_url(CHAT, real).number == uploaded.number + 1


def test_a_fetched_page_cannot_claim_another_sites_link(
    library: Library, article_server: ArticleServer
) -> None:
    """A page speaks for its own site only: the test page served from 127.0.0.1 names a
    link on rheinkurier.example as its own, and is filed under where it came from."""
    article = library.add_url(CHAT, article_server.url("de_article.html"))
    assert article.canonical_url == article_server.url("de_article.html")


def test_same_article_in_two_chats_is_not_a_duplicate(
    library: Library, article_server: ArticleServer
) -> None:
    """Duplicates are per chat: another chat may add the same link."""
    url = article_server.url("de_article.html")
    library.add_url("chat-a", url)
    assert library.add_url("chat-b", url).number == 1


# ---- private addresses ------------------------------------------------------------------------


def test_private_address_is_refused_by_default(
    stocked_library: Library, embedder: Embedder, article_server: ArticleServer
) -> None:
    """With the default setting, a link to 127.0.0.1 is refused and never requested."""
    strict = reopened(stocked_library, embedder, allow_private_urls=False)
    mark = article_server.mark()
    message = refused(strict, article_server.url("de_article.html"))
    assert "private or local network" in message
    assert article_server.requested_since(mark) == []
    strict.close()


def test_redirect_to_a_private_address_is_refused(
    stocked_library: Library, article_server: ArticleServer
) -> None:
    """An allowed host that redirects to an internal one (here localhost) is refused before the
    internal address is requested."""
    strict_settings = stocked_library.settings.with_overrides(allow_private_urls=False)
    stocked_library.ingest.fetcher = LoopbackCountsAsPublicFetcher(strict_settings)
    mark = article_server.mark()
    message = refused(stocked_library, article_server.url("to-private/de_article.html"))
    assert "localhost is on a private or local network" in message
    assert article_server.requested_since(mark) == ["/to-private/de_article.html"]


def test_allowed_hosts_still_work_with_the_stand_in_fetcher(
    library: Library, settings: Settings, article_server: ArticleServer
) -> None:
    """Control for the test above: the same fetcher fetches from the "public" host, so the
    refusal there comes from the redirect target alone."""
    library.ingest.fetcher = LoopbackCountsAsPublicFetcher(
        settings.with_overrides(allow_private_urls=False)
    )
    assert library.add_url(CHAT, article_server.url("redirect/en_article.html")).number == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/news",
        "http://127.0.0.2/",
        "http://10.1.2.3/intranet",
        "http://192.168.178.1/",
        "http://172.16.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://2130706433/",
        # IPv6 forms of private IPv4 addresses
        "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
        "http://[::ffff:a00:1]/",  # IPv4-mapped 10.0.0.1
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the cloud metadata address
        "http://[64:ff9b:1::808:808]/",  # local-use NAT64
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "http://[2002:c0a8:101::1]/",  # 6to4 of 192.168.1.1
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    ],
)
def test_internal_hosts_are_refused(settings: Settings, url: str) -> None:
    """Loopback, private, link-local and other internal addresses, however written, are
    refused before any connection is made."""
    fetcher = PageFetcher(settings.with_overrides(allow_private_urls=False))
    with pytest.raises(ArticleRejected, match="private or local network"):
        fetcher.fetch(url)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("2002:808:808::1", True),  # 6to4 of a public address
        ("::7f00:1", False),
        ("::ffff:7f00:1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::1", False),
    ],
)
def test_ipv6_addresses_are_judged_by_the_ipv4_address_they_carry(
    address: str, public: bool
) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_name_lookup_that_hangs_is_given_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that never answers (here: a lookup that waits until the test ends) makes
    the link fail with a message, instead of holding the add for ever."""
    released = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: released.wait(60))
    fetcher = PageFetcher(
        settings.with_overrides(allow_private_urls=False, dns_timeout_seconds=0.2)
    )
    try:
        with pytest.raises(ArticleRejected, match=r"Looking up the host news\.example took"):
            fetcher.fetch("https://news.example/story")
    finally:
        released.set()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/article.txt", "gopher://x/"]
)
def test_only_web_links_are_fetched(settings: Settings, url: str) -> None:
    """Links that are not http(s) are refused with a message saying which are accepted."""
    with pytest.raises(ArticleRejected, match="Only http:// and https://"):
        PageFetcher(settings).fetch(url)


# ---- bad links --------------------------------------------------------------------------------


def test_unreachable_host(stocked_library: Library) -> None:
    """A host that refuses the connection gives a clear message."""
    message = refused(stocked_library, f"http://127.0.0.1:{closed_port()}/artikel")
    assert "Could not connect to 127.0.0.1" in message


def test_http_error(stocked_library: Library, article_server: ArticleServer) -> None:
    """An HTTP 404 is reported with its status."""
    message = refused(stocked_library, article_server.url("missing"))
    assert "HTTP 404" in message


@pytest.mark.parametrize(
    ("path", "said"), [("slow", "did not answer within 0.5 seconds"), ("drip", "0.5 seconds")]
)
def test_timeout(
    stocked_library: Library,
    embedder: Embedder,
    article_server: ArticleServer,
    path: str,
    said: str,
) -> None:
    """A server that does not answer in time is given up on after the configured timeout; one
    that keeps sending a few bytes at a time ("drip") cannot hold a fetch beyond it either:
    the whole download is bounded in time, not only each read."""
    impatient = reopened(stocked_library, embedder, fetch_timeout_seconds=0.5)
    started = time.monotonic()
    message = refused(impatient, article_server.url(path))
    assert time.monotonic() - started < 3.0
    assert said in message
    impatient.close()


@pytest.mark.parametrize(
    ("path", "kind"),
    [("report.pdf", "a PDF"), ("photo.jpg", "an image"), ("archive.zip", "a ZIP archive")],
)
def test_links_to_files_that_are_not_pages(
    stocked_library: Library, article_server: ArticleServer, path: str, kind: str
) -> None:
    """PDFs, images and archives are refused by their content type, saying what they are."""
    message = refused(stocked_library, article_server.url(path))
    assert f"points to {kind}" in message


@pytest.mark.parametrize("path", ["huge", "huge-stream"])
def test_page_over_the_size_cap(
    stocked_library: Library, embedder: Embedder, article_server: ArticleServer, path: str
) -> None:
    """A page larger than the cap is refused, whether or not it announces its length."""
    capped = reopened(stocked_library, embedder, fetch_max_bytes=100_000)
    message = refused(capped, article_server.url(path))
    assert "larger than" in message
    capped.close()


@pytest.mark.parametrize(
    "path", ["js_only.html", "cookie_wall.html", "cookie_wall_en.html", "empty", "junk"]
)
def test_pages_without_an_article(
    stocked_library: Library, article_server: ArticleServer, path: str
) -> None:
    """JavaScript-only pages, cookie walls (German and English), empty pages and binary junk
    served as HTML are refused, naming the likely reasons."""
    message = refused(stocked_library, article_server.url(path))
    assert "No article text found" in message
    assert "JavaScript" in message and "cookie" in message


def test_article_about_cookies_is_not_a_cookie_wall(
    library: Library, article_server: ArticleServer
) -> None:
    """Control for the wall detection: a news article that is about cookie banners is kept."""
    article = library.add_url(CHAT, article_server.url("de_article_cookies.html"))
    assert "Datenschutzbehörde" in article.text


def test_redirect_loop(stocked_library: Library, article_server: ArticleServer) -> None:
    """A link that keeps redirecting is given up on after the configured number of hops."""
    message = refused(stocked_library, article_server.url("loop/0"))
    assert "redirects more than 5 times" in message


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://a..b/artikel", "http://exa mple.com/", "https://"]
)
def test_malformed_links(stocked_library: Library, url: str) -> None:
    """Links that are not valid URLs are refused with a message instead of crashing."""
    refused(stocked_library, url)
