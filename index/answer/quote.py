"""Quoting: the ranked sentences become verbatim quotes a reader can take in on their own.

A quote is the sentence that matched, together with the neighbour it cannot be read without:
the sentence before when the matched one opens by pointing back to it ("These include ...",
"Dabei ..."), and the sentence after when that one points back to the matched one. Joining
stays within the paragraph, never repeats a sentence quoted higher up, and stops at
`MAX_JOINED_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from index.records import Article, Hit, Quote, Sentence
from index.storage.base import Storage

# A sentence is joined with a neighbour only while the quote stays at most this long.
MAX_JOINED_CHARS = 800
# Words that point back to an earlier sentence: third-person pronouns, possessives and
# demonstratives, and German "da-" adverbs ("dabei", "davon": "at that", "of that"). "That" and
# "such" are left out: "that" mostly joins clauses, "such as" introduces examples.
_BACK_REFERENCE_WORDS = {
    "de": "er sie es ihr ihre ihren ihrem ihrer ihres sein seine seinen seinem seiner seines"
    " dies diese dieser dieses diesen diesem jene jener jenes jenen jenem solche solcher solches"
    " solchen dabei dadurch dafür dagegen daher damit danach daneben darauf daraus darin darüber"
    " davon davor dazu",
    "en": "he she it they his her its their this these those",
}
_BACK_REFERENCES = {
    language: frozenset(words.split()) for language, words in _BACK_REFERENCE_WORDS.items()
}
# A back reference counts among a sentence's first few words ("During this period, ...").
_OPENING_WORDS = 3


def refers_back(sentence: str, language: str) -> bool:
    """Whether a sentence opens by pointing back to the one before it ("These include ...",
    "Dabei ..."), so that quoting it alone would leave the reader asking what "these" are."""
    words = _BACK_REFERENCES.get(language, frozenset())
    opening = re.findall(r"\w+", sentence)[:_OPENING_WORDS]
    return any(word.casefold() in words for word in opening)


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
    """The run of sentences that quotes `sentence` (see the module docstring), in order.

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


class Quoter:
    """Turns ranked hits into quotes, best first: one per hit, none repeating a sentence (or
    the words of a sentence) quoted higher up."""

    def __init__(self, storage: Storage, join_referring_sentences: bool = True) -> None:
        self.storage = storage
        self.join_referring_sentences = join_referring_sentences

    def run(self, hits: list[Hit]) -> list[Quote]:
        sentences = self.storage.sentences_by_ids(h.sentence_id for h in hits)
        articles = self.storage.articles_by_ids(s.article_id for s in sentences.values())
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
            if self.join_referring_sentences:
                if article.id not in in_order:
                    in_order[article.id] = self.storage.sentences_of(article.id)
                quoted = quoted_sentences(article, in_order[article.id], sentence, taken)
            taken.update(s.id for s in quoted)
            highlights = quote_highlights(quoted, marks)
            quotes.append(Quote.of(article, sentence, hit.score, quoted, highlights))
        return _without_repeats(quotes)


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
