"""OpenAI-compatible chat, checked with the official `openai` client over real HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.chat import split_messages
from rag.config import Settings
from rag.query.conversation import Turn
from tests.conftest import EXAMPLE_QUESTION, assert_citations_verify

FOLLOW_UP = [
    {"role": "user", "content": "Which company will build Xiaomi's cars?"},
    {"role": "assistant", "content": "Great Wall [1]"},
    {"role": "user", "content": "and when will the first one arrive?"},
]


@pytest.fixture(scope="module")
def chat(live_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key="unused", max_retries=0)


def texts(live_url: str, citations: list[dict]) -> dict[str, str]:
    return {
        c["doc_id"]: httpx.get(f"{live_url}/documents/{c['doc_id']}").json()["text"]
        for c in citations
    }


def test_models_lists_the_service(chat: openai.OpenAI) -> None:
    assert [m.id for m in chat.models.list()] == ["rag"]


def test_completion_answers_with_markers_and_verified_citations(chat, live_url) -> None:
    completion = chat.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": EXAMPLE_QUESTION}], temperature=0.2
    )
    content = completion.choices[0].message.content
    assert content.startswith("2023 [1]") and "Sources:\n[1] " in content
    assert completion.choices[0].finish_reason == "stop"
    citations = completion.model_extra["citations"]
    assert_citations_verify(citations, texts(live_url, citations))
    assert citations[0]["quote"] in content
    usage = completion.usage  # word pieces of the question and of the reply
    assert 5 <= usage.prompt_tokens <= 20 and usage.completion_tokens > len(content.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_unknown_model_is_openais_404(chat) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        chat.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": EXAMPLE_QUESTION}]
        )
    assert raised.value.code == "model_not_found" and "'rag'" in raised.value.message


def test_streaming_sends_pieces_then_citations_once(chat, live_url) -> None:
    stream = chat.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": EXAMPLE_QUESTION}], stream=True
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content.startswith("2023 [1]") and len(chunks) > 5
    carrying = [c for c in chunks if (c.model_extra or {}).get("citations") is not None]
    assert len(carrying) == 1 and carrying[0] is chunks[-1]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens > 0
    citations = carrying[0].model_extra["citations"]
    assert_citations_verify(citations, texts(live_url, citations))


def test_raw_stream_is_server_sent_events(live_url: str) -> None:
    body = {"messages": [{"role": "user", "content": EXAMPLE_QUESTION}], "stream": True}
    with httpx.stream("POST", f"{live_url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"


def test_abstention_reads_naturally(chat) -> None:
    completion = chat.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "What is the price of the car?"}]
    )
    assert completion.choices[0].message.content.startswith("The articles I have don't say.")
    assert completion.model_extra["citations"] == []


def test_an_abstention_names_the_closest_article_only_when_it_shares_a_word(chat) -> None:
    def reply(question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return (
            chat.chat.completions.create(model="rag", messages=messages).choices[0].message.content
        )

    assert "The closest article I found is “Xiaomi" in reply("What is the price of the car?")
    unrelated = reply("When was it founded?")  # no word of it in any article
    assert unrelated.startswith("The articles I have don't say.")
    assert "closest article" not in unrelated


def test_min_confidence_rides_along_as_an_extra_field(chat) -> None:
    """The OpenAI SDK's extra_body reaches the same cut as /ask's min_confidence."""
    ask = [{"role": "user", "content": "When will Xiaomi's first electric car arrive?"}]
    answered = chat.chat.completions.create(model="rag", messages=ask)
    assert "2023" in answered.choices[0].message.content
    strict = chat.chat.completions.create(
        model="rag", messages=ask, extra_body={"min_confidence": 0.99}
    )
    assert strict.choices[0].message.content.startswith("The articles I have don't say.")
    with pytest.raises(openai.UnprocessableEntityError):
        chat.chat.completions.create(model="rag", messages=ask, extra_body={"min_confidence": 2})


def test_follow_up_uses_the_conversation(chat, client) -> None:
    completion = chat.chat.completions.create(model="rag", messages=FOLLOW_UP)
    assert "2023" in completion.choices[0].message.content
    with_history = client.post(
        "/ask", json={"question": FOLLOW_UP[-1]["content"], "history": FOLLOW_UP[:-1]}
    ).json()
    assert with_history["answerable"] and "2023" in with_history["answer"]


def test_a_reply_in_the_history_reads_as_its_answer(chat, client) -> None:
    # so that a pronoun in the next question can stand for what was answered
    question = "Which company will build Xiaomi's cars?"
    reply = (
        chat.chat.completions.create(model="rag", messages=[{"role": "user", "content": question}])
        .choices[0]
        .message.content
    )
    answer = client.post("/ask", json={"question": question}).json()["answer"]
    assert "Sources:" in reply and answer in reply
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Has it made cars for others before?"},
    ]
    _, history = split_messages(messages)
    assert history[-1] == Turn("assistant", answer)


def test_content_parts_and_unknown_fields_are_accepted(client) -> None:
    body = {
        "model": "rag",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": EXAMPLE_QUESTION}]},
        ],
        "temperature": 0.7,
        "user": "abc",
        "max_tokens": 50,
    }
    response = client.post("/v1/chat/completions", json=body)
    assert (
        response.status_code == 200
        and "2023" in response.json()["choices"][0]["message"]["content"]
    )


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "assistant", "content": "hi"}], [{"role": "user", "content": "  "}]],
)
def test_chat_without_a_question_is_422(client, messages) -> None:
    response = client.post("/v1/chat/completions", json={"messages": messages})
    assert response.status_code == 422 and response.json()["error"]


def test_chat_page_widget_and_closed_cors(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '<form id="ask">' in page.text
    assert client.get("/static/chat.js").status_code == 200
    widget = client.get("/widget.js")
    assert "javascript" in widget.headers["content-type"] and "?embed=1" in widget.text
    cross = client.get("/health", headers={"Origin": "https://news.example"})
    assert "access-control-allow-origin" not in cross.headers


def test_cors_opens_for_configured_origins(service) -> None:
    settings = Settings(index_dir=service.root, sources=[], cors_origins=["https://news.example"])
    with TestClient(create_app(service, settings)) as client:
        allowed = client.get("/health", headers={"Origin": "https://news.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://news.example"
        other = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
