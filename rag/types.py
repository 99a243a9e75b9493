"""The types that cross stages and reach clients: one home, so no stage imports another's
module just for a dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class AnswerMode(StrEnum):
    EXTRACTIVE = "extractive"  # the reader's span, instant and exact
    GENERATIVE = "generative"  # an LLM's reply, checked against the reader and the passages


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
    published: str | None = None  # the article's date (YYYY-MM-DD), when it has one
    publisher: str | None = None
    also_reported_by: tuple[str, ...] = ()  # documents of the same wire story, collapsed here


@dataclass(frozen=True)
class Evidence:
    """A sentence (row) of the index that supports an answer, in the chunk it was read in."""

    sentence: int
    chunk: int
    score: float


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    quote: str
    score: float
    published: str | None = None  # the article's date (YYYY-MM-DD), when it has one
    publisher: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AnswerSpan:
    """Where the short answer sits: `document.text[start:end] == answer`."""

    doc_id: str
    start: int
    end: int


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
    mode: AnswerMode = AnswerMode.EXTRACTIVE  # which mode answered
    mode_reason: str | None = None  # why generative was asked for but extractive answered
    generation: dict[str, Any] | None = None  # model, tokens, tokens/s, dropped sentences
    answer_span: AnswerSpan | None = None  # the extractive answer's offsets
    read_as: str | None = None  # the question as read, when a follow-up's pronoun was resolved

    def to_dict(self) -> dict:
        return asdict(self)
