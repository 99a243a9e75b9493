"""Hybrid retrieval: sentence-level dense scores and chunk-level BM25, fused per chunk.

A chunk's dense score is its best sentence's cosine with the question (a single sentence
usually carries the answer; whole-chunk vectors blur it), mixed with its document title's
cosine so that a sentence is read in the light of its story.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.config import RetrievalSettings
from rag.index.backend import CorpusView
from rag.index.lexical import query_terms
from rag.ingest.news import PUBLISHED
from rag.ingest.stories import STORY


@dataclass(frozen=True)
class ScoredChunk:
    chunk: int
    score: float
    dense: float
    lexical: float
    also: tuple[str, ...] = ()  # other documents of the same wire story, collapsed into it


@dataclass(frozen=True)
class Retrieval:
    question: str
    query_vector: np.ndarray
    terms: tuple[str, ...]
    chunks: list[ScoredChunk]


class HybridRetriever:
    def __init__(self, index: CorpusView, config: RetrievalSettings = RetrievalSettings()) -> None:
        self.index = index
        self.dense_weight = config.dense_weight
        self.title_weight = config.title_weight
        self.candidates = config.candidates

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
        if index.manifest.documents == 0:  # an empty corpus (a new deployment) finds nothing
            return Retrieval(question, query_vector, terms, [])
        if doc_ids is None:
            nearby = index.dense_chunks(query_vector, self.candidates * 2)
            candidates, lexical = index.lexical(terms, self.candidates, nearby)
        else:
            candidates, lexical = index.lexical(terms, 0, index.chunks_of(doc_ids))
        if candidates.size == 0:
            return Retrieval(question, query_vector, terms, [])
        titles = index.title_similarity(candidates, query_vector)
        sentences = index.best_sentence_similarity(candidates, query_vector)
        dense = (1 - self.title_weight) * sentences + self.title_weight * titles
        top_lexical = float(lexical.max())
        lexical = lexical / top_lexical if top_lexical > 0 else lexical
        fused = self.dense_weight * dense + (1 - self.dense_weight) * lexical
        # a period the question names ranks the passages of that period first; the scores
        # the confidence is computed from stay as they are
        ranked = fused + period_bonus(index, candidates, search_text or question)
        order = np.argsort(-ranked, kind="stable")
        kept, also = one_per_story(index, candidates[order], top_k)
        chunks = [
            ScoredChunk(
                int(candidates[order[k]]),
                float(fused[order[k]]),
                float(dense[order[k]]),
                float(lexical[order[k]]),
                tuple(also[k]),
            )
            for k in kept
        ]
        return Retrieval(question, query_vector, terms, chunks)


YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
LATEST = re.compile(r"\b(latest|most recent|newest|current|currently|now)\b", re.IGNORECASE)
PERIOD_BONUS = 0.1  # about what a passage gains by holding the question's best term


def period_bonus(index: CorpusView, chunks: np.ndarray, question: str) -> np.ndarray:
    """For a question naming a year: the passages that name it, or whose article is dated
    then; for one asking for the latest: newer articles first. Zero otherwise."""
    years = set(YEAR.findall(question))
    latest = bool(LATEST.search(question))
    bonus = np.zeros(len(chunks), dtype=np.float32)
    if not years and not latest:
        return bonus
    published = [index.chunk_document(int(c)).metadata.get(PUBLISHED) for c in chunks]
    if years:
        for i, chunk in enumerate(chunks.tolist()):
            named = years & set(YEAR.findall(index.chunk_text(chunk)))
            dated = published[i] is not None and published[i][:4] in years
            bonus[i] = PERIOD_BONUS if named or dated else 0.0
    elif dates := sorted({p for p in published if p is not None}):
        rank = {day: (n + 1) / len(dates) for n, day in enumerate(dates)}  # newest: 1
        bonus += np.array([PERIOD_BONUS * rank.get(p, 0.0) for p in published], np.float32)
    return bonus


SCAN = 4  # candidates looked at per passage returned: copies rank next to their story


def one_per_story(
    index: CorpusView, ranked: np.ndarray, top_k: int
) -> tuple[list[int], dict[int, list[str]]]:
    """Positions of the `top_k` best chunks (in `ranked`, best first) that are not copies of a
    better-ranked document's wire story, and for each the copies' document ids."""
    kept: list[int] = []
    also: dict[int, list[str]] = {}
    first_of: dict[str, tuple[str, int]] = {}  # story -> (document that tells it, position)
    for position, chunk in enumerate(ranked[: top_k * SCAN].tolist()):
        doc = index.chunk_document(chunk)
        story = doc.metadata.get(STORY, doc.doc_id)
        teller, where = first_of.setdefault(story, (doc.doc_id, position))
        if teller != doc.doc_id:  # a copy: credited to the story's first passage
            if where in also and doc.doc_id not in also[where]:
                also[where].append(doc.doc_id)
            continue
        if len(kept) < top_k:
            kept.append(position)
            also[position] = []
    return kept, also
