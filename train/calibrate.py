"""Fit the answer confidence: P(the answer is right | reader and retrieval signals).

    python -m train.calibrate --data ../shared/data/squad-v1.1/train-v1.1.json

Uses only the SQuAD train articles the reader never trained on (train.reader.HOLDOUT_EVERY).
Half of them are indexed; their questions are asked as they are, with a name or number swapped
for one the articles never mention, and with an antonym or a negation put in (SQuAD 2.0's
recipes for unanswerable questions); the other half's questions have no answer in the index.
`--answer-removed-questions N` also asks N of those of their own paragraph with the sentences
that answer them taken out (tried; the shipped calibration does not: see the README).
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
from rag.query.normalize import RIGHT_F1, is_right
from rag.query.pipeline import Query
from rag.service import RagService
from train.reader import (
    NUMBER,
    PROPER,
    answer_span,
    edit_meaning,
    edit_question,
    split_articles,
    without_answer,
)


def questions_of(articles: list[dict]) -> list[tuple[str, list[str]]]:
    return [
        (qa["question"], [a["text"] for a in qa["answers"]])
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa["question"].strip()
    ]


def edited_questions(
    articles: list[dict], edit: Callable[[str, str], str | None]
) -> list[tuple[str, list[str]]]:
    """Questions `edit` turned into ones their paragraph no longer answers."""
    edited = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["question"].strip():
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
    """Signals and right/wrong labels of every candidate span, and whose question it is
    (numbered from `first_owner`); `only_documents` restricts each question to one document."""
    answerer: ExtractiveAnswerer = service.current().answerer
    index = service.current().index
    rows, labels, owners = [], [], []
    for n, (question, answers) in enumerate(tqdm(asked, desc="candidates"), first_owner):
        query = Query(
            question, doc_ids=(only_documents[n - first_owner],) if only_documents else None
        )
        depth = service.settings.reader_passages
        retrieval, _ = service.pipeline.retrieve(service.current(), query, depth)
        for candidate in answerer.candidates(retrieval):
            text = index.chunk_document(candidate.chunk).text
            predicted = text[candidate.start : candidate.end]
            right = is_right(predicted, answers)
            rows.append([candidate.signals[name] for name in FEATURES])
            labels.append(int(right))
            owners.append(n)
    return np.array(rows), np.array(labels), np.array(owners)


def best_threshold(
    probability: np.ndarray, labels: np.ndarray, owners: np.ndarray, answerable: np.ndarray
) -> tuple[float, float]:
    """The cut on the surest candidate's confidence that is right most often, on average over
    answerable questions (answered right) and unanswerable ones (abstained)."""
    best = np.zeros(len(answerable))
    right = np.zeros(len(answerable), dtype=bool)
    for p, label, owner in zip(probability, labels, owners, strict=True):
        if p > best[owner]:
            best[owner], right[owner] = p, bool(label)

    def balanced(cut: float) -> float:
        answered = best >= cut
        return 0.5 * float((answered & right)[answerable].mean()) + 0.5 * float(
            (~answered)[~answerable].mean()
        )

    cuts = np.round(np.arange(0.05, 0.951, 0.01), 2)
    chosen = max(cuts, key=balanced)
    return float(chosen), round(balanced(chosen), 4)


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
        "entity_swapped": some(edited_questions(indexed, entity_swap(indexed, rng))),
        "antonym_or_negation": some(
            edited_questions(indexed, lambda q, c: edit_meaning(q, c, rng))
        ),
        "out_of_corpus": some(questions_of(absent)),
    }
    asked = [q for items in kinds.values() for q in items]
    features, labels, owners = collect(service, asked)
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
        features, labels, owners = (
            np.concatenate(pair) for pair in zip((features, labels, owners), more, strict=True)
        )
    model = LogisticRegression(C=1.0, max_iter=2000).fit(features, labels)
    probability = model.predict_proba(features)[:, 1]
    answerable = np.array([bool(answers) for _, answers in asked])
    threshold, balanced = best_threshold(probability, labels, owners, answerable)
    calibration = {
        "threshold": threshold,
        "threshold_means": "maximises right answers and right abstentions, answerable and "
        "unanswerable questions weighted equally (as in SQuAD 2.0)",
        "balanced_accuracy_at_threshold": balanced,
        "bias": round(float(model.intercept_[0]), 5),
        "weights": {
            name: round(float(w), 5) for name, w in zip(FEATURES, model.coef_[0], strict=True)
        },
        "right_means": f"token F1 >= {RIGHT_F1} with a gold answer (SQuAD normalisation)",
        "fitted_on": {
            "data": "SQuAD v1.1 train, held-out articles (never trained on)",
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
