"""Question + passage windows for the reader: the one tokenisation that training and serving share,
so a span the model points at maps back to exact character offsets in the passage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Question tokens kept; the rest of a window is passage. A reader's own record sets its window
# (the shipped one: 256 tokens, which hold a SQuAD paragraph or one of the index's 800-character
# chunks whole nearly always); 192/64 are for readers whose record predates that setting.
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


class WindowTokenizer:
    """The encoder's word pieces from its tokenizer.json (the `tokenizers` library alone, no
    transformers import): pairs cut into overlapping windows, questions measured alone."""

    def __init__(
        self, path: Path, max_tokens: int = MAX_WINDOW_TOKENS, stride: int = WINDOW_STRIDE
    ) -> None:
        from tokenizers import Tokenizer

        self.plain = Tokenizer.from_file(str(path))
        self.plain.no_truncation()
        self.plain.no_padding()
        self.pairs = Tokenizer.from_file(str(path))
        self.pairs.no_padding()
        self.pairs.enable_truncation(max_tokens, stride=stride, strategy="only_second")

    def count(self, text: str) -> int:
        return len(self.plain.encode(text, add_special_tokens=False).ids)

    def shorten(self, question: str) -> str:
        """The question cut after MAX_QUESTION_TOKENS tokens, so a window has passage room."""
        offsets = self.plain.encode(question, add_special_tokens=False).offsets
        if len(offsets) <= MAX_QUESTION_TOKENS:
            return question
        return question[: offsets[MAX_QUESTION_TOKENS - 1][1]]


def trained_windows(tokenizer_json: Path, training_config: dict) -> WindowTokenizer:
    """Windows as long as the reader was trained on (its run's config; 192/64 before that was a
    setting)."""
    return WindowTokenizer(
        tokenizer_json,
        training_config.get("max_tokens", MAX_WINDOW_TOKENS),
        training_config.get("stride", WINDOW_STRIDE),
    )


def build_windows(tokenizer: WindowTokenizer, questions: list[str], passages: list[str]) -> Windows:
    """Split each passage into overlapping windows that each carry the (shortened) question."""
    short = {q: tokenizer.shorten(q) for q in set(questions)}  # one question, many passages
    pairs = [(short[q], p) for q, p in zip(questions, passages, strict=True)]
    input_ids, token_type_ids, offsets, owners = [], [], [], []
    for owner, encoding in enumerate(tokenizer.pairs.encode_batch(pairs)):
        for window in [encoding, *encoding.overflowing]:
            input_ids.append(window.ids)
            token_type_ids.append(window.type_ids)
            offsets.append(
                [
                    span if sequence == 1 else None
                    for span, sequence in zip(window.offsets, window.sequence_ids, strict=True)
                ]
            )
            owners.append(owner)
    return Windows(input_ids, token_type_ids, offsets, owners)


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
