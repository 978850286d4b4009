"""Issue 9 item 6 (the per-user session cap, visitor lifetimes and data cap) and the ASVS 7.2.4
bullet (a login again starts a fresh lifetime), against a real `huihua serve`.

A visitor session is what a header client gets from its first write without a token
(`PATCH /v1/session/data` with `X-Session-Transport: header`): the answer carries its token.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess

pytestmark = pytest.mark.slow

Serve = Callable[..., ServeProcess]
HEADER = {"X-Session-Transport": "header"}
VISITOR_IDLE = 3  # seconds
VISITOR_BYTES = 1024
LIMITS = {
    "HUIHUA_MAX_SESSIONS_PER_USER": "3",
    "HUIHUA_ANONYMOUS_IDLE_TIMEOUT": str(VISITOR_IDLE),
    "HUIHUA_ANONYMOUS_MAX_DATA_BYTES": str(VISITOR_BYTES),
    "HUIHUA_SWEEP_INTERVAL": "3600",  # expired sessions stay to answer session_expired
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(base: str, username: str) -> None:
    r = httpx.post(f"{base}/v1/accounts", json={"username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text


def login(base: str, username: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A password login from a client with no session (or the one in `headers`): token and id."""
    r = httpx.post(f"{base}/v1/auth/login", json={"username": username, "password": PASSWORD},
                   headers=headers or HEADER)  # fmt: skip
    assert r.status_code == 200, r.text
    return {"token": r.json()["token"], "id": r.json()["session"]["id"], **r.json()["session"]}


def error(r: httpx.Response) -> tuple[int, str | None]:
    return r.status_code, r.json().get("error", {}).get("code")


def test_the_per_user_cap_and_the_visitor_limits(serve: Serve) -> None:
    now = serve(log_level="info", **LIMITS)
    # the same store and accounts, a clock two minutes ahead: a request there is "later" use,
    # which moves a session's last_seen_at (activity is written at most once a minute)
    later = serve(HUIHUA_CLOCK_OFFSET="120", **LIMITS)
    register(now.url, "una")
    user_before_visitor = login(now.url, "una")["token"]

    # a visitor: small data is fine, more than HUIHUA_ANONYMOUS_MAX_DATA_BYTES is refused
    r = httpx.patch(f"{now.url}/v1/session/data", json={"set": {"cart": ["tea"]}}, headers=HEADER)
    assert r.status_code == 200, r.text
    visitor, visitor_made = r.headers["x-session-token"], time.monotonic()
    big = {"set": {"note": "x" * (VISITOR_BYTES + 100)}}
    r = httpx.patch(f"{now.url}/v1/session/data", json=big, headers=bearer(visitor))
    assert error(r) == (413, "session_data_too_large"), r.text
    r = httpx.get(f"{now.url}/v1/session/data", headers=bearer(visitor))
    assert r.status_code == 200 and r.json()["data"] == {"cart": ["tea"]}, r.text
    assert time.monotonic() - visitor_made < VISITOR_IDLE, "too slow to see the visitor alive"

    # HUIHUA_MAX_SESSIONS_PER_USER=3: a 4th login ends the least recently used, not the oldest
    register(now.url, "cap")
    first, second, third = (login(now.url, "cap") for _ in range(3))
    assert httpx.get(f"{later.url}/v1/auth/me", headers=bearer(first["token"])).status_code == 200
    fourth = login(now.url, "cap")
    r = httpx.get(f"{now.url}/v1/auth/me", headers=bearer(second["token"]))
    assert error(r) == (401, "session_revoked"), r.text
    for kept in (first, third, fourth):
        r = httpx.get(f"{now.url}/v1/auth/me", headers=bearer(kept["token"]))
        assert r.status_code == 200, r.text
    listed = httpx.get(f"{now.url}/v1/sessions", headers=bearer(fourth["token"])).json()["sessions"]
    assert {s["id"] for s in listed} == {first["id"], third["id"], fourth["id"]}
    assert f"reason=session_limit:{second['id']}" in now.log()

    # a logged-in session may hold what a visitor may not
    r = httpx.patch(f"{now.url}/v1/session/data", json=big, headers=bearer(fourth["token"]))
    assert r.status_code == 200, r.text

    # idle longer than HUIHUA_ANONYMOUS_IDLE_TIMEOUT: the visitor is expired, a user is not
    time.sleep(max(0.0, VISITOR_IDLE + 0.5 - (time.monotonic() - visitor_made)))
    r = httpx.get(f"{now.url}/v1/session/data", headers=bearer(visitor))
    assert error(r) == (401, "session_expired"), r.text
    r = httpx.get(f"{now.url}/v1/session/data", headers=bearer(user_before_visitor))
    assert r.status_code == 200, r.text  # idle since before the visitor was made
    r = httpx.get(f"{now.url}/v1/session/data", headers=bearer(fourth["token"]))
    assert r.status_code == 200 and r.json()["data"] == big["set"], r.text


def test_logging_in_again_from_the_same_client_starts_a_fresh_lifetime(serve: Serve, tmp_path: Path) -> None:
    """ASVS 7.2.4: the re-login rotates the client's session (its data comes along) and gives it
    a new created_at and absolute deadline; the old lifetime does not carry."""
    server = serve()
    register(server.url, "lee")
    before = login(server.url, "lee")
    r = httpx.patch(f"{server.url}/v1/session/data", json={"set": {"cart": ["tea"]}},
                    headers=bearer(before["token"]))  # fmt: skip
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    after = login(server.url, "lee", headers=bearer(before["token"]))  # the same client, again

    assert after["token"] != before["token"]
    r = httpx.get(f"{server.url}/v1/auth/me", headers=bearer(before["token"]))
    assert error(r) == (401, "session_revoked"), r.text
    r = httpx.get(f"{server.url}/v1/session/data", headers=bearer(after["token"]))
    assert r.json()["data"] == {"cart": ["tea"]}  # rotated from the session it logged in from
    started = datetime.fromisoformat(after["created_at"]) - datetime.fromisoformat(before["created_at"])
    assert started.total_seconds() >= 1.4, (before, after)

    # the absolute deadline (in the store; answers show the nearer idle one) moved on by as much
    with sqlite3.connect(tmp_path / "huihua.db") as db:
        rows = dict(
            db.execute(
                "SELECT id, absolute_expires_at - created_at FROM huihua_session WHERE id IN (?, ?)",
                (before["id"], after["id"]),
            ).fetchall()
        )
        deadlines = dict(
            db.execute(
                "SELECT id, absolute_expires_at FROM huihua_session WHERE id IN (?, ?)",
                (before["id"], after["id"]),
            ).fetchall()
        )
    assert after["id"] != before["id"] and rows[after["id"]] == pytest.approx(rows[before["id"]])
    assert deadlines[after["id"]] - deadlines[before["id"]] >= 1.4
