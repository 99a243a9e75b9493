"""The application object: one loaded model, one index version, the pipeline over them.

The API, the CLI and the evaluation all call this facade, so they answer the same way. It
opens the backend, syncs the configured sources, swaps whole index versions in, and hands
questions to the query pipeline; the work itself is done in `rag.index` and `rag.query`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.errors import Conflict, IndexStoreError, NotFoundError, NotReadyError, SetupError
from rag.index.backend import Backend, CorpusView, Transaction
from rag.index.backends import open_backend
from rag.index.dense import search_on_one_thread
from rag.index.manifest import IndexSpec
from rag.ingest.documents import UPLOADED, Document, fingerprint_paths, load_paths
from rag.ingest.stories import RECENT_STORIES, StoryIndex
from rag.models.embeddings import Embedder, StoppableEmbedder, shared_embedder, shared_query_workers
from rag.models.reader import Reader, shared_reader
from rag.query.conversation import Turn
from rag.query.pipeline import Pipeline, Query, Snapshot
from rag.types import AnswerMode, AskResult, Passage

Progress = Callable[[str], None] | None


class RagService:
    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, reader: Reader | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder or shared_embedder(
            settings.model,
            settings.embed_batch_size,
            settings.embed_backend,
            settings.model_cache_dir,
        )
        self.queries = shared_query_workers(self.embedder, search_on_one_thread)
        self.pipeline = Pipeline(settings, reader or shared_reader(), self.embedder, self.queries)
        self.stopping = threading.Event()
        self.spec = IndexSpec(
            settings.model, settings.chunk_size, settings.chunk_overlap, self.embedder.precision
        )
        writer = StoppableEmbedder(self.embedder, self.stopping)
        self.backend: Backend = open_backend(settings, self.spec, writer)
        self.snapshot: Snapshot | None = None
        self.known_stories: StoryIndex | None = None  # of the version this process wrote

    @classmethod
    def open(
        cls, settings: Settings, embedder: Embedder | None = None, progress: Progress = None
    ) -> RagService:
        """Load the index, first rebuilding it when it is missing or stale."""
        service = cls(settings, embedder)
        service.sync_sources(progress)
        return service

    @property
    def root(self) -> Path:
        return self.settings.index_dir

    # --- writes --------------------------------------------------------------------------

    def sync_sources(self, progress: Progress = None, force: bool = False) -> list[str]:
        """Bring the index in line with the configured source files.

        A new model, chunking or format rebuilds it all (reusing vectors it can); changed
        source files re-index only the documents that changed. `force` rebuilds without
        trusting the index (the way out of a corrupt one): from the source files and every
        other document whose text can still be read from it. Source documents deleted
        through the service stay out until ingested again. Returns the reasons it wrote
        (empty when the index was fresh)."""
        if self.backend.read_only:  # a replica of a standby: the primary's replicas sync
            if (index := self.backend.load()) is None:
                raise SetupError("the standby holds no index yet: start a replica on the primary")
            self.activate(index)
            return []
        sources = [p for p in self.settings.sources if p.exists()]
        fingerprint = fingerprint_paths(sources) if sources else None
        with self.writer(progress, force) as write:
            if reasons := write.stale_reasons:
                say(progress, f"rebuilding index in {self.root}: {'; '.join(reasons)}")
                kept = [
                    d
                    for d in salvaged(write, progress)
                    if not from_sources(d, self.settings.sources)
                ]
                if kept:
                    say(progress, f"kept {len(kept)} documents the sources do not hold")
                every = merge(kept, self.sources_kept(write, sources, progress))
                self.known_stories = StoryIndex()
                write.replace_all(self.known_stories.tag(every))
                write.sources_fingerprint = fingerprint
            elif fingerprint is not None and fingerprint != write.sources_fingerprint:
                reasons = ["source files changed"]
                say(progress, f"updating index in {self.root}: source files changed")
                before = {d.doc_id: d for d in write.stored_documents() if from_sources(d, sources)}
                incoming = self.sources_kept(write, sources, progress)
                gone = set(before) - {d.doc_id for d in incoming}
                incoming = self.stories(write, gone).tag(incoming)
                write.add([d for d in incoming if before.get(d.doc_id) != d])
                write.delete(gone)
                write.sources_fingerprint = fingerprint
        self.activate(write.result)
        return reasons

    def sources_kept(
        self, write: Transaction, sources: list[Path], progress: Progress
    ) -> list[Document]:
        """The source files' documents, less those deleted through the service (the record
        of which forgets files that are gone)."""
        report = load_paths(sources)
        for problem in report.problems:
            say(progress, f"skipped: {problem}")
        write.withdrawn &= {d.doc_id for d in report.documents}
        if write.withdrawn:
            say(progress, f"left out {len(write.withdrawn)} deleted source documents")
        return [d for d in report.documents if d.doc_id not in write.withdrawn]

    def ingest(self, documents: Iterable[Document], progress: Progress = None) -> CorpusView:
        """Add or replace documents; unchanged sentences keep their vectors."""
        return self.update(list(documents), set(), progress)

    def put(
        self, documents: list[Document], only_new: bool, progress: Progress = None
    ) -> tuple[CorpusView, set[str]]:
        """Add (or, unless `only_new`, replace) documents; the ids that were new. The check
        and the write are one transaction: of two racing creates of one id, one gets 409."""
        with self.writer(progress) as write:
            ids = {d.doc_id for d in documents}
            taken = write.live_ids(ids)
            if only_new and taken:
                first = sorted(taken)[0]
                raise Conflict(f"doc_id {first!r} exists; PUT /documents/{first} replaces it")
            write.add(self.stories(write).tag(documents))
        self.activate(write.result)
        return write.result, ids - taken

    def delete(self, doc_ids: list[str]) -> CorpusView:
        """Delete documents; those from the source files stay deleted across syncs."""
        index = self.snapshot.index if self.snapshot else self.backend.load()
        sourced = {
            doc_id
            for doc_id in doc_ids
            if index
            and (doc := index.document(doc_id))
            and from_sources(doc, self.settings.sources)
        }
        with self.writer() as write:
            write.delete(set(doc_ids))
            write.withdraw(sourced)
        for doc_id in doc_ids if self.known_stories else ():
            self.known_stories.remove(doc_id)
        self.activate(write.result)
        return write.result

    def update(
        self, added: list[Document], removed: set[str], progress: Progress = None
    ) -> CorpusView:
        """Publish a version with `added` (replacing same ids) and without `removed`.

        Writers run one at a time, across processes; queries keep answering from the
        previous version until the new one is swapped in."""
        with self.writer(progress) as write:
            write.delete(removed)
            write.add(self.stories(write, removed).tag(added))
        self.activate(write.result)
        return write.result

    def stories(self, write: Transaction, removed: set[str] = frozenset()) -> StoryIndex:
        """Which wire story each document is, read from the version being written to the
        first time (or after another process wrote), then kept up to date write by write."""
        if self.known_stories is None:  # copies of a story arrive close together: the most
            # recent documents bound what a first write after a start reads
            self.known_stories = StoryIndex(write.stored_documents()[-RECENT_STORIES:])
        for doc_id in removed:
            self.known_stories.remove(doc_id)
        return self.known_stories

    def writer(self, progress: Progress = None, force: bool = False):
        previous = self.snapshot.index if self.snapshot else None
        return self.backend.writer(progress, force, previous)

    def stop_writes(self) -> None:
        """Shutting down: a write in progress ends unpublished; queries still answer."""
        self.stopping.set()

    # --- versions ------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Swap in a version another process (`rag ingest`, `rag delete`) published; True when
        there was one. A version removed while being read is picked up on the next call."""
        head = self.backend.head()
        if head is None or (self.snapshot and self.snapshot.index.snapshot == head):
            return False
        self.known_stories = None  # another process wrote: read its stories again
        self.activate(self.backend.load(self.snapshot.index if self.snapshot else None))
        return True

    def activate(self, index: CorpusView) -> None:
        self.snapshot = self.pipeline.snapshot(index)

    def current(self) -> Snapshot:
        if self.snapshot is None:
            raise NotReadyError("the index is not loaded yet; retry in a few seconds")
        return self.snapshot

    # --- queries -------------------------------------------------------------------------

    def ask(
        self,
        question: str | Query,
        top_k: int | None = None,
        *,
        doc_ids: list[str] | None = None,
        history: list[Turn] | None = None,
        mode: AnswerMode | str | None = None,
        min_confidence: float | None = None,
        query_vector: np.ndarray | None = None,
    ) -> AskResult:
        """Answer a question; `history` (earlier turns) resolves follow-ups like "and when?"."""
        query = as_query(question, top_k, doc_ids, history, mode, min_confidence)
        *_, result = self.pipeline.ask(self.current(), query, query_vector)
        return result

    def ask_stream(self, query: Query) -> Iterator[str | AskResult]:
        """`ask`, with a generated reply's checked sentences yielded as they come; the last
        item is the AskResult."""
        return self.pipeline.ask(self.current(), query)

    def search(
        self,
        query: str | Query,
        top_k: int | None = None,
        *,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        return self.pipeline.search(self.current(), as_query(query, top_k, doc_ids), query_vector)

    def ask_later(self, query: Query) -> Future[AskResult]:
        """An extractive answer, queued for a query worker that embeds and answers it (an
        event loop awaits the future); `timings_ms.embed` includes the wait in the queue."""
        queued = time.perf_counter()
        query = replace(query, mode=AnswerMode.EXTRACTIVE)

        def answer(vector: np.ndarray) -> AskResult:
            waited = round((time.perf_counter() - queued) * 1000, 2)
            *_, result = self.pipeline.ask(self.current(), query, vector)
            result.timings_ms.update(
                embed=waited, total=round(waited + result.timings_ms["total"], 2)
            )
            return result

        return self.queries.submit(query.question, answer)

    def ask_batch(self, questions: list[str], top_k: int | None = None) -> list[AskResult]:
        """Many questions at once, embedded side by side as `/ask` embeds them (benchmarks)."""
        queries = [Query(q, top_k) for q in questions]
        vectors = self.embedder.encode([q.question for q in queries], batch_size=1)
        return [self.ask(q, query_vector=v) for q, v in zip(queries, vectors, strict=True)]

    def count_tokens(self, text: str) -> int:
        return self.pipeline.reader.count_tokens(text)

    # --- documents -----------------------------------------------------------------------

    def documents(self) -> list[Document]:
        return self.current().index.live_documents()

    def document(self, doc_id: str) -> Document:
        if (doc := self.current().index.document(doc_id)) is None:
            raise NotFoundError(f"unknown doc_id {doc_id!r}")
        return doc


def as_query(
    question: str | Query,
    top_k: int | None = None,
    doc_ids: list[str] | None = None,
    history: list[Turn] | None = None,
    mode: AnswerMode | str | None = None,
    min_confidence: float | None = None,
) -> Query:
    if isinstance(question, Query):
        return question
    doc_id_tuple = None if doc_ids is None else tuple(doc_ids)
    return Query(question, top_k, doc_id_tuple, history or (), mode, min_confidence)


def salvaged(write: Transaction, progress: Progress) -> list[Document]:
    """What the index holds, to rebuild with; nothing, said aloud, when it cannot be read."""
    try:
        return write.salvage_documents()
    except IndexStoreError as error:
        say(progress, f"{error}: rebuilding from the sources alone")
        return []


def merge(existing: list[Document], incoming: list[Document]) -> list[Document]:
    """Existing documents, with any that share an id with an incoming one replaced."""
    replaced = {doc.doc_id for doc in incoming}
    return [d for d in existing if d.doc_id not in replaced] + incoming


def from_sources(document: Document, sources: list[Path]) -> bool:
    """Whether the sync wrote it, from a file of a source folder (an upload's source is
    marked as one: a name a client chose never passes for a source file)."""
    if document.source is None or document.source.startswith(UPLOADED):
        return False
    path = Path(document.source).resolve()
    return any(path == s.resolve() or s.resolve() in path.parents for s in sources)


def say(progress: Progress, message: str) -> None:
    if progress:
        progress(message)
