"""What stands between a client and the service: API keys, body size, rate limits."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import Settings
from rag.errors import NotReadyError
from rag.service import RagService

UNMETERED = {"/health", "/ready", "/metrics"}


def svc(request: Request) -> RagService:
    """The app's service; a 503 (retry shortly) while it is still being opened."""
    service = request.app.state.service
    if service is None:
        raise NotReadyError("the service is starting; retry in a few seconds")
    return service


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def has_key(request: Request, settings: Settings) -> bool:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return key is not None and hmac.compare_digest(bearer_token(request).encode(), key.encode())


def client_of(request: Request, settings: Settings) -> str:
    """Who a request counts against: the key holder once the key checks out, else the
    client's address (a made-up token is no new client)."""
    if has_key(request, settings):
        return "api-key"
    header = settings.client_address_header
    if header and (forwarded := request.headers.get(header, "").split(",")[0].strip()):
        return forwarded
    return request.client.host if request.client else "unknown"


def check_key(request: Request, settings: Settings, write: bool) -> None:
    """Writes need the key (or an explicit opt-out); reads only when protect_reads is set."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if key is None:
        if write and not settings.allow_unauthenticated_writes:
            raise HTTPException(
                403,
                "writes are disabled: set RAG_API_KEY, or RAG_ALLOW_UNAUTHENTICATED_WRITES=true",
            )
        return
    if not write and not settings.protect_reads:
        return
    if not has_key(request, settings):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


# async: FastAPI runs a plain `def` dependency on its thread pool, a hop per request that
# cost more than the check itself under load.
async def require_write(request: Request) -> None:
    check_key(request, svc(request).settings, write=True)


async def require_read(request: Request) -> None:
    check_key(request, svc(request).settings, write=False)


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, by header or by counting what arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self.too_large(scope, receive, send)
            return
        received, refused = 0, False

        async def counting() -> Message:
            """The body as it arrives; past the limit, the 413 goes out at once and the app
            reads a disconnect (whatever it parses the body as: JSON, multipart, a stream)."""
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                if not refused:
                    refused = True
                    await self.too_large(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:  # what the app answers to the disconnect goes nowhere
                await send(message)

        await self.app(scope, counting, unless_refused)

    async def too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"error": f"request body is over the limit of {self.max_bytes} bytes"}
        await JSONResponse(body, status_code=413)(scope, receive, send)


class RateLimiter:
    """A token bucket per client: `per_minute` requests, refilled evenly over the minute."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """0 when the request may go ahead, else how long until it could."""
        now = time.monotonic()
        with self.lock:
            tokens, stamp = self.buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self.buckets[client] = (tokens - 1 if tokens >= 1 else tokens, now)
            while len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
        return wait


def rate_limit_response(
    limiter: RateLimiter, request: Request, settings: Settings
) -> JSONResponse | None:
    if request.url.path in UNMETERED:
        return None
    wait = limiter.wait_seconds(client_of(request, settings))
    if wait <= 0:
        return None
    return JSONResponse(
        {"error": "rate limit exceeded; retry later"},
        status_code=429,
        headers={"Retry-After": str(math.ceil(wait))},
    )
