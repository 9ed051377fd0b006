"""Measure answer quality on a question/answer dataset (the metric of shared/eval/README.md).

A dataset folder holds `articles.<lang>.<split>.jsonl` and `qa.<question-lang>-<article-lang>.
<split>.jsonl`. All articles of one language go into one library (one chat); every question is
asked there, and a quote is a hit when it comes from the question's article and its span
overlaps the answer's offsets. Each question is also asked against the library *without* its
article (the negative set), where the right reply is "no answer".
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from index.library import Library
from index.records import Answer, Article, ArticleDraft

RECALL_AT = (1, 3, 5)
MRR_AT = 10
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))

Progress = Callable[[Iterable, str, int], Iterable]


def _no_progress(items: Iterable, _description: str, _total: int) -> Iterable:
    return items


@dataclass(frozen=True)
class EvalArticle:
    article_id: str
    title: str
    language: str
    text: str

    def draft(self) -> ArticleDraft:
        """The article as the bot would take it in, pasted as text."""
        title = self.title.replace("_", " ")
        return ArticleDraft(title, self.text, self.language, source="text")


@dataclass(frozen=True)
class EvalQuestion:
    """One question; an unanswerable one has no answer span (`answer_start` is -1)."""

    id: str
    question: str
    article_id: str
    answer_start: int
    answer_end: int
    answerable: bool


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_articles(folder: Path, language: str, split: str) -> list[EvalArticle]:
    rows = _read_jsonl(folder / f"articles.{language}.{split}.jsonl")
    return [
        EvalArticle(r["article_id"], r["title"], r.get("lang", language), r["text"]) for r in rows
    ]


def load_questions(folder: Path, pair: str, split: str) -> list[EvalQuestion]:
    return [question_from_row(row) for row in _read_jsonl(folder / f"qa.{pair}.{split}.jsonl")]


def question_from_row(row: dict) -> EvalQuestion:
    """A question row; missing or null offsets make it unanswerable whatever its flag says."""
    start, end = row.get("answer_start"), row.get("answer_end")
    answerable = bool(row.get("answerable", True)) and start is not None and end is not None
    return EvalQuestion(
        row["id"],
        row["question"],
        row["article_id"],
        int(start) if answerable else -1,
        int(end) if answerable else -1,
        answerable,
    )


def available_pairs(folder: Path, split: str) -> list[str]:
    return sorted(p.name.split(".")[1] for p in folder.glob(f"qa.*.{split}.jsonl"))


def hit_rank(answer: Answer, question: EvalQuestion, article_ids: dict[str, int]) -> int | None:
    """1-based rank of the first quote that overlaps the answer, or None."""
    wanted = article_ids.get(question.article_id)
    for rank, quote in enumerate(answer.quotes[:MRR_AT], start=1):
        if (
            quote.article_id == wanted
            and quote.start < question.answer_end
            and question.answer_start < quote.end
        ):
            return rank
    return None


def _bootstrap(values: list[float], rounds: int = 1000, seed: int = 7) -> tuple[float, float]:
    """95% interval of the mean, by resampling questions."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(rounds))
    return (round(means[int(0.025 * rounds)], 4), round(means[int(0.975 * rounds) - 1], 4))


def summarise(ranks: list[int | None]) -> dict:
    """R@k and MRR@10 with 95% bootstrap intervals."""
    result: dict = {"n": len(ranks)}
    for k in RECALL_AT:
        values = [1.0 if r is not None and r <= k else 0.0 for r in ranks]
        result[f"R@{k}"] = round(sum(values) / max(len(values), 1), 4)
        result[f"R@{k}_ci95"] = list(_bootstrap(values))
    reciprocal = [1.0 / r if r is not None else 0.0 for r in ranks]
    result[f"MRR@{MRR_AT}"] = round(sum(reciprocal) / max(len(reciprocal), 1), 4)
    result[f"MRR@{MRR_AT}_ci95"] = list(_bootstrap(reciprocal))
    return result


def _share_below(scores: list[float], threshold: float) -> float:
    return round(sum(s < threshold for s in scores) / max(len(scores), 1), 4)


def refusal_curve(
    top3_hit_scores: list[float], no_answer_scores: list[float], no_answer: str = "absent_refused"
) -> list[dict[str, float]]:
    """For each threshold: the share of answerable top-3 hits refused (wrongly), and the share
    of questions without an answer refused (rightly), reported under the name `no_answer`."""
    return [
        {
            "threshold": t,
            "wrongly_refused": _share_below(top3_hit_scores, t),
            no_answer: _share_below(no_answer_scores, t),
        }
        for t in THRESHOLDS
    ]


class Evaluation:
    """Builds the libraries for a dataset and scores every question pair on them."""

    def __init__(
        self, library: Library, folder: Path, split: str, progress: Progress | None = None
    ) -> None:
        self.library = library
        self.folder = folder
        self.split = split
        self.progress = progress or _no_progress
        self._article_ids: dict[str, dict[str, int]] = {}
        # Chats of this run only: on a shared database, other libraries are never touched.
        # They share one encoding cache, so each article is read by the model once.
        self._run = uuid.uuid4().hex[:8]
        self._chats: set[str] = set()

    def _chat(self, language: str, purpose: str = "") -> str:
        chat = f"eval-{self._run}-{language}" + (f"-{purpose}" if purpose else "")
        self._chats.add(chat)
        return chat

    def _add(self, chat: str, draft: ArticleDraft) -> Article:
        return self.library.add_draft(chat, draft, cache_scope=self._run)

    def close(self) -> None:
        """Remove the libraries this evaluation built."""
        for chat in self._chats:
            self.library.forget(chat)

    def build(self, language: str) -> dict[str, int]:
        """Index all articles of one language into one chat; returns dataset id -> article id."""
        if language in self._article_ids:
            return self._article_ids[language]
        articles = load_articles(self.folder, language, self.split)
        chat = self._chat(language)
        self.library.forget(chat)
        ids = {}
        for article in self.progress(articles, f"indexing {language} articles", len(articles)):
            ids[article.article_id] = self._add(chat, article.draft()).id
        self._article_ids[language] = ids
        return ids

    def run_pair(self, pair: str, negatives: bool = True, misses: int = 0) -> dict:
        """Scores one question pair; with `misses`, also lists up to that many answerable
        questions whose first quote missed (question, the answer in its sentence, and the
        first quote), for reading what goes wrong."""
        article_language = pair.split("-")[1]
        article_ids = self.build(article_language)
        questions = load_questions(self.folder, pair, self.split)
        texts = {
            a.article_id: a.text for a in load_articles(self.folder, article_language, self.split)
        }
        chat = self._chat(article_language)
        missed: list[dict[str, str]] = []
        ranks: list[int | None] = []
        top3_hit_scores: list[float] = []
        unanswerable_scores: list[float] = []
        first_quote_words: list[int] = []
        for question in self.progress(questions, f"asking {pair}", len(questions)):
            answer = self.library.ask(chat, question.question)
            top = answer.quotes[0].score if answer.quotes else 0.0
            if not question.answerable:
                unanswerable_scores.append(top)
                continue
            rank = hit_rank(answer, question, article_ids)
            ranks.append(rank)
            if rank != 1 and len(missed) < misses:
                missed.append(_miss(question, texts[question.article_id], answer))
            first_quote_words.append(len(answer.quotes[0].text.split()) if answer.quotes else 0)
            if rank is not None and rank <= 3:
                top3_hit_scores.append(top)
        result = summarise(ranks)
        # What a hit costs the reader: longer quotes overlap answers more easily.
        result["first_quote_words"] = round(sum(first_quote_words) / max(len(ranks), 1), 1)
        threshold = self.library.settings.min_confidence
        absent_scores = self._absent_scores(questions, article_language) if negatives else []
        result["wrongly_refused"] = _share_below(top3_hit_scores, threshold)
        if negatives:
            result["absent_refused"] = _share_below(absent_scores, threshold)
            result["threshold_curve"] = refusal_curve(top3_hit_scores, absent_scores)
        if unanswerable_scores:
            result["n_unanswerable"] = len(unanswerable_scores)
            result["unanswerable_refused"] = _share_below(unanswerable_scores, threshold)
            result["unanswerable_curve"] = refusal_curve(
                top3_hit_scores, unanswerable_scores, "unanswerable_refused"
            )
        if misses:
            result["misses"] = missed
        return result

    def _absent_scores(self, questions: list[EvalQuestion], language: str) -> list[float]:
        """Top scores of each question asked against the library without its article.

        One library of the language's articles is built once; each article is taken out while
        its questions are asked, then put back (its sentences come from the encoding cache)."""
        by_article: dict[str, list[EvalQuestion]] = {}
        for question in questions:
            if question.answerable:
                by_article.setdefault(question.article_id, []).append(question)
        chat = self._chat(language, "absent")
        self.library.forget(chat)
        drafts = {a.article_id: a.draft() for a in load_articles(self.folder, language, self.split)}
        numbers = {key: self._add(chat, draft).number for key, draft in drafts.items()}
        scores = []
        for left_out, group in self.progress(
            list(by_article.items()), "asking without the answering article", len(by_article)
        ):
            if left_out in numbers:
                self.library.remove(chat, numbers[left_out])
            for question in group:
                answer = self.library.ask(chat, question.question)
                scores.append(answer.quotes[0].score if answer.quotes else 0.0)
            if left_out in drafts:
                numbers[left_out] = self._add(chat, drafts[left_out]).number
        self.library.forget(chat)
        return scores


def _miss(question: EvalQuestion, text: str, answer: Answer) -> dict[str, str]:
    """A question whose first quote missed: the answer shown within its sentence (from the
    sentence end before it to the one after it), and what was quoted instead."""
    start = max(text.rfind(end, 0, question.answer_start) for end in (". ", "\n")) + 1
    stops = [i for i in (text.find(end, question.answer_end) for end in (". ", "\n")) if i >= 0]
    end = min(stops, default=len(text)) + 1
    return {
        "question": question.question,
        "expected": text[start:end].strip(),
        "first_quote": answer.quotes[0].text if answer.quotes else "",
        "score": f"{answer.quotes[0].score:.3f}" if answer.quotes else "",
    }
