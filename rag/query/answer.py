"""Extractive answers: the trained reader's span in the best passages, the sentence that holds
it as the citation, and a confidence that is the probability the answer is right.

The confidence is a logistic model over the reader's scores and the retrieval's, fitted on
questions from SQuAD train articles the reader never saw (`python -m train.calibrate`); the
service abstains below the threshold fitted with it (or `answer_threshold`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.config import ReaderSettings
from rag.errors import ReaderError
from rag.index.backend import CorpusView
from rag.index.lexical import tokenize
from rag.models.reader import Reader
from rag.query.conversation import standalone_wording
from rag.query.question_type import AnswerType, answer_type
from rag.query.retrieval import Retrieval, ScoredChunk
from rag.types import Evidence

# What the calibration sees of a candidate answer; reader.json's weights follow this order.
FEATURES = ("margin", "span_logprob", "fused", "dense", "lexical", "top_rank")
MONTH_DAY = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"( \d{1,2}(st|nd|rd|th)?)?$"
)
YEAR_AFTER = re.compile(r"^,? \d{4}\b")
UNIT_AFTER = re.compile(
    r"^(%| ?per ?cent\b| percent\b| (million|billion|trillion)\b| (km|kilometres|kilometers|"
    r"miles|metres|meters|feet|kg|tonnes|tons)\b)"
)
CURRENCY = "$£€¥"


@dataclass(frozen=True)
class Answer:
    text: str | None
    answerable: bool
    confidence: float
    answer_type: AnswerType
    evidence: list[Evidence]  # sentences that hold the answer, first one first
    span: tuple[int, int] | None  # document offsets of the short answer
    signals: dict[str, float]  # what the confidence was computed from


@dataclass(frozen=True)
class Candidate:
    """One passage's best span, placed in its document, with the signals about it."""

    chunk: int
    start: int  # document offsets
    end: int
    signals: dict[str, float]
    confidence: float  # calibrated probability that the span is right


@dataclass(frozen=True)
class Calibration:
    bias: float
    weights: dict[str, float]
    threshold: float  # where answering stops paying (fitted with the weights)

    @classmethod
    def from_meta(cls, meta: dict) -> Calibration:
        fitted = meta.get("calibration")
        if not fitted:
            raise ReaderError(
                "the reader model has no calibration: run `python -m train.calibrate`"
            )
        weights = {k: float(v) for k, v in fitted["weights"].items()}
        return cls(float(fitted["bias"]), weights, float(fitted.get("threshold", 0.5)))

    def __call__(self, signals: dict[str, float]) -> float:
        z = self.bias + sum(w * signals[name] for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def whole_answer(text: str, start: int, end: int) -> tuple[int, int]:
    """The span with what a reader of news needs and the reader's span may stop short of,
    when the text gives it right there: a date's year ("April 29" -> "April 29, 2015"), a
    figure's unit or currency ("15" -> "15%", "3.5" -> "$3.5 billion")."""
    answer = text[start:end]
    if MONTH_DAY.search(answer) and (year := YEAR_AFTER.match(text[end:])):
        end += year.end()
    if answer[-1:].isdigit() and (unit := UNIT_AFTER.match(text[end:])):
        end += unit.end()
    if answer[:1].isdigit() and start > 0 and text[start - 1] in CURRENCY:
        start -= 1
    return start, end


class ExtractiveAnswerer:
    def __init__(
        self,
        index: CorpusView,
        reader: Reader,
        config: ReaderSettings = ReaderSettings(),
    ) -> None:
        self.index = index
        self.reader = reader
        self.calibration = Calibration.from_meta(reader.meta)
        threshold = config.threshold
        self.threshold = self.calibration.threshold if threshold is None else threshold
        self.passages_read = config.passages
        self.window_chars = config.window_chars
        self.stop_confidence = config.stop_confidence

    def run(self, retrieval: Retrieval, threshold: float | None = None) -> Answer:
        """The surest candidate, or an abstention when it is less sure than `threshold` (the
        calibrated one, or the service's `answer_threshold`, by default)."""
        threshold = self.threshold if threshold is None else threshold
        kind = answer_type(retrieval.question)
        candidates = self.candidates(retrieval, stop_at=self.stop_confidence)
        if not candidates:
            return Answer(None, False, 0.0, kind, [], None, {})
        best = max(candidates, key=lambda c: c.confidence)
        evidence = self.holding_sentences(best)
        if best.confidence < threshold:
            return Answer(None, False, best.confidence, kind, evidence, None, best.signals)
        doc = self.index.chunk_document(best.chunk)
        span = whole_answer(doc.text, best.start, best.end)
        text = doc.text[span[0] : span[1]]
        return Answer(text, True, best.confidence, kind, evidence, span, best.signals)

    def candidates(self, retrieval: Retrieval, stop_at: float | None = None) -> list[Candidate]:
        """The reader's best span in each of the top passages, with its signals and confidence.

        The first passage is read alone; when its answer is already as sure as `stop_at`, the
        others are not read (a candidate's confidence depends on its own passage only, so
        reading the rest could only change the answer for one still surer)."""
        top = retrieval.chunks[: self.passages_read]
        result: list[Candidate] = []
        for batch in (top[:1], top[1:]):
            if not batch or (
                stop_at is not None and result and max(c.confidence for c in result) >= stop_at
            ):
                break
            result += self.read(retrieval, batch, top_score=top[0].score)
        return result

    def read(
        self, retrieval: Retrieval, passages: list[ScoredChunk], top_score: float
    ) -> list[Candidate]:
        windows = [self.reading_window(c.chunk, retrieval) for c in passages]
        texts = [
            self.index.chunk_document(c.chunk).text[start:end]
            for c, (start, end) in zip(passages, windows, strict=True)
        ]
        result = []
        for reading in self.reader.read(standalone_wording(retrieval.question), texts):
            scored = passages[reading.passage]
            offset = windows[reading.passage][0]
            signals = {
                "margin": reading.margin,
                "span_logprob": reading.span_logprob,
                "fused": scored.score,
                "dense": scored.dense,
                "lexical": scored.lexical,
                "top_rank": float(scored.score >= top_score),
            }
            result.append(
                Candidate(
                    scored.chunk,
                    offset + reading.start,
                    offset + reading.end,
                    signals,
                    self.calibration(signals),
                )
            )
        return result

    def reading_window(self, chunk: int, retrieval: Retrieval) -> tuple[int, int]:
        """Document offsets of what the reader reads of a passage: its sentence most like the
        question, grown by whole neighbouring sentences (the more like it first) up to
        `window_chars`. The reader's time grows with what it reads.

        A sentence is like the question by its cosine plus the share of the question's terms
        it holds: on SQuAD v1.1 dev the cosine alone puts the answer inside 500 characters
        92% of the time, with the terms 94% (`bench/results/reader-windows.json`)."""
        index = self.index
        if not self.window_chars:
            return index.chunk_span(chunk)
        rows, starts, ends = index.sentence_spans(chunk)
        similarity = index.sentence_similarity(rows, retrieval.query_vector)
        if retrieval.terms:
            asked = set(retrieval.terms)
            text = index.chunk_document(chunk).text
            held = tokenize([text[s:e] for s, e in zip(starts, ends, strict=True)])
            shared = np.array([len(asked.intersection(terms)) for terms in held]) / len(asked)
            similarity = similarity + shared
        lo = hi = int(np.argmax(similarity))
        while True:
            options = [i for i in (lo - 1, hi + 1) if 0 <= i < len(rows)]
            options = [
                i
                for i in options
                if max(ends[hi], ends[i]) - min(starts[lo], starts[i]) <= self.window_chars
            ]
            if not options:
                break
            pick = max(options, key=lambda i: similarity[i])
            lo, hi = min(lo, pick), max(hi, pick)
        return int(starts[lo]), int(ends[hi])

    def holding_sentences(self, candidate: Candidate) -> list[Evidence]:
        """The sentence(s) of the passage that the span lies in: what the citation quotes."""
        rows, starts, ends = self.index.sentence_spans(candidate.chunk)
        inside = rows[(starts < candidate.end) & (ends > candidate.start)]
        if inside.size == 0:  # a span in the gap between two sentences: cite the nearest
            inside = rows[[int(np.argmin(np.abs(starts - candidate.start)))]]
        return [Evidence(int(r), candidate.chunk, candidate.signals["fused"]) for r in inside]
