"""News-native: every document's publication date and publisher, normalised, carried by
passages and citations, and filters on both applied inside retrieval, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.ingest.documents import make_document
from rag.query.pipeline import Query
from rag.service import RagService
from tests.conftest import fresh_database

ARTICLES = [
    make_document(
        "tesla-2020",
        "Tesla results. Tesla's revenue for 2020 was 31.5 billion dollars, the company said.",
        "Tesla reports its 2020 results",
        {"published": "27 January 2021", "url": "https://www.reuters.com/tesla-2020"},
    ),
    make_document(
        "tesla-2021",
        "Tesla results. Tesla's revenue for 2021 was 53.8 billion dollars, the company said.",
        "Tesla reports its 2021 results",
        {"published": "2022-01-26T21:05:00Z", "publisher": "Bloomberg"},
    ),
    make_document("undated", "A note about batteries with no date and no outlet.", "Batteries"),
]


@pytest.fixture(params=["embedded", "postgres"])
def news(request, tmp_path: Path, embedder) -> Iterator[RagService]:
    if request.param == "embedded":
        settings = Settings(index_dir=tmp_path / "index", sources=[])
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"), "news")
        settings = Settings(database_url=url, sources=[])
    service = RagService.open(settings, embedder)
    service.ingest(ARTICLES)
    yield service
    service.backend.close()


def test_dates_and_publishers_are_normalised_and_absent_ones_stay_absent() -> None:
    dated = {d.doc_id: (d.metadata.get("published"), d.metadata.get("publisher")) for d in ARTICLES}
    assert dated == {
        "tesla-2020": ("2021-01-27", "reuters.com"),
        "tesla-2021": ("2022-01-26", "Bloomberg"),
        "undated": (None, None),
    }


def test_filters_choose_the_answer_and_never_let_a_passage_outside(news: RagService) -> None:
    question = "What was Tesla's revenue?"
    recent = news.ask(Query(question, published_after=date(2022, 1, 1)))
    assert recent.answerable and "53.8" in recent.answer
    (citation,) = recent.citations[:1]
    assert (citation.published, citation.publisher) == ("2022-01-26", "Bloomberg")
    by_reuters = news.ask(Query(question, publishers=("Reuters",)))  # any spelling of it
    assert by_reuters.answerable and "31.5" in by_reuters.answer
    assert {p.doc_id for p in by_reuters.passages} == {"tesla-2020"}
    window = Query(
        "Tesla revenue", published_after=date(2021, 1, 1), published_before=date(2021, 12, 31)
    )
    assert {p.doc_id for p in news.search(window)} == {"tesla-2020"}
    none = news.ask(Query(question, published_before=date(2000, 1, 1)))  # no article then
    assert not none.answerable and none.passages == []


def test_a_date_that_cannot_be_read_is_a_422_naming_it(tmp_path: Path, embedder) -> None:
    settings = Settings(index_dir=tmp_path / "index", sources=[], api_key="k")
    with TestClient(create_app(RagService.open(settings, embedder))) as client:
        sent = {"id": "x", "text": "Some news.", "metadata": {"published": "soon"}}
        refused = client.post("/documents", json=sent, headers={"Authorization": "Bearer k"})
        assert refused.status_code == 422 and "'published' is not a date" in refused.json()["error"]
        assert client.get("/health").json()["documents"] == 0  # nothing half-written
        filtered = client.post(
            "/ask",
            json={"question": "What happened?", "filters": {"published_after": "2021-13-01"}},
        )
        assert filtered.status_code == 422
        assert filtered.json()["detail"][0]["field"] == "filters.published_after"


def test_the_chat_endpoint_takes_the_same_filters(news: RagService) -> None:
    with TestClient(create_app(news)) as client:
        ask = [{"role": "user", "content": "What was Tesla's revenue?"}]
        reply = client.post(
            "/v1/chat/completions",
            json={"model": "rag", "messages": ask, "filters": {"publishers": ["bloomberg"]}},
        ).json()
        assert "53.8" in reply["choices"][0]["message"]["content"]
        assert [c["publisher"] for c in reply["citations"]] == ["Bloomberg"]


YEARS = [
    make_document(
        f"chips-{year}",
        f"Chip sales. The company sold {units} million chips in {year}, its annual report said.",
        f"Chip maker reports {year} sales",
        {"published": f"{year + 1}-02-01", "publisher": "Reuters"},
    )
    for year, units in ((2019, 40), (2020, 55), (2021, 70))
]


def test_a_year_in_the_question_reads_that_years_article_and_latest_the_newest(
    tmp_path: Path, embedder
) -> None:
    service = RagService.open(Settings(index_dir=tmp_path / "index", sources=[]), embedder)
    service.ingest(YEARS)
    for year, units in ((2019, "40"), (2020, "55"), (2021, "70")):
        result = service.ask(f"How many chips did the company sell in {year}?")
        assert result.passages[0].doc_id == f"chips-{year}"
        assert result.answerable and units in result.answer, (year, result.answer)
    latest = service.ask("How many chips did the company sell in its latest year?")
    assert latest.passages[0].doc_id == "chips-2021"


STORY_TEXT = (
    "Rotterdam's port handled 3.3 million containers in the first quarter, down 3.2 percent, "
    "as trade with Asia slowed. The port authority said volumes should recover in the second "
    "half of the year. Liquid bulk, mainly oil, rose 1.5 percent. Chief executive Boudewijn "
    "Siemons said new terminals would open next year as planned."
)
WIRE = [
    make_document(
        "rotterdam-reuters", STORY_TEXT, "Rotterdam port volumes fall", {"publisher": "Reuters"}
    ),
    make_document(  # the same story: headline changed, a sentence added, a byline
        "rotterdam-times",
        "By staff reporters. " + STORY_TEXT + " Shares of shipping firms were little changed.",
        "Asia slowdown hits Rotterdam",
        {"publisher": "The Times"},
    ),
    make_document(  # the same story, a sentence cut and boilerplate added
        "rotterdam-daily",
        STORY_TEXT.rsplit(" Chief executive", 1)[0] + " Subscribe for more port news.",
        "Rotterdam containers down",
        {"publisher": "Daily News"},
    ),
    make_document(  # another story about the same port
        "rotterdam-strike",
        "Dock workers in Rotterdam went on strike on Monday over pay, halting container "
        "traffic at two terminals. The union said talks with employers had failed.",
        "Rotterdam dock workers strike",
        {"publisher": "Reuters"},
    ),
]


def test_a_wire_story_from_several_outlets_is_one_passage(tmp_path: Path, embedder) -> None:
    service = RagService.open(Settings(index_dir=tmp_path / "index", sources=[]), embedder)
    service.ingest(WIRE[:2])
    service.ingest(WIRE[2:])  # copies are found across writes too
    stories = {d.doc_id: d.metadata.get("story", d.doc_id) for d in service.documents()}
    assert stories == {
        "rotterdam-reuters": "rotterdam-reuters",
        "rotterdam-times": "rotterdam-reuters",
        "rotterdam-daily": "rotterdam-reuters",
        "rotterdam-strike": "rotterdam-strike",
    }
    passages = service.search(Query("How many containers did Rotterdam handle?", top_k=5))
    tellers = [p.doc_id for p in passages]
    told = {"rotterdam-reuters", "rotterdam-times", "rotterdam-daily"}
    assert len(told & set(tellers)) == 1  # the copies never crowd the top-k
    story = next(p for p in passages if p.doc_id in told)
    assert {story.doc_id, *story.also_reported_by} == told
    answer = service.ask("How many containers did Rotterdam handle in the first quarter?")
    assert answer.answerable and "3.3 million" in answer.answer


def test_filters_agree_between_backends_and_hold_on_random_corpora(
    tmp_path: Path, embedder, postgres_url: str
) -> None:
    """Random dated corpora and random filters: both backends return the same documents, every
    one inside the filter, and every article inside it (top_k covers them all)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    embedded = RagService.open(Settings(index_dir=tmp_path / "index", sources=[]), embedder)
    database = Settings(database_url=fresh_database(postgres_url, "filters"), sources=[])
    services = [embedded, RagService.open(database, embedder)]
    outlets = ["Reuters", "AP", "Bloomberg"]
    article = st.tuples(
        st.sampled_from([*outlets, None]),
        st.none() | st.dates(date(2019, 1, 1), date(2023, 12, 31)),
    )
    day = st.none() | st.dates(date(2018, 1, 1), date(2024, 12, 31))

    @given(
        corpus=st.lists(article, min_size=1, max_size=6),
        publishers=st.none() | st.lists(st.sampled_from(outlets), min_size=1, max_size=2),
        after=day,
        before=day,
    )
    @settings(
        max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(corpus, publishers, after, before) -> None:
        documents = [
            make_document(
                f"n{i}",
                f"Harbour report {i}. The harbour handled cargo number {i} this week.",
                f"Harbour report {i}",
                {
                    k: v
                    for k, v in (("publisher", outlet), ("published", when and when.isoformat()))
                    if v
                },
            )
            for i, (outlet, when) in enumerate(corpus)
        ]
        inside = {
            d.doc_id
            for d, (outlet, when) in zip(documents, corpus, strict=True)
            if (publishers is None or outlet in publishers)
            and (after is None or (when is not None and when >= after))
            and (before is None or (when is not None and when <= before))
        }
        query = Query(
            "harbour cargo report", top_k=50, publishers=publishers,
            published_after=after, published_before=before,
        )  # fmt: skip
        found = []
        for service in services:
            stale = {d.doc_id for d in service.documents()} - {d.doc_id for d in documents}
            service.update(documents, stale)
            found.append({p.doc_id for p in service.search(query)})
        assert found[0] == found[1] == inside

    try:
        check()
    finally:
        services[1].backend.close()
