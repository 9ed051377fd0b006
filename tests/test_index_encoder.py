"""The encoder: fp32 PyTorch by default, int8 ONNX Runtime by config. Both answer alike, the
int8 export is made once, switching keeps every article answerable, and a serving process
with the int8 encoder never loads PyTorch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.config import Settings, load_settings
from index.embeddings import Embedder
from index.library import Library
from index.model_runtime import OnnxRunner, TorchRunner, load_runner
from tests.conftest import (
    SEED_ARTICLE,
    engine_settings,
    fixture_bytes,
    fixture_text,
    settings_environ,
)

CHAT = "readers"
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Who is mediating with Iran?",
    "Was sagte der Kremlsprecher?",
    "How often will the night buses run?",
    "How much will the night bus pilot cost?",
]


@pytest.fixture(scope="module")
def fp32_embedder(embedder: Embedder) -> Embedder:
    return embedder


@pytest.fixture(scope="module")
def int8_embedder() -> Embedder:
    model = Embedder(load_settings(settings_environ()).with_overrides(encoder="int8"))
    model.warm_up()
    return model


def stocked(settings: Settings, embedder: Embedder) -> Library:
    library = Library(settings, embedder=embedder)
    library.add_text(CHAT, fixture_text(SEED_ARTICLE))
    library.add_file(CHAT, "en_article.html", fixture_bytes("en_article.html"))
    return library


@pytest.fixture
def both(
    tmp_path: Path,
    int8_embedder: Embedder,
    fp32_embedder: Embedder,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Library, Library]]:
    """The same two articles in a library read by the int8 encoder and in one read by fp32."""
    int8 = stocked(engine_settings(tmp_path / "int8", "sqlite", request), int8_embedder)
    fp32 = stocked(engine_settings(tmp_path / "fp32", "sqlite", request), fp32_embedder)
    yield int8, fp32
    int8.close()
    fp32.close()


def test_fp32_is_the_default_and_int8_is_selectable(
    int8_embedder: Embedder, fp32_embedder: Embedder
) -> None:
    """By default the model runs in PyTorch; `encoder = "int8"` runs it as int8 ONNX. Their
    vectors are kept apart (another model key), and both give 384 values."""
    assert fp32_embedder.settings.encoder == "fp32"
    assert isinstance(int8_embedder._runner, OnnxRunner)
    assert isinstance(fp32_embedder._runner, TorchRunner)
    assert int8_embedder.model_key != fp32_embedder.model_key
    assert int8_embedder.dimension == fp32_embedder.dimension == 384


def test_int8_answers_like_fp32(both: tuple[Library, Library]) -> None:
    """A user sees the same best quote whichever encoder read the articles, with a score
    within a few hundredths."""
    int8, fp32 = both
    for question in QUESTIONS:
        fast, exact = int8.ask(CHAT, question), fp32.ask(CHAT, question)
        assert fast.found and exact.found, question
        assert fast.quotes[0].text == exact.quotes[0].text, question
        assert abs(fast.quotes[0].score - exact.quotes[0].score) < 0.03, question


def test_int8_token_vectors_follow_fp32(int8_embedder: Embedder, fp32_embedder: Embedder) -> None:
    """The token vectors re-ranking matches come from the same int8 pass and point where the
    fp32 ones do (cosine well above what separates matching from unrelated words)."""
    question = "Who is mediating between Washington and Tehran?"
    fast, exact = int8_embedder.encode_query(question), fp32_embedder.encode_query(question)
    assert np.array_equal(fast.tokens.ids, exact.tokens.ids)
    assert float(fast.vector @ exact.vector) > 0.98
    tokens = np.sum(
        fast.tokens.vectors.astype(np.float32) * exact.tokens.vectors.astype(np.float32), axis=1
    )
    assert tokens.min() > 0.85, tokens


def test_switching_encoder_keeps_articles_answerable(
    tmp_path: Path,
    int8_embedder: Embedder,
    fp32_embedder: Embedder,
    request: pytest.FixtureRequest,
) -> None:
    """A library filled with fp32 (today's data folders) answers after a switch to int8:
    its articles are re-encoded from their stored text, none is lost."""
    settings = engine_settings(tmp_path, "sqlite", request)
    old = stocked(settings.with_overrides(encoder="fp32"), fp32_embedder)
    articles = [(a.number, a.title) for a in old.articles(CHAT)]
    old.close()
    new = Library(settings.with_overrides(encoder="int8"), embedder=int8_embedder)
    answer = new.ask(CHAT, "How much will the night bus pilot cost?")
    assert answer.found and "£1.2 million" in answer.quotes[0].text
    assert [(a.number, a.title) for a in new.articles(CHAT)] == articles
    sentences = sum(a.sentence_count for a in new.articles(CHAT))
    assert new.storage.vector_count(CHAT, int8_embedder.model_key) == sentences
    new.close()


def test_int8_export_is_made_once(int8_embedder: Embedder) -> None:
    """Loading the int8 encoder again uses the exported file in the model cache as it is."""
    settings = int8_embedder.settings
    exported = next(Path(settings.model_cache_dir).glob("*-onnx-int8-*/model.onnx"))
    before = exported.stat().st_mtime_ns
    runner = load_runner(settings)
    assert isinstance(runner, OnnxRunner)
    assert exported.stat().st_mtime_ns == before


def test_serving_with_int8_never_loads_pytorch(tmp_path: Path, int8_embedder: Embedder) -> None:
    """A new process that opens a library, adds an article and answers never imports PyTorch
    (hundreds of megabytes and seconds of start-up it does not need)."""
    script = (
        "import sys\n"
        "from index.config import load_settings\n"
        "from index.library import Library\n"
        f"library = Library(load_settings().with_overrides(data_dir={str(tmp_path)!r}))\n"
        "library.warm_up()\n"
        f"library.add_text('c', {fixture_text(SEED_ARTICLE)!r})\n"
        "assert library.ask('c', 'Who is mediating with Iran?').found\n"
        "print('torch' in sys.modules)\n"
    )
    environment = {
        "HOME": str(Path.home()),
        "PYTHONPATH": str(ROOT),
        "ARTICLEBOT_ENCODER": "int8",
        **settings_environ(),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_unknown_encoder_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="encoder must be 'int8' or 'fp32'"):
        load_settings({"ARTICLEBOT_ENCODER": "int4"})
