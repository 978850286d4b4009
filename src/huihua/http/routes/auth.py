"""Accounts and password login: /v1/accounts, /v1/auth/*."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse, Response

from ...accounts.users import User
from ...core.errors import SessionRevoked, SessionUnknown
from ...core.session import Session
from ..context import SessionContext, in_good_standing
from ..represent import auth_answer, session_out
from ..schemas import AccountIn, AuthOut, LoginIn, LogoutAllIn, MeOut, PasswordIn, UserEnvelope, errors
from ..services import Services, services, session_context

router = APIRouter(tags=["accounts"])


async def signed_in(ctx: SessionContext, svc: Services) -> tuple[Session, User]:
    """The session and its user, or 401. A user disabled meanwhile loses the session here too."""
    session = await ctx.require()
    if session.user_id is None:
        raise SessionUnknown("log in first: this session is anonymous")
    if ctx.user is not None and ctx.user.id == session.user_id:  # checked when it was loaded
        return session, ctx.user
    try:  # a session this request issued: its user is checked here
        user = await in_good_standing(svc.manager, svc.accounts.get, session)
    except SessionRevoked:
        ctx.end()
        raise
    assert user is not None
    return session, user


@router.post("/v1/accounts", status_code=201, response_model=UserEnvelope, responses=errors(409, 422, 429))
async def create_account(
    body: AccountIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Register an account. Each one costs an argon2 hash: limited per client address."""
    user = await svc.passwords.register(
        body.username,
        body.password,
        email=body.email,
        phone=body.phone,
        ip=ctx.ip,
        per_minute=svc.settings.registrations_per_ip_minute,
    )
    return JSONResponse({"user": user.public()}, status_code=201)


@router.post("/v1/auth/login", response_model=AuthOut, responses=errors(401, 429))
async def login(
    body: LoginIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    user, session = await svc.passwords.log_in(ctx, body.username, body.password, ip=ctx.ip)
    return auth_answer(ctx, user, session)


@router.post("/v1/auth/logout", status_code=204)
async def logout(
    svc: Services = Depends(services), ctx: SessionContext = Depends(session_context)
) -> Response:
    session = await ctx.current()
    if session is not None:
        await svc.manager.revoke(session)
        ctx.end()
    return Response(status_code=204)


@router.post("/v1/auth/logout-all", status_code=204, responses=errors(401))
async def logout_all(
    body: LogoutAllIn | None = None,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> Response:
    session = await ctx.require()
    keep = body.keep_current if body else False
    if session.user_id is None:
        if not keep:
            await svc.manager.revoke(session)
            ctx.end()
        return Response(status_code=204)
    await svc.manager.revoke_user(session.user_id, except_id=session.id if keep else None)
    if not keep:
        ctx.end()
    return Response(status_code=204)


@router.post("/v1/auth/password", response_model=AuthOut, responses=errors(401, 403, 422, 429))
async def change_password(
    body: PasswordIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Change the password (the current one is checked like a login, throttled); every other
    session ends. With `unlink_identities`, every linked WeChat identity is unlinked too: whoever
    learned the old password and bound their own WeChat is out."""
    session, user = await signed_in(ctx, svc)
    rotated = await svc.passwords.change_password(
        ctx,
        session,
        user,
        body.current_password,
        body.new_password,
        ip=ctx.ip,
        unlink_identities=body.unlink_identities,
    )
    return auth_answer(ctx, user, rotated)


@router.get("/v1/auth/me", response_model=MeOut, responses=errors(401))
async def me(
    svc: Services = Depends(services), ctx: SessionContext = Depends(session_context)
) -> JSONResponse:
    session, user = await signed_in(ctx, svc)
    return JSONResponse({"user": user.public(), "session": session_out(session)})
