"""Bulk ingest on Ray (`rag ingest --ray ADDRESS|auto|local`, the optional `rag[ray]`): Ray
Data workers read the files, cut the documents and embed them (one int8 ONNX encoder per
worker, loaded once); the driver writes each batch to PostgreSQL in a transaction of its own
(COPY). Nothing here runs without Ray: the embedded backend keeps its one-process ingest.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Settings
from rag.errors import DocumentError, SetupError
from rag.index.backends import open_backend
from rag.index.manifest import IndexSpec
from rag.index.segment import Embedded, embed_documents
from rag.ingest.documents import Document, iter_files, parse_file
from rag.models.embeddings import shared_embedder

BATCH_DOCUMENTS = 64  # documents a worker embeds, and the driver writes, at a time
READ_CPUS = 0.1  # of a core, for a task that reads a file; an encoder takes the rest


@dataclass
class RayIngestReport:
    documents: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def read_file(row: dict) -> list[dict]:
    """One file's documents (as JSON records), or the reason it has none."""
    path = Path(row["path"])
    try:
        docs = parse_file(path.name, path.read_bytes(), source=str(path))
    except (OSError, DocumentError) as error:
        return [{"document": "", "problem": f"{path}: {error}"}]
    return [{"document": json.dumps(d.to_record()), "problem": ""} for d in docs]


class EmbedBatch:
    """A Ray Data worker: one encoder for its life, batches of documents cut and embedded."""

    def __init__(self, settings: dict) -> None:
        import ray

        self.settings = Settings(**settings)
        # as many threads as the CPUs Ray gave this worker, not every core of its machine
        granted = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.encoder = embedder_for(self.settings, threads=max(1, round(granted)))
        self.spec = spec_for(self.settings, self.encoder.precision)

    def __call__(self, batch: dict) -> dict:
        """One row per batch: its documents embedded (pickled), and the files it could not
        read (problems travel with the data, so the files are read once)."""
        records = [r for r in batch["document"] if r]
        documents = [Document(**json.loads(record)) for record in records]
        embedded = embed_documents(documents, self.spec, self.encoder) if documents else None
        problems = [p for p in batch["problem"] if p]
        return {"embedded": [pickle.dumps(embedded)], "problems": [json.dumps(problems)]}


def embedder_for(settings: Settings, threads: int | None = None):
    return shared_embedder(
        settings.model,
        settings.embed_batch_size,
        settings.embed_backend,
        settings.model_cache_dir,
        threads,
    )


def spec_for(settings: Settings, precision: str) -> IndexSpec:
    return IndexSpec(settings.model, settings.chunk_size, settings.chunk_overlap, precision)


def ingest_with_ray(
    paths: list[Path],
    settings: Settings,
    address: str,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> RayIngestReport:
    """Ingest `paths` through a Ray cluster at `address` ("auto": the one this machine
    belongs to; "local": start one here) into the database `settings` names."""
    if settings.database_url is None:
        raise SetupError("--ray writes to PostgreSQL: set RAG_DATABASE_URL")
    try:
        import ray
    except ImportError:
        raise SetupError("Ray is not installed: `pip install rag[ray]` (or `make ray`)") from None
    started = time.perf_counter()
    local = address == "local"
    ray.init(
        address=None if local else address,
        num_cpus=workers if local else None,
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    try:
        encoder = embedder_for(settings)  # the driver's: the spec's precision, reused vectors
        backend = open_backend(settings, spec_for(settings, encoder.precision), encoder)
        files = [{"path": str(p.resolve())} for p in iter_files(paths)]
        # reading is light: it must never wait for a core the encoders hold
        rows = ray.data.from_items(files).flat_map(read_file, num_cpus=READ_CPUS)
        # the worker settings travel as plain values (secrets stay with the driver)
        values = settings.model_dump(include=set(WORKER_SETTINGS))
        values["model_cache_dir"] = str(Path(values["model_cache_dir"]).resolve())
        embedded = rows.map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"settings": values},
            batch_size=BATCH_DOCUMENTS,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1 - READ_CPUS,
        )
        report = RayIngestReport()
        seen: set[str] = set()
        for batch in embedded.iter_batches(batch_size=1):
            report.problems += json.loads(batch["problems"][0])
            part: Embedded | None = pickle.loads(batch["embedded"][0])
            if part is None:
                continue
            repeated = [d.doc_id for d in part.pieces.documents if d.doc_id in seen]
            report.problems += [f"doc_id {d!r} appears twice; the later one kept" for d in repeated]
            seen.update(d.doc_id for d in part.pieces.documents)
            with backend.writer(progress) as write:
                write.add_embedded(part)
            report.documents += len(part.pieces.documents)
            if progress:
                progress(f"written {report.documents} documents")
        report.seconds = time.perf_counter() - started
        report.workers = workers
        return report
    finally:
        if local:
            ray.shutdown()


WORKER_SETTINGS = (
    "model",
    "embed_batch_size",
    "embed_backend",
    "model_cache_dir",
    "chunk_size",
    "chunk_overlap",
)
