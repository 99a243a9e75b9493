"""SQuAD's answer normalisation and token F1: how answers are compared everywhere (evaluation,
benchmarks, calibration, and a generated answer against the reader's span)."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable

PUNCTUATION = set(string.punctuation)


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_any(text: str, answers: Iterable[str]) -> bool:
    haystack = normalize(text)
    return any(normalize(a) and normalize(a) in haystack for a in answers)


# An answer counts as right when its token F1 with a gold answer reaches this: the meaning of
# "right" in the confidence the service reports, and in the reliability tables.
RIGHT_F1 = 0.5


def is_right(predicted: str, answers: Iterable[str]) -> bool:
    return max((token_f1(predicted, a) for a in answers), default=0.0) >= RIGHT_F1


def squad_scores(predicted: str | None, answers: list[str]) -> tuple[float, float]:
    """SQuAD v2.0's official EM and F1 of one answer (None: abstained); no answer is right
    exactly when none is expected."""
    if not answers:
        return (1.0, 1.0) if predicted is None else (0.0, 0.0)
    if predicted is None:
        return 0.0, 0.0
    exact = float(any(normalize(predicted) == normalize(a) for a in answers))
    return exact, max(token_f1(predicted, a) for a in answers)
