"""The article library: add articles to a chat, ask questions, get verbatim quotes back.

This is the one entry point the bot and the command line use. Every method is synchronous and
may be slow (fetching, model inference), so callers on an event loop run it in a thread.
Each chat has its own library; nothing is ever looked up across chats.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from index.answers import Answer, Quote, quote_highlights, quoted_sentences
from index.config import Settings
from index.embeddings import Embedder, Encoding
from index.errors import ArticleRejected, DuplicateArticle, UnknownArticle
from index.extract import ArticleExtractor, canonical_url, text_fingerprint
from index.fetch import PageFetcher
from index.language import detect_language
from index.records import Article, ArticleDraft, Sentence
from index.retrieval import Hit, Query, Retriever
from index.sentences import SentenceSplitter
from index.store import Store
from index.vectors import VectorIndexes

logger = logging.getLogger(__name__)

# How much an earlier question counts when a follow-up is read in its light.
FOLLOW_UP_CONTEXT_WEIGHT = 0.5
# What makes a question lean on the previous one: an opening such as "And ..." or "What
# about ...", or a pronoun for a person or place named before. Words as common as "das", "es"
# or "it" are left out: most questions that contain them stand on their own.
_FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|so|what about|how about|und|aber|auch|was ist mit)\b"
    r"|\b(he|she|they|him|her|them|his|hers|their|there|er|ihm|ihn|ihnen|dort|damals)\b",
    re.IGNORECASE,
)


def _encoding_key(passage: str, start: int, end: int) -> str:
    """A sentence's encoding depends on its text and on the passage it was read in."""
    return hashlib.sha1(f"{start}:{end}\0{passage}".encode()).hexdigest()


class Library:
    """All chats' article libraries, stored under `settings.data_dir`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        # Ranking multiplies small matrices; OpenBLAS threads would then spin idle between
        # them and take the cores from the model (measured: 97 ms per question instead of 35).
        threadpool_limits(1, user_api="blas")
        self.settings = settings
        self.store = Store(settings.database_path)
        self.embedder = embedder or Embedder(settings)
        self.splitter = SentenceSplitter(settings)
        self.extractor = ArticleExtractor(settings)
        self.fetcher = PageFetcher(settings)
        self._retriever: Retriever | None = None
        self._setup_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model and the sentence splitters now rather than on the first request."""
        self.embedder.warm_up()
        self.splitter.warm_up()
        _ = self.retriever

    def close(self) -> None:
        self.store.close()

    @property
    def vectors(self) -> VectorIndexes:
        return self.retriever.vectors

    @property
    def retriever(self) -> Retriever:
        """The retriever and its vector indexes, made once: they need the loaded model."""
        with self._setup_lock:
            if self._retriever is None:
                model = self.embedder.model_key
                # One folder per model and ranking mode: switching either never mixes vectors.
                folder = hashlib.sha1(model.encode()).hexdigest()[:12]
                vectors = VectorIndexes(
                    self.settings.vectors_dir / folder,
                    self.embedder.dimension,
                    vectors_of=self._chat_vectors,
                    ids_of=self.store.chat_sentence_ids,
                    version_of=self.store.chat_version,
                )
                self._retriever = Retriever(self.store, vectors, model, self.embedder.contextual)
            return self._retriever

    def _chat_vectors(self, chat_id: str) -> tuple[np.ndarray, np.ndarray]:
        """A chat's sentence vectors for (re)building its index, encoding with the current
        model whatever was added under another one."""
        model = self.embedder.model_key
        for article_id in self.store.articles_lacking_encodings(chat_id, model):
            article = self.store.article_by_id(article_id)
            sentences = self.store.sentences_of(article_id)
            logger.info("Chat %s: encoding #%d with the current model", chat_id, article.number)
            keys, passages, _ = self._encode(article.text, [(s.start, s.end) for s in sentences])
            self.store.set_encodings(
                model, [(s.id, p, k) for s, p, k in zip(sentences, passages, keys, strict=True)]
            )
        return self.store.chat_vectors(chat_id, model)

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
            draft = replace(plain, url=page.url, canonical_url=canonical_url(page.url))
        return self.add_draft(chat_id, draft, added_by)

    def add_text(self, chat_id: str, text: str, added_by: str | None = None) -> Article:
        return self.add_draft(chat_id, self.extractor.from_text(text), added_by)

    def add_file(
        self, chat_id: str, name: str, data: bytes, added_by: str | None = None
    ) -> Article:
        return self.add_draft(chat_id, self.extractor.from_file(name, data), added_by)

    def add_draft(self, chat_id: str, draft: ArticleDraft, added_by: str | None = None) -> Article:
        """Split, encode and store an article; refuses duplicates and texts without sentences."""
        fingerprint = text_fingerprint(draft.text)
        existing = self.store.find_duplicate(chat_id, draft.canonical_url, fingerprint)
        if existing:
            raise DuplicateArticle(existing)
        spans = self.splitter.split(draft.text, draft.language)
        if not spans:
            raise ArticleRejected("no_sentences")
        keys, passages, encodings = self._encode(draft.text, [(s.start, s.end) for s in spans])
        try:
            article, sentences = self.store.add_article(
                chat_id,
                draft,
                fingerprint,
                [(s.start, s.end, s.paragraph) for s in spans],
                self.embedder.model_key,
                list(zip(passages, keys, strict=True)),
                added_by,
            )
        except sqlite3.IntegrityError:  # the same article added at the same moment
            existing = self.store.find_duplicate(chat_id, draft.canonical_url, fingerprint)
            if existing is None:
                raise
            raise DuplicateArticle(existing) from None
        ids = np.array([s.id for s in sentences], dtype=np.int64)
        self.vectors.add(chat_id, ids, np.array([e.vector for e in encodings]))
        logger.info(
            "Chat %s: added #%d %r (%d sentences)", chat_id, article.number, article.title, len(ids)
        )
        return article

    def _encode(
        self, text: str, spans: list[tuple[int, int]]
    ) -> tuple[list[str], list[int], list[Encoding]]:
        """Encoding keys, passage numbers and encodings of an article's sentences.

        Encodings are cached by sentence and passage text, so an article added again (to
        another chat, or after removal) costs no model time."""
        windows = self.embedder.passages(text, spans)
        keys, passage_of, local_spans, passage_texts = [], [], [], []
        for number, (first, last) in enumerate(windows):
            offset = spans[first][0]
            passage = text[offset : spans[last - 1][1]]
            local = [(start - offset, end - offset) for start, end in spans[first:last]]
            passage_texts.append(passage)
            local_spans.append(local)
            keys += [_encoding_key(passage, start, end) for start, end in local]
            passage_of += [number] * len(local)
        model = self.embedder.model_key
        cached = self.store.cached_encodings(model, keys)
        missing = sorted({passage_of[i] for i, key in enumerate(keys) if key not in cached})
        if missing:
            fresh = self.embedder.encode_passages(
                [passage_texts[p] for p in missing], [local_spans[p] for p in missing]
            )
            new = {}
            for number, encodings in zip(missing, fresh, strict=True):
                for (start, end), encoding in zip(local_spans[number], encodings, strict=True):
                    new[_encoding_key(passage_texts[number], start, end)] = encoding
            self.store.cache_encodings(model, new)
            cached.update(new)
        return keys, passage_of, [cached[key] for key in keys]

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

    def ask(
        self,
        chat_id: str,
        question: str,
        previous: Answer | None = None,
        implicit: bool = False,
    ) -> Answer:
        """The sentences of this chat's articles that best answer `question`.

        With `previous`, the question is a follow-up to that answer: it is read together with
        the earlier question, and the earlier answer's articles come first. With `implicit`
        (a question that merely came next in a private chat), that happens only when the
        question leans on the previous one or has no answer on its own.
        """
        question = " ".join(question.split())
        languages = self.store.chat_languages(chat_id)
        language = detect_language(question, among=languages | {"en", "de"}) if question else "en"
        if not languages or not question:
            return Answer(question, library_empty=not languages, language=language)
        query = Query.of(self.embedder.encode_query(question), language)
        if previous is None or not previous.found:
            return self._answer(chat_id, question, query, language)
        if implicit and not _FOLLOW_UP.search(question):
            bare = self._answer(chat_id, question, query, language)
            if bare.found:
                return bare
        context = self.embedder.encode_query(previous.search_text)
        followed = query.with_context(
            context, FOLLOW_UP_CONTEXT_WEIGHT, frozenset(previous.article_ids)
        )
        answer = self._answer(chat_id, question, followed, language)
        return replace(answer, context=previous.search_text)

    def _answer(self, chat_id: str, question: str, query: Query, language: str) -> Answer:
        hits = self.retriever.search(chat_id, query, self.settings.max_candidates)
        quotes = _without_repeats(self._quotes(hits))
        found = bool(quotes) and quotes[0].score >= self.settings.min_confidence
        return Answer(question, quotes, found=found, language=language)

    def _quotes(self, hits: list[Hit]) -> list[Quote]:
        """One quote per hit, best first; a sentence already quoted higher up (as a hit or
        as a neighbour) is not quoted again."""
        sentences = self.store.sentences_by_ids(h.sentence_id for h in hits)
        articles = self.store.articles_by_ids(s.article_id for s in sentences.values())
        marks = {hit.sentence_id: hit.highlights for hit in hits}
        in_order: dict[int, list[Sentence]] = {}
        quotes: list[Quote] = []
        taken: set[int] = set()
        for hit in hits:
            sentence = sentences.get(hit.sentence_id)
            if sentence is None or sentence.id in taken:
                continue
            article = articles[sentence.article_id]
            quoted = [sentence]
            if self.settings.join_referring_sentences:
                if article.id not in in_order:
                    in_order[article.id] = self.store.sentences_of(article.id)
                quoted = quoted_sentences(article, in_order[article.id], sentence, taken)
            taken.update(s.id for s in quoted)
            highlights = quote_highlights(quoted, marks)
            quotes.append(Quote.of(article, sentence, hit.score, quoted, highlights))
        return quotes

    def context(self, chat_id: str, quote: Quote, around: int = 2) -> list[Quote]:
        """The sentences around a quote, in reading order (the quote itself included)."""
        article = self.article(chat_id, quote.article_number)
        sentences = self.store.sentences_of(article.id)
        low, high = max(0, quote.position - around), quote.position + around + 1
        return [Quote.of(article, s, 0.0) for s in sentences[low:high]]


def _without_repeats(quotes: list[Quote]) -> list[Quote]:
    """Drop quotes whose words already appeared higher up (the same sentence in two copies
    of a story), so every quote shown adds something."""
    seen: set[str] = set()
    kept = []
    for quote in quotes:
        key = " ".join(re.findall(r"\w+", quote.text.casefold()))
        if key not in seen:
            seen.add(key)
            kept.append(quote)
    return kept


def _number(value: int | str) -> int:
    """An article's short id as users write it ("3" or "#3")."""
    text = str(value).strip().lstrip("#")
    if not re.fullmatch(r"\d{1,9}", text):
        raise UnknownArticle(value)
    return int(text)
