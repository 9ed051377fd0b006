"""Sentence splitting: the places where rule-based splitters break German (and English) news
text, and exact character offsets, since every quote is a span of the stored text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from index.answer.quote import refers_back
from index.config import load_settings
from index.embeddings import Embedder
from index.ingest.split import SentenceSplitter
from index.language import detectable_languages
from index.library import Library
from index.records import ArticleDraft
from tests.conftest import SEED_ARTICLE, fixture_text, settings_environ


@pytest.fixture(scope="module")
def splitter() -> SentenceSplitter:
    return SentenceSplitter(load_settings(settings_environ()))


def sentences(splitter: SentenceSplitter, text: str, language: str) -> list[str]:
    """The sentences as the spans cut them out of `text`, checking the spans on the way."""
    spans = splitter.split(text, language)
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        piece = text[span.start : span.end]
        assert piece == piece.strip()
        previous_end = span.end
    return [text[s.start : s.end] for s in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Im 18. und 19. Jahrhundert wuchs Basel stark. Danach kam der Niedergang.",
            ["Im 18. und 19. Jahrhundert wuchs Basel stark.", "Danach kam der Niedergang."],
        ),
        (
            "Die Studie von Müller et al. zeigt einen klaren Effekt. Sie erschien 2020.",
            ["Die Studie von Müller et al. zeigt einen klaren Effekt.", "Sie erschien 2020."],
        ),
        (
            "Das Treffen fand am 3. Januar in Bern statt. Es dauerte drei Stunden.",
            ["Das Treffen fand am 3. Januar in Bern statt.", "Es dauerte drei Stunden."],
        ),
        (
            "Am 24. Februar 2022 begann die Invasion. Das war ein Donnerstag.",
            ["Am 24. Februar 2022 begann die Invasion.", "Das war ein Donnerstag."],
        ),
        (
            "Dr. Keller sprach u.a. über Steuern, z.B. die Mehrwertsteuer. Alle applaudierten.",
            [
                "Dr. Keller sprach u.a. über Steuern, z.B. die Mehrwertsteuer.",
                "Alle applaudierten.",
            ],
        ),
        (
            "Laut Prof. Dr. Schmidt kamen ca. 300 Gäste, d.h. mehr als erwartet. Es regnete.",
            ["Laut Prof. Dr. Schmidt kamen ca. 300 Gäste, d.h. mehr als erwartet.", "Es regnete."],
        ),
        (
            "Der Sprecher sagte: «Wir sind bereit. Alles ist gut.» Dann ging er.",
            ["Der Sprecher sagte: «Wir sind bereit. Alles ist gut.»", "Dann ging er."],
        ),
        (
            "Sie sagte: „Wir erwarten einen Rekord. Am Sonntag kamen 9000 Gäste.“ Es war heiß.",
            [
                "Sie sagte: „Wir erwarten einen Rekord. Am Sonntag kamen 9000 Gäste.“",
                "Es war heiß.",
            ],
        ),
        (
            "Das Gesetz gilt seit 2022. Danach stiegen die Mieten.",
            ["Das Gesetz gilt seit 2022.", "Danach stiegen die Mieten."],
        ),
        (
            "Die Invasion begann am 24. Februar 2022. Das war ein Donnerstag.",
            ["Die Invasion begann am 24. Februar 2022.", "Das war ein Donnerstag."],
        ),
        (
            "Der FC Basel gewann 3:1. Die Fans feierten bis in die Nacht.",
            ["Der FC Basel gewann 3:1.", "Die Fans feierten bis in die Nacht."],
        ),
        (
            "Der Sprecher sagte: »Wir sind bereit. Alles ist gut.« Dann ging er.",
            ["Der Sprecher sagte: »Wir sind bereit. Alles ist gut.«", "Dann ging er."],
        ),
        (
            "Sie sagte: “Wir erwarten einen Rekord. Es wird heiß.” Dann ging sie.",
            ["Sie sagte: “Wir erwarten einen Rekord. Es wird heiß.”", "Dann ging sie."],
        ),
        (
            "Das Edikt galt bis zur Herrschaft von Ludwig XIV. weiter. Dann fiel es.",
            ["Das Edikt galt bis zur Herrschaft von Ludwig XIV. weiter.", "Dann fiel es."],
        ),
    ],
    ids=[
        "centuries",
        "et-al",
        "ordinal-date",
        "date-with-year",
        "abbrev",
        "titles",
        "guillemets",
        "low-high-quotes",
        "year-at-the-end",
        "date-with-year-at-the-end",
        "score-at-the-end",
        "reversed-guillemets",
        "english-quotes-in-german",
        "roman-numeral",
    ],
)
def test_german_pitfalls(splitter: SentenceSplitter, text: str, expected: list[str]) -> None:
    """Ordinals, dates, abbreviations, Roman numerals and quotations spanning sentences (in any
    of the three German styles) do not end a German sentence, while a year or a score before
    the full stop does."""
    assert sentences(splitter, text, "de") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith met Mr. Jones in Washington. They discussed the U.S. budget.",
            ["Dr. Smith met Mr. Jones in Washington.", "They discussed the U.S. budget."],
        ),
        (
            "The study by Miller et al. found a clear effect. It was published in 2020.",
            ["The study by Miller et al. found a clear effect.", "It was published in 2020."],
        ),
        (
            "She said: “We are ready. Everything is fine.” Then she left.",
            ["She said: “We are ready. Everything is fine.”", "Then she left."],
        ),
        (
            "Buses run between midnight and 5 a.m. on Fridays. Tickets cost £2.",
            ["Buses run between midnight and 5 a.m. on Fridays.", "Tickets cost £2."],
        ),
        (
            "Classes such as RP, BPP, etc., may collapse. Nobody knows.",
            ["Classes such as RP, BPP, etc., may collapse.", "Nobody knows."],
        ),
        (
            "Sales rose. iPhone sales fell. eBay grew.",
            ["Sales rose.", "iPhone sales fell.", "eBay grew."],
        ),
    ],
    ids=["titles", "et-al", "quote", "a.m.", "etc.", "lower-case-names"],
)
def test_english_pitfalls(splitter: SentenceSplitter, text: str, expected: list[str]) -> None:
    """The same pitfalls in English text."""
    assert sentences(splitter, text, "en") == expected


def test_line_breaks_end_sentences_and_count_paragraphs(splitter: SentenceSplitter) -> None:
    """A headline without a full stop is a sentence of its own, and each line is a paragraph."""
    text = "Freibäder bleiben länger offen\n\nDie Stadt reagiert auf die Hitze. Es wird heiß.\nEnde"
    spans = splitter.split(text, "de")
    assert [text[s.start : s.end] for s in spans] == [
        "Freibäder bleiben länger offen",
        "Die Stadt reagiert auf die Hitze.",
        "Es wird heiß.",
        "Ende",
    ]
    assert [s.paragraph for s in spans] == [0, 1, 1, 2]


def test_offsets_are_exact_with_surrounding_white_space(splitter: SentenceSplitter) -> None:
    """Spans leave out surrounding spaces, tabs and blank lines, and point exactly at the
    sentence in the original text."""
    text = "\n\n   Erster Satz hier.   Zweiter Satz dort.\t\n \n\tDritter Satz.  \n"
    expected = ["Erster Satz hier.", "Zweiter Satz dort.", "Dritter Satz."]
    spans = splitter.split(text, "de")
    assert [(s.start, s.end) for s in spans] == [
        (text.index(e), text.index(e) + len(e)) for e in expected
    ]
    assert [s.paragraph for s in spans] == [0, 0, 1]


def test_seed_article_keeps_its_quotation_together(splitter: SentenceSplitter) -> None:
    """In the seed article, the Kremlin spokesman's quotation stays one sentence, and the
    sentences rebuild the article's text apart from white space."""
    text = fixture_text(SEED_ARTICLE)
    found = sentences(splitter, text, "de")
    assert any(
        s.startswith("Aber: «Russland glaubt") and s.endswith("um dies zu erreichen».")
        for s in found
    )
    assert "".join(found).replace(" ", "") == "".join(text.split())


def test_unsupported_language_falls_back_to_generic_rules(splitter: SentenceSplitter) -> None:
    """A language spaCy cannot split without extra packages (Japanese) still gets sentences,
    ended by the full-width full stop although no space follows it."""
    text = "今日は晴れです。明日は雨が降るでしょう。"
    assert sentences(splitter, text, "ja") == ["今日は晴れです。", "明日は雨が降るでしょう。"]


def test_chinese_sentences_end_at_their_full_stops(splitter: SentenceSplitter) -> None:
    text = "伊朗外长周三抵达莫斯科。双方讨论了核问题！会谈持续了三个小时。"
    expected = ["伊朗外长周三抵达莫斯科。", "双方讨论了核问题！", "会谈持续了三个小时。"]
    assert sentences(splitter, text, "zh") == expected


# Several scripts, so each language's rules meet text of their own kind.
_MIXED_SCRIPTS = (
    "The talks in Moscow lasted three hours, et al. reported. Die Gespräche dauerten drei "
    "Stunden. 伊朗外长周三抵达莫斯科。会谈持续了三个小时。今日は晴れです。"
    "استمرت المحادثات ثلاث ساعات. बातचीत तीन घंटे चली। การเจรจาใช้เวลาสามชั่วโมง\n"
    "Переговоры длились три часа. Οι συνομιλίες κράτησαν τρεις ώρες."
)


@pytest.fixture(scope="module")
def polyglot(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Library]:
    """One library for all languages: what their articles share is encoded only once."""
    settings = load_settings(settings_environ())
    library = Library(
        settings.with_overrides(data_dir=tmp_path_factory.mktemp("polyglot")), embedder
    )
    yield library
    library.close()


@pytest.mark.parametrize("language", sorted(detectable_languages()))
def test_every_detectable_language_can_be_added(polyglot: Library, language: str) -> None:
    """Whatever language the detector names, the article is split and stored."""
    text = f"Talks ({language})\n\n{_MIXED_SCRIPTS}"
    draft = ArticleDraft(title="Talks", text=text, language=language, source="text")
    article = polyglot.add_draft("readers", draft)
    assert article.language == language and article.sentence_count >= 3


def test_context_returns_neighbouring_sentences_verbatim(library: Library) -> None:
    """The sentences around a quote come back in reading order, each exactly as in the text."""
    article = library.add_text("readers", fixture_text(SEED_ARTICLE))
    quote = library.ask("readers", "Was sagte Kremlsprecher Peskow?").quotes[0]
    around = library.context("readers", quote, around=2)
    assert quote.sentence_id in [q.sentence_id for q in around]
    positions = [q.position for q in around]
    assert positions == sorted(positions) and len(positions) <= 5
    for neighbour in around:
        assert neighbour.text == article.text[neighbour.start : neighbour.end]


@pytest.mark.parametrize(
    ("sentence", "language", "expected"),
    [
        ("These include the Miller–Rabin test.", "en", True),
        ("During this period, prices rose.", "en", True),
        ("Gradually they intermarried with their neighbours.", "en", True),
        ("The council met on Tuesday.", "en", False),
        ("Cities such as Bern and Basel voted no.", "en", False),
        ("Dabei geht es um das Atomprogramm.", "de", True),
        ("Anschliessend komponierte er Musik.", "de", True),
        ("Die Regierung in Bern schweigt.", "de", False),
        ("Russland hat sich bereiterklärt.", "de", False),
        ("Il a dit non.", "fr", False),
    ],
)
def test_a_sentence_that_opens_by_pointing_back(
    sentence: str, language: str, expected: bool
) -> None:
    """A pronoun or demonstrative among the first words means the sentence leans on the one
    before it; such a sentence is quoted together with that one."""
    assert refers_back(sentence, language) is expected


def test_an_endless_sentence_is_cut_after_clauses_then_between_words(
    splitter: SentenceSplitter,
) -> None:
    """A "sentence" of 299,000 characters is never stored whole: it becomes pieces of at most
    `max_sentence_chars`, cut after a clause where there is one, else between words, else at
    the bound, and together they hold every character of it."""
    limit = splitter.settings.max_sentence_chars
    clauses = "die Regierung bestätigte das Treffen, " * 4000
    words = "und noch ein Wort " * 7000
    text = clauses + words + "x" * 21_000
    assert len(text) == 299_000
    pieces = sentences(splitter, text, "de")
    assert all(len(piece) <= limit for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")  # nothing left out
    assert all(piece.endswith("Treffen,") for piece in pieces[:100])
    middle = [piece for piece in pieces if piece.startswith("und noch")][:-1]
    assert middle and all(piece.split()[-1] in ("und", "noch", "ein", "Wort") for piece in middle)
    assert pieces[-20:-1] == ["x" * limit] * 19  # no space: cut at the bound


def test_quotes_of_an_endless_sentence_are_bounded_and_verbatim(library: Library) -> None:
    text = "Die Gemeinde meldete am Montag, " + "dass der Fluss weiter stieg, " * 200
    article = library.add_text("floods", text + "und die Brücke gesperrt wurde.")
    answer = library.ask("floods", "Was meldete die Gemeinde?")
    limit = library.settings.max_sentence_chars
    assert article.sentence_count > 1
    assert answer.quotes and all(
        q.text == article.text[q.start : q.end] and len(q.text) <= 2 * limit for q in answer.quotes
    )
