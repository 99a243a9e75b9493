"""Question + passage windows for the reader: the one tokenisation that training and serving share,
so a span the model points at maps back to exact character offsets in the passage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Question tokens kept; the rest of a window is passage. Windows of 192 tokens hold a SQuAD
# paragraph or one of the index's 800-character chunks whole most of the time.
MAX_QUESTION_TOKENS = 48
MAX_WINDOW_TOKENS = 192
WINDOW_STRIDE = 64
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class Windows:
    """Token windows over (question, passage) pairs; `passage` says which pair each came from."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    offsets: list[list[tuple[int, int] | None]]  # passage character span per token, else None
    passage: list[int]


def build_windows(
    tokenizer,
    questions: list[str],
    passages: list[str],
    max_tokens: int = MAX_WINDOW_TOKENS,
    stride: int = WINDOW_STRIDE,
) -> Windows:
    """Split each passage into overlapping windows that each carry the (truncated) question."""
    short = {q: shorten(tokenizer, q) for q in set(questions)}  # one question, many passages
    questions = [short[q] for q in questions]
    encoded = tokenizer(
        questions,
        passages,
        truncation="only_second",
        max_length=max_tokens,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    offsets = []
    for i, mapping in enumerate(encoded["offset_mapping"]):
        sequence = encoded.sequence_ids(i)
        offsets.append(
            [tuple(span) if seq == 1 else None for span, seq in zip(mapping, sequence, strict=True)]
        )
    return Windows(
        input_ids=encoded["input_ids"],
        token_type_ids=encoded["token_type_ids"],
        offsets=offsets,
        passage=list(encoded["overflow_to_sample_mapping"]),
    )


def shorten(tokenizer, question: str) -> str:
    """The question cut after MAX_QUESTION_TOKENS tokens, so a window always has passage room."""
    offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    return (
        question
        if len(offsets) <= MAX_QUESTION_TOKENS
        else question[: offsets[MAX_QUESTION_TOKENS - 1][1]]
    )


def pad(rows: list[list[int]], multiple: int = 1) -> np.ndarray:
    """Zero-padded to the longest row, rounded up to `multiple` (fewer shapes to compile for)."""
    width = -(-max(len(r) for r in rows) // multiple) * multiple
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def token_span(
    offsets: list[tuple[int, int] | None], start_char: int, end_char: int
) -> tuple[int, int] | None:
    """The tokens that cover [start_char, end_char) if the window holds all of it."""
    tokens = [i for i, span in enumerate(offsets) if span is not None]
    if not tokens or offsets[tokens[0]][0] > start_char or offsets[tokens[-1]][1] < end_char:
        return None
    start = next(i for i in tokens if offsets[i][1] > start_char)
    end = next(i for i in reversed(tokens) if offsets[i][0] < end_char)
    return (start, end) if start <= end else None
