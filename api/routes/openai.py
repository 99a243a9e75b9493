"""OpenAI-compatible endpoints, so chat front ends (Open WebUI, LibreChat, the SDKs) can connect."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.chat import pieces, reply_text, sources_text, split_messages
from api.guards import svc
from api.schemas import Confidence, Filters, TopK
from rag.query.pipeline import Query
from rag.service import RagService
from rag.types import AnswerMode, AskResult

MODEL_ID = "rag"

router = APIRouter(prefix="/v1", tags=["openai"])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The standard request; sampling fields are accepted and ignored (answers are extractive)."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=200)
    stream: bool = False
    top_k: TopK | None = Field(None, description="Passages to consider.")
    mode: AnswerMode | None = Field(None, description="Answer mode; default from RAG_ANSWER_MODE.")
    filters: Filters | None = Field(
        None, description="Only these documents, publishers or dates (as /ask's `filters`)."
    )
    min_confidence: Confidence | None = Field(
        None, description="Abstain below this confidence (as in /ask)."
    )


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error body, which its SDKs turn into typed exceptions."""

    error: OpenAIErrorDetail


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def citations(result: AskResult) -> list[dict]:
    return [c.to_dict() for c in result.citations]


@router.get("/models")
def models() -> dict:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "rag"}],
    }


def model_not_found(model: str) -> JSONResponse:
    """OpenAI's own error shape, which the SDKs turn into `NotFoundError`."""
    detail = OpenAIErrorDetail(
        message=f"The model {model!r} does not exist; this service offers {MODEL_ID!r}.",
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )
    return JSONResponse(OpenAIError(error=detail).model_dump(), status_code=404)


def usage(service: RagService, prompt: str, result: AskResult) -> dict[str, int]:
    """Tokens by the embedding model's tokenizer; a generated reply counts the LLM's tokens."""
    prompt_tokens = service.count_tokens(prompt)
    generated = result.generation or {}
    if result.mode == AnswerMode.GENERATIVE and "tokens" in generated:
        completion_tokens = int(generated["tokens"])
    else:
        completion_tokens = service.count_tokens(reply_text(result))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@router.post(
    "/chat/completions",
    response_model=None,
    responses={404: {"model": OpenAIError, "description": "Unknown model"}},
)
def chat_completions(
    body: ChatRequest, request: Request
) -> dict | StreamingResponse | JSONResponse:
    if body.model != MODEL_ID:
        return model_not_found(body.model)
    service = svc(request)
    messages = [m.model_dump() for m in body.messages]
    question, history = split_messages(messages)
    filters = body.filters or Filters()
    query = Query(
        question,
        body.top_k,
        None if filters.doc_ids is None else tuple(filters.doc_ids),
        history=tuple(history),
        mode=body.mode,
        min_confidence=body.min_confidence,
        publishers=filters.publishers,
        published_after=filters.published_after,
        published_before=filters.published_before,
    )
    prompt = "\n".join(turn.content for turn in history) + "\n" + question
    meta = {"id": completion_id(), "created": int(time.time()), "model": body.model}
    if body.stream:
        replies = service.ask_stream(query)

        def finished(result: AskResult) -> dict[str, int]:
            request.app.state.metrics.record_answer(result)
            return usage(service, prompt, result)

        return StreamingResponse(
            stream(meta, replies, finished),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = service.ask(query)
    request.app.state.metrics.record_answer(result)
    return {
        **meta,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply_text(result)},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(service, prompt, result),
        **final_fields(result),
    }


def final_fields(result: AskResult) -> dict[str, Any]:
    return {
        "citations": citations(result),
        "answerable": result.answerable,
        "confidence": result.confidence,
        "mode": result.mode,
        "mode_reason": result.mode_reason,
        "read_as": result.read_as,
    }


def stream(
    meta: dict,
    replies: Iterator[str | AskResult],
    finished: Callable[[AskResult], dict[str, int]],
) -> Iterator[str]:
    """SSE chunks: the role, the reply as it comes (checked sentences of a generated one, or
    an extractive one piece by piece), then citations and `finished(answer)`'s usage once,
    then [DONE]."""

    def event(delta: dict, finish: str | None = None, **extra: Any) -> str:
        chunk = {
            **meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    streamed = False
    for item in replies:
        if isinstance(item, str):
            streamed = True
            yield event({"content": item})
            continue
        text = reply_text(item)
        if streamed:  # generated sentences went out, then generation failed: say what stands
            text = "\n\n" + text
        if not streamed or item.mode == AnswerMode.EXTRACTIVE:
            for piece in pieces(text):
                yield event({"content": piece})
        else:
            yield event({"content": sources_text(item)})
        yield event({}, "stop", **final_fields(item), usage=finished(item))
    yield "data: [DONE]\n\n"
