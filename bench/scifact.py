"""BEIR SciFact: nDCG@10 of the project's retrieval beside plain dense, BM25 and their fusion.

python -m bench.scifact --data ../shared/data/scifact
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.common import (
    OUT,
    dedupe,
    fuse_rrf,
    load_scifact,
    percentile_ms,
    plain_bm25_ranker,
    plain_dense_ranker,
    project_service,
    rank_metrics,
    save_results,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    args = parser.parse_args(argv)
    if not (args.data / "corpus.jsonl").is_file():
        sys.exit(f"no SciFact corpus in {args.data}: pass --data PATH (BEIR layout)")
    documents, questions = load_scifact(args.data)
    started = time.perf_counter()
    service = project_service("scifact", documents)
    build_seconds = time.perf_counter() - started
    vectors = service.embedder.encode([q.text for q in questions], batch_size=1)  # as /ask does
    dense = plain_dense_ranker(documents, service.embedder, OUT / "scifact-plain-dense.npy")
    bm25 = plain_bm25_ranker(documents)
    runs: dict[str, list[list[str]]] = {"dense": [], "bm25": [], "rrf(dense,bm25)": [], "rag": []}
    latencies = []
    for question, vector in zip(questions, vectors, strict=True):
        d, b = dense(vector, 100), bm25(question.text, 100)
        runs["dense"].append(d)
        runs["bm25"].append(b)
        runs["rrf(dense,bm25)"].append(fuse_rrf([d, b]))
        started = time.perf_counter()
        passages = service.search(question.text, top_k=50, query_vector=vector)
        latencies.append(time.perf_counter() - started)
        runs["rag"].append(dedupe([p.doc_id for p in passages]))
    retrieval = {name: rank_metrics(r, questions) for name, r in runs.items()}
    payload = {
        "dataset": "BEIR SciFact test",
        "documents": len(documents),
        "queries": len(questions),
        "index_build_or_update_seconds": round(build_seconds, 1),
        "retrieval": retrieval,
        "search_p50_ms": percentile_ms(latencies, 50),
    }
    path = save_results("scifact", "bench.scifact", payload)
    for name, metrics in retrieval.items():
        print(f"{name:>16}  nDCG@10 {metrics['nDCG@10']:.3f}  R@5 {metrics['R@5']:.3f}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
