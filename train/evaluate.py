"""How a trained reader does with each question read against its own paragraph: SQuAD 2.0's
official exact match and F1, answering when the reader's margin (best span over no-answer)
clears a cut.

    python -m train.evaluate --trained build/reader/final \
        --data ../shared/data/squad-v2.0/dev-v2.0.json [--cut X]

This scores the network alone, before int8 export and calibration, to compare training recipes
(`bench.reader` scores what the service answers). The cut defaults to the one that scored best
on the held-out train articles (summary.json of the run): a dev set is scored at it, never
fitted on.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.models.reader import Reading, best_span, keep_surest
from rag.models.reader_windows import WindowTokenizer, build_windows, pad, trained_windows
from rag.query.normalize import squad_scores


@dataclass(frozen=True)
class Item:
    question: str
    context: str
    answers: list[str]  # empty: the paragraph does not answer it


@dataclass(frozen=True)
class Prediction:
    text: str
    margin: float  # best span's logits over the no-answer logits


def squad_items(articles: list[dict]) -> list[Item]:
    return [
        Item(qa["question"], paragraph["context"], [a["text"] for a in qa["answers"]])
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa["question"].strip()
    ]


def predict(
    model, tokenizer: WindowTokenizer, items: list[Item], batch_size: int = 256
) -> list[Prediction]:
    """The best span of each item's paragraph (over its windows, by margin, as the service)."""
    import torch

    device = next(model.parameters()).device
    windows = build_windows(tokenizer, [i.question for i in items], [i.context for i in items])
    order = sorted(range(len(windows.input_ids)), key=lambda w: len(windows.input_ids[w]))
    best: dict[int, Reading] = {}
    model.eval()
    for begin in range(0, len(order), batch_size):
        chosen = order[begin : begin + batch_size]
        ids = torch.from_numpy(pad([windows.input_ids[w] for w in chosen])).to(device)
        types = torch.from_numpy(pad([windows.token_type_ids[w] for w in chosen])).to(device)
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
        ):
            output = model(input_ids=ids, attention_mask=(ids != 0).long(), token_type_ids=types)
        starts = output.start_logits.float().cpu().numpy()
        ends = output.end_logits.float().cpu().numpy()
        for row, w in enumerate(chosen):
            owner = windows.passage[w]
            keep_surest(best, best_span(starts[row], ends[row], windows.offsets[w], owner))
    return [
        Prediction(items[i].context[best[i].start : best[i].end], best[i].margin)
        if i in best
        else Prediction("", -1e9)
        for i in range(len(items))
    ]


def score(items: list[Item], predictions: list[Prediction], cut: float) -> dict:
    rows = [
        squad_scores(p.text if p.margin > cut else None, i.answers)
        for i, p in zip(items, predictions, strict=True)
    ]
    exact, f1 = (np.array(c) for c in zip(*rows, strict=True))
    has_answer = np.array([bool(i.answers) for i in items])
    result = {
        "questions": len(items),
        "cut": round(cut, 3),
        "exact_match": round(float(exact.mean()), 4),
        "f1": round(float(f1.mean()), 4),
    }
    if has_answer.any() and not has_answer.all():
        result["has_answer_f1"] = round(float(f1[has_answer].mean()), 4)
        result["no_answer_accuracy"] = round(float(f1[~has_answer].mean()), 4)
    return result


def best_cut(items: list[Item], predictions: list[Prediction]) -> float:
    """The margin cut with the best F1 (on the items given: fit it on held-out train only)."""
    margins = np.array([p.margin for p in predictions])
    cuts = np.unique(np.round(np.quantile(margins, np.linspace(0.02, 0.98, 97)), 2))
    return float(max(cuts, key=lambda c: score(items, predictions, float(c))["f1"]))


def load_model(trained: Path):
    import torch
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering.from_pretrained(trained, dtype=torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, default=Path("build/reader/final"))
    parser.add_argument("--data", type=Path, required=True, help="a SQuAD-layout JSON file")
    parser.add_argument("--cut", type=float, help="default: the run's held-out cut")
    args = parser.parse_args()
    summary = json.loads((args.trained.parent / "summary.json").read_text())
    cut = summary["held_out"]["cut"] if args.cut is None else args.cut
    items = squad_items(json.loads(args.data.read_text())["data"])
    tokenizer = trained_windows(args.trained / "tokenizer.json", summary["config"])
    print(json.dumps(score(items, predict(load_model(args.trained), tokenizer, items), cut)))


if __name__ == "__main__":
    main()
