"""Pasted and scraped news text: the headline, author and date are found, and the page's
furniture (captions with photo credits, image counters, labels, bylines) is never quoted."""

from __future__ import annotations

import pytest

from index.config import Settings
from index.ingest.extract import ArticleExtractor
from index.library import Library
from tests.conftest import SEED_ARTICLE, fixture_bytes

CHAT = "readers"
DEBRIS = ("Foto:", "Photo:", "Bild:", "1/6", "2/5", "Auf einen Blick", "Redaktor", "Teilen")

# Written for these tests: the same kinds of debris as the seed, in English and German.
ENGLISH = """Share | Print

Harbour ferry returns after winter repairs
By Jane Smith, Transport Correspondent
Published 3 March 2025, 14:30

2/5 The ferry Albatross leaves the harbour on Monday morning. Photo: Northern Ledger/J. Smith

The Albatross returned to service on Monday after four months of repairs at the Cove shipyard.
The crossing to Northport takes twenty minutes again, and the first ferry leaves at 6.15.

Advertisement

The council said the repairs cost 1.2 million pounds, half of it for new engines."""

GERMAN = """Artikel teilen

Neue Fähre für den Zürichsee
Von Anna Keller
12.03.2025, 14:30 Uhr

Die neue Fähre «Meilen» bei ihrer ersten Fahrt am Montag. Bild: Keystone/Ennio Leanza

Die Schifffahrtsgesellschaft hat am Montag eine neue Fähre in Betrieb genommen, die zwischen
Horgen und Meilen verkehrt. Sie kann bis zu sechzig Autos transportieren.

Teilen Drucken

Die Überfahrt dauert zehn Minuten, wie die Gesellschaft mitteilte."""


@pytest.fixture
def extractor(settings: Settings) -> ArticleExtractor:
    return ArticleExtractor(settings)


def test_seed_article_gets_its_headline_author_and_date(library: Library) -> None:
    """The seed, added as a file, is titled by its headline (not the photo caption above it),
    has its author and month, and no quote of it holds the caption, counter, label or byline."""
    article = library.add_file(CHAT, "artikel.txt", fixture_bytes(SEED_ARTICLE))
    assert article.title == "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"
    assert (article.author, article.published) == ("Marian Nadler", "2025-03")
    assert article.text.startswith("Russland bietet Trump Hilfe bei Kommunikation mit Iran an\n")
    for debris in (*DEBRIS, "keystone-sda", "Marian Nadler"):
        assert debris not in article.text, debris
    assert "Russland hat sich bereiterklärt" in article.text
    quotes = library.ask(CHAT, "Wer hat Trump Hilfe mit dem Iran angeboten?").quotes
    assert quotes and all("Foto" not in q.text for q in quotes)


@pytest.mark.parametrize(
    ("text", "title", "author", "published", "kept"),
    [
        (
            ENGLISH,
            "Harbour ferry returns after winter repairs",
            "Jane Smith",
            "2025-03-03",
            ("The Albatross returned to service", "half of it for new engines."),
        ),
        (
            GERMAN,
            "Neue Fähre für den Zürichsee",
            "Anna Keller",
            "2025-03-12",
            ("Die Schifffahrtsgesellschaft hat am Montag", "wie die Gesellschaft mitteilte."),
        ),
    ],
)
def test_pasted_news_text_loses_its_debris(
    extractor: ArticleExtractor,
    text: str,
    title: str,
    author: str,
    published: str,
    kept: tuple[str, ...],
) -> None:
    """English and German pasted pages: headline, byline and date become the metadata; share
    and print labels, the advertisement label and the captioned photo are left out; the prose
    is all there."""
    draft = extractor.from_text(text)
    assert (draft.title, draft.author, draft.published) == (title, author, published)
    assert draft.text.startswith(title + "\n")
    for debris in (*DEBRIS, "Share", "Advertisement", "Albatross leaves", "Leanza", "14:30"):
        assert debris not in draft.text, debris
    for prose in kept:
        assert prose in draft.text


def test_prose_that_looks_like_debris_stays(extractor: ArticleExtractor) -> None:
    """Sentences that start like a byline or mention a photo, and a first line that is a
    sentence, are article text: nothing is dropped and the first line stays the title."""
    text = (
        "Von Basel nach Liestal fährt ab Juni ein neuer Nachtbus.\n"
        "By the end of the year the council will decide on a second line.\n"
        "Das Foto der ersten Fahrt zeigt den Bus am Bahnhof Liestal, kurz vor Mitternacht.\n"
        "Am 3. März 2025 stimmte der Rat dem Versuch zu.\n"
        "3/4 der Befragten wünschen sich einen Takt von 30 Minuten."
    )
    draft = extractor.from_text(text)
    assert draft.text == text
    assert draft.title == "Von Basel nach Liestal fährt ab Juni ein neuer Nachtbus."
    assert (draft.author, draft.published) == (None, None)
