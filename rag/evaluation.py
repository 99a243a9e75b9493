"""Scoring answers against a golden set, through the same `RagService.ask` as `/ask`."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.query.conversation import Turn
from rag.query.normalize import contains_any, is_right, normalize, token_f1
from rag.service import RagService
from rag.types import AnswerMode, AskResult


@dataclass(frozen=True)
class GoldenItem:
    id: str
    question: str
    answers: list[str]
    evidence: str | None
    answerable: bool
    history: tuple[Turn, ...] = ()  # the conversation a follow-up is asked in


@dataclass(frozen=True)
class ItemResult:
    id: str
    question: str
    answerable: bool
    predicted: str | None
    abstained: bool
    confidence: float
    evidence_rank: int | None  # 1-based rank of the first passage holding the evidence
    correct: bool
    exact: bool
    f1: float
    citation_valid: bool | None  # None when nothing was cited
    latency_ms: float
    mode: AnswerMode = AnswerMode.EXTRACTIVE  # which mode answered
    tokens_per_second: float | None = None  # of a generated answer


def load_golden(path: Path) -> list[GoldenItem]:
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            items.append(
                GoldenItem(
                    id=str(record.get("id", line_no)),
                    question=record["question"],
                    answers=list(record.get("answers") or []),
                    evidence=record.get("evidence"),
                    answerable=bool(record.get("answerable", bool(record.get("answers")))),
                    history=tuple(Turn(t["role"], t["content"]) for t in record.get("history", [])),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{line_no}: bad golden record ({error})") from None
    return items


# --- one item, then the whole set ----------------------------------------------------------


def right(predicted: str, answers: list[str], result: AskResult) -> bool:
    """Right as the benchmarks count it: an extractive answer by token F1 (RIGHT_F1, the
    meaning of the confidence), a generated sentence by holding a gold answer."""
    if result.mode == AnswerMode.GENERATIVE:
        return contains_any(predicted, answers)
    return is_right(predicted, answers)


def score_item(item: GoldenItem, result: AskResult, texts: dict[str, str], latency: float):
    rank = None
    if item.evidence:
        for position, passage in enumerate(result.passages, 1):
            if normalize(item.evidence) in normalize(passage.text):
                rank = position
                break
    predicted = result.answer if result.answerable else None
    citation_valid = None
    if result.citations:
        offsets_ok = all(texts[c.doc_id][c.start : c.end] == c.quote for c in result.citations)
        holds_evidence = item.evidence is None or any(
            normalize(item.evidence) in normalize(c.quote) for c in result.citations
        )
        citation_valid = offsets_ok and holds_evidence
    correct = item.answerable and predicted is not None and right(predicted, item.answers, result)
    return ItemResult(
        id=item.id,
        question=item.question,
        answerable=item.answerable,
        predicted=predicted,
        abstained=not result.answerable,
        confidence=result.confidence,
        evidence_rank=rank,
        correct=correct,
        exact=predicted is not None
        and any(normalize(predicted) == normalize(a) for a in item.answers),
        f1=max((token_f1(predicted, a) for a in item.answers), default=0.0) if predicted else 0.0,
        citation_valid=citation_valid,
        latency_ms=latency,
        mode=result.mode,
        tokens_per_second=(result.generation or {}).get("tokens_per_second"),
    )


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def summarize(results: list[ItemResult]) -> dict[str, float]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    abstained = [r for r in results if r.abstained]
    ranks = [r.evidence_rank for r in answerable]
    cited = [r for r in results if r.citation_valid is not None]
    latencies = np.array([r.latency_ms for r in results]) if results else np.zeros(1)
    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit@1": share([r is not None and r <= 1 for r in ranks]),
        "hit@5": share([r is not None and r <= 5 for r in ranks]),
        "mrr": round(float(np.mean([1 / r if r else 0.0 for r in ranks])), 4) if ranks else 0.0,
        "answer_accuracy": share([r.correct for r in answerable]),
        "exact_match": share([r.exact for r in answerable]),
        "f1": round(float(np.mean([r.f1 for r in answerable])), 4) if answerable else 0.0,
        "citation_validity": share([bool(r.citation_valid) for r in cited]),
        "abstention_precision": share([not r.answerable for r in abstained]) if abstained else 1.0,
        "abstention_recall": share([r.abstained for r in unanswerable]),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 2),
        **generation_summary(results),
    }


def generation_summary(results: list[ItemResult]) -> dict[str, float]:
    """Only when a generative run: how often the model's answer stood, and its speed."""
    speeds = [r.tokens_per_second for r in results if r.tokens_per_second]
    if not speeds:
        return {}
    return {
        "generated_share": share([r.mode == AnswerMode.GENERATIVE for r in results]),
        "tokens_per_second_p50": round(float(np.median(speeds)), 1),
    }


def evaluate(
    service: RagService,
    items: list[GoldenItem],
    top_k: int = 5,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    mode: str | None = None,
) -> tuple[dict[str, float], list[ItemResult]]:
    texts = {d.doc_id: d.text for d in service.documents()}
    results = []
    for item in progress(items):
        started = time.perf_counter()
        result = service.ask(item.question, top_k, mode=mode, history=list(item.history))
        latency = (time.perf_counter() - started) * 1000
        results.append(score_item(item, result, texts, latency))
    return summarize(results), results


# --- thresholds and reports ----------------------------------------------------------------


def load_thresholds(path: Path | None, table: str = "thresholds") -> dict[str, float]:
    """A table of a TOML file, metric name -> minimum (latency: maximum): `thresholds`, the
    floors a run must reach (regressions fail), or `targets`, what right would be."""
    if path is None or not path.is_file():
        return {}
    return dict(tomllib.loads(path.read_text()).get(table, {}))


def failures(summary: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    failed = []
    for metric, limit in thresholds.items():
        if metric not in summary:
            failed.append(f"unknown metric {metric!r}; valid: {', '.join(summary)}")
            continue
        value = summary[metric]
        too_slow = metric.startswith("latency") and value > limit
        too_low = not metric.startswith("latency") and value < limit
        if too_slow or too_low:
            failed.append(f"{metric} = {value} (limit {limit})")
    return failed


def markdown_report(summary: dict[str, float], results: list[ItemResult]) -> str:
    lines = ["| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in summary.items()]
    lines += [
        "",
        "| id | question | predicted | ok | evidence rank |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ok = r.correct if r.answerable else r.abstained
        shown = (r.predicted or "(abstained)").replace("|", "\\|")[:80]
        lines.append(
            f"| {r.id} | {r.question} | {shown} | {'yes' if ok else 'NO'} | "
            f"{r.evidence_rank or '-'} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(out: Path, summary: dict, results: list[ItemResult]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "eval.json", out / "eval.md"
    payload = {"summary": summary, "results": [asdict(r) for r in results]}
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    md_path.write_text(markdown_report(summary, results))
    return json_path, md_path
