"""Bulk ingest into PostgreSQL on a local Ray, per worker, beside one `rag ingest` process on
the same files and the same server: documents per second, and per worker.

SQuAD train paragraphs are written as one .txt file each (the shape of a newsroom's export).

    python -m bench.ray_ingest [--articles 3000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import load_squad, save_results
from bench.load import free_port
from bench.postgres import fresh_database
from rag.config import Settings
from rag.index import pg_local
from rag.ingest.distributed import ingest_with_ray
from rag.ingest.documents import load_paths
from rag.models.embeddings import shared_embedder
from rag.service import RagService

TRAIN = Path("../shared/data/squad-v1.1/train-v1.1.json")


def write_files(folder: Path, train: Path, articles: int) -> Path:
    documents, _ = load_squad(train)
    folder.mkdir()
    for document in documents[:articles]:
        (folder / f"{document.doc_id}.txt").write_text(document.text, encoding="utf-8")
    return folder


def one_process(url: str, files: Path) -> dict:
    started = time.perf_counter()
    service = RagService(Settings(database_url=fresh_database(url), sources=[]), shared_embedder())
    service.ingest(load_paths([files]).documents)
    seconds = time.perf_counter() - started
    service.backend.close()
    count = len(list(files.iterdir()))
    return {"seconds": round(seconds, 1), "documents_per_second": round(count / seconds, 1)}


def on_ray(url: str, files: Path, workers: int) -> dict:
    settings = Settings(database_url=fresh_database(url), sources=[])
    report = ingest_with_ray([files], settings, "local", workers=workers)
    if report.problems:
        raise RuntimeError(f"files not ingested: {report.problems[:3]}")
    rate = report.documents_per_second
    return {
        "workers": workers,
        "documents": report.documents,
        "seconds": round(report.seconds, 1),
        "documents_per_second": round(rate, 1),
        "documents_per_second_per_worker": round(rate / workers, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=TRAIN)
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder) / "articles", args.train, args.articles)
        server = pg_local.start(Path(folder) / "pg", port)
        try:
            url = pg_local.url(port)
            result = {"articles": args.articles, "one_process": one_process(url, files)}
            print(f"one process: {result['one_process']}", flush=True)
            result["ray"] = []
            for workers in args.workers:
                result["ray"].append(on_ray(url, files, workers))
                print(f"ray: {result['ray'][-1]}", flush=True)
        finally:
            pg_local.stop(server)
    print(f"saved {save_results('ray-ingest', 'bench.ray_ingest', result)}")


if __name__ == "__main__":
    main()
