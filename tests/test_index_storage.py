"""Storage, through the Library, on both engines: restarts, removals, separate chats, the
embedding cache, concurrent writers. For the embedded engine also its own files: SQLite is the
truth and FAISS files follow it (lost or damaged vector files), and old databases are
upgraded in place."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from index.config import Settings
from index.embeddings import Embedder
from index.errors import DuplicateArticle, UnknownArticle
from index.library import Library
from index.records import Answer, Article, Encoding, TokenVectors
from index.storage import codec, faiss_files, sql
from index.storage.compact import TokenCodebook
from index.storage.migrations import SQLITE, latest
from tests.conftest import SEED_ARTICLE, fixture_bytes, fixture_text, library_state

pytestmark = pytest.mark.both_engines

PROJECT = Path(__file__).resolve().parents[1]
GERMAN = "de-chat"
ENGLISH = "en-chat"
IRAN_QUESTION = "Who is mediating with Iran?"
BUS_QUESTION = "How often will the night buses run?"

SHORT_GERMAN = (
    "Neue Veloroute zwischen Basel und Liestal\n"
    "Der Kanton Basel-Landschaft baut bis 2027 eine durchgehende Veloroute von Basel nach "
    "Liestal. Die Strecke ist 14 Kilometer lang und kostet rund 38 Millionen Franken. "
    "An drei Kreuzungen entstehen neue Unterführungen für Velofahrende."
)


@pytest.fixture
def reopen(settings: Settings, embedder: Embedder) -> Iterator[Any]:
    """Opens further Library objects on the same data folder (a restarted bot) and closes them
    at the end."""
    opened: list[Library] = []

    def open_library() -> Library:
        opened.append(Library(settings, embedder=embedder))
        return opened[-1]

    yield open_library
    for lib in opened:
        lib.close()


def add_seed(library: Library, chat: str = GERMAN) -> Article:
    return library.add_text(chat, fixture_text(SEED_ARTICLE))


def add_english(library: Library, chat: str = ENGLISH) -> Article:
    return library.add_file(chat, "en_article.html", fixture_bytes("en_article.html"))


def quotes_of(answer: Answer) -> list[tuple]:
    """What a user sees of an answer: each quote's text, source and place, with its score."""
    return [(q.article_number, q.title, q.start, q.end, q.text, q.score) for q in answer.quotes]


def faiss_file(settings: Settings, chat: str) -> Path:
    files = list(settings.vectors_dir.rglob(f"chat_{chat}*.faiss"))
    assert len(files) == 1, files
    return files[0]


def vector_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "index.storage.faiss_files"]


def vector_count(library: Library, chat: str) -> int:
    return library.storage.vector_count(chat, library.embedder.model_key)


def assert_only_from(answer: Answer, articles: list[Article]) -> None:
    assert answer.quotes, "the question should get quotes"
    allowed = {a.id for a in articles}
    assert {q.article_id for q in answer.quotes} <= allowed


# ---- restarts ---------------------------------------------------------------------------------


def test_restart_keeps_articles_numbers_and_answers(
    library: Library, reopen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing and reopening the library on the same folder changes nothing a user can see,
    and the vector files are used as they are (no rebuild)."""
    add_seed(library)
    library.add_text(GERMAN, SHORT_GERMAN)
    articles = library.articles(GERMAN)
    answer = library.ask(GERMAN, IRAN_QUESTION)
    library.close()

    caplog.set_level(logging.INFO)
    restarted = reopen()
    assert restarted.articles(GERMAN) == articles
    assert [a.number for a in articles] == [1, 2]
    assert quotes_of(restarted.ask(GERMAN, IRAN_QUESTION)) == quotes_of(answer)
    assert vector_warnings(caplog) == []


def test_adding_and_removing_after_a_restart_needs_no_rebuild(
    library: Library, reopen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The first article added (or removed) after a restart continues the numbering and keeps
    the vector file in step without rebuilding it from the database."""
    add_seed(library)
    library.close()

    caplog.set_level(logging.INFO)
    restarted = reopen()
    added = restarted.add_text(GERMAN, SHORT_GERMAN)
    assert added.number == 2
    second = reopen()
    second.remove(GERMAN, 1)
    assert vector_warnings(caplog) == []
    expected = [(2, added.title, added.text_hash, added.sentence_count)]
    assert library_state(second, GERMAN) == (expected, added.sentence_count)


def corrupt_with_garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(3).bytes(path.stat().st_size))


def corrupt_by_truncating(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_to_empty(path: Path) -> None:
    path.write_bytes(b"")


def corrupt_by_deleting(path: Path) -> None:
    path.unlink()


@pytest.mark.embedded_only
@pytest.mark.parametrize(
    "damage",
    [corrupt_with_garbage, corrupt_by_truncating, corrupt_to_empty, corrupt_by_deleting],
    ids=["garbage", "truncated", "empty", "deleted"],
)
def test_damaged_or_missing_vector_file_is_rebuilt(
    library: Library, settings: Settings, reopen: Any, damage: Any
) -> None:
    """A chat's FAISS file that is garbage, cut short, empty or gone is rebuilt from SQLite on
    start: answers are the same as before, and the rebuilt file is good for the next start."""
    seed = add_seed(library)
    answer = library.ask(GERMAN, IRAN_QUESTION)
    library.close()
    damage(faiss_file(settings, GERMAN))

    restarted = reopen()
    assert quotes_of(restarted.ask(GERMAN, IRAN_QUESTION)) == quotes_of(answer)
    assert library_state(restarted, GERMAN)[1] == seed.sentence_count
    restarted.close()
    assert vector_count(reopen(), GERMAN) == seed.sentence_count


@pytest.mark.embedded_only
def test_vector_file_behind_the_database_is_rebuilt(
    library: Library, settings: Settings, reopen: Any
) -> None:
    """A crash between the SQLite commit and the FAISS write (simulated by restoring the older
    vector file) loses nothing: the article committed last is found after the restart."""
    add_english(library)
    path = faiss_file(settings, ENGLISH)
    older = path.read_bytes()
    seed = add_seed(library, ENGLISH)
    library.close()
    path.write_bytes(older)

    restarted = reopen()
    answer = restarted.ask(ENGLISH, IRAN_QUESTION)
    assert answer.quotes[0].article_id == seed.id
    assert vector_count(restarted, ENGLISH) == sum(
        a.sentence_count for a in restarted.articles(ENGLISH)
    )


@pytest.mark.embedded_only
def test_vector_file_ahead_of_the_database_is_rebuilt(
    library: Library, settings: Settings, reopen: Any
) -> None:
    """A crash after an article's removal was committed but before its vectors were removed
    (simulated by restoring the vector file) never brings its quotes back."""
    english = add_english(library)
    seed = add_seed(library, ENGLISH)
    path = faiss_file(settings, ENGLISH)
    saved = path.read_bytes()
    library.remove(ENGLISH, seed.number)
    library.close()
    path.write_bytes(saved)

    restarted = reopen()
    assert_only_from(restarted.ask(ENGLISH, IRAN_QUESTION), [english])
    assert vector_count(restarted, ENGLISH) == english.sentence_count


# ---- removing and forgetting ------------------------------------------------------------------


def test_removed_article_is_never_quoted_again(library: Library, reopen: Any) -> None:
    """Removing an article removes its sentences and vectors: its quotes never appear again,
    before or after a restart, and its number is not reused."""
    english = add_english(library, GERMAN)
    seed = add_seed(library)
    assert library.ask(GERMAN, IRAN_QUESTION).quotes[0].article_id == seed.id

    removed = library.remove(GERMAN, f"#{seed.number}")
    assert removed.id == seed.id
    assert library.articles(GERMAN) == [english]
    assert_only_from(library.ask(GERMAN, IRAN_QUESTION), [english])
    assert vector_count(library, GERMAN) == english.sentence_count
    with pytest.raises(UnknownArticle):
        library.article(GERMAN, seed.number)
    library.close()

    restarted = reopen()
    assert_only_from(restarted.ask(GERMAN, IRAN_QUESTION), [english])
    assert restarted.add_text(GERMAN, SHORT_GERMAN).number == 3


@pytest.mark.parametrize("number", ["7", 0, -1, "#9", "abc", "", "1.5"])
def test_unknown_article_id_for_remove(stocked_library: Library, number: Any) -> None:
    """Removing an article id the chat does not have is refused with a message pointing to the
    list, and nothing is removed."""
    before = library_state(stocked_library, "readers")
    with pytest.raises(UnknownArticle, match="/list"):
        stocked_library.remove("readers", number)
    assert library_state(stocked_library, "readers") == before


def test_article_of_another_chat_cannot_be_removed(stocked_library: Library) -> None:
    """Article #1 of one chat is unknown in another chat and stays where it is."""
    before = library_state(stocked_library, "readers")
    with pytest.raises(UnknownArticle):
        stocked_library.remove("strangers", 1)
    assert library_state(stocked_library, "readers") == before


def test_forget_empties_one_chat_only(library: Library, reopen: Any) -> None:
    """Forgetting a chat's library empties that chat (also after a restart) and leaves every
    other chat as it was."""
    add_seed(library)
    library.add_text(GERMAN, SHORT_GERMAN)
    english = add_english(library)
    assert library.forget(GERMAN) == 2

    assert library.articles(GERMAN) == []
    assert library.ask(GERMAN, IRAN_QUESTION).library_empty
    assert library.articles(ENGLISH) == [english]
    assert_only_from(library.ask(ENGLISH, BUS_QUESTION), [english])
    library.close()

    restarted = reopen()
    assert restarted.articles(GERMAN) == []
    assert restarted.ask(GERMAN, IRAN_QUESTION).library_empty
    assert_only_from(restarted.ask(ENGLISH, BUS_QUESTION), [english])


def test_question_on_an_empty_library(library: Library) -> None:
    """A question to a chat without articles says the library is empty and quotes nothing,
    also when its last article was removed."""
    answer = library.ask(GERMAN, IRAN_QUESTION)
    assert answer.library_empty and not answer.found and answer.quotes == []

    library.add_text(GERMAN, SHORT_GERMAN)
    library.remove(GERMAN, 1)
    answer = library.ask(GERMAN, IRAN_QUESTION)
    assert answer.library_empty and answer.quotes == []


# ---- chats ------------------------------------------------------------------------------------


def test_two_chats_never_mix(library: Library) -> None:
    """A question in one chat never quotes another chat's article, even when only the other
    chat's article answers it; both chats have their own article #1."""
    seed = add_seed(library, GERMAN)
    english = add_english(library, ENGLISH)
    assert seed.number == english.number == 1

    assert_only_from(library.ask(ENGLISH, IRAN_QUESTION), [english])
    assert_only_from(library.ask(GERMAN, BUS_QUESTION), [seed])
    assert library.ask(GERMAN, IRAN_QUESTION).quotes[0].article_id == seed.id
    assert library.ask(ENGLISH, BUS_QUESTION).quotes[0].article_id == english.id


@pytest.mark.embedded_only
def test_chat_ids_that_look_alike_keep_separate_vector_files(
    library: Library, reopen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Chat ids that differ only in punctuation ("team.a", "team_a", "team/a") keep their own
    vector files: after a restart none of them needs rebuilding, and none mixes."""
    chats = {"team.a": add_seed, "team_a": add_english, "team/a": add_seed}
    articles = {chat: add(library, chat) for chat, add in chats.items()}
    library.close()

    caplog.set_level(logging.INFO)
    restarted = reopen()
    for chat, article in articles.items():
        assert_only_from(restarted.ask(chat, IRAN_QUESTION), [article])
    assert vector_warnings(caplog) == []


@pytest.mark.parametrize(
    "chat", ["7" * 300, "-100" + "1" * 400, "ä/" * 200], ids=["digits", "group", "unicode"]
)
def test_a_very_long_chat_id_works(library: Library, reopen: Any, chat: str) -> None:
    """Chat ids of hundreds of characters (the command line takes any): the chat keeps its
    articles and answers, also after a restart."""
    article = add_seed(library, chat)
    assert_only_from(library.ask(chat, IRAN_QUESTION), [article])
    library.close()
    assert_only_from(reopen().ask(chat, IRAN_QUESTION), [article])


@pytest.mark.embedded_only
def test_a_vector_file_claiming_gigabytes_is_rebuilt_without_reading_them(
    library: Library, settings: Settings
) -> None:
    """A damaged vector file whose size field claims 8 GB of vectors is seen as damaged and
    rebuilt: faiss is never asked to read it (it would allocate those 8 GB first). Loaded in
    a process of its own, so the memory it takes can be told apart."""
    article = add_seed(library)
    library.close()
    path = faiss_file(settings, GERMAN)
    data = bytearray(path.read_bytes())
    data[74:82] = (2**31).to_bytes(8, "little")  # the vector data's length, in floats
    path.write_bytes(bytes(data))
    script = f"""
import resource
from index.storage.sqlite import SQLiteStorage
from pathlib import Path
storage = SQLiteStorage(Path({str(settings.data_dir)!r}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(storage.vector_count({GERMAN!r}, {library.embedder.model_key!r}))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT, timeout=300
    )
    count, megabytes = (int(line) for line in result.stdout.split())
    assert count == article.sentence_count
    assert megabytes < 200, f"loading the file took {megabytes} MB"


def test_articles_added_at_the_same_time(library: Library) -> None:
    """Articles posted to one chat at the same moment (the bot adds from several threads) all
    get their own number and are all searchable; the same text posted twice at once is stored
    once and reported as a duplicate."""
    texts = [
        SHORT_GERMAN,
        fixture_text(SEED_ARTICLE),
        "Neues Hallenbad in Riehen\nDas Hallenbad in Riehen öffnet nach zwei Jahren Bauzeit am "
        "Samstag. Es hat ein 25-Meter-Becken und eine Sauna. Der Eintritt kostet neun Franken.",
        SHORT_GERMAN,
    ]
    barrier = threading.Barrier(len(texts))
    results: list[Article | Exception] = [Exception()] * len(texts)

    def add(index: int) -> None:
        barrier.wait()
        try:
            results[index] = library.add_text(GERMAN, texts[index])
        except DuplicateArticle as error:
            results[index] = error

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    added = [r for r in results if isinstance(r, Article)]
    assert len(added) == 3 and sum(isinstance(r, DuplicateArticle) for r in results) == 1
    assert sorted(a.number for a in added) == [1, 2, 3]
    assert library.articles(GERMAN) == sorted(added, key=lambda a: a.number)
    assert vector_count(library, GERMAN) == sum(a.sentence_count for a in added)
    hall = library.ask(GERMAN, "Wann öffnet das Hallenbad in Riehen?").quotes[0]
    assert "Hallenbad" in hall.text


# ---- the embedding cache ----------------------------------------------------------------------


class CountingEmbedder:
    """The session's embedder, counting the calls that run the model over article text (every
    public method named embed_*/encode_* that is not for questions)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.read: list[str] = []  # the passages encode_passages read

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not callable(value) or not re.match(r"(embed|encode)_(?!quer)", name):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name == "encode_passages":
                self.read += args[0]
            return value(*args, **kwargs)

        return counted


REVISED_GERMAN = SHORT_GERMAN.replace("\nDer Kanton", "\n\nDer Kanton") + (
    "\n\nDer Regierungsrat hat den Kredit am Dienstag ohne Gegenstimme bewilligt."
)


def test_a_revised_article_costs_model_time_only_for_what_changed(
    settings: Settings, embedder: Embedder
) -> None:
    """A chat adding a new version of one of its articles (a paragraph added): the passages it
    holds already come from the cache in SQLite, also after a restart."""
    counting = CountingEmbedder(embedder)
    library = Library(settings, embedder=counting)  # type: ignore[arg-type]
    first = SHORT_GERMAN.replace("\nDer Kanton", "\n\nDer Kanton")
    library.add_text("a", first)
    assert len(counting.read) == 2, "title, then the paragraph"
    library.add_text("a", REVISED_GERMAN)
    assert counting.read[2:] == [REVISED_GERMAN.rsplit("\n\n", 1)[1]]
    library.close()

    restarted = Library(settings, embedder=counting)  # type: ignore[arg-type]
    restarted.add_text("a", REVISED_GERMAN + " Baubeginn ist im Frühling.")
    assert len(counting.read) == 4
    assert_only_from(restarted.ask("a", "Wie lang ist die Veloroute?"), restarted.articles("a"))
    restarted.close()


def test_another_chats_articles_leave_no_trace_in_the_time_an_add_takes(
    settings: Settings, embedder: Embedder
) -> None:
    """Encodings are reused within a chat only: were they shared, a stranger could tell by
    how fast an add is whether another chat holds that text. Another chat's copy costs the
    same model work as the first."""
    counting = CountingEmbedder(embedder)
    library = Library(settings, embedder=counting)  # type: ignore[arg-type]
    library.add_text("a", SHORT_GERMAN)
    first = list(counting.read)
    library.add_text("b", SHORT_GERMAN)
    assert counting.read == first * 2
    library.close()


def test_answers_with_cached_vectors_match_fresh_ones(library: Library) -> None:
    """Vectors taken from the cache give the same answer as freshly computed ones."""
    add_seed(library, "fresh")
    add_seed(library, "cached")
    assert quotes_of(library.ask("fresh", IRAN_QUESTION)) == quotes_of(
        library.ask("cached", IRAN_QUESTION)
    )


def test_switching_the_ranking_mode_keeps_every_article_searchable(
    settings: Settings, embedder: Embedder
) -> None:
    """Articles added under one mode are encoded again, once, when the library is opened with
    another mode, and answer questions there; going back finds the first mode's files."""
    first = Library(settings, embedder=embedder)
    add_seed(first)
    first.close()
    plain_settings = settings.with_overrides(ranking="plain")
    plain = Library(plain_settings, embedder=Embedder(plain_settings))
    try:
        answer = plain.ask(GERMAN, IRAN_QUESTION)
        assert any("Kommunikation mit dem Iran" in q.text for q in answer.quotes[:5])
    finally:
        plain.close()
    again = Library(settings, embedder=embedder)
    try:
        assert any(
            "Kommunikation mit dem Iran" in q.text
            for q in again.ask(GERMAN, IRAN_QUESTION).quotes[:3]
        )
    finally:
        again.close()


@pytest.mark.embedded_only
def test_a_data_folder_from_an_older_schema_is_refused_with_a_clear_message(
    settings: Settings, embedder: Embedder
) -> None:
    """A database of a development version before the first release is never half-read:
    opening it says what to do."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(settings.database_path)
    old.execute("CREATE TABLE sentences (id INTEGER PRIMARY KEY, embedding_key TEXT)")
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()
    with pytest.raises(RuntimeError, match="development version"):
        Library(settings, embedder=embedder)


@pytest.mark.embedded_only
def test_a_data_folder_of_the_first_release_is_upgraded_in_place(
    library: Library, settings: Settings, reopen: Any
) -> None:
    """A data folder written by the first release (schema 4) is migrated when opened: its
    articles, numbers and answers are all there, and it takes new ones."""
    seed = add_seed(library)
    answer = library.ask(GERMAN, IRAN_QUESTION)
    library.close()
    old = sqlite3.connect(settings.database_path)
    old.executescript(
        "DROP TABLE answer_messages; DROP TABLE latest_answers; DROP INDEX articles_by_request;"
        " DROP TABLE adds; ALTER TABLE articles DROP COLUMN request; DROP TABLE feed_items;"
        " DROP TABLE feeds; DROP TABLE chat_settings; DROP INDEX encodings_full;"
        " ALTER TABLE encodings DROP COLUMN format; DROP TABLE token_codebooks;"
        " PRAGMA user_version = 4;"
    )
    old.close()

    upgraded = reopen()
    assert upgraded.articles(GERMAN) == [seed]
    assert quotes_of(upgraded.ask(GERMAN, IRAN_QUESTION)) == quotes_of(answer)
    assert upgraded.add_text(GERMAN, SHORT_GERMAN).number == 2
    version = upgraded.storage._query("PRAGMA user_version")[0][0]
    assert version == latest(SQLITE)


def test_articles_added_by_another_process_are_found_at_once(library: Library, reopen: Any) -> None:
    """The command line adding to a chat while the bot runs: the bot's library sees it."""
    add_seed(library)
    assert library.ask(ENGLISH, BUS_QUESTION).library_empty
    other = reopen()
    add_english(other)
    answer = library.ask(ENGLISH, BUS_QUESTION)
    assert answer.found and answer.quotes[0].title == other.articles(ENGLISH)[0].title
    other.remove(ENGLISH, 1)
    assert library.ask(ENGLISH, BUS_QUESTION).library_empty


def test_forgetting_also_drops_what_the_model_made_of_the_articles(library: Library) -> None:
    """After /forget nothing of the chat's articles is left in the database, not even the
    cached token ids (which spell out the text); another chat's copy keeps its own."""
    add_seed(library, "a")
    add_seed(library, "b")

    def encodings() -> int:
        return library.storage._query("SELECT COUNT(*) FROM encodings")[0][0]

    both = encodings()
    library.forget("a")
    assert encodings() == both // 2, "chat b keeps its own"
    assert library.ask("b", IRAN_QUESTION).found
    library.remove("b", 1)
    assert encodings() == 0


def test_chats_can_add_and_ask_at_the_same_time(library: Library) -> None:
    """Several chats adding and asking in parallel threads (as the bot does) all succeed."""
    errors: list[BaseException] = []

    seed = fixture_text(SEED_ARTICLE)

    def work(chat: str) -> None:
        try:  # texts differ per chat, so every chat runs the model (nothing comes from cache)
            for round_ in range(3):
                library.add_text(chat, f"Ausgabe {chat} Nummer {round_}\n{seed}")
                assert library.ask(chat, IRAN_QUESTION).found
            library.add_text(chat, f"{SHORT_GERMAN} ({chat})")
            assert library.ask(chat, "Wie lang ist die Veloroute?").found
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"chat-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@pytest.mark.parametrize("number", ["99999999999999999999", "x" * 5000])
def test_absurd_article_ids_are_unknown_with_a_short_message(library: Library, number: str) -> None:
    """A huge number or a long text as an id is simply unknown, and the message stays short."""
    add_seed(library)
    with pytest.raises(UnknownArticle) as refusal:
        library.remove(GERMAN, number)
    assert len(str(refusal.value)) < 100


# ---- compact encodings --------------------------------------------------------------------------


def stored_token_bytes(library: Library) -> dict[int, int]:
    """Bytes of stored token vectors per encoding format (see `index.storage.codec`)."""
    rows = library.storage._query(
        "SELECT format, SUM(LENGTH(token_vectors)) FROM encodings GROUP BY format"
    )
    return {int(form): int(size) for form, size in rows}


def test_token_vectors_are_compacted_once_the_model_has_read_enough(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles stored in full (by an older version, or before the model had read enough to
    learn its codebook) are compacted when the library is opened: a sixth of the size, the
    same best quotes. Articles added afterwards are stored compactly from the start."""
    library = Library(settings, embedder=embedder)
    monkeypatch.setattr(sql, "TRAINING_TOKENS", 10**9)
    add_seed(library)
    add_english(library, GERMAN)
    full = stored_token_bytes(library)
    before = {q: library.ask(GERMAN, q).quotes[0] for q in (IRAN_QUESTION, BUS_QUESTION)}
    library.close()

    monkeypatch.setattr(sql, "TRAINING_TOKENS", 300)
    compacted = Library(settings, embedder=embedder)
    sizes = stored_token_bytes(compacted)
    assert set(full) == {codec.FULL} and set(sizes) == {codec.PACKED}
    assert sizes[codec.PACKED] * 6 == full[codec.FULL]
    for question, quote in before.items():
        first = compacted.ask(GERMAN, question).quotes[0]
        assert (first.article_id, first.start, first.end) == (
            quote.article_id, quote.start, quote.end,
        )  # fmt: skip

    added = compacted.add_text(GERMAN, SHORT_GERMAN)
    assert set(stored_token_bytes(compacted)) == {codec.PACKED}
    answer = compacted.ask(GERMAN, "Wie lang ist die neue Veloroute?")
    assert answer.quotes[0].article_id == added.id
    compacted.close()


def test_a_library_with_the_previous_versions_scalar_codebook_keeps_it(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library whose codebook is the previous version's 4-bit scalar quantiser compacts
    with it (192 bytes a token, a quarter of float16) and answers as before."""
    monkeypatch.setattr(sql, "TRAINING_TOKENS", 10**9)
    library = Library(settings, embedder=embedder)
    add_seed(library)
    add_english(library, GERMAN)
    full = stored_token_bytes(library)
    before = library.ask(GERMAN, IRAN_QUESTION).quotes[0]
    storage = library.storage
    rows = storage._query(f"SELECT {sql.ENCODING_COLUMNS} FROM encodings e")
    sample = np.concatenate([codec.decode(row, None).tokens.vectors for row in rows])
    scalar = faiss.ScalarQuantizer(sample.shape[1], faiss.ScalarQuantizer.QT_4bit)
    scalar.train(np.ascontiguousarray(sample, dtype=np.float32))
    with storage._statements() as transaction:
        transaction.run(
            f"INSERT INTO token_codebooks ({storage._MODEL_COLUMN}, codebook) VALUES (?, ?)",
            (storage._model_value(embedder.model_key), TokenCodebook(scalar).to_bytes()),
        )
    library.close()

    reopened = Library(settings, embedder=embedder)
    assert stored_token_bytes(reopened) == {codec.PACKED: full[codec.FULL] // 4}
    after = reopened.ask(GERMAN, IRAN_QUESTION).quotes[0]
    assert (after.article_id, after.start, after.end) == (
        before.article_id,
        before.start,
        before.end,
    )
    reopened.close()


def test_a_library_compacted_by_the_previous_version_keeps_its_answers(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library compacted with the previous version's product-quantiser codebook (32-byte
    codes, int32 ids, uint16 spans) reads as before, and takes new articles with that same
    codebook."""
    monkeypatch.setattr(sql, "TRAINING_TOKENS", 10**9)
    library = Library(settings, embedder=embedder)
    add_seed(library)
    add_english(library, GERMAN)
    model = embedder.model_key
    storage = library.storage
    rows = storage._query(f"SELECT key, {sql.ENCODING_COLUMNS} FROM encodings e")
    encodings = {row[0]: codec.decode(row[1:], None) for row in rows}
    sample = np.concatenate([e.tokens.vectors for e in encodings.values()]).astype(np.float32)
    legacy = previous_version_codebook(sample)
    value = storage._model_value(model)
    column = storage._MODEL_COLUMN
    with storage._statements() as transaction:
        transaction.run(
            f"INSERT INTO token_codebooks ({column}, codebook) VALUES (?, ?)",
            (value, legacy.to_bytes()),
        )
        for key, encoding in encodings.items():
            tokens = encoding.tokens
            vector = codec.encode(encoding, legacy)[0]
            transaction.run(
                "UPDATE encodings SET vector = ?, token_ids = ?, token_spans = ?,"
                f" token_vectors = ?, format = ? WHERE {column} = ? AND key = ?",
                (vector, tokens.ids.astype(np.int32).tobytes(),
                 tokens.spans.astype(np.uint16).tobytes(), legacy.encode(tokens.vectors),
                 codec.COMPACT, value, key),
            )  # fmt: skip
    library.close()

    reopened = Library(settings, embedder=embedder)
    assert set(stored_token_bytes(reopened)) == {codec.COMPACT}
    answer = reopened.ask(GERMAN, IRAN_QUESTION)
    assert answer.found and "Iran" in answer.quotes[0].text
    added = reopened.add_text(GERMAN, SHORT_GERMAN)
    assert set(stored_token_bytes(reopened)) == {codec.COMPACT, codec.PACKED}
    assert reopened.ask(GERMAN, "Wie lang ist die neue Veloroute?").quotes[0].article_id == (
        added.id
    )
    reopened.close()


def test_rows_of_both_formats_read_together_as_each_alone() -> None:
    """A question reads its candidates' rows in one go; a row kept in full (tokens that do not
    pack) among compact ones gets its own vectors back, and each compact row its own."""
    rng = np.random.default_rng(7)
    unit = rng.normal(size=(600, 48)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    codebook = TokenCodebook.learn(unit)

    def encoding(first: int, count: int, step: int) -> Encoding:
        spans = np.array([[i * step, i * step + 3] for i in range(count)], dtype=np.int32)
        tokens = TokenVectors(
            np.arange(count, dtype=np.int32), spans,
            unit[first : first + count].astype(np.float16), np.ones(count, dtype=bool),
        )  # fmt: skip
        return Encoding(unit[first], tokens)

    stored = {"a": encoding(0, 5, 4), "far": encoding(5, 3, 400), "b": encoding(8, 7, 2)}
    rows = [(key, *codec.encode(e, codebook)) for key, e in stored.items()]
    assert [row[5] for row in rows] == [codec.PACKED, codec.FULL, codec.PACKED]
    together = codec.decode_rows(rows, codebook)
    for key, *blobs in rows:
        alone = codec.decode(blobs, codebook).tokens
        assert np.array_equal(together[key].tokens.vectors, alone.vectors)
        assert np.array_equal(together[key].tokens.spans, stored[key].tokens.spans)
        similarity = (together[key].tokens.vectors * stored[key].tokens.vectors).sum(axis=1)
        assert similarity.min() > 0.9


def test_a_codebook_codes_each_slice_as_its_nearest_centroid() -> None:
    """The codebook's own encoder (three times FAISS's speed) picks, for every slice of every
    token, the centroid FAISS picks; a codebook read back from its bytes codes the same."""
    rng = np.random.default_rng(11)
    unit = rng.normal(size=(3000, 48)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    codebook = TokenCodebook.learn(unit)
    tokens = unit[:300]  # more than one chunk of the encoder
    ours = np.frombuffer(codebook.encode(tokens), dtype=np.uint8).reshape(len(tokens), -1)
    assert ours.shape == (300, codebook.code_size)
    assert (ours == codebook._quantiser.compute_codes(tokens)).mean() > 0.999
    again = TokenCodebook.from_bytes(codebook.to_bytes())
    assert again.encode(tokens) == codebook.encode(tokens)


def previous_version_codebook(sample: np.ndarray) -> TokenCodebook:
    """A product quantiser of 32 bytes a token, the way the previous version learnt it."""
    quantiser = faiss.ProductQuantizer(sample.shape[1], 32, 8)
    quantiser.cp.min_points_per_centroid = 1
    quantiser.train(np.ascontiguousarray(sample))
    return TokenCodebook.from_bytes(TokenCodebook(quantiser).to_bytes())


def test_token_vectors_stay_full_when_compaction_is_turned_off(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `compact_encodings = false` nothing is compacted, however much the model has
    read, and no codebook is learnt."""
    monkeypatch.setattr(sql, "TRAINING_TOKENS", 300)
    library = Library(settings.with_overrides(compact_encodings=False), embedder=embedder)
    add_seed(library)
    add_english(library, GERMAN)
    assert set(stored_token_bytes(library)) == {codec.FULL}
    assert library.storage.codebook_of(library.embedder.model_key) is None
    library.close()


# ---- large chats -----------------------------------------------------------------------------


@pytest.mark.embedded_only
def test_a_large_chat_is_searched_approximately_and_stays_in_step(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat past `APPROXIMATE_FROM` sentences gets an approximate index, built in the
    background while exact search answers; once it is used, the answers are the same, and an
    article added or removed is found or gone at once, without a rebuild."""
    monkeypatch.setattr(faiss_files, "APPROXIMATE_FROM", 10)
    seed = add_seed(library)
    exact = library.ask(GERMAN, IRAN_QUESTION).quotes[0]
    vectors = library.storage._vectors(library.embedder.model_key)
    for _ in range(600):  # the build runs in a thread of its own
        if vectors.approximate(GERMAN):
            break
        threading.Event().wait(0.2)
    assert vectors.approximate(GERMAN)

    first = library.ask(GERMAN, IRAN_QUESTION).quotes[0]
    assert (first.article_id, first.start, first.end) == (exact.article_id, exact.start, exact.end)
    added = library.add_text(GERMAN, SHORT_GERMAN)
    assert vectors.approximate(GERMAN)
    assert library.ask(GERMAN, "Wie lang ist die neue Veloroute?").quotes[0].article_id == added.id
    library.remove(GERMAN, added.number)
    assert vectors.approximate(GERMAN)
    answer = library.ask(GERMAN, "Wie lang ist die neue Veloroute?")
    assert {q.article_id for q in answer.quotes} <= {seed.id}
