"""Pasted and scraped text: the debris lines left out, the author and date kept as metadata.

Text copied from a news page brings the page's furniture with it: photo captions with their
credits ("… Foto: keystone-sda.ch"), image counters ("1/6"), labels ("Auf einen Blick",
"Teilen", "Print"), the byline ("Marian Nadler Redaktor News", "By Jane Smith") and the date.
None of it is something the bot should quote, and the byline and date belong in the article's
metadata. The rules are line by line and deliberately narrow: a line is debris only when it
is short and matches one of the patterns below, so the article's prose is never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lines longer than this are prose, whatever they start or end with.
_MAX_DEBRIS_WORDS = 30
# Bylines and dates are looked for among the first lines only, where pages put them.
_HEAD_LINES = 8

_LABELS = (
    "auf einen blick|teilen|artikel teilen|drucken|merken|vorlesen|kommentare|anzeige|werbung"
    "|mehr zum thema|link kopieren|e-mail|facebook|twitter|whatsapp|linkedin|x|share"
    "|share this article|print|save|listen|listen to this article|comments|advertisement"
    "|read more|copy link|email"
)
# A line made only of labels (separated by spaces, bars or dots).
_LABELS_ONLY = re.compile(rf"^(?:(?:{_LABELS})\s*[|·•/]?\s*)+$", re.I)
# A label glued to the front of the headline, as copying a teaser box does.
_LABEL_PREFIX = re.compile(r"^(?:auf einen blick|in short|at a glance)\s*[:\-–]?\s+", re.I)
# A caption's credit at the end of the line: "Foto: keystone-sda.ch", "(Photo: AP/Jane Doe)".
# The credit is a few words at most, so prose that happens to say "Bild:" stays.
_CREDIT = re.compile(
    r"(?:^|\s)\(?(?:foto|fotos|bild|bilder|photo|photos|image|picture|credit|quelle)\s*:\s*"
    r"[^\s:]+(?:\s+[^\s:]+){0,5}$",
    re.I,
)
# A gallery counter ("1/6", "Bild 3 von 12") opening a line, before a capital or nothing
# (so "3/4 der Befragten" stays).
_COUNTER = re.compile(
    r"^(?:\d{1,2}\s*/\s*\d{1,2}|[Bb]ild \d+ von \d+|[Ii]mage \d+ of \d+)(?=\s+[A-ZÄÖÜ\d]|\s*$)"
)
# The field names some scrapers write in front of values: "date 2025-03".
_FIELD = re.compile(
    r"^(?:date|datum|published|updated|veröffentlicht|aktualisiert)\b\s*:?\s*", re.I
)

_ROLES = (
    "redaktor|redaktorin|redakteur|redakteurin|korrespondent|korrespondentin|reporter|reporterin"
    "|autor|autorin|journalist|journalistin|chefredaktor|chefredaktorin|editor|correspondent"
    "|staff writer|writer|senior reporter|contributor"
)
# Two to four capitalised words (case matters here, unlike in the keywords around it).
_NAME = r"[A-ZÄÖÜ][\w'’.-]+(?:\s+(?:(?:von|van|de|der|di|da|le|la)\s+)?[A-ZÄÖÜ][\w'’.-]+){1,3}"
_BYLINE = (
    # "Von Jane Smith", "By Jane Smith, Politics Editor", "Text: Jane Smith"
    re.compile(rf"^(?i:von|by|text|autor|autorin|author)\s*:?\s+(?P<name>{_NAME})\s*(?:[,|].*)?$"),
    # "Marian Nadler Redaktor News", "Jane Smith, Staff Writer"
    re.compile(rf"^(?P<name>{_NAME})\s*,?\s+(?i:{_ROLES})\b.*$"),
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "januar jan january",
            "februar feb february",
            "märz mär mrz march mar",
            "april apr",
            "mai may",
            "juni jun june",
            "juli jul july",
            "august aug",
            "september sep sept",
            "oktober okt october oct",
            "november nov",
            "dezember dez december dec",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATES = (
    re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>[01]\d)(?:-(?P<d>[0-3]\d))?\b"),
    re.compile(r"\b(?P<d>[0-3]?\d)\.(?P<m>[01]?\d)\.(?P<y>(?:19|20)\d\d)\b"),
    re.compile(rf"\b(?P<d>[0-3]?\d)\.?\s+(?P<mn>{_MONTH})\.?\s+(?P<y>(?:19|20)\d\d)\b", re.I),
    re.compile(
        rf"\b(?P<mn>{_MONTH})\.?\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d\d)\b", re.I
    ),
)
# What may stand around a date on a line that is only a date: "Published 3 March 2025, 14:30".
_DATE_FILLER = re.compile(
    r"\b(?:date|datum|published|updated|veröffentlicht|aktualisiert|am|on|um|at|uhr|cet|cest|utc"
    r"|mez|mesz|gmt|bst|est|edt)\b|\d{1,2}[:.]\d\d|[,|·:–-]",
    re.I,
)


@dataclass(frozen=True)
class ScrapedText:
    """Pasted text with its debris lines taken out (so its first line is the headline, when
    there is one), and the author and date found among them."""

    text: str
    author: str | None
    published: str | None

    @classmethod
    def read(cls, text: str) -> ScrapedText:
        """Read cleaned text (one paragraph or page element per line)."""
        lines = text.split("\n")
        kept: list[str] = []
        author = published = None
        seen = 0  # non-empty lines looked at
        for line in lines:
            if not line:
                kept.append(line)
                continue
            seen += 1
            head = seen <= _HEAD_LINES
            words = len(line.split())
            if words > _MAX_DEBRIS_WORDS:
                kept.append(line)
                continue
            if head and (date := _date_line(line)):
                published = published or date
                continue
            rest, date = _take_field_date(line)
            published = published or date
            if not rest or _is_caption(rest) or _LABELS_ONLY.match(rest):
                continue
            if head and (name := _byline_name(rest)):
                author = author or name
                continue
            kept.append(_LABEL_PREFIX.sub("", rest) if head else rest)
        cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
        return cls(cleaned, author, published)


def _take_field_date(line: str) -> tuple[str, str | None]:
    """A scraper's "date 2025-03" in front of a line: the line without it, and the date."""
    field = _FIELD.match(line)
    if not field:
        return line, None
    rest = line[field.end() :]
    for pattern in _DATES:
        found = pattern.match(rest)
        if found:
            return rest[found.end() :].strip(), _iso(found)
    return line, None


def _is_caption(line: str) -> bool:
    """A photo caption: ends with a credit, or opens with a gallery counter."""
    return bool(_CREDIT.search(line) or _COUNTER.match(line))


def _byline_name(line: str) -> str | None:
    if line.endswith((".", "?", "!")) or len(line.split()) > 10:
        return None
    for pattern in _BYLINE:
        found = pattern.match(line)
        if found:
            return found.group("name")
    return None


def _date_line(line: str) -> str | None:
    """The date of a line that holds nothing but a date (and time, and words like "Published")."""
    for pattern in _DATES:
        found = pattern.search(line)
        if found:
            rest = _DATE_FILLER.sub(" ", line[: found.start()] + line[found.end() :])
            return _iso(found) if not rest.split() else None
    return None


def _iso(found: re.Match) -> str | None:
    parts = found.groupdict()
    month = int(parts["m"]) if parts.get("m") else _MONTHS[parts["mn"].lower()]
    if not 1 <= month <= 12:
        return None
    if not parts.get("d"):
        return f"{parts['y']}-{month:02d}"
    day = int(parts["d"])
    return f"{parts['y']}-{month:02d}-{day:02d}" if 1 <= day <= 31 else None
