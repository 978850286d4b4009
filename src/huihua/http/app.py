"""The ASGI application factory of `huihua serve`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI

from ..accounts.database import database_from_url
from ..accounts.service import Accounts
from ..config import Settings
from ..core.async_manager import AsyncSessionManager
from ..core.clock import Clock
from ..core.events import log_event
from ..core.policy import ExpiryPolicy, Lifetime
from ..core.store import AsyncStore
from ..core.sweeper import AsyncSweeper
from ..stores import async_store_from_url
from .allow import install_allow_on_405
from .cors import CorsMiddleware
from .docs import install_docs
from .errors import install_error_handlers
from .json_body import JsonBodyMiddleware
from .metrics import Metrics, RequestMetricsMiddleware, TimedStore
from .middleware import BodyLimitMiddleware, MethodOverrideMiddleware, SessionMiddleware
from .openapi_errors import add_body_errors
from .openapi_links import add_links
from .pages import router as pages_router
from .proxies import TrustedProxyMiddleware
from .routes import auth, health, identities, service, sessions, wechat
from .scoped import OnlyUnder, install_scoped_error_handlers
from .services import Services

logger = logging.getLogger("huihua")

DESCRIPTION = """Sessions for WeChat Mini Programs and the web.

**Transports.** Send `Authorization: Bearer <token>` (or `X-Session-Transport: header` before
you have one) and new tokens come back in the JSON `token` field and the `X-Session-Token`
header. Any other request is a browser: the token lives only in an HttpOnly cookie, and
state-changing requests must come from an allowed origin.

**Errors** are `{"error": {"code": "...", "message": "..."}}`; 401s name the reason
(`not_authenticated`, `session_expired`, `session_revoked`).
"""


def create_app(
    settings: Settings | None = None,
    *,
    store: AsyncStore | None = None,
    clock: Clock | None = None,
    policy: ExpiryPolicy | None = None,
    sweeper: bool = True,
    wechat_transport: Any = None,
) -> FastAPI:
    """The whole service: huihua's own app, with its pages, health checks and metrics."""
    app = FastAPI(title="huihua", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None)
    install_docs(app)  # /docs and /redoc with their files served from here, never a CDN
    install(
        app, settings, store=store, clock=clock, policy=policy, sweeper=sweeper,
        wechat_transport=wechat_transport, embedded=False,
    )  # fmt: skip
    return app


API_PREFIX = "/v1/"


def install(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    store: AsyncStore | None = None,
    clock: Clock | None = None,
    policy: ExpiryPolicy | None = None,
    sweeper: bool = True,
    wechat_transport: Any = None,
    embedded: bool = True,
) -> Services:
    """Put huihua into `app`: its services, the /v1 routes, the middleware, and its resources
    started and stopped with the app's lifespan (around the app's own, which is kept).

    `embedded` (the default, for `huihua.fastapi.install`): the app is someone else's, so huihua
    adds only the /v1 routes (no pages at `/`, no /healthz, /readyz or /metrics), keeps its error
    format, body limit and JSON body check to /v1, and leaves the app's own routes' errors alone.
    The session middleware (cookies, bearer tokens, CSRF for cookie writes) and the method
    override apply to every route, so the app's own routes can use the sessions."""
    settings = (settings or Settings.from_env()).with_secret_key()
    clock = clock or settings.clock()
    metrics = Metrics()
    raw_store = store if store is not None else async_store_from_url(settings.store)
    policy = policy or ExpiryPolicy()
    if policy.anonymous is None:  # visitors get the service's short lifetimes
        visitor = Lifetime(settings.anonymous_idle_timeout, settings.anonymous_absolute_timeout)
        policy = replace(policy, anonymous=visitor)
    manager = AsyncSessionManager(
        TimedStore(raw_store, metrics),
        policy=policy,
        max_data_bytes=settings.max_data_bytes,
        anonymous_max_data_bytes=settings.anonymous_max_data_bytes,
        max_sessions_per_user=settings.max_sessions_per_user if settings.max_sessions_per_user > 0 else None,
        clock=clock,
        events=(log_event, metrics.on_event),
    )
    accounts = Accounts(database_from_url(settings.database_url), clock=clock)
    svc = Services(settings=settings, manager=manager, accounts=accounts, metrics=metrics)
    if settings.wechat_enabled:
        from .wechat_login import ServiceWeChat

        svc.wechat = ServiceWeChat.from_settings(
            settings, manager=manager, accounts=accounts, transport=wechat_transport
        )

    with_lifespan(app, svc, sweeper=sweeper, close=store is None)
    app.state.huihua = svc
    if embedded:
        install_scoped_error_handlers(app, API_PREFIX)
    else:
        install_error_handlers(app)
    install_allow_on_405(app)
    routers: tuple[APIRouter, ...] = (
        auth.router,
        identities.router,
        wechat.router,
        sessions.router,
        service.router,
        service.admin,
    )
    if not embedded:
        routers = (*routers, health.router, pages_router)
    for router in routers:
        app.include_router(router)  # WeChat's too: without its settings they answer 503
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_body_errors(add_links(generate()), only)
        return app.openapi_schema

    only = API_PREFIX if embedded else ""  # the app's own routes keep their own body rules
    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(SessionMiddleware, manager=lambda: manager, settings=settings, users=accounts.get)
    app.add_middleware(OnlyUnder, prefix=only, wrap=JsonBodyMiddleware)  # inside the limit: bounded
    limit = settings.max_body_bytes
    app.add_middleware(OnlyUnder, prefix=only, wrap=lambda inner: BodyLimitMiddleware(inner, max_bytes=limit))
    app.add_middleware(MethodOverrideMiddleware)  # outside the session middleware: CSRF sees the real method
    app.add_middleware(CorsMiddleware, origins=settings.cors_origins)  # outside: errors get CORS headers too
    if not embedded:
        app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    if settings.trust_proxy:  # outermost: everything inside sees the forwarded client and scheme
        app.add_middleware(TrustedProxyMiddleware, proxies=settings.trust_proxy)
    return svc


def with_lifespan(app: FastAPI, svc: Services, *, sweeper: bool, close: bool) -> None:
    """Run huihua's sweeper and close its WeChat client (and, with `close`, the store and
    accounts database) around the app's own lifespan, which is kept: it starts after huihua's
    and its state (what it yields) is the app's."""
    own_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        manager, metrics = svc.manager, svc.metrics
        background = (
            AsyncSweeper(manager, interval=svc.settings.sweep_interval, report=metrics.on_sweep)
            if sweeper
            else None
        )
        if background is not None:
            background.start()
        try:
            async with own_lifespan(target) as state:
                yield state
        finally:
            if background is not None:
                await background.stop()
            if svc.wechat is not None:
                await svc.wechat.aclose()
            if close:  # the store and database huihua opened; a store passed in is the caller's
                await manager.store.close()
                await anyio.to_thread.run_sync(svc.accounts.db.close)

    app.router.lifespan_context = lifespan


def app_from_env() -> FastAPI:
    """For `uvicorn --factory --no-proxy-headers huihua.http.app:app_from_env` (each worker
    builds its own).

    Pass `--no-proxy-headers` whenever you run uvicorn yourself: by default uvicorn rewrites the
    client address and scheme from `X-Forwarded-For` and `X-Forwarded-Proto` for any request from
    127.0.0.1 (its `--forwarded-allow-ips`) before huihua sees it, so a local client, or a proxy
    on the same machine that passes the client's own headers on, picks the address that per-IP
    limits and the session list record, and makes a plain-HTTP request look like HTTPS (it gets a
    `__Host-sid; Secure` cookie). Forwarded headers are huihua's to judge, from the proxies named
    in HUIHUA_TRUST_PROXY; `huihua serve` turns uvicorn's handling off itself."""
    return create_app()
