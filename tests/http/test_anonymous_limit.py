"""S10: session creation is rate-limited per client IP."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest

from huihua.config import Secret, Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app

pytestmark = pytest.mark.anyio


async def test_visitor_sessions_per_ip_are_limited_and_the_limit_passes(
    tmp_path: os.PathLike[str], clock: FakeClock
) -> None:
    settings = Settings(store=f"sqlite:///{os.fspath(tmp_path)}/s.db", secret_key=(Secret("k" * 32),))
    app = create_app(
        dataclasses.replace(settings, anonymous_sessions_per_ip_minute=3), clock=clock, sweeper=False
    )
    transport = httpx.ASGITransport(app=app)
    statuses = []
    for _ in range(4):
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"X-Session-Transport": "header"}
        ) as c:
            statuses.append((await c.patch("/v1/session/data", json={"incr": {"n": 1}})).status_code)
    assert statuses == [200, 200, 200, 429]
    assert await app.state.huihua.manager.count() == 3
    clock.advance(61)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-Session-Transport": "header"}
    ) as c:
        assert (await c.patch("/v1/session/data", json={"incr": {"n": 1}})).status_code == 200


async def test_post_with_method_override_is_served_as_patch(
    tmp_path: os.PathLike[str], clock: FakeClock
) -> None:
    """wx.request cannot send PATCH: the SDK posts with X-HTTP-Method-Override."""
    settings = Settings(store=f"sqlite:///{os.fspath(tmp_path)}/s.db", secret_key=(Secret("k" * 32),))
    app = create_app(settings, clock=clock, sweeper=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        header = {"X-Session-Transport": "header", "X-HTTP-Method-Override": "PATCH"}
        answer = await c.post("/v1/session/data", json={"incr": {"n": 2}}, headers=header)
        assert answer.status_code == 200
        assert answer.json()["data"] == {"n": 2}
        plain = await c.post(
            "/v1/session/data", json={"incr": {"n": 2}}, headers={"X-Session-Transport": "header"}
        )
        assert plain.status_code == 405
        # a cross-site form cannot use the override to slip past the CSRF rule
        forged = await c.post(
            "/v1/session/data",
            json={"incr": {"n": 1}},
            headers={"X-HTTP-Method-Override": "PATCH", "Origin": "http://evil.example"},
        )
        assert forged.status_code == 403
        # and GET cannot be turned into a write
        get = await c.get(
            "/v1/session/data", headers={"X-Session-Transport": "header", "X-HTTP-Method-Override": "PATCH"}
        )
        assert get.status_code == 200
        assert get.json()["data"] == {}
