"""The quality metric of shared/eval/README.md: ranks of hits, Recall@k and MRR@10, checked by
hand on constructed answers and recomputed independently on a slice of XQuAD."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from index.evaluation import (
    EvalQuestion,
    Evaluation,
    hit_rank,
    load_articles,
    load_questions,
    question_from_row,
    summarise,
)
from index.library import Library
from index.records import Answer, Article, Quote, Sentence

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "eval" / "xquad"
NEWS_QA = Path(__file__).resolve().parent / "data" / "news_qa"
SLICE = ("xquad-002", "xquad-004")  # Normans, Computational complexity theory
QUESTIONS_PER_ARTICLE = 6


def record(kind: type, **values: object) -> object:
    """A record with the given fields; fields added to the record type later get a zero."""
    return kind(**{f.name: values.get(f.name, 0) for f in fields(kind)})


def make_article(article_id: int, text: str) -> Article:
    return record(
        Article,
        id=article_id,
        chat_id="eval",
        number=article_id,
        text=text,
        title=f"Article {article_id}",
        language="de",
        source="text",
        url=None,
        canonical_url=None,
        author=None,
        published=None,
        added_by=None,
        added_at="2025-01-01T00:00:00+00:00",
        text_hash=str(article_id),
    )


def make_quote(article: Article, start: int, end: int) -> Quote:
    sentence = record(
        Sentence, id=article.id * 1000 + start, article_id=article.id, start=start, end=end
    )
    return Quote.of(article, sentence, 0.5)


ARTICLE_A = make_article(10, "a" * 400)
ARTICLE_B = make_article(20, "b" * 400)
IDS = {"xq-a": ARTICLE_A.id, "xq-b": ARTICLE_B.id}
QUESTION = EvalQuestion("q1", "Wer?", "xq-a", answer_start=100, answer_end=110, answerable=True)


def answer_of(*quotes: Quote) -> Answer:
    return Answer("Wer?", list(quotes), found=True)


def test_hit_needs_the_right_article_and_an_overlapping_span() -> None:
    """A quote is a hit only if it comes from the question's article and overlaps the answer's
    offsets (end exclusive): here the first two quotes miss, the third is the hit."""
    answer = answer_of(
        make_quote(ARTICLE_B, 90, 130),  # overlaps, but another article
        make_quote(ARTICLE_A, 0, 100),  # right article, ends where the answer starts
        make_quote(ARTICLE_A, 105, 150),  # right article, overlapping
    )
    assert hit_rank(answer, QUESTION, IDS) == 3
    assert hit_rank(answer_of(make_quote(ARTICLE_A, 109, 120)), QUESTION, IDS) == 1
    assert hit_rank(answer_of(make_quote(ARTICLE_A, 110, 120)), QUESTION, IDS) is None


def test_hits_beyond_rank_ten_and_empty_answers_do_not_count() -> None:
    """Only the first ten quotes are looked at; no quotes means no hit."""
    misses = [make_quote(ARTICLE_A, 200 + i, 210 + i) for i in range(10)]
    assert hit_rank(answer_of(*misses, make_quote(ARTICLE_A, 100, 110)), QUESTION, IDS) is None
    assert hit_rank(answer_of(*misses[:9], make_quote(ARTICLE_A, 100, 110)), QUESTION, IDS) == 10
    assert hit_rank(Answer("Wer?"), QUESTION, IDS) is None


def test_recall_and_mrr_from_known_ranks() -> None:
    """Known ranks give the hand-computed Recall@1/3/5 and MRR@10, inside their intervals."""
    ranks = [1, 3, None, 5, 2, None, 10, 4]
    result = summarise(ranks)
    assert result["n"] == 8
    assert result["R@1"] == pytest.approx(1 / 8, abs=1e-4)
    assert result["R@3"] == pytest.approx(3 / 8, abs=1e-4)
    assert result["R@5"] == pytest.approx(5 / 8, abs=1e-4)
    mrr = (1 + 1 / 3 + 1 / 5 + 1 / 2 + 1 / 10 + 1 / 4) / 8
    assert result["MRR@10"] == pytest.approx(mrr, abs=1e-4)
    for name in ("R@1", "R@3", "R@5", "MRR@10"):
        low, high = result[f"{name}_ci95"]
        assert low <= result[name] <= high


def test_all_hits_at_rank_one_and_none_at_all() -> None:
    """The extremes: every answer first gives 1 everywhere, no hits gives 0 everywhere."""
    perfect, useless = summarise([1, 1, 1]), summarise([None, None])
    for name in ("R@1", "R@3", "R@5", "MRR@10"):
        assert perfect[name] == 1.0
        assert useless[name] == 0.0


def write_slice(folder: Path) -> None:
    """Two German XQuAD articles and the first of their English questions, as split "mini"."""
    folder.mkdir()
    for source, target in [
        ("articles.de.dev.jsonl", "articles.de.mini.jsonl"),
        ("qa.en-de.dev.jsonl", "qa.en-de.mini.jsonl"),
    ]:
        rows = (XQUAD / source).read_text(encoding="utf-8").splitlines()
        kept = []
        for article_id in SLICE:
            mine = [
                row for row in rows if row.strip() and json.loads(row)["article_id"] == article_id
            ]
            kept += mine[:QUESTIONS_PER_ARTICLE] if source.startswith("qa.") else mine
        (folder / target).write_text("\n".join(kept) + "\n", encoding="utf-8")


@pytest.mark.skipif(not XQUAD.is_dir(), reason="shared/eval/xquad is not next to the project")
def test_metrics_on_an_xquad_slice_match_an_independent_count(
    library: Library, tmp_path: Path
) -> None:
    """On two German XQuAD articles with a dozen English questions, the reported Recall@k,
    MRR@10 and mean length of the first quote equal the ones counted here from the library's
    own answers, R@1 <= R@3 <= R@5, retrieval is clearly better than chance (R@5 at least 0.5
    among about 50 sentences), and the refusal curve rises with the threshold."""
    folder = tmp_path / "mini"
    write_slice(folder)
    evaluation = Evaluation(library, folder, "mini")
    result = evaluation.run_pair("en-de", negatives=True)
    questions = load_questions(folder, "en-de", "mini")
    assert result["n"] == len(questions) == 2 * QUESTIONS_PER_ARTICLE

    article_ids = evaluation.build("de")
    (chat,) = {a.chat_id for a in library.storage.articles_by_ids(article_ids.values()).values()}
    ranks = []
    words = []
    for question in questions:
        answer = library.ask(chat, question.question)
        words.append(len(answer.quotes[0].text.split()) if answer.quotes else 0)
        article = article_ids[question.article_id]
        hits = [
            rank
            for rank, quote in enumerate(answer.quotes[:10], start=1)
            if quote.article_id == article
            and quote.start < question.answer_end
            and quote.end > question.answer_start
        ]
        ranks.append(hits[0] if hits else None)
    for k in (1, 3, 5):
        counted = sum(r is not None and r <= k for r in ranks) / len(ranks)
        assert result[f"R@{k}"] == pytest.approx(counted, abs=1e-4), k
    mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
    assert result["MRR@10"] == pytest.approx(mrr, abs=1e-4)
    assert result["first_quote_words"] == pytest.approx(sum(words) / len(words), abs=0.05)
    assert result["R@1"] <= result["R@3"] <= result["R@5"] <= 1
    assert result["R@5"] >= 0.5, result

    curve = result["threshold_curve"]
    for column in ("wrongly_refused", "absent_refused"):
        shares = [row[column] for row in curve]
        assert shares == sorted(shares) and all(0 <= s <= 1 for s in shares), column


def test_null_offsets_make_a_question_unanswerable() -> None:
    """Rows with `answer_start: null` load (no TypeError) as unanswerable, even without the
    `answerable` flag; answerable rows keep their offsets, which hold the answer text."""
    questions = load_questions(NEWS_QA, "de-de", "mini")
    assert [q.answerable for q in questions] == [True] * 4 + [False] * 3
    texts = {a.article_id: a.text for a in load_articles(NEWS_QA, "de", "mini")}
    rows = [json.loads(line) for line in (NEWS_QA / "qa.de-de.mini.jsonl").open()]
    for question, row in zip(questions, rows, strict=True):
        if question.answerable:
            span = texts[question.article_id][question.answer_start : question.answer_end]
            assert span == row["answer_text"]
    unflagged = {"id": "x", "question": "Wer?", "article_id": "a", "answer_start": None}
    assert not question_from_row(unflagged).answerable


def test_unanswerable_questions_count_only_as_refusals(library: Library) -> None:
    """On a dataset with unanswerable questions, R@k is over the answerable ones only, and
    `unanswerable_refused` is the share of the others whose best quote scores below the
    threshold, counted here from the library's own answers. The refusal curve for them starts
    at nothing refused (threshold 0) and ends at everything refused (threshold 1)."""
    evaluation = Evaluation(library, NEWS_QA, "mini")
    result = evaluation.run_pair("de-de", negatives=False)
    assert result["n"] == 4 and result["n_unanswerable"] == 3
    assert result["R@3"] == 1.0, result  # clear-cut answers in two short articles

    (chat,) = {
        a.chat_id for a in library.storage.articles_by_ids(evaluation.build("de").values()).values()
    }
    threshold = library.settings.min_confidence
    unanswerable = [q for q in load_questions(NEWS_QA, "de-de", "mini") if not q.answerable]
    refused = [library.ask(chat, q.question).quotes[0].score < threshold for q in unanswerable]
    assert result["unanswerable_refused"] == pytest.approx(sum(refused) / 3, abs=1e-4)

    curve = result["unanswerable_curve"]
    first, last = curve[0], curve[-1]
    assert first["unanswerable_refused"] == first["wrongly_refused"] == 0.0
    assert last["unanswerable_refused"] == last["wrongly_refused"] == 1.0
    shares = [row["unanswerable_refused"] for row in curve]
    assert shares == sorted(shares)


def test_misses_show_the_answer_sentence_and_the_first_quote(
    library: Library, tmp_path: Path
) -> None:
    """With `misses`, a question whose first quote is not the answer is listed with the
    sentence holding the expected answer and what was quoted instead. The miss is made sure
    here by a question whose labelled answer is another sentence."""
    folder = tmp_path / "news"
    folder.mkdir()
    articles = (NEWS_QA / "articles.de.mini.jsonl").read_text(encoding="utf-8")
    (folder / "articles.de.mini.jsonl").write_text(articles, encoding="utf-8")
    text = json.loads(articles.splitlines()[0])["text"]
    labelled = "Über den Kredit stimmt die Bevölkerung im kommenden Jahr ab."
    start = text.index("Kredit")
    rows = [
        {"id": "miss", "question": "Wie viele Haltestellen hat die neue Tramlinie?",
         "article_id": "news-1", "answer_start": start, "answer_end": start + 6},
    ]  # fmt: skip
    (folder / "qa.de-de.mini.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8"
    )
    result = Evaluation(library, folder, "mini").run_pair("de-de", negatives=False, misses=5)
    (miss,) = result["misses"]
    assert miss["question"] == "Wie viele Haltestellen hat die neue Tramlinie?"
    assert miss["expected"] == labelled
    assert "elf Haltestellen" in miss["first_quote"] and float(miss["score"]) > 0
