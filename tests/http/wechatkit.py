"""A service wired to an in-process WeChat emulator (over httpx's ASGI transport); the `world`
fixture in conftest.py builds one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from huihua.config import Secret, Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app
from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET

OTHER_APPID = "wx00000000000000aa"
OTHER_SECRET = "other-emulator-secret"


@dataclass
class WeChatWorld:
    emulator_app: Any
    emulator: httpx.AsyncClient  # the phone's and the test's side: /_emulator/
    service: Callable[..., httpx.AsyncClient]  # a client of the huihua service
    app: Any

    async def code(self, openid: str | None = None, **extra: Any) -> tuple[str, str]:
        body = {"openid": openid, **extra} if openid else dict(extra)
        answer = (await self.emulator.post("/_emulator/login", json=body)).json()
        return answer["code"], answer["openid"]

    def sent(self, path: str) -> int:
        transport = self.app.state.huihua.wechat.client._http._transport
        return sum(1 for p in transport.sent if p == path)

    async def calls(self, path: str) -> list[dict[str, Any]]:
        calls = (await self.emulator.get("/_emulator/calls")).json()["calls"]
        return [c for c in calls if c["path"] == path]


class NetworkLikeTransport(httpx.ASGITransport):
    """The ASGI transport, plus what a network adds: a read timeout (ASGI calls never time out)."""

    read_timeout = 0.5

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.sent: list[str] = []  # the path of every request the client sent, timed out or not

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url.path)
        try:
            return await asyncio.wait_for(super().handle_async_request(request), self.read_timeout)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("emulated read timeout", request=request) from exc


def build_service(tmp: str, emulator_app: Any, clock: FakeClock, appid: str = DEFAULT_APPID,
                  secret: str = DEFAULT_SECRET) -> Any:  # fmt: skip
    settings = Settings(
        store=f"sqlite:///{tmp}/sessions.db",
        secret_key=(Secret("test-secret-key-one-at-least-32-characters"),),
        wechat_appid=appid,
        wechat_secret=Secret(secret),
        wechat_api_base="http://wechat.test",
    )
    return create_app(settings, clock=clock, sweeper=False,
                      wechat_transport=NetworkLikeTransport(app=emulator_app))  # fmt: skip
