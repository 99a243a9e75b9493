"""A writer killed with SIGKILL at random points leaves an index that loads, holding every
acknowledged document. RAG_CRASH_TRIALS sets how many kills (`make stress` runs many)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from rag import store
from rag.config import Settings
from rag.documents import make_document
from rag.service import RagService
from tests.conftest import ROOT

TRIALS = int(os.environ.get("RAG_CRASH_TRIALS", "6"))


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
