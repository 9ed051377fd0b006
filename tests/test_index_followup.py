"""Follow-ups and the memory behind them, on both engines: which question builds on which
answer, and that the memory outlives the process and stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from index.answer.followup import MAX_RECORD_BYTES
from index.config import Settings
from index.embeddings import Embedder
from index.library import Library
from index.records import Answer
from index.storage.base import ANSWERS_PER_CHAT

pytestmark = pytest.mark.both_engines

CHAT = "-100200"
VELO = (
    "Neue Veloroute zwischen Basel und Liestal\n"
    "Der Kanton Basel-Landschaft baut bis 2027 eine durchgehende Veloroute von Basel nach "
    "Liestal. Die Strecke ist 14 Kilometer lang und kostet rund 38 Millionen Franken."
)
BATH = (
    "Neues Hallenbad in Riehen\n"
    "Das Hallenbad in Riehen öffnet nach zwei Jahren Bauzeit am Samstag. Es hat ein "
    "25-Meter-Becken und eine Sauna. Der Eintritt kostet neun Franken."
)


@pytest.fixture
def library(settings: Settings, embedder: Embedder) -> Iterator[Library]:
    lib = Library(settings, embedder=embedder)
    lib.add_text(CHAT, VELO)
    lib.add_text(CHAT, BATH)
    yield lib
    lib.close()


def asked(library: Library, question: str) -> Answer:
    answer = library.ask(CHAT, question)
    assert answer.found, question
    return answer


def test_a_reply_to_an_answer_follows_up_on_that_answer_in_any_chat(library: Library) -> None:
    first, second = (
        asked(library, "Wie lang ist die Veloroute?"),
        asked(library, "Wann öffnet das Hallenbad?"),
    )
    library.memory.record(CHAT, 10, first)
    library.memory.record(CHAT, 12, second)
    for private in (False, True):
        previous, implicit = library.memory.previous(CHAT, 10, private)
        assert (previous, implicit) == (first, False)


def test_in_a_private_chat_the_question_after_an_answer_may_follow_up_on_it(
    library: Library,
) -> None:
    memory = library.memory
    assert memory.previous(CHAT, None, private=True) == (None, False)
    latest = asked(library, "Wie lang ist die Veloroute?")
    memory.record(CHAT, 5, latest)
    assert memory.previous(CHAT, None, private=True) == (latest, True)
    assert memory.previous(CHAT, 99, private=True) == (latest, True)  # a reply to another message
    assert memory.previous(CHAT, None, private=False) == (None, False)  # groups: only by reply
    library.add_text(CHAT, "Ein drittes Thema\n" + VELO.replace("Liestal", "Pratteln"))
    assert memory.previous(CHAT, None, private=True) == (None, False)  # something else happened
    assert memory.previous(CHAT, 5, private=True) == (latest, False)


def test_only_found_answers_can_be_followed_up(library: Library) -> None:
    found = asked(library, "Wie lang ist die Veloroute?")
    library.memory.record(CHAT, 1, found)
    library.memory.record(CHAT, 2, Answer("Wer gewinnt die Wahl?", found=False))
    assert library.memory.recall(CHAT, 2) is None
    assert library.memory.recall(CHAT, 1) == found
    assert library.memory.previous(CHAT, None, private=True) == (None, False)


def test_follow_ups_and_buttons_outlive_a_restart(
    library: Library, settings: Settings, embedder: Embedder
) -> None:
    """The memory is in the engine: another Library on the same data (a restarted bot, or
    another worker) reads a reply to an answer given before as a follow-up."""
    first = asked(library, "Wann öffnet das Hallenbad?")
    library.memory.record(CHAT, 7, first)
    library.memory.show(CHAT, 8, first)  # the "Context" message of the same answer
    restarted = Library(settings, embedder=embedder)
    try:
        assert restarted.memory.recall(CHAT, 7) == first
        assert restarted.memory.recall(CHAT, 8) == first
        follow = restarted.ask(CHAT, "Und was kostet der Eintritt?", replied_to=8)
        assert follow.context == first.question
        assert "neun Franken" in follow.quotes[0].text
    finally:
        restarted.close()


def test_chats_remember_their_own_answers_only(library: Library) -> None:
    answer = asked(library, "Wie lang ist die Veloroute?")
    library.memory.record(CHAT, 3, answer)
    assert library.memory.recall("another chat", 3) is None
    assert library.memory.previous("another chat", None, private=True) == (None, False)


def test_a_remembered_answer_loses_the_quotes_of_a_removed_article(library: Library) -> None:
    answer = library.ask(CHAT, "Veloroute Hallenbad")
    assert {q.article_number for q in answer.quotes} == {1, 2}
    library.memory.record(CHAT, 4, answer)
    library.remove(CHAT, 1)
    recalled = library.memory.recall(CHAT, 4)
    assert recalled is not None and {q.article_number for q in recalled.quotes} == {2}


def test_the_memory_keeps_a_bounded_number_of_messages_per_chat(library: Library) -> None:
    answer = asked(library, "Wie lang ist die Veloroute?")
    for message_id in range(ANSWERS_PER_CHAT + 5):
        library.memory.show(CHAT, message_id, answer)
    kept = [library.memory.recall(CHAT, m) is not None for m in range(ANSWERS_PER_CHAT + 5)]
    assert kept == [False] * 5 + [True] * ANSWERS_PER_CHAT


def test_a_remembered_answer_stays_small_however_large_the_question_and_quotes(
    library: Library,
) -> None:
    """A question of 100,000 characters (the command line takes any) with twelve quotes full
    of highlighted words is remembered in a few kilobytes, and a follow-up to it reads the
    same earlier question as before."""
    found = asked(library, "Veloroute Hallenbad Eintritt Kilometer")
    words = tuple((i, i + 1) for i in range(0, 2000, 2))
    quotes = [replace(q, highlights=words) for q in (found.quotes * 12)[:12]]
    huge = replace(found, question="Wie lang ist die Veloroute? " * 3600, quotes=quotes)
    library.memory.record(CHAT, 21, huge)
    assert len(library.storage.recall_answer(CHAT, 21).encode()) <= MAX_RECORD_BYTES
    recalled = library.memory.recall(CHAT, 21)
    assert recalled.search_text == huge.search_text
    assert [q.text for q in recalled.quotes] == [q.text for q in quotes[: len(recalled.quotes)]]
    assert len(recalled.quotes) >= 3
