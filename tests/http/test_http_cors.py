"""HUIHUA_CORS_ORIGINS: preflight answers, CORS headers on answers, credentials only for cookie
clients, nothing for unlisted origins, the CSRF check trusting CORS origins, and the setting's
validation. (From a page on another origin in Chromium: test_http_browser.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from servicekit import PASSWORD

from huihua.config import ConfigError, Settings

pytestmark = pytest.mark.anyio

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
PREFLIGHT = {"Access-Control-Request-Method": "POST"}


@pytest.fixture
async def http(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(cors_origins=f"{APP}, http://localhost:5173")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.example.com"
    ) as c:
        yield c


def cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


async def test_preflight_from_a_listed_origin(http: httpx.AsyncClient) -> None:
    r = await http.options(
        "/v1/auth/login",
        headers={
            "Origin": APP,
            **PREFLIGHT,
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    assert r.status_code == 204 and r.content == b""
    h = cors_headers(r)
    assert h["access-control-allow-origin"] == APP  # the origin itself, never *
    assert h["access-control-allow-credentials"] == "true"  # a cookie client's request
    assert set(h["access-control-allow-methods"].split(", ")) == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed = {x.lower() for x in h["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "x-session-transport", "x-http-method-override",
            "idempotency-key", "x-client-kind"} <= allowed  # fmt: skip
    assert h["access-control-max-age"] == "600"
    assert "Origin" in r.headers["vary"]


@pytest.mark.parametrize("requested", ["authorization, content-type", "Content-Type, X-Session-Transport"])
async def test_preflight_of_a_header_client_gets_no_credentials(
    http: httpx.AsyncClient, requested: str
) -> None:
    r = await http.options(
        "/v1/auth/me", headers={"Origin": APP, **PREFLIGHT, "Access-Control-Request-Headers": requested}
    )
    assert r.status_code == 204
    h = cors_headers(r)
    assert h["access-control-allow-origin"] == APP
    assert "access-control-allow-credentials" not in h


async def test_preflight_from_another_port_of_a_listed_host_is_unlisted(http: httpx.AsyncClient) -> None:
    for origin in (OTHER, "https://app.example.com:8443", "http://app.example.com", "null"):
        r = await http.options("/v1/auth/login", headers={"Origin": origin, **PREFLIGHT})
        assert r.status_code == 405, origin  # the app's own answer: no route takes OPTIONS
        assert cors_headers(r) == {}, origin
    r = await http.options("/v1/auth/login", headers={"Origin": "http://localhost:5173", **PREFLIGHT})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_header_client_reads_its_token_but_sends_no_cookies(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/accounts", json={"username": "corsy", "password": PASSWORD})
    assert r.status_code == 201
    r = await http.post(
        "/v1/auth/login",
        json={"username": "corsy", "password": PASSWORD},
        headers={"Origin": APP, "X-Session-Transport": "header"},
    )
    assert r.status_code == 200
    h = cors_headers(r)
    assert h["access-control-allow-origin"] == APP
    assert "X-Session-Token" in h["access-control-expose-headers"].split(", ")
    assert "access-control-allow-credentials" not in h
    assert "Origin" in r.headers.get_list("vary")
    r = await http.get("/v1/auth/me", headers={"Origin": APP, "Authorization": f"Bearer {r.json()['token']}"})
    assert r.status_code == 200 and cors_headers(r)["access-control-allow-origin"] == APP
    assert "access-control-allow-credentials" not in cors_headers(r)


async def test_cookie_client_on_a_listed_origin_gets_credentials_and_passes_csrf(
    http: httpx.AsyncClient,
) -> None:
    await http.post("/v1/accounts", json={"username": "corsy", "password": PASSWORD})
    cross = {"Origin": APP, "Sec-Fetch-Site": "same-site"}
    r = await http.post("/v1/auth/login", json={"username": "corsy", "password": PASSWORD}, headers=cross)
    assert r.status_code == 200, r.text  # a CORS origin is trusted for cookie writes
    assert "__Host-sid=" in r.headers["set-cookie"]
    h = cors_headers(r)
    assert h["access-control-allow-origin"] == APP and h["access-control-allow-credentials"] == "true"
    r = await http.get("/v1/auth/me", headers=cross)
    assert r.status_code == 200 and r.json()["user"]["username"] == "corsy"
    assert (await http.post("/v1/auth/logout", headers=cross)).status_code == 204
    # errors carry the headers too, so the page can read the code
    r = await http.get("/v1/auth/me", headers=cross)
    assert r.status_code == 401 and cors_headers(r)["access-control-allow-origin"] == APP


async def test_unlisted_origin_gets_no_cors_headers_and_no_cookie_writes(http: httpx.AsyncClient) -> None:
    await http.post("/v1/accounts", json={"username": "corsy", "password": PASSWORD})
    r = await http.get("/healthz", headers={"Origin": OTHER})
    assert r.status_code == 200 and cors_headers(r) == {}
    assert "Origin" in r.headers.get_list("vary")  # a cache must not reuse it for a listed origin
    r = await http.post(
        "/v1/auth/login",
        json={"username": "corsy", "password": PASSWORD},
        headers={"Origin": OTHER, "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert cors_headers(r) == {}


async def test_no_origins_no_cors(make_app: Callable[..., FastAPI]) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.options("/v1/auth/login", headers={"Origin": APP, **PREFLIGHT})
        assert r.status_code == 405 and cors_headers(r) == {}
        r = await c.get("/healthz", headers={"Origin": APP})
        assert cors_headers(r) == {} and "Origin" not in r.headers.get("vary", "")


def test_setting_is_read_and_normalised() -> None:
    s = Settings.from_env(
        {"HUIHUA_CORS_ORIGINS": "https://App.example.com/, http://127.0.0.1:8080,https://x.cn:443"}
    )
    assert s.cors_origins == ("https://app.example.com", "http://127.0.0.1:8080", "https://x.cn")
    assert Settings(cors_origins=["http://[::1]:3000"]).cors_origins == ("http://[::1]:3000",)
    assert Settings().cors_origins == ()
    both = Settings(allowed_origins="https://forms.example.com", cors_origins=APP)
    assert both.write_origins == ("https://forms.example.com", APP)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("*", "no wildcards"),
        ("https://*.example.com", "no wildcards"),
        ("https://app.example.com/api", "not scheme://host[:port]"),
        ("app.example.com", "not scheme://host[:port]"),
        ("ftp://app.example.com", "not scheme://host[:port]"),
        ("https://user@app.example.com", "not scheme://host[:port]"),
        ("https://app.example.com?x=1", "not scheme://host[:port]"),
        ("https://app.example.com:99999", "out of range"),
    ],
)
def test_setting_refuses_what_is_not_an_origin(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"HUIHUA_CORS_ORIGINS": f"https://ok.example.com,{value}"})
    message = str(err.value)
    assert message.startswith("HUIHUA_CORS_ORIGINS=") and says in message and "\n" not in message
