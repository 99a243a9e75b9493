"""What operators and load balancers read: health, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.guards import svc
from api.schemas import Health

router = APIRouter()


@router.get("/health", response_model=Health, summary="Liveness, with the index's size")
def health(request: Request) -> Health:
    manifest = svc(request).current().index.manifest
    return Health(
        status="ok" if manifest.documents else "empty",
        documents=manifest.documents,
        chunks=manifest.chunks,
        sentences=manifest.sentences,
        model=manifest.spec.model,
        dense_index=manifest.dense_index,
    )


@router.get("/ready", summary="200 once the index is loaded, else 503")
def ready(request: Request) -> JSONResponse:
    service = request.app.state.service
    loaded = service is not None and service.snapshot is not None
    return JSONResponse({"ready": loaded}, status_code=200 if loaded else 503)


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request) -> Response:
    return request.app.state.metrics.render(svc(request))
