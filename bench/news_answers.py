"""Answers a reader of news can use, on SQuAD v2.0 dev's answerable questions, each asked of its
gold paragraph at the shipped threshold.

    python -m bench.news_answers [--squad2 ../shared/data/squad-v2.0/dev-v2.0.json]
        [--reader-dir DIR] [--out NAME]

- another year: a question naming a year its paragraph mentions, with that year changed to
  one the paragraph never mentions ("in 1998" for "in 2001"). Right: abstaining.
- another name: a name of the question swapped for another name of the same paragraph that the
  answer's sentence never mentions (a person or place the passage names, but not the one asked
  about). Right: abstaining.
- whole answers: questions whose gold answer is a date with its year, a name of two or more
  words, or a figure with its unit. How often the answer holds a whole gold answer, and how
  often it is cut short (a strict part of one: "April 29" for "April 29, 2015").

`--reader-dir` scores another reader model (the one before a retraining, say) the same way.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

from bench.common import project_service, save_results
from bench.reader import Item, ask_all, given, load
from rag.query.normalize import contains_any, normalize
from train.reader import answer_span, swap_within

YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
UNIT = re.compile(
    r"[$£€%]|\b(percent|per cent|million|billion|trillion|thousand|hundred|km|kilometres|"
    r"kilometers|miles|metres|meters|feet|kg|tons|tonnes|pounds|dollars|euros|years|days|"
    r"hours|minutes|people|acres|square)\b",
    re.I,
)
FULL_NAME = re.compile(r"^[A-Z][\w.'-]+(?: (?:[A-Z][\w.'-]+|de|van|von|of|the|al))* [A-Z][\w.'-]+$")


def another_year(question: str, context: str, rng: random.Random) -> str | None:
    """The question with a year its paragraph mentions moved to one the paragraph never does."""
    years = [m for m in YEAR.finditer(question) if m.group() in context]
    if not years:
        return None
    match = rng.choice(years)
    moves = [d for d in (-3, -2, -1, 1, 2, 3) if str(int(match.group()) + d) not in context]
    if not moves:
        return None
    moved = str(int(match.group()) + rng.choice(moves))
    return question[: match.start()] + moved + question[match.end() :]


def answer_form(answer: str) -> str | None:
    """Which kind of whole answer a gold answer is, if one of those measured."""
    if MONTH.search(answer) and YEAR.search(answer):
        return "date_with_year"
    if re.search(r"\d", answer) and UNIT.search(answer):
        return "figure_with_unit"
    if FULL_NAME.match(answer) and not re.search(r"\d", answer):
        return "full_name"
    return None


def edited_items(path: Path, rng: random.Random) -> dict[str, list[Item]]:
    """The two sets of questions made unanswerable by an edit, from answerable dev questions."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    edited: dict[str, list[Item]] = {"another_year": [], "another_name": []}
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            context, doc_id = paragraph["context"], f"squad-v2.0-{a}-{p}"
            for qa in paragraph["qas"]:
                if not qa["answers"]:
                    continue
                span = answer_span(context, qa["answers"][0])
                year = another_year(qa["question"], context, rng)
                name = span and swap_within(qa["question"], context, span, rng)
                if year:
                    edited["another_year"].append(Item(qa["id"] + "-year", year, [], doc_id))
                if name:
                    edited["another_name"].append(Item(qa["id"] + "-name", name, [], doc_id))
    return edited


def abstentions(service, items: list[Item], label: str) -> dict:
    results, _ = ask_all(service, items, gold_paragraph=True, label=label)
    abstained = np.array([given(r) is None for r in results])
    examples = [
        {"question": item.question, "answer": r.answer, "confidence": round(r.confidence, 3)}
        for item, r in zip(items, results, strict=True)
        if given(r) is not None
    ][:5]
    return {
        "questions": len(items),
        "abstained": round(float(abstained.mean()), 4),
        "answered_anyway": examples,
    }


def whole_answers(service, items: list[Item], label: str) -> dict:
    results, _ = ask_all(service, items, gold_paragraph=True, label=label)
    answered, whole, short = [], [], []
    for item, result in zip(items, results, strict=True):
        text = given(result)
        answered.append(text is not None)
        whole.append(text is not None and contains_any(text, item.answers))
        short.append(
            text is not None
            and not whole[-1]
            and any(normalize(text) in normalize(a) for a in item.answers)
        )
    answered_ = np.array(answered)
    return {
        "questions": len(items),
        "answered": round(float(answered_.mean()), 4),
        "whole_of_answered": round(float(np.array(whole)[answered_].mean()), 4),
        "cut_short_of_answered": round(float(np.array(short)[answered_].mean()), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad2", type=Path, default=Path("../shared/data/squad-v2.0/dev-v2.0.json")
    )
    parser.add_argument("--reader-dir", type=Path, help="default: the committed reader")
    parser.add_argument("--per-set", type=int, default=500, help="questions per set (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="news-answers", help="results file name")
    args = parser.parse_args(argv)
    if not args.squad2.is_file():
        sys.exit(f"no SQuAD v2.0 file at {args.squad2}: pass --squad2 PATH")
    rng = random.Random(args.seed)
    documents, items = load(args.squad2, "squad-v2.0")
    service = project_service("squad-v2.0-dev", documents, args.reader_dir)

    def some(chosen: list[Item]) -> list[Item]:
        n = args.per_set
        return chosen if not n or n >= len(chosen) else rng.sample(chosen, n)

    payload: dict = {"reader_dir": str(args.reader_dir or "committed")}
    for kind, edited in edited_items(args.squad2, rng).items():
        payload[kind] = abstentions(service, some(edited), kind)
        print(f"{kind}: abstained {payload[kind]['abstained']} of {payload[kind]['questions']}")
    forms: dict[str, list[Item]] = {}
    for item in items:
        kind = item.answers and answer_form(item.answers[0])
        if kind:
            forms.setdefault(kind, []).append(item)
    for kind, chosen in sorted(forms.items()):
        payload[kind] = whole_answers(service, some(chosen), kind)
        print(f"{kind}: {payload[kind]}")
    print(f"saved {save_results(args.out, 'bench.news_answers', payload)}")


if __name__ == "__main__":
    main()
