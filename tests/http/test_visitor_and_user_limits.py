"""Issue 9 item 6 through the service: visitor lifetimes and data cap, the per-user cap."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest

from huihua.config import Secret, Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
HEADER = {"X-Session-Transport": "header"}


def app_for(tmp_path: os.PathLike[str], clock: FakeClock, **overrides: object) -> object:
    settings = Settings(store=f"sqlite:///{os.fspath(tmp_path)}/s.db", secret_key=(Secret("k" * 32),))
    return create_app(dataclasses.replace(settings, **overrides), clock=clock, sweeper=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_visitor_has_short_lifetimes_and_a_small_cap_until_login(
    tmp_path: os.PathLike[str], clock: FakeClock
) -> None:
    app = app_for(tmp_path, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.patch("/v1/session/data", json={"set": {"cart": "x" * 9000}}, headers=HEADER)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "session_data_too_large")
        r = await c.patch("/v1/session/data", json={"set": {"cart": ["tea"]}}, headers=HEADER)
        visitor = r.headers["x-session-token"]
        clock.advance(31 * 60)  # a mini program's user session idles 2 days; a visitor 30 minutes
        r = await c.get("/v1/session/data", headers=bearer(visitor))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_expired")
        r = await c.patch("/v1/session/data", json={"set": {"cart": ["tea"]}}, headers=HEADER)
        visitor = r.headers["x-session-token"]
        assert (
            await c.post("/v1/accounts", json={"username": "ann", "password": PASSWORD})
        ).status_code == 201
        r = await c.post(
            "/v1/auth/login", json={"username": "ann", "password": PASSWORD}, headers=bearer(visitor)
        )
        user = r.json()["token"]
        r = await c.patch("/v1/session/data", json={"set": {"big": "x" * 9000}}, headers=bearer(user))
        assert r.status_code == 200 and r.json()["data"]["cart"] == ["tea"]
        clock.advance(2 * 86400 - 60)
        assert (await c.get("/v1/session/data", headers=bearer(user))).status_code == 200


async def test_a_login_beyond_the_per_user_cap_ends_the_least_recently_used(
    tmp_path: os.PathLike[str], clock: FakeClock
) -> None:
    app = app_for(tmp_path, clock, max_sessions_per_user=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (
            await c.post("/v1/accounts", json={"username": "bob", "password": PASSWORD})
        ).status_code == 201
        tokens = []
        for _ in range(3):
            clock.advance(1)
            r = await c.post("/v1/auth/login", json={"username": "bob", "password": PASSWORD}, headers=HEADER)
            tokens.append(r.json()["token"])
        r = await c.get("/v1/auth/me", headers=bearer(tokens[0]))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
        for token in tokens[1:]:
            assert (await c.get("/v1/auth/me", headers=bearer(token))).status_code == 200
        assert len((await c.get("/v1/sessions", headers=bearer(tokens[2]))).json()["sessions"]) == 2
