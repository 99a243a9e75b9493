"""The checks on generated replies, on hand-written replies against the real seed index."""

from __future__ import annotations

import pytest

from rag.models.llm import Source
from rag.query.grounding import check, complete_claims, is_refusal, renumber, split_claims
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION


@pytest.fixture(scope="module")
def sources(service: RagService) -> dict[int, Source]:
    index = service.current().index
    retrieval = service.current().retriever.run(
        EXAMPLE_QUESTION, service.embedder.encode([EXAMPLE_QUESTION])[0], 3
    )
    return {
        n: Source(n, c.chunk, "Xiaomi", index.chunk_text(c.chunk))
        for n, c in enumerate(retrieval.chunks, 1)
    }


def verdict(service: RagService, sources, sentence: str):
    claim_vector = service.embedder.encode([sentence])[0]
    return check(sentence, claim_vector, sources, service.current().index, 0.5)


def year_source(sources) -> int:
    return next(n for n, s in sources.items() if "2023" in s.text)


def test_a_supported_sentence_stands_and_quotes_its_sentence(service, sources) -> None:
    n = year_source(sources)
    result = verdict(service, sources, f"The first vehicle is expected in 2023 [{n}].")
    assert result.reason is None and result.cited == [n]
    quote = service.current().index.sentence_text(result.quotes[n])
    assert "2023" in quote


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("The first vehicle is expected in 2023.", "cites no passage"),
        ("The first vehicle is expected in 2023 [9].", "a passage it was not given"),
        ("The car will cost 30,000 dollars [{n}].", "'30,000'"),
        ("Elon Musk will drive the first vehicle [{n}].", "'Elon'"),
        ("they are rich in potassium and fibre [{n}].", "too far in meaning"),
    ],
)
def test_unsupported_sentences_are_dropped_with_the_reason(service, sources, sentence, reason):
    result = verdict(service, sources, sentence.format(n=year_source(sources)))
    assert result.reason and reason in result.reason


def test_citations_are_renumbered_by_first_use(service, sources) -> None:
    n = year_source(sources)
    other = next(m for m in sources if m != n)
    first = verdict(service, sources, f"Xiaomi is working with Great Wall [{other}].")
    second = verdict(service, sources, f"The first vehicle is expected in 2023 [{n}][{other}].")
    assert first.reason is None and second.reason is None
    text, quotes = renumber([first, second])
    assert (
        text
        == "Xiaomi is working with Great Wall [1]. The first vehicle is expected in 2023 [2] [1]."
    )
    assert [old for old, _ in quotes] == [other, n]


def test_sentences_split_with_their_trailing_markers() -> None:
    assert split_claims("It is 2023. [1] Then 2024 [2].") == ["It is 2023. [1]", "Then 2024 [2]."]
    done, rest = complete_claims("It is 2023 [1]. Then")
    assert done == ["It is 2023 [1]."] and rest == "Then"
    assert complete_claims("It is 2023. [1]") == ([], "It is 2023. [1]")
    assert is_refusal("I don't know.") and not is_refusal("Xiaomi will know in 2023 [1].")
