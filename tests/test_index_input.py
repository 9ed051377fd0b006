"""Pasted text and files (.txt, .md, .html): titles, languages, and every kind of bad input,
each refused with a clear message while the library stays as it was."""

from __future__ import annotations

import random
import re
import string

import pytest

from index.embeddings import Embedder
from index.errors import _SENTENCES, ArticleRejected
from index.library import Library
from tests.conftest import SEED_ARTICLE, fixture_bytes, library_state

CHAT = "readers"


def refused_file(library: Library, name: str, data: bytes) -> str:
    """Adds a file, expects a refusal that leaves the library as it was; returns the message."""
    before = library_state(library, CHAT)
    with pytest.raises(ArticleRejected) as refusal:
        library.add_file(CHAT, name, data)
    assert library_state(library, CHAT) == before
    return str(refusal.value)


def refused_text(library: Library, text: str) -> str:
    before = library_state(library, CHAT)
    with pytest.raises(ArticleRejected) as refusal:
        library.add_text(CHAT, text)
    assert library_state(library, CHAT) == before
    return str(refusal.value)


# ---- accepted ---------------------------------------------------------------------------------


def test_pasted_text_takes_its_title_from_the_first_line(library: Library) -> None:
    """Pasted text is titled by its first line and its language is detected."""
    article = library.add_text(
        CHAT,
        "\n  Night buses for Leeds  \nLeeds City Council has approved a six-month trial of "
        "night buses. Buses will run every 30 minutes on Fridays and Saturdays.",
    )
    assert (article.title, article.language, article.source) == (
        "Night buses for Leeds",
        "en",
        "text",
    )
    assert article.text.startswith("Night buses for Leeds\nLeeds City Council")
    assert article.url is None


def test_text_file(library: Library) -> None:
    """A .txt file (the seed article) becomes a German article titled by its headline."""
    article = library.add_file(CHAT, "artikel.txt", fixture_bytes(SEED_ARTICLE))
    assert article.title == "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"
    assert article.language == "de" and article.source == "file"
    assert article.sentence_count >= 15


def test_markdown_file_title_without_the_heading_mark(library: Library) -> None:
    """A Markdown file is titled by its first heading, without the "#"."""
    article = library.add_file(CHAT, "Briefing.MD", fixture_bytes("briefing.md"))
    assert article.title == "Wasserstand des Rheins sinkt auf Rekordtief"
    assert article.language == "de"


def test_markdown_is_stored_and_quoted_as_the_reader_sees_it(library: Library) -> None:
    """Stars, heading marks and link targets are not part of the article or its quotes."""
    article = library.add_file(CHAT, "briefing.md", fixture_bytes("briefing.md"))
    assert "**" not in article.text and "#" not in article.text
    assert "Folgen für die Industrie: Chemiefirmen" in article.text


def test_hard_wrapped_text_keeps_its_sentences_whole(library: Library) -> None:
    """A text file wrapped at a fixed width: a sentence broken over two lines is one quote."""
    wrapped = (
        "Neue Fähre für den Zürichsee\n"
        "Die Schifffahrtsgesellschaft hat am Montag eine neue Fähre in Betrieb genommen, die\n"
        "zwischen Horgen und Meilen verkehrt und bis zu sechzig Autos transportieren kann.\n"
        "Die Überfahrt dauert zehn Minuten."
    )
    library.add_text(CHAT, wrapped)
    answer = library.ask(CHAT, "Wie viele Autos kann die neue Fähre transportieren?")
    quote = answer.quotes[0].text
    assert quote.startswith("Die Schifffahrtsgesellschaft") and quote.endswith(
        "transportieren kann."
    )


def test_html_file_title_from_the_title_element(library: Library) -> None:
    """An .html file is titled by its <title> and stored as clean text without markup."""
    article = library.add_file(CHAT, "ferry.html", fixture_bytes("saved_page.html"))
    assert article.title == "Harbour ferry returns after winter repairs"
    assert article.language == "en"
    assert "<p>" not in article.text and "returned to service on Monday" in article.text


def test_html_news_page_as_a_file_drops_boilerplate(library: Library) -> None:
    """A saved news page (.htm) is extracted like a fetched one: no cookie banner, no footer."""
    article = library.add_file(CHAT, "saved.htm", fixture_bytes("de_article.html"))
    assert article.title == "Hitze in Basel: Freibäder bleiben bis 22 Uhr offen"
    assert "Cookies" not in article.text and "Impressum" not in article.text


def test_utf8_byte_order_mark_is_not_part_of_the_text(library: Library) -> None:
    """Files saved with a UTF-8 byte order mark are read without it."""
    article = library.add_file(CHAT, "bom.txt", b"\xef\xbb\xbf" + fixture_bytes("briefing.md"))
    assert article.text.startswith("# Wasserstand")


def test_utf16_text_file_from_windows(library: Library) -> None:
    """A text file saved as UTF-16 with a byte order mark ("Unicode" in Windows editors) is
    read as text, not refused as binary."""
    data = fixture_bytes("briefing.md").decode("utf-8").encode("utf-16")
    article = library.add_file(CHAT, "notepad.txt", data)
    assert article.title == "Wasserstand des Rheins sinkt auf Rekordtief"
    assert "Schifffahrtsbehörde" in article.text


# ---- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.pdf", "photo.jpg", "notes.docx", "archive.zip", "README"])
def test_unsupported_file_types(stocked_library: Library, name: str) -> None:
    """Files other than text, Markdown and HTML are refused, naming the accepted kinds."""
    message = refused_file(stocked_library, name, fixture_bytes("briefing.md"))
    assert name in message and ".txt, .md, .html" in message


def test_chinese_text_is_measured_in_characters(stocked_library: Library) -> None:
    """Chinese puts no spaces between words: a short news item is an article, and a text too
    short counts its characters."""
    article = stocked_library.add_text(
        CHAT, "伊朗外长周三抵达莫斯科。双方讨论了核问题，会谈持续了三个小时。"
    )
    assert article.language == "zh" and article.sentence_count == 2
    assert "(4 words;" in refused_text(stocked_library, "伊朗外长。")


@pytest.mark.parametrize("text", ["", "   \n\t  \n", "Trump trifft Putin", "... !!! ???"])
def test_empty_or_too_short_text(stocked_library: Library, text: str) -> None:
    """Empty text and a three-word text are refused, saying how many words are needed."""
    message = refused_text(stocked_library, text)
    assert "too short" in message and "at least 12" in message


def test_three_words_say_how_many_were_found(stocked_library: Library) -> None:
    """The refusal of a three-word text counts its words."""
    assert "(3 words;" in refused_text(stocked_library, "Trump trifft Putin")


def test_a_refusal_reads_in_german_with_the_same_details(stocked_library: Library) -> None:
    with pytest.raises(ArticleRejected) as refusal:
        stocked_library.add_text(CHAT, "Trump trifft Putin")
    assert refusal.value.message("de") == (
        "Der Text ist zu kurz für einen Artikel (3 Wörter; nötig sind mindestens 12)."
    )
    assert refusal.value.message("fr") == str(refusal.value)  # English for other languages


@pytest.mark.parametrize("reason", sorted(_SENTENCES))
def test_every_refusal_has_a_german_sentence_needing_no_other_details(reason: str) -> None:
    def blanks(sentence: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(sentence) if name}

    sentences = _SENTENCES[reason]
    assert set(sentences) == {"en", "de"}
    assert blanks(sentences["de"]) <= blanks(sentences["en"])


@pytest.mark.parametrize(
    "data",
    [
        random.Random(5).randbytes(4000),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
        "".join(chr(c) for c in range(1, 32) if chr(c) not in "\n\r\t").encode() * 40,
    ],
    ids=["random-bytes", "png", "control-characters"],
)
def test_binary_junk(stocked_library: Library, data: bytes) -> None:
    """Binary data sent as a text file is refused as binary (or as not UTF-8), not stored."""
    message = refused_file(stocked_library, "stdin.txt", data)
    assert "binary" in message or "not valid UTF-8" in message


def test_control_characters_are_never_stored(stocked_library: Library) -> None:
    """Control characters a text carries, also beyond its first 64 KB, are dropped: stored,
    they would make "sentences" that win questions made of emoji or punctuation."""
    filler = "Der Gemeinderat hat das Budget für das kommende Jahr genehmigt. " * 1100
    junk = "\x01\x02\x03\x1b[0m\x7f\x85 🎉 ?!\n"
    extractor = stocked_library.ingest.extractor
    for draft in (
        extractor.from_file("budget.txt", ("Budget\n" + filler + "\n" + junk + filler).encode()),
        extractor.from_text("Budget\n" + junk + "Die Sitzung dauerte bis Mitternacht. " * 5),
    ):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", draft.text)
        assert "🎉 ?!" in draft.text


def test_text_mostly_binary_after_its_first_64_kb_is_refused(stocked_library: Library) -> None:
    text = "Der Gemeinderat hat das Budget genehmigt. " * 1600
    message = refused_file(
        stocked_library, "budget.txt", text.encode() + bytes(range(1, 9)) * 20_000
    )
    assert "binary" in message


def test_invalid_utf8(stocked_library: Library) -> None:
    """Text in another encoding is refused with a hint to send UTF-8."""
    latin1 = (
        "Grüße aus Zürich: Die Straßenbahn fährt ab Montag wieder über die Quaibrücke, "
        "teilten die Verkehrsbetriebe mit."
    ).encode("latin-1")
    message = refused_file(stocked_library, "artikel.txt", latin1)
    assert "not valid UTF-8" in message


def test_article_over_the_length_limit(stocked_library: Library, embedder: Embedder) -> None:
    """A text longer than the configured limit is refused with both lengths."""
    strict = Library(
        stocked_library.settings.with_overrides(max_article_chars=1000), embedder=embedder
    )
    sentence = "Der Gemeinderat hat das Budget für das kommende Jahr ohne Gegenstimme genehmigt. "
    before = library_state(strict, CHAT)
    with pytest.raises(ArticleRejected, match=r"too long .*limit is 1,000"):
        strict.add_text(CHAT, "Budget genehmigt\n" + sentence * 20)
    assert library_state(strict, CHAT) == before
    strict.close()


def test_file_over_the_size_cap(stocked_library: Library, embedder: Embedder) -> None:
    """A file larger than the size cap is refused before it is read."""
    strict = Library(
        stocked_library.settings.with_overrides(fetch_max_bytes=1000), embedder=embedder
    )
    message = refused_file(strict, "big.txt", b"Ein Satz ueber den Rhein. " * 100)
    assert "larger than" in message
    strict.close()


def test_html_file_without_article_text(stocked_library: Library) -> None:
    """A saved JavaScript-only page is refused like the fetched one."""
    message = refused_file(stocked_library, "app.html", fixture_bytes("js_only.html"))
    assert "No article text found" in message
