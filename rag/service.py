"""The application object: one loaded model, one index snapshot, and the pipeline over them.

The API, the CLI and the evaluation all call this, so they answer the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag import index as index_store
from rag.answer import Answer, ExtractiveAnswerer
from rag.citations import Citation, cite
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from rag.conversation import Turn, search_text
from rag.documents import Document, fingerprint_paths, load_paths
from rag.embeddings import Embedder, shared_embedder
from rag.index import CorpusIndex, IndexSpec
from rag.retrieval import HybridRetriever, Retrieval

ABSTAIN_MESSAGE = (
    "The indexed articles do not answer this question with enough support; "
    "the closest passages are listed."
)


class QueryError(ValueError):
    """A request the service cannot run as given; the message says why."""


class NotFoundError(KeyError):
    """An id that is not in the index."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Passage:
    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class AskResult:
    question: str
    answer: str | None
    answerable: bool
    confidence: float
    answer_type: str
    message: str | None
    citations: list[Citation]
    passages: list[Passage]
    timings_ms: dict[str, float] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Snapshot:
    """What one query runs against; replaced whole, so a reader never mixes two indexes."""

    index: CorpusIndex
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer


class RagService:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or shared_embedder(settings.model, settings.embed_batch_size)
        self.spec = IndexSpec(settings.model, settings.chunk_size, settings.chunk_overlap)
        self.snapshot: Snapshot | None = None

    # --- index lifecycle -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> RagService:
        """Load the index, first rebuilding it when it is missing or stale."""
        service = cls(settings, embedder)
        service.sync_sources(progress)
        return service

    @property
    def root(self) -> Path:
        return self.settings.index_dir

    def source_paths(self) -> list[Path]:
        return [p for p in self.settings.sources if p.exists()]

    def sync_sources(
        self, progress: Callable[[str], None] | None = None, force: bool = False
    ) -> list[str]:
        """Rebuild from the configured sources when the manifest says the index is stale.

        `force` rebuilds from the sources alone, without reading the current snapshot (the
        way out of a corrupt index). Returns the reasons it rebuilt (empty when fresh)."""
        sources = self.source_paths()
        fingerprint = fingerprint_paths(sources) if sources else None
        with index_store.write_lock(self.root):
            manifest = None if force else index_store.read_manifest(self.root)
            current = None if force else index_store.load(self.root)
            if force:
                reasons = ["rebuild requested"]
            elif manifest is None:
                reasons = ["no index yet"]
            else:
                reasons = manifest.stale_reasons(self.spec, fingerprint)
            if reasons:
                if progress:
                    progress(f"rebuilding index in {self.root}: {'; '.join(reasons)}")
                report = load_paths(sources)
                for problem in report.problems:
                    if progress:
                        progress(f"skipped: {problem}")
                existing = [] if manifest is None else index_store.load_documents(self.root)
                kept = [d for d in existing if not from_sources(d, self.settings.sources)]
                current = self.write(merge(kept, report.documents), current, fingerprint, progress)
        self.activate(current)
        return reasons

    def ingest(
        self, documents: Iterable[Document], progress: Callable[[str], None] | None = None
    ) -> CorpusIndex:
        """Add or replace documents; unchanged sentences keep their vectors."""
        incoming = list(documents)
        return self.update(lambda existing: merge(existing, incoming), progress)

    def delete(self, doc_ids: list[str]) -> CorpusIndex:
        gone = set(doc_ids)

        def without(existing: list[Document]) -> list[Document]:
            missing = gone - {d.doc_id for d in existing}
            if missing:
                raise NotFoundError(f"unknown doc_id {sorted(missing)[0]!r}")
            return [d for d in existing if d.doc_id not in gone]

        return self.update(without)

    def update(
        self,
        change: Callable[[list[Document]], list[Document]],
        progress: Callable[[str], None] | None = None,
    ) -> CorpusIndex:
        """Apply `change` to the document list and publish the result as a new snapshot.

        Writers take the index folder's lock, so they run one at a time, across processes;
        readers keep answering from the previous snapshot until the new one is swapped in."""
        with index_store.write_lock(self.root):
            current = self.latest()
            existing = current.documents if current else index_store.load_documents(self.root)
            fingerprint = current.manifest.sources_fingerprint if current else None
            updated = self.write(change(existing), current, fingerprint, progress)
        self.activate(updated)
        return updated

    def latest(self) -> CorpusIndex | None:
        """The snapshot on disk now: the one in memory unless another process wrote since."""
        folder = index_store.current_snapshot(self.root)
        if self.snapshot and folder and self.snapshot.index.snapshot == folder.name:
            return self.snapshot.index
        return index_store.load(self.root)

    def write(
        self,
        documents: list[Document],
        previous: CorpusIndex | None,
        fingerprint: str | None,
        progress: Callable[[str], None] | None,
    ) -> CorpusIndex:
        if not documents:
            raise QueryError("the index needs at least one document")
        built = index_store.build(
            documents, self.spec, self.embedder, previous, fingerprint, progress
        )
        index_store.save(built, self.root)
        return built

    def activate(self, index: CorpusIndex) -> None:
        self.snapshot = Snapshot(
            index,
            HybridRetriever(index, title_weight=self.settings.title_weight),
            ExtractiveAnswerer(index, threshold=self.settings.answer_threshold),
        )

    def current(self) -> Snapshot:
        if self.snapshot is None:
            raise RuntimeError("the index is not loaded yet")
        return self.snapshot

    # --- queries -------------------------------------------------------------------------

    def retrieve(
        self,
        question: str,
        top_k: int | None,
        doc_ids: list[str] | None,
        query_vector: np.ndarray | None = None,
        history: list[Turn] | None = None,
    ) -> tuple[Snapshot, Retrieval, dict[str, float]]:
        question = validate_question(question)
        text = search_text(question, history or [])
        top_k = validate_top_k(top_k if top_k is not None else self.settings.top_k)
        snapshot = self.current()
        for doc_id in doc_ids or []:
            if doc_id not in snapshot.index.doc_rows:
                raise NotFoundError(f"unknown doc_id {doc_id!r} in filters")
        timings = {}
        started = time.perf_counter()
        if query_vector is None:
            query_vector = self.embedder.encode([text])[0]
        timings["embed"] = elapsed_ms(started)
        started = time.perf_counter()
        retrieval = snapshot.retriever.run(question, query_vector, top_k, doc_ids, text)
        timings["retrieve"] = elapsed_ms(started)
        return snapshot, retrieval, timings

    def search(
        self,
        query: str,
        top_k: int | None = None,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        snapshot, retrieval, _ = self.retrieve(query, top_k, doc_ids, query_vector)
        return passages(snapshot.index, retrieval)

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
        history: list[Turn] | None = None,
    ) -> AskResult:
        """Answer `question`; `history` (earlier turns) resolves follow-ups like "and when?"."""
        started_all = time.perf_counter()
        snapshot, retrieval, timings = self.retrieve(
            question, top_k, doc_ids, query_vector, history
        )
        started = time.perf_counter()
        answer: Answer = snapshot.answerer.run(retrieval)
        citations = cite(snapshot.index, answer.evidence) if answer.answerable else []
        timings["answer"] = elapsed_ms(started)
        timings["total"] = elapsed_ms(started_all)
        return AskResult(
            question=retrieval.question,
            answer=answer.text,
            answerable=answer.answerable,
            confidence=round(answer.confidence, 4),
            answer_type=answer.answer_type.value,
            message=None if answer.answerable else ABSTAIN_MESSAGE,
            citations=citations,
            passages=passages(snapshot.index, retrieval),
            timings_ms=timings,
            signals={k: round(float(v), 4) for k, v in answer.signals.items()},
        )

    def ask_batch(self, questions: list[str], top_k: int | None = None) -> list[AskResult]:
        """Many questions with one model call for all their vectors (evaluation, benchmarks)."""
        vectors = self.embedder.encode([validate_question(q) for q in questions])
        return [self.ask(q, top_k, None, v) for q, v in zip(questions, vectors, strict=True)]

    # --- documents -----------------------------------------------------------------------

    def documents(self) -> list[Document]:
        return self.current().index.documents

    def document(self, doc_id: str) -> Document:
        index = self.current().index
        if doc_id not in index.doc_rows:
            raise NotFoundError(f"unknown doc_id {doc_id!r}")
        return index.documents[index.doc_rows[doc_id]]


def passages(index: CorpusIndex, retrieval: Retrieval) -> list[Passage]:
    result = []
    for scored in retrieval.chunks:
        doc = index.documents[index.chunk_doc[scored.chunk]]
        start, end = int(index.chunk_start[scored.chunk]), int(index.chunk_end[scored.chunk])
        result.append(
            Passage(
                doc_id=doc.doc_id,
                title=doc.title,
                chunk_id=index.chunk_id(scored.chunk),
                start=start,
                end=end,
                text=doc.text[start:end],
                score=round(scored.score, 4),
                dense=round(scored.dense, 4),
                lexical=round(scored.lexical, 4),
            )
        )
    return result


def validate_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise QueryError("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QueryError(
            f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    return question


def validate_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise QueryError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
    return top_k


def merge(existing: list[Document], incoming: list[Document]) -> list[Document]:
    """Existing documents, with any that share an id with an incoming one replaced."""
    replaced = {doc.doc_id for doc in incoming}
    return [d for d in existing if d.doc_id not in replaced] + incoming


def from_sources(document: Document, sources: list[Path]) -> bool:
    if document.source is None:
        return False
    path = Path(document.source).resolve()
    return any(path == s.resolve() or s.resolve() in path.parents for s in sources)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
