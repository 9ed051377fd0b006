"""Asking: verbatim quotes with their sources, best first, and "no answer" below the configured
confidence. Only clear-cut cases are asserted; exact scores and rankings are left free."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.answer.quote import MAX_JOINED_CHARS, quote_highlights, quoted_sentences
from index.config import Settings
from index.embeddings import Embedder
from index.library import Library
from index.records import Answer, Article, Quote, Sentence
from tests.conftest import SEED_ARTICLE, engine_settings, fixture_bytes, fixture_text

pytestmark = pytest.mark.both_engines

CHAT = "readers"


@pytest.fixture(scope="module")
def stocked(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    engine: str,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Library, Article, Article]]:
    """One library for the module (only asked, never changed): the German seed article and
    the English night-bus article."""
    settings = engine_settings(tmp_path_factory.mktemp("answers"), engine, request)
    library = Library(settings, embedder=embedder)
    seed = library.add_text(CHAT, fixture_text(SEED_ARTICLE))
    buses = library.add_file(CHAT, "en_article.html", fixture_bytes("en_article.html"))
    yield library, seed, buses
    library.close()


def with_threshold(library: Library, embedder: Embedder, threshold: float) -> Library:
    return Library(library.settings.with_overrides(min_confidence=threshold), embedder=embedder)


def assert_verbatim(answer: Answer, articles: dict[int, Article]) -> None:
    for quote in answer.quotes:
        article = articles[quote.article_id]
        assert quote.text == article.text[quote.start : quote.end]
        assert (quote.article_number, quote.title, quote.url, quote.published) == (
            article.number,
            article.title,
            article.url,
            article.published,
        )


def test_cross_lingual_question_is_answered_from_the_german_article(
    stocked: tuple[Library, Article, Article],
) -> None:
    """The mission's example: an English question about a German article is answered with
    quotes from the German article, among those shown a sentence about Russia and Iran, each
    verbatim with its source."""
    library, seed, buses = stocked
    answer = library.ask(CHAT, "Who is mediating with Iran?")
    assert answer.found and not answer.library_empty
    shown = answer.quotes[: library.settings.max_quotes]
    assert all(q.article_id == seed.id and q.language == "de" for q in shown)
    assert any("Iran" in q.text and "Russland" in q.text for q in shown), shown
    assert_verbatim(answer, {seed.id: seed, buses.id: buses})


def test_quotes_come_best_first_with_bounded_scores(
    stocked: tuple[Library, Article, Article],
) -> None:
    """Quotes are ordered best first, carry scores in [0, 1], and there are never more than
    the configured number of candidates."""
    library, seed, buses = stocked
    for question in ["How often will the night buses run?", "Was sagte der Kremlsprecher?"]:
        answer = library.ask(CHAT, question)
        scores = [q.score for q in answer.quotes]
        assert scores == sorted(scores, reverse=True), question
        assert all(0.0 <= s <= 1.0 for s in scores), question
        assert 0 < len(answer.quotes) <= library.settings.max_candidates
        assert_verbatim(answer, {seed.id: seed, buses.id: buses})


def test_english_question_about_the_english_article(
    stocked: tuple[Library, Article, Article],
) -> None:
    """A plain same-language question is answered from the article it is about."""
    library, _seed, buses = stocked
    answer = library.ask(CHAT, "How much will the night bus pilot cost?")
    assert answer.found
    assert answer.quotes[0].article_id == buses.id
    assert "£1.2 million" in answer.quotes[0].text


def test_confidence_threshold_is_configurable(
    stocked: tuple[Library, Article, Article], embedder: Embedder
) -> None:
    """Below the configured confidence the library says it has no answer and quotes nothing;
    a threshold of 0 answers everything."""
    library, _seed, _buses = stocked
    question = "Who is mediating with Iran?"
    impossible = with_threshold(library, embedder, 1.01)
    refused = impossible.ask(CHAT, question)
    assert not refused.found and refused.as_dict()["quotes"] == []
    assert refused.page(0, 3) == []
    everything = with_threshold(library, embedder, 0.0)
    assert everything.ask(CHAT, "Wie backe ich einen Apfelkuchen?").found
    impossible.close()
    everything.close()


@pytest.mark.parametrize(
    "question", ["What is the recipe for apple pie?", "Wer gewann die Fussball-WM 1954?"]
)
def test_unrelated_question_gets_no_answer(
    stocked: tuple[Library, Article, Article], question: str
) -> None:
    """A question neither article is about is answered with "no answer", not with a quote."""
    library, _seed, _buses = stocked
    answer = library.ask(CHAT, question)
    assert not answer.found
    assert answer.as_dict()["quotes"] == []


def test_library_data_is_where_the_settings_say(
    stocked: tuple[Library, Article, Article], engine: str
) -> None:
    """The embedded engine keeps the database and the vector files in the configured data
    folder; with a database URL, everything is in that database and nothing in the folder."""
    library, seed, buses = stocked
    data = Path(library.settings.data_dir)
    assert (data / "library.sqlite3").is_file() is (engine == "sqlite")
    assert bool(list(data.rglob("*.faiss"))) is (engine == "sqlite")
    vectors = library.storage.vector_count(CHAT, library.embedder.model_key)
    assert vectors == seed.sentence_count + buses.sentence_count


TRAM_ARTICLE = (
    "City council approves the tram line\n"
    "The city council met on Tuesday to discuss the new tram line. Several ways to pay for the"
    " line were put forward by the finance committee. These include a higher parking fee and a"
    " tax on hotel stays. The tram is to open in 2028.\n"
    "It was the first vote on the project since the election."
)


@pytest.mark.parametrize("join", [True, False])
def test_a_sentence_that_refers_back_is_quoted_with_the_one_before(
    settings: Settings, embedder: Embedder, join: bool
) -> None:
    """ "These include ..." means nothing alone: by default the quote that holds it holds the
    sentence it points back to, verbatim and within its paragraph, with whole words marked.
    `join_referring_sentences = false` quotes single sentences."""
    library = Library(settings.with_overrides(join_referring_sentences=join), embedder=embedder)
    article = library.add_text(CHAT, TRAM_ARTICLE)
    answer = library.ask(CHAT, "How could the tram line be paid for?")
    assert answer.found
    assert_verbatim(answer, {article.id: article})
    holding = [q for q in answer.quotes if "These include" in q.text]
    assert len(holding) == 1
    assert ("Several ways to pay" in holding[0].text) is join
    assert not any("2028" in q.text and "It was the first vote" in q.text for q in answer.quotes)
    first = answer.quotes[0]
    marked = [first.text[start:end] for start, end in first.highlights]
    assert marked and all(word.strip() and word.isalpha() for word in marked), marked
    library.close()


def hand_made(text: str, language: str = "de") -> tuple[Article, list[Sentence]]:
    """An article whose sentences end at ". " and whose paragraphs are its lines."""
    sentences: list[Sentence] = []
    offset = 0
    for paragraph, line in enumerate(text.split("\n")):
        for match in re.finditer(r"[^.\s][^.]*\.", line):
            start, end = offset + match.start(), offset + match.end()
            sentences.append(
                Sentence(len(sentences) + 100, 1, len(sentences), paragraph, start, end)
            )
        offset += len(line) + 1
    article = Article(
        id=1, chat_id=CHAT, number=1, title="T", text=text, language=language, source="text",
        url=None, canonical_url=None, author=None, published=None, added_at="", added_by=None,
        text_hash="", sentence_count=len(sentences),
    )  # fmt: skip
    return article, sentences


def test_which_neighbours_a_quote_takes_in() -> None:
    """The next sentence when it points back, the previous one when the sentence itself
    does; never across a paragraph, never a sentence already quoted, never beyond the
    length limit. The words marked in each quoted sentence stay marked in the quote."""
    article, s = hand_made("Vorweg. Russland hilft. Dabei geht es um Iran. Ende.\nEr ging.")
    assert [article.text[x.start : x.end] for x in s] == [
        "Vorweg.",
        "Russland hilft.",
        "Dabei geht es um Iran.",
        "Ende.",
        "Er ging.",
    ]
    assert quoted_sentences(article, s, s[1], set()) == [s[1], s[2]]
    assert quoted_sentences(article, s, s[2], set()) == [s[1], s[2]]
    assert quoted_sentences(article, s, s[3], set()) == [s[3]]
    assert quoted_sentences(article, s, s[4], set()) == [s[4]]
    assert quoted_sentences(article, s, s[2], {s[1].id}) == [s[2]]

    quoted = [s[1], s[2]]
    marks = {s[1].id: ((0, 8),), s[2].id: ((0, 5), (17, 21)), s[3].id: ((0, 4),)}
    quote = Quote.of(article, s[2], 0.7, quoted, quote_highlights(quoted, marks))
    assert quote.text == "Russland hilft. Dabei geht es um Iran."
    assert quote.text == article.text[quote.start : quote.end]
    assert [quote.text[start:end] for start, end in quote.highlights] == [
        "Russland",
        "Dabei",
        "Iran",
    ]

    long_article, t = hand_made("Vorweg " + "sehr " * MAX_JOINED_CHARS + "lang. Dabei nichts.")
    assert quoted_sentences(long_article, t, t[1], set()) == [t[1]]
