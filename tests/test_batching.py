"""Concurrent questions run side by side and get exactly the answers they would get alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.errors import NotFoundError, QueryError
from rag.models.embeddings import QueryWorkers
from rag.query.pipeline import Query
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION

QUESTIONS = [
    EXAMPLE_QUESTION,
    "When did the brand's adventure begin?",
    "By how much did the Shanghai shares rise?",
    "What is the price of the car?",
]


def test_concurrent_questions_get_the_vectors_and_answers_they_get_alone(
    service: RagService, embedder
) -> None:
    workers = QueryWorkers(embedder, workers=2)
    alone = [service.ask(q) for q in QUESTIONS]
    futures = [
        workers.submit(q, lambda v, q=q: (v, service.ask(q, query_vector=v))) for q in QUESTIONS * 4
    ]
    together = [f.result(timeout=60) for f in futures]
    for (vector, result), question, expected in zip(
        together, QUESTIONS * 4, alone * 4, strict=True
    ):
        np.testing.assert_array_equal(vector, embedder.encode([question])[0])
        assert result.answer == expected.answer and result.citations == expected.citations


def test_ask_later_reports_bad_input_and_keeps_working(service: RagService) -> None:
    with pytest.raises(QueryError, match="empty"):
        Query("  ")
    with pytest.raises(QueryError, match="top_k"):
        Query(EXAMPLE_QUESTION, top_k=500)
    failing = service.ask_later(Query(EXAMPLE_QUESTION, doc_ids=("no-such-article",)))
    with pytest.raises(NotFoundError, match="no-such-article"):
        failing.result(timeout=60)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda q: service.ask_later(Query(q)).result(timeout=60), QUESTIONS)
        )
    assert "2023" in answers[0].answer and answers[0].timings_ms["embed"] > 0
    assert answers[3].answerable is False
