"""huihua inside your own FastAPI app.

    from fastapi import Depends, FastAPI
    from huihua.fastapi import User, current_user, install

    app = FastAPI()
    install(app)  # /v1 routes, session middleware, store and accounts with the app's lifespan

    @app.get("/orders")
    async def orders(user: User = Depends(current_user)) -> list[dict]:
        ...

The session middleware serves every route of the app: header clients (`Authorization: Bearer`)
and browsers (an HttpOnly cookie; a cookie write from another origin is refused with 403
`csrf_failed`, on your routes too). A request without a usable session gets huihua's 401
(`{"error": {"code": "not_authenticated" | "session_expired" | "session_revoked", ...}}`), the
answer the mini program SDK re-logs in on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request

from .accounts.users import User as Account
from .config import Settings
from .core.session import Session
from .core.store import AsyncStore
from .http.app import install as _install
from .http.context import SessionContext
from .http.middleware import CONTEXT_KEY
from .http.routes.auth import signed_in
from .http.services import Services

__all__ = [
    "Session",
    "SessionContext",
    "User",
    "current_session",
    "current_user",
    "install",
    "optional_session",
    "session_context",
]


def install(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    store: AsyncStore | None = None,
    sweeper: bool = True,
    wechat_transport: Any = None,
) -> Services:
    """Mount huihua's /v1 routes and middleware into `app`; its store, accounts database,
    sweeper and WeChat client start and stop with the app's lifespan (around the app's own
    lifespan, which is kept). `settings` default to the environment, as `huihua serve` reads
    them (HUIHUA_* variables and the HUIHUA_CONFIG file). Call it once, before the app serves.

    Only the /v1 routes are added (no page at `/`, no /healthz, /readyz or /metrics); the body
    limit, the JSON body check and huihua's error format for validation and HTTP errors apply
    to /v1 only, so your own routes keep their own rules."""
    if getattr(app.state, "huihua", None) is not None:
        raise RuntimeError("huihua is already installed in this app")
    return _install(app, settings, store=store, sweeper=sweeper, wechat_transport=wechat_transport)


@dataclass(frozen=True, slots=True)
class User:
    """The signed-in user, as your routes see it (never the password hash)."""

    id: str
    username: str | None  # None for a user who only ever signed in with WeChat
    email: str | None
    phone: str | None
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> User:
        created = datetime.fromtimestamp(account.created_at, UTC)
        return cls(account.id, account.username, account.email, account.phone, created)


async def session_context(request: Request) -> SessionContext:
    """The request's session context (to `issue` or `end` sessions in your own login routes)."""
    ctx: SessionContext | None = request.scope.get(CONTEXT_KEY)
    if ctx is None:
        raise RuntimeError("huihua's session middleware is not in this app: call huihua.fastapi.install(app)")
    return ctx


async def optional_session(request: Request) -> Session | None:
    """The live session, or None when the request sent no token. A token that was sent but is
    expired, revoked or unknown gets the 401 (the client should log in again, not quietly
    become a visitor)."""
    return await (await session_context(request)).optional()


async def current_session(request: Request) -> Session:
    """The live session (a visitor's too), or the 401 that says why there is none."""
    return await (await session_context(request)).require()


async def current_user(request: Request) -> User:
    """The signed-in user; 401 `not_authenticated` without a session or for a visitor's
    session, `session_revoked` when the account was disabled meanwhile."""
    ctx = await session_context(request)
    svc: Services = request.app.state.huihua
    _, account = await signed_in(ctx, svc)
    return User.of(account)
