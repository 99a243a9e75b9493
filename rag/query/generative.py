"""Generative answers built on the reader's: an LLM is asked only when the reader found an
answer, and its reply either states the reader's span or cites the sentence that holds it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from rag.config import LlmSettings
from rag.errors import GenerationError
from rag.index.backend import CorpusView
from rag.models.llm import Generated, LanguageModel, Source
from rag.query.citations import cite
from rag.query.grounding import grounded_reply
from rag.query.normalize import normalize
from rag.query.retrieval import Retrieval
from rag.types import AnswerMode, AskResult, Evidence


class GenerativeAnswerer:
    def __init__(self, config: LlmSettings, embed: Callable[[list[str]], np.ndarray]) -> None:
        self.config = config
        self.embed = embed
        self.llm: LanguageModel | None = None

    def language_model(self) -> LanguageModel:
        """The configured model's client, made on first use."""
        if self.llm is None:
            self.llm = LanguageModel(self.config)
        return self.llm

    def run(
        self,
        index: CorpusView,
        retrieval: Retrieval,
        extractive: AskResult,
        reader_evidence: list[Evidence],
        started: float,
    ) -> Iterator[str | AskResult]:
        """A generated reply whose every sentence passed the checks, else the extractive
        answer with the reason. Where the evidence is too weak for an extractive answer, no
        model is asked: it would only find something to say (a share price for a car's)."""
        if not extractive.answerable:
            yield replace(extractive, mode_reason="the evidence is too weak to answer")
            return
        sources = [
            Source(
                n,
                scored.chunk,
                index.chunk_document(scored.chunk).title,
                index.chunk_text(scored.chunk),
            )
            for n, scored in enumerate(retrieval.chunks[: self.config.passages], 1)
        ]
        generated = None
        try:
            model = self.language_model()
            for item in grounded_reply(
                model,
                retrieval.question,
                sources,
                index,
                self.embed,
                self.config.support_threshold,
            ):
                if isinstance(item, Generated):
                    generated = item
                else:
                    yield item
        except GenerationError as error:
            yield replace(extractive, mode_reason=f"generation failed: {error}")
            return
        info = {
            "model": self.config.model,
            "tokens": generated.tokens,
            "seconds": round(generated.seconds, 2),
            "first_token_seconds": round(generated.first_token_seconds, 2),
            "tokens_per_second": round(generated.tokens_per_second, 1),
            "dropped": generated.dropped,
        }
        timings = {**extractive.timings_ms, "generate": round(generated.seconds * 1000, 2)}
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        if not generated.text:
            reason = (
                "the model found no answer in the passages"
                if generated.refused
                else "no generated sentence passed the checks"
            )
            yield replace(extractive, mode_reason=reason, generation=info, timings_ms=timings)
            return
        rows = [row for _, row in generated.quotes]
        # The reader found the answer first: the reply either states the reader's span or
        # cites the sentence that holds it too, so the answer can always be checked.
        info["agrees_with_reader"] = normalize(extractive.answer or "") in normalize(generated.text)
        if not info["agrees_with_reader"]:
            rows += [e.sentence for e in reader_evidence if e.sentence not in rows]
        evidence = [Evidence(row, index.sentence_chunk(row), 1.0) for row in rows]
        yield replace(
            extractive,
            answer=generated.text,
            answerable=True,
            message=None,
            citations=cite(index, evidence),
            mode=AnswerMode.GENERATIVE,
            generation=info,
            timings_ms=timings,
        )
