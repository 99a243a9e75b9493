"""A writer for the crash test: ingests documents one by one, printing `ack ID` after each
write returns, until it is killed. Run: python -m tests.crash_writer INDEX_DIR START"""

from __future__ import annotations

import sys
from pathlib import Path

from rag.config import Settings
from rag.ingest.documents import make_document
from rag.service import RagService


def main() -> None:
    index_dir, start = Path(sys.argv[1]), int(sys.argv[2])
    service = RagService(Settings(index_dir=index_dir, sources=[]))
    print("ready", flush=True)
    for n in range(start, start + 10_000):
        text = f"Report {n}. Factory {n} opened on May {n % 28 + 1}, 2024 with {n} workers."
        service.ingest([make_document(f"crash-{n}", text)])
        print(f"ack crash-{n}", flush=True)


if __name__ == "__main__":
    main()
