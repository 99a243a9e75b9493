"""Extractive answers: the sentence that answers, a short span in it, and when to keep quiet."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.extract import AnswerType, answer_type, candidates, extract_span
from rag.index import CorpusIndex
from rag.lexical import query_terms
from rag.retrieval import Retrieval, chunk_sentences

# Sentence ranking: cosine + weight * share of the question's IDF mass the sentence holds.
COVERAGE_WEIGHT = 0.5
CHUNK_WEIGHT = 0.3
# A "when" question is answered by a sentence that holds a date, and so on.
SHAPE_WEIGHT = 0.2
# Confidence = logistic(bias + Σ weight·signal), fitted on SQuAD in/out-of-corpus questions by
# `python -m bench.squad` (see bench/results/squad.json, "abstention").
CONFIDENCE_WEIGHTS = {
    "bias": -13.438,
    "dense": 12.917,
    "coverage": 6.073,
    "chunk": 6.92,
    "shape_missing": -0.187,
    "span_support": 1.235,
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
    signals: dict[str, float]  # what the confidence was computed from


def idf_coverage(
    terms: tuple[str, ...], weights: dict[str, float], sentence_terms: list[tuple[str, ...]]
) -> np.ndarray:
    """Share of the question's IDF mass that each sentence contains."""
    total = sum(weights[t] for t in terms)
    if total <= 0:
        return np.zeros(len(sentence_terms), dtype=np.float32)
    values = [sum(weights[t] for t in terms if t in set(own)) / total for own in sentence_terms]
    return np.asarray(values, dtype=np.float32)


def confidence(signals: dict[str, float]) -> float:
    weights = CONFIDENCE_WEIGHTS
    z = weights["bias"] + sum(weights[name] * value for name, value in signals.items())
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
        weights = dict(
            zip(retrieval.terms, self.index.idf(retrieval.terms, prior_docs=1000), strict=True)
        )
        evidence = self.rank_sentences(retrieval, kind, weights)
        if not evidence:
            return Answer(None, False, 0.0, kind, [], None, {})
        best = evidence[0]
        sentence_text = self.index.sentence_text(best.sentence)
        span = extract_span(kind, set(retrieval.terms), sentence_text, weights)
        signals = {
            "dense": best.dense,
            "coverage": best.coverage,
            "chunk": next(c.score for c in retrieval.chunks if c.chunk == best.chunk),
            "shape_missing": float(kind is not AnswerType.OTHER and span is None),
            "span_support": float(span.support) if span else 0.0,
        }
        conf = confidence(signals)
        supporting = [e for e in evidence if e.score >= best.score - 0.05][: self.max_citations]
        if conf < self.threshold:
            return Answer(None, False, conf, kind, supporting, None, signals)
        if span is None:
            return Answer(sentence_text, True, conf, kind, supporting, None, signals)
        offset = int(self.index.sent_start[best.sentence])
        text = sentence_text[span.start : span.end]
        document_span = (offset + span.start, offset + span.end)
        return Answer(text, True, conf, kind, supporting, document_span, signals)

    def rank_sentences(
        self, retrieval: Retrieval, kind: AnswerType, weights: dict[str, float]
    ) -> list[Evidence]:
        top = retrieval.chunks[: self.chunks_considered]
        if not top:
            return []
        chunk_rows = np.array([c.chunk for c in top])
        rows, starts = chunk_sentences(self.index, chunk_rows)
        owner = np.repeat(np.arange(len(top)), np.diff(np.append(starts, len(rows))))
        dense = np.asarray(self.index.vectors[rows] @ retrieval.query_vector)
        texts = [self.index.sentence_text(int(r)) for r in rows]
        coverage = idf_coverage(retrieval.terms, weights, [query_terms(t) for t in texts])
        chunk_scores = np.array([top[o].score for o in owner])
        has_shape = np.array(
            [kind is not AnswerType.OTHER and bool(candidates(t, kind)) for t in texts]
        )
        scores = (
            dense
            + COVERAGE_WEIGHT * coverage
            + CHUNK_WEIGHT * chunk_scores
            + SHAPE_WEIGHT * has_shape
        )
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
