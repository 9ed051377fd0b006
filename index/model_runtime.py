"""The ways to run the embedding model: ONNX Runtime in fp32 (the default) or int8, or PyTorch.

All turn token ids into the model's last hidden states; tokenising, pooling and the token
vectors used for re-ranking are the embedder's and the same for all, so every vector of a
sentence comes from one pass of one model.

ONNX Runtime: the sentence-transformers model is exported once into the model cache and its
graph rewritten by ONNX Runtime's transformer optimiser (fused attention, layer norms and
GELU), which computes the same vectors as PyTorch up to float rounding, faster. A process that
runs it never imports PyTorch (hundreds of megabytes and a second or two of start-up), and the
250,000-word embedding table stays out of the graph: only the rows of the words read are
ever loaded. `int8` quantises the fused graph's weights to
8 bits (dynamic quantisation, per channel): a third of the size on disk, slightly different
vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from index.config import Settings
from index.model_cache import build_once
from index.packaged_model import PACKAGED_MODEL_NAME, provision_packaged_model

_ONNX_FILE = "model.onnx"
_TOKENIZER_FILE = "tokenizer.json"
_INFO_FILE = "encoder.json"
# The word embedding table (250,000 words x 384 for the packaged model) stays out of the graph:
# the runner reads the rows of the words in a batch from this file, so memory holds only those
# (ONNX Runtime's own mapping of the table came to hold most of it after a few articles).
_EMBEDDINGS_FILE = "word_embeddings.npy"
# ONNX Runtime's threads per model pass (the machines this bot runs on have few cores).
_THREADS = 2


class ModelRunner(ABC):
    """A loaded model: its tokenizer, prompts and vector size, and its forward pass.

    The tokenizer truncates to the model's length limit and never pads: its settings are
    fixed at load time, so threads can tokenise at the same time."""

    tokenizer: Tokenizer
    prompts: dict[str, str]
    dimension: int
    pad_id: int

    @abstractmethod
    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last layer's output for a padded batch: (texts, tokens, dimension), float32."""


class TorchRunner(ModelRunner):
    """The sentence-transformers model as it is, in fp32 PyTorch."""

    def __init__(self, name: str, cache_dir: Path) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        model = SentenceTransformer(name, device="cpu", cache_folder=str(cache_dir))
        model.eval()
        self.transformer = model[0].auto_model
        self.tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(model.max_seq_length)
        self.prompts = dict(model.prompts)
        self.dimension = int(self.transformer.config.hidden_size)
        self.pad_id = int(model.tokenizer.pad_token_id)

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            output = self.transformer(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            )
        return output.last_hidden_state.numpy()

    def export_onnx(self, folder: Path, int8: bool) -> None:
        """Write this model to `folder` as an ONNX graph fused by ONNX Runtime's transformer
        optimiser (weights 8-bit if `int8`), with its tokenizer and prompts."""
        folder.mkdir(parents=True)
        table = self.transformer.get_input_embeddings().weight.detach().numpy()
        np.save(folder / _EMBEDDINGS_FILE, table.astype("<f4"))
        exported = folder / "exported.onnx"
        self._export(exported)
        fused = _fuse(exported, self.transformer.config)
        exported.unlink()
        if int8:
            _quantise(fused, folder / _ONNX_FILE)
        else:
            # Weights in a file of their own, which ONNX Runtime maps instead of reading.
            fused.save_model_to_file(str(folder / _ONNX_FILE), use_external_data_format=True)
        (folder / _TOKENIZER_FILE).write_text(self.tokenizer.to_str(), encoding="utf-8")
        info = {"prompts": self.prompts, "dimension": self.dimension, "pad_id": self.pad_id}
        (folder / _INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    def _export(self, path: Path) -> None:
        import torch

        class LastHiddenState(torch.nn.Module):
            def __init__(self, transformer: torch.nn.Module) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor):
                output = self.transformer(
                    inputs_embeds=inputs_embeds, attention_mask=attention_mask
                )
                return output.last_hidden_state

        # The optimiser recognises attention written out as matrix products, not PyTorch's
        # fused scaled-dot-product kernel.
        self.transformer.set_attn_implementation("eager")
        mask = torch.ones((2, 8), dtype=torch.long)
        sample = torch.zeros((2, 8, self.dimension))
        axes = {0: "texts", 1: "tokens"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on traced control flow
            torch.onnx.export(
                LastHiddenState(self.transformer),
                (sample, mask),
                str(path),
                input_names=["inputs_embeds", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "inputs_embeds": axes,
                    "attention_mask": axes,
                    "last_hidden_state": axes,
                },
                opset_version=17,
                dynamo=False,
            )


def _fuse(path: Path, config):
    """The exported graph with attention, embedding + layer norm, skip + layer norm and
    bias + GELU each fused into one ONNX Runtime operator (same arithmetic)."""
    from onnxruntime.transformers.optimizer import optimize_model

    with _quiet():
        return optimize_model(
            str(path),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
        )


def _quantise(fused, path: Path) -> None:
    """Dynamic int8 quantisation of the fused graph's weights, one scale per channel (token
    vectors closest to fp32: mean cosine 0.99 against 0.97 with one scale per matrix)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            fused.model,
            path,
            weight_type=QuantType.QInt8,
            per_channel=True,
            use_external_data_format=True,
            # The fused operators are ONNX Runtime's own, which shape inference does not know.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the optimiser's and quantiser's reports (one line per tensor, on the root
    logger) while they run."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class OnnxRunner(ModelRunner):
    """A model exported by `TorchRunner.export_onnx`, run by ONNX Runtime (no PyTorch)."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _THREADS
        options.inter_op_num_threads = 1
        # Without the arena, the memory of a long passage's pass is given back afterwards
        # instead of being kept for the next (measured: 27 MB instead of 144 MB kept after a
        # batch of 16 passages of 256 tokens): a serving process mostly reads short questions.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3  # warnings about unused initialisers are noise
        self.model_path = folder / _ONNX_FILE
        self.session = onnxruntime.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / _TOKENIZER_FILE))
        info = json.loads((folder / _INFO_FILE).read_text(encoding="utf-8"))
        self.prompts = info["prompts"]
        self.dimension = int(info["dimension"])
        self.pad_id = int(info["pad_id"])
        self.embeddings = EmbeddingRows(folder / _EMBEDDINGS_FILE)

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {
            "inputs_embeds": self.embeddings.lookup(ids),
            "attention_mask": mask.astype(np.int64),
        }
        return self.session.run(None, feed)[0]


class EmbeddingRows:
    """Rows of a word embedding table saved by `np.save`, read from the file as needed."""

    def __init__(self, path: Path) -> None:
        table = np.load(path, mmap_mode="r")  # only its header is read
        self._path = path
        self._start = table.offset
        self._dtype = table.dtype
        self._row_bytes = table.shape[1] * table.dtype.itemsize
        del table

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids`, shaped (*ids.shape, dimension), float32."""
        unique, inverse = np.unique(ids, return_inverse=True)
        with self._path.open("rb") as file:
            rows = b"".join(
                os.pread(file.fileno(), self._row_bytes, self._start + int(i) * self._row_bytes)
                for i in unique
            )
        table = np.frombuffer(rows, dtype=self._dtype).reshape(len(unique), -1)
        return table[inverse.reshape(ids.shape)].astype(np.float32)


def load_runner(settings: Settings) -> ModelRunner:
    """The configured model with the configured encoder, provisioned into the cache if needed:
    the packaged model is converted once, an ONNX encoder exported once."""
    cache_dir = Path(settings.model_cache_dir)
    name = settings.model
    if name == PACKAGED_MODEL_NAME:
        name = str(provision_packaged_model(cache_dir))
    if settings.encoder == "pytorch":
        return TorchRunner(name, cache_dir)
    int8 = settings.encoder == "int8"
    folder = build_once(
        cache_dir / onnx_folder_name(name, int8),
        lambda target: TorchRunner(name, cache_dir).export_onnx(target, int8),
        f"the {settings.encoder} ONNX encoder of {settings.model}",
    )
    return OnnxRunner(folder)


def onnx_folder_name(name: str, int8: bool) -> str:
    """A cache folder name for the ONNX export of model `name` (an id or a local folder)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name).strip("-.")
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{readable}-{digest}-onnx-fused-{'int8' if int8 else 'fp32'}"
