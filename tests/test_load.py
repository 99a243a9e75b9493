"""A bounded load run on 127.0.0.1 (quick in CI; `make stress` runs 20,000 requests), driven
through the load benchmark's own command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
REQUESTS = int(os.environ.get("RAG_LOAD_REQUESTS", "600"))


def test_mixed_load_with_a_writer_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "load.json"
    command = [sys.executable, "-m", "bench.load", "--requests", str(REQUESTS)]
    command += ["--concurrency", "32", "--writes", "5", "--max-seconds", "300"]
    subprocess.run([*command, "--report", str(path)], cwd=ROOT, check=True, timeout=1200)
    report = json.loads(path.read_text())
    assert report["requests"] == REQUESTS, report
    assert report["errors"] == 0 and report["wrong_answers"] == 0, report["error_samples"]
    assert report["writes_acknowledged"] == report["writes_visible"] >= 1
    assert report["rss_growth_mb"] < 300, report
