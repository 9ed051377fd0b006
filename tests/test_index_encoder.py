"""The encoder: fp32 ONNX Runtime (the fused graph) by default, PyTorch and int8 by config.
The default answers and encodes like PyTorch, int8 answers alike, each export is made once,
switching keeps every article answerable, and a serving process never loads PyTorch."""

from __future__ import annotations

import re
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


def configured(encoder: str) -> Embedder:
    model = Embedder(load_settings(settings_environ()).with_overrides(encoder=encoder))
    model.warm_up()
    return model


@pytest.fixture(scope="module")
def fp32_embedder(embedder: Embedder) -> Embedder:
    return embedder


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return configured("pytorch")


@pytest.fixture(scope="module")
def int8_embedder() -> Embedder:
    return configured("int8")


def stocked(settings: Settings, embedder: Embedder) -> Library:
    library = Library(settings, embedder=embedder)
    library.add_text(CHAT, fixture_text(SEED_ARTICLE))
    library.add_file(CHAT, "en_article.html", fixture_bytes("en_article.html"))
    return library


def pair(
    tmp_path: Path, request: pytest.FixtureRequest, first: Embedder, second: Embedder
) -> tuple[Library, Library]:
    """The same two articles in a library read by `first` and in one read by `second`."""
    return (
        stocked(engine_settings(tmp_path / "first", "sqlite", request), first),
        stocked(engine_settings(tmp_path / "second", "sqlite", request), second),
    )


def opened(libraries: tuple[Library, Library]) -> Iterator[tuple[Library, Library]]:
    """Both libraries for a test, closed after it."""
    yield libraries
    for library in libraries:
        library.close()


@pytest.fixture
def int8_and_fp32(
    tmp_path: Path,
    int8_embedder: Embedder,
    fp32_embedder: Embedder,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Library, Library]]:
    yield from opened(pair(tmp_path, request, int8_embedder, fp32_embedder))


@pytest.fixture
def fp32_and_torch(
    tmp_path: Path,
    fp32_embedder: Embedder,
    torch_embedder: Embedder,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Library, Library]]:
    yield from opened(pair(tmp_path, request, fp32_embedder, torch_embedder))


def test_onnx_fp32_is_the_default_and_the_others_are_selectable(
    fp32_embedder: Embedder, torch_embedder: Embedder, int8_embedder: Embedder
) -> None:
    """By default the model runs in ONNX Runtime; `encoder = "pytorch"` runs it in PyTorch
    with the same vectors (one model key: switching re-encodes nothing), `encoder = "int8"`
    with 8-bit weights and vectors of its own. All give 384 values."""
    assert fp32_embedder.settings.encoder == "fp32"
    assert isinstance(fp32_embedder._runner, OnnxRunner)
    assert isinstance(torch_embedder._runner, TorchRunner)
    assert isinstance(int8_embedder._runner, OnnxRunner)
    assert fp32_embedder.model_key == torch_embedder.model_key != int8_embedder.model_key
    assert fp32_embedder.dimension == torch_embedder.dimension == int8_embedder.dimension == 384


def test_onnx_fp32_answers_like_pytorch(fp32_and_torch: tuple[Library, Library]) -> None:
    """A user sees the same best quote with the same score whichever runs the model."""
    onnx, torch = fp32_and_torch
    for question in QUESTIONS:
        fast, exact = onnx.ask(CHAT, question), torch.ask(CHAT, question)
        assert fast.found and exact.found, question
        assert fast.quotes[0].text == exact.quotes[0].text, question
        assert abs(fast.quotes[0].score - exact.quotes[0].score) < 1e-3, question


def test_onnx_fp32_vectors_equal_pytorch(fp32_embedder: Embedder, torch_embedder: Embedder) -> None:
    """Sentence and token vectors of an article's passages (of different lengths, read in one
    padded batch) are PyTorch's up to float rounding: the fused graph computes the same."""
    text = fixture_text(SEED_ARTICLE)
    bounds = [(m.start(), m.end()) for m in re.finditer(r"[^.!?]+[.!?]", text)]
    windows = fp32_embedder.passages(text, bounds)
    assert len(windows) > 1
    passages = [text[bounds[first][0] : bounds[last - 1][1]] for first, last in windows]
    spans = [
        [(a - bounds[first][0], b - bounds[first][0]) for a, b in bounds[first:last]]
        for first, last in windows
    ]
    fast = fp32_embedder.encode_passages(passages, spans)
    exact = torch_embedder.encode_passages(passages, spans)
    pairs = [both for a, b in zip(fast, exact, strict=True) for both in zip(a, b, strict=True)]
    assert len(pairs) == len(bounds)
    for one, other in pairs:
        assert np.array_equal(one.tokens.ids, other.tokens.ids)
        assert float(one.vector @ other.vector) > 0.9999
        tokens = np.sum(
            one.tokens.vectors.astype(np.float32) * other.tokens.vectors.astype(np.float32), axis=1
        )
        assert tokens.min() > 0.999, tokens


def test_int8_answers_like_fp32(int8_and_fp32: tuple[Library, Library]) -> None:
    """A user sees the same best quote whichever encoder read the articles, with a score
    within a few hundredths."""
    int8, fp32 = int8_and_fp32
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
    torch_embedder: Embedder,
    fp32_embedder: Embedder,
    request: pytest.FixtureRequest,
) -> None:
    """A library filled with the default encoder answers after a switch to PyTorch without
    re-encoding anything (the same vectors), and after a switch to int8 with its articles
    re-encoded from their stored text; none is lost."""
    settings = engine_settings(tmp_path, "sqlite", request)
    old = stocked(settings, fp32_embedder)
    articles = [(a.number, a.title) for a in old.articles(CHAT)]
    old.close()
    question = "How much will the night bus pilot cost?"
    for encoder, embedder in (("pytorch", torch_embedder), ("int8", int8_embedder)):
        new = Library(settings.with_overrides(encoder=encoder), embedder=embedder)
        lacking = new.storage.articles_lacking_encodings(CHAT, embedder.model_key)
        assert bool(lacking) == (encoder == "int8"), encoder
        answer = new.ask(CHAT, question)
        assert answer.found and "£1.2 million" in answer.quotes[0].text, encoder
        assert [(a.number, a.title) for a in new.articles(CHAT)] == articles
        sentences = sum(a.sentence_count for a in new.articles(CHAT))
        assert new.storage.vector_count(CHAT, embedder.model_key) == sentences
        new.close()


@pytest.mark.parametrize("encoder", ["fp32", "int8"])
def test_onnx_export_is_made_once(
    encoder: str, fp32_embedder: Embedder, int8_embedder: Embedder
) -> None:
    """Loading an ONNX encoder again uses the exported files in the model cache as they are."""
    settings = fp32_embedder.settings.with_overrides(encoder=encoder)
    (folder,) = Path(settings.model_cache_dir).glob(f"*-onnx-fused-{encoder}")
    exported = sorted(folder.iterdir())
    assert {"model.onnx", "model.onnx.data", "word_embeddings.npy"} <= {p.name for p in exported}
    before = [path.stat().st_mtime_ns for path in exported]
    runner = load_runner(settings)
    assert isinstance(runner, OnnxRunner)
    assert sorted(folder.iterdir()) == exported
    assert [path.stat().st_mtime_ns for path in exported] == before


@pytest.mark.parametrize("encoder", ["fp32", "int8"])
def test_serving_never_loads_pytorch(tmp_path: Path, encoder: str) -> None:
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
        "print(library.embedder.settings.encoder, 'torch' in sys.modules)\n"
    )
    environment = {"HOME": str(Path.home()), "PYTHONPATH": str(ROOT), **settings_environ()}
    if encoder != "fp32":
        environment["ARTICLEBOT_ENCODER"] = encoder  # fp32 is the default
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"{encoder} False"


def test_unknown_encoder_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="encoder must be 'fp32' or 'int8' or 'pytorch'"):
        load_settings({"ARTICLEBOT_ENCODER": "int4"})
