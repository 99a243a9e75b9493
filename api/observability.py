"""Request ids, one JSON log line per request, and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.guards import RateLimiter, rate_limit_response
from rag.config import Settings
from rag.service import RagService
from rag.types import AskResult

access_log = logging.getLogger("rag.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("rag", "rag.access", "rag.api"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


class Metrics:
    """One registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )
        self.answers = Counter(
            "rag_answers_total", "Answers given", ["mode", "answerable"], registry=self.registry
        )
        self.index_size = Gauge(
            "rag_index_size", "Items in the served index", ["kind"], registry=self.registry
        )

    def record_answer(self, result: AskResult) -> None:
        self.answers.labels(str(result.mode), str(result.answerable).lower()).inc()

    def render(self, service: RagService | None) -> Response:
        if service is not None and service.snapshot is not None:
            manifest = service.snapshot.index.manifest
            for kind in ("documents", "chunks", "sentences"):
                self.index_size.labels(kind).set(getattr(manifest, kind))
        return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4")


class Observe:
    """Give each request an id, time it, count it, log it as one JSON line; apply the rate
    limit. Plain ASGI: Starlette's BaseHTTPMiddleware cost more per request than an answer."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, limiter: RateLimiter | None, settings: Settings
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limiter = limiter
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            refused = self.limiter and rate_limit_response(self.limiter, request, self.settings)
            await (refused or self.app)(scope, receive, sending)
        finally:
            self.record(request, request_id, status, time.perf_counter() - started)

    def record(self, request: Request, request_id: str, status: int, elapsed: float) -> None:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(request.method, route, str(status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "fields": {
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.url.path,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }
            },
        )
