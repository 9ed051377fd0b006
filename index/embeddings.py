"""Sentence and token embeddings from one sentence-transformers model, loaded once.

Each sentence is encoded *in its passage*: the model reads a window of neighbouring sentences
(a paragraph or so) in one pass, and a sentence's vector is the mean of its own tokens' output
vectors ("late chunking"). The sentence so keeps the meaning its context gives it ("he" knows
who he is) at the cost of a single pass over the text. The same pass yields each sentence's
contextual token vectors, which retrieval matches word by word against the question's
(late interaction), across languages.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np

from index.config import Settings
from index.model_runtime import ModelRunner, load_runner
from index.records import Encoding, TokenVectors

logger = logging.getLogger(__name__)

# Context window for late chunking, in tokens: about a news paragraph or two.
PASSAGE_TOKENS = 256
# Tokens (padding included) per model pass: a passage is read alone, short texts a few at
# once. Padding costs as much as text, and small passes stay in the CPU's caches: passages
# read alone ran 1.5x faster than in sorted batches of 16 (a quarter of which was padding),
# and 1.1x faster than in batches of up to 512 tokens.
_BATCH_TOKENS = PASSAGE_TOKENS
_WORD = re.compile(r"\w+")
# Question words carry the kind of question, not its topic: they never match article words.
QUESTION_WORDS = frozenset(
    {
        *("who", "whom", "whose", "what", "which", "when", "where", "why", "how"),
        *("does", "did", "do", "is", "are", "was", "were"),
        *("wer", "wen", "wem", "wessen", "was", "welche", "welcher", "welches", "welchen"),
        *("welchem", "wann", "wo", "woher", "wohin", "warum", "weshalb", "wieso", "wie"),
        *("wieviel", "wieviele"),
    }
)


@dataclass(frozen=True)
class _Output:
    """What one model pass gives for one text: the mean of all token vectors (the model's
    usual sentence vector), and per token of the text itself its vector, span and id."""

    text: str
    pooled: np.ndarray
    states: np.ndarray
    spans: np.ndarray
    ids: np.ndarray


def _trim(text: str, spans: np.ndarray) -> np.ndarray:
    """Token spans without the leading space the tokenizer counts as part of a word."""
    spans = spans.copy()
    for span in spans:
        while span[0] < span[1] and span[0] < len(text) and text[span[0]].isspace():
            span[0] += 1
    return spans


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-9)


def _content_mask(text: str, spans: np.ndarray) -> np.ndarray:
    """Tokens inside a word that is not a question word."""
    words = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    mask = np.zeros(len(spans), dtype=bool)
    for i, (start, end) in enumerate(spans):
        for word_start, word_end, word in words:
            if word_start <= start < word_end or start <= word_start < end:
                mask[i] = word not in QUESTION_WORDS
                break
    return mask


def _batches(lengths: list[int], budget: int) -> Iterator[list[int]]:
    """Indexes of texts of these token `lengths`, shortest first, in groups whose padded size
    (count x longest) stays within `budget`; a longer text goes alone."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and (len(batch) + 1) * lengths[i] > budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _words_only(encoding: Encoding, text: str) -> Encoding:
    """The encoding without the token vectors of punctuation and bare spaces: a tenth of what a
    sentence stores, and never what a question's words should match (measured on XQuAD dev
    with `bench/token_study.py words:SQ4`: R@1 unchanged)."""
    tokens = encoding.tokens
    keep = np.array([any(c.isalnum() for c in text[a:b]) for a, b in tokens.spans], dtype=bool)
    if keep.all() or not keep.any():
        return encoding
    kept = TokenVectors(
        tokens.ids[keep], tokens.spans[keep], tokens.vectors[keep], tokens.content[keep]
    )
    return Encoding(encoding.vector, kept)


class Embedder:
    """Turns questions and articles into vectors with the configured model.

    Questions and articles get the model's prompts ("query: " / "passage: " for E5 models),
    which is what makes short questions match the longer sentences that answer them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner: ModelRunner | None = None
        self._token_mean: np.ndarray | None = None
        self._lock = threading.RLock()

    @property
    def contextual(self) -> bool:
        """Whether sentences are read in their passage (else each alone, the plain baseline)."""
        return self.settings.ranking == "contextual"

    @property
    def model_key(self) -> str:
        """Identifies the vectors this embedder makes, so cached vectors of another model,
        other prompts, another context window or int8 weights are never mixed in. fp32 in ONNX
        Runtime and in PyTorch compute the same vectors (up to float rounding): one key."""
        s = self.settings
        context = f"passage{PASSAGE_TOKENS}" if self.contextual else "alone"
        encoder = "|int8" if s.encoder == "int8" else ""
        return f"{s.model}|{s.query_prompt}|{s.document_prompt}|{context}{encoder}"

    def warm_up(self) -> None:
        """Load the model (converting or exporting it into the model cache on first use)."""
        with self._lock:
            if self._runner is not None:
                return
            settings = self.settings
            logger.info("Loading embedding model %s (%s)", settings.model, settings.encoder)
            self._runner = load_runner(settings)
            self._token_mean = self._reference_token_mean()

    @property
    def dimension(self) -> int:
        self.warm_up()
        return self._runner.dimension

    @property
    def query_prompt(self) -> str:
        self.warm_up()
        return self.settings.query_prompt or self._runner.prompts.get("query", "")

    @property
    def document_prompt(self) -> str:
        self.warm_up()
        prompts = self._runner.prompts
        return (
            self.settings.document_prompt or prompts.get("document") or prompts.get("passage", "")
        )

    def _forward(self, texts: list[str], prompt: str) -> list[_Output]:
        """Run the model on `prompt + text` for each text, in small batches of similar length."""
        runner = self._runner
        every = runner.tokenizer.encode_batch([prompt + text for text in texts])
        outputs: list[_Output | None] = [None] * len(texts)
        for chosen in _batches([len(tokens.ids) for tokens in every], _BATCH_TOKENS):
            tokenized = [every[i] for i in chosen]
            width = max(len(t.ids) for t in tokenized)
            ids = np.full((len(chosen), width), runner.pad_id, dtype=np.int64)
            mask = np.zeros((len(chosen), width), dtype=np.int64)
            offsets = np.zeros((len(chosen), width, 2), dtype=np.int32)
            for row, tokens in enumerate(tokenized):
                ids[row, : len(tokens.ids)] = tokens.ids
                mask[row, : len(tokens.ids)] = 1
                offsets[row, : len(tokens.ids)] = tokens.offsets
            offsets -= len(prompt)
            states = runner.hidden_states(ids, mask)
            for row, i in enumerate(chosen):
                real = states[row][mask[row] == 1]
                spans = offsets[row][mask[row] == 1]
                inside = spans[:, 1] > 0  # not a special token, not part of the prompt
                outputs[i] = _Output(
                    texts[i],
                    real.mean(axis=0),
                    real[inside],
                    _trim(texts[i], np.clip(spans[inside], 0, None)),
                    ids[row][mask[row] == 1][inside],
                )
        return outputs  # type: ignore[return-value]

    def _encoding(self, output: _Output, start: int, end: int) -> Encoding | None:
        """The part of a model pass that covers `text[start:end]`, as that span's encoding:
        the mean of its tokens (late chunking) and its tokens with span-relative offsets."""
        keep = (output.spans[:, 1] > start) & (output.spans[:, 0] < end)
        if not keep.any():
            return None
        spans = np.clip(output.spans[keep] - start, 0, end - start).astype(np.int32)
        tokens = TokenVectors(
            ids=output.ids[keep].astype(np.int32),
            spans=spans,
            vectors=_normalise(output.states[keep] - self._token_mean).astype(np.float16),
            content=_content_mask(output.text[start:end], spans),
        )
        return Encoding(_normalise(output.states[keep].mean(axis=0)).astype(np.float32), tokens)

    def encode_query(self, question: str) -> Encoding:
        """The question's vector (the model's usual mean pooling) and its word tokens."""
        self.warm_up()
        (output,) = self._forward([question], self.query_prompt)
        encoding = self._encoding(output, 0, len(question))
        vector = _normalise(output.pooled).astype(np.float32)
        if encoding is None:  # nothing but white space
            empty = np.zeros(0, dtype=np.int32)
            tokens = TokenVectors(
                empty, empty.reshape(0, 2), np.zeros((0, len(vector)), np.float16), empty > 0
            )
            return Encoding(vector, tokens)
        return Encoding(vector, encoding.tokens)

    def encode_passages(
        self, passages: list[str], spans: list[list[tuple[int, int]]]
    ) -> list[list[Encoding]]:
        """Encode each passage in one model pass; one encoding per sentence span in it.

        In "plain" ranking mode every passage is a single sentence and its vector is the
        model's usual sentence embedding (prompt and special tokens pooled in)."""
        self.warm_up()
        outputs = self._forward(passages, self.document_prompt)
        encodings = []
        for passage, output, sentence_spans in zip(passages, outputs, spans, strict=True):
            sentences = []
            for start, end in sentence_spans:
                source, encoding = output, self._encoding(output, start, end)
                if encoding is None:  # cut off by the model's length limit: read it alone
                    (source,) = self._forward([passage[start:end]], self.document_prompt)
                    encoding = self._encoding(source, 0, end - start)
                if not self.contextual:
                    vector = _normalise(source.pooled).astype(np.float32)
                    encoding = Encoding(vector, encoding.tokens)
                sentences.append(_words_only(encoding, passage[start:end]))
            encodings.append(sentences)
        return encodings

    def passages(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Group consecutive sentences into windows of at most PASSAGE_TOKENS tokens.

        Returns (first, last + 1) sentence index ranges. A window ends early at a blank line
        (a section break in pasted text); the single line breaks between a web article's
        paragraphs do not end it, since neighbouring paragraphs usually share their subject."""
        if not self.contextual:
            return [(i, i + 1) for i in range(len(spans))]
        self.warm_up()
        tokenized = self._runner.tokenizer.encode_batch([text[a:b] for a, b in spans])
        counts = [len(sentence.ids) - 2 for sentence in tokenized]
        windows, first, size = [], 0, 0
        for index, count in enumerate(counts):
            gap = text[spans[index - 1][1] : spans[index][0]] if index else ""
            if index > first and (size + count > PASSAGE_TOKENS or "\n\n" in gap):
                windows.append((first, index))
                first, size = index, 0
            size += count
        if spans:
            windows.append((first, len(spans)))
        return windows

    def _reference_token_mean(self) -> np.ndarray:
        """The average token vector of this model over a neutral bilingual text.

        Contextual token vectors all share one large common direction; matching tokens only
        works once it is removed. It is a property of the model, not of any chat's articles."""
        reference = resources.files("index").joinpath("data/token_reference.txt").read_text("utf-8")
        paragraphs = [p for p in reference.split("\n") if p.strip()]
        outputs = self._forward(paragraphs, self.document_prompt)
        return np.concatenate([output.states for output in outputs]).mean(axis=0)
