"""A bounded load run on 127.0.0.1 (quick in CI; `make stress` runs 20,000 requests)."""

from __future__ import annotations

import os

from bench.load import load_against_new_server

REQUESTS = int(os.environ.get("RAG_LOAD_REQUESTS", "600"))


def test_mixed_load_with_a_writer_loses_nothing() -> None:
    report = load_against_new_server(REQUESTS, concurrency=32, writes=5, max_seconds=300)
    assert report.requests == REQUESTS, report
    assert report.errors == 0 and report.wrong_answers == 0, report.error_samples
    assert report.writes_acknowledged == report.writes_visible >= 1
    assert report.rss_growth_mb < 300, report
