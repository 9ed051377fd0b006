"""`articlebot`: add articles, ask questions, measure quality, and run the bot."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm import tqdm

from index.config import Settings, load_settings
from index.errors import ArticleRejected, LibraryError, UnknownArticle
from index.ingest.extract import FILE_SUFFIXES
from index.library import Library

TERMINAL_CHAT = "terminal"
# glibc's mallopt() option for the size from which a buffer gets its own memory mapping.
_M_MMAP_THRESHOLD = -3


def _progress(items: Iterable, description: str, total: int) -> Iterable:
    return tqdm(items, desc=description, total=total, unit="", leave=False, file=sys.stderr)


def _sources(arguments: list[str]) -> list[str]:
    """Expand folders into the article files they hold."""
    sources = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            sources += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in FILE_SUFFIXES)
        else:
            sources.append(argument)
    return sources


def cmd_add(library: Library, args: argparse.Namespace) -> int:
    sources = _sources(args.sources)
    failures = 0
    items = _progress(sources, "adding", len(sources)) if len(sources) > 1 else sources
    for source in items:
        try:
            if source == "-":
                article = library.add_file(args.chat, "stdin.txt", sys.stdin.buffer.read())
            elif "://" in source:
                article = library.add_url(args.chat, source)
            else:
                path = Path(source)
                if not path.is_file():
                    raise ArticleRejected("not_a_source", source=source)
                article = library.add_file(args.chat, path.name, path.read_bytes())
        except ArticleRejected as error:
            failures += 1
            print(f"{source}: {error}", file=sys.stderr)
            continue
        print(
            f"Added #{article.number}: {article.title} "
            f"({article.language}, {article.sentence_count} sentences)"
        )
    return 1 if failures else 0


def cmd_ask(library: Library, args: argparse.Namespace) -> int:
    from bot.render import plain_answer

    answer = library.ask(args.chat, args.question)
    if args.json:
        print(json.dumps(answer.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(plain_answer(answer, 0, library.settings.max_quotes))
    return 0


def cmd_list(library: Library, args: argparse.Namespace) -> int:
    from bot.render import plain_article_list

    print(plain_article_list(library.articles(args.chat)))
    return 0


def cmd_remove(library: Library, args: argparse.Namespace) -> int:
    try:
        article = library.remove(args.chat, args.id)
    except UnknownArticle as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Removed #{article.number}: {article.title}")
    return 0


def cmd_follow(library: Library, args: argparse.Namespace) -> int:
    from bot.render import feed_followed

    try:
        poll = library.feeds.follow(args.chat, args.url, None, "en")
    except LibraryError as error:
        print(error, file=sys.stderr)
        return 1
    print(feed_followed(poll, library.settings.feed_interval_minutes, "en", html=False))
    return 0


def cmd_feeds(library: Library, args: argparse.Namespace) -> int:
    from bot.render import feed_list

    print(*feed_list(library.feeds.feeds(args.chat), "en", html=False), sep="\n")
    return 0


def cmd_unfollow(library: Library, args: argparse.Namespace) -> int:
    from bot.render import feed_removed

    try:
        feed = library.feeds.unfollow(args.chat, args.id)
    except LibraryError as error:
        print(error, file=sys.stderr)
        return 1
    print(feed_removed(feed, "en", html=False))
    return 0


def cmd_poll(library: Library, _args: argparse.Namespace) -> int:
    """Poll every due feed of every chat once (for cron); the bot does the same on its own."""
    from bot.render import feed_news, feed_trouble

    polled, started = 0, time.time()
    while (feed := library.feeds.claim_due(started)) is not None:
        poll = library.feeds.poll(feed)
        polled += 1
        news = feed_news(poll, library.settings.feed_items_per_poll, "en", html=False)
        state = news or poll.error or "nothing new"
        print(f"chat {feed.chat_id}, feed #{feed.id} {feed.title}: {state}")
        if trouble := feed_trouble(poll, "en", html=False):
            print(trouble)
    print(f"{polled} feeds polled." if polled != 1 else "1 feed polled.")
    return 0


def cmd_eval(library: Library, args: argparse.Namespace) -> int:
    from index.evaluation import Evaluation, available_pairs

    folder = Path(args.folder)
    pairs = args.pairs.split(",") if args.pairs else available_pairs(folder, args.split)
    if not pairs:
        print(f"No qa.*.{args.split}.jsonl files in {folder}.", file=sys.stderr)
        return 1
    evaluation = Evaluation(library, folder, args.split, progress=_progress)
    results = {}
    try:
        for pair in pairs:
            result = evaluation.run_pair(pair, not args.no_negatives, args.misses)
            results[pair] = result
            print(_format_result(pair, result))
    finally:
        evaluation.close()
    if args.json:
        print(json.dumps({"pairs": results}, ensure_ascii=False))
    return 0


def _format_result(pair: str, result: dict) -> str:
    unanswerable = result.get("n_unanswerable", 0)
    lines = [
        f"{pair} (n={result['n']}" + (f", {unanswerable} unanswerable)" if unanswerable else ")")
    ]
    for name in ("R@1", "R@3", "R@5", "MRR@10"):
        low, high = result[f"{name}_ci95"]
        lines.append(f"  {name:7} {result[name]:.3f}  [95% {low:.3f}-{high:.3f}]")
    lines.append(f"  first quote: {result['first_quote_words']:.1f} words on average")
    for name in ("wrongly_refused", "absent_refused", "unanswerable_refused"):
        if name in result:
            lines.append(f"  {name.replace('_', ' ')}: {result[name]:.1%}")
    for curve, column in (
        ("threshold_curve", "absent_refused"),
        ("unanswerable_curve", "unanswerable_refused"),
    ):
        if curve in result:
            lines += _format_curve(result[curve], column)
    for miss in result.get("misses", []):
        lines.append(f"  miss: {miss['question']}")
        lines.append(f"    expected: {miss['expected']}")
        lines.append(f"    quoted ({miss['score']}): {miss['first_quote']}")
    return "\n".join(lines)


def _format_curve(rows: list[dict], column: str) -> list[str]:
    """One refusal curve: per threshold, answerable top-3 hits refused against `column`."""
    label = column.replace("_", "-")
    lines = [f"  threshold  wrongly-refused  {label}"]
    for row in rows:
        wrong, right = row["wrongly_refused"], row[column]
        lines.append(f"  {row['threshold']:9.2f}  {wrong:15.1%}  {right:{len(label)}.1%}")
    return lines


def cmd_setup(library: Library, _args: argparse.Namespace) -> int:
    """Provision the model and load everything once, so the first real request is fast."""
    library.warm_up()
    settings = library.settings
    print(f"Ready: model {settings.model} ({settings.encoder}), data in {settings.data_dir}")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Copy the configured libraries (the data folder, by default) into PostgreSQL."""
    from index.storage import StorageUnavailable, open_storage
    from index.storage.postgres import PostgresStorage, hide_password
    from index.storage.transfer import copy_libraries

    if not args.to.startswith(("postgresql://", "postgres://")):
        print("--to takes a PostgreSQL URL: postgresql://user:password@host/db", file=sys.stderr)
        return 2
    if settings.database_url == args.to:
        print("The source and the target are the same database.", file=sys.stderr)
        return 2
    try:
        target = PostgresStorage(args.to)
    except StorageUnavailable as error:
        print(f"{error} ({error.__cause__})", file=sys.stderr)
        return 1
    source = open_storage(settings)
    try:
        print(f"Copying {source.location} to {hide_password(args.to)}", file=sys.stderr)
        print(copy_libraries(source, target, progress=_progress))
    finally:
        source.close()
        target.close()
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import run_bot

    given = {key: getattr(args, key, None) for key in ("webhook_url", "listen", "port", "workers")}
    return run_bot(settings.with_overrides(**{k: v for k, v in given.items() if v is not None}))


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.terminal import run_terminal_chat

    return run_terminal_chat(settings, args.chat)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="articlebot", description="Answer questions about news articles with quotes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Callable[..., int], help_text: str, chat: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if chat:
            sub.add_argument("--chat", default=TERMINAL_CHAT, help="library to use (a chat id)")
        return sub

    add = command("add", cmd_add, "add articles: URLs, files, folders, or - for stdin")
    add.add_argument("sources", nargs="+", metavar="URL|FILE|DIR|-")
    ask = command("ask", cmd_ask, "ask a question; prints the quotes that answer it")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    command("list", cmd_list, "list the articles of a library")
    remove = command("remove", cmd_remove, "remove an article by its short id")
    remove.add_argument("id")
    follow = command("follow", cmd_follow, "follow a news site or RSS/Atom feed: adds its articles")
    follow.add_argument("url", metavar="URL")
    command("feeds", cmd_feeds, "list the feeds a library follows")
    unfollow = command("unfollow", cmd_unfollow, "stop following a feed by its id")
    unfollow.add_argument("id")
    command("poll", cmd_poll, "fetch every due feed once, print what was added", chat=False)
    evaluate = command("eval", cmd_eval, "measure retrieval quality on a dataset", chat=False)
    evaluate.add_argument("folder", help="dataset folder, laid out like shared/eval/xquad")
    evaluate.add_argument("--split", default="dev")
    evaluate.add_argument("--pairs", help="e.g. de-de,en-de,en-en (default: all present)")
    evaluate.add_argument("--json", action="store_true", help="end with one JSON line")
    evaluate.add_argument("--no-negatives", action="store_true", help="skip the no-answer set")
    evaluate.add_argument(
        "--misses",
        type=int,
        default=0,
        metavar="N",
        help="print N questions whose first quote missed",
    )
    migrate = command(
        "migrate", cmd_migrate, "copy the libraries into a PostgreSQL database", chat=False
    )
    migrate.add_argument("--to", required=True, metavar="URL", help="postgresql://...")
    command("setup", cmd_setup, "prepare the model and data folder", chat=False)
    run = command("run", cmd_run, "run the Telegram bot (needs TELEGRAM_BOT_TOKEN)", chat=False)
    run.add_argument("--webhook-url", help="serve a webhook at this public URL instead of polling")
    run.add_argument("--listen", help="address the webhook listens on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="port the webhook listens on (default 8443)")
    run.add_argument("--workers", type=int, help="worker processes in webhook mode (default 1)")
    command("chat", cmd_chat, "talk to the bot in the terminal")
    return parser


def return_large_buffers_at_once() -> None:
    """Have the C allocator give every freed buffer over 128 KB back to the system at once.

    A question decodes a few megabytes of token codes, and the model's buffers are made anew
    on every pass. By default glibc raises that limit to the largest buffer freed so far, after
    which such buffers come from its heap and fragment it: a serving process grew from 630 MB
    to between 0.8 and 1.3 GB over 200 questions (`bench/bench.py`'s serving probe); with the
    limit fixed it stays at 630 MB. Elsewhere than glibc this does nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def main(argv: list[str] | None = None) -> None:
    return_large_buffers_at_once()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = _run(args)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        # The reader stopped early (`articlebot ask --json ... | head -1`): nothing is wrong.
        # Python flushes stdout again on exit, so it must go nowhere from now on.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.handler in (cmd_run, cmd_chat, cmd_migrate):
        return args.handler(settings, args)
    if args.handler is cmd_eval:
        return _run_eval(settings, args)
    library = Library(settings)
    try:
        return args.handler(library, args)
    finally:
        library.close()


def _run_eval(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluation builds its libraries in a throwaway data folder, never the user's (with a
    database URL, in chats of its own that it removes afterwards)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="articlebot-eval-") as scratch:
        library = Library(settings.with_overrides(data_dir=scratch))
        try:
            return cmd_eval(library, args)
        finally:
            library.close()
