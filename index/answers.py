"""Answers: ranked verbatim quotes with their sources, and whether the library has an answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from index.records import Article, Sentence
from index.sentences import refers_back

# A follow-up carries at most this much of the earlier questions (about three of them).
_MAX_CONTEXT_CHARS = 300
# A sentence is joined with a neighbour only while the quote stays at most this long.
MAX_JOINED_CHARS = 800


@dataclass(frozen=True)
class Quote:
    """Sentences quoted word for word: always `article.text[start:end]`.

    A quote is the sentence that matched the question (`sentence_id`, `position`), together
    with the neighbours it cannot be read without: the sentence before, when the matched one
    opens by pointing back to it ("These include ..."), and the sentence after, when that one
    points back to the matched one.
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
        return cls(
            text=article.text[first.start : last.end],
            start=first.start,
            end=last.end,
            score=round(float(score), 4),
            sentence_id=sentence.id,
            position=sentence.position,
            article_id=article.id,
            article_number=article.number,
            title=article.title,
            url=article.url,
            published=article.published,
            language=article.language,
            highlights=highlights,
        )


def quote_highlights(
    quoted: Sequence[Sentence], marks: Mapping[int, tuple[tuple[int, int], ...]]
) -> tuple[tuple[int, int], ...]:
    """The words marked in each quoted sentence (`marks` by sentence id, relative to that
    sentence) as spans of the quoted text."""
    first = quoted[0]
    return tuple(
        (s.start - first.start + start, s.start - first.start + end)
        for s in quoted
        for start, end in marks.get(s.id, ())
    )


def quoted_sentences(
    article: Article, in_order: list[Sentence], sentence: Sentence, taken: set[int]
) -> list[Sentence]:
    """The run of sentences that quotes `sentence` (see `Quote`), in reading order.

    `in_order` are all the article's sentences. Neighbours in another paragraph, already
    quoted higher up (their ids in `taken`) or making the quote longer than a reader takes in
    at a glance are left out.
    """

    def opens_with_reference(s: Sentence) -> bool:
        return refers_back(article.text[s.start : s.end], article.language)

    def joinable(neighbour: Sentence) -> bool:
        start = min(neighbour.start, quoted[0].start)
        end = max(neighbour.end, quoted[-1].end)
        return (
            neighbour.paragraph == sentence.paragraph
            and neighbour.id not in taken
            and end - start <= MAX_JOINED_CHARS
        )

    quoted = [sentence]
    before = in_order[sentence.position - 1] if sentence.position > 0 else None
    after = in_order[sentence.position + 1] if sentence.position + 1 < len(in_order) else None
    if before is not None and opens_with_reference(sentence) and joinable(before):
        quoted.insert(0, before)
    if after is not None and opens_with_reference(after) and joinable(after):
        quoted.append(after)
    return quoted


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
        return f"{self.context} {self.question}".strip()[-_MAX_CONTEXT_CHARS:]

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
