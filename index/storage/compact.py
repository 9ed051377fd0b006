"""Compact token vectors: a product quantiser learnt from the library's own tokens.

A sentence's contextual token vectors (384 float16 values per token, about 15 KB a sentence)
are most of what a library stores. Re-ranking only needs them approximately, so once a model
has read enough tokens, a product quantiser (FAISS) is learnt from a sample of them, the way
ColBERTv2/PLAID learn their centroids from the collection: each token becomes `SUBSPACES`
bytes, one centroid number per slice of the vector. Only the few candidates a question
re-ranks are ever decoded.

The codebook belongs to the database (one per model), since the stored codes mean nothing
without it; it is learnt once and never changes.
"""

from __future__ import annotations

import faiss
import numpy as np

# Bytes per token: one centroid (of 256) for each of this many slices of the vector.
SUBSPACES = 32
# A codebook is learnt once a model has read this many tokens (a handful of articles); until
# then tokens are kept in float16. FAISS wants at least 39 samples per centroid.
TRAINING_TOKENS = 12_000
_BITS = 8
# k-means rounds per slice: past 10 the codes barely improve.
_ITERATIONS = 10


class TokenCodebook:
    """Turns unit-length token vectors into `SUBSPACES` bytes each, and back."""

    def __init__(self, quantiser: faiss.ProductQuantizer) -> None:
        self._quantiser = quantiser
        self.dimension = int(quantiser.d)
        self.code_size = int(quantiser.code_size)

    @classmethod
    def learn(cls, vectors: np.ndarray) -> TokenCodebook:
        """A codebook fitted to a sample of token vectors (at least `TRAINING_TOKENS`)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        quantiser = faiss.ProductQuantizer(vectors.shape[1], SUBSPACES, _BITS)
        quantiser.cp.seed = 1234  # the same sample gives the same codebook
        quantiser.cp.niter = _ITERATIONS
        # One thread: FAISS's worker threads spin and crawl on a busy machine (measured: 5 s
        # here against minutes with two threads while other processes ran).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            quantiser.train(vectors)
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(quantiser)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TokenCodebook:
        dimension, subspaces, bits = np.frombuffer(blob[:12], dtype=np.int32).tolist()
        quantiser = faiss.ProductQuantizer(dimension, subspaces, bits)
        centroids = np.frombuffer(blob[12:], dtype=np.float16).astype(np.float32)
        faiss.copy_array_to_vector(centroids, quantiser.centroids)
        return cls(quantiser)

    def to_bytes(self) -> bytes:
        q = self._quantiser
        header = np.array([q.d, q.M, q.nbits], dtype=np.int32).tobytes()
        # float16 halves the codebook (200 KB); codes are only ever made and read with the
        # stored codebook, so the rounding is the same everywhere.
        return header + faiss.vector_to_array(q.centroids).astype(np.float16).tobytes()

    def encode(self, vectors: np.ndarray) -> bytes:
        if len(vectors) == 0:
            return b""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return self._quantiser.compute_codes(vectors).tobytes()

    def decode(self, blob: bytes) -> np.ndarray:
        """The tokens' vectors, rebuilt and made unit length again (float16, like stored ones)."""
        if not blob:
            return np.zeros((0, self.dimension), dtype=np.float16)
        codes = np.frombuffer(blob, dtype=np.uint8).reshape(-1, self._quantiser.code_size)
        vectors = self._quantiser.decode(codes)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        return vectors.astype(np.float16)
