"""Compact token vectors: a product quantiser learnt from the library's own tokens.

A sentence's contextual token vectors (384 float16 values per token, about 30 KB a sentence)
are most of what a library stores. Re-ranking only needs them approximately, so once a model
has read enough tokens, a product quantiser (FAISS) is learnt from a sample of them: each
token's vector is cut into slices of three values, and each slice is stored as the number of
the nearest of 256 typical slices, one byte: 128 bytes a token instead of 768. Only the few
candidates a question re-ranks are ever decoded.

How small the codes can be without costing answers was measured on XQuAD dev (README, "Speed,
size and memory"): with 128 slices `articlebot eval` gave R@1 within 0.005 of 4-bit scalar
codes (192 bytes a token, the previous version's default) on every pair; with 96 slices
en-de lost 0.016, and replaying the re-ranking alone (`bench/token_study.py`) 64 slices lost
up to 0.016 and 32 up to 0.034. Codebooks of earlier versions (4-bit scalar, 32-slice
product) are still read, so a library keeps the codes it was compacted with.

The codebook belongs to the database (one per model), since the stored codes mean nothing
without it; it is learnt once and never changes.
"""

from __future__ import annotations

import os

import faiss
import numpy as np

# A codebook is learnt once a model has read this many tokens (a handful of articles); until
# then tokens are kept in float16.
TRAINING_TOKENS = 12_000
# Values per slice of a token vector; each slice is stored in one byte.
SLICE = 3
# Token vectors encoded at once: 128 slices x 256 centroids x 128 vectors of distances, 16 MB.
_ENCODE_CHUNK = 128
# What a stored scalar codebook (the previous version's) starts with; a product-quantiser one
# starts with its dimension as int32, never these bytes.
_SCALAR = b"SQ4\0"


class TokenCodebook:
    """Turns unit-length token vectors into `code_size` bytes each, and back."""

    def __init__(self, quantiser: faiss.ScalarQuantizer | faiss.ProductQuantizer) -> None:
        self._quantiser = quantiser
        self.dimension = int(quantiser.d)
        self.code_size = int(quantiser.code_size)
        self._nearest: tuple[np.ndarray, np.ndarray] | None = None
        if isinstance(quantiser, faiss.ProductQuantizer) and quantiser.nbits == 8:
            # Each slice's nearest centroid c minimises |c|^2 - 2 x.c: one matrix product for
            # all slices at once. The codes are FAISS's own, made three times faster (FAISS
            # computes 128 tiny products one by one: a tenth of adding an article).
            centroids = faiss.vector_to_array(quantiser.centroids).reshape(
                quantiser.M, quantiser.ksub, quantiser.dsub
            )
            self._nearest = (
                np.ascontiguousarray(-2 * centroids.transpose(0, 2, 1)),
                (centroids**2).sum(axis=2)[:, None, :],
            )

    @classmethod
    def learn(cls, vectors: np.ndarray) -> TokenCodebook:
        """A codebook fitted to a sample of token vectors (`TRAINING_TOKENS` of them)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        if dimension % SLICE:  # no model here has such a size; 4-bit values fit any
            quantiser = faiss.ScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_4bit)
        else:
            quantiser = faiss.ProductQuantizer(dimension, dimension // SLICE, 8)
            # Five rounds of k-means instead of FAISS's 25: five times faster to learn (it
            # happens during an add), and the rebuilt token vectors are about as close (mean
            # cosine to the originals 0.9816 against 0.9823).
            quantiser.cp.niter = 5
        # The library keeps FAISS to one thread for the small products of a question
        # (`index.library`); learning, once, may take every core this process has.
        threads = faiss.omp_get_max_threads()
        linux = hasattr(os, "sched_getaffinity")
        faiss.omp_set_num_threads(len(os.sched_getaffinity(0)) if linux else os.cpu_count() or 1)
        try:
            quantiser.train(vectors)
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(quantiser)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TokenCodebook:
        if blob.startswith(_SCALAR):
            (dimension,) = np.frombuffer(blob[4:8], dtype=np.int32).tolist()
            scalar = faiss.ScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_4bit)
            faiss.copy_array_to_vector(np.frombuffer(blob[8:], dtype=np.float32), scalar.trained)
            return cls(scalar)
        dimension, subspaces, bits = np.frombuffer(blob[:12], dtype=np.int32).tolist()
        product = faiss.ProductQuantizer(dimension, subspaces, bits)
        centroids = np.frombuffer(blob[12:], dtype=np.float16).astype(np.float32)
        faiss.copy_array_to_vector(centroids, product.centroids)
        return cls(product)

    def to_bytes(self) -> bytes:
        q = self._quantiser
        if isinstance(q, faiss.ScalarQuantizer):
            # Each dimension's smallest value and range: 3 KB, kept exact.
            ranges = faiss.vector_to_array(q.trained).astype(np.float32)
            return _SCALAR + np.int32(q.d).tobytes() + ranges.tobytes()
        header = np.array([q.d, q.M, q.nbits], dtype=np.int32).tobytes()
        # float16 halves the codebook (200 KB); codes are only ever made and read with the
        # stored codebook, so the rounding is the same everywhere.
        return header + faiss.vector_to_array(q.centroids).astype(np.float16).tobytes()

    def encode(self, vectors: np.ndarray) -> bytes:
        if len(vectors) == 0:
            return b""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._nearest is None:
            return self._quantiser.compute_codes(vectors).tobytes()
        doubled, norms = self._nearest
        slices, size = doubled.shape[0], doubled.shape[1]
        codes = []
        for start in range(0, len(vectors), _ENCODE_CHUNK):  # bounds the distance table
            part = vectors[start : start + _ENCODE_CHUNK].reshape(-1, slices, size)
            distances = np.matmul(part.transpose(1, 0, 2), doubled)
            distances += norms
            codes.append(distances.argmin(axis=2).T.astype(np.uint8))
        return np.concatenate(codes).tobytes()

    def decode(self, blob: bytes) -> np.ndarray:
        """The tokens' vectors, rebuilt and made unit length again (float32, ready to match)."""
        if not blob:
            return np.zeros((0, self.dimension), dtype=np.float32)
        codes = np.frombuffer(blob, dtype=np.uint8).reshape(-1, self.code_size)
        vectors = self._quantiser.decode(codes)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        return vectors
