"""huihua.fastapi: huihua installed into an app of one's own, its dependencies on the app's routes.

In process (httpx against the ASGI app); the example app is also served by uvicorn in
tests/test_examples_fastapi.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from servicekit import PASSWORD, BrowserClient, HeaderClient

from huihua.config import Settings
from huihua.core.session import Session
from huihua.fastapi import User, current_session, current_user, install, optional_session

pytestmark = pytest.mark.anyio
RELOGIN_CODES = {"not_authenticated", "session_expired", "session_revoked"}  # the SDK's defaults


class Blob(BaseModel):
    blob: str


def shop(settings: Settings, events: list[str] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        (events if events is not None else []).append("app started")
        yield {"greeting": "hello"}
        (events if events is not None else []).append("app stopped")

    app = FastAPI(lifespan=lifespan)

    @app.get("/me")
    async def me(user: User = Depends(current_user)) -> dict[str, Any]:
        return {"id": user.id, "username": user.username}

    @app.get("/visit")
    async def visit(session: Session | None = Depends(optional_session)) -> dict[str, Any]:
        return {"session": session.id if session else None}

    @app.get("/cart")
    async def cart(session: Session = Depends(current_session)) -> dict[str, Any]:
        return {"session": session.id, "user": session.user_id}

    @app.post("/orders")
    async def order(body: dict[str, Any], user: User = Depends(current_user)) -> dict[str, Any]:
        return {"ordered": body, "by": user.id}

    @app.post("/upload")
    async def upload(body: Blob) -> dict[str, int]:
        return {"size": len(body.blob)}

    install(app, replace(settings, max_body_bytes=4096), sweeper=False)
    return app


@pytest.fixture
async def app(settings: Settings) -> FastAPI:
    return shop(settings)


def assert_error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"error": {"code": code, "message": r.json()["error"]["message"]}}


async def test_header_client_on_own_routes(app: FastAPI) -> None:
    c = HeaderClient(app)
    r = await c.get("/me")
    assert_error(r, 401, "not_authenticated")
    assert (await c.get("/visit")).json() == {"session": None}
    user = (await c.signup("alice"))["user"]
    r = await c.get("/me")
    assert r.status_code == 200 and r.json() == {"id": user["id"], "username": "alice"}
    assert (await c.get("/cart")).json()["user"] == user["id"]
    r = await c.post("/orders", {"sku": "tea"})
    assert r.json() == {"ordered": {"sku": "tea"}, "by": user["id"]}
    token = c.token
    assert (await c.post("/v1/auth/logout")).status_code == 204
    c.present(token)  # the old token, as an app that has not noticed the logout
    for path in ("/me", "/cart", "/visit"):
        assert_error(await c.get(path), 401, "session_revoked")
    c.present("not-a-token")
    assert_error(await c.get("/me"), 401, "not_authenticated")
    await c.aclose()


async def test_visitor_has_a_session_but_no_user(app: FastAPI) -> None:
    c = HeaderClient(app)
    r = await c.patch("/v1/session/data", {"set": {"cart": ["tea"]}})
    assert r.status_code == 200 and c.token
    assert (await c.get("/cart")).json()["user"] is None
    r = await c.get("/me")
    assert_error(r, 401, "not_authenticated")
    assert r.json()["error"]["code"] in RELOGIN_CODES
    await c.aclose()


async def test_browser_cookies_and_csrf_on_own_routes(app: FastAPI) -> None:
    c = BrowserClient(app)
    user = (await c.signup("bob"))["user"]
    assert c.credential and "token" not in (await c.get("/me")).json()
    assert (await c.get("/me")).json()["id"] == user["id"]
    assert (await c.post("/orders", {"sku": "tea"})).status_code == 200  # Origin: our own
    r = await c.post("/orders", {"sku": "tea"}, headers={"Origin": "https://evil.example"})
    assert_error(r, 403, "csrf_failed")
    r = await c.post("/orders", {"sku": "tea"}, headers={"Origin": "", "Sec-Fetch-Site": "cross-site"})
    assert_error(r, 403, "csrf_failed")
    await c.aclose()


async def test_own_routes_keep_their_rules(app: FastAPI) -> None:
    c = HeaderClient(app)
    r = await c.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}  # FastAPI's, not huihua's
    r = await c.post("/upload", {"nope": 1})
    assert r.status_code == 422 and "detail" in r.json()
    r = await c.post("/upload", {"blob": "x" * 10_000})  # over huihua's limit: not huihua's to refuse
    assert r.status_code == 200 and r.json() == {"size": 10_000}
    assert_error(await c.get("/v1/nowhere"), 404, "not_found")
    r = await c.post("/v1/accounts", {"username": "x" * 10_000, "password": PASSWORD})
    assert_error(r, 413, "payload_too_large")
    r = await c.post("/v1/auth/login", {"username": 3})
    assert_error(r, 422, "invalid_request")
    for path in ("/", "/healthz", "/metrics"):  # the service's own pages are not added
        assert (await c.get(path)).status_code == 404, path
    assert "/v1/auth/login" in (await c.get("/openapi.json")).json()["paths"]
    await c.aclose()


async def test_lifespan_wraps_the_apps_own(settings: Settings) -> None:
    events: list[str] = []
    app = shop(settings, events)
    async with app.router.lifespan_context(app) as state:
        assert events == ["app started"] and state == {"greeting": "hello"}
    assert events == ["app started", "app stopped"]
    with pytest.raises(RuntimeError, match="already installed"):
        install(app, settings)


async def test_dependencies_without_install() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(user: User = Depends(current_user)) -> str:
        return user.id

    c = HeaderClient(app, raise_app_exceptions=True)
    with pytest.raises(RuntimeError, match=r"huihua\.fastapi\.install"):
        await c.get("/me")
    await c.aclose()
