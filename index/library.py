"""The article library: add articles to a chat, ask questions, get verbatim quotes back.

This is the one entry point the bot and the command line use. Every method is synchronous and
may be slow (fetching, model inference), so callers on an event loop run it in a thread.
Each chat has its own library; nothing is ever looked up across chats.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3

import numpy as np

from index.answers import Answer, Quote
from index.config import Settings
from index.embeddings import Embedder
from index.errors import ArticleRejected, DuplicateArticle, UnknownArticle
from index.extract import ArticleExtractor, canonical_url, text_fingerprint
from index.fetch import PageFetcher
from index.language import detect_language
from index.records import Article, ArticleDraft
from index.retrieval import Retriever
from index.sentences import SentenceSplitter
from index.store import Store
from index.vectors import VectorIndexes

logger = logging.getLogger(__name__)


def _embedding_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Library:
    """All chats' article libraries, stored under `settings.data_dir`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = Store(settings.database_path)
        self.embedder = embedder or Embedder(settings)
        self.splitter = SentenceSplitter(settings)
        self.extractor = ArticleExtractor(settings)
        self.fetcher = PageFetcher(settings)
        self._vectors: VectorIndexes | None = None

    def warm_up(self) -> None:
        """Load the model and the sentence splitters now rather than on the first request."""
        self.embedder.warm_up()
        self.splitter.warm_up()
        _ = self.vectors

    def close(self) -> None:
        self.store.close()

    @property
    def vectors(self) -> VectorIndexes:
        if self._vectors is None:
            model = self.embedder.model_key
            self._vectors = VectorIndexes(
                self.settings.vectors_dir,
                self.embedder.dimension,
                vectors_of=lambda chat: self.store.chat_vectors(chat, model),
                ids_of=self.store.chat_sentence_ids,
            )
        return self._vectors

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.embedder, self.vectors)

    # Adding

    def add_url(self, chat_id: str, url: str, added_by: str | None = None) -> Article:
        url = url.strip()
        existing = self.store.find_duplicate(chat_id, canonical_url(url), "")
        if existing:
            raise DuplicateArticle(existing)
        page = self.fetcher.fetch(url)
        if page.is_html:
            draft = self.extractor.from_html(page.body, url=page.url)
        else:
            plain = self.extractor.from_text(page.text(), source="url")
            draft = ArticleDraft(
                **{**vars(plain), "url": page.url, "canonical_url": canonical_url(page.url)}
            )
        return self.add_draft(chat_id, draft, added_by)

    def add_text(self, chat_id: str, text: str, added_by: str | None = None) -> Article:
        return self.add_draft(chat_id, self.extractor.from_text(text), added_by)

    def add_file(
        self, chat_id: str, name: str, data: bytes, added_by: str | None = None
    ) -> Article:
        return self.add_draft(chat_id, self.extractor.from_file(name, data), added_by)

    def add_draft(self, chat_id: str, draft: ArticleDraft, added_by: str | None = None) -> Article:
        """Split, embed and store an article; refuses duplicates and texts without sentences."""
        fingerprint = text_fingerprint(draft.text)
        existing = self.store.find_duplicate(chat_id, draft.canonical_url, fingerprint)
        if existing:
            raise DuplicateArticle(existing)
        spans = self.splitter.split(draft.text, draft.language)
        if not spans:
            raise ArticleRejected("The text has no sentences to quote.")
        texts = [draft.text[s.start : s.end] for s in spans]
        keys = [_embedding_key(t) for t in texts]
        vectors = self._embed_documents(texts, keys)
        try:
            article, sentences = self.store.add_article(
                chat_id,
                draft,
                fingerprint,
                [(s.start, s.end, s.paragraph) for s in spans],
                keys,
                added_by,
            )
        except sqlite3.IntegrityError:  # the same article added concurrently
            raise DuplicateArticle(self.store.find_duplicate(chat_id, None, fingerprint)) from None
        ids = np.array([s.id for s in sentences], dtype=np.int64)
        self.vectors.add(chat_id, ids, vectors)
        logger.info(
            "Chat %s: added #%d %r (%d sentences)", chat_id, article.number, article.title, len(ids)
        )
        return article

    def _embed_documents(self, texts: list[str], keys: list[str]) -> np.ndarray:
        """Vectors for `texts`, computing only those not cached yet, and caching them."""
        model = self.embedder.model_key
        cached = self.store.cached_vectors(model, keys)
        missing = [i for i, key in enumerate(keys) if key not in cached]
        if missing:
            fresh = self.embedder.embed_documents([texts[i] for i in missing])
            new = {keys[i]: vector.tobytes() for i, vector in zip(missing, fresh, strict=True)}
            self.store.cache_vectors(model, new)
            cached.update(new)
        return np.array([np.frombuffer(cached[k], dtype=np.float32) for k in keys])

    # Reading and removing

    def articles(self, chat_id: str) -> list[Article]:
        return self.store.articles(chat_id)

    def article(self, chat_id: str, number: int | str) -> Article:
        found = self.store.article(chat_id, _number(number))
        if found is None:
            raise UnknownArticle(number)
        return found

    def remove(self, chat_id: str, number: int | str) -> Article:
        removed = self.store.remove_article(chat_id, _number(number))
        if removed is None:
            raise UnknownArticle(number)
        article, sentence_ids = removed
        self.vectors.remove(chat_id, sentence_ids)
        return article

    def forget(self, chat_id: str) -> int:
        """Empty a chat's library; returns how many articles it held."""
        count = self.store.forget_chat(chat_id)
        self.vectors.forget(chat_id)
        return count

    # Asking

    def ask(self, chat_id: str, question: str) -> Answer:
        """The sentences of this chat's articles that best answer `question`."""
        question = " ".join(question.split())
        articles = self.store.articles(chat_id)
        languages = {a.language for a in articles} | {"en", "de"}
        language = detect_language(question, among=languages)
        if not articles:
            return Answer(question, library_empty=True, language=language)
        hits = self.retriever.search(chat_id, question, self.settings.max_candidates)
        quotes = self._quotes(hits)
        found = bool(quotes) and quotes[0].score >= self.settings.min_confidence
        return Answer(question, quotes, found=found, language=language)

    def _quotes(self, hits) -> list[Quote]:
        sentences = self.store.sentences_by_ids(h.sentence_id for h in hits)
        articles = self.store.articles_by_ids(s.article_id for s in sentences.values())
        quotes = []
        for hit in hits:
            sentence = sentences.get(hit.sentence_id)
            if sentence is not None:
                quotes.append(Quote.of(articles[sentence.article_id], sentence, hit.score))
        return quotes

    def context(self, chat_id: str, quote: Quote, around: int = 2) -> list[Quote]:
        """The sentences around a quote, in reading order (the quote itself included)."""
        article = self.article(chat_id, quote.article_number)
        sentences = self.store.sentences_of(article.id)
        low, high = max(0, quote.position - around), quote.position + around + 1
        return [Quote.of(article, s, 0.0) for s in sentences[low:high]]


def _number(value: int | str) -> int:
    try:
        return int(str(value).strip().lstrip("#"))
    except ValueError:
        raise UnknownArticle(value) from None
