"""For other backends and operators, behind X-Service-Key: /v1/introspect and /v1/admin."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Header, Path
from starlette.responses import JSONResponse, Response

from ...core.errors import SessionInvalid
from ..context import in_good_standing
from ..errors import ApiError
from ..represent import session_item, session_out
from ..schemas import IntrospectIn, IntrospectOut, SessionsOut, errors
from ..services import Services, services

router = APIRouter(tags=["service"])
_USER = Path(max_length=128)
NO_STORE = {"Cache-Control": "no-store"}  # an answer about a token is never kept by a cache


async def service_key(
    x_service_key: str | None = Header(default=None, max_length=256),
    svc: Services = Depends(services),
) -> None:
    expected = svc.settings.service_key
    if expected is None or not expected:
        raise ApiError(404, "not_found", "service routes are off: set HUIHUA_SERVICE_KEY", NO_STORE)
    if x_service_key is None or not hmac.compare_digest(x_service_key.encode(), expected.reveal().encode()):
        raise ApiError(401, "invalid_service_key", "X-Service-Key is missing or wrong", NO_STORE)


@router.post(
    "/v1/introspect", response_model=IntrospectOut, responses=errors(401), dependencies=[Depends(service_key)]
)
async def introspect(body: IntrospectIn, svc: Services = Depends(services)) -> JSONResponse:
    """Is this token a live session? Counts as activity of that session."""
    try:
        session = await svc.manager.load(body.token)
        user = await in_good_standing(svc.manager, svc.accounts.get, session)
    except SessionInvalid as exc:
        return JSONResponse({"active": False, "reason": exc.code}, headers=NO_STORE)
    return JSONResponse(
        {
            "active": True,
            "user": user.public() if user else None,
            "session": session_out(session),
            "data": dict(session),
        },
        headers=NO_STORE,
    )


admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(service_key)])


@admin.get("/users/{user_id}/sessions", response_model=SessionsOut)
async def user_sessions(user_id: str = _USER, svc: Services = Depends(services)) -> JSONResponse:
    return JSONResponse({"sessions": [session_item(s, None) for s in await svc.manager.list_user(user_id)]})


@admin.delete("/users/{user_id}/sessions", status_code=204)
async def revoke_user_sessions(user_id: str = _USER, svc: Services = Depends(services)) -> Response:
    await svc.manager.revoke_user(user_id, reason="admin")
    return Response(status_code=204)


@admin.delete("/users/{user_id}/sessions/{session_id}", status_code=204, responses=errors(404))
async def revoke_user_session(
    user_id: str = _USER, session_id: str = Path(max_length=64), svc: Services = Depends(services)
) -> Response:
    if not await svc.manager.revoke_id(user_id, session_id):
        raise ApiError(404, "session_not_found", "no live session of that user has this id")
    return Response(status_code=204)


@admin.post("/users/{user_id}/disable", status_code=204, responses=errors(404))
async def disable_user(user_id: str = _USER, svc: Services = Depends(services)) -> Response:
    """Disable the account and end every session of it at once (ASVS 7.4.2): the store blocks
    the user, so no session is usable after this returns, even one a racing login made."""
    if not await svc.accounts.set_disabled(user_id, True):
        raise ApiError(404, "user_not_found", "no user has this id")
    await svc.manager.set_user_blocked(user_id, True, reason="user_disabled")
    return Response(status_code=204)


@admin.post("/users/{user_id}/enable", status_code=204, responses=errors(404))
async def enable_user(user_id: str = _USER, svc: Services = Depends(services)) -> Response:
    if not await svc.accounts.set_disabled(user_id, False):
        raise ApiError(404, "user_not_found", "no user has this id")
    await svc.manager.set_user_blocked(user_id, False)  # sessions of the disabled time stay dead
    return Response(status_code=204)


@admin.get("/stats")
async def stats(svc: Services = Depends(services)) -> JSONResponse:
    return JSONResponse(
        {
            "active_sessions": await svc.manager.count(),
            "users": await svc.accounts.count_users(),
        }
    )
