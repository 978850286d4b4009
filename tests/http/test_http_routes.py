"""Every route of docs/http-api.md (but WeChat's), over both transports (ids `browser` and `header`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from servicekit import PASSWORD, SERVICE_KEY, ApiClient

from huihua.core.clock import FakeClock

pytestmark = pytest.mark.anyio

NewClient = Callable[..., ApiClient]


def error_code(r: object) -> str:
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


def assert_iso_utc(value: str) -> None:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# -- POST /v1/accounts ---------------------------------------------------------------------------
async def test_create_account(client: ApiClient) -> None:
    r = await client.post(
        "/v1/accounts",
        {"username": "Alice", "password": PASSWORD, "email": "a@example.com", "phone": "+8613800000000"},
    )
    assert r.status_code == 201
    user = r.json()["user"]
    assert user["username"] == "alice"  # NFKC + case folded
    assert user["email"] == "a@example.com" and user["phone"] == "+8613800000000"
    assert user["id"].startswith("u_")
    assert_iso_utc(user["created_at"])
    assert set(r.json()) == {"user"}
    assert "set-cookie" not in r.headers and "x-session-token" not in r.headers  # no session yet


async def test_create_account_taken(client: ApiClient) -> None:
    await client.register("bob")
    r = await client.post("/v1/accounts", {"username": "BOB", "password": PASSWORD})
    assert r.status_code == 409 and error_code(r) == "username_taken"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"username": "a", "password": PASSWORD}, "invalid_username"),
        ({"username": "has space", "password": PASSWORD}, "invalid_username"),
        ({"username": "x" * 65, "password": PASSWORD}, "invalid_username"),
        ({"username": "carol", "password": "short"}, "password_too_short"),
        ({"username": "carol", "password": "p" * 513}, "invalid_request"),  # over the byte cap: schema
        ({"username": "carol", "password": "密" * 171}, "password_too_long"),  # 513 bytes, 171 chars
        ({"username": "carol"}, "invalid_request"),
        ({"username": "carol", "password": PASSWORD, "admin": True}, "invalid_request"),
    ],
    ids=["too-short-name", "space", "too-long-name", "short-password", "long-password", "long-utf8-password",
         "missing-password", "extra-field"],
)  # fmt: skip
async def test_create_account_invalid(client: ApiClient, body: dict[str, object], code: str) -> None:
    r = await client.post("/v1/accounts", body)
    assert r.status_code == 422
    assert error_code(r) == code


async def test_registrations_are_limited_per_address(client: ApiClient, clock: FakeClock) -> None:
    """Each registration costs an argon2 hash: HUIHUA_REGISTRATIONS_PER_IP_MINUTE (20)."""
    for i in range(20):
        r = await client.post("/v1/accounts", {"username": f"many{i}", "password": PASSWORD})
        assert r.status_code == 201, (i, r.text)
    r = await client.post("/v1/accounts", {"username": "onetoomany", "password": PASSWORD})
    assert r.status_code == 429 and error_code(r) == "too_many_attempts"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    clock.advance(int(r.headers["retry-after"]))
    assert (
        await client.post("/v1/accounts", {"username": "onetoomany", "password": PASSWORD})
    ).status_code == 201


async def test_registration_limit_is_a_setting(
    make_app: Callable[..., object], new_client: NewClient
) -> None:
    c = new_client("header", app_=make_app(registrations_per_ip_minute=2))
    codes = [
        (await c.post("/v1/accounts", {"username": f"few{i}", "password": PASSWORD})).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


# -- POST /v1/auth/login ---------------------------------------------------------------------------
async def test_login(client: ApiClient) -> None:
    user = await client.register("dave")
    r = await client.post("/v1/auth/login", {"username": "dave", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == user
    session = body["session"]
    assert set(session) == {
        "id",
        "client",
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "absolute_expires_at",
        "expires_at",
    }
    for field in ("created_at", "last_seen_at", "idle_expires_at", "expires_at"):
        assert_iso_utc(session[field])
    if client.kind == "header":
        assert body["token"] == r.headers["x-session-token"]
        assert len(body["token"]) == 47
        assert session["client"] == "miniprogram"
        assert "set-cookie" not in r.headers
    else:
        assert "token" not in body and "x-session-token" not in r.headers
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("sid=") and "HttpOnly" in cookie
        token = client.credential
        assert token and token not in r.text
        assert session["client"] == "browser"
    me = await client.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]


async def test_login_wrong_password(client: ApiClient) -> None:
    await client.register("erin")
    r = await client.post("/v1/auth/login", {"username": "erin", "password": "not the password"})
    assert r.status_code == 401 and error_code(r) == "invalid_credentials"
    assert "set-cookie" not in r.headers and "x-session-token" not in r.headers


async def test_login_throttled_with_retry_after(client: ApiClient, clock: FakeClock) -> None:
    await client.register("frank")
    codes = []
    for _ in range(7):
        r = await client.post("/v1/auth/login", {"username": "frank", "password": "wrong password"})
        codes.append(r.status_code)
    assert codes[:6] == [401] * 6  # 5 free failures, the 6th starts the backoff
    assert codes[6] == 429
    assert error_code(r) == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1
    # even the right password waits: the answer does not reveal it
    r = await client.post("/v1/auth/login", {"username": "frank", "password": PASSWORD})
    assert r.status_code == 429
    clock.advance(int(r.headers["retry-after"]))
    assert (
        await client.post("/v1/auth/login", {"username": "frank", "password": PASSWORD})
    ).status_code == 200


# -- POST /v1/auth/logout ------------------------------------------------------------------------
async def test_logout(client: ApiClient, new_client: NewClient) -> None:
    await client.signup("gina")
    token = client.credential
    assert token
    r = await client.post("/v1/auth/logout")
    assert r.status_code == 204
    if client.kind == "browser":
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("sid=;") and "Max-Age=0" in cookie and "Path=/" in cookie
        assert client.credential is None
    else:
        assert "set-cookie" not in r.headers
    # the token is dead everywhere, whichever channel presents it
    for kind in ("browser", "header"):
        other = new_client(kind)
        other.present(token)
        for method, path in (("GET", "/v1/auth/me"), ("GET", "/v1/sessions"), ("GET", "/v1/session/data"),
                             ("PATCH", "/v1/session/data"), ("POST", "/v1/auth/logout-all")):  # fmt: skip
            r = await other.request(method, path, json={} if method != "GET" else None)
            assert r.status_code == 401, (kind, path, r.text)
            assert error_code(r) == "session_revoked"


# -- POST /v1/auth/logout-all --------------------------------------------------------------------
@pytest.mark.parametrize("keep_current", [False, True], ids=["all", "keep-current"])
async def test_logout_all(client: ApiClient, new_client: NewClient, keep_current: bool) -> None:
    await client.register("hank")
    phone, laptop = new_client("header"), new_client("browser")
    await phone.login("hank")
    await laptop.login("hank")
    await client.login("hank")
    r = await client.post("/v1/auth/logout-all", {"keep_current": keep_current})
    assert r.status_code == 204
    assert (await phone.get("/v1/auth/me")).status_code == 401
    assert (await laptop.get("/v1/auth/me")).status_code == 401
    assert (await client.get("/v1/auth/me")).status_code == (200 if keep_current else 401)


async def test_logout_all_without_body(client: ApiClient) -> None:
    await client.signup("hugo")
    assert (await client.post("/v1/auth/logout-all")).status_code == 204
    assert (await client.get("/v1/auth/me")).status_code == 401


# -- POST /v1/auth/password ----------------------------------------------------------------------
async def test_change_password(client: ApiClient, new_client: NewClient) -> None:
    await client.register("iris")
    other = new_client("header")
    await other.login("iris")
    await client.login("iris")
    old_token = client.credential
    r = await client.post(
        "/v1/auth/password", {"current_password": PASSWORD, "new_password": "a new passphrase"}
    )
    assert r.status_code == 200
    assert client.credential and client.credential != old_token  # rotated
    assert (await client.get("/v1/auth/me")).status_code == 200
    assert (await other.get("/v1/auth/me")).status_code == 401  # other sessions revoked
    stale = new_client(client.kind)
    stale.present(old_token)
    assert (await stale.get("/v1/auth/me")).status_code == 401  # old token dead
    fresh = new_client("header")
    r = await fresh.post("/v1/auth/login", {"username": "iris", "password": PASSWORD})
    assert r.status_code == 401
    await fresh.login("iris", "a new passphrase")


async def test_change_password_wrong_current(client: ApiClient) -> None:
    await client.signup("jack")
    token = client.credential
    r = await client.post(
        "/v1/auth/password", {"current_password": "wrong wrong", "new_password": "a new passphrase"}
    )
    assert r.status_code == 403 and error_code(r) == "invalid_credentials"
    assert client.credential == token
    assert (await client.get("/v1/auth/me")).status_code == 200


async def test_change_password_current_password_is_throttled(client: ApiClient, clock: FakeClock) -> None:
    """Issue 9: 25 wrong current passwords were 25 x 403; now the login throttle applies."""
    await client.signup("jock")
    codes = []
    for _ in range(25):
        r = await client.post(
            "/v1/auth/password", {"current_password": "wrong wrong", "new_password": "a new passphrase"}
        )
        codes.append(r.status_code)
    assert codes == [403] * 6 + [429] * 19
    assert error_code(r) == "too_many_attempts" and int(r.headers["retry-after"]) >= 1
    # the same counter as the login form
    r = await client.post("/v1/auth/login", {"username": "jock", "password": PASSWORD})
    assert r.status_code == 429
    clock.advance(int(r.headers["retry-after"]))
    r = await client.post(
        "/v1/auth/password", {"current_password": PASSWORD, "new_password": "a new passphrase"}
    )
    assert r.status_code == 200


async def test_change_password_too_short(client: ApiClient) -> None:
    await client.signup("jill")
    r = await client.post("/v1/auth/password", {"current_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 422 and error_code(r) == "password_too_short"


# -- GET /v1/auth/me -----------------------------------------------------------------------------
async def test_me_not_authenticated(client: ApiClient) -> None:
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401 and error_code(r) == "not_authenticated"


async def test_me_unknown_token(client: ApiClient) -> None:
    client.present("A" * 47)
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401 and error_code(r) == "not_authenticated"


async def test_me_session_expired(client: ApiClient, clock: FakeClock) -> None:
    await client.signup("kate")
    idle = 30 * 60 if client.kind == "browser" else 2 * 86400
    clock.advance(idle - 1)
    assert (await client.get("/v1/auth/me")).status_code == 200  # and slides the idle deadline
    clock.advance(idle - 1)
    assert (await client.get("/v1/auth/me")).status_code == 200
    clock.advance(idle + 1)
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401 and error_code(r) == "session_expired"


async def test_me_session_revoked(client: ApiClient) -> None:
    await client.signup("liam")
    token = client.credential
    await client.post("/v1/auth/logout")
    client.present(token)
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401 and error_code(r) == "session_revoked"


async def test_me_anonymous_session(client: ApiClient) -> None:
    await client.patch("/v1/session/data", {"set": {"a": 1}})
    r = await client.get("/v1/auth/me")
    assert r.status_code == 401 and error_code(r) == "not_authenticated"


# -- GET /v1/sessions, DELETE /v1/sessions/{id} ---------------------------------------------------
async def test_list_sessions(client: ApiClient, new_client: NewClient) -> None:
    await client.register("mona")
    phone = new_client("header")
    await phone.post("/v1/auth/login", {"username": "mona", "password": PASSWORD},
                     headers={"User-Agent": "WeChat/8.0 MiniProgram"})  # fmt: skip
    await client.post(
        "/v1/auth/login", {"username": "mona", "password": PASSWORD}, headers={"User-Agent": "Firefox/130"}
    )
    r = await client.get("/v1/sessions")
    assert r.status_code == 200
    sessions = r.json()["sessions"]
    assert len(sessions) == 2
    keys = {
        "id",
        "client",
        "ip",
        "user_agent",
        "created_at",
        "last_seen_at",
        "absolute_expires_at",
        "expires_at",
        "current",
    }
    assert all(set(s) == keys for s in sessions)
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    assert current[0]["user_agent"] == "Firefox/130"
    assert current[0]["client"] == ("browser" if client.kind == "browser" else "miniprogram")
    other = next(s for s in sessions if not s["current"])
    assert other["user_agent"] == "WeChat/8.0 MiniProgram" and other["client"] == "miniprogram"
    assert all(s["ip"] == "127.0.0.1" for s in sessions)


async def test_revoke_one_session(client: ApiClient, new_client: NewClient) -> None:
    await client.register("nina")
    phone, tablet = new_client("header"), new_client("header")
    await phone.login("nina")
    await tablet.login("nina")
    await client.login("nina")
    phone_id = (await phone.get("/v1/auth/me")).json()["session"]["id"]
    r = await client.delete(f"/v1/sessions/{phone_id}")
    assert r.status_code == 204
    assert (await phone.get("/v1/auth/me")).status_code == 401
    assert (await tablet.get("/v1/auth/me")).status_code == 200  # only that one dies (C11)
    assert (await client.get("/v1/auth/me")).status_code == 200
    assert len((await client.get("/v1/sessions")).json()["sessions"]) == 2
    r = await client.delete(f"/v1/sessions/{phone_id}")
    assert r.status_code == 404 and error_code(r) == "session_not_found"


async def test_revoke_own_current_session(client: ApiClient) -> None:
    await client.signup("olga")
    own = (await client.get("/v1/auth/me")).json()["session"]["id"]
    r = await client.delete(f"/v1/sessions/{own}")
    assert r.status_code == 204
    if client.kind == "browser":
        assert "Max-Age=0" in r.headers["set-cookie"]
    assert (await client.get("/v1/auth/me")).status_code == 401


async def test_revoke_another_users_session_is_404(client: ApiClient, new_client: NewClient) -> None:
    await client.signup("pete")
    victim = new_client("header")
    await victim.signup("quinn")
    victim_id = (await victim.get("/v1/auth/me")).json()["session"]["id"]
    r = await client.delete(f"/v1/sessions/{victim_id}")
    assert r.status_code == 404 and error_code(r) == "session_not_found"
    assert (await victim.get("/v1/auth/me")).status_code == 200


async def test_sessions_need_login(client: ApiClient) -> None:
    assert (await client.get("/v1/sessions")).status_code == 401
    r = await client.delete("/v1/sessions/" + "x" * 22)
    assert r.status_code == 401 and error_code(r) == "not_authenticated"


# -- GET/PATCH /v1/session/data --------------------------------------------------------------------
async def test_get_data_creates_nothing(client: ApiClient, app: object) -> None:
    r = await client.get("/v1/session/data")
    assert r.status_code == 200 and r.json() == {"data": {}}
    assert "set-cookie" not in r.headers and "x-session-token" not in r.headers
    assert await app.state.huihua.manager.count() == 0  # type: ignore[attr-defined]


async def test_patch_data_creates_anonymous_session(client: ApiClient, app: object) -> None:
    r = await client.patch("/v1/session/data", {"set": {"cart": ["apple"], "n": 1}})
    assert r.status_code == 200
    assert r.json()["data"] == {"cart": ["apple"], "n": 1}
    assert client.credential
    if client.kind == "header":
        assert r.json()["token"] == client.credential
    else:
        assert "token" not in r.json() and "set-cookie" in r.headers
    assert await app.state.huihua.manager.count() == 1  # type: ignore[attr-defined]
    r = await client.patch("/v1/session/data", {"unset": ["n"], "incr": {"visits": 2}, "set": {"x": None}})
    assert r.status_code == 200 and r.json()["data"] == {"cart": ["apple"], "visits": 2, "x": None}
    assert "set-cookie" not in r.headers and "x-session-token" not in r.headers  # same session
    assert "token" not in r.json()
    assert (await client.get("/v1/session/data")).json() == {
        "data": {"cart": ["apple"], "visits": 2, "x": None}
    }
    assert await app.state.huihua.manager.count() == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"incr": {"n": 1}, "set": {"n": 2}}, 400, "invalid_session_data"),
        ({"incr": {"n": "one"}}, 422, "invalid_request"),
        ({"set": {"big": "x" * 70_000}}, 413, "session_data_too_large"),
        ({"bogus": 1}, 422, "invalid_request"),
    ],
    ids=["key-twice", "incr-not-int", "too-large", "unknown-field"],
)
async def test_patch_data_invalid(client: ApiClient, body: dict[str, object], status: int, code: str) -> None:
    r = await client.patch("/v1/session/data", body)
    assert r.status_code == status and error_code(r) == code


async def test_incr_on_a_string_is_400(client: ApiClient) -> None:
    await client.patch("/v1/session/data", {"set": {"name": "x"}})
    r = await client.patch("/v1/session/data", {"incr": {"name": 1}})
    assert r.status_code == 400 and error_code(r) == "not_an_integer"


async def test_data_with_dead_token_is_401(client: ApiClient) -> None:
    await client.patch("/v1/session/data", {"set": {"a": 1}})
    token = client.credential
    await client.post("/v1/auth/logout")
    client.present(token)
    for r in (
        await client.get("/v1/session/data"),
        await client.patch("/v1/session/data", {"set": {"b": 2}}),
    ):
        assert r.status_code == 401 and error_code(r) == "session_revoked"
        assert "x-session-token" not in r.headers


# -- /v1/introspect and /v1/admin ------------------------------------------------------------------
async def test_introspect(client: ApiClient, service: ApiClient) -> None:
    user = await client.signup("rita")
    await client.patch("/v1/session/data", {"set": {"theme": "dark"}})
    token = client.credential
    r = await service.post("/v1/introspect", {"token": token})
    assert r.status_code == 200
    body = r.json()
    assert body["active"] is True and body["user"]["id"] == user["user"]["id"]
    assert body["data"] == {"theme": "dark"} and body["session"]["id"] == user["session"]["id"]
    assert "set-cookie" not in r.headers and "x-session-token" not in r.headers
    await client.post("/v1/auth/logout")
    r = await service.post("/v1/introspect", {"token": token})
    assert r.json() == {"active": False, "reason": "session_revoked"}
    r = await service.post("/v1/introspect", {"token": "nonsense"})
    assert r.json() == {"active": False, "reason": "not_authenticated"}


@pytest.mark.parametrize(
    "key", [None, "wrong", SERVICE_KEY + "x", SERVICE_KEY[:-1]], ids=["none", "wrong", "longer", "prefix"]
)
async def test_service_routes_need_the_key(new_client: NewClient, key: str | None) -> None:
    c = new_client("header")
    headers = {"X-Service-Key": key} if key is not None else {}
    for method, path, body in (("POST", "/v1/introspect", {"token": "x"}), ("GET", "/v1/admin/stats", None),
                               ("GET", "/v1/admin/users/u_x/sessions", None),
                               ("DELETE", "/v1/admin/users/u_x/sessions", None),
                               ("POST", "/v1/admin/users/u_x/disable", None)):  # fmt: skip
        r = await c.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert error_code(r) == "invalid_service_key"


async def test_service_routes_off_without_a_key(
    make_app: Callable[..., object], new_client: NewClient
) -> None:
    app = make_app(service_key=None)
    c = new_client("header", app_=app)
    for headers in ({}, {"X-Service-Key": SERVICE_KEY}, {"X-Service-Key": ""}):
        r = await c.post("/v1/introspect", {"token": "x"}, headers=headers)
        assert r.status_code == 404 and error_code(r) == "not_found"
        r = await c.get("/v1/admin/stats", headers=headers)
        assert r.status_code == 404


async def test_admin_sessions_and_revocation(
    client: ApiClient, new_client: NewClient, service: ApiClient
) -> None:
    body = await client.signup("sam")
    uid = body["user"]["id"]
    phone = new_client("header")
    await phone.login("sam")
    r = await service.get(f"/v1/admin/users/{uid}/sessions")
    assert r.status_code == 200
    sessions = r.json()["sessions"]
    assert len(sessions) == 2 and not any(s["current"] for s in sessions)
    phone_id = (await phone.get("/v1/auth/me")).json()["session"]["id"]
    assert (await service.delete(f"/v1/admin/users/{uid}/sessions/{phone_id}")).status_code == 204
    assert (await phone.get("/v1/auth/me")).status_code == 401
    assert (await client.get("/v1/auth/me")).status_code == 200
    r = await service.delete(f"/v1/admin/users/{uid}/sessions/{phone_id}")
    assert r.status_code == 404 and error_code(r) == "session_not_found"
    assert (await service.delete(f"/v1/admin/users/{uid}/sessions")).status_code == 204
    assert (await client.get("/v1/auth/me")).status_code == 401
    stats = (await service.get("/v1/admin/stats")).json()
    assert stats == {"active_sessions": 0, "users": 1}


async def test_admin_disable_user_kills_all_sessions(
    client: ApiClient, new_client: NewClient, service: ApiClient
) -> None:
    uid = (await client.signup("tina"))["user"]["id"]
    phone = new_client("header")
    await phone.login("tina")
    r = await service.post(f"/v1/admin/users/{uid}/disable")
    assert r.status_code == 204
    for c in (client, phone):
        r = await c.get("/v1/auth/me")
        assert r.status_code == 401 and error_code(r) == "session_revoked"
    assert (await service.get(f"/v1/admin/users/{uid}/sessions")).json() == {"sessions": []}
    # a disabled account cannot log in, with the same answer as a wrong password
    r = await new_client("header").post("/v1/auth/login", {"username": "tina", "password": PASSWORD})
    assert r.status_code == 401 and error_code(r) == "invalid_credentials"
    assert (await service.post(f"/v1/admin/users/{uid}/enable")).status_code == 204
    await new_client("header").login("tina")
    r = await service.post("/v1/admin/users/u_nobody/disable")
    assert r.status_code == 404 and error_code(r) == "user_not_found"
    assert (await service.post("/v1/admin/users/u_nobody/enable")).status_code == 404


# -- operations ----------------------------------------------------------------------------------
async def test_healthz_readyz(client: ApiClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert "set-cookie" not in r.headers


async def test_openapi_and_docs(client: ApiClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/accounts", "/v1/auth/login", "/v1/auth/logout", "/v1/auth/logout-all", "/v1/auth/password",
                 "/v1/auth/me", "/v1/sessions", "/v1/sessions/{session_id}", "/v1/session/data", "/v1/introspect",
                 "/healthz", "/readyz"):  # fmt: skip
        assert path in spec["paths"], path
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_and_method(client: ApiClient) -> None:
    r = await client.get("/v1/nope")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = await client.request("PUT", "/v1/auth/me")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
