"""Generated answers: numbered passages in, a cited reply out, from any OpenAI-compatible server
(llama.cpp's, Ollama, vLLM, a hosted API). What the model says is checked in `rag.query.grounding`
before anyone sees it; this module only talks to the model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rag.config import LlmSettings
from rag.errors import GenerationError

SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages the user gives "
    "you. Write one or two short sentences that answer the question directly. End every "
    "sentence with the number of the passage it comes from, in square brackets: [1], [2] or "
    "[3]. Never add facts that are not in the passages. If the passages do not answer the "
    "question, reply exactly: I don't know."
)
# Small models follow the format far more often when it is repeated after the question.
REMINDER = "Answer in one or two sentences, each ending with its passage number in brackets."


@dataclass(frozen=True)
class Source:
    """A passage as the model sees it: `[n] text`."""

    n: int
    chunk: int
    title: str
    text: str


def prompt(question: str, sources: list[Source]) -> list[dict[str, str]]:
    passages = "\n\n".join(f"[{s.n}] {s.text}" for s in sources)
    request = f"Passages:\n\n{passages}\n\nQuestion: {question}\n{REMINDER}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": request}]


class LanguageModel:
    """A chat-completions endpoint, with bounded timeouts and retries."""

    def __init__(self, config: LlmSettings) -> None:
        from openai import OpenAI

        if not config.base_url:
            raise GenerationError("no language model configured (set RAG_LLM_BASE_URL)")
        self.client = OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "none",
            timeout=config.timeout_seconds,
            max_retries=config.retries,
        )
        self.model = config.model
        self.max_tokens = config.max_tokens

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The reply's text as it is generated."""
        from openai import OpenAIError

        try:
            chunks = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                temperature=0.0,
                max_tokens=self.max_tokens,
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except OpenAIError as error:
            raise GenerationError(f"{type(error).__name__}: {error}") from None


@dataclass
class Generated:
    """What survived the checks, and what did not."""

    text: str
    quotes: list[tuple[int, int]]  # per citation number (from 1): (passage number, sentence row)
    dropped: list[str]
    tokens: int
    seconds: float
    first_token_seconds: float  # mostly reading the prompt
    tokens_per_second: float  # while writing the reply
    refused: bool
