"""The ingest pipeline: fetch → extract → split → encode → store.

    url ──PageFetcher──▶ page ──ArticleExtractor──▶ ArticleDraft   (text and files start here)
    ArticleDraft ──SentenceSplitter──▶ [SentenceSpan] ──SentenceEncoder──▶ EncodedArticle
    EncodedArticle ──Storage.add_article──▶ Article

Duplicates are refused before any model time is spent, and a request seen before (a retried
Telegram update) gets the article it stored the first time.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from index.config import Settings
from index.embeddings import Embedder
from index.errors import ArticleRejected, DuplicateArticle
from index.ingest.encode import SentenceEncoder
from index.ingest.extract import ArticleExtractor, canonical_url, text_fingerprint
from index.ingest.fetch import PageFetcher
from index.ingest.split import SentenceSplitter
from index.quotas import NO_LIMITS, ChatLimits
from index.records import Article, ArticleDraft, EncodedArticle, EncodedSentence
from index.storage.base import Storage

logger = logging.getLogger(__name__)


class IngestPipeline:
    """Turns links, texts and files into stored, searchable articles of a chat."""

    def __init__(self, settings: Settings, embedder: Embedder, storage: Storage) -> None:
        self.storage = storage
        self.fetcher = PageFetcher(settings)
        self.extractor = ArticleExtractor(settings)
        self.splitter = SentenceSplitter(settings)
        self.encoder = SentenceEncoder(embedder, storage)
        self._current: dict[str, int] = {}  # chat -> version known to be fully encoded

    def warm_up(self) -> None:
        self.splitter.warm_up()

    def draft_from_url(self, chat_id: str, url: str) -> ArticleDraft:
        """Fetch and extract a page (a link the chat holds already is not fetched again)."""
        url = url.strip()
        existing = self.storage.find_duplicate(chat_id, canonical_url(url), "")
        if existing:
            raise DuplicateArticle(existing)
        page = self.fetcher.fetch(url)
        if page.is_html:
            return self.extractor.from_html(page.body, url=page.url)
        plain = self.extractor.from_text(page.text(), source="url")
        return replace(plain, url=page.url, canonical_url=canonical_url(page.url))

    def refuse_duplicate(self, chat_id: str, draft: ArticleDraft) -> str:
        """Raise DuplicateArticle if the chat holds this article already (its link or its
        text); otherwise return the text's fingerprint."""
        text_hash = text_fingerprint(draft.text)
        existing = self.storage.find_duplicate(chat_id, draft.canonical_url, text_hash)
        if existing:
            raise DuplicateArticle(existing)
        return text_hash

    def add(
        self,
        chat_id: str,
        draft: ArticleDraft,
        added_by: str | None = None,
        request: str | None = None,
        cache_scope: str | None = None,
        limits: ChatLimits = NO_LIMITS,
    ) -> Article:
        """Split, encode and store an article; refuses duplicates, texts without sentences
        and articles past the chat's `limits`. Encodings are reused within `cache_scope`, by
        default the chat."""
        text_hash = self.refuse_duplicate(chat_id, draft)
        spans = self.splitter.split(draft.text, draft.language)
        if not spans:
            raise ArticleRejected("no_sentences")
        passages, keys, encodings, new = self.encoder.run(
            cache_scope or chat_id, draft.text, [(s.start, s.end) for s in spans]
        )
        sentences = [
            EncodedSentence(span.start, span.end, span.paragraph, passage, key, encoding)
            for span, passage, key, encoding in zip(spans, passages, keys, encodings, strict=True)
        ]
        encoded = EncodedArticle(draft, text_hash, self.encoder.model, sentences, new)
        article = self.storage.add_article(chat_id, encoded, added_by, request, limits)
        logger.info(
            "Chat %s: added #%d %r (%d sentences)",
            chat_id, article.number, article.title, article.sentence_count,
        )  # fmt: skip
        return article

    def catch_up(self, chat_id: str) -> None:
        """Encode, with the current model, whatever a chat holds that was added under another
        (the model or the ranking was changed since): switching never loses an article."""
        version = self.storage.chat_version(chat_id)
        if self._current.get(chat_id) == version:
            return
        model = self.encoder.model
        for article_id in self.storage.articles_lacking_encodings(chat_id, model):
            article = self.storage.articles_by_ids([article_id])[article_id]
            sentences = self.storage.sentences_of(article_id)
            logger.info("Chat %s: encoding #%d with the current model", chat_id, article.number)
            passages, keys, _encodings, new = self.encoder.run(
                chat_id, article.text, [(s.start, s.end) for s in sentences]
            )
            readings = [
                (s.id, passage, key)
                for s, passage, key in zip(sentences, passages, keys, strict=True)
            ]
            self.storage.set_encodings(chat_id, model, readings, new)
        self._current[chat_id] = self.storage.chat_version(chat_id)
