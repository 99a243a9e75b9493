"""The trained reader: which words of a passage answer the question, and how sure it is that
none do. An int8 ONNX model (trained by `make train-reader`, committed with its tokenizer) run by
onnxruntime on one thread per call, like the query embedder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.digest import file_digest
from rag.errors import ReaderError
from rag.models.reader_windows import MAX_ANSWER_TOKENS, build_windows, pad, trained_windows

MODEL_DIR = Path(__file__).parents[1] / "assets" / "reader"
MODEL_FILE = "model.onnx"
# The committed model's SHA-256: a reader that is not this one never answers.
MODEL_SHA256 = "5906f295f764e6b54f1eb69414a832dde766250def8feead229a6e5a5675eecc"
FIX_HINT = (
    "restore it with `git checkout -- rag/assets/reader` or retrain it with `make train-reader`"
)


@dataclass(frozen=True)
class Reading:
    """The reader's best span in one passage (character offsets into that passage's text)."""

    passage: int
    start: int
    end: int
    span_logit: float  # start + end logits of the span
    null_logit: float  # start + end logits of [CLS]: "this window does not answer"
    span_logprob: float  # log P(span) within its window, comparable across windows

    @property
    def margin(self) -> float:
        return self.span_logit - self.null_logit


class Reader:
    def __init__(self, model_dir: Path = MODEL_DIR, expected_sha256: str | None = MODEL_SHA256):
        import onnxruntime

        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ReaderError(f"no reader model at {path}: {FIX_HINT}")
        if expected_sha256 is not None and file_digest(path) != expected_sha256:
            raise ReaderError(f"reader model {path} does not match its SHA-256: {FIX_HINT}")
        self.meta = json.loads((model_dir / "reader.json").read_text())
        self.tokenizer = trained_windows(
            model_dir / "tokenizer.json", self.meta.get("training", {}).get("config", {})
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one call per question; questions run side by side
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def count_tokens(self, text: str) -> int:
        """Word pieces of the encoder's vocabulary (what chat clients bill as "tokens")."""
        return self.tokenizer.count(text)

    def read(self, question: str, passages: list[str]) -> list[Reading]:
        """The best span of each passage that has one (at most one Reading per passage)."""
        if not passages:
            return []
        windows = build_windows(self.tokenizer, [question] * len(passages), passages)
        ids = pad(windows.input_ids)
        feeds = {
            "input_ids": ids,
            "attention_mask": (ids != 0).astype(np.int64),
            "token_type_ids": pad(windows.token_type_ids),
        }
        starts, ends = self.session.run(None, feeds)
        best: dict[int, Reading] = {}
        for w, owner in enumerate(windows.passage):
            keep_surest(best, best_span(starts[w], ends[w], windows.offsets[w], owner))
        return [best[p] for p in sorted(best)]


def keep_surest(best: dict[int, Reading], reading: Reading | None) -> None:
    """A passage read in several windows answers with its surest window's span (by margin)."""
    if reading and (reading.passage not in best or reading.margin > best[reading.passage].margin):
        best[reading.passage] = reading


def best_span(
    start: np.ndarray, end: np.ndarray, offsets: list[tuple[int, int] | None], passage: int
) -> Reading | None:
    tokens = np.array([i for i, span in enumerate(offsets) if span is not None])
    if tokens.size == 0:
        return None
    s, e = start[tokens], end[tokens]
    # spans of 1..MAX_ANSWER_TOKENS tokens within the passage: an upper band of the s+e table
    table = s[:, None] + e[None, :]
    width = tokens[None, :] - tokens[:, None]
    table = np.where((width >= 0) & (width < MAX_ANSWER_TOKENS), table, -np.inf)
    i, j = np.unravel_index(int(np.argmax(table)), table.shape)
    valid = np.concatenate([[0], tokens])
    log_norm = logsumexp(start[valid]) + logsumexp(end[valid])
    span_logit = float(table[i, j])
    return Reading(
        passage=passage,
        start=offsets[tokens[i]][0],
        end=offsets[tokens[j]][1],
        span_logit=span_logit,
        null_logit=float(start[0] + end[0]),
        span_logprob=span_logit - float(log_norm),
    )


def logsumexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


@lru_cache(maxsize=2)
def shared_reader(model_dir: Path = MODEL_DIR) -> Reader:
    """One loaded reader per process, whatever number of services or tests use it."""
    return Reader(model_dir)
