"""The two ways to run the embedding model: fp32 PyTorch (the default) or int8 ONNX Runtime.

Both turn token ids into the model's last hidden states; tokenising, pooling and the token
vectors used for re-ranking are the embedder's and the same for both, so every vector of a
sentence comes from one pass of one model.

int8: the sentence-transformers model is exported once to ONNX and its weights quantised to
8 bits with ONNX Runtime's dynamic quantisation, into the model cache. It encodes several times
faster on a CPU than fp32 PyTorch, and a process that serves with it never imports PyTorch
(which alone takes hundreds of megabytes and a second or two to load).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from index.config import Settings
from index.model_cache import build_once
from index.packaged_model import PACKAGED_MODEL_NAME, provision_packaged_model

_ONNX_FILE = "model.onnx"
_TOKENIZER_FILE = "tokenizer.json"
_INFO_FILE = "encoder.json"


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

    def export_int8(self, folder: Path) -> None:
        """Write this model to `folder` as int8 ONNX, with its tokenizer and prompts."""
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic

        class LastHiddenState(torch.nn.Module):
            def __init__(self, transformer: torch.nn.Module) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
                output = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
                return output.last_hidden_state

        folder.mkdir(parents=True)
        fp32 = folder / "model-fp32.onnx"
        sample = torch.ones((2, 8), dtype=torch.long)
        axes = {0: "texts", 1: "tokens"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on traced control flow
            torch.onnx.export(
                LastHiddenState(self.transformer),
                (sample, sample),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
        # Per-channel scales keep the token vectors closest to fp32 (mean cosine 0.99 against
        # 0.97 with one scale per matrix, measured on XQuAD passages) at the same speed.
        quiet = logging.getLogger()  # the quantiser reports every tensor on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                fp32, folder / _ONNX_FILE, weight_type=QuantType.QInt8, per_channel=True
            )
        finally:
            quiet.setLevel(level)
        fp32.unlink()
        (folder / _TOKENIZER_FILE).write_text(self.tokenizer.to_str(), encoding="utf-8")
        info = {"prompts": self.prompts, "dimension": self.dimension, "pad_id": self.pad_id}
        (folder / _INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")


class OnnxRunner(ModelRunner):
    """A model exported by `TorchRunner.export_int8`, run by ONNX Runtime (no PyTorch)."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise
        self.session = onnxruntime.InferenceSession(
            str(folder / _ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / _TOKENIZER_FILE))
        info = json.loads((folder / _INFO_FILE).read_text(encoding="utf-8"))
        self.prompts = info["prompts"]
        self.dimension = int(info["dimension"])
        self.pad_id = int(info["pad_id"])

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
        return self.session.run(None, feed)[0]


def load_runner(settings: Settings) -> ModelRunner:
    """The configured model with the configured encoder, provisioned into the cache if needed:
    the packaged model is converted once, the int8 encoder exported once."""
    cache_dir = Path(settings.model_cache_dir)
    name = settings.model
    if name == PACKAGED_MODEL_NAME:
        name = str(provision_packaged_model(cache_dir))
    if settings.encoder == "fp32":
        return TorchRunner(name, cache_dir)
    folder = build_once(
        cache_dir / int8_folder_name(name),
        lambda target: TorchRunner(name, cache_dir).export_int8(target),
        f"the int8 encoder of {settings.model}",
    )
    return OnnxRunner(folder)


def int8_folder_name(name: str) -> str:
    """A cache folder name for the int8 export of model `name` (an id or a local folder)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name).strip("-.")
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{readable}-{digest}-onnx-int8-per-channel"
