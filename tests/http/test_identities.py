"""Linked identities (issue 9 item 4; ASVS 7.4.3, 7.5.1, 7.5.2): the owner sees every WeChat
identity that logs in as the account, and removes one after re-entering the password."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from wechatkit import WeChatWorld

from huihua.accounts.database import PostgresDatabase, SQLiteDatabase
from huihua.accounts.wechat_identities import WeChatIdentities, WeChatIdentity
from huihua.core.clock import FakeClock

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def owner_with_wechat(world: WeChatWorld, name: str = "ivy") -> tuple[str, httpx.AsyncClient, str]:
    """An account with a password and a bound WeChat: (openid, the owner's password-session
    client, the token of the bound WeChat session)."""
    r = await world.service().post("/v1/accounts", json={"username": name, "password": PASSWORD})
    assert r.status_code == 201
    code, openid = await world.code()
    wechat = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()["token"]
    bound = await world.service("header", wechat).post(
        "/v1/auth/wechat/bind", json={"username": name, "password": PASSWORD}
    )
    assert bound.status_code == 200, bound.text
    login = await world.service().post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    return openid, world.service("header", login.json()["token"]), bound.json()["token"]


async def identities(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.get("/v1/auth/identities")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["identities"]
    return found


async def test_the_list_shows_when_bound_and_last_used_and_no_secret(
    world: WeChatWorld, clock: FakeClock
) -> None:
    bound_at = clock.now()
    openid, owner, _ = await owner_with_wechat(world)
    [item] = await identities(owner)
    assert item["provider"] == "wechat" and item["appid"] == world.app.state.huihua.wechat.appid
    assert item["bound_at"] == iso(bound_at) and item["last_used_at"] == iso(bound_at)
    assert item["id"].startswith("wi_") and openid not in item["id"]
    text = (await owner.get("/v1/auth/identities")).text
    db = world.app.state.huihua.accounts.db
    [(unionid, sealed)] = db.execute(
        "SELECT unionid, session_key_sealed FROM huihua_wechat_identity WHERE openid = ?", (openid,)
    )
    for secret in (openid, sealed, *([unionid] if unionid else [])):
        assert secret not in text
    assert "session_key" not in text and "openid" not in text

    clock.advance(120)  # a later WeChat login with it moves last_used_at, not bound_at
    code, _ = await world.code(openid)
    assert (await world.service().post("/v1/auth/wechat", json={"code": code})).status_code == 200
    [later] = await identities(owner)
    assert later["id"] == item["id"]
    assert later["bound_at"] == iso(bound_at) and later["last_used_at"] == iso(bound_at + 120)


async def test_unlink_needs_the_password_and_is_throttled(world: WeChatWorld, clock: FakeClock) -> None:
    _, owner, _ = await owner_with_wechat(world)
    [item] = await identities(owner)
    path = f"/v1/auth/identities/{item['id']}"
    codes = []
    for _ in range(8):
        r = await owner.request("DELETE", path, json={"password": "not my password"})
        codes.append(r.status_code)
        assert r.json()["error"]["code"] in ("invalid_credentials", "too_many_attempts")
    assert codes == [403] * 6 + [429] * 2
    # the right password waits too, and works after the wait
    r = await owner.request("DELETE", path, json={"password": PASSWORD})
    assert r.status_code == 429
    clock.advance(int(r.headers["retry-after"]))
    assert (await owner.request("DELETE", path, json={"password": PASSWORD})).status_code == 204
    assert await identities(owner) == []


async def test_unlink_only_my_own_identity(world: WeChatWorld) -> None:
    _, ivy, _ = await owner_with_wechat(world, "ivy")
    _, jay, _ = await owner_with_wechat(world, "jay")
    [jays] = await identities(jay)
    for target in (jays["id"], "wi_nonexistent", "x" * 64):
        r = await ivy.request("DELETE", f"/v1/auth/identities/{target}", json={"password": PASSWORD})
        assert r.status_code == 404 and r.json()["error"]["code"] == "identity_not_found"
    assert len(await identities(jay)) == 1
    r = await ivy.request("DELETE", "/v1/auth/identities/" + "x" * 65, json={"password": PASSWORD})
    assert r.status_code == 422
    r = await ivy.request("DELETE", f"/v1/auth/identities/{jays['id']}")
    assert r.status_code == 422  # the password is required


async def test_a_wechat_only_user_cannot_remove_its_only_way_in(world: WeChatWorld) -> None:
    code, _ = await world.code()
    token = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()["token"]
    client = world.service("header", token)
    [item] = await identities(client)
    r = await client.request(
        "DELETE", f"/v1/auth/identities/{item['id']}", json={"password": "anything at all"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_sign_in_method"
    assert len(await identities(client)) == 1
    assert (await client.get("/v1/auth/me")).status_code == 200


async def test_unlink_ends_other_sessions_logs_it_and_the_wechat_user_is_a_stranger(
    world: WeChatWorld, caplog: pytest.LogCaptureFixture
) -> None:
    openid, owner, bound = await owner_with_wechat(world)
    owner_id = (await owner.get("/v1/auth/me")).json()["user"]["id"]
    [item] = await identities(owner)
    with caplog.at_level(logging.INFO, logger="huihua.events"):
        r = await owner.request("DELETE", f"/v1/auth/identities/{item['id']}", json={"password": PASSWORD})
    assert r.status_code == 204
    [line] = [rec.getMessage() for rec in caplog.records if "session identity_unlinked" in rec.getMessage()]
    assert f"user={owner_id}" in line and item["id"] in line and openid not in line
    assert (await world.service("header", bound).get("/v1/auth/me")).status_code == 401
    assert (await owner.get("/v1/auth/me")).status_code == 200
    code, _ = await world.code(openid)
    again = (await world.service().post("/v1/auth/wechat", json={"code": code})).json()
    assert again["user"]["id"] != owner_id and again["bound"] is False


async def test_password_change_with_unlink_identities_unlinks_them_all(
    world: WeChatWorld, caplog: pytest.LogCaptureFixture
) -> None:
    openid, owner, _ = await owner_with_wechat(world)
    owner_id = (await owner.get("/v1/auth/me")).json()["user"]["id"]
    [item] = await identities(owner)
    with caplog.at_level(logging.INFO, logger="huihua.events"):
        r = await owner.post(
            "/v1/auth/password",
            json={
                "current_password": PASSWORD,
                "new_password": "a fresh passphrase",
                "unlink_identities": True,
            },
        )
    assert r.status_code == 200, r.text
    assert any(
        "identity_unlinked" in rec.getMessage() and item["id"] in rec.getMessage() for rec in caplog.records
    )
    owner = world.service("header", r.json()["token"])
    assert await identities(owner) == []
    code, _ = await world.code(openid)
    assert (await world.service().post("/v1/auth/wechat", json={"code": code})).json()["user"][
        "id"
    ] != owner_id


async def test_password_change_without_the_flag_keeps_identities(world: WeChatWorld) -> None:
    _, owner, _ = await owner_with_wechat(world)
    r = await owner.post(
        "/v1/auth/password", json={"current_password": PASSWORD, "new_password": "a fresh passphrase"}
    )
    assert r.status_code == 200
    assert len(await identities(world.service("header", r.json()["token"]))) == 1


# -- an identity table from before the public ids: migrated in place --------------------------------
OLD_SCHEMA = """CREATE TABLE huihua_wechat_identity (
    appid TEXT NOT NULL, openid TEXT NOT NULL, unionid TEXT, user_id TEXT NOT NULL,
    session_key_sealed TEXT, profile TEXT, created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (appid, openid))"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_old_identity_table_gets_ids_and_times(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    db: Any = (
        SQLiteDatabase(f"{tmp_path}/old.db")
        if backend == "sqlite"
        else PostgresDatabase(request.getfixturevalue("postgres_url"))
    )
    try:
        db.execute(OLD_SCHEMA)
        for i in range(3):
            db.execute(
                "INSERT INTO huihua_wechat_identity VALUES (?, ?, NULL, ?, NULL, NULL, ?, ?)",
                ("wxapp", f"openid-{i}", "u_1", 1000.0 + i, 2000.0 + i),
            )
        WeChatIdentities(db)
        first = WeChatIdentities(db).linked("u_1")  # a second start changes nothing
        assert [(i.bound_at, i.last_used_at) for i in first] == [
            (1000.0, None),
            (1001.0, None),
            (1002.0, None),
        ]
        assert len({i.id for i in first}) == 3 and all(i.id.startswith("wi_") for i in first)
        assert WeChatIdentities(db).linked("u_1") == first
        assert first[0].public()["last_used_at"] is None
        # and a login with it records its use
        repo = WeChatIdentities(db)
        [(row,)] = db.execute("SELECT openid FROM huihua_wechat_identity WHERE public_id = ?", (first[0].id,))
        repo.upsert(WeChatIdentity("wxapp", row, None, "u_1", "sealed"), 3000.0)
        assert repo.linked("u_1")[0].last_used_at == 3000.0
        assert repo.linked("u_1")[0].id == first[0].id
    finally:
        db.close()
