"""Schemathesis against the service's own OpenAPI schema: no 5xx, responses match the schema.

Every operation gets generated requests, valid and invalid; writes meet the key check."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from rag.service import RagService

EXAMPLES = 25
# Some rules are beyond JSON Schema ("the last chat message must be the user's, with text",
# "a question of only spaces"): schema-valid requests may get a clear 422, which is right.
SEMANTIC_422 = [positive_data_acceptance]


def test_every_operation_holds_up(service: RagService) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(excluded_checks=SEMANTIC_422)

        check()
