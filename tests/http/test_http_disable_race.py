"""Issue 9 item 7, replayed: password logins racing `POST /v1/admin/users/{id}/disable` against a
real `huihua serve --workers 2`. Once the disable call has returned and every login has finished,
no session any of those logins got is usable anywhere: `/v1/auth/me`, `/v1/session/data`, and
`POST /v1/introspect`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from servicekit import PASSWORD, SERVICE_KEY, ServeProcess

pytestmark = pytest.mark.slow

LOGGERS = 8  # parallel clients logging in again and again
HEADER = {"X-Session-Transport": "header"}


@dataclass(frozen=True)
class Attempt:
    started: float
    ended: float
    status: int
    token: str | None


def code(r: httpx.Response) -> str | None:
    error: dict[str, str] = r.json().get("error", {})
    return error.get("code")


def test_no_session_of_a_login_racing_disable_is_usable(serve: Callable[..., ServeProcess]) -> None:
    # no per-user cap: every session a racing login made stays in the store to be tried
    server = serve(args=("--workers", "2"), HUIHUA_MAX_SESSIONS_PER_USER="0")
    base = server.url
    r = httpx.post(f"{base}/v1/accounts", json={"username": "rita", "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user"]["id"]

    attempts: list[Attempt] = []
    lock, stop = threading.Lock(), threading.Event()

    def keep_logging_in() -> None:
        with httpx.Client(base_url=base, headers=HEADER, timeout=60) as c:
            while not stop.is_set():
                started = time.monotonic()
                r = c.post("/v1/auth/login", json={"username": "rita", "password": PASSWORD})
                token = r.json().get("token") if r.status_code == 200 else None
                with lock:
                    attempts.append(Attempt(started, time.monotonic(), r.status_code, token))

    threads = [threading.Thread(target=keep_logging_in) for _ in range(LOGGERS)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while sum(a.status == 200 for a in list(attempts)) < LOGGERS and time.monotonic() < deadline:
            time.sleep(0.02)
        disable_sent = time.monotonic()
        r = httpx.post(f"{base}/v1/admin/users/{user_id}/disable", headers={"X-Service-Key": SERVICE_KEY})
        disable_returned = time.monotonic()
        assert r.status_code == 204, r.text
        time.sleep(1.0)  # logins sent after the disable too
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    assert {a.status for a in attempts} <= {200, 401, 429}, {a.status for a in attempts}  # never a 500
    tokens = [a.token for a in attempts if a.token is not None]
    assert len(tokens) >= LOGGERS
    racing = [a for a in attempts if a.started < disable_returned and a.ended > disable_sent]
    assert racing, "no login was in flight while the disable call ran"
    assert not [a for a in attempts if a.started > disable_returned and a.status == 200]

    with httpx.Client(base_url=base, timeout=30) as c:
        for token in tokens:
            auth = {"Authorization": f"Bearer {token}"}
            r = c.get("/v1/auth/me", headers=auth)
            assert (r.status_code, code(r)) == (401, "session_revoked"), r.text
            r = c.get("/v1/session/data", headers=auth)
            assert (r.status_code, code(r)) == (401, "session_revoked"), r.text
            r = c.patch("/v1/session/data", json={"set": {"after": "disable"}}, headers=auth)
            assert r.status_code == 401, r.text
            r = c.post("/v1/introspect", json={"token": token}, headers={"X-Service-Key": SERVICE_KEY})
            assert r.json()["active"] is False, r.text
        r = c.get(f"/v1/admin/users/{user_id}/sessions", headers={"X-Service-Key": SERVICE_KEY})
        assert r.json() == {"sessions": []}
    assert "Traceback" not in server.log()
