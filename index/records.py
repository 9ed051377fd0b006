"""What the library stores: articles and their sentences."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArticleDraft:
    """An article ready to be stored: extracted text and metadata, not yet in any library."""

    title: str
    text: str
    language: str
    source: str  # "url", "text" or "file"
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date as the publisher gave it


@dataclass(frozen=True)
class Article:
    """An article in one chat's library. `number` is the short id users see (per chat)."""

    id: int
    chat_id: str
    number: int
    title: str
    text: str
    language: str
    source: str
    url: str | None
    canonical_url: str | None
    author: str | None
    published: str | None
    added_at: str
    added_by: str | None
    text_hash: str
    sentence_count: int


@dataclass(frozen=True)
class Sentence:
    """A sentence as a span of its article's stored text; `position` counts from 0 and
    `paragraph` numbers the article's paragraphs (its lines)."""

    id: int
    article_id: int
    position: int
    paragraph: int
    start: int
    end: int
