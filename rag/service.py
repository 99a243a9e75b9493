"""The application object: one loaded model, one index snapshot, and the pipeline over them.

The API, the CLI and the evaluation all call this, so they answer the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag import store
from rag.answer import Answer, ExtractiveAnswerer
from rag.citations import cite
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from rag.conversation import Turn, with_history
from rag.documents import Document, fingerprint_paths, load_paths
from rag.embeddings import Embedder, StoppableEmbedder, shared_embedder, shared_query_workers
from rag.errors import GenerationError, NotFoundError, NotReadyError, QueryError
from rag.generation import Generated, LanguageModel, Source
from rag.grounding import grounded_reply
from rag.index import CorpusIndex, IndexSpec, build, search_on_one_thread, with_changes
from rag.normalize import normalize
from rag.reader import Reader, shared_reader
from rag.retrieval import HybridRetriever, Retrieval
from rag.types import AnswerMode, AnswerSpan, AskResult, Evidence, Passage

ABSTAIN_MESSAGE = (
    "The indexed articles do not answer this question with enough support; "
    "the closest passages are listed."
)


@dataclass(frozen=True)
class Snapshot:
    """What one query runs against; replaced whole, so a reader never mixes two indexes."""

    index: CorpusIndex
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer


class RagService:
    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, reader: Reader | None = None
    ) -> None:
        self.settings = settings
        self.reader = reader or shared_reader()
        self.embedder = embedder or shared_embedder(
            settings.model,
            settings.embed_batch_size,
            settings.embed_backend,
            settings.model_cache_dir,
        )
        self.queries = shared_query_workers(self.embedder, search_on_one_thread)
        self.stopping = threading.Event()
        self.writer = StoppableEmbedder(self.embedder, self.stopping)
        self.spec = IndexSpec(
            settings.model, settings.chunk_size, settings.chunk_overlap, self.embedder.precision
        )
        self.snapshot: Snapshot | None = None
        self.llm: LanguageModel | None = None

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
        """Bring the index in line with the configured source files.

        A new model, chunking or format rebuilds it all (reusing vectors it can); changed
        source files re-index only the documents that changed. `force` rebuilds from the
        sources alone without reading the index (the way out of a corrupt one). Returns the
        reasons it wrote (empty when the index was fresh)."""
        sources = self.source_paths()
        fingerprint = fingerprint_paths(sources) if sources else None
        with store.write_lock(self.root):
            manifest = None if force else store.read_manifest(self.root)
            current = None if force else self.latest()
            if force:
                reasons = ["rebuild requested"]
            elif manifest is None:
                reasons = ["no index yet"]
            else:
                reasons = manifest.stale_reasons(self.spec)
            if reasons:
                say(progress, f"rebuilding index in {self.root}: {'; '.join(reasons)}")
                existing = [] if manifest is None else store.load_documents(self.root)
                kept = [d for d in existing if not from_sources(d, self.settings.sources)]
                current = self.rebuild(merge(kept, self.read_sources(progress)), current, progress)
            elif fingerprint is not None and fingerprint != manifest.sources_fingerprint:
                reasons = ["source files changed"]
                say(progress, f"updating index in {self.root}: source files changed")
                incoming = self.read_sources(progress)
                ours = [d for d in current.live_documents() if from_sources(d, sources)]
                before = {d.doc_id: d for d in ours}
                added = [d for d in incoming if before.get(d.doc_id) != d]
                removed = set(before) - {d.doc_id for d in incoming}
                current = with_changes(current, added, removed, self.writer, progress)
            if reasons:
                current.manifest.sources_fingerprint = fingerprint
                self.publish(current)
        self.activate(current)
        return reasons

    def read_sources(self, progress: Callable[[str], None] | None) -> list[Document]:
        report = load_paths(self.source_paths())
        for problem in report.problems:
            say(progress, f"skipped: {problem}")
        return report.documents

    def ingest(
        self, documents: Iterable[Document], progress: Callable[[str], None] | None = None
    ) -> CorpusIndex:
        """Add or replace documents; unchanged sentences keep their vectors."""
        return self.update(list(documents), set(), progress)

    def delete(self, doc_ids: list[str]) -> CorpusIndex:
        return self.update([], set(doc_ids))

    def update(
        self,
        added: list[Document],
        removed: set[str],
        progress: Callable[[str], None] | None = None,
    ) -> CorpusIndex:
        """Publish a commit with `added` (replacing same ids) and without `removed`.

        Only the change is indexed (one new segment). Writers take the index folder's lock,
        so they run one at a time, across processes; readers keep answering from the
        previous commit until the new one is swapped in."""
        with store.write_lock(self.root):
            current = self.latest()
            live = current.doc_rows if current else {d.doc_id: d for d in self.stored()}
            if missing := removed - set(live):
                raise NotFoundError(f"unknown doc_id {sorted(missing)[0]!r}")
            if current is None or current.manifest.stale_reasons(self.spec):
                kept = [d for d in self.stored() if d.doc_id not in removed]
                updated = self.rebuild(merge(kept, added), current, progress)
            else:
                updated = with_changes(current, added, removed, self.writer, progress)
            self.publish(updated)
        self.activate(updated)
        return updated

    def stored(self) -> list[Document]:
        return store.load_documents(self.root)

    def latest(self) -> CorpusIndex | None:
        """The commit on disk now: the one in memory unless another process wrote since."""
        target = store.current_commit(self.root)
        if self.snapshot and target and self.snapshot.index.snapshot == target.name:
            return self.snapshot.index
        return store.load(self.root, reuse=self.snapshot.index.segments if self.snapshot else ())

    def stop_writes(self) -> None:
        """Shutting down: a write in progress ends unpublished; queries still answer."""
        self.stopping.set()

    def refresh(self) -> bool:
        """Swap in a commit another process (`rag ingest`, `rag delete`) published; True when
        there was one. A commit removed while being read is picked up on the next call."""
        target = store.current_commit(self.root)
        if target is None or (self.snapshot and self.snapshot.index.snapshot == target.name):
            return False
        self.activate(self.latest())
        return True

    def rebuild(
        self,
        documents: list[Document],
        previous: CorpusIndex | None,
        progress: Callable[[str], None] | None,
    ) -> CorpusIndex:
        """One fresh segment over `documents`; vectors `previous` holds are reused."""
        if not documents:
            raise QueryError("the index needs at least one document")
        reusable = previous.segments if previous else []
        return build(documents, self.spec, self.writer, reusable, progress)

    def publish(self, index: CorpusIndex) -> None:
        if not index.doc_rows:
            raise QueryError("the index needs at least one document")
        store.commit(index, self.root)

    def activate(self, index: CorpusIndex) -> None:
        self.snapshot = Snapshot(
            index,
            HybridRetriever(index, title_weight=self.settings.title_weight),
            ExtractiveAnswerer(
                index,
                self.reader,
                threshold=self.settings.answer_threshold,
                passages_read=self.settings.reader_passages,
                window_chars=self.settings.reader_window_chars,
                stop_confidence=self.settings.reader_stop_confidence,
            ),
        )

    def current(self) -> Snapshot:
        if self.snapshot is None:
            raise NotReadyError("the index is not loaded yet; retry in a few seconds")
        return self.snapshot

    # --- queries -------------------------------------------------------------------------

    def retrieve(
        self,
        question: str,
        top_k: int | None,
        doc_ids: list[str] | None,
        query_vector: np.ndarray | None = None,
        search: str | None = None,
    ) -> tuple[Snapshot, Retrieval, dict[str, float]]:
        """Passages for `question`, searched by `search` (the question itself by default)."""
        question = validate_question(question)
        text = search or question
        top_k = validate_top_k(top_k if top_k is not None else self.settings.top_k)
        snapshot = self.current()
        for doc_id in doc_ids or []:
            if doc_id not in snapshot.index.doc_rows:
                raise NotFoundError(f"unknown doc_id {doc_id!r} in filters")
        timings = {}
        started = time.perf_counter()
        if query_vector is None:
            query_vector = self.queries.encode(text)
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

    def count_tokens(self, text: str) -> int:
        return self.reader.count_tokens(text)

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
        history: list[Turn] | None = None,
        mode: str | None = None,
    ) -> AskResult:
        """Answer `question`; `history` (earlier turns) resolves follow-ups like "and when?"."""
        *_, result = self.ask_stream(question, top_k, doc_ids, query_vector, history, mode)
        return result

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
        history: list[Turn] | None = None,
        mode: str | None = None,
    ) -> Iterator[str | AskResult]:
        """`ask`, with a generated reply's checked sentences yielded as they come; the last
        item is the AskResult."""
        mode = mode or self.settings.answer_mode
        try:
            mode = AnswerMode(mode)
        except ValueError:
            choices = ", ".join(AnswerMode)
            raise QueryError(f"mode must be one of {choices}, got {mode!r}") from None
        started_all = time.perf_counter()
        top_k = validate_top_k(top_k if top_k is not None else self.settings.top_k)
        depth = max(top_k, self.settings.reader_passages)
        readings = [(None, query_vector)]
        if follow_up := with_history(question, history or []):
            # embedded here, on this thread: it may be a query worker already
            readings.append((follow_up, self.embedder.encode([follow_up])[0]))
        best = None
        for search, vector in readings:
            snapshot, retrieval, timings = self.retrieve(question, depth, doc_ids, vector, search)
            started = time.perf_counter()
            answer: Answer = snapshot.answerer.run(retrieval)
            timings["answer"] = elapsed_ms(started)
            # a question read on its own and in the light of the previous one: keep the
            # reading the reader is surer of (the question alone on a tie)
            if best is None or answer.confidence > best[2].confidence:
                best = (snapshot, retrieval, answer, timings)
        snapshot, retrieval, answer, timings = best
        citations = cite(snapshot.index, answer.evidence) if answer.answerable else []
        timings["total"] = elapsed_ms(started_all)
        extractive = AskResult(
            question=retrieval.question,
            answer=answer.text,
            answerable=answer.answerable,
            confidence=round(answer.confidence, 4),
            answer_type=answer.answer_type.value,
            message=None if answer.answerable else ABSTAIN_MESSAGE,
            citations=citations,
            passages=passages(snapshot.index, retrieval)[:top_k],
            timings_ms=timings,
            signals={k: round(float(v), 4) for k, v in answer.signals.items()},
            answer_span=answer_span(snapshot.index, answer),
        )
        if mode == AnswerMode.EXTRACTIVE:
            yield extractive
        else:
            yield from self.generate(
                snapshot.index, retrieval, extractive, answer.evidence, started_all
            )

    def generate(
        self,
        index: CorpusIndex,
        retrieval: Retrieval,
        extractive: AskResult,
        reader_evidence: list[Evidence],
        started: float,
    ) -> Iterator[str | AskResult]:
        """A generated reply whose every sentence passed the checks, else the extractive
        answer with the reason. Where the evidence is too weak for an extractive answer, no
        model is asked: it would only find something to say (a share price for a car's)."""
        if not extractive.answerable:
            yield replace(extractive, mode_reason="the evidence is too weak to answer")
            return
        sources = [
            Source(
                n,
                scored.chunk,
                index.chunk_document(scored.chunk).title,
                index.chunk_text(scored.chunk),
            )
            for n, scored in enumerate(retrieval.chunks[: self.settings.llm_passages], 1)
        ]
        generated = None
        try:
            model = self.language_model()
            for item in grounded_reply(
                model,
                retrieval.question,
                sources,
                index,
                self.embedder.encode,
                self.settings.support_threshold,
            ):
                if isinstance(item, Generated):
                    generated = item
                else:
                    yield item
        except GenerationError as error:
            yield replace(extractive, mode_reason=f"generation failed: {error}")
            return
        info = {
            "model": self.settings.llm_model,
            "tokens": generated.tokens,
            "seconds": round(generated.seconds, 2),
            "first_token_seconds": round(generated.first_token_seconds, 2),
            "tokens_per_second": round(generated.tokens_per_second, 1),
            "dropped": generated.dropped,
        }
        timings = {**extractive.timings_ms, "generate": round(generated.seconds * 1000, 2)}
        timings["total"] = elapsed_ms(started)
        if not generated.text:
            reason = (
                "the model found no answer in the passages"
                if generated.refused
                else ("no generated sentence passed the checks")
            )
            yield replace(extractive, mode_reason=reason, generation=info, timings_ms=timings)
            return
        rows = [row for _, row in generated.quotes]
        # The reader found the answer first: the reply either states the reader's span or
        # cites the sentence that holds it too, so the answer can always be checked.
        info["agrees_with_reader"] = normalize(extractive.answer or "") in normalize(generated.text)
        if not info["agrees_with_reader"]:
            rows += [e.sentence for e in reader_evidence if e.sentence not in rows]
        evidence = [Evidence(row, int(index.sent_chunk[row]), 1.0) for row in rows]
        yield replace(
            extractive,
            answer=generated.text,
            answerable=True,
            message=None,
            citations=cite(index, evidence),
            mode=AnswerMode.GENERATIVE,
            generation=info,
            timings_ms=timings,
        )

    def language_model(self) -> LanguageModel:
        """The configured model's client, made on first use."""
        if self.llm is None:
            self.llm = LanguageModel(self.settings)
        return self.llm

    def ask_later(
        self,
        question: str,
        top_k: int | None = None,
        doc_ids: list[str] | None = None,
        history: list[Turn] | None = None,
    ) -> Future[AskResult]:
        """An extractive `ask`, queued for a query worker that embeds and answers it (an
        event loop awaits the future); `timings_ms.embed` includes the wait in the queue."""
        text = validate_question(question)
        queued = time.perf_counter()

        def answer(vector: np.ndarray) -> AskResult:
            waited = elapsed_ms(queued)
            result = self.ask(question, top_k, doc_ids, vector, history, AnswerMode.EXTRACTIVE)
            result.timings_ms.update(
                embed=waited, total=round(waited + result.timings_ms["total"], 2)
            )
            return result

        return self.queries.submit(text, answer)

    def ask_batch(self, questions: list[str], top_k: int | None = None) -> list[AskResult]:
        """Many questions at once, embedded side by side as `/ask` embeds them (benchmarks)."""
        texts = [validate_question(q) for q in questions]
        vectors = self.embedder.encode(texts, batch_size=1)
        return [self.ask(q, top_k, None, v) for q, v in zip(questions, vectors, strict=True)]

    # --- documents -----------------------------------------------------------------------

    def documents(self) -> list[Document]:
        return self.current().index.live_documents()

    def document(self, doc_id: str) -> Document:
        index = self.current().index
        if doc_id not in index.doc_rows:
            raise NotFoundError(f"unknown doc_id {doc_id!r}")
        return index.documents[index.doc_rows[doc_id]]


def passages(index: CorpusIndex, retrieval: Retrieval) -> list[Passage]:
    result = []
    for scored in retrieval.chunks:
        doc = index.chunk_document(scored.chunk)
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


def answer_span(index: CorpusIndex, answer: Answer) -> AnswerSpan | None:
    if not answer.answerable or answer.span is None:
        return None
    doc = index.chunk_document(answer.evidence[0].chunk)
    return AnswerSpan(doc.doc_id, *answer.span)


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


def say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress:
        progress(message)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
