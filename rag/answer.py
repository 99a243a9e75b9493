"""Extractive answers: the sentence that answers, a short span in it, and when to keep quiet."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.extract import AnswerType, answer_type, extract_span
from rag.index import CorpusIndex
from rag.lexical import query_terms
from rag.retrieval import Retrieval, chunk_sentences

# Sentence ranking: cosine + weight * share of the question's IDF mass the sentence holds.
COVERAGE_WEIGHT = 0.5
CHUNK_WEIGHT = 0.3
# Confidence = logistic(bias + Σ weight·feature), fitted by `python -m bench.calibrate`.
CONFIDENCE_WEIGHTS = {
    "bias": -6.0,
    "dense": 7.0,
    "coverage": 5.0,
    "chunk": 2.0,
    "shape_missing": -1.5,
}


@dataclass(frozen=True)
class Evidence:
    sentence: int
    chunk: int
    score: float
    dense: float
    coverage: float


@dataclass(frozen=True)
class Answer:
    text: str | None
    answerable: bool
    confidence: float
    answer_type: AnswerType
    evidence: list[Evidence]  # supporting sentences, best first
    span: tuple[int, int] | None  # document offsets of the short answer


def idf_coverage(
    terms: tuple[str, ...], weights: np.ndarray, sentence_terms: list[tuple[str, ...]]
) -> np.ndarray:
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(len(sentence_terms), dtype=np.float32)
    values = []
    for own in sentence_terms:
        present = set(own)
        values.append(sum(w for t, w in zip(terms, weights, strict=True) if t in present) / total)
    return np.asarray(values, dtype=np.float32)


def confidence(dense: float, coverage: float, chunk: float, shape_missing: bool) -> float:
    w = CONFIDENCE_WEIGHTS
    z = (
        w["bias"]
        + w["dense"] * dense
        + w["coverage"] * coverage
        + w["chunk"] * chunk
        + w["shape_missing"] * shape_missing
    )
    return 1.0 / (1.0 + math.exp(-z))


class ExtractiveAnswerer:
    def __init__(
        self,
        index: CorpusIndex,
        threshold: float = 0.5,
        chunks_considered: int = 3,
        max_citations: int = 3,
    ) -> None:
        self.index = index
        self.threshold = threshold
        self.chunks_considered = chunks_considered
        self.max_citations = max_citations

    def run(self, retrieval: Retrieval) -> Answer:
        kind = answer_type(retrieval.question)
        evidence = self.rank_sentences(retrieval)
        if not evidence:
            return Answer(None, False, 0.0, kind, [], None)
        best = evidence[0]
        sentence_text = self.index.sentence_text(best.sentence)
        span = extract_span(retrieval.question, sentence_text)
        chunk_score = next(c.score for c in retrieval.chunks if c.chunk == best.chunk)
        shape_missing = kind is not AnswerType.OTHER and span is None
        conf = confidence(best.dense, best.coverage, chunk_score, shape_missing)
        supporting = [e for e in evidence if e.score >= best.score - 0.05][: self.max_citations]
        if conf < self.threshold:
            return Answer(None, False, conf, kind, supporting, None)
        if span is None:
            return Answer(sentence_text, True, conf, kind, supporting, None)
        offset = int(self.index.sent_start[best.sentence])
        text = sentence_text[span.start : span.end]
        return Answer(text, True, conf, kind, supporting, (offset + span.start, offset + span.end))

    def rank_sentences(self, retrieval: Retrieval) -> list[Evidence]:
        top = retrieval.chunks[: self.chunks_considered]
        if not top:
            return []
        chunk_rows = np.array([c.chunk for c in top])
        rows, starts = chunk_sentences(self.index, chunk_rows)
        owner = np.repeat(np.arange(len(top)), np.diff(np.append(starts, len(rows))))
        dense = np.asarray(self.index.vectors[rows] @ retrieval.query_vector)
        terms = retrieval.terms
        sentence_terms = [query_terms(self.index.sentence_text(int(r))) for r in rows]
        coverage = idf_coverage(terms, self.index.bm25.idf(terms), sentence_terms)
        chunk_scores = np.array([top[o].score for o in owner])
        scores = dense + COVERAGE_WEIGHT * coverage + CHUNK_WEIGHT * chunk_scores
        order = np.argsort(-scores, kind="stable")
        seen: set[int] = set()
        ranked = []
        for i in order:
            if int(rows[i]) in seen:
                continue
            seen.add(int(rows[i]))
            ranked.append(
                Evidence(
                    int(rows[i]),
                    top[owner[i]].chunk,
                    float(scores[i]),
                    float(dense[i]),
                    float(coverage[i]),
                )
            )
        return ranked
