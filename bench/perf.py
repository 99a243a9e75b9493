"""Speed on 127.0.0.1, each figure beside its reference from the same run: the in-process floor,
/ask latency for one client, throughput for 32 clients beside a naive endpoint and a LangChain
FAISS retriever with the same model, start-up, memory.

    python -m bench.perf [--quick] [--squad ../shared/data/squad-v1.1/dev-v1.1.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import faiss
import httpx

from bench.common import OUT, load_squad, percentile_ms, project_service, save_results
from bench.load import ROOT, Server, rss_mb
from rag.ingest.chunking import split_sentences
from rag.ingest.documents import load_paths
from rag.models.embeddings import Embedder


def golden_questions() -> list[str]:
    lines = (ROOT / "seeds" / "golden.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def floor(embedder: Embedder, questions: list[str], n: int) -> dict:
    """Plain sentence-transformers + FAISS flat over the seed's sentences, in-process."""
    texts = [
        doc.text[s.start : s.end]
        for doc in load_paths([ROOT / "seeds" / "articles"]).documents
        for s in split_sentences(doc.text)
    ]
    model = embedder.model
    index = faiss.IndexFlatIP(embedder.dimension)
    index.add(model.encode(texts, normalize_embeddings=True))
    latencies = []
    for question in questions[:n]:
        started = time.perf_counter()
        index.search(model.encode([question], normalize_embeddings=True), 5)
        latencies.append(time.perf_counter() - started)
    batch = questions[: max(n, 512)]
    started = time.perf_counter()
    index.search(model.encode(batch, batch_size=64, normalize_embeddings=True), 5)
    return {
        "one_query_p50_ms": percentile_ms(latencies, 50),
        "batched_queries_per_second": round(len(batch) / (time.perf_counter() - started), 1),
    }


def one_client(url: str, path: str, questions: list[str], n: int) -> dict:
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post(path, json={"question": questions[0]}).raise_for_status()  # warm
        for question in questions[:n]:
            started = time.perf_counter()
            client.post(path, json={"question": question}).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return {f"p{q}_ms": percentile_ms(latencies, q) for q in (50, 95, 99)}


async def many_clients(
    urls: str | list[str],
    path: str,
    questions: list[str],
    requests: int,
    concurrency: int,
    pid: int,
) -> dict:
    """`concurrency` clients on keep-alive connections, `requests` in all; with several
    servers, client i talks to server i mod N (a round-robin load balancer). aiohttp, not
    httpx: on 2 cores the load generator shares the server's CPU, and httpx spent twice as
    much of it per request."""
    urls = [urls] if isinstance(urls, str) else urls
    latencies: list[float] = []
    errors = 0
    next_request = iter(range(requests))
    peak_rss = rss_mb(pid)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def worker(url: str) -> None:
            nonlocal errors
            for n in next_request:
                started = time.perf_counter()
                try:
                    body = {"question": questions[n % len(questions)]}
                    async with client.post(url + path, json=body) as response:
                        await response.read()
                        errors += response.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                latencies.append(time.perf_counter() - started)

        async def watch_memory() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, rss_mb(pid))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch_memory())
        started = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
        seconds = time.perf_counter() - started
        watcher.cancel()
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "errors": errors,
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "peak_rss_mb": round(peak_rss, 1),
    }


def measure_server(server: Server, questions: list[str], latency_n: int, load_n: int) -> dict:
    result = {"startup_seconds": round(server.wait_ready(), 2)}
    result["one_client"] = one_client(server.url, "/ask", questions, latency_n)
    result["clients_32"] = asyncio.run(
        many_clients(server.url, "/ask", questions, load_n, 32, server.process.pid)
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a few minutes)")
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 dev JSON: distinct questions")
    args = parser.parse_args(argv)
    latency_n, load_n = (200, 2000) if args.quick else (1000, 10_000)
    squad_questions = []
    if args.squad and args.squad.is_file():
        squad_questions = [q.text for q in load_squad(args.squad)[1]]
    questions = golden_questions() + squad_questions
    report: dict = {"questions": len(questions)}

    report["floor"] = floor(Embedder(backend="torch"), questions, latency_n)
    print("floor", report["floor"], flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="rag-perf-"))
    run_server(Server(workdir), questions, 1, 1)  # builds the seed index: start-up is a load
    report["rag_seed"] = run_server(Server(workdir), questions, latency_n, load_n)
    print("rag on the seed", report["rag_seed"], flush=True)
    naive = Server(workdir, [sys.executable, "-m", "bench.naive_app"])
    report["naive_seed"] = run_server(naive, questions, latency_n, load_n)
    print("naive endpoint", report["naive_seed"], flush=True)
    langchain = Server(workdir, [sys.executable, "-m", "bench.langchain_app"])
    report["langchain_seed"] = run_server(langchain, questions, latency_n, load_n)
    print("LangChain FAISS retriever", report["langchain_seed"], flush=True)
    squad_index = OUT / "squad"
    if squad_questions and not args.quick:
        project_service("squad", load_squad(args.squad)[0])  # built once, cached
    if squad_questions and (squad_index / "CURRENT").is_file():
        env = {"RAG_INDEX_DIR": str(squad_index.resolve()), "RAG_SOURCES": "[]"}
        server = Server(workdir, env=env)
        report["rag_squad"] = run_server(server, squad_questions, latency_n, load_n // 2)
        print("rag on SQuAD", report["rag_squad"], flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    floor_ms = report["floor"]["one_query_p50_ms"]
    rag, naive_load = report["rag_seed"], report["naive_seed"]["clients_32"]
    report["ratios"] = {
        "ask_p50_over_floor": round(rag["one_client"]["p50_ms"] / floor_ms, 2),
        "throughput_over_naive": round(
            rag["clients_32"]["requests_per_second"] / naive_load["requests_per_second"], 2
        ),
        "throughput_over_langchain": round(
            rag["clients_32"]["requests_per_second"]
            / report["langchain_seed"]["clients_32"]["requests_per_second"],
            2,
        ),
    }
    print("ratios", report["ratios"])
    print(f"saved {save_results('perf-quick' if args.quick else 'perf', 'bench.perf', report)}")


def run_server(server: Server, questions: list[str], latency_n: int, load_n: int) -> dict:
    try:
        return measure_server(server, questions, latency_n, load_n)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
