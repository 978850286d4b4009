"""Forwarded headers against a real `huihua serve`: believed only from the proxies named in
HUIHUA_TRUST_PROXY, X-Forwarded-For walked from the right, IPv6 limited per /64 (issue 9 item 5)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, huihua_command, serve_env

from huihua.config import ConfigError, Settings
from huihua.core.addresses import limit_bucket, parse_networks
from huihua.http.proxies import forwarded_client, forwarded_scheme

Serve = Callable[..., ServeProcess]
TRUSTED = "127.0.0.1,10.0.0.0/8"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server behind "our" proxies (the test client on 127.0.0.1, and 10/8), with a small
    visitor-session limit so a bucket fills quickly."""
    folder = tmp_path_factory.mktemp("proxied")
    env = serve_env(folder, HUIHUA_TRUST_PROXY=TRUSTED, HUIHUA_ANONYMOUS_SESSIONS_PER_IP_MINUTE="3")
    server = ServeProcess(env, cwd=folder).start()
    with httpx.Client(base_url=server.url) as c:
        assert c.post("/v1/accounts", json={"username": "pat", "password": PASSWORD}).status_code == 201
    yield server
    server.stop()


def session_ip(base_url: str, headers: list[tuple[str, str]]) -> str:
    """Log in with these headers and read the address the server recorded for the session."""
    with httpx.Client(base_url=base_url) as c:
        r = c.post("/v1/auth/login", json={"username": "pat", "password": PASSWORD},
                   headers=[("X-Session-Transport", "header"), *headers])  # fmt: skip
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        [mine] = [s for s in c.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"}).json()["sessions"]
                  if s["current"]]  # fmt: skip
        return str(mine["ip"])


def browser_login(base_url: str, headers: dict[str, str]) -> str:
    """A browser login; its Set-Cookie header."""
    with httpx.Client(base_url=base_url) as c:
        c.post("/v1/accounts", json={"username": "bea", "password": PASSWORD})
        r = c.post("/v1/auth/login", json={"username": "bea", "password": PASSWORD}, headers=headers)
        assert r.status_code == 200, r.text
        return r.headers["set-cookie"]


# -- the client is the rightmost hop that is not one of our proxies -------------------------------
@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [(["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # the forged leftmost entry is ignored
     (["6.6.6.6, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # our inner proxy is walked past
     (["6.6.6.6", "203.0.113.9, 10.0.0.5"], "203.0.113.9"),  # several headers are one list
     (["2001:db8::1, 10.0.0.5"], "2001:db8::1"),
     (["203.0.113.9, not-an-ip"], "127.0.0.1"),  # garbage stops the walk at the peer
     (["203.0.113.9, <script>, 10.0.0.7"], "10.0.0.7"),  # ... or at the last address vouched for
     (["203.0.113.9,,"], "127.0.0.1"),
     (["10.9.9.9"], "10.9.9.9")],  # every hop trusted: the farthest one
    ids=["forged-leftmost", "inner-proxy", "two-headers", "ipv6", "garbage", "garbage-then-proxy", "empty-hop",
         "all-trusted"],
)  # fmt: skip
def test_client_is_the_rightmost_untrusted_hop(
    proxied: ServeProcess, forwarded_for: list[str], expected: str
) -> None:
    assert session_ip(proxied.url, [("X-Forwarded-For", v) for v in forwarded_for]) == expected


def test_without_trusted_proxies_forwarded_headers_are_ignored(serve: Serve) -> None:
    """The attack on main: uvicorn itself believed X-Forwarded-* from 127.0.0.1, so a plain-HTTP
    login got a `__Host-sid; Secure` cookie and any client could choose its address."""
    server = serve()
    with httpx.Client(base_url=server.url) as c:
        c.post("/v1/accounts", json={"username": "pat", "password": PASSWORD})
    assert session_ip(server.url, [("X-Forwarded-For", "203.0.113.9")]) == "127.0.0.1"
    cookie = browser_login(server.url, {"X-Forwarded-Proto": "https", "Origin": server.url})
    assert cookie.startswith("sid=") and "Secure" not in cookie


def test_x_forwarded_proto_from_an_untrusted_peer_is_ignored(serve: Serve) -> None:
    server = serve(HUIHUA_TRUST_PROXY="10.0.0.0/8")  # the test client (127.0.0.1) is not a proxy
    with httpx.Client(base_url=server.url) as c:
        c.post("/v1/accounts", json={"username": "pat", "password": PASSWORD})
    assert session_ip(server.url, [("X-Forwarded-For", "203.0.113.9")]) == "127.0.0.1"
    cookie = browser_login(server.url, {"X-Forwarded-Proto": "https", "Origin": server.url})
    assert cookie.startswith("sid=") and "Secure" not in cookie


def test_x_forwarded_proto_https_from_a_trusted_proxy_gives_a_secure_host_cookie(
    proxied: ServeProcess,
) -> None:
    origin = proxied.url.replace("http://", "https://")  # what the browser sees in front of the proxy
    cookie = browser_login(proxied.url, {"X-Forwarded-Proto": "https", "Origin": origin})
    assert cookie.startswith("__Host-sid=") and "; Secure" in cookie
    cookie = browser_login(proxied.url, {"X-Forwarded-Proto": "http", "Origin": proxied.url})
    assert cookie.startswith("sid=") and "Secure" not in cookie


# -- per-IP limits count an IPv6 /64 as one address -----------------------------------------------
def test_ipv6_rotation_within_a_64_shares_one_limit(proxied: ServeProcess) -> None:
    def new_visitor_session(address: str) -> int:
        with httpx.Client(base_url=proxied.url) as c:
            r = c.patch("/v1/session/data", json={"set": {"n": 1}},
                        headers={"X-Session-Transport": "header", "X-Forwarded-For": address})  # fmt: skip
            return r.status_code

    assert [new_visitor_session(f"2001:db8:1:2::{i:x}") for i in range(1, 5)] == [200, 200, 200, 429]
    assert new_visitor_session("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429  # same /64, far end
    assert new_visitor_session("2001:db8:1:3::1") == 200  # the next /64 is someone else
    assert new_visitor_session("198.51.100.1") == 200


def test_limit_bucket() -> None:
    assert limit_bucket("2001:db8:1:2:3:4:5:6") == limit_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limit_bucket("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert limit_bucket("203.0.113.7") == "203.0.113.7"
    assert limit_bucket("203.0.113.8") != limit_bucket("203.0.113.7")
    assert limit_bucket("::ffff:203.0.113.7") == "203.0.113.7"  # one client, one spelling
    assert limit_bucket(None) is None
    assert limit_bucket("testclient") == "testclient"  # not an address: itself


def test_forwarded_functions() -> None:
    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])
    assert forwarded_client("127.0.0.1", ["1.1.1.1, 2.2.2.2"], proxies) == "2.2.2.2"
    assert forwarded_client("192.0.2.1", ["1.1.1.1"], proxies) == "192.0.2.1"  # untrusted peer
    assert forwarded_client("fd00::5", ["2.2.2.2, fd00::6"], proxies) == "2.2.2.2"
    assert forwarded_client("127.0.0.1", [], proxies) == "127.0.0.1"
    assert forwarded_client(None, ["1.1.1.1"], proxies) is None
    assert forwarded_scheme("127.0.0.1", ["https"], proxies) == "https"
    assert forwarded_scheme("127.0.0.1", ["http, https"], proxies) == "https"  # the nearest proxy's
    assert forwarded_scheme("127.0.0.1", ["gopher"], proxies) is None
    assert forwarded_scheme("192.0.2.1", ["https"], proxies) is None


# -- HUIHUA_TRUST_PROXY is addresses or networks, nothing else ------------------------------------
def test_trust_proxy_setting_parses_addresses_and_networks() -> None:
    s = Settings.from_env({"HUIHUA_TRUST_PROXY": "127.0.0.1, 10.0.0.0/8,::1,fd00::/8"})
    assert [str(n) for n in s.trust_proxy] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]
    assert Settings.from_env({}).trust_proxy == ()
    assert Settings(trust_proxy="10.0.0.0/8").trust_proxy == parse_networks(["10.0.0.0/8"])
    with pytest.raises(ConfigError, match="HUIHUA_TRUST_PROXY"):
        Settings(trust_proxy=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1", "true", "10.0.0.300", "proxy.example.com", "127.0.0.1,*"])
def test_invalid_trust_proxy_refused_at_start(tmp_path: Path, value: str) -> None:
    env = serve_env(tmp_path, HUIHUA_TRUST_PROXY=value)
    try:
        done = subprocess.run([*huihua_command(), "serve", "--port", "0"], env=env, cwd=tmp_path, check=False,
                              capture_output=True, text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"huihua serve started with HUIHUA_TRUST_PROXY={value!r}")
    out = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    assert "HUIHUA_TRUST_PROXY" in out and "127.0.0.1" in out


@pytest.fixture
def cheap_argon(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher, Type

    from huihua.accounts import passwords

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", cheap.hash("dummy"))


@pytest.mark.anyio
@pytest.mark.usefixtures("cheap_argon")
async def test_password_spraying_from_one_ipv6_64_is_one_ip(make_app: Callable[..., Any]) -> None:
    """The per-IP login limit (100 failures in 15 min), sprayed over many accounts, each guess from
    a new address of the attacker's own /64."""
    app = make_app(trust_proxy="127.0.0.1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        codes = []
        for n in range(101):
            r = await c.post("/v1/auth/login", json={"username": f"user{n}", "password": "guess"},
                             headers={"X-Session-Transport": "header",
                                      "X-Forwarded-For": f"2001:db8:7:7::{n + 1:x}"})  # fmt: skip
            codes.append(r.status_code)
        assert codes[:100] == [401] * 100 and codes[100] == 429
        r = await c.post("/v1/auth/login", json={"username": "user0", "password": "guess"},
                         headers={"X-Session-Transport": "header", "X-Forwarded-For": "2001:db8:7:8::1"})  # fmt: skip
        assert r.status_code == 401  # another /64 is another client
