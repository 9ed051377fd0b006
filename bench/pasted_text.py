"""How well a pasted message is told apart: article to add, or question to answer.

Runs `bot.conversation.reads_like_article` over the XQuAD dev questions (none should be taken
for an article), the whole articles and their single paragraphs (as someone pasting part of
an article would send them). No model is needed; it takes a second.

    .venv/bin/python bench/pasted_text.py [--data ../shared/eval/xquad]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.conversation import reads_like_article


def _lines(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob(pattern)) for line in path.open()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/eval/xquad"))
    folder = parser.parse_args().data
    questions = [qa["question"] for qa in _lines(folder, "qa.*.dev.jsonl")]
    articles = [article["text"] for article in _lines(folder, "articles.*.dev.jsonl")]
    paragraphs = [p for text in articles for p in text.split("\n") if p.strip()]
    for name, texts in (
        ("questions taken for articles", questions),
        ("articles recognised", articles),
        ("single paragraphs recognised", paragraphs),
    ):
        print(f"{name}: {sum(map(reads_like_article, texts))} of {len(texts)}")


if __name__ == "__main__":
    main()
