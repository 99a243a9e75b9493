"""HTTP in, `RagService` calls, JSON out. No pipeline logic lives here."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.openai import router as openai_router
from rag.chat import ChatError
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from rag.conversation import Turn
from rag.service import AskResult, NotFoundError, Passage, QueryError, RagService

STATIC = Path(__file__).parent / "static"

log = logging.getLogger("rag.api")


class Filters(BaseModel):
    doc_ids: list[str] | None = Field(None, description="Only search these documents.")


class HistoryTurn(BaseModel):
    role: str = Field(..., pattern="^(user|assistant)$")
    content: str = Field(..., max_length=MAX_QUESTION_CHARS * 5)


class AskRequest(BaseModel):
    question: str = Field(
        ...,
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        examples=["when is the first vehicle expected?"],
    )
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, description="Passages to return.")
    filters: Filters | None = None
    history: list[HistoryTurn] | None = Field(
        None, max_length=100, description="Earlier turns, oldest first, for follow-ups."
    )


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    chars: int
    source: str | None
    metadata: dict[str, Any]


class DocumentOut(DocumentSummary):
    text: str


class Health(BaseModel):
    status: str
    documents: int
    chunks: int
    sentences: int
    model: str
    dense_index: str


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


def error(status: int, message: str, detail: Any = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "detail": detail})


def create_app(service: RagService | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `service`, or over one opened from `settings` at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "service", None) is None:
            app.state.service = RagService.open(settings or Settings(), progress=log.info)
        yield

    app = FastAPI(
        title="rag",
        summary="Answers questions over news articles, with citations that verify.",
        version="0.1.0",
        lifespan=lifespan,
        responses={422: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    )
    app.state.service = service
    origins = (settings or (service.settings if service else Settings())).cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization"],
        )
    app.include_router(openai_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def svc(request: Request) -> RagService:
        return request.app.state.service

    @app.exception_handler(QueryError)
    async def query_error(_: Request, exc: QueryError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(ChatError)
    async def chat_error(_: Request, exc: ChatError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        return error(422, "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal error; the service logged the details")

    @app.post("/ask", response_model=AskResult, summary="Answer a question with citations")
    def ask(body: AskRequest, request: Request) -> AskResult:
        doc_ids = body.filters.doc_ids if body.filters else None
        history = [Turn(t.role, t.content) for t in body.history or []]
        return svc(request).ask(body.question, body.top_k, doc_ids, history=history)

    @app.get("/search", response_model=list[Passage], summary="Ranked passages for a query")
    def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=MAX_QUESTION_CHARS),
        k: int | None = Query(None, ge=1, le=MAX_TOP_K),
        doc_id: list[str] | None = Query(None, description="Only search these documents."),
    ) -> list[Passage]:
        return svc(request).search(q, k, doc_id)

    @app.get("/documents", response_model=list[DocumentSummary])
    def documents(request: Request) -> list[DocumentSummary]:
        return [
            DocumentSummary(
                doc_id=d.doc_id,
                title=d.title,
                chars=len(d.text),
                source=d.source,
                metadata=d.metadata,
            )
            for d in svc(request).documents()
        ]

    @app.get("/documents/{doc_id}", response_model=DocumentOut)
    def document(doc_id: str, request: Request) -> DocumentOut:
        d = svc(request).document(doc_id)
        return DocumentOut(
            doc_id=d.doc_id,
            title=d.title,
            chars=len(d.text),
            source=d.source,
            metadata=d.metadata,
            text=d.text,
        )

    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    @app.get("/health", response_model=Health)
    def health(request: Request) -> Health:
        service = svc(request)
        manifest = service.current().index.manifest
        return Health(
            status="ok",
            documents=manifest.documents,
            chunks=manifest.chunks,
            sentences=manifest.sentences,
            model=manifest.spec.model,
            dense_index=manifest.dense_index,
        )

    return app
