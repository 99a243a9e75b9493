"""One loaded model and one seed index for the whole session: both take seconds to make."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.embeddings import Embedder, shared_embedder
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


def assert_citations_verify(citations: list[dict], texts: dict[str, str]) -> None:
    """The traceability invariant: offsets reproduce the quote exactly."""
    assert citations, "an answer must carry at least one citation"
    for citation in citations:
        text = texts[citation["doc_id"]]
        assert text[citation["start"] : citation["end"]] == citation["quote"]
