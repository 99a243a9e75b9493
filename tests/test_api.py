"""The HTTP API through FastAPI's TestClient: answers, search, documents, and bad input."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from tests.conftest import EXAMPLE_QUESTION, SEED_ID, assert_citations_verify


def document_texts(client) -> dict[str, str]:
    listed = client.get("/documents").json()
    return {d["doc_id"]: client.get(f"/documents/{d['doc_id']}").json()["text"] for d in listed}


def test_ask_answers_2023_and_citation_verifies_against_documents(client) -> None:
    response = client.post("/ask", json={"question": EXAMPLE_QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert body["answerable"] is True and "2023" in body["answer"]
    assert set(body) >= {
        "question",
        "answer",
        "answerable",
        "confidence",
        "citations",
        "passages",
        "timings_ms",
    }
    assert_citations_verify(body["citations"], document_texts(client))
    citation = body["citations"][0]
    assert set(citation) == {
        *("n", "doc_id", "title", "chunk_id", "start", "end", "quote", "score"),
        *("published", "publisher"),  # the seed article names neither: null, not invented
    }
    assert citation["published"] is None and citation["publisher"] is None
    assert citation["n"] == 1 and citation["chunk_id"].startswith(SEED_ID + "#")
    assert body["timings_ms"]["total"] > 0


def test_ask_abstains_on_price(client) -> None:
    body = client.post("/ask", json={"question": "What is the price of the car?"}).json()
    assert body["answerable"] is False and body["answer"] is None
    assert body["citations"] == [] and body["message"]


def test_min_confidence_moves_the_cut_for_one_request(client) -> None:
    """The confidence is a probability, so a client may ask for a surer answer or for any."""
    default = client.post("/ask", json={"question": EXAMPLE_QUESTION}).json()
    assert default["answerable"] and default["confidence"] < 0.99
    strict = client.post("/ask", json={"question": EXAMPLE_QUESTION, "min_confidence": 0.99})
    body = strict.json()
    assert strict.status_code == 200 and body["answerable"] is False and body["answer"] is None
    assert body["confidence"] == default["confidence"] and body["message"]
    price = "What is the price of the car?"
    abstained = client.post("/ask", json={"question": price}).json()
    anything = client.post("/ask", json={"question": price, "min_confidence": 0.0}).json()
    assert abstained["answerable"] is False
    assert anything["answerable"] is True and anything["answer"]
    assert anything["confidence"] == abstained["confidence"]  # the same reading, another cut
    assert_citations_verify(anything["citations"], document_texts(client))


def test_ask_top_k_and_filters(client) -> None:
    body = client.post(
        "/ask", json={"question": EXAMPLE_QUESTION, "top_k": 2, "filters": {"doc_ids": [SEED_ID]}}
    ).json()
    assert len(body["passages"]) == 2
    assert {p["doc_id"] for p in body["passages"]} == {SEED_ID}


def test_search_returns_ranked_passages_with_offsets(client) -> None:
    response = client.get("/search", params={"q": "Great Wall shares", "k": 3})
    assert response.status_code == 200
    passages = response.json()
    assert 1 <= len(passages) <= 3
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)
    text = document_texts(client)[SEED_ID]
    for p in passages:
        assert text[p["start"] : p["end"]] == p["text"]


def test_documents_and_health(client) -> None:
    listed = client.get("/documents").json()
    assert [d["doc_id"] for d in listed] == [SEED_ID]
    assert listed[0]["title"].startswith("Xiaomi works on an electric car")
    one = client.get(f"/documents/{SEED_ID}").json()
    assert one["chars"] == len(one["text"]) > 2000
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["documents"] == 1
    assert client.get("/openapi.json").json()["paths"]["/ask"]


def test_api_docs_load_nothing_from_other_hosts(client) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
        assert assets and all(a.startswith("/") for a in assets), assets
        assert "://" not in html.replace("http://www.w3.org", "")
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"question": ""}, "question"),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "question"),
        ({"question": "ok?", "top_k": 0}, "top_k"),
        ({"question": "ok?", "top_k": MAX_TOP_K + 1}, "top_k"),
        ({"top_k": 3}, "question"),
        ({"question": 5}, "question"),
        ({"question": "ok?", "min_confidence": 1.5}, "min_confidence"),
        ({"question": "ok?", "min_confidence": -0.1}, "min_confidence"),
    ],
)
def test_bad_ask_bodies_get_422_json(client, payload, field) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid request"
    assert any(p["field"] == field for p in body["detail"])


def test_what_the_openapi_schema_forbids_is_refused_and_every_status_is_in_it(client) -> None:
    for flag in (True, False):  # JSON's true is not the number 1
        for body in ({"min_confidence": flag}, {"top_k": flag}):
            refused = client.post("/ask", json={"question": EXAMPLE_QUESTION, **body})
            assert refused.status_code == 422, body
    assert client.post("/ask", json={"question": EXAMPLE_QUESTION, "top_k": 3.0}).status_code == 200
    wrong_method = client.request("OPTIONS", "/documents")
    assert wrong_method.status_code == 405  # Allow names the path's every method
    assert wrong_method.headers["allow"] == "GET, POST"
    assert client.request("OPTIONS", "/documents/upload").headers["allow"] == "POST"
    assert client.request("OPTIONS", "/documents/x").headers["allow"] == "DELETE, GET, PUT"
    multipart = client.post(
        "/documents/upload",
        content=b"--b\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert multipart.status_code in (401, 403, 422)  # never a bare 400
    schema = client.get("/openapi.json").json()
    put = schema["paths"]["/documents/{doc_id}"]["put"]
    assert {"200", "201", "401", "403", "409", "413", "415", "422"} <= set(put["responses"])
    top_k = schema["components"]["schemas"]["AskRequest"]["properties"]["top_k"]["anyOf"][0]
    assert (top_k["minimum"], top_k["maximum"]) == (1, 50)


def test_malformed_and_semantic_errors_are_json(client) -> None:
    malformed = client.post(
        "/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422 and malformed.json()["detail"] == [
        {"field": "body", "message": "malformed JSON at character 1"}
    ]
    for path in ("/ask", "/v1/chat/completions"):  # bytes that are not text: the same 422
        garbled = client.post(
            path, content=b"\xff\x0e\x04\xfe", headers={"content-type": "application/json"}
        )
        assert garbled.status_code == 422, garbled.text
        assert garbled.json()["detail"] == [
            {"field": "body", "message": "the body is not UTF-8 text"}
        ]
    blank = client.post("/ask", json={"question": "   "})
    assert blank.status_code == 422 and blank.json()["detail"] == [
        {"field": "question", "message": "must hold text, not only white space"}
    ]
    unknown = client.post("/ask", json={"question": "q?", "filters": {"doc_ids": ["nope"]}})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    assert client.get("/documents/nope").status_code == 404
    assert client.get("/search", params={"q": "x", "k": 999}).status_code == 422
    missing = client.get("/no-such-route")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    # and the service still answers afterwards
    assert client.post("/ask", json={"question": EXAMPLE_QUESTION}).json()["answerable"]


def test_requests_before_the_index_is_loaded_get_503_with_retry_after(tmp_path) -> None:
    app = create_app(settings=Settings(index_dir=tmp_path / "index", sources=[]))
    starting = TestClient(app)  # not entered: start-up has not opened the service yet
    for method, path, body in [
        ("POST", "/ask", {"question": EXAMPLE_QUESTION}),
        ("GET", "/documents", None),
        ("GET", "/health", None),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi?"}]}),
    ]:
        response = starting.request(method, path, json=body)
        assert response.status_code == 503, path
        assert response.headers["retry-after"] == "5"
        assert "retry" in response.json()["error"]
    assert starting.get("/ready").status_code == 503
