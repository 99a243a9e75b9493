"""Load on 127.0.0.1: mixed /ask and /search from N concurrent clients, with a writer adding
documents meanwhile, against a real `rag serve` process. Bounded in requests and time.

    python -m bench.load [--requests 20000] [--concurrency 32] [--writes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KEY = "load-test-key"
QUESTIONS = [
    ("when is the first vehicle expected?", "2023"),
    ("When did the brand's adventure begin?", "1984"),
    ("Where will Xiaomi cars be produced?", "Hong Kong"),
]


@dataclass
class LoadReport:
    requests: int
    concurrency: int
    seconds: float
    requests_per_second: float
    errors: int
    wrong_answers: int
    writes_acknowledged: int
    writes_visible: int
    latency_p50_ms: float
    latency_p99_ms: float
    rss_start_mb: float
    rss_end_mb: float
    rss_growth_mb: float
    error_samples: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A server process on 127.0.0.1: by default `rag serve` on a fresh copy of the seed index,
    writes enabled by key."""

    def __init__(
        self, workdir: Path, command: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.started = time.monotonic()
        env = {
            **os.environ,
            "RAG_INDEX_DIR": str(workdir / "index"),
            "RAG_API_KEY": KEY,
            "RAG_SOURCES": f'["{ROOT / "seeds" / "articles"}"]',
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        command = command or [sys.executable, "-m", "api.cli", "serve"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 600, path: str = "/ready") -> float:
        """Seconds from launch to ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rag serve exited before it was ready")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise TimeoutError("rag serve was not ready in time")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def run_load(
    url: str, pid: int, requests: int, concurrency: int, writes: int, max_seconds: float
) -> LoadReport:
    latencies: list[float] = []
    errors: list[str] = []
    wrong = 0
    acked: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency + 2)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await client.get("/health")
        rss_start = rss_mb(pid)

        async def reader() -> None:
            nonlocal wrong
            while time.monotonic() < deadline:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                question, expected = QUESTIONS[n % len(QUESTIONS)]
                started = time.perf_counter()
                try:
                    if n % 5 < 3:
                        response = await client.post("/ask", json={"question": question})
                        ok = response.status_code == 200
                        if ok and expected not in (response.json().get("answer") or ""):
                            wrong += 1
                    else:
                        response = await client.get("/search", params={"q": question, "k": 3})
                        ok = response.status_code == 200 and bool(response.json())
                except httpx.HTTPError as error:
                    ok, response = False, error
                latencies.append(time.perf_counter() - started)
                if not ok:
                    errors.append(str(getattr(response, "status_code", response))[:200])

        async def writer() -> None:
            for n in range(writes):
                if time.monotonic() > deadline or queue.empty():
                    return
                doc_id = f"load-{n}"
                body = {
                    "title": f"Load report {n}",
                    "text": f"Load report {n}: plant {n} opened on June {n % 28 + 1}, 2025.",
                }
                response = await client.put(
                    f"/documents/{doc_id}", json=body, headers={"Authorization": f"Bearer {KEY}"}
                )
                if response.status_code in (200, 201):
                    acked.append(doc_id)
                else:
                    errors.append(f"write {response.status_code}")
                await asyncio.sleep(0.2)

        started = time.perf_counter()
        await asyncio.gather(writer(), *(reader() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        listed = {d["doc_id"] for d in (await client.get("/documents")).json()}
        rss_end = rss_mb(pid)
    done = len(latencies)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return LoadReport(
        requests=done,
        concurrency=concurrency,
        seconds=round(seconds, 2),
        requests_per_second=round(done / seconds, 1),
        errors=len(errors),
        wrong_answers=wrong,
        writes_acknowledged=len(acked),
        writes_visible=len(set(acked) & listed),
        latency_p50_ms=round(float(np.percentile(ms, 50)), 2),
        latency_p99_ms=round(float(np.percentile(ms, 99)), 2),
        rss_start_mb=round(rss_start, 1),
        rss_end_mb=round(rss_end, 1),
        rss_growth_mb=round(rss_end - rss_start, 1),
        error_samples=errors[:5],
    )


def load_against_new_server(
    requests: int, concurrency: int, writes: int, max_seconds: float
) -> LoadReport:
    workdir = Path(tempfile.mkdtemp(prefix="rag-load-"))
    server = Server(workdir)
    try:
        server.wait_ready()
        return asyncio.run(
            run_load(server.url, server.process.pid, requests, concurrency, writes, max_seconds)
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    from bench.common import save_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument(
        "--report", type=Path, help="write the report here (JSON), not bench/results"
    )
    args = parser.parse_args(argv)
    report = load_against_new_server(args.requests, args.concurrency, args.writes, args.max_seconds)
    if args.report:
        args.report.write_text(json.dumps(asdict(report)))
        return
    path = save_results("load", "bench.load", {"load": asdict(report)})
    for key, value in asdict(report).items():
        print(f"{key:>22}  {value}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
