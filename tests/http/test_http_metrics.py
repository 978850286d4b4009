"""/metrics: Prometheus text with requests, logins, active sessions, store latency, errors by code."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from servicekit import PASSWORD, ApiClient

pytestmark = pytest.mark.anyio


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_families_and_counts(client: ApiClient, new_client: Callable[..., ApiClient]) -> None:
    await client.register("mia")
    await client.login("mia")
    await client.post("/v1/auth/login", {"username": "mia", "password": "wrong password"})
    await client.get("/v1/auth/me")
    other = new_client("header")
    await other.patch("/v1/session/data", {"set": {"a": 1}})
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for family in ("huihua_http_requests_total", "huihua_logins_total", "huihua_active_sessions",
                   "huihua_store_latency_seconds_bucket", "huihua_errors_total", "huihua_session_events_total"):  # fmt: skip
        assert f"# TYPE {family.removesuffix('_total').removesuffix('_bucket')}" in text, family
    assert sample(text, "huihua_logins_total", method="password", outcome="success") == 1
    assert sample(text, "huihua_logins_total", method="password", outcome="failure") == 1
    assert sample(text, "huihua_active_sessions") == 2
    assert sample(text, "huihua_http_requests_total", method="GET", route="/v1/auth/me", status="200") == 1
    assert (
        sample(text, "huihua_http_requests_total", method="POST", route="/v1/auth/login", status="401") == 1
    )
    assert sample(text, "huihua_store_latency_seconds_count", op="get") >= 1
    assert sample(text, "huihua_store_latency_seconds_count", op="create") >= 1
    assert sample(text, "huihua_errors_total", code="invalid_credentials") == 1
    assert sample(text, "huihua_session_events_total", kind="login") == 1


async def test_every_error_answer_is_counted_by_code(
    app: FastAPI, new_client: Callable[..., ApiClient]
) -> None:
    browser, phone = new_client("browser"), new_client("header")
    await browser.register("noah")
    await browser.post("/v1/accounts", {"username": "noah", "password": PASSWORD})  # username_taken
    await browser.post("/v1/accounts", {"username": "n", "password": PASSWORD})  # invalid_username
    await browser.post("/v1/accounts", {})  # invalid_request
    await browser.http.post(
        "/v1/auth/logout", headers={"Origin": "http://evil.example"}
    )  # csrf_failed (middleware)
    await phone.post("/v1/session/data", content=b"x" * 300_000)  # payload_too_large (middleware)
    await phone.get("/v1/auth/me")  # not_authenticated
    await phone.get("/v1/nowhere")  # not_found
    await phone.post(
        "/v1/introspect", {"token": "x"}, headers={"X-Service-Key": "wrong"}
    )  # invalid_service_key
    await phone.patch("/v1/session/data", {"set": {"big": "x" * 70_000}})  # session_data_too_large

    async def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/boom", boom)
    crashing = new_client("header", raise_app_exceptions=False)
    assert (await crashing.get("/boom")).status_code == 500
    text = (await phone.get("/metrics")).text
    for code in ("username_taken", "invalid_username", "invalid_request", "csrf_failed", "payload_too_large",
                 "not_authenticated", "not_found", "invalid_service_key", "session_data_too_large",
                 "internal_error"):  # fmt: skip
        assert sample(text, "huihua_errors_total", code=code) == 1, code
    assert sample(text, "huihua_http_requests_total", method="GET", route="/boom", status="500") == 1
    # success answers are not errors
    assert sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("huihua_errors_total{")) == 10  # fmt: skip


async def test_metrics_is_not_a_session_route(client: ApiClient) -> None:
    r = await client.get("/metrics")
    assert "set-cookie" not in r.headers and "cache-control" not in r.headers
