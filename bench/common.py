"""Shared pieces of the quality benchmarks: datasets as Documents, baselines, rank metrics."""

from __future__ import annotations

import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np

from rag.config import Settings
from rag.ingest.documents import Document, make_document
from rag.models.embeddings import Embedder
from rag.models.reader import Reader
from rag.service import RagService

OUT = Path("bench/out")
RESULTS = Path("bench/results")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    relevant: dict[str, int]  # doc_id -> graded relevance
    answers: list[str]
    group: int  # which article/topic the question belongs to


def load_squad(path: Path) -> tuple[list[Document], list[Question]]:
    """Each paragraph is a document; each question's relevant document is its paragraph."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents, questions = [], []
    for a, article in enumerate(data):
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"squad-{a}-{p}"
            documents.append(make_document(doc_id, paragraph["context"], title=title))
            for qa in paragraph["qas"]:
                answers = [answer["text"] for answer in qa["answers"]]
                questions.append(Question(qa["id"], qa["question"], {doc_id: 1}, answers, a))
    return documents, questions


def load_scifact(folder: Path) -> tuple[list[Document], list[Question]]:
    documents = []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            documents.append(make_document(record["_id"], record["text"], title=record["title"]))
    texts = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts[record["_id"]] = record["text"]
    relevant: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        relevant.setdefault(query_id, {})[doc_id] = int(score)
    questions = [Question(q, texts[q], rel, [], 0) for q, rel in relevant.items()]
    return documents, questions


def sample(questions: list[Question], n: int | None, seed: int = 0) -> list[Question]:
    if not n or n >= len(questions):
        return questions
    return random.Random(seed).sample(questions, n)


def project_service(
    name: str, documents: list[Document], reader_dir: Path | None = None, **settings_values
) -> RagService:
    """The project's own index over a benchmark corpus, cached under bench/out/; with
    `reader_dir`, answered by the reader model there instead of the committed one."""
    settings = Settings(index_dir=OUT / name, sources=[], **settings_values)
    reader = Reader(reader_dir, expected_sha256=None) if reader_dir else None
    service = RagService(settings, reader=reader)
    current = service.backend.load()
    known = {d.doc_id: d for d in current.live_documents()} if current else {}
    changed = [d for d in documents if known.get(d.doc_id) != d]
    if changed or current is None:
        service.ingest(changed, progress=print)
    else:
        service.activate(current)
    return service


# --- baselines: what a plain setup would give ----------------------------------------------


def plain_dense_ranker(
    documents: list[Document], embedder: Embedder, cache: Path
) -> Callable[[np.ndarray, int], list[str]]:
    """One vector per document (title + text), FAISS flat inner product."""
    ids = [d.doc_id for d in documents]
    if cache.is_file() and np.load(cache, mmap_mode="r").shape[0] == len(ids):
        vectors = np.load(cache)
    else:
        vectors = embedder.encode([f"{d.title}\n{d.text}" for d in documents], show_progress=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    def rank(query_vector: np.ndarray, k: int) -> list[str]:
        _, rows = index.search(query_vector.reshape(1, -1), k)
        return [ids[r] for r in rows[0] if r >= 0]

    return rank


def plain_bm25_ranker(documents: list[Document]) -> Callable[[str, int], list[str]]:
    """bm25s defaults: English stop words, no stemming, title + text."""
    ids = [d.doc_id for d in documents]
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(
            [f"{d.title}\n{d.text}" for d in documents], stopwords="en", show_progress=False
        ),
        show_progress=False,
    )

    def rank(query: str, k: int) -> list[str]:
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        rows, _ = retriever.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
        return [ids[r] for r in rows[0]]

    return rank


def fuse_rrf(rankings: list[list[str]], k: int = 60) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, doc_id in enumerate(ranking):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + position + 1)
    return sorted(scores, key=lambda d: -scores[d])


def dedupe(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))


# --- metrics -------------------------------------------------------------------------------


def rank_metrics(rankings: list[list[str]], questions: list[Question]) -> dict[str, float]:
    recall = {1: [], 5: [], 20: []}
    reciprocal, ndcg = [], []
    for ranking, question in zip(rankings, questions, strict=True):
        hits = [question.relevant.get(d, 0) for d in ranking]
        first = next((i for i, h in enumerate(hits) if h > 0), None)
        for k in recall:
            recall[k].append(first is not None and first < k)
        reciprocal.append(0.0 if first is None else 1.0 / (first + 1))
        ndcg.append(ndcg_at(hits, sorted(question.relevant.values(), reverse=True), 10))
    result = {f"R@{k}": float(np.mean(v)) for k, v in recall.items()}
    result["MRR"] = float(np.mean(reciprocal))
    result["nDCG@10"] = float(np.mean(ndcg))
    return {k: round(v, 4) for k, v in result.items()}


def ndcg_at(gains: list[int], ideal: list[int], k: int) -> float:
    dcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k]))
    best = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
    return dcg / best if best else 0.0


def percentile_ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2) if values else 0.0


def machine() -> dict[str, str]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(len(__import__("os").sched_getaffinity(0))),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
    }


def save_results(name: str, module: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m", module, *sys.argv[1:]])
    payload = {
        "command": command,
        "machine": machine(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
