"""Property test: whatever German or English text comes in, every quote the library returns is
exactly `article.text[start:end]`, and every sentence span lies inside the stored text."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from index.config import Settings
from index.embeddings import Embedder
from index.library import Library

FRAGMENTS = [
    "Russland hat sich bereiterklärt, bei der Kommunikation mit dem Iran zu helfen.",
    "Im 18. und 19. Jahrhundert wuchs die Stadt am Rhein sehr stark.",
    "Die Studie von Müller et al. zeigt einen deutlichen Effekt auf die Mieten.",
    "Das Treffen fand am 3. Januar in Bern statt und dauerte drei Stunden.",
    "Dr. Keller sprach u.a. über Steuern, z.B. über die Mehrwertsteuer.",
    "Die Kosten schätzt die Stadt auf rund 120'000 Franken pro Jahr.",
    "Weder der Kreml noch der Iran haben die Anfrage öffentlich bestätigt.",
    "Leeds City Council has approved a six-month trial of night buses.",
    "The pilot will cost £1.2 million and starts on 1 March.",
    "Buses will run every 30 minutes between midnight and 5 a.m. on Fridays.",
    "Dr. Amira Shah found that most passengers would be hospital staff.",
    "Opposition members questioned whether the numbers justify the cost.",
    "Ärger über Öffnungszeiten: Straßenbahn fährt künftig später.",
    "Preise stiegen um 3,5 % – so stark wie seit 1993 nicht mehr 📈.",
]
QUOTES = [("«", "»"), ("„", "“"), ("“", "”"), ('"', '"'), ("", "")]
SEPARATORS = [" ", "  ", "\n", "\n\n", " \n\t", "\r\n", "\t", "\n   \n"]
# Characters that cleaning changes or removes: soft hyphen, decomposed umlaut, no-break space.
NOISE = ["", "\u00ad", "u\u0308", "\u00a0", " "]

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

QUESTIONS = st.sampled_from(
    [
        "Who is mediating with Iran?",
        "Wie viel kostet das?",
        "When do the night buses run?",
        "Was geschah im 19. Jahrhundert?",
        "Steuern",
    ]
)


@st.composite
def article_texts(draw: st.DrawFn) -> str:
    """A title line and 3 to 7 sentences, some quoted, joined by assorted white space, with
    characters sprinkled in that text cleaning has to handle."""
    title = draw(st.sampled_from(FRAGMENTS)).rstrip(".")
    parts = [title]
    for _ in range(draw(st.integers(3, 7))):
        opening, closing = draw(st.sampled_from(QUOTES))
        sentence = opening + draw(st.sampled_from(FRAGMENTS)) + closing
        noise = draw(st.sampled_from(NOISE))
        cut = draw(st.sampled_from([0, len(sentence) // 3, len(sentence) // 2, len(sentence)]))
        parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(sentence[:cut] + noise + sentence[cut:])
    return draw(st.sampled_from(["", " ", "\n"])) + "".join(parts)


def test_every_quote_is_an_exact_span_of_its_article(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """For random texts, each quote of each answer (and of the context around it) equals the
    stored text at its offsets, and every sentence span lies inside the text."""
    library = Library(
        settings.with_overrides(data_dir=tmp_path / "property", min_confidence=0.0),
        embedder=embedder,
    )
    chats = (f"chat-{n}" for n in itertools.count())

    @PROPERTY_SETTINGS
    @given(text=article_texts(), question=QUESTIONS)
    def check(text: str, question: str) -> None:
        chat = next(chats)
        article = library.add_text(chat, text)
        answer = library.ask(chat, question)
        assert answer.quotes, "with a threshold of 0, a library with sentences answers"
        for quote in answer.quotes:
            assert quote.article_id == article.id
            assert 0 <= quote.start < quote.end <= len(article.text)
            assert quote.text == article.text[quote.start : quote.end]
            assert quote.text.strip() == quote.text
        around = library.context(chat, answer.quotes[0], around=article.sentence_count)
        assert len(around) == article.sentence_count
        previous_end = 0
        for sentence in around:
            assert previous_end <= sentence.start < sentence.end <= len(article.text)
            assert sentence.text == article.text[sentence.start : sentence.end]
            previous_end = sentence.end

    try:
        check()
    finally:
        library.close()
