"""Each piece of the contextual ranking, on small hand-made articles: cross-language matching
without shared words, a German question decided by its telling word, context from the
passage, follow-ups, repeated sentences, and the word statistics behind them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from index.answer.query import Query, _words
from index.answer.retrieve import WordRarity, _highlights, _match, _spread_over_words
from index.config import Settings
from index.embeddings import Embedder
from index.library import Library
from index.records import Answer, TokenVectors

CHAT = "ranking"

MUSEUM = (
    "Stadtmuseum öffnet nach Umbau\n"
    "Das Stadtmuseum bleibt bis Ende Februar wegen Umbauarbeiten geschlossen. "
    "Die Eintrittspreise steigen leicht, für Kinder bleibt der Besuch gratis. "
    "Im neuen Anbau entsteht ein Café mit Blick auf den Fluss. "
    "Der Direktor freut sich vor allem auf die Sammlung alter Landkarten."
)
AMAZON = (
    "Der Amazonas-Regenwald\n"
    "Der Regenwald bedeckt den grössten Teil des Amazonasbeckens in Südamerika. "
    "Diese Region umfasst Gebiete, die zu neun Nationen gehören. "
    "Die Artenvielfalt ist enorm, Forscher entdecken jedes Jahr neue Pflanzen. "
    "Seit Jahrzehnten schrumpft die Waldfläche durch Rodungen."
)

pytestmark = pytest.mark.both_engines


@pytest.fixture
def library(settings: Settings, embedder: Embedder) -> Iterator[Library]:
    """An empty library that quotes single sentences, so a quote is exactly what was ranked
    (by default a sentence is quoted with a neighbour it refers to)."""
    lib = Library(settings.with_overrides(join_referring_sentences=False), embedder=embedder)
    yield lib
    lib.close()


def top(answer: Answer) -> str:
    assert answer.quotes, "expected quotes"
    return answer.quotes[0].text


def test_english_question_finds_german_sentence_without_any_shared_word(library: Library) -> None:
    """Cross-language: no word of the question occurs in the answer, the meaning does."""
    library.add_text(CHAT, MUSEUM)
    assert top(library.ask(CHAT, "Will tickets cost more?")).startswith("Die Eintrittspreise")
    assert "Café" in top(library.ask(CHAT, "What is being built in the new extension?"))


def test_german_question_is_decided_by_its_telling_word(library: Library) -> None:
    """Same language: "Nationen" is rare in the library and decides between sentences that
    are all about the Amazon region."""
    library.add_text(CHAT, AMAZON)
    answer = library.ask(CHAT, "Zu wie vielen Nationen gehört die Region?")
    assert top(answer) == "Diese Region umfasst Gebiete, die zu neun Nationen gehören."


def test_a_sentence_that_needs_its_context_scores_higher_in_that_context(
    library: Library,
) -> None:
    """The same sentence, once after the sentence that says who "he" is and once elsewhere:
    read in its passage, it matches a question about the Kremlin spokesman better."""
    said = "Er sagte, Moskau sei bereit, alles in seiner Macht Stehende zu tun."
    library.add_text(
        CHAT,
        "Gespräche über Iran\nKremlsprecher Dimitri Peskow äusserte sich am Montag. " + said,
    )
    library.add_text(
        "other",
        "Neue Buslinie in Bern\nDie Verkehrsbetriebe eröffnen eine neue Linie. " + said,
    )
    question = "What did the Kremlin spokesman say?"

    def score_of_said(chat: str) -> float:
        return next(q.score for q in library.ask(chat, question).quotes if q.text == said)

    assert score_of_said(CHAT) > score_of_said("other")


def test_follow_up_prefers_the_earlier_answers_article(library: Library) -> None:
    """ "What did the spokesperson say?" is ambiguous with two stories in the library; as a
    follow-up to a question about one of them, that story's spokesperson comes first."""
    library.add_text(
        CHAT,
        "Bahnstreik legt Fernverkehr lahm\n"
        "Die Lokführergewerkschaft hat für Donnerstag einen Streik angekündigt. "
        "Eine Sprecherin der Bahn sagte, man bedaure die Unannehmlichkeiten für die Reisenden.",
    )
    library.add_text(
        CHAT,
        "Russland bietet Vermittlung mit Iran an\n"
        "Russland will den USA bei Gesprächen mit dem Iran helfen. "
        "Ein Sprecher des Kremls sagte, Moskau sei zu allem bereit, um dies zu erreichen.",
    )
    strike = library.ask(CHAT, "When is the train strike?")
    library.memory.record(CHAT, 1, strike)
    iran = library.ask(CHAT, "Who offers to help with Iran?")
    library.memory.record(CHAT, 2, iran)
    follow_strike = library.ask(CHAT, "What did the spokesperson say?", replied_to=1)
    follow_iran = library.ask(CHAT, "What did the spokesperson say?", replied_to=2)
    assert "Bahn" in top(follow_strike)
    assert "Kreml" in top(follow_iran)
    assert follow_iran.context == iran.question


def test_an_implicit_follow_up_stands_alone_when_it_has_its_own_answer(library: Library) -> None:
    """In a private chat the next question is read alone unless it leans on the last one."""
    library.add_text(CHAT, AMAZON)
    library.add_text(CHAT, MUSEUM)
    first = library.ask(CHAT, "Zu wie vielen Nationen gehört die Region?")
    library.memory.record(CHAT, 1, first)
    alone = library.ask(CHAT, "Steigen die Eintrittspreise im Stadtmuseum?", private=True)
    assert alone.context == ""
    assert top(alone).startswith("Die Eintrittspreise")
    leaning = library.ask(CHAT, "Und was bedroht ihn?", private=True)
    assert leaning.context == first.question


def test_the_same_sentence_in_two_articles_is_quoted_once(library: Library) -> None:
    """Two copies of a story differ in their first line; their shared sentences appear once."""
    library.add_text(CHAT, AMAZON)
    library.add_text(CHAT, "Agenturmeldung: " + AMAZON)
    texts = [q.text for q in library.ask(CHAT, "How many nations share the region?").quotes]
    assert len(texts) == len(set(texts))


def test_question_words_and_punctuation_carry_no_weight(library: Library) -> None:
    """Rarity weights come from the chat's own sentences; question words and punctuation are
    not content, so they never decide a match."""
    library.add_text(CHAT, AMAZON)
    query = library.embedder.encode_query("Wie viele Nationen?")
    content = {
        "Wie viele Nationen?"[start:end]: flag
        for (start, end), flag in zip(query.tokens.spans, query.tokens.content, strict=True)
    }
    assert not content["Wie"] and not content["?"]
    assert any(flag for token, flag in content.items() if token.startswith("Nation"))
    rarity = WordRarity(library.storage, library.embedder.model_key)
    weights = rarity.weights(CHAT, query.tokens.ids)
    assert weights.min() > 0


def test_sentences_keep_token_vectors_for_their_words_only(library: Library) -> None:
    """Punctuation and bare spaces are never what a question's words should match, so no token
    vector is kept for them; every word of a sentence keeps its tokens."""
    article = library.add_text(
        CHAT, "Die Kosten des neuen Tunnels: 3,5 Mio. Franken (Stand 2024) – so sagt es der Bund!"
    )
    sentences = library.storage.sentences_of(article.id)
    tokens = library.storage.sentence_tokens(library.embedder.model_key, [s.id for s in sentences])
    for sentence in sentences:
        text = article.text[sentence.start : sentence.end]
        pieces = [text[a:b] for a, b in tokens[sentence.id].spans]
        assert pieces and all(any(c.isalnum() for c in piece) for piece in pieces)
        covered = {i for a, b in tokens[sentence.id].spans for i in range(a, b)}
        assert all(i in covered for i, c in enumerate(text) if c.isalnum())


def _tokens(vectors: list[list[float]], spans: list[tuple[int, int]]) -> TokenVectors:
    matrix = np.array(vectors, dtype=np.float16)
    return TokenVectors(
        ids=np.arange(len(vectors), dtype=np.int32),
        spans=np.array(spans, dtype=np.int32),
        vectors=matrix,
        content=np.ones(len(vectors), dtype=bool),
    )


def test_match_is_the_weighted_mean_of_each_question_tokens_best_similarity() -> None:
    """Late interaction by hand: two question tokens, the second counting three times."""
    question = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    sentence = _tokens([[1.0, 0.0], [0.6, 0.8]], [(0, 3), (4, 9)])
    score, best = _match(question, np.array([1.0, 3.0], dtype=np.float32), sentence)
    assert best.tolist() == [0, 1]
    assert abs(score - (1.0 * 1 + 0.8 * 3) / 4) < 1e-3


def test_highlights_mark_only_telling_words_matched_closely() -> None:
    """The rarer question word that matches well is bold; a common one is not."""
    question = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    sentence = _tokens([[1.0, 0.0], [0.0, 1.0]], [(0, 4), (5, 12)])
    spans = _highlights(question, np.array([0.5, 2.0], dtype=np.float32), sentence)
    assert spans == ((5, 12),)


def test_a_word_cut_into_several_tokens_counts_once(library: Library) -> None:
    """ "spokesperson" is three tokens; together they weigh as much as its rarest token, so a
    long word counts no more than a short one."""
    question = "What did the spokesperson say?"
    tokens = library.embedder.encode_query(question).tokens
    pieces = [question[start:end] for start, end in tokens.spans]
    words = _words(tokens)
    spokesperson = [words[i] for i, piece in enumerate(pieces) if piece and piece in "spokesperson"]
    assert len(spokesperson) > 1 and len(set(spokesperson)) == 1
    assert len(set(words[tokens.content].tolist())) == 3  # the, spokesperson, say

    weights = np.array([1.0, 3.0, 2.0, 2.0], dtype=np.float32)
    spread = _spread_over_words(weights, np.array([0, 0, 0, 1]))
    assert spread.tolist() == [1.0, 1.0, 1.0, 2.0]


def test_a_long_earlier_question_weighs_a_fixed_share_of_a_follow_up(library: Library) -> None:
    """However many words the earlier question has, together they weigh half the follow-up."""
    follow_up = library.embedder.encode_query("The spokesperson?")
    for earlier in ["Who helps?", "Who offers to help with the talks between Iran and the USA?"]:
        query = Query.of(follow_up, "en")
        followed = query.with_context(library.embedder.encode_query(earlier), 0.5, frozenset())
        own = len(query.tokens.ids)
        context_words = set(followed.words[own:][followed.tokens.content[own:]].tolist())
        context_weight = followed.emphasis[own] * len(context_words)
        assert abs(context_weight - 0.5 * 2) < 1e-6  # "The", "spokesperson"
