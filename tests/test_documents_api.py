"""Writes over HTTP: keys, create/replace/delete, uploads, limits, rate limits, observability."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION, SEED_DIR, SEED_ID, serve_in_thread

KEY = {"Authorization": "Bearer s3cret"}
TESLA = {
    "id": "tesla-berlin",
    "title": "Tesla in Berlin",
    "text": "Tesla opened a factory near Berlin in March 2022. It employs 12,000 people.",
}


@pytest.fixture()
def writable(tmp_path: Path, embedder) -> RagService:
    sources = tmp_path / "articles"
    shutil.copytree(SEED_DIR, sources)
    settings = Settings(
        index_dir=tmp_path / "index", sources=[sources], api_key="s3cret", max_body_bytes=20_000
    )
    return RagService.open(settings, embedder)


@pytest.fixture()
def api(writable: RagService):
    with TestClient(create_app(writable)) as client:
        yield client


def test_writes_are_off_without_a_configured_key(client) -> None:
    response = client.post("/documents", json=TESLA)
    assert response.status_code == 403 and "RAG_API_KEY" in response.json()["error"]


def test_wrong_or_missing_key_is_401(api) -> None:
    assert api.post("/documents", json=TESLA).status_code == 401
    wrong = api.post("/documents", json=TESLA, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


def test_create_read_ask_replace_delete(api) -> None:
    created = api.post("/documents", json=TESLA, headers=KEY)
    assert created.status_code == 201 and created.json()["index_documents"] == 2
    assert api.get("/documents/tesla-berlin").json()["text"] == TESLA["text"]
    answer = api.post("/ask", json={"question": "When did Tesla open the Berlin factory?"}).json()
    assert answer["answerable"] and "2022" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == "tesla-berlin"
    again = api.post("/documents", json=TESLA, headers=KEY)
    assert again.status_code == 409 and "PUT" in again.json()["error"]
    replaced = api.put(
        "/documents/tesla-berlin",
        headers=KEY,
        json={"title": "Tesla in Berlin", "text": "Tesla closed nothing in 2023."},
    )
    assert replaced.status_code == 200
    assert api.get("/documents/tesla-berlin").json()["text"] == "Tesla closed nothing in 2023."
    created_by_put = api.put("/documents/new-one", headers=KEY, json={"text": "Fresh text."})
    assert created_by_put.status_code == 201
    deleted = api.delete("/documents/tesla-berlin", headers=KEY)
    assert deleted.status_code == 200 and deleted.json()["index_documents"] == 2
    assert api.get("/documents/tesla-berlin").status_code == 404
    assert api.delete("/documents/tesla-berlin", headers=KEY).status_code == 404
    assert api.post("/ask", json={"question": EXAMPLE_QUESTION}).json()["answer"] == "2023"


def test_an_api_write_survives_a_restart_and_deleting_everything_leaves_an_empty_index(
    api, writable: RagService, embedder
) -> None:
    assert api.post("/documents", json=TESLA, headers=KEY).status_code == 201
    assert api.delete(f"/documents/{SEED_ID}", headers=KEY).status_code == 200
    restarted = RagService.open(writable.settings, embedder)  # syncs the sources again
    with TestClient(create_app(restarted)) as again:
        assert [d["doc_id"] for d in again.get("/documents").json()] == ["tesla-berlin"]
        assert again.delete("/documents/tesla-berlin", headers=KEY).status_code == 200
        assert again.get("/health").json() | {"status": "empty", "documents": 0} == (
            again.get("/health").json()
        )
        answer = again.post("/ask", json={"question": EXAMPLE_QUESTION})
        assert answer.status_code == 200 and not answer.json()["answerable"]
        assert answer.json()["message"].startswith("The index holds no documents yet")
        assert again.get("/search", params={"q": "Xiaomi"}).json() == []
        assert again.post("/documents", json=TESLA, headers=KEY).status_code == 201


def test_an_upload_named_like_a_source_file_survives_the_next_sync(
    api, writable: RagService, embedder
) -> None:
    folder = writable.settings.sources[0]
    named = str(folder / "note.txt")  # a name the client chose, inside the source folder
    sent = api.post("/documents/upload", headers=KEY, files={"file": (named, b"Ports grew.")})
    assert sent.status_code == 201
    assert api.get("/documents/note").json()["source"] == f"upload:{named}"
    (folder / "extra.txt").write_text("Extra\n\nA new source article.")  # the sources change
    restarted = RagService.open(writable.settings, embedder)
    assert {"note", "extra"} <= {d.doc_id for d in restarted.documents()}


def test_racing_writes_of_one_id_get_one_create(writable: RagService) -> None:
    base, stop = serve_in_thread(create_app(writable))
    try:
        with httpx.Client(base_url=base, headers=KEY, timeout=120) as http:

            def post(n: int) -> tuple[int, int]:
                sent = {**TESLA, "text": f"{TESLA['text']} Version {n}."}
                return n, http.post("/documents", json=sent).status_code

            def put(n: int) -> int:
                return http.put("/documents/raced-put", json={"text": f"Version {n}."}).status_code

            with ThreadPoolExecutor(4) as pool:
                posts = dict(pool.map(post, range(4)))
                puts = list(pool.map(put, range(4)))
            assert sorted(posts.values()) == [201, 409, 409, 409]
            (winner,) = [n for n, status in posts.items() if status == 201]
            stored = http.get(f"/documents/{TESLA['id']}").json()["text"]
            assert stored.endswith(f"Version {winner}.")  # the one acknowledged as created
            assert sorted(puts) == [200, 200, 200, 201]  # one PUT created it, three replaced
    finally:
        stop()


def test_hostile_traffic_loses_no_acknowledged_write_and_dodges_no_limit(
    writable: RagService,
) -> None:
    """Writers, a client rotating made-up tokens and oversized chunked bodies at once, over
    real HTTP: every 201 is readable after, the limits hold, and nothing answers 5xx."""
    limited = writable.settings.model_copy(update={"rate_limit_per_minute": 60})
    base, stop = serve_in_thread(create_app(writable, limited))

    def write(worker: int) -> list[tuple[str, int]]:
        with httpx.Client(base_url=base, headers=KEY, timeout=120) as http:
            sent = [
                {"id": f"w{worker}-{n}", "text": f"Writer {worker} reports item {n}."}
                for n in range(5)
            ]
            return [(d["id"], http.post("/documents", json=d).status_code) for d in sent]

    def rotate(n: int) -> int:
        made_up = {"Authorization": f"Bearer made-up-{n}"}
        return httpx.get(f"{base}/search", params={"q": "cars"}, headers=made_up).status_code

    def oversized(n: int) -> int:
        body = json.dumps({"id": f"big{n}", "text": "x" * 30_000}).encode()
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        headers = {**KEY, "content-type": "application/json"}
        return httpx.post(f"{base}/documents", headers=headers, content=chunks).status_code

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            writes = pool.map(write, range(4))
            rotated = pool.map(rotate, range(120))
            refused = pool.map(oversized, range(5))
            writes, rotated, refused = list(writes), list(rotated), list(refused)
        elapsed = time.monotonic() - started
        acknowledged = [doc_id for batch in writes for doc_id, status in batch if status == 201]
        assert len(acknowledged) == 20  # the key holder's budget covers its writes
        with httpx.Client(base_url=base, headers=KEY, timeout=120) as http:
            assert all(http.get(f"/documents/{d}").status_code == 200 for d in acknowledged)
        # one client, however many tokens: its budget, plus what refilled (one a second)
        assert rotated.count(200) <= 60 + elapsed + 1 and set(rotated) <= {200, 429}
        assert refused == [413] * 5
        assert all(status < 500 for status in [*rotated, *refused])
    finally:
        stop()


def test_id_is_derived_when_missing_and_unsafe_ids_refused(api) -> None:
    created = api.post("/documents", json={"text": "An article without an id."}, headers=KEY)
    assert created.json()["documents"][0]["doc_id"].startswith("doc-")
    for bad in ["..%2F..%2Fetc", ".hidden", "a b"]:
        response = api.put(f"/documents/{bad}", json={"text": "x"}, headers=KEY)
        assert response.status_code in (404, 422), bad
        assert response.json()["error"]


def test_uploads_by_type(api) -> None:
    txt = api.post(
        "/documents/upload",
        headers=KEY,
        files={"file": ("ev-news.txt", b"EV news\n\nBYD sold 3 million cars.")},
    )
    assert txt.status_code == 201 and txt.json()["documents"][0]["doc_id"] == "ev-news"
    assert api.get("/documents/ev-news").json()["source"] == "upload:ev-news.txt"
    legacy = api.post(
        "/documents/upload",
        headers=KEY,
        files={"file": ("cafe.txt", "Café owners – 5% more".encode("cp1252"))},
    )
    assert legacy.status_code == 201
    assert api.get("/documents/cafe").json()["text"] == "Café owners – 5% more"
    records = "\n".join(json.dumps({"id": f"r{i}", "text": f"Record {i}."}) for i in range(3))
    jsonl = api.post("/documents/upload", headers=KEY, files={"file": ("batch.jsonl", records)})
    assert [d["doc_id"] for d in jsonl.json()["documents"]] == ["r0", "r1", "r2"]
    pdf = api.post("/documents/upload", headers=KEY, files={"file": ("a.pdf", b"%PDF-1.7")})
    assert pdf.status_code == 415 and ".txt" in pdf.json()["error"]
    binary = api.post(
        "/documents/upload", headers=KEY, files={"file": ("photo.txt", b"\x89PNG\r\n\x00\x00")}
    )
    assert binary.status_code == 415 and "NUL bytes" in binary.json()["error"]
    broken = api.post("/documents/upload", headers=KEY, files={"file": ("b.json", b"{oops")})
    assert broken.status_code == 422 and "malformed JSON" in broken.json()["error"]
    huge = api.post("/documents/upload", headers=KEY, files={"file": ("big.txt", b"x" * 30_000)})
    assert huge.status_code == 413 and "limit" in huge.json()["error"]

    def chunked(body: bytes):  # no Content-Length: the limit is counted as the body arrives
        yield from (body[i : i + 4096] for i in range(0, len(body), 4096))

    as_json = json.dumps({"id": "big", "text": "x" * 30_000}).encode()
    for path, body, kind in (
        ("/documents", as_json, "application/json"),
        ("/ask", as_json, "application/json"),
        ("/documents/upload", b"--b\r\n" + b"x" * 30_000, "multipart/form-data; boundary=b"),
    ):
        streamed = api.post(path, headers={**KEY, "content-type": kind}, content=chunked(body))
        assert streamed.status_code == 413 and "limit" in streamed.json()["error"], path
    assert api.get("/health").json()["documents"] == 6


def test_script_in_a_document_is_stored_as_text(api) -> None:
    text = 'Breaking <script>alert("x")</script> news about batteries.'
    api.put("/documents/xss", json={"text": text}, headers=KEY)
    assert api.get("/documents/xss").json()["text"] == text
    page_script = api.get("/static/chat.js").text
    assert "innerHTML" not in page_script  # the page inserts document text as text nodes only


def test_reads_can_be_protected(writable: RagService) -> None:
    settings = writable.settings.model_copy(update={"protect_reads": True})
    writable.settings = settings
    with TestClient(create_app(writable)) as client:
        assert client.post("/ask", json={"question": EXAMPLE_QUESTION}).status_code == 401
        assert client.get("/documents").status_code == 401
        assert client.post("/ask", json={"question": EXAMPLE_QUESTION}, headers=KEY).json()[
            "answer"
        ]
        assert client.get("/health").status_code == 200  # liveness stays open


def test_rate_limit_is_off_by_default_and_429s_when_set(client, writable) -> None:
    assert all(client.get("/search", params={"q": "cars"}).status_code == 200 for _ in range(30))
    limited = writable.settings.model_copy(update={"rate_limit_per_minute": 3})
    with TestClient(create_app(writable, limited)) as api:
        codes = [api.get("/search", params={"q": "cars"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = api.get("/search", params={"q": "cars"})
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]
        for made_up in ("a", "b", "c"):  # a new made-up token per request is no new client
            rotating = {"Authorization": f"Bearer {made_up}"}
            assert api.get("/search", params={"q": "cars"}, headers=rotating).status_code == 429
        other = api.get("/search", params={"q": "cars"}, headers=KEY)  # the key's holder
        assert other.status_code == 200
        proxied = {"X-Forwarded-For": "203.0.113.9"}  # not trusted unless configured
        assert api.get("/search", params={"q": "cars"}, headers=proxied).status_code == 429
        assert api.get("/health").status_code == 200
    behind_proxy = limited.model_copy(update={"client_address_header": "X-Forwarded-For"})
    with TestClient(create_app(writable, behind_proxy)) as api:
        for address, expected in (("203.0.113.9", 200), ("203.0.113.9, 10.0.0.1", 200)):
            proxied = {"X-Forwarded-For": address}
            assert api.get("/search", params={"q": "cars"}, headers=proxied).status_code == expected
        codes = [
            api.get("/search", params={"q": "cars"}, headers={"X-Forwarded-For": "198.51.100.7"})
            for _ in range(4)
        ]
        assert [c.status_code for c in codes] == [200, 200, 200, 429]


def test_protected_reads_without_a_key_refuse_to_start() -> None:
    for blank in (None, "", "  "):  # an empty key is no key (a bare request would match it)
        with pytest.raises(ValueError, match="RAG_PROTECT_READS=true needs RAG_API_KEY"):
            Settings(protect_reads=True, api_key=blank)
    served = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "1"],
        env={**os.environ, "RAG_PROTECT_READS": "true", "RAG_API_KEY": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert "RAG_PROTECT_READS=true needs RAG_API_KEY" in served.stderr


def test_metrics_ready_and_request_ids(client, caplog) -> None:
    with caplog.at_level("INFO", logger="rag.access"):
        response = client.post(
            "/ask", json={"question": EXAMPLE_QUESTION}, headers={"X-Request-ID": "abc123"}
        )
    assert response.headers["x-request-id"] == "abc123"
    logged = [r for r in caplog.records if getattr(r, "fields", {}).get("request_id") == "abc123"]
    assert logged and logged[0].fields["status"] == 200 and logged[0].fields["path"] == "/ask"
    metrics = client.get("/metrics").text
    assert 'rag_requests_total{method="POST",route="/ask",status="200"}' in metrics
    assert 'rag_answers_total{answerable="true",mode="extractive"}' in metrics
    assert 'rag_index_size{kind="documents"} 1.0' in metrics
    assert "rag_request_seconds_bucket" in metrics
    assert client.get("/ready").json() == {"ready": True}


def test_queries_keep_answering_while_writers_queue(api) -> None:
    errors: list[str] = []

    def write(n: int) -> None:
        response = api.put(
            f"/documents/w{n}", json={"text": f"Writer {n} wrote on May {n}, 2024."}, headers=KEY
        )
        if response.status_code not in (200, 201):
            errors.append(response.text)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    answers = [api.post("/ask", json={"question": EXAMPLE_QUESTION}).json() for _ in range(20)]
    for thread in writers:
        thread.join()
    assert errors == []
    assert all(a["answer"] == "2023" for a in answers)
    listed = {d["doc_id"] for d in api.get("/documents").json()}
    assert {f"w{n}" for n in range(4)} <= listed and SEED_ID in listed
