"""Embedding backends: onnxruntime gives torch's vectors; int8 is close and kept apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import SetupError
from rag.index.manifest import IndexSpec
from rag.ingest.chunking import split_sentences
from rag.models.embeddings import Embedder
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION, SEED_DIR

TEXTS = [
    EXAMPLE_QUESTION,
    "Xiaomi's first electric vehicle is expected during 2023.",
    (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()[:1500],
]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


def test_fp32_onnx_vectors_match_torch(tmp_path: Path, torch_embedder: Embedder) -> None:
    fp32 = Embedder(backend="onnx", cache_dir=tmp_path / "models")
    assert fp32.backend == "onnx" and fp32.precision == "fp32"
    same = np.sum(fp32.encode(TEXTS) * torch_embedder.encode(TEXTS), axis=1)
    assert same.min() > 0.9999


def test_default_int8_is_close_and_its_index_is_kept_apart(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    assert embedder.backend == "onnx-int8" and embedder.precision == "int8"
    close = np.sum(embedder.encode(TEXTS) * torch_embedder.encode(TEXTS), axis=1)
    assert close.min() > 0.97
    settings = Settings(index_dir=tmp_path / "index", sources=[SEED_DIR])
    RagService.open(settings, torch_embedder)
    reasons = RagService(settings, embedder).sync_sources()
    assert reasons == ["precision changed ('fp32' -> 'int8')"]
    assert IndexSpec("m", 1, 0) == IndexSpec("m", 1, 0, "fp32")  # older manifests read as fp32


def test_batches_run_side_by_side_keep_each_vector_in_its_row(embedder: Embedder) -> None:
    article = (SEED_DIR / "xiaomi-great-wall-electric-car.txt").read_text()
    texts = [article[s.start : s.end] for s in split_sentences(article)]
    assert len(texts) > embedder.batch_size  # several batches, on the embedding pool
    together = embedder.encode(texts)
    one_by_one = np.concatenate([embedder.encode([text]) for text in texts])
    # int8 activations are scaled per batch, so a vector moves a little with its company
    same = np.sum(together * one_by_one, axis=1)
    assert same.min() > 0.97
    assert (np.argmax(together @ one_by_one.T, axis=1) == np.arange(len(texts))).all()


def test_an_encoder_that_fails_to_load_is_an_error_not_a_silent_switch_to_torch(
    tmp_path: Path, embedder: Embedder
) -> None:
    cache = tmp_path / "models"
    Embedder(backend="onnx-int8", cache_dir=cache)  # exports it there
    for exported in cache.glob("*.onnx"):
        exported.write_bytes(b"not an onnx model")  # a damaged copy (a full disk, a crash)
    with pytest.raises(SetupError, match="RAG_EMBED_BACKEND=torch") as raised:
        Embedder(backend="onnx-int8", cache_dir=cache)
    assert str(cache) in str(raised.value)


def test_unknown_backend_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="onnx-int8"):
        Embedder(backend="tensorrt")


def test_quantising_a_model_leaves_the_console_quiet(tmp_path: Path) -> None:
    """A first start exports and quantises the encoder: onnxruntime's advice must not print,
    nor give the root logger a handler that prints every library's DEBUG lines after it."""
    import subprocess
    import sys

    script = f"""
import logging
import numpy as np
import onnx
from onnx import helper, numpy_helper
from rag.models.onnx_runtime import quantize_int8
weights = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "w")
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
    [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], [weights])
source = r"{tmp_path / "fp32.onnx"}"
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
quantize_int8(source, r"{tmp_path / "int8.onnx"}")
logging.getLogger("bm25s").setLevel(logging.DEBUG)
logging.getLogger("bm25s").debug("Building index from tokens")
print(len(logging.getLogger().handlers))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert (tmp_path / "int8.onnx").is_file()
    assert done.stdout.strip() == "0"
    assert "pre-processing" not in done.stderr and "bm25s" not in done.stderr, done.stderr
