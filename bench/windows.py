"""How often the reader's window holds the answer: SQuAD v1.1 dev questions against their gold
passage, for each window size, with the window's first sentence picked by its cosine with the
question alone and by the cosine plus the share of the question's terms it holds (the service's).

    python -m bench.windows --squad ../shared/data/squad-v1.1/dev-v1.1.json [--sample 1000]

No reader runs here: this measures what a window can hold, not what the reader finds in it
(`python -m bench.reader --window-chars N` does that).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.common import project_service, sample, save_results
from bench.reader import load
from rag.config import ReaderSettings
from rag.index.lexical import query_terms
from rag.query.answer import ExtractiveAnswerer
from rag.query.retrieval import Retrieval
from train.reader import answer_span

SIZES = (300, 400, 500, 600, 800)


def gold_spans(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Each question's answer offsets in its paragraph."""
    spans = {}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                found = (answer_span(paragraph["context"], a) for a in qa["answers"])
                spans[qa["id"]] = [span for span in found if span]
    return spans


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--squad", type=Path, default=Path("../shared/data/squad-v1.1/dev-v1.1.json")
    )
    parser.add_argument("--sample", type=int, default=1000, help="questions (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.squad.is_file():
        sys.exit(f"no SQuAD file at {args.squad}: pass --squad PATH")
    documents, items = load(args.squad, "squad-v1.1")  # bench.reader's index, cached
    spans = gold_spans(args.squad)
    service = project_service("squad-v1.1-dev", documents)
    snapshot = service.current()
    index = snapshot.index
    answerers = {
        size: ExtractiveAnswerer(index, snapshot.answerer.reader, ReaderSettings(window_chars=size))
        for size in SIZES
    }
    held = {(size, how): [] for size in SIZES for how in ("cosine", "cosine_and_terms")}
    chars = {size: [] for size in SIZES}
    whole = []
    for item in tqdm(sample(items, args.sample, seed=args.seed), desc="windows"):
        passages = [(int(c), *index.chunk_span(int(c))) for c in index.chunks_of([item.doc_id])]
        holding = [
            chunk
            for chunk, start, end in passages
            if any(start <= a and b <= end for a, b in spans[item.id])
        ]
        whole.append(bool(holding))
        if not holding:
            continue
        vector = service.embedder.encode([item.question])[0]
        with_terms = Retrieval(item.question, vector, query_terms(item.question), [])
        for size, answerer in answerers.items():
            for how, retrieval in (
                ("cosine", replace(with_terms, terms=())),
                ("cosine_and_terms", with_terms),
            ):
                lo, hi = answerer.reading_window(holding[0], retrieval)
                held[size, how].append(any(lo <= a and b <= hi for a, b in spans[item.id]))
                if how == "cosine_and_terms":
                    chars[size].append(hi - lo)
    payload = {
        "questions": len(whole),
        "answer_in_one_passage": round(float(np.mean(whole)), 4),
        "windows": {
            str(size): {
                "answer_inside_cosine": round(float(np.mean(held[size, "cosine"])), 4),
                "answer_inside_cosine_and_terms": round(
                    float(np.mean(held[size, "cosine_and_terms"])), 4
                ),
                "mean_chars": round(float(np.mean(chars[size])), 1),
            }
            for size in SIZES
        },
    }
    print(json.dumps(payload, indent=2))
    print(f"saved {save_results('reader-windows', 'bench.windows', payload)}")


if __name__ == "__main__":
    main()
