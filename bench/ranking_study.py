"""Replay the re-ranking on a dataset with variants of its evidence, in seconds per variant.

Indexes a dataset's articles once (like `articlebot eval`), keeps for every question its 100
nearest sentences with the ranking's three pieces of evidence and, per question word, its best
match in the sentence; then scores variants of the ranking and of the "no answer" decision
on that record. Offline: quotes are single sentences (no joining), so R@1 reads a few points
lower than `articlebot eval`; compare variants with each other, not with the README's table.

    .venv/bin/python bench/ranking_study.py .data/m2qa --pair de-de

Variants are checked on the even and the odd articles apart, so a gain that is not on both
halves is noise.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.answer import retrieve
from index.answer.query import Query
from index.config import load_settings
from index.evaluation import load_articles, load_questions
from index.language import detect_language
from index.library import Library

DEPTH = 100
CHAT = "study"


@dataclass
class Candidate:
    article: int
    start: int
    end: int
    sentence: float
    passage: float
    vector: float
    other_language: bool
    text: str
    best: np.ndarray  # each question token's best similarity in the sentence


@dataclass
class Asked:
    answerable: bool
    article: int
    start: int
    end: int
    weights: np.ndarray
    candidates: list[Candidate]

    def hit(self, candidate: Candidate) -> bool:
        return (
            candidate.article == self.article
            and candidate.start < self.end
            and self.start < candidate.end
        )


def record(folder: Path, pair: str, split: str) -> list[Asked]:
    """Every question of `pair` with its candidates and their evidence."""
    language = pair.split("-")[1]
    with tempfile.TemporaryDirectory() as scratch:
        library = Library(load_settings().with_overrides(data_dir=scratch))
        ids = {
            a.article_id: library.add_draft(CHAT, a.draft()).id
            for a in load_articles(folder, language, split)
        }
        storage, retriever = library.storage, library.answers.retriever
        texts = {a.id: a.text for a in storage.articles(CHAT)}
        asked = []
        for question in load_questions(folder, pair, split):
            text = " ".join(question.question.split())
            query_language = detect_language(text, among=storage.chat_languages(CHAT))
            query = Query.of(library.embedder.encode_query(text), query_language)
            weights = retriever.rarity.weights(CHAT, query.tokens.ids) * query.tokens.content
            if weights.sum() == 0:
                weights = np.ones_like(weights)
            weights = retrieve._spread_over_words(weights, query.words)
            matrix = query.tokens.vectors.astype(np.float32)
            scores, found = storage.search(CHAT, retriever.model_key, query.vector, DEPTH)
            mates = storage.passage_mates(retriever.model_key, found)
            sources = storage.sentence_sources(found)
            tokens = storage.sentence_tokens(
                retriever.model_key, {m for group in mates.values() for m in group}
            )
            sentences = storage.sentences_by_ids(int(i) for i in found)
            candidates = []
            for vector_score, sentence_id in zip(scores, found, strict=True):
                sentence_id = int(sentence_id)
                if sentence_id not in tokens:
                    continue
                group = [tokens[m] for m in mates.get(sentence_id, [sentence_id]) if m in tokens]
                passage = retrieve._match(matrix, weights, retrieve._concatenate(group))[0]
                own = tokens[sentence_id]
                best = (matrix @ own.vectors.astype(np.float32).T).max(axis=1)
                s = sentences[sentence_id]
                candidates.append(
                    Candidate(
                        s.article_id, s.start, s.end,
                        retrieve._match(matrix, weights, own)[0], passage, float(vector_score),
                        sources[sentence_id][1] != query_language,
                        texts[s.article_id][s.start : s.end], best,
                    )
                )  # fmt: skip
            asked.append(
                Asked(
                    question.answerable, ids.get(question.article_id, -1),
                    question.answer_start, question.answer_end, weights, candidates,
                )
            )  # fmt: skip
        library.close()
    return asked


def today(c: Candidate) -> float:
    """The score the bot gives a candidate today."""
    return (
        retrieve.WEIGHT_SENTENCE * c.sentence
        + retrieve.WEIGHT_PASSAGE * c.passage
        + retrieve.WEIGHT_VECTOR * c.vector
        + (retrieve.CROSS_LANGUAGE_BONUS if c.other_language else 0.0)
    )


def ranked(a: Asked, depth: int, extra=None) -> list[Candidate]:
    pool = a.candidates[:depth]
    scores = [today(c) for c in pool]
    if extra is not None:
        scores = [s + extra(a, pool, scores, i) for i, s in enumerate(scores)]
    order = np.argsort(-np.array(scores), kind="stable")
    return [pool[i] for i in order]


def recall(asked: list[Asked], depth: int = 40, extra=None) -> tuple[float, float]:
    answerable = [a for a in asked if a.answerable]
    lists = [ranked(a, depth, extra) for a in answerable]
    r1 = np.mean([a.hit(r[0]) for a, r in zip(answerable, lists, strict=True) if r])
    r3 = np.mean([any(a.hit(c) for c in r[:3]) for a, r in zip(answerable, lists, strict=True)])
    return round(float(r1), 3), round(float(r3), 3)


def article_support(weight: float):
    """Extra score: the mean of the three best scores of the candidate's article."""

    def extra(a: Asked, pool: list[Candidate], scores: list[float], i: int) -> float:
        same = sorted(
            (s for c, s in zip(pool, scores, strict=True) if c.article == pool[i].article)
        )
        return weight * float(np.mean(same[-3:]))

    return extra


def question_penalty(weight: float):
    """A sentence that is itself a question rarely answers one."""

    def extra(a: Asked, pool: list[Candidate], scores: list[float], i: int) -> float:
        return -weight if pool[i].text.rstrip().endswith("?") else 0.0

    return extra


def decision_features(a: Asked) -> list[float]:
    """What a "no answer" model could use about the best candidate."""
    order = ranked(a, 40)
    first, second = order[0], order[1]
    w = a.weights / (a.weights.sum() or 1)
    telling = a.weights >= np.median(a.weights[a.weights > 0])
    return [
        today(first),
        today(first) - today(second),
        float((w * (first.best >= 0.8)).sum()),
        float((w * (first.best >= 0.7)).sum()),
        float(first.best[telling].min()),
    ]


def refusal(fitted_on: list[Asked], tested_on: list[Asked]) -> None:
    """Unanswerable questions refused at 5% of answerable top-3 hits refused: the score alone
    and a logistic model of `decision_features`, each fitted on one half, tested on the other."""
    from sklearn.linear_model import LogisticRegression

    def rows(part: list[Asked]) -> tuple[np.ndarray, np.ndarray]:
        kept = [a for a in part if not a.answerable or any(a.hit(c) for c in ranked(a, 40)[:3])]
        return np.array([decision_features(a) for a in kept]), np.array(
            [a.answerable for a in kept]
        )

    def at_five_percent(p_fit: np.ndarray, y_fit: np.ndarray, p: np.ndarray, y: np.ndarray) -> str:
        threshold = np.sort(p_fit[y_fit])[int(0.05 * y_fit.sum())]
        return f"refused {np.mean(p[~y] < threshold):.1%}, wrongly {np.mean(p[y] < threshold):.1%}"

    fit, test = rows(fitted_on), rows(tested_on)
    print("  score alone:   ", at_five_percent(fit[0][:, 0], fit[1], test[0][:, 0], test[1]))
    model = LogisticRegression(max_iter=1000).fit(*fit)
    p_fit, p_test = model.predict_proba(fit[0])[:, 1], model.predict_proba(test[0])[:, 1]
    print("  logistic model:", at_five_percent(p_fit, fit[1], p_test, test[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pair", default="de-de")
    parser.add_argument("--split", default="dev")
    args = parser.parse_args()
    asked = record(args.folder, args.pair, args.split)
    halves = [a for a in asked if a.article % 2 == 0], [a for a in asked if a.article % 2 == 1]
    variants = {
        "today (40 candidates)": (40, None),
        "100 candidates": (100, None),
        "article support 0.2": (40, article_support(0.2)),
        "question sentences -0.05": (40, question_penalty(0.05)),
    }
    print("R@1 / R@3 on answerable questions: all · even articles · odd articles")
    for name, (depth, extra) in variants.items():
        print(f"  {name:26}", *(recall(part, depth, extra) for part in (asked, *halves)))
    if any(not a.answerable for a in asked):
        print("Unanswerable questions (fitted on even articles, tested on odd ones):")
        refusal(*halves)


if __name__ == "__main__":
    main()
