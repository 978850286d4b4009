"""WeChat login, binding and phone number: /v1/auth/wechat*."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from pydantic import Field
from starlette.responses import JSONResponse

from ...accounts.wechat_login import IDEMPOTENCY_KEY, OpenData, WeChatLoginError, check_idempotency_key
from ..context import SessionContext
from ..errors import ApiError
from ..represent import auth_answer
from ..schemas import AuthOut, Body, UserEnvelope, errors
from ..services import Services, services, session_context
from ..wechat_login import ServiceWeChat, member_of
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


NOT_CONFIGURED = (
    "WeChat login is not configured on this server: set HUIHUA_WECHAT_APPID and HUIHUA_WECHAT_SECRET "
    "(or run `huihua serve --emulator` for local development)"
)
IDEMPOTENCY_KEY_DOC = (
    "A random value the client makes for this login attempt (16 to 128 characters: letters, digits "
    "and `. _ ~ + / = : -`) and keeps in memory only. A retry with the same code and the same key "
    "gets the same session; the same code with no key or another key gets `wechat_code_used`."
)


def _wechat(svc: Services) -> ServiceWeChat:
    if svc.wechat is None:
        raise ApiError(503, "wechat_not_configured", NOT_CONFIGURED)
    wechat: ServiceWeChat = svc.wechat
    return wechat


def _idempotency_key_schema(schema: dict[str, Any]) -> None:
    """A header is a string or absent (never null): the rule check_idempotency_key enforces
    (with its own 400) is stated in the schema."""
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=IDEMPOTENCY_KEY.pattern.replace(r"\A", "^").replace(r"\Z", "$"))


@router.post("/v1/auth/wechat", response_model=WeChatAuthOut, responses=errors(400, 403, 429, 503))
async def wechat_login(
    body: WeChatLoginIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
    idempotency_key: str | None = Header(
        default=None,
        alias="Idempotency-Key",
        description=IDEMPOTENCY_KEY_DOC,
        json_schema_extra=_idempotency_key_schema,
    ),
) -> JSONResponse:
    """Exchange a `wx.login` code for a huihua session; `bound` tells whether the WeChat user
    is tied to a password account. Optional open data is verified and decrypted server-side
    (`raw_data` must be a JSON object with its `signature`)."""
    wechat = _wechat(svc)
    key = check_idempotency_key(idempotency_key)
    open_data = OpenData.of(body.model_dump(exclude={"code"}))
    await svc.accounts.count_per_address("WeChat logins", ctx.ip, svc.settings.wechat_logins_per_ip_minute)
    try:
        outcome = await wechat.run(
            wechat.login.exchange(body.code, idempotency_key=key, open_data=open_data), svc, ctx
        )
    except (ApiError, WeChatLoginError) as exc:
        svc.metrics.logins.labels("wechat", "failure").inc()
        svc.manager.emit_login_failed(None, exc.code)
        raise
    svc.metrics.logins.labels("wechat", "success").inc()
    return auth_answer(ctx, outcome.member.user, outcome.session, bound=outcome.member.bound)


@router.post("/v1/auth/wechat/bind", response_model=AuthOut, responses=errors(401, 403, 409, 429, 503))
async def wechat_bind(
    body: BindIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Tie this WeChat session to an existing account after checking its password."""
    wechat = _wechat(svc)
    _, wechat_user = await signed_in(ctx, svc)
    flow = wechat.login.bind(member_of(wechat_user), body.username, body.password)
    outcome = await wechat.run(flow, svc, ctx)
    return auth_answer(ctx, outcome.member.user, outcome.session)


@router.post("/v1/auth/wechat/phone", response_model=UserEnvelope, responses=errors(400, 401, 503))
async def wechat_phone(
    body: PhoneIn,
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> JSONResponse:
    """Store the phone number from a `getPhoneNumber` button's code."""
    wechat = _wechat(svc)
    _, user = await signed_in(ctx, svc)
    phone = await wechat.run(wechat.login.phone_number(member_of(user), body.code), svc, ctx)
    await svc.accounts.set_phone(user.id, phone)
    updated = await svc.accounts.get(user.id)
    assert updated is not None
    return JSONResponse({"user": updated.public()})
