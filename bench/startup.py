"""Start-up: seconds from `rag serve` to ready, on the seed corpus and on an index of about a
million sentence vectors, beside the time it takes just to read that index's files.

The large index is SQuAD's 2,067 paragraphs copied under distinct ids, built and saved by the
project's own code; its vectors are reused by content hash from the cached SQuAD index, so
nothing is embedded (embedding a million texts takes hours on 2 cores). Start-up checks every
file against its SHA-256, so it reads the whole index once.

    python -m bench.startup [--vectors 1000000] [--squad PATH]
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import load_squad, project_service, save_results
from bench.load import Server, rss_mb
from bench.scale import SQUAD
from rag.config import Settings
from rag.index import store
from rag.index.corpus import build
from rag.ingest.documents import make_document
from rag.service import RagService


def build_large_index(squad_json: Path, vectors: int, folder: Path) -> dict:
    paragraphs = load_squad(squad_json)[0]
    squad = project_service("squad", paragraphs)
    reusable = squad.current().index
    copies = math.ceil(vectors / reusable.manifest.sentences)
    documents = [
        make_document(f"copy{c}-{p.doc_id}", p.text, title=p.title)
        for c in range(copies)
        for p in paragraphs
    ]
    service = RagService(Settings(index_dir=folder, sources=[]), squad.embedder)
    started = time.perf_counter()
    large = build(documents, service.spec, squad.embedder, reusable.segments, print)
    store.commit(large, service.root)
    seconds = time.perf_counter() - started
    manifest = large.manifest
    return {
        "documents": manifest.documents,
        "chunks": manifest.chunks,
        "sentence_vectors": manifest.sentences,
        "dense_index": manifest.dense_index,
        "build_and_save_seconds": round(seconds, 1),
        "disk_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
    }


def read_files_seconds(folder: Path) -> float:
    started = time.perf_counter()
    for path in folder.rglob("*"):
        if path.is_file():
            path.read_bytes()
    return round(time.perf_counter() - started, 2)


def start(workdir: Path, env: dict[str, str] | None = None) -> dict:
    server = Server(workdir, env=env)
    try:
        seconds = server.wait_ready()
        answer = httpx.post(
            f"{server.url}/ask", json={"question": "What is the capital of Normandy?"}, timeout=60
        )
        answer.raise_for_status()
        return {
            "startup_seconds": round(seconds, 2),
            "rss_mb_after_first_answer": round(rss_mb(server.process.pid), 1),
            "first_answer": answer.json()["answer"],
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000, help="sentence vectors")
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--quick", action="store_true", help="100,000 vectors")
    args = parser.parse_args(argv)
    if args.quick:
        args.vectors = 100_000
    workdir = Path(tempfile.mkdtemp(prefix="rag-startup-"))
    try:
        start(workdir)  # builds the seed index: that start-up is an ingest
        report = {"seed": start(workdir)}
        print("seed", report["seed"], flush=True)
        large = workdir / "large"
        report["large"] = build_large_index(args.squad, args.vectors, large)
        gc.collect()
        report["large"]["read_files_seconds"] = read_files_seconds(large)
        print("large index", report["large"], flush=True)
        env = {"RAG_INDEX_DIR": str(large), "RAG_SOURCES": "[]"}
        report["large"].update(start(workdir, env))
        print("large start-up", report["large"], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    name = "startup-quick" if args.quick else "startup"
    print(f"saved {save_results(name, 'bench.startup', report)}")


if __name__ == "__main__":
    main()
