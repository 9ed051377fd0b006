"""Memory under the amplification attack of issue 14: does asking grow the process?

Twelve articles that are each one "sentence" of 299,000 characters are added to one chat,
then 50 questions are asked there and every answer is remembered, as the bot does. Prints the
resident memory (RSS) before and after the questions; bounded sentences and a bounded answer
memory keep the difference within a few MB.

    .venv/bin/python bench/amplification.py [--articles 12] [--questions 50]

The articles share their words (each starts with its own number), so after the first one the
encoding cache saves most of the model time; what is stored and asked is the same.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from index.config import load_settings
from index.library import Library
from index.records import ArticleDraft

CHAT = "amplification"
ARTICLE_CHARS = 299_000
WORDS = (
    "die Regierung bestätigte das Treffen der Minister in der Hauptstadt und der Sprecher "
    "sagte dass die Gespräche über den Handel die Grenzen und die Energie weitergehen "
)
QUESTION_WORDS = ("Regierung", "Treffen", "Minister", "Sprecher", "Handel", "Energie")


def rss_mb() -> float:
    """The resident memory of this process now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def article(number: int) -> ArticleDraft:
    """One "sentence" of ARTICLE_CHARS characters: words without a full stop."""
    text = (f"Bericht {number:02d} " + WORDS * (ARTICLE_CHARS // len(WORDS) + 1))[:ARTICLE_CHARS]
    return ArticleDraft(f"Bericht {number:02d}", text, "de", "text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=12)
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="articlebot-amplification-") as scratch:
        settings = load_settings().with_overrides(
            data_dir=scratch,
            max_chars_per_chat=args.articles * ARTICLE_CHARS,
            max_adds_per_user_per_hour=args.articles,
        )
        library = Library(settings)
        library.warm_up()
        started = time.perf_counter()
        for number in range(args.articles):
            library.add_draft(CHAT, article(number))
        added = time.perf_counter() - started
        library.ask(CHAT, "Was bestätigte die Regierung?")  # caches warm before measuring
        baseline = rss_mb()
        stored = 0
        for number in range(args.questions):
            words = QUESTION_WORDS[number % len(QUESTION_WORDS)]
            answer = library.ask(CHAT, f"Was sagte der {words} Nummer {number}?")
            library.memory.record(CHAT, 1000 + number, answer)
            stored += len(library.storage.recall_answer(CHAT, 1000 + number) or "")
        after = rss_mb()
        library.close()
    print(
        f"{args.articles} articles of {ARTICLE_CHARS:,} characters added in {added:.0f} s; "
        f"{args.questions} questions: RSS {baseline:.1f} MB before, {after:.1f} MB after "
        f"({after - baseline:+.1f} MB); remembered answers {stored:,} characters in all"
    )


if __name__ == "__main__":
    main()
