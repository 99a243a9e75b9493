"""pgvector at a million sentence vectors: HNSW build time, bytes per vector, search p50 and
recall@10 against exact search, for `vector` (float32) and `halfvec` (float16) columns.

The vectors are those of `bench.scale` (real SQuAD/SciFact vectors copied with noise, so the
two dense stores are measured on the same data); the queries are real SQuAD questions. The
index is HNSW over inner product, as the service's schema builds it, with pgvector's defaults
(m=16, ef_construction=64) unless told otherwise. The database lives under bench/out/pg-scale/
and survives an interruption: a rerun skips the tables and indexes already built.

    python -m bench.pgvector_scale [--size 1000000] [--queries 1000] [--m 16 --ef-construction 64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import faiss
import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.common import OUT, load_squad, percentile_ms, sample, save_results
from bench.load import free_port
from bench.scale import SQUAD, real_vectors, synthetic
from rag.index import pg_local
from rag.models.embeddings import shared_embedder

DATA = OUT / "pg-scale"
KINDS = ("vector", "halfvec")
EF_SEARCH = (40, 100, 200, 400, 800)
SERVICE_CANDIDATES = 200  # what retrieval asks the dense store for (HybridRetriever)
SETTINGS = {  # a server with this machine's memory; the index build may use both cores
    "shared_buffers": "6GB",
    "maintenance_work_mem": "8GB",
    "max_parallel_maintenance_workers": "1",
    "max_wal_size": "8GB",
}


def start_tuned(port: int):
    server = pg_local.start(DATA, port)
    with psycopg.connect(pg_local.url(port), autocommit=True) as conn:
        current = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS}
        if current == SETTINGS:
            return server
        for name, value in SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    pg_local.stop(server)
    return pg_local.start(DATA, port)


def load_table(conn, kind: str, vectors: np.ndarray) -> float:
    """The table filled once (a rerun finds it full); seconds spent."""
    table = f"scale_{kind}"
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, v {kind}(384))")
    (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    if count == len(vectors):
        return 0.0
    started = time.perf_counter()
    conn.execute(f"TRUNCATE {table}")
    if kind == "vector":
        with conn.cursor().copy(f"COPY {table} (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for row, vector in enumerate(vectors):
                copy.write_row([row, vector])
    else:
        conn.execute(f"INSERT INTO {table} SELECT id, v::halfvec(384) FROM scale_vector")
    conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def build_index(conn, kind: str, m: int, ef_construction: int) -> tuple[str, float]:
    """The HNSW index with these parameters, the table's only one, and seconds it took to
    build (remembered across runs: a rerun does not rebuild)."""
    name = f"scale_{kind}_hnsw_m{m}_ef{ef_construction}"
    timings = DATA / "build-seconds.json"
    known = json.loads(timings.read_text()) if timings.exists() else {}
    others = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname <> %s "
        "AND indexdef LIKE '%%hnsw%%'",
        [f"scale_{kind}", name],
    ).fetchall()
    for (other,) in others:
        conn.execute(f"DROP INDEX {other}")
    if conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] and name in known:
        return name, known[name]
    conn.execute(f"DROP INDEX IF EXISTS {name}")
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX {name} ON scale_{kind} USING hnsw (v {kind}_ip_ops) "
        f"WITH (m = {m}, ef_construction = {ef_construction})"
    )
    known[name] = time.perf_counter() - started
    timings.write_text(json.dumps(known))
    return name, known[name]


def search(conn, kind: str, queries: np.ndarray, limit: int) -> tuple[list[list[int]], list]:
    found, seconds = [], []
    sql = f"SELECT id FROM scale_{kind} ORDER BY v <#> %s::{kind}(384) LIMIT {limit}"
    for query in queries:
        begun = time.perf_counter()
        rows = conn.execute(sql, [query]).fetchall()
        seconds.append(time.perf_counter() - begun)
        found.append([row[0] for row in rows])
    return found, seconds


def measure(conn, kind: str, index: str, queries: np.ndarray, truth: np.ndarray) -> dict:
    (table_bytes, index_bytes, count) = conn.execute(
        f"SELECT pg_table_size('scale_{kind}'), pg_relation_size('{index}'), "
        f"(SELECT count(*) FROM scale_{kind})"
    ).fetchone()
    result = {
        "table_bytes_per_vector": round(table_bytes / count, 1),
        "index_bytes_per_vector": round(index_bytes / count, 1),
        "search": [],
    }
    search(conn, kind, queries, 10)  # warm: the index pages into shared buffers
    for ef in EF_SEARCH:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        found, seconds = search(conn, kind, queries, 10)
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        row = {"ef_search": ef, "recall_at_10": round(float(recall), 4)}
        row["p50_ms"], row["p95_ms"] = percentile_ms(seconds, 50), percentile_ms(seconds, 95)
        result["search"].append(row)
        print(f"  {kind} {row}", flush=True)
    conn.execute("SET hnsw.ef_search = 400")
    _, seconds = search(conn, kind, queries, SERVICE_CANDIDATES)
    result["service_search_200_at_ef400_p50_ms"] = percentile_ms(seconds, 50)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--m", type=int, default=16, help="HNSW links per node (pgvector: 16)")
    parser.add_argument("--ef-construction", type=int, default=64, help="pgvector's default: 64")
    parser.add_argument("--fresh", action="store_true", help="drop the database of a last run")
    args = parser.parse_args(argv)
    if args.fresh:
        shutil.rmtree(DATA, ignore_errors=True)
    embedder = shared_embedder()
    vectors = synthetic(real_vectors(args.squad, embedder), args.size)
    questions = sample(load_squad(args.squad)[1], args.queries, seed=7)
    queries = embedder.encode([q.text for q in questions])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    port = free_port()
    server = start_tuned(port)
    results = {
        "vectors": args.size,
        "queries": len(queries),
        "server": SETTINGS,
        "hnsw": {"m": args.m, "ef_construction": args.ef_construction},
    }
    try:
        with psycopg.connect(pg_local.url(port), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            for kind in KINDS:
                loaded = load_table(conn, kind, vectors)
                index, built = build_index(conn, kind, args.m, args.ef_construction)
                print(f"{kind}: loaded in {loaded:.0f} s, index built in {built:.0f} s", flush=True)
                results[kind] = {
                    "load_seconds": round(loaded, 1) if loaded else "loaded by an earlier run",
                    "hnsw_build_seconds": round(built, 1),
                    **measure(conn, kind, index, queries, truth),
                }
    finally:
        pg_local.stop(server)
    name = f"pgvector-scale-m{args.m}-ef{args.ef_construction}"
    print(f"saved {save_results(name, 'bench.pgvector_scale', results)}")


if __name__ == "__main__":
    main()
