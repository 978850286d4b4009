"""Fixtures for the WeChat tests: an emulator per test (on the fake clock), reached in-process or
over real HTTP (one uvicorn per session on a free loopback port, switched to each test's emulator),
and client factories that close what they open."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from huihua.core.clock import FakeClock
from huihua.wechat import AsyncWeChatClient, WeChatClient
from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET, Emulator, create_app
from huihua.wechat.emulator.transport import SyncASGITransport

APPID, SECRET = DEFAULT_APPID, DEFAULT_SECRET
EMU = "http://emulator.test"


class Switch:
    """An ASGI app that forwards to whichever emulator the current test installed."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def _live_server() -> Iterator[tuple[str, Switch]]:
    switch = Switch()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        switch, lifespan="off", log_level="warning", access_log=False, ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", switch
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture
def emulator_app(clock: FakeClock) -> Starlette:
    return create_app(clock=clock)


@pytest.fixture
def emu(emulator_app: Starlette) -> Emulator:
    state: Emulator = emulator_app.state.emulator
    return state


@pytest.fixture
def live_url(_live_server: tuple[str, Switch], emulator_app: Starlette) -> str:
    """This test's emulator, over real HTTP on loopback."""
    url, switch = _live_server
    switch.app = emulator_app
    return url


@pytest.fixture
def control(emulator_app: Starlette) -> Iterator[httpx.Client]:
    """An HTTP client for the emulator (WeChat API and /_emulator/), in-process."""
    with httpx.Client(transport=SyncASGITransport(emulator_app), base_url=EMU) as client:
        yield client


@pytest.fixture
def login(control: httpx.Client) -> Callable[..., dict[str, str]]:
    """wx.login on the emulated phone: {code, openid}."""

    def login(**body: Any) -> dict[str, str]:
        response = control.post("/_emulator/login", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, str] = response.json()
        return answer

    return login


@pytest.fixture
def calls(emu: Emulator) -> Callable[[str], list[dict[str, Any]]]:
    """The API calls the emulator received for one path."""
    return lambda path: [c for c in emu.calls if c["path"] == path]


@pytest.fixture
def make_client(emulator_app: Starlette, clock: FakeClock) -> Iterator[Callable[..., WeChatClient]]:
    """WeChatClient factory: in-process by default, or `api_base=live_url` for real HTTP."""
    made: list[WeChatClient] = []

    def make(**kwargs: Any) -> WeChatClient:
        if "api_base" not in kwargs:
            kwargs.setdefault("transport", SyncASGITransport(emulator_app))
            kwargs["api_base"] = EMU
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("backoff", 0.001)
        client = WeChatClient(kwargs.pop("appid", APPID), kwargs.pop("secret", SECRET), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
async def make_async_client(
    emulator_app: Starlette, clock: FakeClock
) -> AsyncIterator[Callable[..., AsyncWeChatClient]]:
    made: list[AsyncWeChatClient] = []

    def make(**kwargs: Any) -> AsyncWeChatClient:
        if "api_base" not in kwargs:
            kwargs.setdefault("transport", httpx.ASGITransport(app=emulator_app))
            kwargs["api_base"] = EMU
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("backoff", 0.001)
        client = AsyncWeChatClient(kwargs.pop("appid", APPID), kwargs.pop("secret", SECRET), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
