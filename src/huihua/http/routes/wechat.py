"""WeChat login, binding and phone number: /v1/auth/wechat*."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field
from starlette.responses import JSONResponse

from ..context import SessionContext
from ..errors import ApiError
from ..limits import check_password, per_ip_per_minute
from ..represent import auth_answer
from ..schemas import AuthOut, Body, UserEnvelope, errors
from ..services import Services, services, session_context
from ..wechat_login import WeChatLogin
from .auth import signed_in

router = APIRouter(tags=["wechat"])


class WeChatLoginIn(Body):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    encrypted_data: str | None = Field(default=None, max_length=16384)
    iv: str | None = Field(default=None, max_length=64)
    raw_data: str | None = Field(default=None, max_length=8192)
    signature: str | None = Field(default=None, max_length=64)


class WeChatAuthOut(AuthOut):
    bound: bool


class BindIn(Body):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=512)


class PhoneIn(Body):
    code: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")


def _wechat(svc: Services) -> WeChatLogin:
    login: WeChatLogin = svc.wechat
    return login


@router.post("/v1/auth/wechat", response_model=WeChatAuthOut, responses=errors(400, 403, 429, 503))
async def wechat_login(
    body: WeChatLoginIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Exchange a `wx.login` code for a huihua session; `bound` tells whether the WeChat user
    is tied to a password account. Optional open data is verified and decrypted server-side."""
    await per_ip_per_minute(
        svc, ctx, "WeChat logins", svc.settings.wechat_logins_per_ip_minute, "too_many_attempts"
    )
    open_data = body.model_dump(exclude={"code"}, exclude_none=True) or None
    try:
        outcome = await _wechat(svc).exchange(
            body.code, current=await ctx.current(), ip=ctx.ip, user_agent=ctx.user_agent, open_data=open_data
        )
    except ApiError as exc:
        svc.metrics.logins.labels("wechat", "failure").inc()
        svc.manager.emit_login_failed(None, exc.code)
        raise
    ctx.issue(outcome.session)
    svc.metrics.logins.labels("wechat", "success").inc()
    return auth_answer(ctx, outcome.user, outcome.session, bound=outcome.bound)


@router.post("/v1/auth/wechat/bind", response_model=AuthOut, responses=errors(401, 409, 429))
async def wechat_bind(
    body: BindIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Tie this WeChat session to an existing account after checking its password."""
    session, wechat_user = await signed_in(ctx, svc)
    target = await check_password(svc, ctx, body.username, body.password, status=403)
    rotated = await _wechat(svc).bind(session, wechat_user, target)
    ctx.issue(rotated)
    return auth_answer(ctx, target, rotated)


@router.post("/v1/auth/wechat/phone", response_model=UserEnvelope, responses=errors(400, 401, 503))
async def wechat_phone(
    body: PhoneIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Store the phone number from a `getPhoneNumber` button's code."""
    _, user = await signed_in(ctx, svc)
    phone = await _wechat(svc).phone_number(body.code, user.id)
    await svc.accounts.set_phone(user.id, phone)
    updated = await svc.accounts.get(user.id)
    assert updated is not None
    return JSONResponse({"user": updated.public()})
