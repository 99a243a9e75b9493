"""What another answer threshold (`RAG_ANSWER_THRESHOLD`) would trade on SQuAD v2.0 dev.

    python -m bench.thresholds [--squad2 ../shared/data/squad-v2.0/dev-v2.0.json] [--sample N]

Every question is answered once with the threshold at 0 and its confidence kept; a threshold
t then answers exactly those with confidence >= t (the surest span and the passages read do
not depend on t), so one pass scores every cut. For the operator choosing a cut; the shipped
one is fitted by `train.calibrate` on SQuAD train, never on this set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.common import project_service, sample, save_results
from bench.reader import Item, ask_all, given, load
from rag.query.normalize import squad_scores
from rag.types import AskResult

CUTS = (0.1, 0.2, 0.28, 0.32, 0.41, 0.45, 0.55, 0.65)


def sweep(items: list[Item], results: list[AskResult], cuts: tuple[float, ...]) -> list[dict]:
    """SQuAD 2.0's official scores at each cut, from answers given at threshold 0."""
    confidence = np.array([r.confidence for r in results])
    has_answer = np.array([bool(item.answers) for item in items])
    if_answered = np.array(
        [squad_scores(given(r), item.answers) for item, r in zip(items, results, strict=True)]
    )
    if_abstained = np.array([squad_scores(None, item.answers) for item in items])
    table = []
    for cut in cuts:
        answered = confidence >= cut
        exact, f1 = np.where(answered[:, None], if_answered, if_abstained).T
        table.append(
            {
                "threshold": cut,
                "answered": round(float(answered.mean()), 4),
                "exact_match": round(float(exact.mean()), 4),
                "f1": round(float(f1.mean()), 4),
                "has_answer_f1": round(float(f1[has_answer].mean()), 4),
                "no_answer_f1": round(float(f1[~has_answer].mean()), 4),
            }
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad2", type=Path, default=Path("../shared/data/squad-v2.0/dev-v2.0.json")
    )
    parser.add_argument("--sample", type=int, default=0, help="questions (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cuts", type=float, nargs="+", default=list(CUTS))
    args = parser.parse_args(argv)
    if not args.squad2.is_file():
        sys.exit(f"no SQuAD 2.0 file at {args.squad2}: pass --squad2 PATH")
    documents, items = load(args.squad2, "squad-v2.0")
    chosen = sample(items, args.sample, seed=args.seed)
    service = project_service("squad-v2.0-dev", documents, answer_threshold=0.0)
    shipped = service.current().answerer.calibration.threshold
    payload: dict = {"questions": len(chosen), "shipped_threshold": shipped}
    for where, gold in (("whole_corpus", False), ("gold_paragraph", True)):
        results, _ = ask_all(service, chosen, gold, where)
        payload[where] = sweep(chosen, results, tuple(args.cuts))
        for row in payload[where]:
            print(where, row)
    suffix = f"-sample{args.sample}" if args.sample else ""
    print(f"saved {save_results('thresholds' + suffix, 'bench.thresholds', payload)}")


if __name__ == "__main__":
    main()
