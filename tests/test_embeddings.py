"""Embedding backends: onnxruntime gives torch's vectors; int8 is close and kept apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embeddings import Embedder
from rag.index import IndexSpec
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


def test_onnx_vectors_match_torch(embedder: Embedder, torch_embedder: Embedder) -> None:
    assert embedder.backend == "onnx" and embedder.precision == "fp32"
    same = np.sum(embedder.encode(TEXTS) * torch_embedder.encode(TEXTS), axis=1)
    assert same.min() > 0.9999


def test_int8_is_close_and_its_index_is_kept_apart(tmp_path: Path, torch_embedder) -> None:
    int8 = Embedder(backend="onnx-int8", cache_dir=tmp_path / "models")
    assert int8.backend == "onnx-int8" and list((tmp_path / "models").glob("*-int8.onnx"))
    close = np.sum(int8.encode(TEXTS) * torch_embedder.encode(TEXTS), axis=1)
    assert close.min() > 0.97
    settings = Settings(index_dir=tmp_path / "index", sources=[SEED_DIR])
    RagService.open(settings, torch_embedder)
    reasons = RagService(settings, int8).sync_sources()
    assert reasons == ["precision changed ('fp32' -> 'int8')"]
    assert IndexSpec("m", 1, 0) == IndexSpec("m", 1, 0, "fp32")  # older manifests read as fp32


def test_unknown_backend_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="onnx-int8"):
        Embedder(backend="tensorrt")
