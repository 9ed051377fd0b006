"""The article library: add articles to a chat, ask questions, get verbatim quotes back.

This is the one entry point the bot and the command line use. It wires the pieces together:

    storage  = open_storage(settings)            SQLite + FAISS, or PostgreSQL + pgvector
    ingest   = IngestPipeline(...)               fetch → extract → split → encode → store
    answers  = AnswerPipeline(...)               query → retrieve → quote → decide
    memory   = AnswerMemory(storage)             which message shows which answer
    feeds    = FeedSubscriptions(...)            followed feeds, whose items come in by add_url
    quotas   = Quotas(settings, storage)         how much a chat holds, how often a user adds

Every method is synchronous and may be slow (fetching, model inference), so callers on an
event loop run it in a thread. Each chat has its own library; nothing is ever looked up across
chats.
"""

from __future__ import annotations

from collections.abc import Callable

from threadpoolctl import threadpool_limits

from index.answer.followup import AnswerMemory
from index.answer.pipeline import AnswerPipeline
from index.config import Settings
from index.embeddings import Embedder
from index.errors import UnknownArticle
from index.feeds import FeedSubscriptions
from index.ingest.pipeline import IngestPipeline
from index.quotas import Quotas
from index.records import Answer, Article, ArticleDraft, Origin, Quote, short_id
from index.storage import Storage, open_storage


class Library:
    """All chats' article libraries, in the engine the settings name."""

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, storage: Storage | None = None
    ) -> None:
        # Ranking multiplies small matrices; OpenBLAS threads would then spin idle between
        # them and take the cores from the model (measured: 97 ms per question instead of 35).
        threadpool_limits(1, user_api="blas")
        self.settings = settings
        self.storage = storage or open_storage(settings)
        self.embedder = embedder or Embedder(settings)
        self.ingest = IngestPipeline(settings, self.embedder, self.storage)
        self.answers = AnswerPipeline(settings, self.embedder, self.storage)
        self.memory = AnswerMemory(self.storage)
        self.feeds = FeedSubscriptions(settings, self.storage, self.add_url)
        self.quotas = Quotas(settings, self.storage)

    def warm_up(self) -> None:
        """Load the model and the sentence splitters now rather than on the first request."""
        self.embedder.warm_up()
        self.ingest.warm_up()

    def close(self) -> None:
        self.storage.close()

    # Adding. `request` identifies what asked for the article (a Telegram update): asked again
    # after a crash, it gets the article it stored the first time instead of "duplicate".

    def add_url(
        self, chat_id: str, url: str, added_by: str | None = None, request: str | None = None
    ) -> Article:
        return self._add(
            chat_id, lambda: self.ingest.draft_from_url(chat_id, url), added_by, request
        )

    def add_text(
        self,
        chat_id: str,
        text: str,
        added_by: str | None = None,
        request: str | None = None,
        origin: Origin | None = None,
    ) -> Article:
        """Add a text; with an `origin` (a forwarded post) that is its source, link and date."""
        return self._add(
            chat_id, lambda: self.ingest.extractor.from_text(text, origin), added_by, request
        )

    def add_file(
        self,
        chat_id: str,
        name: str,
        data: bytes,
        added_by: str | None = None,
        request: str | None = None,
    ) -> Article:
        return self._add(
            chat_id, lambda: self.ingest.extractor.from_file(name, data), added_by, request
        )

    def add_draft(
        self,
        chat_id: str,
        draft: ArticleDraft,
        added_by: str | None = None,
        cache_scope: str | None = None,
    ) -> Article:
        """Add an extracted article. Chats that trust each other (the evaluation's) may name
        one `cache_scope` to share encodings; by default each chat has its own."""
        return self._add(chat_id, lambda: draft, added_by, None, cache_scope)

    def _add(
        self,
        chat_id: str,
        draft: Callable[[], ArticleDraft],
        added_by: str | None,
        request: str | None,
        cache_scope: str | None = None,
    ) -> Article:
        """Add the article `draft` makes (fetching, reading), unless `request` stored one,
        within the quotas."""
        self.memory.interrupt(chat_id)
        if request is not None and (earlier := self.storage.stored_for(chat_id, request)):
            return earlier
        self.quotas.admit(chat_id, added_by)
        made = draft()
        self.ingest.refuse_duplicate(chat_id, made)  # "already there" beats "no room"
        self.quotas.fits(chat_id, len(made.text))
        limits = self.quotas.chat_limits
        return self.ingest.add(chat_id, made, added_by, request, cache_scope, limits)

    # Reading and removing

    def articles(self, chat_id: str) -> list[Article]:
        return self.storage.articles(chat_id)

    def article(self, chat_id: str, number: int | str) -> Article:
        found = self.storage.article(chat_id, _article_number(number))
        if found is None:
            raise UnknownArticle(number)
        return found

    def remove(self, chat_id: str, number: int | str) -> Article:
        removed = self.storage.remove_article(chat_id, _article_number(number))
        if removed is None:
            raise UnknownArticle(number)
        self.memory.interrupt(chat_id)
        return removed

    def forget(self, chat_id: str) -> int:
        """Empty a chat's library; returns how many articles it held."""
        self.memory.interrupt(chat_id)
        return self.storage.forget_chat(chat_id)

    # Chat settings

    def collects_links(self, chat_id: str) -> bool:
        """Whether links posted in the chat's conversation are added (/collect on)."""
        return self.storage.collects_links(chat_id)

    def set_collects_links(self, chat_id: str, on: bool) -> None:
        self.storage.set_collects_links(chat_id, on)

    # Asking

    def ask(
        self, chat_id: str, question: str, replied_to: int | None = None, private: bool = False
    ) -> Answer:
        """The sentences of this chat's articles that best answer `question`, read as a
        follow-up where `index.answer.followup` says it is one: `replied_to` is the message
        the question replies to, `private` whether the chat is a private one."""
        previous, implicit = self.memory.previous(chat_id, replied_to, private)
        self.ingest.catch_up(chat_id)
        return self.answers.run(chat_id, question, previous, implicit)

    def context(self, chat_id: str, quote: Quote, around: int = 2) -> list[Quote]:
        """The sentences around a quote, in reading order (the quote itself included)."""
        article = self.article(chat_id, quote.article_number)
        sentences = self.storage.sentences_of(article.id)
        low, high = max(0, quote.position - around), quote.position + around + 1
        return [Quote.of(article, s, 0.0) for s in sentences[low:high]]


def _article_number(value: int | str) -> int:
    if (number := short_id(value)) is None:
        raise UnknownArticle(value)
    return number
