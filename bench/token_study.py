"""Offline study: how token vectors can be stored smaller without losing R@1 (issue 12).

Builds the XQuAD dev library once with full (float16) token vectors into a scratch folder,
caches every question's encoding, then replays only the re-ranking with each variant's
token vectors (compressed and rebuilt, or thinned), so a variant costs seconds, not an eval
run. Prints, per variant, bytes per token, tokens kept and R@1 per pair.

    PYTHONPATH=$PWD .venv/bin/python bench/token_study.py [--folder /tmp/token-study] [VARIANT ...]

A variant is "full" (float16, as stored) or a FAISS index-factory string of a standalone codec
("SQ4", "SQ8", "PQ32", "OPQ16,PQ16", ...), learnt from `--train` random tokens of the library;
prefixed with "words:" it also drops tokens without a letter or digit (punctuation, a lone
"▁"), on the question side too; "nostop:" drops in addition the sentence tokens that are a
whole German or English stop word (spaCy's lists: "▁der", "▁the"). The replayed R@1 is of
the top re-ranked sentence (quotes are not joined), so it sits below the eval's; compare
variants with each other.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
from spacy.lang.de.stop_words import STOP_WORDS as GERMAN_STOP_WORDS
from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP_WORDS

from index.answer.query import Query
from index.config import load_settings
from index.evaluation import load_articles, load_questions
from index.library import Library
from index.records import ArticleDraft, TokenVectors

WORD = re.compile(r"\w")
STOP_WORDS = frozenset(GERMAN_STOP_WORDS | ENGLISH_STOP_WORDS)
PAIRS = ("de-de", "en-de", "en-en")
ROOT = Path(__file__).resolve().parent.parent


def build(folder: Path, data: Path) -> dict:
    library = Library(
        load_settings().with_overrides(data_dir=folder / "data", compact_encodings=False)
    )
    ids: dict[str, dict[str, int]] = {}
    for language in ("de", "en"):
        ids[language] = {}
        for article in load_articles(data, language, "dev"):
            draft = ArticleDraft(article.title, article.text, article.language, "text")
            ids[language][article.article_id] = library.add_draft(f"bench-{language}", draft).id
    library.close()
    (folder / "ids.json").write_text(json.dumps(ids))
    return ids


class Replay:
    """Asks every dev question against the built library with transformed token vectors."""

    def __init__(self, folder: Path, data: Path) -> None:
        self.library = Library(
            load_settings().with_overrides(data_dir=folder / "data", compact_encodings=False)
        )
        self.ids = json.loads((folder / "ids.json").read_text())
        self.questions = {p: [q for q in load_questions(data, p, "dev") if q.answerable]
                          for p in PAIRS}  # fmt: skip
        cache_path = folder / "queries.pickle"
        self.queries = pickle.loads(cache_path.read_bytes()) if cache_path.exists() else {}
        embedder = self.library.embedder
        original = embedder.encode_query

        def cached(question: str):
            if question not in self.queries:
                self.queries[question] = original(question)
            return self.queries[question]

        def worded(question: str):
            encoding = cached(question)
            if not self.query_words_only:
                return encoding
            tokens = encoding.tokens
            mask = np.array([bool(WORD.search(question[a:b])) for a, b in tokens.spans], bool)
            return replace(encoding, tokens=replace(tokens, content=tokens.content & mask))

        self.query_words_only = False
        embedder.encode_query = worded
        storage = self.library.storage
        model = self.library.embedder.model_key
        every = [r[0] for r in storage._query("SELECT id FROM sentences")]
        self.raw = storage.sentence_tokens(model, every)
        self.transform = None
        self.kept = [0, 0]
        self._done: dict[int, TokenVectors] = {}

        def tokens(model, sentence_ids):
            out = {}
            for sid in sentence_ids:
                t = self.raw[sid]
                if sid not in self._done:
                    self._done[sid] = self.transform(t) if self.transform else t
                out[sid] = self._done[sid]
            return out

        storage.sentence_tokens = tokens
        memo_path = folder / "storage.pickle"
        self.memos = pickle.loads(memo_path.read_bytes()) if memo_path.exists() else {}
        for name in ("search", "passage_mates", "sentence_sources", "chat_token_ids"):
            seen = self.memos.setdefault(name, {})
            setattr(storage, name, _memo(getattr(storage, name), seen))
        self._memo_path = memo_path
        sentences = storage.sentences_by_ids(
            [r[0] for r in storage._query("SELECT id FROM sentences")]
        )
        self.sentence = sentences.get
        self._cache_path = cache_path

    def all_tokens(self) -> list[TokenVectors]:
        return list(self.raw.values())

    def run(self, transform) -> dict:
        """R@1 per pair from the re-ranking alone: the top hit's sentence must be in the
        question's article and overlap its answer (what `hit_rank` checks on quotes)."""
        self.transform = transform
        self._done = {}
        retriever = self.library.answers.retriever
        recall = {}
        for pair, asked in self.questions.items():
            language = pair[-2:]
            hits = []
            for q in asked:
                query = Query.of(self.library.embedder.encode_query(q.question), "xx")
                top = retriever.run(f"bench-{language}", query, 1)
                sentence = self.sentence(top[0].sentence_id) if top else None
                hits.append(
                    sentence is not None
                    and sentence.article_id == self.ids[language][q.article_id]
                    and sentence.start < q.answer_end
                    and q.answer_start < sentence.end
                )
            recall[pair] = round(sum(hits) / len(hits), 3)
        if not self._cache_path.exists():
            self._cache_path.write_bytes(pickle.dumps(self.queries))
        if not self._memo_path.exists():
            self._memo_path.write_bytes(pickle.dumps(self.memos))
        return recall


def _memo(method, seen: dict):
    """`method` answering repeated calls (by their arguments' value) from `seen`."""

    def remembered(*args):
        key = tuple(a.tobytes() if isinstance(a, np.ndarray) else
                    tuple(sorted(a)) if isinstance(a, (set, list, frozenset)) else a
                    for a in args)  # fmt: skip
        if key not in seen:
            seen[key] = method(*args)
        return seen[key]

    return remembered


# Variants: each is (name, bytes per kept token, transform) built from the library's tokens.


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def factory_codec(spec: str, sample: np.ndarray):
    index = faiss.index_factory(sample.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    index.train(sample)
    print(f"  trained {spec} in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    def apply(vectors: np.ndarray) -> np.ndarray:
        if len(vectors) == 0:
            return vectors
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        return _unit(index.sa_decode(index.sa_encode(v))).astype(np.float16)

    return index.sa_code_size(), apply


def keep_mask(tokens: TokenVectors, rule: str, vocab) -> np.ndarray:
    if rule == "all":
        return np.ones(len(tokens.ids), dtype=bool)
    pieces = [vocab(int(i)) for i in tokens.ids]
    keep = []
    for n, p in enumerate(pieces):
        bare = p.replace("\u2581", "")
        after = pieces[n + 1] if n + 1 < len(pieces) else "\u2581"
        if rule == "nospace":
            keep.append(bare != "")
        elif rule == "nostop":  # also no whole-word stop word ("▁der", "▁the")
            whole = p.startswith("\u2581") and (
                after.startswith("\u2581") or not any(ch.isalnum() for ch in after)
            )
            stop = whole and bare.lower() in STOP_WORDS
            keep.append(any(ch.isalnum() for ch in bare) and not stop)
        else:  # "words": no lone space, no pure punctuation
            keep.append(any(ch.isalnum() for ch in bare))
    return np.array(keep, dtype=bool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", default="/tmp/token-study")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "eval" / "xquad"))
    parser.add_argument("--train", type=int, default=12_000)
    parser.add_argument("variants", nargs="*", default=["full"])
    args = parser.parse_args()
    folder, data = Path(args.folder), Path(args.data)
    faiss.omp_set_num_threads(1)  # FAISS's threads crawl on a busy machine
    if not (folder / "ids.json").exists():
        build(folder, data)
    replay = Replay(folder, data)
    replay.library.embedder.warm_up()
    tokenizer = replay.library.embedder._runner.tokenizer
    every = replay.all_tokens()
    counts = np.array([len(t.ids) for t in every])
    print(f"sentences {len(every)}, tokens/sentence mean {counts.mean():.1f}"
          f" median {np.median(counts):.0f}", file=sys.stderr)  # fmt: skip
    rng = np.random.default_rng(0)
    for variant in args.variants:
        # variant: "<rule>:<faiss spec or full>", e.g. "words:OPQ16,PQ16"
        rule, _, spec = variant.partition(":") if ":" in variant else ("all", "", variant)
        replay.query_words_only = rule in ("words", "nostop")
        kept = np.concatenate([keep_mask(t, rule, tokenizer.id_to_token) for t in every])
        if spec == "full":
            size, coder = 768, None
        else:
            pool = np.concatenate([t.vectors for t in every])[kept].astype(np.float32)
            sample = pool[rng.permutation(len(pool))[: args.train]]
            size, coder = factory_codec(spec, sample)

        def transform(t: TokenVectors, rule=rule, coder=coder) -> TokenVectors:
            mask = keep_mask(t, rule, tokenizer.id_to_token)
            if not mask.any():
                mask[:] = True
            vectors = t.vectors[mask]
            if coder is not None:
                vectors = coder(vectors)
            return replace(t, ids=t.ids[mask], spans=t.spans[mask], vectors=vectors,
                           content=t.content[mask])  # fmt: skip

        started = time.perf_counter()
        recall = replay.run(transform)
        share = kept.mean()
        print(json.dumps({"variant": variant, "bytes_per_token": size,
                          "tokens_kept": round(float(share), 3),
                          "token_bytes_per_sentence": round(float(size * share * counts.mean())),
                          "R@1": recall, "s": round(time.perf_counter() - started)}),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
