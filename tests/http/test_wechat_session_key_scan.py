"""`session_key` is never in any answer: every route of the OpenAPI document (and the pages,
docs and metrics), over both transports, scanned during a WeChat flow with open data, a
replayed code, a key rotated by WeChat, binding and phone numbers (issue 14 item 5).

Scanned for every session_key WeChat issued during the flow, in every spelling that could
leak it (base64, URL-safe base64, unpadded, hex of its bytes), and for the sealed value the
identity table keeps.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from wechatkit import NetworkLikeTransport

from huihua.config import Secret, Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app
from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET
from huihua.wechat.emulator import create_app as create_emulator

pytestmark = pytest.mark.anyio
SERVICE_KEY = "scan-service-key-0123456789"
PASSWORD = "correct horse battery"


def spellings(session_key: str) -> set[str]:
    raw = base64.b64decode(session_key)
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return {session_key, session_key.rstrip("="), urlsafe, urlsafe.rstrip("="), raw.hex(), raw.hex().upper()}


class Scan:
    def __init__(self, app: Any, emulator_app: Any) -> None:
        self.app = app
        self.emulator_app = emulator_app
        self.emu = emulator_app.state.emulator
        self.answers: list[str] = []
        self.operations: set[tuple[str, str]] = set()
        self.keys: set[str] = set()

    def client(self, transport: str, **headers: str) -> httpx.AsyncClient:
        base = {"X-Session-Transport": "header"} if transport == "header" else {"Origin": "http://testserver"}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver",
                                 headers={**base, **headers})  # fmt: skip

    async def call(
        self, client: httpx.AsyncClient, method: str, path: str, template: str | None = None, **kw: Any
    ) -> httpx.Response:
        answer = await client.request(method, path, **kw)
        assert answer.status_code < 500, (method, path, answer.text)
        self.answers.append(f"{method} {path} {answer.status_code}\n{answer.headers!r}\n{answer.text}")
        self.operations.add((method, template or path))
        self.remember_keys()
        return answer

    def remember_keys(self) -> None:
        for user in self.emu.users.values():
            self.keys.add(user.session_key)

    async def emulator(self, control: str, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.emulator_app),
                                     base_url="http://wechat.test") as e:  # fmt: skip
            answer = await e.post(f"/_emulator/{control}", json=body)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            self.remember_keys()
            return result


@pytest.fixture
async def scan(tmp_path: os.PathLike[str], clock: FakeClock) -> AsyncIterator[Scan]:
    emulator_app = create_emulator(clock=clock)
    settings = Settings(
        store=f"sqlite:///{os.fspath(tmp_path)}/sessions.db",
        secret_key=(Secret("scan-secret-key-of-thirty-two-characters"),),
        service_key=Secret(SERVICE_KEY),
        wechat_appid=DEFAULT_APPID,
        wechat_secret=Secret(DEFAULT_SECRET),
        wechat_api_base="http://wechat.test",
    )
    app = create_app(
        settings, clock=clock, sweeper=False, wechat_transport=NetworkLikeTransport(emulator_app)
    )
    yield Scan(app, emulator_app)
    await app.state.huihua.wechat.aclose()


@pytest.mark.parametrize("transport", ["header", "cookie"])
async def test_session_key_is_in_no_answer_of_any_route(scan: Scan, transport: str) -> None:
    anon = scan.client(transport)
    service = scan.client("header", **{"X-Service-Key": SERVICE_KEY})
    await scan.call(anon, "POST", "/v1/accounts", json={"username": "alice", "password": PASSWORD})

    login = await scan.emulator("login", {})
    openid = login["openid"]
    profile = await scan.emulator("encrypted-data", {"openid": openid, "data": {"nickName": "张三"}})
    first = await scan.call(anon, "POST", "/v1/auth/wechat", json={"code": login["code"], **profile})
    assert first.status_code == 200, first.text
    await scan.call(anon, "POST", "/v1/auth/wechat", json={"code": login["code"]})  # the replay
    token = first.json().get("token")
    me = scan.client(transport, **({"Authorization": f"Bearer {token}"} if token else {}))
    if not token:
        me.cookies.update(anon.cookies)
    await scan.emulator("session-key/rotate", {"openid": openid})
    again = await scan.emulator("login", {"openid": openid})
    relogin = await scan.call(me, "POST", "/v1/auth/wechat", json={"code": again["code"]})
    assert relogin.status_code == 200, relogin.text
    if token := relogin.json().get("token"):
        me.headers["Authorization"] = f"Bearer {token}"
    user_id = relogin.json()["user"]["id"]

    phone = await scan.emulator("phone-code", {"openid": openid, "phone": "13800138000"})
    await scan.call(me, "POST", "/v1/auth/wechat/phone", json={"code": phone["code"]})
    await scan.call(me, "GET", "/v1/auth/me")
    await scan.call(me, "GET", "/v1/sessions")
    await scan.call(me, "PATCH", "/v1/session/data", json={"set": {"a": 1}, "incr": {"n": 1}})
    await scan.call(me, "GET", "/v1/session/data")
    credential = token or me.cookies.get("sid")
    introspected = await scan.call(service, "POST", "/v1/introspect", json={"token": credential})
    assert introspected.json()["active"] is True, introspected.text
    await scan.call(
        service, "GET", f"/v1/admin/users/{user_id}/sessions", "/v1/admin/users/{user_id}/sessions"
    )
    await scan.call(service, "GET", "/v1/admin/stats")
    for path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/docs"):
        await scan.call(anon, "GET", path)
    bound = await scan.call(
        me, "POST", "/v1/auth/wechat/bind", json={"username": "alice", "password": PASSWORD}
    )
    assert bound.status_code == 200, bound.text
    if token := bound.json().get("token"):
        me.headers["Authorization"] = f"Bearer {token}"
    identities = await scan.call(me, "GET", "/v1/auth/identities")
    assert identities.status_code == 200, identities.text
    identity = identities.json()["identities"][0]["id"]
    refused = await scan.call(  # a wrong password: the identity (and its sealed key) stays
        me, "DELETE", f"/v1/auth/identities/{identity}", "/v1/auth/identities/{identity_id}",
        json={"password": "wrong password"},
    )  # fmt: skip
    assert refused.status_code == 403, refused.text
    await scan.call(me, "POST", "/v1/auth/password", json={"current_password": "wrong", "new_password": "x"})
    await scan.call(me, "POST", "/v1/auth/logout-all", json={"keep_current": True})
    user_id = bound.json()["user"]["id"]
    others = []
    for _ in range(2):
        other = await scan.call(
            scan.client(transport), "POST", "/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        others.append(other.json()["session"]["id"])
    deleted = await scan.call(me, "DELETE", f"/v1/sessions/{others[0]}", "/v1/sessions/{session_id}")
    assert deleted.status_code == 204
    admin = f"/v1/admin/users/{user_id}"
    deleted = await scan.call(
        service, "DELETE", f"{admin}/sessions/{others[1]}", "/v1/admin/users/{user_id}/sessions/{session_id}"
    )
    assert deleted.status_code == 204
    await scan.call(service, "POST", f"{admin}/disable", "/v1/admin/users/{user_id}/disable")
    await scan.call(service, "POST", f"{admin}/enable", "/v1/admin/users/{user_id}/enable")
    await scan.call(service, "DELETE", f"{admin}/sessions", "/v1/admin/users/{user_id}/sessions")
    await scan.call(me, "POST", "/v1/auth/logout")

    documented = {(m.upper(), p) for p, ops in scan.app.openapi()["paths"].items() for m in ops}
    assert documented <= scan.operations, f"routes left unscanned: {sorted(documented - scan.operations)}"
    sealed = [row[0] for row in scan.app.state.huihua.accounts.db.execute(
        "SELECT session_key_sealed FROM huihua_wechat_identity")]  # fmt: skip
    assert len(scan.keys) >= 2  # WeChat issued a new key on the rotation: both are looked for
    everything = "\n".join(scan.answers)
    for key in scan.keys:
        for spelling in spellings(key):
            assert spelling not in everything, f"a session_key ({spelling[:6]}...) left the server"
    for value in sealed:
        assert value and value not in everything
