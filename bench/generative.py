"""Generated answers measured: the seed golden set in both modes, and a SQuAD sample in
generative mode (answer contains a gold answer, citations verify, latency, tokens/s). Starts
the local model (`rag llm`) on 127.0.0.1 unless RAG_LLM_BASE_URL points at a server.

    python -m bench.generative [--squad PATH] [--sample 150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import load_squad, percentile_ms, project_service, sample, save_results
from bench.load import ROOT
from bench.scale import SQUAD
from rag import evaluation
from rag.config import Settings
from rag.evaluation import contains_any
from rag.models.local_llm import start_in_background
from rag.service import RagService


def local_model() -> tuple[str, subprocess.Popen | None]:
    if url := os.environ.get("RAG_LLM_BASE_URL"):
        return url, None
    return start_in_background()


def seed_eval(url: str) -> dict:
    settings = Settings(index_dir=Path("bench/out/seed"), llm_base_url=url)
    service = RagService.open(settings)
    items = evaluation.load_golden(ROOT / "seeds" / "golden.jsonl")
    report = {}
    for mode in ("extractive", "generative"):
        summary, _ = evaluation.evaluate(service, items, 5, mode=mode)
        report[mode] = summary
        print(mode, summary, flush=True)
    return report


def squad_generative(url: str, path: Path, count: int) -> dict:
    documents, questions = load_squad(path)
    service = project_service("squad", documents, llm_base_url=url)
    texts = {d.doc_id: d.text for d in documents}
    hits, valid, generated, abstained, latencies, speeds = [], [], [], [], [], []
    for question in sample(questions, count, seed=3):
        started = time.perf_counter()
        result = service.ask(question.text, mode="generative")
        latencies.append(time.perf_counter() - started)
        generated.append(result.mode == "generative")
        abstained.append(not result.answerable)
        hits.append(result.answerable and contains_any(result.answer or "", question.answers))
        valid += [texts[c.doc_id][c.start : c.end] == c.quote for c in result.citations]
        if result.generation and result.generation["tokens_per_second"]:
            speeds.append(result.generation["tokens_per_second"])
    return {
        "questions": count,
        "answer_contains_gold": round(float(np.mean(hits)), 4),
        "generated_share": round(float(np.mean(generated)), 4),
        "abstained": round(float(np.mean(abstained)), 4),
        "citations_verified": round(float(np.mean(valid)), 4) if valid else None,
        "latency_p50_ms": percentile_ms(latencies, 50),
        "latency_p95_ms": percentile_ms(latencies, 95),
        "tokens_per_second_p50": round(float(np.median(speeds)), 1) if speeds else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--sample", type=int, default=150)
    args = parser.parse_args(argv)
    url, server = local_model()
    try:
        report = {"seed_golden": seed_eval(url)}
        report["squad_generative"] = squad_generative(url, args.squad, args.sample)
        print("squad", report["squad_generative"], flush=True)
    finally:
        if server:
            server.terminate()
    print(f"saved {save_results('generative', 'bench.generative', report)}")


if __name__ == "__main__":
    main()
