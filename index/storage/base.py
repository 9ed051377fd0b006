"""What every storage engine keeps, behind one interface the pipelines use.

An engine stores chats' articles with their sentences, what the model made of each sentence
(its encoding: a vector plus token vectors, cached by sentence and passage so no text is read
twice), the sentence vectors it searches, and the chats' conversation memory. Each change is
one transaction: an article is stored with all its sentences and vectors, or not at all.

Two engines implement it: `SQLiteStorage` (embedded: SQLite plus FAISS files, the default) and
`PostgresStorage` (PostgreSQL with pgvector, for several processes and machines). They give
the same answers; the test suite runs the same tests against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import numpy as np

from index.quotas import NO_LIMITS, ChatLimits
from index.records import (
    Article,
    ArticleExport,
    EncodedArticle,
    Encoding,
    Feed,
    Sentence,
    TokenVectors,
)


class StorageUnavailable(RuntimeError):
    """The database cannot be reached (or went away); the request may be retried later."""


class Storage(ABC):
    """One engine's view of every chat's library. Safe to use from several threads."""

    name: str
    location: str  # where the data lives, for messages (passwords hidden)

    @abstractmethod
    def close(self) -> None: ...

    # Articles

    @abstractmethod
    def add_article(
        self,
        chat_id: str,
        article: EncodedArticle,
        added_by: str | None,
        request: str | None,
        limits: ChatLimits = NO_LIMITS,
    ) -> Article:
        """Store an article with its sentences, encodings and vectors in one transaction,
        noting the `request` it was stored for (see `stored_for`).

        Raises `DuplicateArticle` when the chat holds it already (same canonical URL or same
        text), also when another process stored it a moment earlier, and `QuotaExceeded` when
        it does not fit the chat's `limits` (checked with the chat's adds held off, so that
        adds running at once cannot overfill it)."""

    @abstractmethod
    def stored_for(self, chat_id: str, request: str) -> Article | None:
        """The article stored for `request` (say, a Telegram update) before, if any: a request
        that is retried after a crash is answered as its first attempt would have been."""

    @abstractmethod
    def find_duplicate(
        self, chat_id: str, canonical_url: str | None, text_hash: str
    ) -> Article | None:
        """An article of this chat with the same canonical URL or the same normalised text."""

    @abstractmethod
    def article(self, chat_id: str, number: int) -> Article | None: ...

    @abstractmethod
    def articles(self, chat_id: str) -> list[Article]: ...

    @abstractmethod
    def articles_by_ids(self, article_ids: Iterable[int]) -> dict[int, Article]: ...

    @abstractmethod
    def remove_article(self, chat_id: str, number: int) -> Article | None:
        """Delete an article with its sentences, vectors and the encodings only it used."""

    @abstractmethod
    def forget_chat(self, chat_id: str) -> int:
        """Delete every article of a chat; returns how many there were."""

    @abstractmethod
    def chat_languages(self, chat_id: str) -> set[str]:
        """The languages of a chat's articles (empty: the library is empty)."""

    @abstractmethod
    def chat_version(self, chat_id: str) -> int:
        """A number that changes whenever the chat's articles change (in any process)."""

    # Sentences and how the model read them

    @abstractmethod
    def sentences_of(self, article_id: int) -> list[Sentence]:
        """An article's sentences in reading order."""

    @abstractmethod
    def sentences_by_ids(self, sentence_ids: Iterable[int]) -> dict[int, Sentence]: ...

    @abstractmethod
    def sentence_sources(self, sentence_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
        """For each sentence, its article's id and language."""

    @abstractmethod
    def passage_mates(self, model: str, sentence_ids: Iterable[int]) -> dict[int, list[int]]:
        """For each sentence, the ids of all sentences `model` read in the same passage."""

    @abstractmethod
    def sentence_tokens(self, model: str, sentence_ids: Iterable[int]) -> dict[int, TokenVectors]:
        """The contextual token vectors of sentences, as `model` read them."""

    @abstractmethod
    def chat_token_ids(self, chat_id: str, model: str) -> list[np.ndarray]:
        """The token ids of every sentence of a chat (for word rarity statistics)."""

    # The encoding cache

    @abstractmethod
    def cached_encodings(self, model: str, keys: Iterable[str]) -> dict[str, Encoding]:
        """What `model` made of sentences before, by encoding key (see `index.ingest.encode`)."""

    @abstractmethod
    def articles_lacking_encodings(self, chat_id: str, model: str) -> list[int]:
        """Articles of a chat with sentences `model` has not read (the model was changed)."""

    @abstractmethod
    def set_encodings(
        self,
        chat_id: str,
        model: str,
        sentences: list[tuple[int, int, str]],
        encodings: dict[str, Encoding],
    ) -> None:
        """Record how `model` read existing sentences of a chat, `(sentence id, passage,
        encoding key)`, with the encodings that are new, in one transaction."""

    # Search

    @abstractmethod
    def search(
        self, chat_id: str, model: str, vector: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` sentences of a chat whose vectors are most similar to `vector` (inner
        product of normalised vectors: cosine): (scores, sentence ids), best first."""

    @abstractmethod
    def vector_count(self, chat_id: str, model: str) -> int:
        """How many sentence vectors of `model` a chat's search covers."""

    # What a chat and a user use, for the quotas (`index.quotas`)

    @abstractmethod
    def chat_usage(self, chat_id: str) -> tuple[int, int]:
        """(how many articles the chat holds, how many characters they have together)."""

    @abstractmethod
    def note_add(self, user_id: str, at: float) -> None:
        """Count an add `user_id` asked for at `at` (seconds since the epoch); counts older
        than `ADDS_KEPT_SECONDS` are let go on the way."""

    @abstractmethod
    def adds_since(self, user_id: str, since: float) -> int:
        """How many adds `user_id` asked for since `since`."""

    # Conversation memory: which message shows which answer

    @abstractmethod
    def remember_answer(self, chat_id: str, message_id: int, record: str, latest: bool) -> None:
        """Keep `record` (an answer, serialised) as what message `message_id` shows; with
        `latest`, it is also the chat's latest answer. A chat keeps its newest
        `ANSWERS_PER_CHAT` messages."""

    @abstractmethod
    def recall_answer(self, chat_id: str, message_id: int) -> str | None: ...

    @abstractmethod
    def latest_answer(self, chat_id: str) -> str | None:
        """The chat's latest answer, unless something else happened since."""

    @abstractmethod
    def clear_latest_answer(self, chat_id: str) -> None: ...

    # Feeds and per-chat settings

    @abstractmethod
    def add_feed(
        self,
        chat_id: str,
        url: str,
        title: str,
        added_by: str | None,
        language: str,
        claimed_until: float,
        limit: int = 0,
    ) -> Feed:
        """Subscribe a chat to a feed (`language`: the one its messages are written in),
        claimed by the caller, who polls it first, until `claimed_until`. Following a feed
        again resumes it, with the items it has seen.

        Raises `FeedRejected` if that would make the chat follow more than `limit` feeds (0:
        no limit), counted with the chat's changes held off."""

    @abstractmethod
    def feeds(self, chat_id: str) -> list[Feed]: ...

    @abstractmethod
    def feed(self, chat_id: str, feed_id: int) -> Feed | None: ...

    @abstractmethod
    def remove_feed(self, chat_id: str, feed_id: int) -> Feed | None: ...

    @abstractmethod
    def claim_due_feed(self, now: float, until: float) -> Feed | None:
        """The feed due longest at `now` (epoch seconds), not paused and not being polled
        elsewhere, claimed for the caller until `until`: two processes never poll one feed at
        once. None when no feed is due."""

    @abstractmethod
    def unseen_items(self, feed_id: int, keys: list[str]) -> list[str]:
        """Those of `keys` (item ids) the feed has not seen, in the order given."""

    @abstractmethod
    def record_feed_poll(
        self, feed: Feed, seen: list[str], next_poll: float, success_at: str | None
    ) -> None:
        """Store a poll's outcome as `feed` now says it (conditional-request validators,
        error, failure count, reported, paused), set when it is due next (epoch seconds) and
        release the claim. `success_at`: the time of a success. `seen`: the item ids the feed
        lists now, which become all it remembers (so that memory stays as short as the feed);
        empty when nothing was read."""

    @abstractmethod
    def collects_links(self, chat_id: str) -> bool:
        """Whether links posted in the chat's conversation are added (/collect on)."""

    @abstractmethod
    def set_collects_links(self, chat_id: str, on: bool) -> None: ...

    # Moving data between engines

    @abstractmethod
    def export_articles(self) -> Iterator[ArticleExport]:
        """Every article of every chat with its sentences and encodings, oldest first."""

    @abstractmethod
    def article_count(self) -> int:
        """How many articles all chats hold together."""

    @abstractmethod
    def import_article(self, export: ArticleExport) -> bool:
        """Store an exported article under its chat and number; False if the chat holds it
        already (an import that is run again adds nothing twice)."""


# Conversation memory per chat: enough for the replies and buttons of a busy day.
ANSWERS_PER_CHAT = 200
