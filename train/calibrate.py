"""Fit the answer confidence: P(the answer is right | reader and retrieval signals).

    python -m train.calibrate --data ../shared/data/squad-v2.0/train-v2.0.json

Uses only the SQuAD 2.0 train articles the reader never trained on (train.reader.HOLDOUT_EVERY).
Half of them are indexed; their questions are asked as they are: the answerable ones, the
human-written unanswerable ones (on topic, and not answered by their paragraph), and answerable
ones with a name or number swapped for one the articles never mention; the other half's
questions have no answer in the index. `--answer-removed-questions N` also asks N of those of
their own paragraph with the sentences that answer them taken out (tried; the shipped
calibration does not: see the README).
Every candidate span the service considers is labelled right (token F1 >= RIGHT_F1 with a gold
answer) or wrong, and a logistic model is fitted on them. The weights go into the reader's
reader.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from rag.config import Settings
from rag.ingest.documents import make_document
from rag.models.reader import MODEL_DIR, Reader
from rag.query.answer import FEATURES, ExtractiveAnswerer
from rag.query.normalize import RIGHT_F1, token_f1
from rag.query.pipeline import Query
from rag.service import RagService
from train.reader import (
    NUMBER,
    PROPER,
    answer_span,
    edit_question,
    split_articles,
    without_answer,
)

ANSWERABLE = "in_corpus"  # the kind of question the index holds an answer to


def questions_of(articles: list[dict], answerable: bool = True) -> list[tuple[str, list[str]]]:
    """The answerable questions (or SQuAD 2.0's unanswerable ones) with their gold answers."""
    return [
        (qa["question"], [a["text"] for a in qa["answers"]])
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa["question"].strip() and bool(qa["answers"]) == answerable
    ]


def edited_questions(
    articles: list[dict], edit: Callable[[str, str], str | None]
) -> list[tuple[str, list[str]]]:
    """Questions `edit` turned into ones their paragraph no longer answers."""
    edited = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["question"].strip() and qa["answers"]:
                    changed = edit(qa["question"], paragraph["context"])
                    if changed:
                        edited.append((changed, []))
    return edited


def answer_removed(articles: list[dict]) -> list[tuple[str, str]]:
    """(question, its paragraph without the sentences that answer it) pairs."""
    pairs = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if not qa["answers"]:
                    continue
                answer = qa["answers"][0]
                span = answer_span(paragraph["context"], answer)
                rest = span and without_answer(paragraph["context"], span, answer["text"])
                if rest and qa["question"].strip():
                    pairs.append((qa["question"], rest))
    return pairs


def entity_swap(articles: list[dict], rng: random.Random) -> Callable[[str, str], str | None]:
    pool: dict[str, list[str]] = {"name": [], "number": []}
    for question, _ in questions_of(articles):
        pool["name"] += [m.group() for m in PROPER.finditer(question) if m.start()]
        pool["number"] += NUMBER.findall(question)
    return lambda question, context: edit_question(question, context, pool, rng)


def collect(
    service: RagService,
    asked: list[tuple[str, list[str]]],
    only_documents: list[str] | None = None,
    first_owner: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signals and token F1 (with the best gold answer) of every candidate span, and whose
    question it is (numbered from `first_owner`); `only_documents` restricts each question to
    one document."""
    answerer: ExtractiveAnswerer = service.current().answerer
    index = service.current().index
    rows, scores, owners = [], [], []
    for n, (question, answers) in enumerate(tqdm(asked, desc="candidates"), first_owner):
        query = Query(
            question, doc_ids=(only_documents[n - first_owner],) if only_documents else None
        )
        depth = service.settings.reader_passages
        retrieval, _ = service.pipeline.retrieve(service.current(), query, depth)
        for candidate in answerer.candidates(retrieval):
            text = index.chunk_document(candidate.chunk).text
            predicted = text[candidate.start : candidate.end]
            rows.append([candidate.signals[name] for name in FEATURES])
            scores.append(max((token_f1(predicted, a) for a in answers), default=0.0))
            owners.append(n)
    return np.array(rows), np.array(scores), np.array(owners)


def best_threshold(
    probability: np.ndarray, f1: np.ndarray, owners: np.ndarray, kinds: list[str]
) -> tuple[float, dict[str, float]]:
    """The cut on the surest candidate's confidence that scores best the SQuAD 2.0 way, with
    answerable questions (their answer's F1, 0 when abstaining) and the rest (1 when
    abstaining) weighted equally, and each kind of the rest weighted equally; and what it gives."""
    best = np.zeros(len(kinds))
    best_f1 = np.zeros(len(kinds))
    for p, score, owner in zip(probability, f1, owners, strict=True):
        if p > best[owner]:
            best[owner], best_f1[owner] = p, score
    kind = np.array(kinds)
    negatives = [k for k in dict.fromkeys(kinds) if k != ANSWERABLE]

    def figures(cut: float) -> dict[str, float]:
        answered = best >= cut
        mine = kind == ANSWERABLE
        result = {
            "answerable_answered": float(answered[mine].mean()),
            "answerable_f1": float(np.where(answered, best_f1, 0.0)[mine].mean()),
        }
        for k in negatives:
            result[f"{k}_abstained"] = float((~answered)[kind == k].mean())
        rest = np.mean([result[f"{k}_abstained"] for k in negatives])
        result["objective"] = 0.5 * result["answerable_f1"] + 0.5 * float(rest)
        return {name: round(value, 4) for name, value in result.items()}

    cuts = np.round(np.arange(0.05, 0.951, 0.01), 2)
    chosen = float(max(cuts, key=lambda cut: figures(cut)["objective"]))
    return chosen, figures(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--per-kind", type=int, default=1500, help="questions of each kind")
    parser.add_argument("--index-dir", type=Path, default=Path("build/calibration-index"))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--answer-removed-questions",
        type=int,
        default=0,
        help="questions asked of their paragraph without the sentences that answer them",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    _, held = split_articles(json.loads(args.data.read_text())["data"])
    indexed, absent = held[0::2], held[1::2]
    documents = [
        make_document(f"cal-{a}-{p}", paragraph["context"], title=article["title"])
        for a, article in enumerate(indexed)
        for p, paragraph in enumerate(article["paragraphs"])
    ]
    reader = Reader(args.model_dir, expected_sha256=None)
    reader.meta.setdefault("calibration", {"bias": 0.0, "weights": {}})  # not used to fit
    service = RagService(
        Settings(index_dir=args.index_dir, sources=[], answer_threshold=0.0), reader=reader
    )
    service.ingest(documents, progress=print)

    def some(items: list) -> list:
        return rng.sample(items, min(args.per_kind, len(items)))

    kinds = {
        "in_corpus": some(questions_of(indexed)),
        "unanswerable": some(questions_of(indexed, answerable=False)),
        "entity_swapped": some(edited_questions(indexed, entity_swap(indexed, rng))),
        "out_of_corpus": some(questions_of(absent)),
    }
    asked = [q for items in kinds.values() for q in items]
    features, f1, owners = collect(service, asked)
    if args.answer_removed_questions:
        removed = answer_removed(absent)
        removed = rng.sample(removed, min(args.answer_removed_questions, len(removed)))
        removed_documents = [
            make_document(f"removed-{n}", rest) for n, (_, rest) in enumerate(removed)
        ]
        index_dir = args.index_dir.with_name(args.index_dir.name + "-answer-removed")
        shutil.rmtree(index_dir, ignore_errors=True)  # its documents differ from run to run
        other = RagService(
            Settings(index_dir=index_dir, sources=[], answer_threshold=0.0), reader=reader
        )
        other.ingest(removed_documents, progress=print)
        kinds["answer_removed"] = [(question, []) for question, _ in removed]
        more = collect(
            other, kinds["answer_removed"], [d.doc_id for d in removed_documents], len(asked)
        )
        asked += kinds["answer_removed"]
        features, f1, owners = (
            np.concatenate(pair) for pair in zip((features, f1, owners), more, strict=True)
        )
    labels = (f1 >= RIGHT_F1).astype(int)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    probability = model.predict_proba(features)[:, 1]
    question_kinds = [kind for kind, items in kinds.items() for _ in items]
    threshold, at_threshold = best_threshold(probability, f1, owners, question_kinds)
    calibration = {
        "threshold": threshold,
        "threshold_means": "maximises SQuAD 2.0's F1 with answerable questions and the rest "
        "weighted equally, each kind of the rest (on-topic unanswerable, a name or number "
        "swapped, from another corpus) weighted equally",
        "at_threshold": at_threshold,
        "bias": round(float(model.intercept_[0]), 5),
        "weights": {
            name: round(float(w), 5) for name, w in zip(FEATURES, model.coef_[0], strict=True)
        },
        "right_means": f"token F1 >= {RIGHT_F1} with a gold answer (SQuAD normalisation)",
        "fitted_on": {
            "data": f"{args.data.name}, held-out articles (never trained on)",
            "indexed_articles": len(indexed),
            "indexed_paragraphs": len(documents),
            "questions": {kind: len(items) for kind, items in kinds.items()},
            "candidates": len(labels),
            "right_share": round(float(labels.mean()), 4),
        },
        "fit_brier": round(float(np.mean((probability - labels) ** 2)), 4),
    }
    meta_path = args.model_dir / "reader.json"
    meta = json.loads(meta_path.read_text())
    meta["calibration"] = calibration
    staging = meta_path.with_suffix(".tmp")
    staging.write_text(json.dumps(meta, indent=2) + "\n")
    staging.replace(meta_path)
    print(json.dumps(calibration, indent=2))


if __name__ == "__main__":
    main()
