"""Rendering: escaping, highlights, Telegram's HTML rules and its 4096-character limit."""

from __future__ import annotations

from dataclasses import replace

from bot.render import (
    MESSAGE_LIMIT,
    article_added,
    feed_followed,
    feed_list,
    feed_news,
    feed_trouble,
    html_answer,
    html_article_list,
    html_context,
    pack,
    plain_answer,
    plain_context,
    visible_length,
)
from bot.texts import GERMAN, all_texts
from index.records import Answer, Article, Feed, FeedPoll, Quote
from tests.telegram_standin import parse_html


def quote(
    text: str = "Russland bietet Hilfe bei der Kommunikation mit dem Iran an.",
    *,
    position: int = 0,
    start: int = 0,
    highlights: tuple[tuple[int, int], ...] = (),
    title: str = "Russland bietet Trump Hilfe an",
    url: str | None = "https://example.com/iran?a=1&b=2",
) -> Quote:
    return Quote(
        text=text, start=start, end=start + len(text), score=0.9, sentence_id=position,
        position=position, article_id=1, article_number=1, title=title, url=url,
        published="2025-03-05T06:12", language="de", highlights=highlights,
    )  # fmt: skip


def answer(*quotes: Quote, question: str = "Who?", context: str = "") -> Answer:
    return Answer(question, list(quotes), found=True, context=context)


def entity_texts(html: str, kind: str) -> list[str]:
    text, entities = parse_html(html)
    encoded = text.encode("utf-16-le")
    return [
        encoded[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in entities
        if e["type"] == kind
    ]


def test_article_and_user_text_is_escaped() -> None:
    hostile = quote("Er sagte: <b>nichts</b> & ging.", title="<script>alert(1)</script> & Co")
    html, shown = html_answer(answer(hostile, context="Was ist <b>los</b>?"))
    text, _ = parse_html(html)  # raises on anything Telegram would reject
    assert shown == 1
    assert "<script>alert(1)</script> & Co" in text
    assert "Er sagte: <b>nichts</b> & ging." in text
    assert "Was ist <b>los</b>?" in text
    assert "<script>" not in html and "<b>nichts" not in html
    assert entity_texts(html, "bold") == []


def test_matching_words_are_bold_and_the_title_links_to_the_article() -> None:
    sentence = "Russland bietet Hilfe bei der Kommunikation mit dem Iran an."
    iran = (sentence.index("Iran"), sentence.index("Iran") + 4)
    help_ = (sentence.index("Hilfe"), sentence.index("Hilfe") + 5)
    html, _ = html_answer(answer(quote(sentence, highlights=(iran, help_))))
    assert entity_texts(html, "bold") == ["Hilfe", "Iran"]
    assert entity_texts(html, "blockquote") == [sentence]
    text, entities = parse_html(html)
    (link,) = [e for e in entities if e["type"] == "text_link"]
    assert link["url"] == "https://example.com/iran?a=1&b=2"
    assert text.endswith("— Russland bietet Trump Hilfe an (2025-03-05 · #1)")


def test_bad_highlights_are_skipped_not_fatal() -> None:
    sentence = "Kurzer Satz über Trump."
    spans = ((7, 11), (9, 13), (30, 40), (3, 3))  # overlapping, beyond the end, empty
    html, _ = html_answer(answer(quote(sentence, highlights=spans)))
    assert entity_texts(html, "bold") == ["Satz"]


def test_a_very_long_sentence_is_shortened_for_display_only() -> None:
    sentence = "Wort " * 600 + "Iran."
    end = (len(sentence) - 5, len(sentence) - 1)
    html, _ = html_answer(answer(quote(sentence, highlights=((0, 4), end))))
    (shown,) = entity_texts(html, "blockquote")
    assert shown.endswith("…") and len(shown) <= 1200
    assert entity_texts(html, "bold") == ["Wort"]  # the cut-off highlight is dropped


def test_an_answer_never_exceeds_the_limit_and_more_goes_on_where_it_stopped() -> None:
    long_quotes = [quote(f"Satz {n}: " + "lang " * 230, position=n) for n in range(10)]
    many = answer(*long_quotes)
    html, shown = html_answer(many, 0, 10)
    assert 1 <= shown < 10
    assert visible_length(html) <= MESSAGE_LIMIT
    parse_html(html)
    html2, _ = html_answer(many, shown, 10)
    assert entity_texts(html2, "blockquote")[0].startswith(f"Satz {shown}:")
    assert visible_length(html2) <= MESSAGE_LIMIT


def test_no_answer_and_empty_library_are_one_short_text() -> None:
    assert html_answer(Answer("Who?", [quote()], found=False)) == (
        "The articles in this library don't answer that.",
        0,
    )
    empty, shown = html_answer(Answer("Who?", library_empty=True), language=GERMAN)
    assert shown == 0 and empty.startswith("Die Bibliothek dieses Chats ist leer.")
    assert html_answer(answer(quote()), start=5)[0] == "No more quotes."


def reading(*texts: str, first: int = 0) -> list[Quote]:
    """Consecutive sentences of one article, one space apart, as the context view gets them."""
    sentences, start = [], 0
    for position, text in enumerate(texts, start=first):
        sentences.append(quote(text, position=position, start=start))
        start += len(text) + 1
    return sentences


def test_context_marks_the_quote_and_fits_even_with_long_sentences() -> None:
    sentences = reading("Davor. " * 300, "Das Zitat.", "Danach. " * 300, first=4)
    html = html_context(sentences, sentences[1])
    assert entity_texts(html, "bold") == ["Das Zitat."]
    assert visible_length(html) <= MESSAGE_LIMIT


def test_context_marks_every_sentence_of_a_joined_quote() -> None:
    """A quote that holds the sentence a "Dabei ..." points back to is marked as a whole."""
    sentences = reading("Davor.", "Russland hilft.", "Dabei geht es um Iran.", "Danach.")
    joined = sentences[1].text + " " + sentences[2].text
    focus = quote(joined, position=2, start=sentences[1].start)
    assert entity_texts(html_context(sentences, focus), "bold") == [
        "Russland hilft.",
        "Dabei geht es um Iran.",
    ]
    assert plain_context(sentences, focus).startswith("Davor. »Russland hilft.« »Dabei geht")


def article(number: int, title: str, url: str | None = None, source: str = "url") -> Article:
    return Article(
        id=number, chat_id="1", number=number, title=title, text="", language="de",
        source=source, url=url, canonical_url=url, author=None, published="2025-03-05",
        added_at="2025-03-06", added_by=None, text_hash=str(number), sentence_count=12,
    )  # fmt: skip


def test_a_long_article_list_is_split_between_articles() -> None:
    articles = [
        article(n, f"Titel <{n}> & " + "x" * 150, f"https://news.example/{n}?a&b")
        for n in range(60)
    ]
    articles.append(article(60, "Eingefügt", source="text"))
    messages = html_article_list(articles)
    assert len(messages) > 1
    seen = []
    for message in messages:
        assert visible_length(message) <= MESSAGE_LIMIT
        text, _ = parse_html(message)
        seen += [line.split(" ")[0] for line in text.split("\n\n")]
    assert seen == [f"#{n}" for n in range(61)]
    assert "German · 2025-03-05 · 12 sentences · news.example" in messages[0]
    assert messages[-1].endswith("German · 2025-03-05 · 12 sentences · sent as text")


def test_pack_fills_messages_with_whole_blocks() -> None:
    blocks = ["<b>a</b>" * 10, "b" * 38, "c" * 30, "d" * 20]
    # Tags don't count: 10 + 2 + 38 characters fit in 60, adding the next 2 + 30 would not.
    assert pack(blocks, limit=60) == [
        "<b>a</b>" * 10 + "\n\n" + "b" * 38,
        "c" * 30 + "\n\n" + "d" * 20,
    ]


def test_visible_length_counts_what_telegram_counts() -> None:
    assert visible_length("<b>&lt;a&gt;</b> 😀") == 6  # "<a> " and a surrogate pair


def test_added_escapes_the_title() -> None:
    added = article_added(article(3, "A <b> & B"))
    assert parse_html(added)[0] == "Added #3: A <b> & B (German, 12 sentences)."
    plain = article_added(article(3, "A <b> & B"), GERMAN, html=False)
    assert plain == "Hinzugefügt als #3: A <b> & B (Deutsch, 12 Sätze)."


def test_every_bot_text_is_valid_telegram_html() -> None:
    for text in all_texts():
        parse_html(text)


def test_plain_answers_number_the_quotes_and_note_follow_ups() -> None:
    quotes = [quote(f"Satz {n}.", position=n) for n in range(5)]
    text = plain_answer(answer(*quotes, context="Who is mediating?"), 3, 3)
    assert text.startswith("Read together with “Who is mediating?”:\n\n4. “Satz 3.”\n")
    assert "5. “Satz 4.”\n   — Russland bietet Trump Hilfe an (2025-03-05 · #1)" in text
    assert plain_answer(answer(*quotes), 6, 3) == "No more quotes."


def feed(title: str = "News <&> more", **state: object) -> Feed:
    values = {
        "id": 2, "chat_id": "1", "url": "https://example.com/rss?a=1&b=2", "title": title,
        "added_by": None, "added_at": "2026-12-01T10:00:00+00:00", "language": "en",
        "etag": None, "last_modified": None, "last_success": None, "last_error": None,
        "failures": 0, "reported": False, "paused": False,
    }  # fmt: skip
    return Feed(**(values | state))


def test_feed_news_lists_what_came_in_and_escapes_the_titles() -> None:
    poll = FeedPoll(feed(), [article(4, "A <b>"), article(5, "B & C")], skipped=2)
    news = feed_news(poll, 5, "en")
    assert parse_html(news)[0] == (
        "2 new articles from News <&> more:\n#4 A <b>\n#5 B & C\n"
        "(2 more items were skipped: not articles, or over the limit of 5 per check.)"
    )
    assert feed_news(FeedPoll(feed(), [], skipped=3), 5, "en") is None  # nothing to tell
    followed = feed_followed(FeedPoll(feed(), [article(4, "A")]), 30.0, GERMAN, html=False)
    assert followed.startswith("Ich folge jetzt News <&> more (Feed #2) und schaue alle 30 ")


def test_a_failing_feed_is_told_once_and_its_pause_says_how_to_resume() -> None:
    failing = FeedPoll(feed(failures=3), [], error="Could not connect to <x>.")
    assert feed_trouble(failing, "en") is None  # not (or no longer) to be reported
    reported = replace(failing, report_failure=True)
    assert parse_html(feed_trouble(reported, "en"))[0].startswith(
        "The feed News <&> more (#2) keeps failing: Could not connect to <x>. I keep trying"
    )
    paused = replace(reported, paused=True, feed=feed(failures=10, paused=True))
    assert parse_html(feed_trouble(paused, "en"))[0].endswith(
        "after 10 failures in a row: Could not connect to <x>. /follow "
        "https://example.com/rss?a=1&b=2 starts it again."
    )
    listed = parse_html(feed_list([paused.feed], "en")[0])[0]
    assert listed == (
        "Feeds of this chat:\n\n#2 News <&> more\nhttps://example.com/rss?a=1&b=2\n"
        "not checked yet · paused; /follow it again to resume"
    )
