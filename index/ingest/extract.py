"""Turn a web page, pasted text or a file into an article draft: clean text plus metadata.

trafilatura does the hard part for web pages (main text, title, author, date; navigation,
cookie banners and "related articles" boxes left out). This module only decides what counts as
an article and refuses the rest with a sentence the user can act on.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from pathlib import PurePath
from urllib.parse import urlsplit

import trafilatura
from courlan import extract_domain, normalize_url

from index.config import Settings
from index.errors import ArticleRejected
from index.ingest.scraped import ScrapedText
from index.language import detect_language
from index.records import ArticleDraft, Origin

MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt", ".text", *MARKDOWN_SUFFIXES}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
FILE_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES
_MAX_TITLE = 200
_WORD = re.compile(r"\w+")
# Chinese characters and Japanese kana: these scripts put no spaces between words, so a word
# is counted per character (a Chinese word is one or two of them).
_UNSPACED_CHAR = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)
_NON_ARTICLE_HINTS = re.compile(
    r"javascript|cookie|captcha|browser|subscribe|abonn|anmelden|log ?in|sign ?in", re.I
)
# Below this many words, a page that talks about cookies or JavaScript is a wall, not an article.
_WALL_WORDS = 80
# Consent dialogs ("cookie walls") speak of themselves in the first person and use phrases
# that articles hardly ever do. A short page with that voice and several such phrases is a wall,
# however long its legal text is; an article *about* cookie banners is not.
_CONSENT_VOICE = re.compile(
    r"\b(?:wir|we) (?:und|and) (?:unsere|our) (?:\d+ )?partner"
    r"|\b(?:wir|we) (?:verwenden|nutzen|setzen|use) (?:\w+ )?cookies"
    r"|we value your privacy|ihre privatsphäre ist uns wichtig",
    re.I,
)
_CONSENT_PHRASES = tuple(
    re.compile(pattern, re.I)
    for pattern in (
        r"speichern und/oder|store and/or access",
        r"personalisierte (?:anzeigen|werbung)|personali[sz]ed (?:ads|advertising)",
        r"alle akzeptieren|alle ablehnen|zustimmen und weiter|accept all|reject all",
        r"jederzeit.{0,100}widerrufen|withdraw your consent",
        r"(?:datenschutz|privatsphäre|privacy|cookie)[- ]?(?:einstellungen|settings|preferences)"
        r"|manage preferences",
        r"\bpur-?abo|werbefrei lesen|ad-free",
        r"berechtigte[nms]? interesse|legitimate interest",
    )
)
_CONSENT_KINDS = 2
_CONSENT_WALL_WORDS = 400


# Soft hyphens split words invisibly; control characters (other than line breaks and tabs)
# are never text, and would make "sentences" that nothing but punctuation questions match.
_INVISIBLE = re.compile(r"[\u00ad\x00-\x08\x0b-\x1f\x7f-\x9f]")


def canonical_url(url: str) -> str:
    """The URL without tracking parameters or fragment, so reposted links are recognised."""
    try:
        return normalize_url(url, strict=True)
    except ValueError:
        return url


def count_words(text: str) -> int:
    """How many words `text` has, for the length rules: runs of letters and digits, and each
    character of a script written without spaces."""
    unspaced = len(_UNSPACED_CHAR.findall(text))
    return unspaced + len(_WORD.findall(_UNSPACED_CHAR.sub(" ", text) if unspaced else text))


def _trusted_canonical(fetched: str, claimed: str | None) -> str:
    """The canonical URL of a page fetched from `fetched` that names `claimed` as its own
    (<link rel=canonical>, og:url). A page speaks only for its own site: a claim on another
    site would file the page under that site's article, which is then refused as a duplicate.
    (A file has no address at all, whatever its HTML claims.)"""
    if claimed and _site(claimed) == _site(fetched):
        return canonical_url(claimed)
    return canonical_url(fetched)


def _site(url: str) -> str | None:
    """The registrable domain ("bbc.co.uk" for "www.bbc.co.uk"), or the host if it has none."""
    try:
        return extract_domain(url) or urlsplit(url).hostname
    except ValueError:
        return None


def text_fingerprint(text: str) -> str:
    """Hash of the text with case and white space normalised: the same article pasted twice,
    or fetched once and pasted once, has the same fingerprint."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def clean_text(text: str) -> str:
    """Unify line breaks, drop control characters and trim lines; the result is what is
    stored and quoted from."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _INVISIBLE.sub("", text)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# A line break inside a sentence: the line ends without closing punctuation and the next one
# goes on in lower case (hard-wrapped e-mails, text files, Markdown).
_SOFT_BREAK = re.compile(r"(?<=[^\s.!?:;«»“”\"')\]])\n(?=[a-zäöüß(])")
_MARKDOWN = (
    (re.compile(r"^#{1,6}\s+", re.M), ""),  # headings
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]+\)"), r"\1"),  # links: keep their text
    (re.compile(r"(\*\*|__)(\S(?:.*?\S)?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])"), r"\1"),  # italics
    (re.compile(r"`([^`]+)`"), r"\1"),  # code
)


def unwrap_lines(text: str) -> str:
    """Join lines that a hard wrap broke inside a sentence, so sentences stay whole."""
    return _SOFT_BREAK.sub(" ", text)


def strip_markdown(text: str) -> str:
    """Markdown as the reader sees it: no heading marks, emphasis stars or link targets."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text


class ArticleExtractor:
    """Builds `ArticleDraft`s from the forms articles arrive in, enforcing size limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def from_html(
        self, html: bytes | str, url: str | None = None, source: str = "url"
    ) -> ArticleDraft:
        document = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            favor_precision=True,
        )
        text = clean_text(document.text or "") if document else ""
        words = count_words(text)
        if words < self.settings.min_article_words or _looks_like_wall(text, words):
            if url:
                raise ArticleRejected("no_article_text_at", url=url)
            raise ArticleRejected("no_article_text")
        title = (document.title or "").strip() or _first_line_title(text)
        return self._draft(
            text,
            title=title,
            source=source,
            url=url,
            canonical_url=_trusted_canonical(url, document.url) if url else None,
            author=document.author,
            published=document.date,
        )

    def from_text(
        self, text: str, origin: Origin | None = None, source: str = "text"
    ) -> ArticleDraft:
        """Pasted text, a text file or a forwarded post. What was scraped along with it is
        left out (see `index.ingest.scraped`), so the headline is the first line; byline and
        date become metadata. A forwarded post keeps its `origin` as author, link (which also
        recognises the same post forwarded again) and date."""
        scraped = ScrapedText.read(clean_text(text))
        text = unwrap_lines(scraped.text)
        title = _first_line_title(text)
        if origin is None:
            return self._draft(
                text,
                title=title,
                source=source,
                author=scraped.author,
                published=scraped.published,
            )
        return self._draft(
            text,
            title=title,
            source="forward",
            url=origin.url,
            canonical_url=origin.url,
            author=origin.name,
            published=origin.published,
        )

    def check_file(self, name: str, size: int) -> None:
        """Refuse files by name and size alone (before anyone downloads them)."""
        if PurePath(name).suffix.lower() not in FILE_SUFFIXES:
            raise ArticleRejected("not_a_text_file", name=name)
        if size > self.settings.fetch_max_bytes:
            megabytes = self.settings.fetch_max_bytes // 1_000_000 or 1
            raise ArticleRejected("file_too_large", megabytes=megabytes)

    def from_file(self, name: str, data: bytes) -> ArticleDraft:
        """A `.txt`, `.md` or `.html` file; other kinds and binary junk are refused."""
        self.check_file(name, len(data))
        suffix = PurePath(name).suffix.lower()
        text = decode_text(data)
        if suffix in HTML_SUFFIXES:
            return self.from_html(text, source="file")
        if suffix in MARKDOWN_SUFFIXES:
            text = strip_markdown(text)
        return self.from_text(text, source="file")

    def _draft(
        self,
        text: str,
        *,
        title: str,
        source: str,
        url: str | None = None,
        canonical_url: str | None = None,
        author: str | None = None,
        published: str | None = None,
    ) -> ArticleDraft:
        words = count_words(text)
        if not text or words < self.settings.min_article_words:
            raise ArticleRejected("too_short", words=words, minimum=self.settings.min_article_words)
        if len(text) > self.settings.max_article_chars:
            raise ArticleRejected(
                "too_long", length=len(text), limit=self.settings.max_article_chars
            )
        return ArticleDraft(
            title=title[:_MAX_TITLE],
            text=text,
            language=detect_language(text),
            source=source,
            url=url,
            canonical_url=canonical_url,
            author=author,
            published=published,
        )


def _looks_like_wall(text: str, words: int) -> bool:
    """Whether extracted page text is a JavaScript, login or consent wall, not an article."""
    if words < _WALL_WORDS and _NON_ARTICLE_HINTS.search(text):
        return True
    if words >= _CONSENT_WALL_WORDS or not _CONSENT_VOICE.search(text):
        return False
    return sum(1 for phrase in _CONSENT_PHRASES if phrase.search(text)) >= _CONSENT_KINDS


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def decode_text(data: bytes) -> str:
    """UTF-8 text (or UTF-16 with its byte order mark, as Windows saves "Unicode" text), or a
    clear refusal for binary data and other encodings."""
    binary = ArticleRejected("binary")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise binary from None
    elif b"\x00" in data[:65536]:
        raise binary
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ArticleRejected("not_utf8") from None
    controls = len(_CONTROL.findall(text))
    if controls > max(8, len(text) // 100):
        raise binary
    return text


def _first_line_title(text: str) -> str:
    first = text.split("\n", 1)[0].strip().lstrip("#").strip()
    if len(first) > _MAX_TITLE:
        first = first[: _MAX_TITLE - 1].rsplit(" ", 1)[0] + "…"
    return first or "Untitled"
