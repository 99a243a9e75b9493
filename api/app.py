"""HTTP in, `RagService` calls, JSON out. No pipeline logic lives here."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import documents
from api.guards import BodyLimit, RateLimiter, require_read, svc
from api.observability import Metrics, Observe
from api.openai import router as openai_router
from api.schemas import AskRequest, Health, error_responses
from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from rag.conversation import Turn
from rag.errors import RagError
from rag.service import RagService
from rag.types import AnswerMode, AskResult, Passage

STATIC = Path(__file__).parent / "static"
# /ask serialises its dataclass straight to JSON (validating it again cost more than answering)
ASK_RESULT = TypeAdapter(AskResult)

log = logging.getLogger("rag.api")


def error(status: int, message: str, detail: Any = None, **headers: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": message, "detail": detail}, headers=headers or None
    )


def create_app(service: RagService | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over `service`, or over one opened from `settings` at start-up."""
    settings = settings or (service.settings if service else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.service is None:
            app.state.service = RagService.open(settings, progress=log.info)
        # The model and the index are millions of objects that live as long as the process;
        # kept out of the collector's full passes, they stop stalling every request now and
        # then (32 clients: p99 365 -> 108 ms, README "Performance").
        gc.collect()
        gc.freeze()
        watcher = asyncio.create_task(follow_commits(app.state.service))
        yield
        watcher.cancel()

    # Swagger UI and ReDoc served from the package itself: /docs works offline.
    app = FastAPIOffline(
        title="rag",
        summary="Answers questions over news articles, with citations that verify.",
        version="0.1.0",
        lifespan=lifespan,
        responses=error_responses(401, 404, 413, 422, 429),
    )
    app.state.service = service
    app.state.metrics = metrics = Metrics()
    limiter = (
        RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    )

    app.add_middleware(Observe, metrics=metrics, limiter=limiter)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization"],
        )
    app.include_router(openai_router, dependencies=[Depends(require_read)])
    app.include_router(documents.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_error_handlers(app)

    @app.post(
        "/ask",
        response_model=AskResult,
        summary="Answer a question with citations",
        dependencies=[Depends(require_read)],
    )
    async def ask(body: AskRequest, request: Request) -> Response:
        doc_ids = body.filters.doc_ids if body.filters else None
        history = [Turn(t.role, t.content) for t in body.history or []]
        service = svc(request)
        mode = body.mode or settings.answer_mode
        if mode == AnswerMode.GENERATIVE:  # seconds of an LLM: not on the query workers
            ask = partial(
                service.ask, body.question, body.top_k, doc_ids, history=history, mode=mode
            )
            result = await run_in_threadpool(ask)
        else:
            queued = service.ask_later(body.question, body.top_k, doc_ids, history)
            result = await asyncio.wrap_future(queued)
        metrics.record_answer(result)
        return Response(ASK_RESULT.dump_json(result), media_type="application/json")

    @app.get(
        "/search",
        response_model=list[Passage],
        summary="Ranked passages for a query",
        dependencies=[Depends(require_read)],
    )
    def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=MAX_QUESTION_CHARS),
        k: int | None = Query(None, ge=1, le=MAX_TOP_K),
        doc_id: list[str] | None = Query(None, description="Only search these documents."),
    ) -> list[Passage]:
        return svc(request).search(q, k, doc_id)

    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/examples", include_in_schema=False)
    def examples() -> dict[str, list[str]]:
        return {"questions": settings.example_questions}

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    @app.get("/health", response_model=Health, summary="Liveness, with the index's size")
    def health(request: Request) -> Health:
        manifest = svc(request).current().index.manifest
        return Health(
            status="ok",
            documents=manifest.documents,
            chunks=manifest.chunks,
            sentences=manifest.sentences,
            model=manifest.spec.model,
            dense_index=manifest.dense_index,
        )

    @app.get("/ready", summary="200 once the index is loaded, else 503")
    def ready(request: Request) -> JSONResponse:
        service = request.app.state.service
        loaded = service is not None and service.snapshot is not None
        return JSONResponse({"ready": loaded}, status_code=200 if loaded else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        return metrics.render(svc(request))

    return app


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT a write in progress is abandoned (never half-published) at once,
    instead of holding the shutdown until a large upload is embedded."""

    def __init__(self, config: uvicorn.Config, service: RagService) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.stop_writes()
        super().handle_exit(sig, frame)


async def follow_commits(service: RagService) -> None:
    """Serve what the shell wrote: a commit made by another process is swapped in within
    `watch_seconds` (the server's own writes swap in at once)."""
    interval = service.settings.watch_seconds
    while interval:
        await asyncio.sleep(interval)
        try:
            if await run_in_threadpool(service.refresh):
                log.info("serving commit %s", service.current().index.snapshot)
        except Exception as error:  # a commit being replaced as it was read: next time
            log.warning("could not load the index's new commit yet: %s", error)


def add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes a JSON body with an `error` message; none leaks a stack trace."""

    @app.exception_handler(RagError)
    async def known(_: Request, exc: RagError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return error(exc.status, str(exc), **exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        return error(422, "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal error; the service logged the details")
