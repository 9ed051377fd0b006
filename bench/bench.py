"""Speed and memory of the article index, measured on the XQuAD articles and questions.

Prints, for each ranking mode ("plain" sentence embeddings, the baseline, and the default
"contextual" ranking): sentences encoded per second while adding the articles, question
latency p50/p95, peak memory, and the start-up time of a fresh process to its first answer.

    .venv/bin/python bench/bench.py [--data ../shared/eval/xquad] [--modes plain,contextual]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from index.config import Settings, load_settings
from index.evaluation import load_articles, load_questions
from index.library import Library
from index.records import ArticleDraft

ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(mode: str, data: Path, split: str, pairs: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="articlebot-bench-") as scratch:
        settings = load_settings().with_overrides(data_dir=scratch, ranking=mode)
        library = Library(settings)
        library.warm_up()
        texts, seconds = [], 0.0
        for language in sorted({pair.split("-")[1] for pair in pairs}):
            for article in load_articles(data, language, split):
                draft = ArticleDraft(article.title, article.text, article.language, "text")
                started = time.perf_counter()
                added = library.add_draft(f"bench-{language}", draft)
                seconds += time.perf_counter() - started
                stored = library.storage.sentences_of(added.id)
                texts += [added.text[sentence.start : sentence.end] for sentence in stored]
        latencies, questions = [], []
        for pair in pairs:
            chat = f"bench-{pair.split('-')[1]}"
            for question in load_questions(data, pair, split):
                started = time.perf_counter()
                library.ask(chat, question.question)
                latencies.append(1000 * (time.perf_counter() - started))
                questions.append((chat, question.question))
        library.close()
        startup = _startup_seconds(settings, mode)
        serving_rss = _serving_peak_rss_mb(settings, mode, questions[::3][:200])
    return {
        "mode": mode,
        "encoder": settings.encoder,
        "sentences": len(texts),
        "sentences_per_second": round(len(texts) / seconds, 1),
        "raw_fp32_sentences_per_second": round(_raw_fp32_rate(settings, texts), 1),
        "questions": len(latencies),
        "latency_ms_p50": round(_percentile(latencies, 0.50), 1),
        "latency_ms_p95": round(_percentile(latencies, 0.95), 1),
        "peak_rss_mb": serving_rss,
        "startup_to_first_answer_s": round(startup, 2),
    }


def _raw_fp32_rate(settings: Settings, texts: list[str]) -> float:
    """Sentences/s of the model as sentence-transformers runs it (fp32 PyTorch, each sentence
    alone, its default batches): the yardstick the adding speed is compared with."""
    from sentence_transformers import SentenceTransformer

    from index.packaged_model import PACKAGED_MODEL_NAME, provision_packaged_model

    name = settings.model
    if name == PACKAGED_MODEL_NAME:
        name = str(provision_packaged_model(settings.model_cache_dir))
    model = SentenceTransformer(name, device="cpu")
    model.encode_document(texts[:32])  # warm-up
    started = time.perf_counter()
    model.encode_document(texts)
    return len(texts) / (time.perf_counter() - started)


_SERVE = """
import resource, sys
from index.config import Settings, load_settings
from index.library import Library
library = Library(load_settings())
library.warm_up()
for line in sys.stdin.read().splitlines():
    chat, question = line.split("\t", 1)
    library.ask(chat, question)
print(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def _serving_peak_rss_mb(settings: Settings, mode: str, questions: list[tuple[str, str]]) -> int:
    """Peak memory of a new serving process: model loaded, the library open, the questions
    asked (what a bot that only answers needs)."""
    environment = _environment(settings, mode)
    result = subprocess.run(
        [sys.executable, "-c", _SERVE],
        input="\n".join(f"{chat}\t{question}" for chat, question in questions),
        check=True,
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
    )
    return int(result.stdout.strip().splitlines()[-1])


def _environment(settings: Settings, mode: str) -> dict[str, str]:
    """What a new process needs to open the measured library as the bench did."""
    return {
        **os.environ,
        "ARTICLEBOT_DATA_DIR": str(settings.data_dir),
        "ARTICLEBOT_RANKING": mode,
        "ARTICLEBOT_ENCODER": settings.encoder,
    }


def _startup_seconds(settings: Settings, mode: str) -> float:
    """A new `articlebot ask` process on the filled library, from launch to its answer."""
    environment = _environment(settings, mode)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "ask",
            "--chat",
            "bench-de",
            "Wer gewann den Super Bowl?",
        ],
        check=True,
        capture_output=True,
        env=environment,
        cwd=ROOT,
    )
    return time.perf_counter() - started


def _passed_on(args: argparse.Namespace) -> list[str]:
    return ["--data", args.data, "--split", args.split, "--pairs", args.pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "eval" / "xquad"))
    parser.add_argument("--split", default="dev")
    parser.add_argument("--pairs", default="de-de,en-de,en-en")
    parser.add_argument("--modes", default="plain,contextual")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    modes = args.modes.split(",")
    results = []
    for mode in modes:
        if len(modes) == 1:
            result = measure(mode, Path(args.data), args.split, args.pairs.split(","))
        else:  # one process per mode, so peak memory is each mode's own
            command = [sys.executable, __file__, *_passed_on(args), "--modes", mode, "--json"]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])[0]
        results.append(result)
        print(
            f"{mode:>10}: {result['sentences_per_second']:6.1f} sentences/s while adding "
            f"({result['encoder']}; the raw fp32 model "
            f"{result['raw_fp32_sentences_per_second']:.1f}), "
            f"question p50 {result['latency_ms_p50']:.0f} ms / p95 {result['latency_ms_p95']:.0f}"
            f" ms ({result['questions']} questions), serving peak RSS {result['peak_rss_mb']} MB, "
            f"start-up to first answer {result['startup_to_first_answer_s']:.1f} s",
            flush=True,
        )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
