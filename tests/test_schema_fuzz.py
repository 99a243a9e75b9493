"""Schemathesis against the service's own OpenAPI schema, with the write key: no 5xx,
responses and statuses match the schema, valid requests are accepted, invalid ones refused.

Every operation gets generated requests, valid and invalid, writes included (on a copy of
the seed, so the session's index is untouched). `schemathesis.toml` holds the same two
exceptions for the CLI run the README gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from rag.config import Settings
from rag.service import RagService
from tests.conftest import SEED_DIR

EXAMPLES = 25
KEY = "fuzz-key"
# Rules beyond JSON Schema: a chat's last message must be the user's, with text, and name a
# model this service offers; an upload's file name needs a supported extension. There a
# schema-valid request may get a clear 4xx, which is right.
SEMANTIC = {("POST", "/v1/chat/completions"), ("POST", "/documents/upload")}


def test_every_operation_holds_up(tmp_path: Path, embedder) -> None:
    shutil.copytree(SEED_DIR, tmp_path / "articles")
    writable = Settings(index_dir=tmp_path / "index", sources=[tmp_path / "articles"], api_key=KEY)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(RagService.open(writable, embedder))
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    answered: set[tuple[str, str, int]] = set()
    assert len(operations) >= 12
    for operation in operations:
        semantic = (operation.method.upper(), operation.path) in SEMANTIC
        fuzz(operation, [positive_data_acceptance] if semantic else [], answered)
    writes = {(m, p) for m, p, status in answered if m != "GET" and status in (200, 201)}
    assert {("POST", "/documents"), ("PUT", "/documents/{doc_id}")} <= writes  # reached


def fuzz(operation, excluded: list, answered: set[tuple[str, str, int]]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=excluded
        )
        answered.add((case.method.upper(), case.path, response.status_code))

    check()
