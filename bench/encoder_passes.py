"""How fast the model pass can go on this machine, and why adding is as fast as it is.

Measures, on an otherwise idle machine:

- passes: dev passages (the first 5 articles per language, as the bot cuts them) read by the
  default encoder with at most `budget` tokens (padding included) per model pass: 256 reads
  each passage alone (today's default), larger budgets batch passages of similar length;
- graphs: the fused fp32 and int8 ONNX graphs on one pass of 256 tokens, with 1 and 2
  threads, in tokens/s and in the GFLOP/s that makes (the model's matrix products per token,
  counted from its config), to set beside the CPU's peak.

    PYTHONPATH=$PWD .venv/bin/python bench/encoder_passes.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import index.embeddings as embeddings
from index.config import Settings, load_settings
from index.evaluation import load_articles
from index.ingest.split import SentenceSplitter
from index.model_runtime import OnnxRunner, load_runner
from index.packaged_model import provision_packaged_model

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 256


def dev_passages(embedder: embeddings.Embedder, splitter: SentenceSplitter) -> list[list[str]]:
    """Per article, its passages' texts."""
    data = ROOT.parent / "shared" / "eval" / "xquad"
    articles = []
    for language in ("de", "en"):
        for article in load_articles(data, language, "dev")[:5]:
            text = article.text
            spans = [(s.start, s.end) for s in splitter.split(text, article.language)]
            windows = embedder.passages(text, spans)
            articles.append([text[spans[a][0] : spans[b - 1][1]] for a, b in windows])
    return articles


def passes(settings: Settings) -> dict:
    embedder = embeddings.Embedder(settings)
    embedder.warm_up()
    articles = dev_passages(embedder, SentenceSplitter(settings))
    count = sum(len(a) for a in articles)
    rates, default = {}, embeddings._BATCH_TOKENS
    for budget in (256, 1024, 4096):
        embeddings._BATCH_TOKENS = budget
        started = time.perf_counter()
        for passages in articles:
            embedder._forward(passages, embedder.document_prompt)
        rates[budget] = round(count / (time.perf_counter() - started), 2)
    embeddings._BATCH_TOKENS = default
    return {"passages": count, "passages_per_s_by_budget": rates}


def flops_per_token(model_folder: Path) -> float:
    """Multiply-adds of the matrix products per token of a pass of TOKENS tokens, times 2."""
    config = json.loads((model_folder / "config.json").read_text())
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    per_layer = 4 * hidden * hidden + 2 * hidden * ffn + 2 * TOKENS * hidden
    return 2.0 * per_layer * config["num_hidden_layers"]


def graphs(settings: Settings) -> dict:
    import onnxruntime

    flops = flops_per_token(provision_packaged_model(Path(settings.model_cache_dir)))
    rng = np.random.default_rng(0)
    result = {}
    for encoder in ("fp32", "int8"):
        runner = load_runner(settings.with_overrides(encoder=encoder))
        assert isinstance(runner, OnnxRunner)
        feed = {
            "inputs_embeds": rng.standard_normal((1, TOKENS, runner.dimension), np.float32) / 20,
            "attention_mask": np.ones((1, TOKENS), dtype=np.int64),
        }
        path = str(runner.model_path)
        for threads in (1, 2):
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = onnxruntime.InferenceSession(path, options, ["CPUExecutionProvider"])
            session.run(None, feed)
            best = min(_seconds(session, feed) for _ in range(5))
            result[f"{encoder}_{threads}_threads"] = {
                "tokens_per_s": round(TOKENS / best),
                "gflop_per_s": round(TOKENS * flops / best / 1e9, 1),
            }
    return result


def _seconds(session, feed: dict) -> float:
    started = time.perf_counter()
    session.run(None, feed)
    return time.perf_counter() - started


def main() -> None:
    settings = load_settings()
    print(json.dumps({"passes": passes(settings), "graphs": graphs(settings)}))


if __name__ == "__main__":
    main()
