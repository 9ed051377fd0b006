"""Sentence embeddings with sentence-transformers, loaded once and shared by every chat."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from index.config import Settings
from index.packaged_model import PACKAGED_MODEL_NAME, provision_packaged_model

logger = logging.getLogger(__name__)


class Embedder:
    """Turns questions and article sentences into normalised vectors.

    Questions and sentences get different prompts ("query: " / "passage: " for E5 models),
    which is what makes short questions match the longer sentences that answer them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model = None
        self._lock = threading.Lock()

    @property
    def model_key(self) -> str:
        """Identifies the vectors this embedder makes, so cached vectors of another model
        (or other prompts) are never mixed in."""
        s = self.settings
        return f"{s.model}|{s.query_prompt}|{s.document_prompt}"

    def warm_up(self) -> None:
        """Load the model (converting the packaged one on first use)."""
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()
            name = self.settings.model
            if name == PACKAGED_MODEL_NAME:
                name = str(provision_packaged_model(Path(self.settings.model_cache_dir)))
            logger.info("Loading embedding model %s", name)
            self._model = SentenceTransformer(
                name, device="cpu", cache_folder=str(self.settings.model_cache_dir)
            )

    @property
    def dimension(self) -> int:
        self.warm_up()
        model = self._model
        if hasattr(model, "get_embedding_dimension"):
            return int(model.get_embedding_dimension())
        return int(model.get_sentence_embedding_dimension())

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        prompt = self.settings.query_prompt or None
        return self._encode(self._model.encode_query, texts, prompt)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        prompt = self.settings.document_prompt or None
        return self._encode(self._model.encode_document, texts, prompt)

    def _encode(self, encode, texts: list[str], prompt: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = encode(
            texts,
            prompt=prompt,
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
