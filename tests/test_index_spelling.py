"""Questions typed without umlauts or ß are searched as the chat's articles spell the words."""

from __future__ import annotations

from index.library import Library

CHAT = "zurich"
# Swiss spelling: "ss" where German writes "ß".
TRAM = (
    "Neue Tramlinie in Zürich\n"
    "Die neue Tramlinie über die Rosengartenstrasse fährt ab 2030. "
    "Die Verkehrsbetriebe rechnen mit Kosten von 480 Millionen Franken. "
    "Gegen das Projekt hat der Quartierverein Einsprache erhoben."
)
TURKEY = (
    "Staatsbesuch in der Türkei\n"
    "Der Bundespräsident reist am Montag für drei Tage in die Türkei. "
    "Am Dienstag besucht er ein Flüchtlingslager an der Grenze zu Syrien. "
    "Begleitet wird er von einer Wirtschaftsdelegation aus zwölf Unternehmen."
)


def test_words_typed_without_umlauts_or_ss_are_respelt_as_the_library_writes_them(
    library: Library,
) -> None:
    library.add_text(CHAT, TRAM)
    spelling = library.answers.spelling
    assert spelling.run(CHAT, "Wann faehrt das Tram ueber die Rosengartenstraße?") == (
        "Wann fährt das Tram über die Rosengartenstrasse?"
    )
    # Words the library knows, or whose respelling it does not know, stay as typed.
    assert spelling.run(CHAT, "Was kostet die neue Tramlinie?") == "Was kostet die neue Tramlinie?"
    assert spelling.run(CHAT, "Wer ist Quaestor?") == "Wer ist Quaestor?"
    # Each chat's own articles decide, and a new article is known at once.
    assert spelling.run("other chat", "Wann faehrt das Tram?") == "Wann faehrt das Tram?"
    library.add_text(CHAT, TURKEY)
    assert spelling.run(CHAT, "Wann reist er in die TUERKEI?") == "Wann reist er in die TÜRKEI?"


def test_a_question_without_umlauts_is_answered_like_one_with_them(library: Library) -> None:
    library.add_text(CHAT, TRAM)
    library.add_text(CHAT, TURKEY)
    with_umlauts = library.ask(CHAT, "Was besucht der Bundespräsident an der Grenze?")
    without = library.ask(CHAT, "Was besucht der Bundespraesident an der Grenze?")
    assert without.question == "Was besucht der Bundespraesident an der Grenze?"
    assert without.quotes[0].text == with_umlauts.quotes[0].text
    assert [round(q.score, 4) for q in without.quotes] == [
        round(q.score, 4) for q in with_umlauts.quotes
    ]
