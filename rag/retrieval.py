"""Hybrid retrieval: sentence-level dense scores and chunk-level BM25, fused per chunk.

A chunk's dense score is its best sentence's cosine with the question (a single sentence
usually carries the answer; whole-chunk vectors blur it), mixed with its document title's
cosine so that a sentence is read in the light of its story.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.index import CorpusIndex
from rag.lexical import query_terms


@dataclass(frozen=True)
class ScoredChunk:
    chunk: int
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Retrieval:
    question: str
    query_vector: np.ndarray
    terms: tuple[str, ...]
    chunks: list[ScoredChunk]


class HybridRetriever:
    def __init__(
        self,
        index: CorpusIndex,
        dense_weight: float = 0.7,
        title_weight: float = 0.2,
        candidates: int = 100,
    ) -> None:
        self.index = index
        self.dense_weight = dense_weight
        self.title_weight = title_weight
        self.candidates = candidates

    def run(
        self,
        question: str,
        query_vector: np.ndarray,
        top_k: int,
        doc_ids: list[str] | None = None,
        search_text: str | None = None,
    ) -> Retrieval:
        """Rank chunks for `search_text` (the question, or a rewrite of it in context)."""
        terms = query_terms(search_text or question)
        index = self.index
        bm25 = index.bm25_scores(terms)
        allowed = self.allowed_chunks(doc_ids)
        if allowed is not None:
            candidates = allowed
        else:
            candidates = np.union1d(
                self.dense_candidates(query_vector), top_n(bm25, self.candidates)
            )
            candidates = candidates[index.chunk_live[candidates]]
        if candidates.size == 0:
            return Retrieval(question, query_vector, terms, [])
        titles = index.title_vectors[index.chunk_doc[candidates]] @ query_vector
        sentences = best_sentence_scores(index, candidates, query_vector)
        dense = (1 - self.title_weight) * sentences + self.title_weight * titles
        lexical = bm25[candidates]
        top_lexical = float(lexical.max())
        lexical = lexical / top_lexical if top_lexical > 0 else lexical
        fused = self.dense_weight * dense + (1 - self.dense_weight) * lexical
        order = np.argsort(-fused, kind="stable")[:top_k]
        chunks = [
            ScoredChunk(int(candidates[i]), float(fused[i]), float(dense[i]), float(lexical[i]))
            for i in order
        ]
        return Retrieval(question, query_vector, terms, chunks)

    def dense_candidates(self, query_vector: np.ndarray) -> np.ndarray:
        rows = self.index.search_dense(query_vector, self.candidates * 2)
        return np.unique(self.index.sent_chunk[rows])

    def allowed_chunks(self, doc_ids: list[str] | None) -> np.ndarray | None:
        if doc_ids is None:
            return None
        rows = [self.index.doc_rows[d] for d in doc_ids if d in self.index.doc_rows]
        return np.flatnonzero(np.isin(self.index.chunk_doc, rows))


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    positive = np.flatnonzero(scores > 0)
    if positive.size <= n:
        return positive
    return positive[np.argpartition(-scores[positive], n)[:n]]


def chunk_sentences(index: CorpusIndex, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All sentence rows of the given chunks, and where each chunk's run starts."""
    lo, hi = index.chunk_sent_lo[chunks], index.chunk_sent_hi[chunks]
    lengths = hi - lo
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.repeat(lo - starts, lengths) + np.arange(lengths.sum())
    return rows, starts


def best_sentence_scores(
    index: CorpusIndex, chunks: np.ndarray, query_vector: np.ndarray
) -> np.ndarray:
    rows, starts = chunk_sentences(index, chunks)
    sims = np.asarray(index.vectors[rows] @ query_vector)
    return np.maximum.reduceat(sims, starts)
