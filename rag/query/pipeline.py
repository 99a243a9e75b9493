"""The query pipeline over one index version: question → retrieval → reader → citations.

`Query` is validated once, where it is made; everything after it trusts it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from rag.errors import NotFoundError, QueryError
from rag.index.backend import CorpusView
from rag.ingest.news import PUBLISHED, PUBLISHER, publisher_key
from rag.models.embeddings import Encoder, QueryWorkers
from rag.models.reader import Reader
from rag.query.answer import Answer, ExtractiveAnswerer
from rag.query.citations import cite
from rag.query.conversation import Turn, resolved, with_history
from rag.query.generative import GenerativeAnswerer
from rag.query.retrieval import HybridRetriever, Retrieval
from rag.types import AnswerMode, AnswerSpan, AskResult, Passage

ABSTAIN_MESSAGE = (
    "The indexed articles do not answer this question with enough support; "
    "the closest passages are listed."
)
EMPTY_MESSAGE = (
    "The index holds no documents yet: add articles (POST /documents or `rag ingest`) "
    "and ask again."
)


@dataclass(frozen=True)
class Query:
    """A question as the pipeline takes it; None fields take the service's defaults."""

    question: str
    top_k: int | None = None
    doc_ids: tuple[str, ...] | None = None
    history: tuple[Turn, ...] = field(default_factory=tuple)
    mode: AnswerMode | None = None
    min_confidence: float | None = None  # abstain below it (default: the calibrated threshold)
    publishers: tuple[str, ...] | None = None  # only articles of these publishers
    published_after: date | None = None  # only articles dated on or after
    published_before: date | None = None  # only articles dated on or before

    def __post_init__(self) -> None:
        question = (self.question or "").strip()
        if not question:
            raise QueryError("question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise QueryError(
                f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
            )
        if self.top_k is not None and not 1 <= self.top_k <= MAX_TOP_K:
            raise QueryError(f"top_k must be between 1 and {MAX_TOP_K}, got {self.top_k}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise QueryError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.mode is not None and self.mode not in set(AnswerMode):
            choices = ", ".join(AnswerMode)
            raise QueryError(f"mode must be one of {choices}, got {self.mode!r}")
        object.__setattr__(self, "question", question)
        object.__setattr__(self, "mode", None if self.mode is None else AnswerMode(self.mode))
        object.__setattr__(self, "history", tuple(self.history or ()))
        if self.doc_ids is not None:
            object.__setattr__(self, "doc_ids", tuple(self.doc_ids))
        if self.publishers is not None:
            object.__setattr__(self, "publishers", tuple(self.publishers))

    @property
    def filtered(self) -> bool:
        """Whether the question is limited to articles by publisher or date."""
        return (self.publishers, self.published_after, self.published_before) != (None,) * 3


@dataclass(frozen=True)
class Snapshot:
    """What one query runs against; replaced whole, so a query never mixes two versions."""

    index: CorpusView
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer
    dated: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def within(self, query: Query) -> list[str]:
        """The live documents a query's publisher and date filters let through (their dates
        and publishers read once per version)."""
        if not self.dated:
            self.dated.update(
                (d.doc_id, (d.metadata.get(PUBLISHED), d.metadata.get(PUBLISHER)))
                for d in self.index.live_documents()
            )
        wanted = {publisher_key(p) for p in query.publishers or ()}
        after = query.published_after and query.published_after.isoformat()
        before = query.published_before and query.published_before.isoformat()
        return [
            doc_id
            for doc_id, (published, publisher) in self.dated.items()
            if (not wanted or (publisher is not None and publisher_key(publisher) in wanted))
            and (after is None or (published is not None and published >= after))
            and (before is None or (published is not None and published <= before))
        ]


class Pipeline:
    def __init__(
        self, settings: Settings, reader: Reader, embedder: Encoder, queries: QueryWorkers
    ) -> None:
        """Questions are embedded by the query workers, unless a caller embedded them."""
        self.settings = settings
        self.reader = reader
        self.embedder, self.queries = embedder, queries
        self.generative = GenerativeAnswerer(settings.llm, embedder.encode)

    def snapshot(self, index: CorpusView) -> Snapshot:
        settings = self.settings
        return Snapshot(
            index,
            HybridRetriever(index, settings.retrieval),
            ExtractiveAnswerer(index, self.reader, settings.reader),
        )

    def retrieve(
        self,
        snapshot: Snapshot,
        query: Query,
        depth: int,
        query_vector: np.ndarray | None = None,
        search: str | None = None,
    ) -> tuple[Retrieval, dict[str, float]]:
        """Passages for the question, searched by `search` (the question itself by default)."""
        text = search or query.question
        for doc_id in query.doc_ids or ():
            if snapshot.index.document(doc_id) is None:
                raise NotFoundError(f"unknown doc_id {doc_id!r} in filters")
        started = time.perf_counter()
        if query_vector is None:
            query_vector = self.queries.encode(text)
        timings = {"embed": elapsed_ms(started)}
        started = time.perf_counter()
        doc_ids = None if query.doc_ids is None else list(query.doc_ids)
        if query.filtered:  # searched within the filter, not trimmed from a top-k after
            within = snapshot.within(query)
            allowed = set(within)
            doc_ids = within if doc_ids is None else [d for d in doc_ids if d in allowed]
        retrieval = snapshot.retriever.run(query.question, query_vector, depth, doc_ids, text)
        timings["retrieve"] = elapsed_ms(started)
        return retrieval, timings

    def search(
        self, snapshot: Snapshot, query: Query, query_vector: np.ndarray | None = None
    ) -> list[Passage]:
        top_k = query.top_k or self.settings.top_k
        retrieval, _ = self.retrieve(snapshot, query, top_k, query_vector)
        return passages(snapshot.index, retrieval)

    def ask(
        self, snapshot: Snapshot, query: Query, query_vector: np.ndarray | None = None
    ) -> Iterator[str | AskResult]:
        """The answer; in generative mode a reply's checked sentences come first, as they
        are generated. The last item is the AskResult."""
        started_all = time.perf_counter()
        top_k = query.top_k or self.settings.top_k
        depth = max(top_k, self.settings.reader_passages)
        history = list(query.history)
        # (what the reader reads, what is searched, its vector): the question alone first,
        # then with a pronoun resolved from the conversation, or else searched together with
        # the previous question
        readings = [(query, None, query_vector)]
        rewrites = [q for q in resolved(query.question, history) if len(q) <= MAX_QUESTION_CHARS]
        if rewrites:
            readings += [(replace(query, question=q), q, None) for q in rewrites]
        elif follow_up := with_history(query.question, history):
            readings.append((query, follow_up, None))
        best = None
        for asked, search, vector in readings:
            if search is not None:  # embedded here, on this thread: it may be a query worker
                vector = self.embedder.encode([search])[0]
            retrieval, timings = self.retrieve(snapshot, asked, depth, vector, search)
            started = time.perf_counter()
            answer: Answer = snapshot.answerer.run(retrieval, query.min_confidence)
            timings["answer"] = elapsed_ms(started)
            # keep the reading the reader is surest of (the question alone on a tie)
            if best is None or answer.confidence > best[1].confidence:
                best = (retrieval, answer, timings)
        retrieval, answer, timings = best
        index = snapshot.index
        citations = cite(index, answer.evidence) if answer.answerable else []
        timings["total"] = elapsed_ms(started_all)
        extractive = AskResult(
            question=query.question,
            answer=answer.text,
            answerable=answer.answerable,
            confidence=round(answer.confidence, 4),
            answer_type=answer.answer_type.value,
            message=None if answer.answerable else abstain_message(index),
            citations=citations,
            passages=passages(index, retrieval)[:top_k],
            timings_ms=timings,
            signals={k: round(float(v), 4) for k, v in answer.signals.items()},
            answer_span=answer_span(index, answer),
            read_as=None if retrieval.question == query.question else retrieval.question,
        )
        if (query.mode or self.settings.answer_mode) == AnswerMode.EXTRACTIVE:
            yield extractive
        else:
            yield from self.generative.run(
                index, retrieval, extractive, answer.evidence, started_all
            )


def passages(index: CorpusView, retrieval: Retrieval) -> list[Passage]:
    result = []
    for scored in retrieval.chunks:
        doc = index.chunk_document(scored.chunk)
        start, end = index.chunk_span(scored.chunk)
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
                published=doc.metadata.get(PUBLISHED),
                publisher=doc.metadata.get(PUBLISHER),
                also_reported_by=scored.also,
            )
        )
    return result


def answer_span(index: CorpusView, answer: Answer) -> AnswerSpan | None:
    if not answer.answerable or answer.span is None:
        return None
    doc = index.chunk_document(answer.evidence[0].chunk)
    return AnswerSpan(doc.doc_id, *answer.span)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def abstain_message(index: CorpusView) -> str:
    return EMPTY_MESSAGE if index.manifest.documents == 0 else ABSTAIN_MESSAGE
