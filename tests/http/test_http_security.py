"""docs/security-checklist.md as tests: the C, S, B and F items that live in the HTTP service.

Covered elsewhere: C6 (test_http_routes.py::test_logout), C9 and S15 (::test_change_password),
C10 (::test_admin_disable_user_kills_all_sessions, ::test_admin_sessions_and_revocation),
C11 (::test_revoke_one_session, ::test_revoke_another_users_session_is_404).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from fastapi import FastAPI
from servicekit import PASSWORD, SERVICE_KEY, ApiClient, raw_request

from huihua.accounts import passwords
from huihua.core.clock import FakeClock
from huihua.core.errors import StoreUnavailable
from huihua.core.tokens import session_key
from huihua.http.app import create_app

pytestmark = pytest.mark.anyio
NewClient = Callable[..., ApiClient]


def code_of(r: Any) -> str:
    return str(r.json()["error"]["code"])


@pytest.fixture
def db(tmp_path: Path) -> Callable[[str], list[tuple[Any, ...]]]:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(tmp_path / "huihua.db") as conn:
            return conn.execute(sql).fetchall()

    return query


def session_rows(db: Callable[[str], list[tuple[Any, ...]]]) -> int:
    return int(db("SELECT count(*) FROM huihua_session")[0][0])


class CountingHasher:
    """Wraps the module's argon2 hasher and counts what it is asked to do."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner = inner
        self.verified = 0
        self.hashed = 0

    def verify(self, h: str, password: str) -> bool:
        self.verified += 1
        return bool(self.inner.verify(h, password))

    def hash(self, password: str) -> str:
        self.hashed += 1
        return self.inner.hash(password)

    def check_needs_rehash(self, h: str) -> bool:
        return self.inner.check_needs_rehash(h)


@pytest.fixture
def argon(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)
    return counting


# -- C3, C4, C5: login rotates, carries the anonymous cart, never another user's data --------------
async def test_c3_c4_login_rotates_and_keeps_the_anonymous_cart(
    client: ApiClient, new_client: NewClient
) -> None:
    await client.register("amy")
    await client.patch("/v1/session/data", {"set": {"cart": ["tea"]}})
    before = client.credential
    assert before
    body = await client.login("amy")
    after = client.credential
    assert after and after != before
    assert (await client.get("/v1/session/data")).json()["data"] == {"cart": ["tea"]}
    stale = new_client(client.kind)
    stale.present(before)
    r = await stale.get("/v1/session/data")
    assert r.status_code == 401 and code_of(r) == "session_revoked"
    assert body["session"]["id"] == (await client.get("/v1/auth/me")).json()["session"]["id"]


async def test_c5_login_as_another_user_starts_empty(client: ApiClient, new_client: NewClient) -> None:
    await client.register("ann")
    await client.register("ben")
    await client.login("ann")
    await client.patch("/v1/session/data", {"set": {"secret": "ann's"}})
    ann_token = client.credential
    await client.login("ben")
    assert (await client.get("/v1/session/data")).json()["data"] == {}
    assert (await client.get("/v1/auth/me")).json()["user"]["username"] == "ben"
    old = new_client(client.kind)
    old.present(ann_token)
    assert (await old.get("/v1/auth/me")).status_code == 401


async def test_c3_login_twice_same_user_rotates_again(client: ApiClient, new_client: NewClient) -> None:
    await client.signup("abe")
    first = client.credential
    await client.login("abe")
    assert client.credential != first
    stale = new_client(client.kind)
    stale.present(first)
    assert (await stale.get("/v1/auth/me")).status_code == 401
    assert len((await client.get("/v1/sessions")).json()["sessions"]) == 1


# -- C7, C8: logout without a session creates nothing; logout is idempotent ------------------------
@pytest.mark.parametrize("token", [None, "A" * 47, "garbage"], ids=["none", "unknown", "malformed"])
async def test_c7_logout_without_a_session_creates_nothing(
    client: ApiClient, db: Any, token: str | None
) -> None:
    client.present(token)
    r = await client.post("/v1/auth/logout")
    assert r.status_code == 204
    assert "x-session-token" not in r.headers
    for cookie in r.headers.get_list("set-cookie"):
        assert cookie.startswith("sid=;") and "Max-Age=0" in cookie  # at most a deletion
    assert session_rows(db) == 0


async def test_c8_logout_is_idempotent(client: ApiClient) -> None:
    await client.signup("cal")
    token = client.credential
    assert (await client.post("/v1/auth/logout")).status_code == 204
    client.present(token)
    assert (await client.post("/v1/auth/logout")).status_code == 204
    assert (await client.post("/v1/auth/logout")).status_code == 204


# -- C14: no hash, no stored key, no internals in any answer ---------------------------------------
async def test_c14_no_secret_in_any_answer(
    new_client: NewClient, service: ApiClient, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def run(c: ApiClient, method: str, path: str, json: Any = None) -> Any:
        r = await c.request(method, path, json=json)
        seen.append(
            f"{r.status_code}\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.multi_items()) + "\n" + r.text
        )
        return r

    browser, phone = new_client("browser"), new_client("header")
    await run(browser, "PATCH", "/v1/session/data", {"set": {"cart": [1]}})
    await run(browser, "POST", "/v1/accounts", {"username": "dora", "password": PASSWORD, "email": "d@x.org"})
    await run(browser, "POST", "/v1/auth/login", {"username": "dora", "password": PASSWORD})
    await run(phone, "POST", "/v1/auth/login", {"username": "dora", "password": PASSWORD})
    await run(phone, "POST", "/v1/auth/login", {"username": "dora", "password": "wrong password"})
    uid = (await run(browser, "GET", "/v1/auth/me")).json()["user"]["id"]
    for c in (browser, phone):
        await run(c, "GET", "/v1/sessions")
        await run(c, "GET", "/v1/session/data")
        await run(c, "PATCH", "/v1/session/data", {"incr": {"n": 1}})
    await run(service, "POST", "/v1/introspect", {"token": browser.credential})
    await run(service, "GET", f"/v1/admin/users/{uid}/sessions")
    await run(service, "GET", "/v1/admin/stats")
    await run(
        browser,
        "POST",
        "/v1/auth/password",
        {"current_password": PASSWORD, "new_password": "another passphrase"},
    )
    await run(browser, "GET", "/metrics")
    await run(browser, "POST", "/v1/auth/logout-all", {"keep_current": True})
    await run(phone, "GET", "/v1/auth/me")
    await run(browser, "POST", "/v1/auth/logout")

    hashes = [row[0] for row in db("SELECT password_hash FROM huihua_user")]
    keys = [row[0] for row in db("SELECT key FROM huihua_session")]
    assert hashes and keys
    secrets_ = ["$argon2", *hashes, *keys, *(k.split(".", 1)[1] for k in keys)]
    everything = "\n".join(seen)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_:
        assert secret not in everything, secret
        assert secret not in logs, secret
    assert "password_hash" not in everything and SERVICE_KEY not in everything + logs
    # the browser never saw a token outside its cookie
    browser_answers = [s for s in seen if "set-cookie" in s]
    assert browser_answers and not any("x-session-token" in s for s in browser_answers)


# -- C15: a handler error --------------------------------------------------------------------------
async def test_c15_handler_error(app: FastAPI, new_client: NewClient) -> None:
    """A handler that raises answers 500 `{"error": {"code": "internal_error"}}`, and:

    - there is no request-level transaction: every session write is its own atomic store call,
      committed when it returns, so data the handler wrote before the error stays written (unlike
      Django, which skips the save on a 5xx). A handler that needs all-or-nothing makes one
      `manager.update` call with every change.
    - a session created or rotated during the failed request is never handed out: the 500 is
      answered outside the session middleware, so it carries no Set-Cookie / X-Session-Token;
      such a session is an orphan that nobody holds and that expires (docs/security-checklist.md F10).
    - the client's current cookie is not cleared by the error.
    """
    from fastapi import Depends

    from huihua.http.context import SessionContext
    from huihua.http.services import session_context

    async def boom(ctx: SessionContext = Depends(session_context)) -> None:
        session = await ctx.ensure()
        await ctx.manager.update(session, set={"written": "before the error"})
        raise RuntimeError("handler bug")

    app.add_api_route("/boom", boom, methods=["POST"])
    for kind in ("browser", "header"):
        c = new_client(kind, raise_app_exceptions=False)
        await c.patch("/v1/session/data", {"set": {"a": 1}})
        held = c.credential
        r = await c.post("/boom")
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert "set-cookie" not in r.headers and "x-session-token" not in r.headers
        assert c.credential == held
        assert (await c.get("/v1/session/data")).json()["data"] == {"a": 1, "written": "before the error"}
        # without a session: the new one is an orphan, never issued
        fresh = new_client(kind, raise_app_exceptions=False)
        r = await fresh.post("/boom")
        assert r.status_code == 500 and "set-cookie" not in r.headers and "x-session-token" not in r.headers
        assert fresh.credential is None


# -- C16: Cache-Control: no-store and Vary on every answer that touches a session -----------------
async def test_c16_no_store_and_vary(client: ApiClient, service: ApiClient) -> None:
    await client.register("eve")
    answers = [
        await client.get("/v1/session/data"),
        await client.patch("/v1/session/data", {"set": {"x": 1}}),
        await client.post("/v1/auth/login", {"username": "eve", "password": PASSWORD}),
        await client.get("/v1/auth/me"),
        await client.get("/v1/sessions"),
        await client.post(
            "/v1/auth/password", {"current_password": PASSWORD, "new_password": "new passphrase"}
        ),
        await client.post("/v1/auth/logout"),
        await client.get("/v1/auth/me"),
    ]
    for r in answers:
        assert r.headers.get("cache-control") == "no-store", r.request.url
        vary = {v.strip().lower() for v in ",".join(r.headers.get_list("vary")).split(",")}
        assert {"cookie", "authorization"} <= vary, r.request.url


# -- S3: only the token's own channel counts -------------------------------------------------------
async def test_s3_query_string_tokens_are_ignored(client: ApiClient, new_client: NewClient) -> None:
    await client.signup("fay")
    token = client.credential
    bare = new_client(client.kind)
    for q in ("token", "sid", "access_token", "session", "__Host-sid"):
        r = await bare.get(f"/v1/auth/me?{q}={token}")
        assert r.status_code == 401 and code_of(r) == "not_authenticated", q


async def test_s3_bearer_wins_over_cookie(new_client: NewClient) -> None:
    browser, phone = new_client("browser"), new_client("header")
    await browser.signup("gus")
    await phone.signup("hal")
    r = await browser.get("/v1/auth/me", headers={"Authorization": f"Bearer {phone.token}"})
    assert r.json()["user"]["username"] == "hal"
    # a dead bearer does not fall back to the cookie
    r = await browser.get("/v1/auth/me", headers={"Authorization": "Bearer " + "A" * 47})
    assert r.status_code == 401


async def test_s3_cookie_ignored_for_header_clients(new_client: NewClient) -> None:
    browser = new_client("browser")
    await browser.signup("ida")
    r = await browser.get("/v1/auth/me", headers={"X-Session-Transport": "header"})
    assert r.status_code == 401 and code_of(r) == "not_authenticated"
    # and a header client's write never falls back to the cookie session
    r = await browser.patch("/v1/session/data", {"set": {"z": 1}}, headers={"X-Session-Transport": "header"})
    assert r.status_code == 200 and r.json()["data"] == {"z": 1} and "token" in r.json()
    assert (await browser.get("/v1/session/data")).json()["data"] == {}


async def test_s3_bearer_token_not_accepted_as_cookie_name_or_other_header(new_client: NewClient) -> None:
    phone = new_client("header")
    await phone.signup("ivy")
    bare = new_client("browser")
    for headers in ({"X-Session-Token": phone.token}, {"Cookie": f"token={phone.token}"},
                    {"Authorization": f"Basic {phone.token}"}, {"Authorization": f"Token {phone.token}"}):  # fmt: skip
        r = await bare.get("/v1/auth/me", headers=headers)
        assert r.status_code == 401, headers


# -- S4: cookie flags -------------------------------------------------------------------------------
def cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    first, *attrs = [p.strip() for p in set_cookie.split(";")]
    name, _, value = first.partition("=")
    parsed = {}
    for a in attrs:
        k, _, v = a.partition("=")
        parsed[k.lower()] = v
    return name, value, parsed


async def test_s4_cookie_flags_plain_http(new_client: NewClient) -> None:
    c = new_client("browser")
    await c.register("jon")
    r = await c.post("/v1/auth/login", {"username": "jon", "password": PASSWORD})
    [cookie] = r.headers.get_list("set-cookie")
    name, value, attrs = cookie_attributes(cookie)
    assert name == "sid" and len(value) == 47
    # no Domain, no Secure on http; a persistent cookie lasting the absolute lifetime (12 h)
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "max-age": "43200"}
    assert len(cookie) <= 4096


async def test_s4_host_prefix_and_secure_over_https(new_client: NewClient) -> None:
    c = new_client("browser", base_url="https://testserver")
    await c.register("kim")
    r = await c.post("/v1/auth/login", {"username": "kim", "password": PASSWORD})
    [cookie] = r.headers.get_list("set-cookie")
    name, value, attrs = cookie_attributes(cookie)
    assert name == "__Host-sid"
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "secure": "", "max-age": "43200"}
    assert (await c.get("/v1/auth/me")).status_code == 200
    # over HTTPS a plain `sid` cookie is not read
    plain = new_client("browser", base_url="https://testserver")
    r = await plain.get("/v1/auth/me", headers={"Cookie": f"sid={value}"})
    assert r.status_code == 401
    r = await c.post("/v1/auth/logout")
    name, value, attrs = cookie_attributes(r.headers["set-cookie"])
    assert name == "__Host-sid" and value == "" and attrs["max-age"] == "0" and "secure" in attrs


async def test_s4_cookie_secure_setting_forces_host_prefix(
    make_app: Callable[..., FastAPI], new_client: NewClient
) -> None:
    c = new_client("browser", app_=make_app(cookie_secure=True))
    await c.register("lea")
    r = await c.post("/v1/auth/login", {"username": "lea", "password": PASSWORD})
    name, _, attrs = cookie_attributes(r.headers["set-cookie"])
    assert name == "__Host-sid" and "secure" in attrs


# -- S6: lookup by hash; constant-time comparisons (structural) ------------------------------------
async def test_s6_lookup_by_hash_and_constant_time_key_check(
    app: FastAPI, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asserted structurally, not by wall time (a 2-core shared box makes timing tests flaky):
    the store is only ever asked for `session_key(token)` (routing tag + SHA-256), so no
    comparison ever runs on the token itself, and the service key is checked with
    `hmac.compare_digest`."""
    await client.signup("max")
    token = client.credential
    assert token
    store = app.state.huihua.manager.store._store  # under the metrics wrapper
    asked: list[str] = []
    real_get = store.get

    async def spy_get(key: str) -> Any:
        asked.append(key)
        return await real_get(key)

    monkeypatch.setattr(store, "get", spy_get)
    assert (await client.get("/v1/auth/me")).status_code == 200
    client.present("B" * 47)
    assert (await client.get("/v1/auth/me")).status_code == 401
    assert asked == [session_key(token), session_key("B" * 47)]
    assert asked[0] == token[:4] + "." + hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in k for k in asked)

    import huihua.http.routes.service as service_routes

    calls: list[tuple[bytes, bytes]] = []
    real = service_routes.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(service_routes.hmac, "compare_digest", spy)
    svc = ApiClient.__new__(type(client))
    r = await client.http.post("/v1/introspect", json={"token": "x"}, headers={"X-Service-Key": "nope"})
    assert r.status_code == 401
    assert calls == [(b"nope", SERVICE_KEY.encode())]
    del svc


# -- S10: a flood of random tokens creates nothing --------------------------------------------------
async def test_s10_random_token_flood_creates_no_rows(client: ApiClient, db: Any) -> None:
    import secrets

    statuses = set()
    for i in range(120):
        token = secrets.token_urlsafe(35)[:47] if i % 3 else secrets.token_hex(i % 40 + 1)
        client.present(token)
        for method, path in (("GET", "/v1/auth/me"), ("GET", "/v1/session/data"), ("PATCH", "/v1/session/data"),
                             ("POST", "/v1/auth/logout")):  # fmt: skip
            r = await client.request(method, path, json={"set": {"k": i}} if method == "PATCH" else None)
            statuses.add(r.status_code)
            assert "x-session-token" not in r.headers
            assert all(c.split("=", 1)[1].startswith(";") for c in r.headers.get_list("set-cookie"))
    assert statuses == {401, 204}
    assert session_rows(db) == 0


# -- S11: brute force bounded, victim not locked out for ever -------------------------------------
@pytest.fixture
def cheap_argon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttle tests make hundreds of attempts: a cheap hasher keeps them fast (the cost is
    asserted by test_s13_*)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", cheap.hash("dummy"))


@pytest.mark.usefixtures("cheap_argon")
async def test_s11_at_most_100_failures_an_hour_and_the_victim_gets_back_in(
    make_app: Callable[..., FastAPI], new_client: NewClient, clock: FakeClock
) -> None:
    app = make_app(trust_proxy="127.0.0.1")  # the test client's address: a proxy we run
    attacker, victim = new_client("header", app_=app), new_client("header", app_=app)
    await victim.register("victim")
    start = clock.now()
    failures = throttled = 0
    n = 0
    # a botnet: every guess from a new IP, so only the per-account limit applies; it waits out
    # every backoff exactly and keeps guessing for two hours
    while clock.now() - start < 3600:
        n += 1
        r = await attacker.post("/v1/auth/login", {"username": "victim", "password": f"guess {n}"},
                                headers={"X-Forwarded-For": f"10.0.{n // 250}.{n % 250}"})  # fmt: skip
        if r.status_code == 401:
            failures += 1
            clock.advance(0.5)
        else:
            assert r.status_code == 429 and code_of(r) == "too_many_attempts"
            throttled += 1
            wait = int(r.headers["retry-after"])
            assert 1 <= wait <= 3600
            clock.advance(wait)
    assert 5 < failures <= 100
    assert throttled >= failures - 5  # after 5 free failures every failure is followed by a wait
    # the victim: at most an hour (the window) after the attack, the right password works
    clock.advance(3600)
    r = await victim.post("/v1/auth/login", {"username": "victim", "password": PASSWORD},
                          headers={"X-Forwarded-For": "192.0.2.7"})  # fmt: skip
    assert r.status_code == 200


@pytest.mark.usefixtures("cheap_argon")
async def test_s11_backoff_grows_and_success_resets(new_client: NewClient, clock: FakeClock) -> None:
    c = new_client("header")
    await c.register("wanda")
    waits = []
    for _ in range(9):
        r = await c.post("/v1/auth/login", {"username": "wanda", "password": "wrong guess"})
        if r.status_code == 429:
            waits.append(int(r.headers["retry-after"]))
            clock.advance(waits[-1])
            await c.post("/v1/auth/login", {"username": "wanda", "password": "wrong guess"})
    assert waits == sorted(waits) and waits[-1] > waits[0]
    clock.advance(3600)
    await c.login("wanda")
    r = await c.post("/v1/auth/login", {"username": "wanda", "password": "wrong guess"})
    assert r.status_code == 401  # the count started again


@pytest.mark.usefixtures("cheap_argon")
async def test_s11_one_ip_spraying_many_accounts_is_stopped(new_client: NewClient) -> None:
    c = new_client("header")
    codes = []
    for i in range(101):
        r = await c.post("/v1/auth/login", {"username": f"user{i}", "password": "Password1!"})
        codes.append(r.status_code)
    assert codes[:100] == [401] * 100 and codes[100] == 429


# -- S12: no user enumeration -----------------------------------------------------------------------
async def test_s12_unknown_user_and_wrong_password_look_the_same(
    client: ApiClient, argon: CountingHasher
) -> None:
    await client.register("olive")
    argon.verified = 0
    answers = {}
    for case, body in {"unknown": {"username": "nobody", "password": "wrong password"},
                       "wrong": {"username": "olive", "password": "wrong password"},
                       "invalid-name": {"username": "!!", "password": "wrong password"}}.items():  # fmt: skip
        before = argon.verified
        r = await client.post("/v1/auth/login", body)
        answers[case] = (r.status_code, r.text, sorted(k for k in r.headers if k != "content-length"))
        assert argon.verified - before == 1, case  # one argon2 verification on every path
    assert answers["unknown"] == answers["wrong"] == answers["invalid-name"]
    assert answers["wrong"][0] == 401


# -- S13: argon2id parameters, rehash on login, huge passwords refused before hashing -------------
async def test_s13_argon2id_parameters(client: ApiClient, db: Any) -> None:
    await client.register("pia")
    [(stored,)] = db("SELECT password_hash FROM huihua_user")
    m = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
    assert m, stored
    mem, t, p = map(int, m.groups())
    assert mem >= 19456 and t >= 2 and p == 1


async def test_s13_weaker_hash_upgraded_on_login(client: ApiClient, db: Any, tmp_path: Path) -> None:
    await client.register("quin")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    with sqlite3.connect(tmp_path / "huihua.db") as conn:
        conn.execute("UPDATE huihua_user SET password_hash = ?", (weak,))
    await client.login("quin")
    [(stored,)] = db("SELECT password_hash FROM huihua_user")
    assert stored != weak and "$m=19456,t=2,p=1$" in stored
    await client.login("quin")  # and the new hash verifies


@pytest.mark.parametrize("size", [1_000_000, 600], ids=["1MB", "600B"])
@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/auth/login"])
async def test_s13_b7_huge_password_rejected_before_hashing(
    client: ApiClient, argon: CountingHasher, path: str, size: int
) -> None:
    start = time.perf_counter()
    r = await client.post(path, {"username": "ruth", "password": "p" * size})
    assert time.perf_counter() - start < 1.0
    assert r.status_code == (413 if size > 256 * 1024 else 422)
    assert code_of(r) == ("payload_too_large" if size > 256 * 1024 else "invalid_request")
    assert argon.hashed == argon.verified == 0


async def test_s13_b7_long_multibyte_password_not_hashed(client: ApiClient, argon: CountingHasher) -> None:
    # 200 characters pass the schema, but 600 UTF-8 bytes are over the 512-byte cap
    r = await client.post("/v1/accounts", {"username": "ruth", "password": "密" * 200})
    assert r.status_code == 422 and code_of(r) == "password_too_long"
    r = await client.post("/v1/auth/login", {"username": "ruth", "password": "密" * 200})
    assert r.status_code == 401
    assert argon.hashed == argon.verified == 0


async def test_b7_huge_username_rejected_fast(client: ApiClient, argon: CountingHasher) -> None:
    for size in (1_000_000, 200_000):
        start = time.perf_counter()
        r = await client.post("/v1/accounts", {"username": "u" * size, "password": PASSWORD})
        assert r.status_code in (413, 422) and time.perf_counter() - start < 1.0
    assert argon.hashed == 0


# -- S14: CSRF ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
     {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://testserver.evil.example"},
     {"Origin": "https://testserver"}, {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"}],
    ids=["evil-origin", "null-origin", "fetch-cross-site", "fetch-same-site", "suffix-origin", "other-scheme",
         "origin-ok-but-fetch-cross"],
)  # fmt: skip
async def test_s14_cross_site_cookie_writes_refused(
    new_client: NewClient, headers: dict[str, str], db: Any
) -> None:
    c = new_client("browser")
    await c.signup("sara")
    await c.patch("/v1/session/data", {"set": {"n": 1}})
    rows = db("SELECT data, revoked_at FROM huihua_session")
    for method, path, body in (("POST", "/v1/auth/logout", None), ("PATCH", "/v1/session/data", {"set": {"n": 2}}),
                               ("POST", "/v1/auth/logout-all", {}), ("DELETE", "/v1/sessions/" + "x" * 22, None),
                               ("POST", "/v1/auth/password", {"current_password": PASSWORD, "new_password": "p" * 9}),
                               ("POST", "/v1/auth/login", {"username": "sara", "password": PASSWORD}),
                               ("POST", "/v1/accounts", {"username": "mallory", "password": PASSWORD})):  # fmt: skip
        r = await c.http.request(method, path, json=body, headers=headers)  # cookie jar, forged headers
        assert r.status_code == 403 and code_of(r) == "csrf_failed", (method, path)
        assert "set-cookie" not in r.headers
    assert db("SELECT data, revoked_at FROM huihua_session") == rows
    assert (await c.get("/v1/auth/me")).status_code == 200


async def test_s14_same_origin_and_allowlist_pass(
    make_app: Callable[..., FastAPI], new_client: NewClient
) -> None:
    c = new_client("browser", app_=make_app(allowed_origins=("https://app.example",)))
    await c.signup("tess")
    for headers in ({"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                    {"Origin": "https://app.example"}, {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"},
                    {}):  # fmt: skip
        r = await c.http.patch("/v1/session/data", json={"incr": {"n": 1}}, headers=headers)
        assert r.status_code == 200, headers
    assert (await c.get("/v1/session/data")).json()["data"] == {"n": 6}


async def test_s14_header_transport_exempt(new_client: NewClient) -> None:
    phone = new_client("header")
    r = await phone.post(
        "/v1/accounts", {"username": "uma", "password": PASSWORD}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 201
    r = await phone.post("/v1/auth/login", {"username": "uma", "password": PASSWORD},
                         headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert r.status_code == 200
    phone.saw(r)
    r = await phone.patch("/v1/session/data", {"set": {"a": 1}}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200


async def test_s14_get_never_mutates(client: ApiClient, db: Any) -> None:
    await client.signup("vic")
    before = db("SELECT key, data, revoked_at, version FROM huihua_session")
    for path in ("/v1/auth/logout", "/v1/auth/logout-all", "/v1/auth/password", "/v1/accounts"):
        r = await client.get(path, headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 405, path
    r = await client.get(
        "/v1/session/data", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 200
    assert db("SELECT key, data, revoked_at, version FROM huihua_session") == before
    assert (await client.get("/v1/auth/me")).status_code == 200


# -- S16: logs name sessions by public id, never a token --------------------------------------------
async def test_s16_logs_never_hold_a_token(new_client: NewClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    browser, phone = new_client("browser"), new_client("header")
    tokens: list[str] = []
    await browser.patch("/v1/session/data", {"set": {"a": 1}})
    tokens.append(browser.credential or "")
    await browser.register("wes")
    login = await browser.login("wes")
    tokens.append(browser.credential or "")
    await phone.login("wes")
    tokens.append(phone.token or "")
    await phone.post("/v1/auth/login", {"username": "wes", "password": "bad password"})
    await browser.post(
        "/v1/auth/password", {"current_password": PASSWORD, "new_password": "fresh passphrase"}
    )
    tokens.append(browser.credential or "")
    dead = phone.token
    await phone.get("/v1/auth/me")  # revoked by the password change
    phone.present("C" * 47)
    await phone.get("/v1/auth/me")  # unknown
    await browser.post("/v1/auth/logout")
    assert all(tokens) and dead
    text = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    for token in tokens:
        assert token not in text
        assert hashlib.sha256(token.encode()).hexdigest() not in text
    assert "C" * 47 not in text
    events = [r.getMessage() for r in caplog.records if r.name == "huihua.events"]
    kinds = {m.split()[1] for m in events}
    assert {"created", "rotated", "login", "login_failed", "revoked", "logout", "invalid_token"} <= kinds
    assert any(f"id={login['session']['id']}" in m for m in events)  # the public id names it
    assert any(re.search(r"reason=unknown:[0-9a-f]{12}\b", m) for m in events)  # a fingerprint, not the token


# -- B4: odd Cookie headers --------------------------------------------------------------------------
async def test_b4_huge_and_many_and_duplicate_cookies(new_client: NewClient) -> None:
    c = new_client("browser")
    await c.signup("xena")
    token = c.credential
    bare = new_client("browser")
    cases = {
        "huge": (f"junk={'x' * 60_000}; sid={token}", 200),
        "many": ("; ".join(f"c{i}=v{i}" for i in range(150)) + f"; sid={token}", 200),
        "dup-valid-first": (f"sid={token}; sid={'A' * 47}", 200),
        "dup-valid-second": (f"sid={'A' * 47}; sid={token}", 401),  # the first one counts (documented)
        "quoted": (f'sid="{token}"', 200),
        "empty": ("sid=", 401),
        "no-equals": ("sid", 401),
        "only-separators": (";;;; ;", 401),
        "huge-sid": ("sid=" + "A" * 60_000, 401),
    }
    for case, (cookie, status) in cases.items():
        r = await bare.get("/v1/auth/me", headers={"Cookie": cookie})
        assert r.status_code == status, case


# -- B5: unicode and invalid UTF-8 -------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [[(b"cookie", b"sid=\xff\xfe\x80abc")], [(b"cookie", "sid=会话".encode())], [(b"authorization", b"Bearer \xff\xfe" * 5)],
     [(b"authorization", "Bearer 会话会话".encode())], [(b"user-agent", b"\xff\xfe\xc0\xaf")],
     [(b"x-session-transport", b"h\xe9ader")], [(b"origin", b"http://\xff")]],
    ids=["cookie-bytes", "cookie-cjk", "bearer-bytes", "bearer-cjk", "ua-bytes", "transport-bytes", "origin-bytes"],
)  # fmt: skip
async def test_b5_bytes_in_headers(app: FastAPI, headers: list[tuple[bytes, bytes]]) -> None:
    for method, path, body in (("GET", "/v1/auth/me", b""), ("GET", "/v1/session/data", b""),
                               ("PATCH", "/v1/session/data", b'{"set": {"a": 1}}')):  # fmt: skip
        r = await raw_request(app, method, path, [*headers, (b"content-type", b"application/json")], body)
        assert r.status_code < 500, (path, r.body)
        assert r.status_code in (200, 401, 403)


@pytest.mark.parametrize(
    "body",
    [b'{"username": "\xff\xfe", "password": "correct horse battery"}',
     b'{"username": "ok_name", "password": "\xc0\xaf\xc0\xafcorrect horse"}',
     b'{"username": "ok_name", "password": "\\ud800 lone surrogate"}',
     b'{"username": "\\ud800abc", "password": "correct horse battery"}',
     b'{"username": "ok\\u0000name", "password": "correct horse battery"}',
     b'{"username": "ok_name", "password": "nul\\u0000 inside password"}'],
    ids=["username-bytes", "password-overlong", "password-surrogate", "username-surrogate", "username-nul", "password-nul"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/accounts", "/v1/auth/login"])
async def test_b5_bad_text_in_credentials(app: FastAPI, body: bytes, path: str) -> None:
    r = await raw_request(app, "POST", path, [(b"content-type", b"application/json")], body)
    # invalid UTF-8 is not JSON (400); anything that parses is accepted as text or refused (422)
    assert r.status_code in (201, 400, 401, 422), (r.status_code, r.body)


async def test_b5_unicode_usernames_and_passwords(client: ApiClient) -> None:
    await client.register("用户名", "密码是很长的密码口令")
    await client.login("用户名", "密码是很长的密码口令")
    r = await client.post("/v1/accounts", {"username": "ＷＩＤＥ", "password": PASSWORD})  # NFKC: "wide"
    assert r.json()["user"]["username"] == "wide"
    r = await client.post("/v1/accounts", {"username": "wide", "password": PASSWORD})
    assert r.status_code == 409
    # passwords are verified exactly as received: no normalisation
    await client.register("nfc_user", "caf\u00e9 au lait")
    r = await client.post("/v1/auth/login", {"username": "nfc_user", "password": "cafe\u0301 au lait"})
    assert r.status_code == 401


# -- B8: nothing reflected can add cookie attributes ---------------------------------------------
async def test_b8_crlf_and_semicolons_cannot_add_cookie_attributes(
    app: FastAPI, new_client: NewClient
) -> None:
    c = new_client("browser")
    await c.register("yuri")
    evil = [(b"user-agent", b"x; Domain=evil.example; Path=/admin"), (b"origin", b"http://testserver"),
            (b"content-type", b"application/json"), (b"cookie", b"sid=abc; Domain=evil.example\r\nSet-Cookie: x=1")]  # fmt: skip
    r = await raw_request(
        app, "POST", "/v1/auth/login", evil, b'{"username": "yuri", "password": "correct horse battery"}'
    )
    assert r.status_code == 200
    [cookie] = r.header_values("set-cookie")
    name, value, attrs = cookie_attributes(cookie)
    assert name == "sid" and re.fullmatch(r"[A-Za-z0-9_-]{47}", value)
    assert attrs == {"path": "/", "httponly": "", "samesite": "Lax", "max-age": "43200"}
    assert all(b"\r" not in v and b"\n" not in v for _, v in r.raw_headers)
    # a username with ; or CR/LF is refused, never stored or echoed into a header
    for name_ in ("a;Domain=x", "a\r\nSet-Cookie: y=1", "a b"):
        r2 = await c.post("/v1/accounts", {"username": name_, "password": PASSWORD})
        assert r2.status_code == 422
        assert "set-cookie" not in r2.headers


# -- F1 / F2 / F3 at the HTTP layer: a store that fails on demand ---------------------------------
class SwitchableStore:
    """The real SQLite store, with a switch that makes every call fail like an unreachable store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailable("connection refused (test switch)")
            return await method(*args, **kwargs)

        return call


async def test_f1_f2_f3_store_outage_answers_503_and_recovers(
    settings: Any, clock: FakeClock, new_client: NewClient
) -> None:
    from huihua.stores import async_store_from_url

    store = SwitchableStore(async_store_from_url(settings.store))
    app = create_app(settings, store=store, clock=clock, sweeper=False)
    browser, phone = new_client("browser", app_=app), new_client("header", app_=app)
    await browser.register("zed")
    await browser.login("zed")
    await phone.login("zed")
    held = (browser.credential, phone.token)
    store.down = True
    assert (await browser.get("/readyz")).status_code == 503
    assert (await browser.get("/healthz")).status_code == 200
    calls = (("POST", "/v1/auth/login", {"username": "zed", "password": PASSWORD}), ("GET", "/v1/auth/me", None),
             ("GET", "/v1/session/data", None), ("PATCH", "/v1/session/data", {"set": {"a": 1}}),
             ("GET", "/v1/sessions", None), ("POST", "/v1/auth/logout-all", {}), ("POST", "/v1/auth/logout", None))  # fmt: skip
    for c in (browser, phone):  # holders of a session: fail closed, keep the cookie
        for method, path, body in calls:
            r = await c.request(method, path, json=body)
            assert r.status_code == 503, (c.kind, path, r.text)
            assert code_of(r) == "store_unavailable" and r.headers["retry-after"]
            assert (
                "set-cookie" not in r.headers and "x-session-token" not in r.headers
            )  # no token, no clearing
    for c in (new_client("browser", app_=app), new_client("header", app_=app)):  # visitors: no token issued
        for method, path, body in calls[:1] + calls[3:4]:
            r = await c.request(method, path, json=body)
            assert r.status_code == 503, (c.kind, path, r.text)
            assert "set-cookie" not in r.headers and "x-session-token" not in r.headers
        assert c.credential is None
    assert (browser.credential, phone.token) == held
    store.down = False
    assert (await browser.get("/readyz")).status_code == 200
    for c in (browser, phone):
        assert (await c.get("/v1/auth/me")).status_code == 200
