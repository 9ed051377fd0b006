"""Errors the library reports to its users, each with one clear sentence to show them, in
English or German.

`str(error)` is the English sentence (for logs and the command line); `error.message(language)`
is the sentence in the reader's language.
"""

from __future__ import annotations

from index.records import Article

_SENTENCES: dict[str, dict[str, str]] = {
    # The input
    "not_a_source": {
        "en": "{source} is neither a link nor a readable file.",
        "de": "{source} ist weder ein Link noch eine lesbare Datei.",
    },
    "not_a_text_file": {
        "en": "{name} is not a text, Markdown or HTML file (.txt, .md, .html).",
        "de": "{name} ist keine Text-, Markdown- oder HTML-Datei (.txt, .md, .html).",
    },
    "file_too_large": {
        "en": "The file is larger than {megabytes} MB.",
        "de": "Die Datei ist größer als {megabytes} MB.",
    },
    "binary": {
        "en": "This looks like a binary file, not text.",
        "de": "Das sieht nach einer Binärdatei aus, nicht nach Text.",
    },
    "not_utf8": {
        "en": "The text is not valid UTF-8; please send it as UTF-8.",
        "de": "Der Text ist kein gültiges UTF-8; bitte schick ihn als UTF-8.",
    },
    "too_short": {
        "en": "The text is too short to be an article ({words} words; at least {minimum} are "
        "needed).",
        "de": "Der Text ist zu kurz für einen Artikel ({words} Wörter; nötig sind mindestens "
        "{minimum}).",
    },
    "too_long": {
        "en": "The article is too long ({length:,} characters; the limit is {limit:,}).",
        "de": "Der Artikel ist zu lang ({length} Zeichen; die Grenze liegt bei {limit}).",
    },
    "no_sentences": {
        "en": "The text has no sentences to quote.",
        "de": "Der Text enthält keine Sätze, die sich zitieren lassen.",
    },
    "no_article_text": {
        "en": "No article text found: the page may need JavaScript, or show only a cookie "
        "banner, a login wall or a list of links.",
        "de": "Kein Artikeltext gefunden: Die Seite braucht vielleicht JavaScript oder zeigt "
        "nur einen Cookie-Hinweis, eine Anmeldung oder eine Liste von Links.",
    },
    "no_article_text_at": {
        "en": "No article text found at {url}: the page may need JavaScript, or show only a "
        "cookie banner, a login wall or a list of links.",
        "de": "Unter {url} wurde kein Artikeltext gefunden: Die Seite braucht vielleicht "
        "JavaScript oder zeigt nur einen Cookie-Hinweis, eine Anmeldung oder eine Liste von "
        "Links.",
    },
    # The link
    "invalid_link": {
        "en": "That is not a valid web address; please check the link.",
        "de": "Das ist keine gültige Webadresse; bitte prüf den Link.",
    },
    "not_http": {
        "en": "Only http:// and https:// links can be added.",
        "de": "Nur Links mit http:// oder https:// lassen sich hinzufügen.",
    },
    "unknown_host": {
        "en": "Could not find the host {host}.",
        "de": "Den Host {host} gibt es nicht.",
    },
    "private_host": {
        "en": "{host} is on a private or local network; the bot only fetches public web pages.",
        "de": "{host} liegt in einem privaten oder lokalen Netz; der Bot lädt nur öffentliche "
        "Webseiten.",
    },
    "lookup_too_slow": {
        "en": "Looking up the host {host} took longer than {seconds:g} seconds.",
        "de": "Die Suche nach dem Host {host} dauerte länger als {seconds:g} Sekunden.",
    },
    "cannot_connect": {
        "en": "Could not connect to {host}.",
        "de": "Keine Verbindung zu {host}.",
    },
    "too_slow": {
        "en": "{host} did not answer within {seconds:g} seconds.",
        "de": "{host} hat nicht innerhalb von {seconds:g} Sekunden geantwortet.",
    },
    "http_status": {
        "en": "{host} answered with HTTP {status} ({phrase}).",
        "de": "{host} hat mit HTTP {status} ({phrase}) geantwortet.",
    },
    "fetch_failed": {
        "en": "Could not fetch the page from {host} ({error}).",
        "de": "Die Seite von {host} ließ sich nicht laden ({error}).",
    },
    "too_many_redirects": {
        "en": "The link redirects more than {count} times.",
        "de": "Der Link leitet mehr als {count}-mal weiter.",
    },
    "bad_redirect": {
        "en": "{host} redirects to an invalid address.",
        "de": "{host} leitet auf eine ungültige Adresse weiter.",
    },
    "not_a_page": {
        "en": "The link points to {kind}, not a web page with an article.",
        "de": "Der Link führt nicht zu einer Webseite mit einem Artikel.",
    },
    "page_too_large": {
        "en": "The page is larger than {megabytes} MB.",
        "de": "Die Seite ist größer als {megabytes} MB.",
    },
    # The library
    "duplicate": {
        "en": "This article is already in the library as #{number} ({title}).",
        "de": "Dieser Artikel ist schon als #{number} ({title}) in der Bibliothek.",
    },
    # The quotas
    "quota_articles": {
        "en": "This chat's library is full: it holds {count:,} articles, the limit. /remove "
        "one first.",
        "de": "Die Bibliothek dieses Chats ist voll: Sie enthält {count} Artikel, die Grenze. "
        "Entferne zuerst einen mit /remove.",
    },
    "quota_chars": {
        "en": "This article ({length:,} characters) does not fit: the chat's library holds "
        "{used:,} of at most {limit:,} characters. /remove an article first.",
        "de": "Dieser Artikel ({length} Zeichen) passt nicht mehr hinein: Die Bibliothek dieses "
        "Chats enthält {used} von höchstens {limit} Zeichen. Entferne zuerst einen Artikel "
        "mit /remove.",
    },
    "quota_adds": {
        "en": "You have added {count} articles in the last hour, the limit; please wait a "
        "while before adding more.",
        "de": "Du hast in der letzten Stunde {count} Artikel hinzugefügt, die Grenze; bitte "
        "warte eine Weile, bevor du weitere hinzufügst.",
    },
    "unknown_article": {
        "en": "There is no article #{shown} in this library; /list shows them.",
        "de": "In dieser Bibliothek gibt es keinen Artikel #{shown}; /list zeigt alle.",
    },
    # Feeds
    "not_a_feed": {
        "en": "{url} is not an RSS or Atom feed, nor a page that names one.",
        "de": "{url} ist kein RSS- oder Atom-Feed und keine Seite, die einen nennt.",
    },
    "feed_too_large": {
        "en": "The feed lists {count:,} items; I follow feeds of up to {limit:,}.",
        "de": "Der Feed enthält {count} Einträge; ich folge Feeds mit höchstens {limit}.",
    },
    "feed_without_links": {
        "en": "None of the feed's items links to an article, so there is nothing to add.",
        "de": "Keiner der Einträge des Feeds verlinkt einen Artikel; es gibt nichts hinzuzufügen.",
    },
    "too_many_feeds": {
        "en": "This chat follows {limit} feeds already, the most it can; /unfollow one first.",
        "de": "Dieser Chat folgt schon {limit} Feeds, mehr geht nicht; beende erst einen mit "
        "/unfollow.",
    },
    "unknown_feed": {
        "en": "This chat follows no feed #{shown}; /feeds shows them.",
        "de": "Dieser Chat folgt keinem Feed #{shown}; /feeds zeigt alle.",
    },
}


class LibraryError(Exception):
    """An error whose sentence is meant for the person who caused it.

    `reason` names what went wrong; `details` fill in its sentence."""

    def __init__(self, reason: str, **details: object) -> None:
        self.reason = reason
        self.details = details
        super().__init__(self.message("en"))

    def message(self, language: str) -> str:
        """The sentence in `language` ("en" or "de"; English for any other)."""
        sentences = _SENTENCES[self.reason]
        return sentences.get(language, sentences["en"]).format(**self.details)


class ArticleRejected(LibraryError):
    """The input could not become an article; the library is unchanged."""


class DuplicateArticle(ArticleRejected):
    """The chat's library already holds this article."""

    def __init__(self, existing: Article) -> None:
        super().__init__("duplicate", number=existing.number, title=existing.title)
        self.existing = existing


class QuotaExceeded(ArticleRejected):
    """Adding would take a chat or a user past one of the quotas in `config/defaults.toml`."""


class UnknownArticle(LibraryError):
    """No article with this short id in the chat's library."""

    def __init__(self, number: str | int) -> None:
        super().__init__("unknown_article", shown=_shown(number))


class FeedRejected(LibraryError):
    """A feed could not be followed (or polled); nothing was changed."""


class UnknownFeed(LibraryError):
    """No feed with this id among the chat's subscriptions."""

    def __init__(self, number: str | int) -> None:
        super().__init__("unknown_feed", shown=_shown(number))


def _shown(number: str | int) -> str:
    """An id as the user wrote it, cut short if it is long (it is repeated back to them)."""
    shown = str(number).strip()
    return shown if len(shown) <= 12 else shown[:11] + "…"
