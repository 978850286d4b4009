"""WeChat login, binding and phone numbers through the service, over both transports."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from wechatkit import OTHER_APPID, WeChatWorld

pytestmark = pytest.mark.anyio
TRANSPORTS = [pytest.param("header", id="header"), pytest.param("cookie", id="cookie")]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_code_to_session_end_to_end(world: WeChatWorld, transport: str) -> None:
    code, _openid = await world.code()
    client = world.service(transport)
    answer = await client.post("/v1/auth/wechat", json={"code": code})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bound"] is False
    assert body["session"]["client"] == "miniprogram"
    if transport == "header":
        assert body["token"] == answer.headers["x-session-token"]
        assert "set-cookie" not in answer.headers
        me = await world.service("header", body["token"]).get("/v1/auth/me")
    else:
        assert "token" not in body
        assert "x-session-token" not in answer.headers
        assert "HttpOnly" in answer.headers["set-cookie"]
        me = await client.get("/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == body["user"]["id"]


async def test_same_code_twice_gives_the_same_session_and_wechat_sees_it_once(world: WeChatWorld) -> None:
    """With the same Idempotency-Key (the SDK keeps one per login attempt)."""
    code, _ = await world.code()
    key = {"Idempotency-Key": "retry-key-" + "a" * 16}
    first = (await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)).json()
    again = await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)
    assert again.status_code == 200
    assert again.json()["token"] == first["token"]
    assert again.json()["session"]["id"] == first["session"]["id"]
    assert len(await world.calls("/sns/jscode2session")) == 1


async def test_concurrent_duplicates_share_one_exchange(world: WeChatWorld) -> None:
    code, _ = await world.code()
    key = {"Idempotency-Key": "retry-key-" + "b" * 16}
    answers = await asyncio.gather(
        *(world.service().post("/v1/auth/wechat", json={"code": code}, headers=key) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["token"] for a in answers}) == 1
    assert len(await world.calls("/sns/jscode2session")) == 1


async def test_code_of_a_logged_out_session_is_not_a_way_back_in(world: WeChatWorld) -> None:
    code, _ = await world.code()
    key = {"Idempotency-Key": "retry-key-" + "c" * 16}  # even the original caller's own retry
    token = (await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)).json()["token"]
    assert (await world.service("header", token).post("/v1/auth/logout")).status_code == 204
    replay = await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "wechat_code_used"
    assert "x-session-token" not in replay.headers


async def test_same_wechat_user_gets_the_same_account(world: WeChatWorld) -> None:
    code, openid = await world.code()
    first = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()
    code2, _ = await world.code(openid)
    second = (await world.service().post("/v1/auth/wechat", json={"code": code2})).json()
    assert second["user"]["id"] == first["user"]["id"]
    assert second["token"] != first["token"]


async def test_accounts_are_keyed_by_appid_and_openid(world: WeChatWorld) -> None:
    """C13: an identity is (appid, openid); the same openid under another mini program is
    another person, and is never used to log in here."""
    code, openid = await world.code()
    mine = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()["user"]["id"]
    db = world.app.state.huihua.accounts.db
    db.execute("UPDATE huihua_wechat_identity SET appid = ? WHERE openid = ?", (OTHER_APPID, openid))
    code2, _ = await world.code(openid)
    other = (await world.service().post("/v1/auth/wechat", json={"code": code2})).json()["user"]["id"]
    assert other != mine
    rows = db.execute(
        "SELECT appid, user_id FROM huihua_wechat_identity WHERE openid = ? ORDER BY appid", (openid,)
    )
    assert sorted(rows) == sorted([(OTHER_APPID, mine), (world.app.state.huihua.wechat.appid, other)])


@pytest.mark.parametrize(
    ("fault", "status", "code", "calls"),
    [
        pytest.param({"errcode": 40029}, 400, "wechat_code_invalid", 1, id="invalid-code"),
        pytest.param({"errcode": 40163}, 400, "wechat_code_used", 1, id="code-used"),
        pytest.param({"errcode": 40226}, 403, "wechat_user_blocked", 1, id="blocked"),
        pytest.param({"errcode": 45011}, 429, "wechat_rate_limited", 1, id="rate-limited"),
        pytest.param({"errcode": -1, "times": 5}, 503, "wechat_unavailable", 3, id="busy"),
        pytest.param({"status": 502, "times": 5}, 503, "wechat_unavailable", 1, id="http-502"),
        # a read timeout may mean WeChat got the code: never send it twice (it would be 40163)
        pytest.param({"latency_ms": 2000, "times": 5}, 503, "wechat_unavailable", 1, id="timeout"),
    ],
)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_wechat_failure_mode_gives_a_clear_answer_and_no_session(
    world: WeChatWorld, fault: dict[str, int], status: int, code: str, calls: int, transport: str
) -> None:
    """F8: no session, a clear 4xx/503, bounded retries (only -1 and network errors)."""
    wx_code, _ = await world.code()
    await world.emulator.post("/_emulator/faults", json={"path": "/sns/jscode2session", "times": 1, **fault})
    client = world.service(transport)
    answer = await client.post("/v1/auth/wechat", json={"code": wx_code})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert "x-session-token" not in answer.headers
    assert "set-cookie" not in answer.headers
    assert await world.app.state.huihua.manager.count() == 0
    # one try, plus two retries for -1 and failures before the request left
    assert world.sent("/sns/jscode2session") == calls


async def test_wechat_busy_then_recovered_retry_succeeds(world: WeChatWorld) -> None:
    code, _ = await world.code()
    await world.emulator.post(
        "/_emulator/faults", json={"path": "/sns/jscode2session", "errcode": -1, "times": 3}
    )
    assert (await world.service().post("/v1/auth/wechat", json={"code": code})).status_code == 503
    retried = await world.service().post("/v1/auth/wechat", json={"code": code})
    assert retried.status_code == 200, retried.text


async def test_open_data_is_verified_and_decrypted(world: WeChatWorld) -> None:
    code, openid = await world.code()
    profile = {"nickName": "小明", "gender": 1, "city": "Guangzhou"}
    payload = (
        await world.emulator.post("/_emulator/encrypted-data", json={"openid": openid, "data": profile})
    ).json()
    answer = await world.service().post("/v1/auth/wechat", json={"code": code, **payload})
    assert answer.status_code == 200, answer.text
    db = world.app.state.huihua.accounts.db
    stored = db.execute("SELECT profile FROM huihua_wechat_identity WHERE openid = ?", (openid,))[0][0]
    assert json.loads(stored)["nickName"] == "小明"


async def test_tampered_open_data_is_refused(world: WeChatWorld) -> None:
    code, openid = await world.code()
    payload = (
        await world.emulator.post("/_emulator/encrypted-data", json={"openid": openid, "data": {"a": 1}})
    ).json()
    payload["signature"] = "0" * 40
    answer = await world.service().post("/v1/auth/wechat", json={"code": code, **payload})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "wechat_data_invalid"


async def _account(world: WeChatWorld, username: str = "alice", password: str = "correct horse") -> dict:
    created = await world.service().post("/v1/accounts", json={"username": username, "password": password})
    assert created.status_code == 201
    return created.json()["user"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bind_ties_wechat_to_an_account_and_rotates(world: WeChatWorld, transport: str) -> None:
    alice = await _account(world)
    code, openid = await world.code()
    client = world.service(transport)
    login = await client.post("/v1/auth/wechat", json={"code": code})
    old_token = login.json().get("token")
    if transport == "header":
        client = world.service("header", old_token)
    bound = await client.post("/v1/auth/wechat/bind", json={"username": "alice", "password": "correct horse"})
    assert bound.status_code == 200, bound.text
    assert bound.json()["user"]["id"] == alice["id"]
    if transport == "header":
        new_token = bound.json()["token"]
        assert new_token != old_token
        assert (await world.service("header", old_token).get("/v1/auth/me")).status_code == 401
        me = await world.service("header", new_token).get("/v1/auth/me")
    else:
        assert "set-cookie" in bound.headers
        me = await client.get("/v1/auth/me")
    assert me.json()["user"]["username"] == "alice"
    code2, _ = await world.code(openid)
    again = (await world.service().post("/v1/auth/wechat", json={"code": code2})).json()
    assert again["user"]["id"] == alice["id"]
    assert again["bound"] is True


async def test_bind_rules(world: WeChatWorld) -> None:
    await _account(world, "alice")
    await _account(world, "bob")
    code, _ = await world.code()
    token = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()["token"]
    wrong = await world.service("header", token).post(
        "/v1/auth/wechat/bind", json={"username": "alice", "password": "nope nope"}
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    token = (
        await world.service("header", token).post(
            "/v1/auth/wechat/bind", json={"username": "alice", "password": "correct horse"}
        )
    ).json()["token"]
    # this WeChat user is bound now: binding it to bob as well is refused
    twice = await world.service("header", token).post(
        "/v1/auth/wechat/bind", json={"username": "bob", "password": "correct horse"}
    )
    assert twice.status_code == 409
    # another WeChat user cannot take alice, who is bound already
    code2, _ = await world.code()
    other = (await world.service().post("/v1/auth/wechat", json={"code": code2})).json()["token"]
    taken = await world.service("header", other).post(
        "/v1/auth/wechat/bind", json={"username": "alice", "password": "correct horse"}
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "account_already_bound"


async def test_bind_needs_a_session(world: WeChatWorld) -> None:
    answer = await world.service().post("/v1/auth/wechat/bind", json={"username": "a", "password": "b"})
    assert answer.status_code == 401


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_phone_number_is_stored(world: WeChatWorld, transport: str) -> None:
    code, openid = await world.code()
    client = world.service(transport)
    token = (await client.post("/v1/auth/wechat", json={"code": code})).json().get("token")
    if transport == "header":
        client = world.service("header", token)
    phone_code = (
        await world.emulator.post("/_emulator/phone-code", json={"openid": openid, "phone": "13800138000"})
    ).json()["code"]
    answer = await client.post("/v1/auth/wechat/phone", json={"code": phone_code})
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["phone"].endswith("13800138000")
    reused = await client.post("/v1/auth/wechat/phone", json={"code": phone_code})
    assert reused.status_code == 400


async def test_no_wechat_secret_ever_leaves_the_server(
    world: WeChatWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """C14: session_key, the app secret and access tokens appear in no response and no log line."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    await _account(world)
    code, openid = await world.code()
    for path, body in [("/v1/auth/wechat", {"code": code}), ("/v1/auth/wechat", {"code": code}),
                       ("/v1/auth/wechat", {"code": "forged-code"})]:  # fmt: skip
        answer = await world.service().post(path, json=body)
        seen.append(answer.text + str(answer.headers))
    token = json.loads(seen[0].split("Headers(")[0])["token"]
    client = world.service("header", token)
    phone = (await world.emulator.post("/_emulator/phone-code", json={"openid": openid})).json()["code"]
    for method, path, body in [("POST", "/v1/auth/wechat/phone", {"code": phone}), ("GET", "/v1/auth/me", None),
                               ("GET", "/v1/sessions", None),
                               ("POST", "/v1/auth/wechat/bind", {"username": "alice", "password": "correct horse"})]:  # fmt: skip
        answer = await client.request(method, path, json=body)
        seen.append(answer.text + str(answer.headers))
    emulator = world.emulator_app.state.emulator
    secrets = [emulator.users[openid].session_key, "huihua-emulator-secret", code, phone]
    secrets += [t.value for t in getattr(emulator, "tokens", {}).values() if hasattr(t, "value")]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for secret in secrets:
        assert secret not in "\n".join(seen)
        assert secret not in logged
    stored = world.app.state.huihua.accounts.db.execute(
        "SELECT session_key_sealed FROM huihua_wechat_identity"
    )
    assert stored and all(secrets[0] not in row[0] for row in stored)  # sealed at rest too


async def test_wechat_logins_are_throttled_per_ip(world: WeChatWorld) -> None:
    world.app.state.huihua.settings = __import__("dataclasses").replace(
        world.app.state.huihua.settings, wechat_logins_per_ip_minute=3
    )
    answers = [
        (await world.service().post("/v1/auth/wechat", json={"code": (await world.code())[0]}))
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "too_many_attempts"
    assert int(answers[-1].headers["retry-after"]) > 0


async def test_binding_emits_identity_bound_and_retires_the_placeholder(
    world: WeChatWorld, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await _account(world)
    code, _ = await world.code()
    login = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()
    with caplog.at_level(logging.INFO, logger="huihua.events"):
        bound = await world.service("header", login["token"]).post(
            "/v1/auth/wechat/bind", json={"username": "alice", "password": "correct horse"}
        )
    assert bound.status_code == 200, bound.text
    events = [r.getMessage() for r in caplog.records if r.name == "huihua.events"]
    assert any(e.startswith("session identity_bound") and f"user={alice['id']}" in e for e in events), events
    placeholder = await world.app.state.huihua.accounts.get(login["user"]["id"])
    assert placeholder is not None and placeholder.disabled


@pytest.mark.parametrize("fault", [pytest.param({"errcode": 45011}, id="rate-limited"),
                                   pytest.param({"errcode": -1, "times": 3}, id="busy")])  # fmt: skip
async def test_a_transient_failure_lets_the_same_attempt_retry(
    world: WeChatWorld, fault: dict[str, int]
) -> None:
    code, _ = await world.code()
    key = {"Idempotency-Key": "transient-key-" + "d" * 16}
    await world.emulator.post("/_emulator/faults", json={"path": "/sns/jscode2session", "times": 1, **fault})
    failed = await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)
    assert failed.status_code in (429, 503), failed.text
    retried = await world.service().post("/v1/auth/wechat", json={"code": code}, headers=key)
    assert retried.status_code == 200, retried.text
