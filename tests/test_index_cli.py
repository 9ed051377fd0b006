"""The `articlebot` command line: add, list, ask, remove and eval, with the data folder taken
from ARTICLEBOT_DATA_DIR. Commands run in-process with the session's model (so the model is
loaded once), except one that runs the real console entry point in a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

import bot.cli
from index.config import load_settings
from index.embeddings import Embedder
from index.library import Library
from tests.conftest import (
    PASSED_THROUGH,
    SEED_ARTICLE,
    ArticleServer,
    fixture_path,
    fixture_text,
    settings_environ,
)
from tests.feed_site import FeedSite
from tests.postgres import LocalPostgres
from tests.test_index_storage import CountingEmbedder

PROJECT = Path(__file__).resolve().parents[1]
IRAN_QUESTION = "Who is mediating with Iran?"


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "articlebot-data"


@pytest.fixture
def cli(
    clean_environ: pytest.MonkeyPatch,
    embedder: Embedder,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """Runs `articlebot <args>` in-process; the library it opens shares the session's model."""
    clean_environ.setenv("ARTICLEBOT_DATA_DIR", str(data_dir))
    clean_environ.setattr(bot.cli, "Library", partial(Library, embedder=embedder))

    def run(*argv: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            clean_environ.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            bot.cli.main(list(argv))
        out, err = capsys.readouterr()
        code = exit_.value.code
        return Result(code if isinstance(code, int) else 1, out, err)

    return run


def test_add_list_ask_remove(cli: Cli) -> None:
    """The whole round: add two files, list them, ask (plain and JSON), remove one."""
    seed_title = "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"
    added = cli("add", str(fixture_path(SEED_ARTICLE)), str(fixture_path("en_article.html")))
    assert added.code == 0, added.err
    assert f"Added #1: {seed_title} (de, " in added.out
    assert "Added #2: Leeds approves night bus trial for shift workers (en, " in added.out

    listed = cli("list")
    assert "#1" in listed.out and seed_title in listed.out
    assert "#2" in listed.out and "Leeds approves night bus trial" in listed.out

    asked = cli("ask", "--json", IRAN_QUESTION)
    assert asked.code == 0
    answer = json.loads(asked.out)
    assert answer["question"] == IRAN_QUESTION
    assert answer["found"] is True and answer["library_empty"] is False
    best = answer["quotes"][0]
    assert best["title"] == seed_title and best["article_number"] == 1
    assert best["text"] in fixture_text(SEED_ARTICLE)
    assert 0 <= best["start"] < best["end"]

    plain = cli("ask", IRAN_QUESTION)
    assert plain.code == 0 and best["text"] in plain.out

    removed = cli("remove", "2")
    assert removed.code == 0 and "Removed #2: Leeds approves" in removed.out
    assert "Leeds" not in cli("list").out
    again = cli("remove", "2")
    assert again.code == 1 and "#2" in again.err


def test_chats_are_separate_on_the_command_line(cli: Cli) -> None:
    """--chat selects a library; another chat does not see the articles."""
    assert cli("add", "--chat", "team", str(fixture_path("briefing.md"))).code == 0
    assert "Wasserstand" in cli("list", "--chat", "team").out
    assert "Wasserstand" not in cli("list").out
    empty = json.loads(cli("ask", "--json", "Wie hoch ist der Rhein?").out)
    assert empty["library_empty"] is True and empty["quotes"] == []


def test_add_url(
    cli: Cli, clean_environ: pytest.MonkeyPatch, article_server: ArticleServer
) -> None:
    """A link is refused by default (the server is on 127.0.0.1) and added when
    ARTICLEBOT_ALLOW_PRIVATE_URLS=1."""
    url = article_server.url("de_article.html")
    refused = cli("add", url)
    assert refused.code == 1 and "private or local network" in refused.err

    clean_environ.setenv("ARTICLEBOT_ALLOW_PRIVATE_URLS", "1")
    added = cli("add", url)
    assert added.code == 0, added.err
    assert "Added #1: Hitze in Basel: Freibäder bleiben bis 22 Uhr offen (de, " in added.out
    duplicate = cli("add", url + "?utm_source=telegram")
    assert duplicate.code == 1 and "already in the library as #1" in duplicate.err


def test_add_reports_each_bad_source_and_keeps_the_good_ones(cli: Cli, tmp_path: Path) -> None:
    """With several sources, each bad one gets its own message, the good ones are added, and
    the exit status says something failed."""
    unsupported = tmp_path / "notes.docx"
    unsupported.write_bytes(b"PK\x03\x04 not really a document")
    result = cli(
        "add", str(tmp_path / "missing.txt"), str(unsupported), str(fixture_path("briefing.md"))
    )
    assert result.code == 1
    assert "missing.txt is neither a link nor a readable file" in result.err
    assert "notes.docx is not a text, Markdown or HTML file" in result.err
    assert "Added #1: Wasserstand des Rheins sinkt auf Rekordtief" in result.out


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("Grüße aus Zürich, wo die Straßenbahn heute still stand.".encode("latin-1"), "UTF-8"),
        (b"Trump trifft Putin", "too short"),
        (b"", "too short"),
    ],
    ids=["latin-1", "three-words", "empty"],
)
def test_add_from_stdin_refuses_bad_text(cli: Cli, stdin: bytes, message: str) -> None:
    """`add -` with text that is not an article exits non-zero with a message; nothing is
    added."""
    result = cli("add", "-", stdin=stdin)
    assert result.code == 1 and message in result.err
    assert "#1" not in cli("list").out


def test_add_from_stdin(cli: Cli) -> None:
    """`add -` reads the article from standard input."""
    result = cli("add", "-", stdin=fixture_path("briefing.md").read_bytes())
    assert result.code == 0 and "Added #1: Wasserstand des Rheins" in result.out


def test_console_command_refuses_binary_junk_on_stdin(tmp_path: Path) -> None:
    """The real command, `articlebot add -` in its own process, exits non-zero with a message
    when standard input is binary junk, and stores nothing."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ARTICLEBOT_")}
    environment |= {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    environment["ARTICLEBOT_DATA_DIR"] = str(tmp_path / "data")
    junk = bytes(range(256)) * 64
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "add", "-"],
        input=junk,
        capture_output=True,
        env=environment,
        cwd=PROJECT,
        timeout=120,
    )
    assert result.returncode != 0
    assert b"binary" in result.stderr
    assert b"Traceback" not in result.stderr


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path: Path) -> None:
    """`articlebot ask --json ... | head -1`: the reader leaves before the answer is written;
    the command ends without a traceback."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ARTICLEBOT_")}
    environment |= {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    environment["ARTICLEBOT_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-c", "from bot.cli import main; main()", "ask", "--json", "Why?"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, cwd=PROJECT
    )
    process.stdout.close()  # like `head` after its first line
    errors = process.stderr.read()
    process.wait(timeout=120)
    assert b"Traceback" not in errors and b"BrokenPipeError" not in errors


# ---- eval -------------------------------------------------------------------------------------

TINY_ARTICLES = [
    (
        "tiny-1",
        "Freibäder in Basel",
        "Die Stadt Basel verlängert wegen der Hitze die Öffnungszeiten ihrer Freibäder bis 22 "
        "Uhr. Die Regelung gilt bis zum 31. August. Der Eintritt bleibt für Kinder unter 16 "
        "Jahren kostenlos.\n\nDie Mehrkosten schätzt die Stadt auf rund 120'000 Franken.",
    ),
    (
        "tiny-2",
        "Veloroute nach Liestal",
        "Der Kanton baut bis 2027 eine Veloroute von Basel nach Liestal. Die Strecke ist 14 "
        "Kilometer lang. An drei Kreuzungen entstehen neue Unterführungen.\n\nDie Kosten "
        "betragen 38 Millionen Franken.",
    ),
]
TINY_QUESTIONS = {
    "de-de": [
        ("Bis wann gilt die Regelung für die Freibäder?", "tiny-1", "31. August"),
        ("Wie lang ist die Veloroute nach Liestal?", "tiny-2", "14 Kilometer"),
        ("Was bezahlen Kinder unter 16 Jahren für den Eintritt?", "tiny-1", "kostenlos"),
    ],
    "en-de": [
        ("Until when do the longer pool opening hours apply?", "tiny-1", "31. August"),
        ("How long is the cycle route to Liestal?", "tiny-2", "14 Kilometer"),
        ("What do children under 16 pay to get into the pools?", "tiny-1", "kostenlos"),
    ],
}


def write_tiny_dataset(folder: Path, split: str) -> None:
    """A dataset laid out like shared/eval/xquad, with its own split name."""
    folder.mkdir(parents=True)
    texts = {article_id: text for article_id, _title, text in TINY_ARTICLES}
    articles = [
        {"article_id": a, "title": t, "lang": "de", "text": x, "n_paragraphs": 2}
        for a, t, x in TINY_ARTICLES
    ]
    (folder / f"articles.de.{split}.jsonl").write_text(
        "\n".join(json.dumps(a, ensure_ascii=False) for a in articles) + "\n", encoding="utf-8"
    )
    for pair, questions in TINY_QUESTIONS.items():
        rows = []
        for number, (question, article_id, answer) in enumerate(questions):
            start = texts[article_id].index(answer)
            rows.append(
                {
                    "id": f"{pair}-{number}",
                    "question": question,
                    "question_lang": pair[:2],
                    "context_lang": "de",
                    "article_id": article_id,
                    "answer_text": answer,
                    "answer_start": start,
                    "answer_end": start + len(answer),
                }
            )
        (folder / f"qa.{pair}.{split}.jsonl").write_text(
            "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
        )


def test_eval_prints_metrics_and_a_json_line(cli: Cli, tmp_path: Path, data_dir: Path) -> None:
    """`eval` on a tiny dataset prints R@k and MRR per question pair, ends with one JSON line
    {"pairs": {...}}, finds these clear-cut answers, and leaves the user's library alone."""
    folder = tmp_path / "tiny-eval"
    write_tiny_dataset(folder, "tiny")
    result = cli("eval", str(folder), "--split", "tiny", "--json")
    assert result.code == 0, result.err
    assert "de-de (n=3)" in result.out and "en-de (n=3)" in result.out
    assert "R@1" in result.out and "MRR@10" in result.out

    last = json.loads(result.out.strip().splitlines()[-1])
    assert set(last) == {"pairs"} and set(last["pairs"]) == {"de-de", "en-de"}
    for pair, metrics in last["pairs"].items():
        assert metrics["n"] == 3
        assert 0 <= metrics["R@1"] <= metrics["R@3"] <= metrics["R@5"] <= 1, pair
        assert metrics["R@1"] <= metrics["MRR@10"] <= 1, pair
        assert metrics["R@5"] >= 2 / 3, (pair, metrics)
    assert not (data_dir / "library.sqlite3").exists()


def test_eval_prints_the_refusal_curve_for_unanswerable_questions(cli: Cli) -> None:
    """On a dataset with unanswerable questions (null offsets), `eval` counts them apart from
    R@k and prints the refusal curve for both kinds of "no answer": the article left out, and
    the article there but not answering."""
    result = cli("eval", str(fixture_path("news_qa")), "--split", "mini", "--json", "--misses", "9")
    assert result.code == 0, result.err
    assert "de-de (n=4, 3 unanswerable)" in result.out
    assert "unanswerable refused:" in result.out
    assert "threshold  wrongly-refused  absent-refused" in result.out
    assert "threshold  wrongly-refused  unanswerable-refused" in result.out
    metrics = json.loads(result.out.strip().splitlines()[-1])["pairs"]["de-de"]
    assert metrics["n"] == 4 and len(metrics["unanswerable_curve"]) == len(
        metrics["threshold_curve"]
    )
    for miss in metrics["misses"]:  # listed as they came, if any of these four missed
        assert f"miss: {miss['question']}" in result.out


def test_eval_without_questions_for_the_split(cli: Cli, tmp_path: Path) -> None:
    """`eval` on a folder without question files for the split says so and exits non-zero."""
    folder = tmp_path / "tiny-eval"
    write_tiny_dataset(folder, "tiny")
    result = cli("eval", str(folder))
    assert result.code == 1 and "No qa.*.dev.jsonl files" in result.err


def test_migrate_copies_a_data_folder_into_postgresql(
    cli: Cli, postgres: LocalPostgres, embedder: Embedder, data_dir: Path
) -> None:
    """`migrate --to URL` copies every chat's articles with what the model made of them: the
    copy answers as the data folder did, keeps the short ids, spends no model time, and a
    second run copies nothing twice. An unreachable database is reported with its URL, the
    password hidden."""
    cli("add", str(fixture_path(SEED_ARTICLE)), str(fixture_path("en_article.html")))
    cli("add", "--chat", "team", str(fixture_path("briefing.md")))
    cli("remove", "1")
    before = json.loads(cli("ask", "--json", "How often will the night buses run?").out)

    url = postgres.new_database()
    copied = cli("migrate", "--to", url)
    assert copied.code == 0, copied.err
    assert "Copied 2 articles of 2 chats" in copied.out and "0 were there already" in copied.out
    again = cli("migrate", "--to", url)
    assert "Copied 0 articles" in again.out and "2 were there already" in again.out

    counting = CountingEmbedder(embedder)
    settings = load_settings(settings_environ()).with_overrides(data_dir=data_dir, database_url=url)
    library = Library(settings, embedder=counting)  # type: ignore[arg-type]
    try:
        assert [a.number for a in library.articles("terminal")] == [2]
        answer = library.ask("terminal", "How often will the night buses run?")
        seen = ("text", "start", "end", "article_number", "title", "url", "published")
        assert [tuple(vars(q)[k] for k in seen) for q in answer.quotes] == [
            tuple(q[k] for k in seen) for q in before["quotes"]
        ]
        # The data folder's vector files keep int8 vectors, PostgreSQL float32 ones.
        assert [q.score for q in answer.quotes] == pytest.approx(
            [q["score"] for q in before["quotes"]], abs=0.002
        )
        assert library.add_text("terminal", fixture_text(SEED_ARTICLE)).number == 3
        assert "Wasserstand" in library.articles("team")[0].title
    finally:
        library.close()
    assert counting.calls == ["encode_passages"]  # only for the article added afterwards

    unreachable = cli("migrate", "--to", "postgresql://bot:s3cret@127.0.0.1:9/none")
    assert unreachable.code == 1
    assert "postgresql://bot:***@127.0.0.1:9/none" in unreachable.err
    assert "s3cret" not in unreachable.err


def test_follow_feeds_poll_and_unfollow(cli: Cli, clean_environ: pytest.MonkeyPatch) -> None:
    """Operators and cron: follow a site's feed for a chat, list it, poll what is due (here:
    everything, with no interval), and end it."""
    clean_environ.setenv("ARTICLEBOT_ALLOW_PRIVATE_URLS", "1")
    clean_environ.setenv("ARTICLEBOT_FEED_INTERVAL_MINUTES", "0")
    with FeedSite() as site:
        site.publish("de_article.html")
        followed = cli("follow", "--chat", "-1001", site.url())
        assert followed.code == 0, followed.err
        assert followed.out.startswith(f"Following {FeedSite.TITLE} (feed #1).")
        assert "#1 Hitze in Basel" in followed.out

        site.publish("en_article.html")
        polled = cli("poll")
        assert polled.code == 0, polled.err
        assert f"chat -1001, feed #1 {FeedSite.TITLE}: 1 new article from" in polled.out
        assert "#2 Leeds approves night bus trial" in polled.out
        assert polled.out.endswith("1 feed polled.\n")
        assert "Leeds approves" in cli("list", "--chat", "-1001").out

        listed = cli("feeds", "--chat", "-1001").out
        assert f"#1 {FeedSite.TITLE}\n   {site.url('feed.xml')}\n   last checked " in listed
        assert cli("feeds").out.startswith("This chat follows no feeds.")
        refused = cli("follow", "--chat", "-1001", site.url("huge.xml"))
        assert refused.code == 1 and "The feed lists 10,000 items" in refused.err

    assert cli("unfollow", "--chat", "-1001", "1").out.startswith("Stopped following")
    gone = cli("unfollow", "--chat", "-1001", "1")
    assert gone.code == 1 and "follows no feed #1" in gone.err
    assert cli("poll").out == "0 feeds polled.\n"
