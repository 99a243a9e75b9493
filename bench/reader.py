"""Short answers of the trained reader on the public dev sets, and whether confidence means
what it says.

    python -m bench.reader --squad ../shared/data/squad-v1.1/dev-v1.1.json \
        --squad2 ../shared/data/squad-v2.0/dev-v2.0.json [--sample N]

SQuAD v1.1 dev: every question has an answer, so the service answers every time (threshold 0)
and is scored by SQuAD's exact match and F1, once over the whole corpus of 2,067 paragraphs and
once restricted to the gold paragraph (`doc_ids`). SQuAD v2.0 dev: half its questions have no
answer; the service answers or abstains at its shipped threshold and is scored the official
way (an abstention is right exactly when there is no answer). Neither set is fitted on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.common import project_service, sample, save_results
from rag.ingest.documents import Document, make_document
from rag.models.reader import MODEL_DIR
from rag.query.conversation import Turn
from rag.query.normalize import is_right, squad_scores
from rag.service import RagService
from rag.types import AskResult
from train.reader import referable_names, with_pronoun

BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answers: list[str]  # empty: the paragraph does not answer it
    doc_id: str


def load(path: Path, prefix: str) -> tuple[list[Document], list[Item]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents, items = [], []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{prefix}-{a}-{p}"
            title = article["title"].replace("_", " ")
            documents.append(make_document(doc_id, paragraph["context"], title=title))
            for qa in paragraph["qas"]:
                answers = [x["text"] for x in qa["answers"]] if not qa.get("is_impossible") else []
                items.append(Item(qa["id"], qa["question"], answers, doc_id))
    return documents, items


def ask_all(
    service: RagService, items: list[Item], gold_paragraph: bool, label: str
) -> tuple[list[AskResult], float]:
    """Each item's result, and the seconds it all took."""
    results = []
    started = time.perf_counter()
    for item in tqdm(items, desc=label):
        results.append(
            service.ask(item.question, top_k=5, doc_ids=[item.doc_id] if gold_paragraph else None)
        )
    return results, time.perf_counter() - started


def given(result: AskResult) -> str | None:
    """The answer, or None when the service abstained."""
    return result.answer if result.answerable else None


def run(
    service: RagService,
    items: list[Item],
    gold_paragraph: bool,
    label: str,
    also_at: float | None = None,
) -> dict:
    """Scores as answered; `also_at`: as they would be at that threshold too (answers given at
    threshold 0 kept when their confidence reaches it)."""
    results, seconds = ask_all(service, items, gold_paragraph, label)
    rows = []
    for item, result in zip(items, results, strict=True):
        predicted = given(result)
        exact, f1 = squad_scores(predicted, item.answers)
        right = predicted is not None and is_right(predicted, item.answers)
        answered = predicted is not None
        rows.append((exact, f1, result.confidence, answered, right, bool(item.answers)))
    exact, f1, confidence, answered, right, has_answer = (
        np.array(c) for c in zip(*rows, strict=True)
    )
    summary = {
        "questions": len(items),
        "exact_match": round(float(exact.mean()), 4),
        "f1": round(float(f1.mean()), 4),
        "answered": round(float(answered.mean()), 4),
        "ms_per_question": round(seconds / len(items) * 1000, 2),
    }
    if not has_answer.all():
        summary["has_answer_f1"] = round(float(f1[has_answer].mean()), 4)
        summary["no_answer_f1"] = round(float(f1[~has_answer].mean()), 4)
        summary["has_answer_questions"] = int(has_answer.sum())
    summary["reliability"] = reliability(confidence[answered], right[answered])
    if also_at is not None:
        kept = [
            squad_scores(given(r) if r.confidence >= also_at else None, item.answers)
            for item, r in zip(items, results, strict=True)
        ]
        summary["at_shipped_threshold"] = {
            "threshold": also_at,
            "exact_match": round(float(np.mean([k[0] for k in kept])), 4),
            "f1": round(float(np.mean([k[1] for k in kept])), 4),
            "answered": round(float((confidence >= also_at).mean()), 4),
        }
    return summary


def article_of(item: Item) -> str:
    """Paragraph documents are named `{set}-{article}-{paragraph}`."""
    return item.doc_id.rsplit("-", 1)[0]


def topic_switch(service: RagService, items: list[Item], pairs: int, seed: int) -> dict:
    """Questions asked alone and after a question about another article: the same answers?"""
    rng = random.Random(seed)
    answerable = [i for i in items if i.answers]
    asked = rng.sample(answerable, min(pairs, len(answerable)))
    right = {"alone": [], "after_another_article": []}
    for item in tqdm(asked, desc="topic switches"):
        previous = rng.choice([i for i in items if article_of(i) != article_of(item)])
        history = [Turn("user", previous.question), Turn("assistant", "…")]
        for key, turns in (("alone", None), ("after_another_article", history)):
            result = service.ask(item.question, history=turns)
            answer = result.answer if result.answerable else None
            right[key].append(answer is not None and is_right(answer, item.answers))
    return {"questions": len(asked), **{k: round(float(np.mean(v)), 4) for k, v in right.items()}}


def follow_ups(service: RagService, items: list[Item], pairs: int, seed: int) -> dict:
    """Follow-ups as people type them: a question with a name made a pronoun ("How many
    touchdowns did it have?"), asked after an earlier question about the same article that
    names it. How often it is answered right (or, without an answer in the articles, declined)
    with the name, with the pronoun alone, and with the pronoun after the earlier question."""
    rng = random.Random(seed)
    by_article: dict[str, list[Item]] = {}
    for item in items:
        by_article.setdefault(article_of(item), []).append(item)
    right: dict[str, list[bool]] = {"named": [], "pronoun_alone": [], "pronoun_after_question": []}
    answerable, examples = [], []
    progress = tqdm(total=pairs, desc="follow-ups")
    for item in rng.sample(items, k=len(items)):
        names = referable_names(item.question)
        name = rng.choice(names) if names else None
        earlier = name and [
            i
            for i in by_article[article_of(item)]
            if i.id != item.id and name.group() in i.question
        ]
        if not earlier:
            continue
        first = rng.choice(earlier)
        vague = with_pronoun(item.question, name, rng)
        history = [Turn("user", first.question), Turn("assistant", "…")]
        for key, question, turns in (
            ("named", item.question, None),
            ("pronoun_alone", vague, None),
            ("pronoun_after_question", vague, history),
        ):
            result = service.ask(question, history=turns)
            if item.answers:
                right[key].append(result.answerable and is_right(result.answer, item.answers))
            else:
                right[key].append(not result.answerable)
        answerable.append(bool(item.answers))
        progress.update()
        if len(examples) < 5:
            examples.append({"earlier": first.question, "follow_up": vague})
        if len(answerable) == pairs:
            break
    progress.close()
    has_answer = np.array(answerable)
    summary: dict = {"questions": len(answerable), "with_an_answer": int(has_answer.sum())}
    for key, values in right.items():
        values = np.array(values)
        summary[key] = round(float(values.mean()), 4)
        if not has_answer.all():
            summary[f"{key}_with_answer"] = round(float(values[has_answer].mean()), 4)
            summary[f"{key}_without_answer"] = round(float(values[~has_answer].mean()), 4)
    return {**summary, "examples": examples}


def reliability(confidence: np.ndarray, right: np.ndarray) -> list[dict]:
    """Answers grouped by stated confidence: how many, and how many were right."""
    table = []
    for low, high in itertools.pairwise(BINS):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if inside.any():
            table.append(
                {
                    "confidence": f"{low:.1f}-{high:.1f}",
                    "answers": int(inside.sum()),
                    "mean_confidence": round(float(confidence[inside].mean()), 3),
                    "right": round(float(right[inside].mean()), 3),
                }
            )
    at_least = confidence >= 0.9
    table.append(
        {
            "confidence": ">=0.9",
            "answers": int(at_least.sum()),
            "right": round(float(right[at_least].mean()), 3) if at_least.any() else None,
        }
    )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    parser.add_argument(
        "--squad2", type=Path, default=Path("../shared/data/squad-v2.0/dev-v2.0.json")
    )
    parser.add_argument("--sample", type=int, default=0, help="questions per set (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", choices=["v1.1", "v2.0"], default=["v1.1", "v2.0"])
    parser.add_argument(
        "--pairs", type=int, default=300, help="topic-switch and follow-up question pairs"
    )
    parser.add_argument("--passages", type=int, help="passages read (default: the service's)")
    parser.add_argument(
        "--window-chars", type=int, help="characters read around a passage's best sentence"
    )
    parser.add_argument(
        "--stop-confidence",
        type=float,
        help="how sure the first passage's answer must be to "
        "read no other (default: the service's)",
    )
    parser.add_argument(
        "--reader-dir", type=Path, help="a reader model folder to score (default: the committed)"
    )
    args = parser.parse_args(argv)
    for path in (args.squad, args.squad2):
        if not path.is_file():
            sys.exit(f"no SQuAD file at {path}: pass --squad/--squad2 PATH")
    reader_dir = args.reader_dir or MODEL_DIR
    payload: dict = {"reader": json.loads((reader_dir / "reader.json").read_text())}
    shipped = payload["reader"]["calibration"]["threshold"]
    sets = {
        "v1.1": ("squad-v1.1-dev", args.squad, 0.0),  # every question answerable: always answer
        "v2.0": ("squad-v2.0-dev", args.squad2, None),  # answer or abstain as shipped
    }
    for name, path, threshold in (sets[key] for key in args.sets):
        documents, items = load(path, name.split("-dev")[0])
        chosen = sample(items, args.sample, seed=args.seed)  # same Item type: sample works as-is
        extra = {} if threshold is None else {"answer_threshold": threshold}
        if args.passages:
            extra["reader_passages"] = args.passages
        if args.window_chars is not None:
            extra["reader_window_chars"] = args.window_chars
        if args.stop_confidence is not None:
            extra["reader_stop_confidence"] = args.stop_confidence
        service = project_service(name, documents, args.reader_dir, **extra)
        payload[name] = {
            "answer_threshold": service.current().answerer.threshold,
            "reader_passages": service.settings.reader_passages,
            "reader_window_chars": service.settings.reader_window_chars,
            "reader_stop_confidence": service.settings.reader_stop_confidence,
            "whole_corpus": run(service, chosen, False, f"{name} corpus", shipped),
            "gold_paragraph": run(service, chosen, True, f"{name} gold", shipped),
            "documents": len(documents),
        }
        if threshold is None:  # as shipped: abstaining counts as a wrong answer here
            payload[name]["topic_switch"] = topic_switch(service, items, args.pairs, args.seed)
        if args.pairs:
            payload[name]["follow_ups"] = follow_ups(service, items, args.pairs, args.seed)
        for where in ("whole_corpus", "gold_paragraph"):
            result = payload[name][where]
            scored = f"EM {result['exact_match']} F1 {result['f1']}"
            print(f"{name} {where}: {scored} answered {result['answered']}")
            if threshold is not None:
                print(f"  at the shipped threshold: {result['at_shipped_threshold']}")
    suffix = f"-sample{args.sample}" if args.sample else ""
    print(f"saved {save_results('reader' + suffix, 'bench.reader', payload)}")


if __name__ == "__main__":
    main()
