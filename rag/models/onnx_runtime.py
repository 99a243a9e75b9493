"""The embedding model's transformer run by onnxruntime: same vectors, a fraction of the time
per query (no Python between layers), and an optional int8 variant for faster ingest.

The ONNX file is exported here, from the loaded model, on first use (nothing is downloaded)
and cached. (optimum would do the export, but it pins an older transformers.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("rag")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(model, destination: Path, int8: bool) -> Path:
    """Write the sentence-transformers model's transformer as ONNX (atomically)."""
    import torch

    transformer = model[0].auto_model.eval()
    tokenizer = model.tokenizer
    sample = tokenizer(
        ["a short one", "and a somewhat longer sentence"], padding=True, return_tensors="pt"
    )
    names = [name for name in INPUTS if name in sample]

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            return self.transformer(**dict(zip(names, tensors, strict=True))).last_hidden_state

    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{destination.name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes: expected, not news
            torch.onnx.export(
                Hidden(),
                tuple(sample[name] for name in names),
                str(staging),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]},
                opset_version=17,
                dynamo=False,
            )
        if int8:
            quantized = staging.with_name(staging.name + ".int8")
            quantize_int8(staging, quantized)
            os.replace(quantized, staging)
        os.replace(staging, destination)
    finally:
        staging.unlink(missing_ok=True)
    return destination


def quantize_int8(source: Path, destination: Path) -> None:
    """Weights to 8-bit, activations scaled per call (dynamic): a quarter of the size, on
    VNNI/AMX about twice the speed."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with root_logging_untouched():
        quantize_dynamic(
            source,
            destination,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # fused operators (com.microsoft) have no inferred output types: they are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextmanager
def root_logging_untouched() -> Iterator[None]:
    """onnxruntime's quantizer warns through `logging.warning`, which gives the root logger a
    handler when it has none: a first start would print its advice, and from then on every
    library's DEBUG lines (bm25s sets DEBUG on its own logger). Its advice is dropped here and
    the root logger left as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


def cached_export(
    load_model: Callable[[], Any], model_path: str, cache_dir: Path, int8: bool
) -> Path:
    """The model's ONNX file, exported (from `load_model()`) only when no cached copy exists."""
    weights = sorted(Path(model_path).rglob("*.safetensors")) or sorted(
        Path(model_path).rglob("*.bin")
    )
    identity = hashlib.sha1(
        "\x00".join([model_path, *(f"{p.name}:{p.stat().st_size}" for p in weights)]).encode()
    ).hexdigest()[:12]
    path = cache_dir / f"{Path(model_path).name}-{identity}{'-int8' if int8 else ''}.onnx"
    if not path.is_file():
        log.info("exporting %s to %s", model_path, path)
        export(load_model(), path, int8)
    return path


SIMPLE_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


class OnnxTransformer:
    """Normalised sentence vectors from onnxruntime and the model's own tokenizer.json, pooled
    as its sentence-transformers config says (mean or [CLS]). Neither torch nor
    sentence-transformers is imported, so a one-off question starts in a second, not ten."""

    def __init__(self, model_path: Path, onnx_path: Path, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        # One thread per call; callers run calls side by side instead. Measured on 2 cores: a
        # small model's matrices split across two threads cost ~40% more CPU per text (and
        # the lone int8 query got slower, 2.9 vs 2.5 ms); idle threads must not spin either.
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]
        pooling = pooling_config(model_path)
        self.dimension = int(pooling["word_embedding_dimension"])
        self.mean = bool(pooling.get("pooling_mode_mean_tokens"))
        settings = read_json(model_path / "sentence_bert_config.json")
        self.lowercase = bool(settings.get("do_lower_case"))
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(settings.get("max_seq_length", 512)))
        pad = read_json(model_path / "special_tokens_map.json").get("pad_token", "[PAD]")
        pad = pad["content"] if isinstance(pad, dict) else pad
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad), pad_token=pad)

    @staticmethod
    def supports(model_path: Path) -> bool:
        """A local model made of a transformer, mean or [CLS] pooling and (optionally) a
        normalisation, with a tokenizer.json: what this class reproduces exactly."""
        modules = read_json(model_path / "modules.json") if model_path.is_dir() else []
        types = [m["type"] for m in modules] if isinstance(modules, list) else []
        if types not in (SIMPLE_MODULES, SIMPLE_MODULES[:2]):
            return False
        pooling = pooling_config(model_path)
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
        known = modes in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"])
        return known and (model_path / "tokenizer.json").is_file()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised sentence vectors for one batch."""
        # sentence-transformers strips (and, if configured, lowercases) before tokenizing
        texts = [t.strip().lower() if self.lowercase else t.strip() for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        tokens = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self.session.run(None, {name: tokens[name] for name in self.names})[0]
        if self.mean:
            mask = tokens["attention_mask"][:, :, None].astype(np.float32)
            vectors = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        else:
            vectors = hidden[:, 0]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)


def pooling_config(model_path: Path) -> dict:
    modules = read_json(model_path / "modules.json")
    folder = next((m["path"] for m in modules if m["type"].endswith(".Pooling")), "1_Pooling")
    return read_json(model_path / folder / "config.json")
