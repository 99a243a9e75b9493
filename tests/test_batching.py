"""Concurrent questions share one model call and get the answers they would get alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.embeddings import QueryBatcher
from rag.service import QueryError, RagService
from tests.conftest import EXAMPLE_QUESTION

QUESTIONS = [
    EXAMPLE_QUESTION,
    "When did the brand's adventure begin?",
    "By how much did the Shanghai shares rise?",
    "What is the price of the car?",
]


class CountingEmbedder:
    """The real model, with a record of how many texts each call carried."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.calls: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.embedder.encode(texts)


def test_queued_questions_are_batched_and_answered_as_alone(service: RagService, embedder):
    counting = CountingEmbedder(embedder)
    batcher = QueryBatcher(counting)
    alone = [service.ask(q) for q in QUESTIONS * 4]
    futures = [
        batcher.submit(q, lambda v, q=q: service.ask(q, query_vector=v)) for q in QUESTIONS * 4
    ]
    together = [f.result(timeout=60) for f in futures]
    assert [r.answer for r in together] == [r.answer for r in alone]
    assert [r.citations for r in together] == [r.citations for r in alone]
    assert sum(counting.calls) == 16 and len(counting.calls) < 16  # some calls carried several


def test_ask_later_reports_bad_input_and_keeps_working(service: RagService) -> None:
    with pytest.raises(QueryError, match="empty"):
        service.ask_later("  ")
    failing = service.ask_later(EXAMPLE_QUESTION, top_k=500)
    with pytest.raises(QueryError, match="top_k"):
        failing.result(timeout=60)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: service.ask_later(q).result(timeout=60), QUESTIONS))
    assert "2023" in answers[0].answer and answers[0].timings_ms["embed"] > 0
    assert answers[3].answerable is False
