"""Copy every library from one engine to another, with no model time spent again.

What the model made of each sentence travels with it, so the target answers exactly as the
source did. Articles keep their chats and short ids; an article the target holds already is
skipped, so an interrupted copy can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from index.records import ArticleExport
from index.storage.base import Storage

Progress = Callable[[Iterable, str, int], Iterable]


@dataclass
class TransferReport:
    """What a copy did: counts of what it stored, and of articles the target had already."""

    chats: set[str] = field(default_factory=set)
    articles: int = 0
    sentences: int = 0
    encodings: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"Copied {self.articles} articles of {len(self.chats)} chats ({self.sentences} "
            f"sentences, {self.encodings} encodings); {self.skipped} were there already."
        )


def copy_libraries(
    source: Storage, target: Storage, progress: Progress | None = None
) -> TransferReport:
    """Copy every article of `source` into `target`."""
    report = TransferReport()
    exports: Iterator[ArticleExport] = source.export_articles()
    total = source.article_count()
    for export in progress(exports, "copying", total) if progress else exports:
        if not target.import_article(export):
            report.skipped += 1
            continue
        report.chats.add(export.article.chat_id)
        report.articles += 1
        report.sentences += len(export.sentences)
        report.encodings += sum(len(encodings) for encodings in export.encodings.values())
    return report
