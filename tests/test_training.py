"""Training the reader on SQuAD 2.0: its unanswerable questions, the weights carried back from a
GPU box, the held-out scoring, the calibration's cut, and answers completed for news readers."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rag.query.answer import whole_answer
from train.calibrate import best_threshold
from train.evaluate import Item, Prediction, best_cut, score
from train.reader import Config, build_examples

ARTICLE = {
    "title": "Rotterdam",
    "paragraphs": [
        {
            "context": "The port of Rotterdam handled 438 million tonnes in 2022.",
            "qas": [
                {
                    "question": "How much did the port handle in 2022?",
                    "answers": [{"text": "438 million tonnes", "answer_start": 30}],
                    "is_impossible": False,
                },
                {
                    "question": "How much did the port handle in 1990?",
                    "answers": [],
                    "is_impossible": True,
                },
            ],
        }
    ],
}


def test_squad2_unanswerable_questions_are_trained_as_no_answer() -> None:
    cfg = Config(data="", out="", other_paragraph_negatives=0.0)
    examples = build_examples([ARTICLE], cfg, random.Random(0))
    by_question = {e["q"]: e["span"] for e in examples}
    assert by_question["How much did the port handle in 1990?"] is None
    start, end = by_question["How much did the port handle in 2022?"]
    assert ARTICLE["paragraphs"][0]["context"][start:end] == "438 million tonnes"


def test_held_out_scores_are_squad2_f1_at_a_margin_cut() -> None:
    items = [Item("q1", "c", ["438 million tonnes"]), Item("q2", "c", [])]
    predictions = [Prediction("438 million", 2.0), Prediction("1990", 0.5)]
    # at cut 1 the first is answered (F1 0.8) and the second abstained (right): 0.9
    assert score(items, predictions, 1.0)["f1"] == pytest.approx(0.9)
    assert score(items, predictions, 0.0)["f1"] == pytest.approx(0.4)  # both answered
    assert score(items, predictions, 3.0)["f1"] == pytest.approx(0.5)  # both abstained
    assert 0.5 <= best_cut(items, predictions) < 2.0


def test_the_calibrated_cut_weighs_answerable_questions_against_every_other_kind() -> None:
    kinds = ["in_corpus", "in_corpus", "unanswerable", "out_of_corpus"]
    # one candidate per question: its confidence and its F1 with a gold answer
    probability = np.array([0.8, 0.3, 0.5, 0.2])
    f1 = np.array([1.0, 0.4, 0.0, 0.0])
    cut, figures = best_threshold(probability, f1, np.arange(4), kinds)
    assert 0.5 < cut <= 0.8  # answers the surest, abstains on both others
    assert figures["answerable_answered"] == 0.5 and figures["answerable_f1"] == 0.5
    assert figures["unanswerable_abstained"] == 1.0
    assert figures["out_of_corpus_abstained"] == 1.0
    assert figures["objective"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "span,expected",
    [
        ("April 29", "April 29, 2015"),
        ("15", "15%"),
        ("12", "12 percent"),
        ("3.5 billion", "$3.5 billion"),
        ("Friday", "Friday"),  # nothing to complete
        ("2015", "2015"),
    ],
)
def test_an_answer_keeps_the_year_of_its_date_and_the_unit_of_its_figure(span, expected) -> None:
    text = (
        "Shares rose 15% on Friday, 12 percent since it opened on April 29, 2015 for $3.5 billion"
    )
    start = text.index(span)
    begin, end = whole_answer(text, start, start + len(span))
    assert text[begin:end] == expected


def test_weights_carried_from_a_gpu_box_give_the_same_reader(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from rag.models.embeddings import resolve_model
    from train.weights import pack, unpack

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    trained = BertForQuestionAnswering(config).eval()
    trained.save_pretrained(tmp_path / "run" / "final")
    (tmp_path / "run" / "summary.json").write_text('{"steps": 1}')
    parts = pack(tmp_path / "run", tmp_path / "packed")
    assert parts and all(p.stat().st_size <= 15 << 20 for p in parts)
    final = unpack(tmp_path / "packed", tmp_path / "back", Path(resolve_model("all-MiniLM-L6-v2")))
    assert (tmp_path / "back" / "summary.json").read_text() == '{"steps": 1}'
    carried = BertForQuestionAnswering.from_pretrained(final).eval()
    ids = torch.tensor([[101, 2054, 102, 3000, 3001, 102]])
    with torch.no_grad():
        before, after = trained(input_ids=ids), carried(input_ids=ids)
    assert torch.allclose(before.start_logits, after.start_logits, atol=1e-2)  # fp16 on the way
