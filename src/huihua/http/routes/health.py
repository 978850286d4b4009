"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse, Response

from ...core.errors import StoreUnavailable
from ..services import Services, services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(svc: Services = Depends(services)) -> JSONResponse:
    """Ready when the session store and the accounts database answer."""
    try:
        await svc.manager.store.ping()
        await svc.accounts.ping()
    except StoreUnavailable:
        return JSONResponse(
            {
                "status": "unavailable",
                "error": {
                    "code": "store_unavailable",
                    "message": "the session store or accounts database is unreachable",
                },
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(svc: Services = Depends(services)) -> Response:
    body = await svc.metrics.render(svc.manager.count)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
