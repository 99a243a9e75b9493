"""A writer killed with SIGKILL at random points leaves an index that loads, holding every
acknowledged document. RAG_CRASH_TRIALS sets how many kills (`make stress` runs many)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.index import store
from rag.ingest.documents import make_document
from rag.service import RagService
from tests.conftest import ROOT, SEED_DIR, SEED_ID, free_port, wait_until_healthy

TRIALS = int(os.environ.get("RAG_CRASH_TRIALS", "6"))

pytestmark = pytest.mark.slow  # server and writer processes


def test_sigkill_during_writes_never_loses_acknowledged_documents(tmp_path: Path, embedder):
    root = tmp_path / "index"
    seed = RagService(Settings(index_dir=root, sources=[]), embedder)
    seed.ingest([make_document("first", "The first report, from January 2024.")])
    acknowledged = {"first"}
    rng = random.Random(1234)
    for trial in range(TRIALS):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_writer", str(root), str(trial * 1000)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 2.5))  # somewhere inside a write, or between two
        os.kill(writer.pid, signal.SIGKILL)
        output, _ = writer.communicate(timeout=30)
        acknowledged |= {line.split()[1] for line in output.splitlines() if line.startswith("ack")}
        assert store.verify(root) == [], f"trial {trial}: corrupt after kill"
        loaded = store.load(root)
        held = set(loaded.doc_rows)
        assert acknowledged <= held, f"trial {trial}: lost {sorted(acknowledged - held)}"
    assert len(acknowledged) > TRIALS  # the kills did land between real writes
    service = RagService(Settings(index_dir=root, sources=[]), embedder)
    service.ingest([make_document("last", "The last report, from December 2024.")])
    in_force = {e.name for e in service.current().index.manifest.segments}
    on_disk = {p.name for p in root.iterdir() if p.name not in (".lock", "CURRENT")}
    assert on_disk == in_force | {service.current().index.snapshot}  # orphans removed
    assert service.ask("When did the first report come out?").citations


def long_article(sentences: int) -> str:
    """Distinct sentences (repeated ones would be embedded once and make the write short)."""
    return " ".join(
        f"Report {i} says that plant {i % 97} built {i * 7 % 1009} cars in week {i % 52}."
        for i in range(sentences)
    )


def test_sigterm_during_a_large_write_stops_promptly_and_publishes_nothing(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_SOURCES": json.dumps([str(SEED_DIR)]),
        "RAG_ALLOW_UNAUTHENTICATED_WRITES": "true",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base)
        writing = threading.Thread(
            target=lambda: httpx.put(
                f"{base}/documents/huge", json={"text": long_article(40_000)}, timeout=600
            ),
            daemon=True,
        )
        writing.start()
        for line in server.stderr:  # the write is under way once it starts embedding
            if re.search(r"embedding \d{5,} new texts", line):
                break
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)  # a bound for a loaded machine; it takes about a second
        stopped_in = time.monotonic() - signalled
    finally:
        server.kill()
    assert stopped_in < 10, f"took {stopped_in:.1f} s to stop"
    assert store.verify(tmp_path / "index") == []
    assert set(store.load(tmp_path / "index").doc_rows) == {SEED_ID}
