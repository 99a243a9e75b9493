"""The dense index at 100k and 1M vectors: build time, memory and disk per vector (and per
chunk, at the SQuAD index's sentences per chunk), query time, and recall@10 against exact
search over the same vectors, both of the index alone and as the service uses it: the
index's 200 best candidates re-scored exactly from the float vectors (`rag.index.nearest`).

Embedding a million chunks takes hours on 2 cores, so the vectors are made from real ones: the
paragraph vectors of SQuAD and SciFact and the sentence vectors of the SQuAD index that
`python -m bench.squad` / `bench.scifact` cache under bench/out/, each copied with Gaussian
noise of 0.5 times its norm and renormalised (distinct vectors, clustered like real ones).
Queries are real: SQuAD questions embedded by the packaged model.

    python -m bench.scale [--sizes 100000 1000000] [--squad PATH]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from bench.common import OUT, load_squad, percentile_ms, sample, save_results
from bench.load import rss_mb
from rag.index import store
from rag.index.dense import FLAT_LIMIT, dense_index, dense_kind, nearest
from rag.models.embeddings import Embedder, shared_embedder

CANDIDATES = 200  # what retrieval asks the dense index for (HybridRetriever)

NOISE = 0.5
SQUAD = Path("../shared/data/squad-v1.1/dev-v1.1.json")


def real_vectors(squad: Path, embedder: Embedder) -> np.ndarray:
    """Vectors the benchmarks cached; on a fresh clone, SQuAD's paragraphs embedded now."""
    parts = [np.load(p) for p in sorted(OUT.glob("*-plain-dense.npy"))]
    parts += [np.load(p, mmap_mode="r") for p in sorted(OUT.glob("squad/seg-*/vectors.npy"))]
    if not parts:
        parts = [embedder.encode([d.text for d in load_squad(squad)[0]], show_progress=True)]
    return np.concatenate(parts).astype(np.float32)


def synthetic(base: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        rows = np.arange(start, min(start + 100_000, count))
        block = base[rows % len(base)]
        noise = rng.standard_normal(block.shape).astype(np.float32)
        block = block + NOISE * noise / np.sqrt(base.shape[1])
        out[rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def measure(vectors: np.ndarray, queries: np.ndarray) -> dict:
    count = len(vectors)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    gc.collect()
    rss_before = rss_mb(os.getpid())
    started = time.perf_counter()
    index = dense_index(vectors)
    build_seconds = time.perf_counter() - started
    memory = (rss_mb(os.getpid()) - rss_before) * 2**20
    _, found = index.search(queries, 10)
    raw_recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    rescored = [nearest(index, vectors, query, CANDIDATES)[0][:10] for query in queries]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(rescored, truth, strict=True)])
    latencies = []
    for query in queries[:300]:
        started = time.perf_counter()
        nearest(index, vectors, query, CANDIDATES)
        latencies.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dense.faiss"
        faiss.write_index(index, str(path))
        disk = path.stat().st_size
        started = time.perf_counter()
        path.read_bytes()
        read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        store.read_dense(path)
        load_seconds = time.perf_counter() - started
    return {
        "vectors": count,
        "index": dense_kind(index),
        "build_seconds": round(build_seconds, 1),
        "memory_bytes_per_vector": round(max(memory, 0) / count, 1),
        "serialized_bytes_per_vector": round(faiss.serialize_index(index).nbytes / count, 1),
        "disk_bytes_per_vector": round(disk / count, 1),
        "query_p50_ms": percentile_ms(latencies, 50),
        "recall_at_10": round(float(recall), 4),
        "recall_at_10_index_alone": round(float(raw_recall), 4),
        "load_seconds": round(load_seconds, 2),
        "read_file_seconds": round(read_seconds, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--squad", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100k vectors, 300 queries")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries = [100_000], 300
    embedder = shared_embedder()
    base = real_vectors(args.squad, embedder)
    questions = sample(load_squad(args.squad)[1], args.queries, seed=7)
    queries = embedder.encode([q.text for q in questions])
    results = {"real_vectors": len(base), "noise": NOISE, "flat_limit": FLAT_LIMIT, "sizes": []}
    squad = store.read_manifest(OUT / "squad")
    per_chunk = squad.sentences / squad.chunks if squad else None
    results["sentence_vectors_per_chunk"] = per_chunk and round(per_chunk, 2)
    for size in args.sizes:
        result = measure(synthetic(base, size), queries)
        if per_chunk:
            for unit in ("memory", "disk"):
                per_vector = result[f"{unit}_bytes_per_vector"]
                result[f"{unit}_bytes_per_chunk"] = round(per_vector * per_chunk, 1)
        print(result, flush=True)
        results["sizes"].append(result)
    print(f"saved {save_results('scale-quick' if args.quick else 'scale', 'bench.scale', results)}")


if __name__ == "__main__":
    main()
