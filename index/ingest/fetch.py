"""Fetch a web page for ingestion, safely: bounded in time and size, public hosts only.

Bot users are strangers, so by default a link may not make the server fetch anything on its
own network (loopback, private, link-local or reserved addresses), before or after redirects.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from contextlib import closing
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from index.config import Settings
from index.errors import ArticleRejected

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown"}
PAGE_TYPES = HTML_TYPES | TEXT_TYPES
# RSS and Atom as servers label them (many send plain XML, some HTML or text).
FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/xml",
    "text/xml",
    "application/rdf+xml",
}
_REDIRECTS = {301, 302, 303, 307, 308}
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: IPv4-compatible (::/96)
# and the well-known NAT64 prefix; a translator forwards them to that IPv4 address.
_LAST_32_BITS_IPV4 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
# The local-use NAT64 prefix (RFC 8215) leads only into the operator's own network.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
# Name lookups run here, so a hanging resolver costs a bounded number of threads; more than
# adds ever run at once, so slow names a stranger sends do not hold up everyone's links.
_LOOKUPS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dns")
_KINDS = {
    "application/pdf": "a PDF",
    "image/": "an image",
    "video/": "a video",
    "audio/": "an audio file",
    "application/zip": "a ZIP archive",
    "application/json": "JSON data",
}


@dataclass(frozen=True)
class FetchedPage:
    """The body of a page and where it really came from (after redirects), with the
    validators a later conditional request sends back; `not_modified` when the server said
    the page is unchanged since (HTTP 304: no body)."""

    url: str
    content_type: str
    body: bytes
    charset: str | None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


def _describe(content_type: str) -> str:
    for prefix, kind in _KINDS.items():
        if content_type.startswith(prefix):
            return kind
    return f"a {content_type} file" if content_type else "a file of unknown type"


class PageFetcher:
    """Downloads pages with a real HTTP client, following redirects one checked hop at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def fetch(
        self,
        url: str,
        types: set[str] = PAGE_TYPES,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchedPage:
        """The page at `url` if its content type is one of `types`; with `etag` or
        `last_modified` from an earlier fetch, a conditional request."""
        s = self.settings
        headers = {"User-Agent": s.user_agent, "Accept": ",".join(sorted(types))}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        # The timeout bounds the whole download, redirects included, not only each read: a
        # server sending a few bytes at a time must not hold the fetch for longer.
        deadline = time.monotonic() + s.fetch_timeout_seconds
        with httpx.Client(headers=headers, follow_redirects=False) as client:
            for _ in range(s.fetch_max_redirects + 1):
                address = self._check_target(url)
                result = self._get(client, url, deadline, address, types)
                if isinstance(result, FetchedPage):
                    return result
                url = result
        raise ArticleRejected("too_many_redirects", count=s.fetch_max_redirects)

    def _get(
        self,
        client: httpx.Client,
        url: str,
        deadline: float,
        address: str | None,
        types: set[str],
    ) -> FetchedPage | str:
        """The page, or the URL the server redirects to. With an `address`, the connection
        goes to that checked address, whatever the host name resolves to by then."""
        host = urlsplit(url).hostname or url
        too_slow = ArticleRejected(
            "too_slow", host=host, seconds=self.settings.fetch_timeout_seconds
        )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise too_slow
        try:
            request = client.build_request("GET", url, timeout=httpx.Timeout(remaining))
            if address is not None:
                request = _pinned(request, address)
            with closing(client.send(request, stream=True)) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    return _redirect_target(url, response.headers["location"], host)
                if response.status_code == 304:
                    return FetchedPage(url, "", b"", None, not_modified=True)
                if response.status_code >= 400:
                    raise ArticleRejected(
                        "http_status",
                        host=host,
                        status=response.status_code,
                        phrase=response.reason_phrase or "error",
                    )
                content_type, charset = _content_type(response)
                if content_type not in types:
                    raise ArticleRejected("not_a_page", kind=_describe(content_type))
                body = self._read_capped(response, deadline, too_slow)
                return FetchedPage(
                    url,
                    content_type,
                    body,
                    charset,
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except httpx.TimeoutException:
            raise too_slow from None
        except (httpx.ConnectError, UnicodeError):  # UnicodeError: a host name IDNA refuses
            raise ArticleRejected("cannot_connect", host=host) from None
        except httpx.InvalidURL:
            raise ArticleRejected("invalid_link") from None
        except httpx.HTTPError as error:
            raise ArticleRejected("fetch_failed", host=host, error=error) from None

    def _read_capped(
        self, response: httpx.Response, deadline: float, too_slow: ArticleRejected
    ) -> bytes:
        cap = self.settings.fetch_max_bytes
        too_large = ArticleRejected("page_too_large", megabytes=cap // 1_000_000 or 1)
        if int(response.headers.get("content-length") or 0) > cap:
            raise too_large
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > cap:
                raise too_large
            if time.monotonic() > deadline:
                raise too_slow
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_target(self, url: str) -> str | None:
        """Refuse links the bot must not fetch; returns the checked address to connect to
        (None when private addresses are allowed and any address will do)."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # e.g. "http://[::1" or a port out of range
            raise ArticleRejected("invalid_link") from None
        if parts.scheme not in {"http", "https"}:
            raise ArticleRejected("not_http")
        if not parts.hostname:
            raise ArticleRejected("invalid_link")
        if self.settings.allow_private_urls:
            return None
        infos = self._look_up(parts.hostname, port)
        for info in infos:
            if not is_public(ipaddress.ip_address(info[4][0].split("%")[0])):
                raise ArticleRejected("private_host", host=parts.hostname)
        return infos[0][4][0]

    def _look_up(self, host: str, port: int) -> list[tuple]:
        """The host's addresses, within the configured time (the system resolver has none)."""
        seconds = self.settings.dns_timeout_seconds
        lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            return lookup.result(timeout=seconds)
        except LookupTimeout:
            lookup.cancel()
            raise ArticleRejected("lookup_too_slow", host=host, seconds=seconds) from None
        except (OSError, ValueError):  # gaierror; UnicodeError from a name IDNA refuses
            raise ArticleRejected("unknown_host", host=host) from None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is on the public internet, and so is any IPv4 address it stands for
    (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo): "::7f00:1" is 127.0.0.1."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    if address in _LOCAL_NAT64:
        return False
    return all(embedded.is_global for embedded in _embedded_ipv4(address))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to, by the standard ways of carrying one."""
    embedded = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        embedded += address.teredo  # (server, client)
    if any(address in prefix for prefix in _LAST_32_BITS_IPV4):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def _pinned(request: httpx.Request, address: str) -> httpx.Request:
    """The same request sent to `address`: a second DNS lookup at connection time could
    otherwise answer with an internal address (DNS rebinding). The Host header and, for
    https, the name the certificate must carry stay those of the link."""
    host = f"[{address}]" if ":" in address else address
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = request.url.host
    return httpx.Request(
        request.method,
        request.url.copy_with(host=host, username=None, password=None),
        headers=request.headers,
        extensions=extensions,
    )


def _redirect_target(url: str, location: str, host: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError:
        raise ArticleRejected("bad_redirect", host=host) from None


def _content_type(response: httpx.Response) -> tuple[str, str | None]:
    header = response.headers.get("content-type", "")
    media_type, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
    return media_type.strip().lower(), charset
