"""Fuzzing what strangers can send: random bytes as files, random Unicode as pasted text,
links and questions, and huge inputs. Whatever arrives, the library either stores a whole
article or refuses with a message and stays as it was; a question always gets an answer whose
quotes are verbatim. A handful of examples per kind, so this runs with the rest of the suite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.config import load_settings
from index.embeddings import Embedder
from index.errors import ArticleRejected
from index.library import Library
from tests.conftest import SEED_ARTICLE, ArticleServer, fixture_text, settings_environ

CHAT = "strangers"
FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI does not flake
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Text that mixes scripts, punctuation, emoji and control characters.
TEXTS = st.text(st.characters(codec="utf-8"), max_size=1500) | st.lists(
    st.sampled_from(
        ["Der Rat tagte.", "伊朗外长抵达。", "🎉", "\x00", "\x1b[31m", "\n", "\n\n", " ", "...",
         "<script>", "&amp;", "\u202e", "\u00ad", "٣", "ℌ"]
    ),
    max_size=300,
).map("".join)  # fmt: skip


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Library]:
    """One library for every example (Hypothesis reuses fixtures across examples), with the
    seed article in CHAT so questions have something to find; links time out quickly."""
    base = load_settings(settings_environ()).with_overrides(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        allow_private_urls=True,
        fetch_timeout_seconds=2.0,
        dns_timeout_seconds=1.0,
    )
    lib = Library(base, embedder=embedder)
    lib.add_text(CHAT, fixture_text(SEED_ARTICLE))
    yield lib
    lib.close()


def whole_or_nothing(library: Library, add: Callable[[], object]) -> None:
    """Runs an add: a refusal must leave the chat as it was, a success must store the whole
    article (every sentence a non-blank span of its text, every sentence searchable)."""
    model = library.embedder.model_key
    before = (library.articles(CHAT), library.storage.vector_count(CHAT, model))
    try:
        article = add()
    except ArticleRejected as refusal:
        assert str(refusal).strip()
        assert (library.articles(CHAT), library.storage.vector_count(CHAT, model)) == before
        return
    sentences = library.storage.sentences_of(article.id)
    assert len(sentences) == article.sentence_count > 0
    assert all(article.text[s.start : s.end].strip() for s in sentences)
    assert library.storage.vector_count(CHAT, model) == before[1] + article.sentence_count
    library.remove(CHAT, article.number)  # keeps the library small and the next add fair


@FUZZ
@given(text=TEXTS)
@example(text="x" * 300_001)
@example(text="Wort " * 70_000)
def test_pasted_text(library: Library, text: str) -> None:
    whole_or_nothing(library, lambda: library.add_text(CHAT, text))


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".md", ".html", ".pdf"]))
@example(data=b"\xff\xfe" + b"\x00" * 5_000_001, suffix=".txt")
@example(data=b"<p>" + b"A" * 400_000 + b"</p>", suffix=".html")
def test_uploaded_files(library: Library, data: bytes, suffix: str) -> None:
    whole_or_nothing(library, lambda: library.add_file(CHAT, "upload" + suffix, data))


@FUZZ
@given(text=TEXTS.map(lambda t: t.encode()))
def test_uploaded_text_files_of_random_unicode(library: Library, text: bytes) -> None:
    whole_or_nothing(library, lambda: library.add_file(CHAT, "notes.txt", text))


@FUZZ
@given(
    link=st.text(max_size=200)
    | st.builds("http://{}/{}".format, st.text(max_size=40), st.text(max_size=40))
    | st.builds("{}/{}".format, st.just(""), st.text(max_size=60))
)
def test_links(library: Library, article_server: ArticleServer, link: str) -> None:
    """Random strings as links, random hosts, and random paths on the local server (a link
    starting with "/" goes there)."""
    url = article_server.base + link if link.startswith("/") else link
    whole_or_nothing(library, lambda: library.add_url(CHAT, url))


@FUZZ
@given(question=TEXTS)
@example(question="🎉🎉🎉 ?!")
@example(question="Wer vermittelt? " * 5_000)
@example(question="\u200b \u2060")
def test_questions(library: Library, question: str) -> None:
    answer = library.ask(CHAT, question)
    article = library.articles(CHAT)[0]
    for quote in answer.quotes:
        assert quote.text == article.text[quote.start : quote.end]
        assert math.isfinite(quote.score)


def test_the_fuzzed_library_is_intact(library: Library) -> None:
    """After all that, the chat still holds just the seed article and answers about it."""
    assert len(library.articles(CHAT)) == 1
    assert library.ask(CHAT, "Wer vermittelt mit dem Iran?").found
