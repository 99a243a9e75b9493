"""The app factory: middleware, routers (`api/routes/`), error handlers, the server.

HTTP in, `RagService` calls, JSON out; no pipeline logic lives in `api/`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api.guards import BodyLimit, RateLimiter, require_read
from api.observability import Metrics, Observe
from api.routes import ask, documents, openai, ops, page
from api.routes.page import STATIC
from api.schemas import PATTERN_RULES, error_responses
from rag.config import Settings
from rag.errors import RagError
from rag.service import RagService

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

    app.add_middleware(Observe, metrics=metrics, limiter=limiter, settings=settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization"],
        )
    app.state.settings = settings
    app.include_router(ask.router)
    app.include_router(openai.router, dependencies=[Depends(require_read)])
    app.include_router(documents.router)
    app.include_router(ops.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_error_handlers(app)

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
    """Serve what the shell or another replica wrote: a version committed by another
    process is swapped in within `watch_seconds`, or as soon as the backend announces it
    (PostgreSQL's NOTIFY); the server's own writes swap in at once."""
    interval = service.settings.watch_seconds
    loop = asyncio.get_running_loop()
    announced = asyncio.Event()
    service.backend.on_change(lambda: loop.call_soon_threadsafe(announced.set))
    while interval:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(announced.wait(), interval)
        announced.clear()
        try:
            if await run_in_threadpool(service.refresh):
                log.info("serving commit %s", service.current().index.snapshot)
        except Exception as error:  # a commit being replaced as it was read: next time
            log.warning("could not load the index's new commit yet: %s", error)


def problem(e: dict) -> dict[str, str]:
    """One validation error as {field, message}; malformed JSON is the body's, at a position."""
    if e["type"] == "json_invalid":
        position = e["loc"][-1]
        return {"field": "body", "message": f"malformed JSON at character {position}"}
    message = e["msg"]
    if e["type"] == "string_pattern_mismatch":
        message = PATTERN_RULES.get(e["ctx"]["pattern"], message)
    return {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": message}


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (a literal path, such as
    /documents/upload, rather than a template it also fits)."""
    paths = request.app.openapi()["paths"]
    fitting = [paths[request.url.path]] if request.url.path in paths else [
        operations for template, operations in paths.items()
        if compile_path(template)[0].match(request.url.path)
    ]  # fmt: skip
    return sorted({method.upper() for operations in fitting for method in operations})


def add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes a JSON body with an `error` message; none leaks a stack trace."""

    @app.exception_handler(RagError)
    async def known(_: Request, exc: RagError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return error(exc.status, str(exc), **exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid request", [problem(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not parse: text, JSON, multipart
            # answered like any other malformed body
            text = isinstance(exc.__cause__, UnicodeDecodeError)
            message = "the body is not UTF-8 text" if text else str(exc.detail)
            return error(422, "invalid request", [{"field": "body", "message": message}])
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (allowed := allowed_methods(request)):
            headers["Allow"] = ", ".join(allowed)  # the path's every method, not its first's
        return error(exc.status_code, str(exc.detail), **headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal error; the service logged the details")
