"""/ask and /search: a question in, the pipeline's answer or passages out."""

from __future__ import annotations

import asyncio
from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import TypeAdapter

from api.guards import require_read, svc
from api.schemas import AskRequest
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K
from rag.query.pipeline import Query
from rag.types import AnswerMode, AskResult, Passage

router = APIRouter(dependencies=[Depends(require_read)])
# /ask serialises its dataclass straight to JSON (validating it again cost more than answering)
ASK_RESULT = TypeAdapter(AskResult)


@router.post("/ask", response_model=AskResult, summary="Answer a question with citations")
async def ask(body: AskRequest, request: Request) -> Response:
    service = svc(request)
    query = body.query()
    if (query.mode or service.settings.answer_mode) == AnswerMode.GENERATIVE:
        # seconds of an LLM: not on the query workers
        result = await run_in_threadpool(service.ask, query)
    else:
        result = await asyncio.wrap_future(service.ask_later(query))
    request.app.state.metrics.record_answer(result)
    return Response(ASK_RESULT.dump_json(result), media_type="application/json")


@router.get("/search", response_model=list[Passage], summary="Ranked passages for a query")
def search(
    request: Request,
    q: str = Param(..., min_length=1, max_length=MAX_QUESTION_CHARS),
    k: int | None = Param(None, ge=1, le=MAX_TOP_K),
    doc_id: list[str] | None = Param(None, description="Only search these documents."),
    publisher: list[str] | None = Param(None, description="Only articles of these publishers."),
    published_after: date | None = Param(None, description="Only articles dated on or after."),
    published_before: date | None = Param(None, description="Only articles dated on or before."),
) -> list[Passage]:
    doc_ids = None if doc_id is None else tuple(doc_id)
    dated = {"published_after": published_after, "published_before": published_before}
    return svc(request).search(Query(q, k, doc_ids, publishers=publisher, **dated))
