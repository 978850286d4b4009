"""The seed flows of the tutorials huihua replaces, as HTTP scenarios over both transports."""

from __future__ import annotations

import pytest
from servicekit import PASSWORD, ApiClient

from huihua.core.clock import FakeClock

pytestmark = pytest.mark.anyio


async def test_set_a_value_then_read_it_in_the_next_request(client: ApiClient) -> None:
    r = await client.patch("/v1/session/data", {"set": {"name": "小明", "lang": "zh-CN"}})
    assert r.status_code == 200
    r = await client.get("/v1/session/data")
    assert r.json() == {"data": {"name": "小明", "lang": "zh-CN"}}


async def test_session_counter(client: ApiClient, clock: FakeClock) -> None:
    for expected in range(1, 6):
        r = await client.patch("/v1/session/data", {"incr": {"visits": 1}})
        assert r.json()["data"]["visits"] == expected
        clock.advance(61)  # activity is recorded, the session slides
    assert (await client.get("/v1/session/data")).json()["data"] == {"visits": 5}


async def test_register_login_me_logout(client: ApiClient) -> None:
    r = await client.post(
        "/v1/accounts", {"username": "xiaoming", "password": PASSWORD, "email": "xm@example.cn"}
    )
    assert r.status_code == 201
    r = await client.post("/v1/auth/login", {"username": "xiaoming", "password": PASSWORD})
    assert r.status_code == 200
    me = await client.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["user"]["email"] == "xm@example.cn"
    assert (await client.post("/v1/auth/logout")).status_code == 204
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401


async def test_authenticated_only_route_answers_401_when_not_logged_in(client: ApiClient) -> None:
    for path in ("/v1/auth/me", "/v1/sessions"):
        r = await client.get(path)
        assert r.status_code == 401
        assert r.json() == {"error": {"code": "not_authenticated", "message": r.json()["error"]["message"]}}
    # an anonymous session is still not a login
    await client.patch("/v1/session/data", {"set": {"a": 1}})
    assert (await client.get("/v1/auth/me")).status_code == 401
