"""Fixtures for the HTTP service tests (helpers live in servicekit.py, realserve.py and wechatkit.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from servicekit import CLIENT_KINDS, SERVICE_KEY, ApiClient, ServeProcess, serve_env
from wechatkit import OTHER_APPID, OTHER_SECRET, WeChatWorld, build_service

from huihua.config import Secret, Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app
from huihua.wechat.emulator import create_app as create_emulator


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(store=sqlite_url, service_key=Secret(SERVICE_KEY))


@pytest.fixture
def make_app(settings: Settings, clock: FakeClock) -> Callable[..., FastAPI]:
    """Build an app on the test's SQLite file and fake clock; keyword arguments override settings."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(replace(settings, **overrides), clock=clock, sweeper=False)

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[Callable[..., ApiClient]]:
    """`new_client("browser" | "header", app=..., base_url=...)`: more clients of the same app."""
    made: list[ApiClient] = []

    def make(kind: str, *, app_: FastAPI | None = None, **kw: Any) -> ApiClient:
        c = CLIENT_KINDS[kind](app_ or app, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


@pytest.fixture(params=["browser", "header"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(kind: str, new_client: Callable[..., ApiClient]) -> ApiClient:
    return new_client(kind)


@pytest.fixture
def service(new_client: Callable[..., ApiClient]) -> ApiClient:
    """A backend calling /v1/introspect and /v1/admin with the service key."""
    c = new_client("header")
    c.http.headers["X-Service-Key"] = SERVICE_KEY
    return c


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(
        port: int | None = None, log_level: str | None = "warning", args: Sequence[str] = (), **extra: str
    ) -> ServeProcess:
        env = serve_env(tmp_path, **extra)
        p = ServeProcess(env, cwd=tmp_path, port=port, log_level=log_level, args=args)
        started.append(p)  # before start: one that never came up is stopped too
        return p.start()

    yield start
    for p in started:
        p.stop()


@pytest.fixture
async def world(tmp_path: os.PathLike[str], clock: FakeClock) -> AsyncIterator[WeChatWorld]:
    emulator_app = create_emulator({OTHER_APPID: OTHER_SECRET}, clock=clock)
    app = build_service(os.fspath(tmp_path), emulator_app, clock)
    clients: list[httpx.AsyncClient] = []

    def service(transport: str = "header", token: str | None = None) -> httpx.AsyncClient:
        headers = (
            {"X-Session-Transport": "header"} if transport == "header" else {"Origin": "http://testserver"}
        )
        if token:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                   headers=headers)  # fmt: skip
        clients.append(client)
        return client

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator_app),
                                 base_url="http://wechat.test") as emulator:  # fmt: skip
        yield WeChatWorld(emulator_app, emulator, service, app)
    for client in clients:
        await client.aclose()
    await app.state.huihua.wechat.aclose()
