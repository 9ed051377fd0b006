"""Errors the library reports to its users, each with one clear sentence to show them."""

from __future__ import annotations

from index.records import Article


class ArticleRejected(Exception):
    """The input could not become an article; the library is unchanged.

    `str(error)` is a complete sentence meant for the person who sent the input.
    """


class DuplicateArticle(ArticleRejected):
    """The chat's library already holds this article."""

    def __init__(self, existing: Article) -> None:
        super().__init__(
            f"This article is already in the library as #{existing.number} ({existing.title})."
        )
        self.existing = existing


class UnknownArticle(Exception):
    """No article with this short id in the chat's library."""

    def __init__(self, number: str | int) -> None:
        shown = str(number).strip()
        shown = shown if len(shown) <= 12 else shown[:11] + "…"
        super().__init__(f"There is no article #{shown} in this library; /list shows them.")
