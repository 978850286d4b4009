"""My sessions (/v1/sessions) and session data (/v1/session/data)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.responses import JSONResponse, Response

from ...core.data import DataChanges
from ..context import SessionContext
from ..errors import ApiError
from ..represent import session_item, with_token
from ..schemas import DataOut, DataPatchIn, SessionsOut, errors
from ..services import Services, services, session_context
from .auth import signed_in

router = APIRouter(tags=["sessions"])


@router.get("/v1/sessions", response_model=SessionsOut, responses=errors(401))
async def my_sessions(
    svc: Services = Depends(services), ctx: SessionContext = Depends(session_context)
) -> JSONResponse:
    session, user = await signed_in(ctx, svc)
    items = [session_item(s, session.id) for s in await svc.manager.list_user(user.id)]
    return JSONResponse({"sessions": items})


@router.delete("/v1/sessions/{session_id}", status_code=204, responses=errors(401, 404))
async def revoke_session(
    session_id: str = Path(max_length=64),
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> Response:
    session, user = await signed_in(ctx, svc)
    if not await svc.manager.revoke_id(user.id, session_id):
        raise ApiError(404, "session_not_found", "no live session of yours has this id")
    if session_id == session.id:
        ctx.end()
    return Response(status_code=204)


@router.get("/v1/session/data", response_model=DataOut, responses=errors(401))
async def read_data(ctx: SessionContext = Depends(session_context)) -> JSONResponse:
    """The session's data; `{}` for a visitor without a session (and none is created)."""
    session = await ctx.optional()
    return JSONResponse({"data": dict(session) if session is not None else {}})


@router.patch("/v1/session/data", response_model=DataOut, responses=errors(400, 401, 413))
async def change_data(
    body: DataPatchIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Apply set / unset / incr atomically; a visitor without a session gets an anonymous one."""
    changes = DataChanges(
        set=body.set or {}, unset=frozenset(body.unset or ()), incr=body.incr or {}
    ).validate()
    session = await ctx.optional()
    if session is None:
        # visitors get sessions on their first write; one address cannot mint them without end
        per_minute = svc.settings.anonymous_sessions_per_ip_minute
        await svc.accounts.count_per_address("new sessions", ctx.ip, per_minute, code="too_many_sessions")
        session = await ctx.ensure()
    if changes:
        session = await svc.manager.update(session, set=changes.set, unset=changes.unset, incr=changes.incr)
    return JSONResponse(with_token(ctx, {"data": dict(session)}))
