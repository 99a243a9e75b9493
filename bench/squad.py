"""SQuAD v1.1 dev as a corpus: retrieval beside plain baselines, answers, and abstention.

    python -m bench.squad --data ../shared/data/squad-v1.1/dev-v1.1.json [--sample N]

Retrieval and answers use all 2,067 paragraphs as documents. Abstention indexes the
even-numbered articles only: their questions should be answered, the odd articles' questions
should not; the shipped confidence and threshold decide (they are fitted on SQuAD train, by
`python -m train.calibrate`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import (
    OUT,
    Question,
    dedupe,
    fuse_rrf,
    load_squad,
    percentile_ms,
    plain_bm25_ranker,
    plain_dense_ranker,
    project_service,
    rank_metrics,
    sample,
    save_results,
)
from bench.thresholds import CUTS
from rag.config import BACKENDS, DEFAULT_BACKEND, Settings
from rag.evaluation import contains_any, normalize, token_f1
from rag.index.corpus import build
from rag.service import RagService
from rag.types import AskResult


def answer_metrics(results: list[AskResult], questions: list[Question]) -> dict[str, float]:
    sentence_hit, answer_hit, exact, f1 = [], [], [], []
    for result, question in zip(results, questions, strict=True):
        quote = result.citations[0].quote if result.citations else ""
        answer = result.answer or ""
        sentence_hit.append(contains_any(quote, question.answers))
        answer_hit.append(contains_any(answer, question.answers))
        exact.append(any(normalize(answer) == normalize(a) for a in question.answers))
        f1.append(max(token_f1(answer, a) for a in question.answers))
    return {
        "top_sentence_contains_gold": round(float(np.mean(sentence_hit)), 4),
        "answer_contains_gold": round(float(np.mean(answer_hit)), 4),
        "exact_match": round(float(np.mean(exact)), 4),
        "f1": round(float(np.mean(f1)), 4),
    }


def retrieval_and_answers(
    service: RagService, documents, questions: list[Question]
) -> tuple[dict, dict, dict]:
    embedder = service.embedder
    started = time.perf_counter()
    # one per model call, as /ask embeds them
    vectors = embedder.encode([q.text for q in questions], show_progress=True, batch_size=1)
    encode_seconds = time.perf_counter() - started
    dense = plain_dense_ranker(documents, embedder, OUT / "squad-plain-dense.npy")
    bm25 = plain_bm25_ranker(documents)
    runs: dict[str, list[list[str]]] = {"dense": [], "bm25": [], "rrf(dense,bm25)": [], "rag": []}
    results, latencies = [], []
    for question, vector in zip(questions, vectors, strict=True):
        d, b = dense(vector, 20), bm25(question.text, 20)
        runs["dense"].append(d)
        runs["bm25"].append(b)
        runs["rrf(dense,bm25)"].append(fuse_rrf([d, b]))
        started = time.perf_counter()
        result = service.ask(question.text, top_k=40, query_vector=vector)
        latencies.append(time.perf_counter() - started)
        runs["rag"].append(dedupe([p.doc_id for p in result.passages]))
        results.append(result)
    retrieval = {name: rank_metrics(r, questions) for name, r in runs.items()}
    per_question_ms = encode_seconds / len(questions)
    timing = {
        "questions": len(questions),
        "encode_ms_per_question": round(per_question_ms * 1000, 2),
        "retrieve_answer_p50_ms": percentile_ms(latencies, 50),
        "retrieve_answer_p95_ms": percentile_ms(latencies, 95),
    }
    return retrieval, answer_metrics(results, questions), timing


def abstention(full: RagService, documents, questions: list[Question], per_side: int) -> dict:
    """Index even articles only: their questions should be answered, the odd ones' not."""
    group_of = {d.doc_id: int(d.doc_id.split("-")[1]) for d in documents}
    half_docs = [d for d in documents if group_of[d.doc_id] % 2 == 0]
    half = RagService(
        Settings(index_dir=OUT / "squad-half-unused", sources=[]),
        full.embedder,
        full.pipeline.reader,
    )
    reusable = full.current().index.segments
    half.activate(build(half_docs, full.spec, full.embedder, reusable))
    inside = sample([q for q in questions if q.group % 2 == 0], per_side, seed=1)
    outside = sample([q for q in questions if q.group % 2 == 1], per_side, seed=2)
    labels = np.array([1] * len(inside) + [0] * len(outside))
    results = half.ask_batch([q.text for q in inside + outside], top_k=5)
    answered = np.array([r.answerable for r in results])
    # an answer's confidence does not depend on the threshold: one pass scores every cut
    confidence = np.array([r.confidence for r in results])
    return {
        "indexed_documents": len(half_docs),
        "questions_in_corpus": len(inside),
        "questions_out_of_corpus": len(outside),
        "answer_threshold": half.current().answerer.threshold,
        **rates(answered, labels),
        "by_threshold": [{"threshold": cut, **rates(confidence >= cut, labels)} for cut in CUTS],
    }


def rates(answered: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        "in_corpus_answered": round(float(answered[labels == 1].mean()), 4),
        "out_of_corpus_abstained": round(float((~answered[labels == 0]).mean()), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    parser.add_argument("--sample", type=int, default=0, help="questions to use (0: all 10,570)")
    parser.add_argument("--abstention-per-side", type=int, default=1000)
    parser.add_argument(
        "--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="embedding backend"
    )
    args = parser.parse_args(argv)
    if not args.data.is_file():
        sys.exit(f"no SQuAD file at {args.data}: pass --data PATH/dev-v1.1.json")
    documents, questions = load_squad(args.data)
    chosen = sample(questions, args.sample)
    started = time.perf_counter()
    variant = "" if args.backend == DEFAULT_BACKEND else f"-{args.backend}"
    service = project_service(  # answer_threshold 0: always answer, to score every answer
        f"squad{variant}", documents, answer_threshold=0.0, embed_backend=args.backend
    )
    build_seconds = time.perf_counter() - started
    retrieval, answers, timing = retrieval_and_answers(service, documents, chosen)
    abstain = abstention(service, documents, questions, args.abstention_per_side)
    payload = {
        "dataset": "SQuAD v1.1 dev",
        "embedding_backend": service.embedder.backend,
        "documents": len(documents),
        "index_build_or_update_seconds": round(build_seconds, 1),
        "retrieval": retrieval,
        "answers": answers,
        "timing": timing,
        "abstention": abstain,
    }
    suffix = variant + (f"-sample{args.sample}" if args.sample else "")
    path = save_results(f"squad{suffix}", "bench.squad", payload)
    for name, metrics in retrieval.items():
        print(f"{name:>16}  " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    print("answers  " + "  ".join(f"{k} {v}" for k, v in answers.items()))
    print(f"abstention  {abstain}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
