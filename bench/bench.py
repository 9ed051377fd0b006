"""Speed, size and memory of the article index, beside a Haystack pipeline, on XQuAD dev.

One run measures, all on the same machine at the same time (so read the figures as ratios):

- ingest: sentences per second while all dev articles are added (and without the time the
  library spent learning its token codebook, once, and compacting), and the raw fp32 model's
  own encode rate on the same sentences (sentence-transformers, no context, no storage);
- question: latency p50/p95 over every dev question, and of embedding the question alone;
  R@1 per language pair, as `articlebot eval` counts it;
- storage: bytes of the data folder (SQLite database and FAISS files) per sentence;
- memory: peak RSS of a fresh serving process (model loaded, the dev library open, 200
  questions asked), and its cold start (a new `articlebot ask` process to its printed answer);
- scale: one chat of 1,000,000 sentences searched through the approximate index the bot
  switches to for large chats; recall of the exact top 40 and question latency p95;
- peer: Haystack 2 (in-memory document store, sentence-transformers embedders with the same
  converted model, embedding retriever) indexing the same sentences and answering the same
  questions: its adding speed, question p95 and R@1.

The last line printed is one JSON object with all of it.

    .venv/bin/python bench/bench.py [--data ../shared/eval/xquad] [--no-peer] [--scale 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.cli import return_large_buffers_at_once
from index.config import Settings, load_settings
from index.evaluation import EvalQuestion, hit_rank, load_articles, load_questions
from index.library import Library
from index.packaged_model import PACKAGED_MODEL_NAME, provision_packaged_model
from index.records import ArticleDraft
from index.storage.faiss_files import ApproximateIndex

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ("de-de", "en-de", "en-en")
CANDIDATES = 40  # the top-k whose recall the approximate index is measured on
SERVING_QUESTIONS = 200


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(values: list[float]) -> dict:
    return {
        "p50_ms": round(_percentile(values, 0.5), 1),
        "p95_ms": round(_percentile(values, 0.95), 1),
    }


@dataclass
class Corpus:
    """The dev articles as the bot split them: per language, (dataset id, text, sentence
    spans), and the questions per pair."""

    articles: dict[str, list[tuple[str, str, list[tuple[int, int]]]]]
    questions: dict[str, list[EvalQuestion]]

    @property
    def sentences(self) -> list[str]:
        return [text[a:b] for parts in self.articles.values() for _, text, spans in parts
                for a, b in spans]  # fmt: skip


# Ours


def measure_ours(settings: Settings, data: Path, limit: int) -> tuple[dict, Corpus, Library]:
    """Add the dev articles (the first `limit` per language), ask their questions; the
    library stays open for `measure_scale`."""
    library = Library(settings)
    library.warm_up()
    compaction = _time_compaction(library)
    ids: dict[str, dict[str, int]] = {}
    articles: dict[str, list] = {}
    sentences, seconds = 0, 0.0
    for language in ("de", "en"):
        ids[language], articles[language] = {}, []
        for article in load_articles(data, language, "dev")[:limit]:
            draft = ArticleDraft(article.title, article.text, article.language, "text")
            started = time.perf_counter()
            added = library.add_draft(f"bench-{language}", draft)
            seconds += time.perf_counter() - started
            sentences += added.sentence_count
            ids[language][article.article_id] = added.id
            spans = [(s.start, s.end) for s in library.storage.sentences_of(added.id)]
            articles[language].append((article.article_id, article.text, spans))
    questions = {
        pair: [q for q in load_questions(data, pair, "dev") if q.article_id in ids[pair[-2:]]]
        for pair in PAIRS
    }
    latencies, embedding, recall = [], [], {}
    for pair, asked in questions.items():
        language = pair.split("-")[1]
        hits = []
        for question in asked:
            started = time.perf_counter()
            answer = library.ask(f"bench-{language}", question.question)
            latencies.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            library.embedder.encode_query(question.question)
            embedding.append(1000 * (time.perf_counter() - started))
            if question.answerable:
                hits.append(hit_rank(answer, question, ids[language]) == 1)
        recall[pair] = round(sum(hits) / len(hits), 3)
    result = {
        "ingest": {
            "sentences": sentences,
            "sentences_per_s": round(sentences / seconds, 1),
            "compaction_s": round(sum(compaction), 1),
            "sentences_per_s_besides_compaction": round(sentences / (seconds - sum(compaction)), 1),
        },
        "question": {
            "questions": len(latencies),
            **_ms(latencies),
            "embed_only_p95_ms": round(_percentile(embedding, 0.95), 1),
        },
        "R@1": recall,
    }
    return result, Corpus(articles, questions), library


def _time_compaction(library: Library) -> list[float]:
    """Seconds each compaction of the library took (after every add; learning the codebook
    once, then rewriting what was stored in full), as the adds go on."""
    storage, seconds = library.storage, []
    compact = storage._compact

    def timed(model: object) -> None:
        started = time.perf_counter()
        compact(model)
        seconds.append(time.perf_counter() - started)

    storage._compact = timed
    return seconds


def raw_fp32_rate(settings: Settings, sentences: list[str]) -> float:
    """Sentences per second of the plain fp32 sentence-transformers model, batch of 32."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_model_folder(settings)), device="cpu")
    started = time.perf_counter()
    model.encode(sentences, batch_size=32, prompt="passage: ")
    return round(len(sentences) / (time.perf_counter() - started), 1)


def _model_folder(settings: Settings) -> Path:
    if settings.model == PACKAGED_MODEL_NAME:
        return provision_packaged_model(Path(settings.model_cache_dir))
    return Path(settings.model)


def storage_bytes_per_sentence(data_dir: Path, sentences: int) -> float:
    """Everything in the data folder (database, its journal, FAISS files) per sentence."""
    size = sum(path.stat().st_size for path in data_dir.rglob("*") if path.is_file())
    return round(size / sentences)


def serving_probe(data_dir: Path, data: Path) -> None:
    """(Run in a fresh process.) Open the library, ask questions, print peak RSS; with the
    allocator set up as `articlebot` sets it up."""
    return_large_buffers_at_once()
    library = Library(load_settings().with_overrides(data_dir=data_dir))
    for question in load_questions(data, "de-de", "dev")[:SERVING_QUESTIONS]:
        library.ask("bench-de", question.question)
    library.close()
    print(json.dumps({"peak_rss_mb": round(_peak_rss_kb() / 1024)}))


def _peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
    exec from the process that started this one, so it reported the bench's own peak (the
    PyTorch model and the whole library loaded), not the serving process's."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_serving(data_dir: Path, data: Path) -> dict:
    command = [sys.executable, __file__, "--serving-probe", str(data_dir), "--data", str(data)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    memory = json.loads(output.stdout.strip().splitlines()[-1])
    environment = {**os.environ, "ARTICLEBOT_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    question = "Wer gewann den Super Bowl?"
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "ask", "--chat", "bench-de", question],
        check=True, capture_output=True, env=environment, cwd=ROOT,
    )  # fmt: skip
    return {"memory": memory, "cold_start_s": round(time.perf_counter() - started, 2)}


# Scale


def synthetic_vectors(real: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` unit vectors shaped like `real` ones: each is a real sentence vector moved a
    random part of the way towards another real one, plus Gaussian noise of half the real
    vectors' spread per dimension. Returns the vectors and the real row each was made from."""
    rng = np.random.default_rng(seed)
    spread = real.std(axis=0)
    base = rng.integers(0, len(real), count)
    vectors = np.empty((count, real.shape[1]), dtype=np.float32)
    for first in range(0, count, 100_000):
        rows = base[first : first + 100_000]
        other = real[rng.integers(0, len(real), len(rows))]
        share = rng.uniform(0, 0.5, (len(rows), 1)).astype(np.float32)
        chunk = real[rows] + share * (other - real[rows])
        chunk += 0.5 * spread * rng.standard_normal(chunk.shape).astype(np.float32)
        vectors[first : first + len(rows)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors, base


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of each query's exact top `k`, by brute force in chunks."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for first in range(0, len(vectors), 200_000):
        scores = queries @ vectors[first : first + 200_000].T
        rows = np.arange(first, first + scores.shape[1])[None, :].repeat(len(queries), axis=0)
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate([best_rows, rows], axis=1)
        keep = np.argsort(-scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_rows = np.take_along_axis(rows, keep, axis=1)
    return best_rows


class _MillionSentenceStorage:
    """The dev library's storage, with one chat searched over the synthetic vectors: each
    found row stands for the real sentence it was made from, so re-ranking and quoting run
    on real sentences, as in a chat of that size."""

    def __init__(self, storage, index: ApproximateIndex, sentence_of: np.ndarray) -> None:
        self._storage = storage
        self._index = index
        self._sentence_of = sentence_of

    def search(self, chat_id: str, model: str, vector: np.ndarray, k: int):
        scores, rows = self._index.search(vector.reshape(1, -1).astype(np.float32), k)
        ids = self._sentence_of[rows]
        _, first = np.unique(ids, return_index=True)
        first.sort()
        return scores[first], ids[first]

    def __getattr__(self, name: str):
        return getattr(self._storage, name)


def measure_scale(library: Library, corpus: Corpus, count: int) -> dict:
    model = library.embedder.model_key
    sentence_ids, real = library.storage.chat_vectors("bench-de", model)
    vectors, base = synthetic_vectors(real, count)
    started = time.perf_counter()
    index = ApproximateIndex.build(vectors, np.arange(count, dtype=np.int64))
    build_s = time.perf_counter() - started
    asked = [q.question for pair in ("de-de", "en-de") for q in corpus.questions[pair]]
    asked = asked[:: max(1, len(asked) // SERVING_QUESTIONS)][:SERVING_QUESTIONS]
    queries = np.array([library.embedder.encode_query(q).vector for q in asked], dtype=np.float32)
    exact = _exact_top(vectors, queries, CANDIDATES)
    del vectors
    found = [np.intersect1d(index.search(q[None, :], CANDIDATES)[1], e).size
             for q, e in zip(queries, exact, strict=True)]  # fmt: skip
    scaled = Library(
        library.settings,
        embedder=library.embedder,
        storage=_MillionSentenceStorage(library.storage, index, sentence_ids[base]),
    )
    latencies = []
    for question in asked:
        started = time.perf_counter()
        scaled.ask("bench-de", question)
        latencies.append(1000 * (time.perf_counter() - started))
    return {
        "sentences": count,
        "question_p95_ms": round(_percentile(latencies, 0.95), 1),
        "question_p50_ms": round(_percentile(latencies, 0.5), 1),
        "recall_at_40": round(sum(found) / (CANDIDATES * len(found)), 4),
        "index_build_s": round(build_s, 1),
    }


# The peer


def measure_peer(settings: Settings, corpus: Corpus) -> dict:
    """Haystack 2 on the same sentences and questions (one document store per language)."""
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    from haystack import Document, Pipeline
    from haystack.components.embedders import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    folder = str(_model_folder(settings))
    documents = SentenceTransformersDocumentEmbedder(model=folder, device=None, prefix="passage: ",
                                                     progress_bar=False)  # fmt: skip
    documents.warm_up()
    stores, sentences, seconds = {}, 0, 0.0
    for language, articles in corpus.articles.items():
        store = InMemoryDocumentStore(embedding_similarity_function="cosine")
        for article_id, text, spans in articles:
            started = time.perf_counter()
            batch = [Document(content=text[a:b], meta={"article": article_id, "start": a, "end": b})
                     for a, b in spans]  # fmt: skip
            store.write_documents(documents.run(batch)["documents"])
            seconds += time.perf_counter() - started
            sentences += len(spans)
        stores[language] = store
    latencies, recall = [], {}
    for pair, asked in corpus.questions.items():
        pipeline = Pipeline()
        pipeline.add_component("embed", SentenceTransformersTextEmbedder(
            model=folder, prefix="query: ", progress_bar=False))  # fmt: skip
        pipeline.add_component("retrieve", InMemoryEmbeddingRetriever(stores[pair[-2:]], top_k=3))
        pipeline.connect("embed.embedding", "retrieve.query_embedding")
        pipeline.warm_up()  # load the model before the clock runs
        hits = []
        for question in asked:
            started = time.perf_counter()
            found = pipeline.run({"embed": {"text": question.question}})["retrieve"]["documents"]
            latencies.append(1000 * (time.perf_counter() - started))
            if question.answerable:
                top = found[0].meta if found else {}
                hits.append(top.get("article") == question.article_id
                            and top["start"] < question.answer_end
                            and question.answer_start < top["end"])  # fmt: skip
        recall[pair] = round(sum(hits) / len(hits), 3)
    return {
        "name": "haystack",
        "ingest_sentences_per_s": round(sentences / seconds, 1),
        "question_p95_ms": round(_percentile(latencies, 0.95), 1),
        "R@1": recall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "eval" / "xquad"))
    parser.add_argument("--scale", type=int, default=1_000_000, help="sentences (0: skip)")
    parser.add_argument("--no-peer", action="store_true", help="skip the Haystack pipeline")
    parser.add_argument("--articles", type=int, help="only the first N articles per language")
    parser.add_argument("--serving-probe", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = Path(args.data)
    if args.serving_probe:
        serving_probe(Path(args.serving_probe), data)
        return
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="articlebot-bench-") as scratch:
        settings = load_settings().with_overrides(data_dir=scratch)
        ours, corpus, library = measure_ours(settings, data, args.articles)
        _note(ours)
        report.update(ours)
        report["ingest"]["raw_fp32_sentences_per_s"] = raw_fp32_rate(settings, corpus.sentences)
        _note(report["ingest"])
        sentences = ours["ingest"]["sentences"]
        library.close()  # written out, so the folder's size is what a user would find
        size = storage_bytes_per_sentence(Path(scratch), sentences)
        report["storage"] = _note({"bytes_per_sentence": size})
        report.update(_note(measure_serving(Path(scratch), data)))
        if args.scale:
            library = Library(settings, embedder=library.embedder)
            report["scale"] = _note(measure_scale(library, corpus, args.scale))
            library.close()
    if not args.no_peer:
        report["peer"] = _note(measure_peer(settings, corpus))
    print(_summary(report), flush=True)
    print(json.dumps(report))


def _note(result: dict) -> dict:
    """Show a part's figures as soon as they are measured (on stderr; stdout ends with the
    whole report)."""
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def _summary(report: dict) -> str:
    ingest, question = report["ingest"], report["question"]
    lines = [
        f"articlebot: adding {ingest['sentences_per_s']} sentences/s (raw fp32 model "
        f"{ingest['raw_fp32_sentences_per_s']}; {ingest['sentences_per_s_besides_compaction']} "
        f"without the {ingest['compaction_s']} s of learning and compacting), question p50 "
        f"{question['p50_ms']} ms / p95 "
        f"{question['p95_ms']} ms (embedding alone p95 {question['embed_only_p95_ms']} ms), "
        f"R@1 {report['R@1']}, {report['storage']['bytes_per_sentence']} bytes/sentence, "
        f"peak RSS {report['memory']['peak_rss_mb']} MB, cold start {report['cold_start_s']} s"
    ]
    if "scale" in report:
        scale = report["scale"]
        lines.append(f"scale: {scale['sentences']:,} sentences, question p95 "
                     f"{scale['question_p95_ms']} ms, recall of the exact top {CANDIDATES} "
                     f"{scale['recall_at_40']}")  # fmt: skip
    if "peer" in report:
        peer = report["peer"]
        lines.append(f"haystack: adding {peer['ingest_sentences_per_s']} sentences/s, question "
                     f"p95 {peer['question_p95_ms']} ms, R@1 {peer['R@1']}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
