"""A user disabled in the accounts database by any path (an operator's SQL, another tool), not
through the admin route, loses every session at the next request of any of them, on every
route that reads a session: data routes and introspection included (docs/security: S-items on
revocation; issue 14's planted-bug gap). Real `huihua serve` with two workers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, SERVICE_KEY, ServeProcess

pytestmark = pytest.mark.slow

HEADER = {"X-Session-Transport": "header"}


def _login(base: str, username: str) -> str:
    r = httpx.post(f"{base}/v1/auth/login", json={"username": username, "password": PASSWORD}, headers=HEADER)
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _set_disabled(db: Path, username: str, disabled: bool) -> None:
    with sqlite3.connect(db) as conn:
        changed = conn.execute(
            "UPDATE huihua_user SET disabled = ? WHERE username = ?", (int(disabled), username)
        ).rowcount
    assert changed == 1


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_disabled_in_the_database_ends_every_session_at_its_next_request(
    store: str, serve: Callable[..., ServeProcess], tmp_path: Path, redis_url: str
) -> None:
    accounts_db = tmp_path / "accounts.db"
    extra = {"HUIHUA_DATABASE": f"sqlite:///{accounts_db}"}
    if store == "redis":
        extra["HUIHUA_STORE"] = redis_url
    server = serve(args=("--workers", "2"), **extra)
    base = server.url
    r = httpx.post(f"{base}/v1/accounts", json={"username": "mallory", "password": PASSWORD})
    assert r.status_code == 201, r.text
    data_token, patch_token, introspected, listing, idle = (_login(base, "mallory") for _ in range(5))
    for token in (data_token, patch_token, introspected, listing, idle):
        assert httpx.get(f"{base}/v1/session/data", headers=_bearer(token)).status_code == 200

    _set_disabled(accounts_db, "mallory", True)

    # the first request of any session notices; every other session is dead at once, whatever
    # route it comes to and whichever worker answers
    r = httpx.get(f"{base}/v1/session/data", headers=_bearer(data_token))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    r = httpx.patch(f"{base}/v1/session/data", json={"incr": {"n": 1}}, headers=_bearer(patch_token))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    r = httpx.post(
        f"{base}/v1/introspect", json={"token": introspected}, headers={"X-Service-Key": SERVICE_KEY}
    )
    assert r.json() == {"active": False, "reason": "session_revoked"}
    r = httpx.get(f"{base}/v1/sessions", headers=_bearer(listing))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    r = httpx.post(
        f"{base}/v1/auth/login", json={"username": "mallory", "password": PASSWORD}, headers=HEADER
    )
    assert r.status_code == 401

    # the accounts database stays the truth: enabled there again, the user logs in again, and
    # the old sessions stay dead, `idle` too: it made no request while the user was disabled, so
    # only the first request of another session can have ended it (not a check of its own)
    _set_disabled(accounts_db, "mallory", False)
    fresh = _login(base, "mallory")
    assert httpx.get(f"{base}/v1/session/data", headers=_bearer(fresh)).status_code == 200
    r = httpx.get(f"{base}/v1/session/data", headers=_bearer(data_token))
    assert r.status_code == 401
    r = httpx.get(f"{base}/v1/session/data", headers=_bearer(idle))
    assert r.status_code == 401, f"a session with no request while disabled survived it: {r.text}"
    assert r.json()["error"]["code"] == "session_revoked"


def test_introspection_of_a_disabled_users_token_is_inactive_on_its_first_request(
    serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    accounts_db = tmp_path / "accounts.db"
    server = serve(HUIHUA_DATABASE=f"sqlite:///{accounts_db}")
    base = server.url
    assert (
        httpx.post(f"{base}/v1/accounts", json={"username": "trent", "password": PASSWORD}).status_code == 201
    )
    token = _login(base, "trent")
    _set_disabled(accounts_db, "trent", True)
    r = httpx.post(f"{base}/v1/introspect", json={"token": token}, headers={"X-Service-Key": SERVICE_KEY})
    assert r.json() == {"active": False, "reason": "session_revoked"}
