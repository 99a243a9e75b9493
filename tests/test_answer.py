"""Answers on the seed article: right, cited with verifiable offsets, or abstained."""

from __future__ import annotations

import pytest

from bench.answer_form import kind_of, measure
from bench.reader import Item
from rag.query.question_type import AnswerType, answer_type
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION


def texts(service: RagService) -> dict[str, str]:
    return {d.doc_id: d.text for d in service.documents()}


def test_example_question_answers_2023_with_a_verified_citation(service: RagService) -> None:
    result = service.ask(EXAMPLE_QUESTION)
    assert result.answerable and result.answer == "2023"
    first = result.citations[0]
    document = texts(service)[first.doc_id]
    assert document[first.start : first.end] == first.quote
    assert "first vehicle copies during 2023" in first.quote
    assert first.quote.startswith("According to the report")  # a sentence, not a chunk
    assert result.passages and all(document[p.start : p.end] == p.text for p in result.passages)


@pytest.mark.parametrize(
    "question,expected",
    [
        ("When did the brand's adventure begin?", "1984"),
        ("How much did Great Wall Hong Kong shares rise?", "15%"),
        ("Who is Xiaomi negotiating with?", "Great Wall"),
        ("What kind of vehicles will Great Wall produce for Xiaomi?", "electric"),
    ],
)
def test_answers_contain_the_fact(service: RagService, question: str, expected: str) -> None:
    result = service.ask(question)
    assert result.answerable, result
    assert expected in (result.answer or "")
    for citation in result.citations:
        assert texts(service)[citation.doc_id][citation.start : citation.end] == citation.quote


@pytest.mark.parametrize(
    "question",
    ["What is the price of the car?", "Who won the 2018 football world cup?"],
)
def test_unanswerable_questions_abstain(service: RagService, question: str) -> None:
    result = service.ask(question)
    assert not result.answerable
    assert result.answer is None and result.citations == []
    assert result.message and result.passages  # still shows what it looked at
    assert result.confidence < service.current().answerer.threshold


def test_question_types() -> None:
    assert answer_type("When is it due?") is AnswerType.DATE
    assert answer_type("xiaomi ev release date?") is AnswerType.DATE
    assert answer_type("How many cars?") is AnswerType.NUMBER
    assert answer_type("Who said it?") is AnswerType.PERSON
    assert answer_type("What is the plan?") is AnswerType.OTHER


def test_an_explanation_is_a_span_scored_against_the_sentence_that_holds_it(
    service: RagService,
) -> None:
    """What bench.answer_form measures on SQuAD: the span as the answer, the sentence around it."""
    question = "Why do alliances like this one usually arise?"
    assert kind_of(question) == "why" and kind_of("How many shares rose?") is None
    doc_id = service.documents()[0].doc_id
    item = Item("a40", question, ["to combine the strengths of two areas"], doc_id)
    forms = measure(service, [item], gold_paragraph=True)
    assert forms["span"]["f1"] >= 0.5  # right, as the service counts it (RIGHT_F1)
    assert forms["sentence"]["holds_gold_answer"] == 1.0
    assert forms["sentence"]["f1"] < forms["span"]["f1"]
    assert forms["span"]["mean_words"] < forms["sentence"]["mean_words"]
