"""Should a question that wants an explanation (why, how, describe) be answered with the
reader's short span or with the whole sentence that holds it? Measured on SQuAD v1.1 dev.

    python -m bench.answer_form [--squad ../shared/data/squad-v1.1/dev-v1.1.json]

Every such question of the set is asked (always answered: threshold 0), once over the whole
corpus and once with its gold paragraph; the span and the cited sentence(s) holding it are each
scored against the gold answers: SQuAD's EM and F1, and how often the text holds a gold answer.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from bench.common import project_service, save_results
from bench.reader import Item, ask_all, load
from rag.query.normalize import contains_any, squad_scores
from rag.service import RagService

KINDS = {
    "why": re.compile(r"\bwhy\b|\bwhat (was|is|were|are) the (reason|cause|purpose)\b", re.I),
    "how": re.compile(r"\bhow\b|^\s*(describe|explain)\b|\bin what (way|manner)\b", re.I),
}
# "how" asking for a quantity ("how many", "how long" ...) wants a short answer anyway
QUANTITY = re.compile(
    r"\bhow (many|much|long|far|old|big|large|tall|high|often|fast|soon|early|late|wide|deep)\b",
    re.I,
)


def kind_of(question: str) -> str | None:
    kind = next((kind for kind, cue in KINDS.items() if cue.search(question)), None)
    return None if kind == "how" and QUANTITY.search(question) else kind


def measure(service: RagService, items: list[Item], gold_paragraph: bool) -> dict:
    forms: dict[str, list[tuple[float, float, bool, int]]] = {"span": [], "sentence": []}
    label = "gold paragraph" if gold_paragraph else "whole corpus"
    results, _ = ask_all(service, items, gold_paragraph, label)
    for item, result in zip(items, results, strict=True):
        span = result.answer or ""
        sentence = " ".join(c.quote for c in result.citations if c.quote) or span
        for form, text in (("span", span), ("sentence", sentence)):
            exact, f1 = squad_scores(text, item.answers)
            forms[form].append((exact, f1, contains_any(text, item.answers), len(text.split())))
    summary = {}
    for form, rows in forms.items():
        exact, f1, holds, words = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
        summary[form] = {
            "exact_match": round(float(exact.mean()), 4),
            "f1": round(float(f1.mean()), 4),
            "holds_gold_answer": round(float(holds.mean()), 4),
            "mean_words": round(float(words.mean()), 1),
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    args = parser.parse_args(argv)
    if not args.squad.is_file():
        sys.exit(f"no SQuAD file at {args.squad}: pass --squad PATH")
    documents, items = load(args.squad, "squad-v1.1")
    service = project_service("squad-v1.1-dev", documents, answer_threshold=0.0)
    payload: dict = {}
    for kind in KINDS:
        chosen = [item for item in items if kind_of(item.question) == kind]
        gold_words = np.mean([len(item.answers[0].split()) for item in chosen])
        payload[kind] = {
            "questions": len(chosen),
            "gold_answer_mean_words": round(float(gold_words), 1),
            "whole_corpus": measure(service, chosen, gold_paragraph=False),
            "gold_paragraph": measure(service, chosen, gold_paragraph=True),
        }
        for where in ("whole_corpus", "gold_paragraph"):
            forms = payload[kind][where]
            print(
                f"{kind} ({len(chosen)}) {where}: "
                + "; ".join(
                    f"{form} EM {s['exact_match']} F1 {s['f1']} holds {s['holds_gold_answer']}"
                    for form, s in forms.items()
                )
            )
    print(f"saved {save_results('answer-form', 'bench.answer_form', payload)}")


if __name__ == "__main__":
    main()
