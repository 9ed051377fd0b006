"""The typed records the pipelines pass along.

Ingest: an `ArticleDraft` (extracted text and metadata) is split into `SentenceSpan`s, encoded
into an `EncodedArticle`, and stored as an `Article` with its `Sentence`s. Answering: a
question's hits become `Quote`s, and the quotes an `Answer`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# A follow-up carries at most this much of the earlier questions (about three of them).
MAX_CONTEXT_CHARS = 300


@dataclass(frozen=True)
class ArticleDraft:
    """An article ready to be stored: extracted text and metadata, not yet in any library."""

    title: str
    text: str
    language: str
    source: str  # "url", "text", "file" or "forward" (then `author` names its origin)
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date as the publisher gave it


@dataclass(frozen=True)
class Origin:
    """Where a text sent to the bot first appeared, when it is not the sender's own: the
    channel, group or person a post was forwarded from, with the post's public link (if it
    has one) and its date."""

    name: str
    url: str | None = None
    published: str | None = None  # ISO date


@dataclass(frozen=True)
class SentenceSpan:
    """A sentence as offsets into the article text, with the paragraph it belongs to."""

    start: int
    end: int
    paragraph: int


@dataclass(frozen=True)
class TokenVectors:
    """Contextual token vectors of one text, centred and normalised for matching.

    `spans` are character offsets of each token within the text; `content` marks tokens that
    can carry meaning (not punctuation, not question words).
    """

    ids: np.ndarray  # int32 (n,)
    spans: np.ndarray  # int32 (n, 2)
    vectors: np.ndarray  # float16 (n, dim) as made and stored; float32 rebuilt from codes
    content: np.ndarray  # bool (n,)


@dataclass(frozen=True)
class Encoding:
    """A text as one normalised vector plus its token vectors."""

    vector: np.ndarray  # float32 (dim,)
    tokens: TokenVectors


@dataclass(frozen=True)
class EncodedSentence:
    """A sentence with how the model read it: in which passage (numbered within the
    article), under which encoding key, and the encoding itself."""

    start: int
    end: int
    paragraph: int
    passage: int
    key: str
    encoding: Encoding


@dataclass(frozen=True)
class EncodedArticle:
    """An article ready to be stored: its sentences encoded by `model`. `new_encodings` are
    the encodings the cache did not hold yet."""

    draft: ArticleDraft
    text_hash: str
    model: str
    sentences: list[EncodedSentence]
    new_encodings: dict[str, Encoding]


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


@dataclass(frozen=True)
class ArticleExport:
    """An article with everything stored about it, to move it to another engine.

    `readings[i]` says how each model read `sentences[i]`: `(model, passage, key)`;
    `encodings[model][key]` are the encodings they name."""

    article: Article
    request: str | None
    sentences: list[Sentence]
    readings: list[list[tuple[str, int, str]]]
    encodings: dict[str, dict[str, Encoding]]


@dataclass(frozen=True)
class Hit:
    """A sentence found for a question, with its score and the words that matched
    (character spans relative to the sentence)."""

    sentence_id: int
    score: float
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Quote:
    """Sentences quoted word for word: always `article.text[start:end]`.

    A quote is the sentence that matched the question (`sentence_id`, `position`), together
    with the neighbours it cannot be read without (see `index.answer.quote`).
    """

    text: str
    start: int
    end: int
    score: float
    sentence_id: int
    position: int
    article_id: int
    article_number: int
    title: str
    url: str | None
    published: str | None
    language: str
    # Character spans, relative to `text`, of words that match the question.
    highlights: tuple[tuple[int, int], ...] = ()
    origin: str | None = None  # the channel or person a forwarded post came from

    @classmethod
    def of(
        cls,
        article: Article,
        sentence: Sentence,
        score: float,
        quoted: Sequence[Sentence] = (),
        highlights: tuple[tuple[int, int], ...] = (),
    ) -> Quote:
        """Quote `sentence`, or the run of sentences `quoted` that holds it; `highlights`
        are relative to the quoted text."""
        first, last = (quoted[0], quoted[-1]) if quoted else (sentence, sentence)
        return cls.at(
            article, first.start, last.end, score, sentence.id, sentence.position, highlights
        )

    @classmethod
    def at(
        cls,
        article: Article,
        start: int,
        end: int,
        score: float,
        sentence_id: int,
        position: int,
        highlights: tuple[tuple[int, int], ...] = (),
    ) -> Quote:
        """The quote of `article.text[start:end]`, matched at sentence `sentence_id`."""
        return cls(
            text=article.text[start:end],
            start=start,
            end=end,
            score=round(float(score), 4),
            sentence_id=sentence_id,
            position=position,
            article_id=article.id,
            article_number=article.number,
            title=article.title,
            url=article.url,
            published=article.published,
            language=article.language,
            highlights=highlights,
            origin=article.author if article.source == "forward" else None,
        )


@dataclass(frozen=True)
class Answer:
    """The quotes that answer a question, best first.

    `quotes` holds every candidate worth showing (the "More" button pages through them);
    `found` is False when even the best one is below the confidence threshold, in which case
    the library has no answer and nothing should be quoted.
    """

    question: str
    quotes: list[Quote] = field(default_factory=list)
    found: bool = False
    library_empty: bool = False
    language: str = "en"
    context: str = ""  # the earlier question(s) a follow-up was read with

    @property
    def search_text(self) -> str:
        """The question with the context it was read in: what a follow-up to this answer is
        read with (bounded, so a long thread does not drown the newest question)."""
        return f"{self.context} {self.question}".strip()[-MAX_CONTEXT_CHARS:]

    @property
    def article_ids(self) -> list[int]:
        """Articles of the quotes, in order of first appearance (the answer's topic)."""
        return list(dict.fromkeys(q.article_id for q in self.quotes))

    def page(self, start: int, size: int) -> list[Quote]:
        return self.quotes[start : start + size] if self.found else []

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "found": self.found,
            "library_empty": self.library_empty,
            "quotes": [vars(q) for q in self.quotes] if self.found else [],
        }


@dataclass(frozen=True)
class Feed:
    """A chat's subscription to an RSS or Atom feed, with how its last polls went."""

    id: int
    chat_id: str
    url: str
    title: str
    added_by: str | None
    added_at: str
    language: str  # of whoever followed it; the chat hears about the feed in this one
    etag: str | None
    last_modified: str | None
    last_success: str | None  # ISO time of the last poll that worked
    last_error: str | None  # why the last poll failed (None after a success)
    failures: int  # polls failed in a row
    reported: bool  # the chat has been told that the feed keeps failing
    paused: bool  # not polled any more (too many failures) until followed again


@dataclass(frozen=True)
class FeedPoll:
    """What one poll of a feed brought: the articles added, the items skipped (not articles,
    over the per-poll limit), and whether the chat should hear about a failure."""

    feed: Feed
    added: list[Article]
    skipped: int = 0
    error: str | None = None
    report_failure: bool = False  # failing for a while: tell the chat, once
    paused: bool = False  # failing for too long: polling stopped


def short_id(value: int | str) -> int | None:
    """A short id (of an article or a feed) as users write it ("3" or "#3"); None if it is
    not one."""
    text = str(value).strip().lstrip("#")
    return int(text) if re.fullmatch(r"\d{1,9}", text) else None
