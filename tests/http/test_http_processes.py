"""The service as a real process: kill -9 under load (F5), SIGTERM (F9), a Redis outage (F2, F3).

Each test runs `huihua serve` in a subprocess on a free loopback port and drives it over real
HTTP, keeping a ledger of what the server acknowledged (docs/security-checklist.md#acknowledged-means-kept): after the fault, every
acknowledged login must still be valid and every acknowledged logout still revoked.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, free_port, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

USERS = [f"load{i}" for i in range(4)]
TRANSPORT_ERRORS = (httpx.TransportError,)


async def register_users(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for name in USERS:
            r = await http.post("/v1/accounts", json={"username": name, "password": PASSWORD},
                                headers={"X-Session-Transport": "header"})  # fmt: skip
            assert r.status_code == 201, r.text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Ledger:
    live: dict[str, int] = field(default_factory=dict)  # acknowledged login -> last acknowledged counter
    revoked: set[str] = field(default_factory=set)  # acknowledged logout
    unsure: set[str] = field(default_factory=set)  # a logout or write was sent, not acknowledged
    statuses: list[int] = field(default_factory=list)


async def worker(base: str, ledger: Ledger, stop: asyncio.Event, seed: int) -> None:
    rnd = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while not stop.is_set():
            choice = rnd.random()
            token = rnd.choice(sorted(ledger.live)) if ledger.live and choice >= 0.4 else None
            try:
                if token is None:
                    r = await http.post("/v1/auth/login", json={"username": rnd.choice(USERS), "password": PASSWORD},
                                        headers={"X-Session-Transport": "header"})  # fmt: skip
                    ledger.statuses.append(r.status_code)
                    if r.status_code == 200:
                        ledger.live[r.json()["token"]] = 0
                elif choice < 0.7:
                    ledger.live.pop(token, None)
                    ledger.unsure.add(token)
                    r = await http.post("/v1/auth/logout", headers=bearer(token))
                    ledger.statuses.append(r.status_code)
                    if r.status_code == 204:
                        ledger.unsure.discard(token)
                        ledger.revoked.add(token)
                else:
                    ledger.unsure.add(token)
                    r = await http.patch("/v1/session/data", json={"incr": {"n": 1}}, headers=bearer(token))
                    ledger.statuses.append(r.status_code)
                    if r.status_code == 200 and token in ledger.live:
                        ledger.live[token] = r.json()["data"]["n"]
                        ledger.unsure.discard(token)
            except TRANSPORT_ERRORS:
                if stop.is_set():
                    return
                await asyncio.sleep(0.01)


async def test_kill_9_under_load_loses_no_acknowledged_login_or_logout(
    serve: Callable[..., ServeProcess],
) -> None:
    server = serve()
    await register_users(server.url)
    ledger = Ledger()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker(server.url, ledger, stop, seed)) for seed in range(6)]
    for _ in range(200):  # let the load build up: enough logins and logouts acknowledged
        await asyncio.sleep(0.05)
        if len(ledger.live) >= 8 and len(ledger.revoked) >= 4:
            break
    server.signal(signal.SIGKILL)  # mid-load: requests are in flight
    stop.set()
    assert server.wait() == -signal.SIGKILL
    await asyncio.gather(*tasks)
    assert len(ledger.live) >= 5 and len(ledger.revoked) >= 3, (len(ledger.live), len(ledger.revoked))
    assert all(s < 500 for s in ledger.statuses), sorted(set(ledger.statuses))

    again = serve()  # the same SQLite file
    async with httpx.AsyncClient(base_url=again.url, timeout=10) as http:
        for token, counter in ledger.live.items():
            if token in ledger.unsure:
                continue
            r = await http.get("/v1/session/data", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert r.json()["data"].get("n", 0) >= counter  # acknowledged writes persist
            assert (await http.get("/v1/auth/me", headers=bearer(token))).status_code == 200
        for token in ledger.revoked:
            r = await http.get("/v1/auth/me", headers=bearer(token))
            assert r.status_code == 401 and r.json()["error"]["code"] == "session_revoked"
    import sqlite3

    with sqlite3.connect(Path(again.cwd) / "huihua.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_sigterm_finishes_in_flight_requests(serve: Callable[..., ServeProcess]) -> None:
    """F9: SIGTERM while requests are in flight: each one gets a complete answer or a clean
    connection error (never a 5xx or a half answer), the process exits 0, and whatever was
    acknowledged is there after a restart. (uvicorn >= 0.29 re-raises the signal once its graceful
    shutdown is done, so the exit status is -SIGTERM; the log shows the shutdown was graceful.)"""
    server = serve(log_level="info")
    await register_users(server.url)
    ledger = Ledger()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker(server.url, ledger, stop, seed)) for seed in range(6)]
    for _ in range(200):
        await asyncio.sleep(0.05)
        if len(ledger.live) >= 8 and len(ledger.revoked) >= 3:
            break
    server.signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.wait, 20)
    stop.set()
    await asyncio.gather(*tasks)
    log = server.log()
    assert code in (0, -signal.SIGTERM), log
    assert "Waiting for application shutdown." in log and "Finished server process" in log, log
    assert all(s < 500 for s in ledger.statuses), sorted(set(ledger.statuses))
    assert "Traceback" not in log and "ERROR" not in log
    again = serve()
    async with httpx.AsyncClient(base_url=again.url, timeout=10) as http:
        for token, counter in ledger.live.items():
            if token not in ledger.unsure:
                r = await http.get("/v1/session/data", headers=bearer(token))
                assert r.status_code == 200 and r.json()["data"].get("n", 0) >= counter
        for token in ledger.revoked:
            assert (await http.get("/v1/auth/me", headers=bearer(token))).status_code == 401


# -- Redis: stop it, start it again --------------------------------------------------------------
class RedisServer:
    """A throwaway, non-durable redis-server on a port of our own (so stopping it harms no one)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_redis_outage_answers_503_then_recovers_without_restart(
    serve: Callable[..., ServeProcess], redis_server: RedisServer, tmp_path: Path
) -> None:
    server = serve(HUIHUA_STORE=redis_server.url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db")
    base = server.url
    await register_users(base)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        login = {"username": USERS[0], "password": PASSWORD}
        r = await http.post("/v1/auth/login", json=login, headers={"X-Session-Transport": "header"})
        token = r.json()["token"]
        r = await http.post("/v1/auth/login", json=login, headers={"Origin": base})
        cookie = r.cookies["sid"]
        http.cookies.clear()
        browser = {"Cookie": f"sid={cookie}", "Origin": base}
        assert (await http.get("/v1/auth/me", headers=browser)).status_code == 200

        outage = asyncio.Event()
        back = asyncio.Event()
        seen: dict[str, list[tuple[int, str | None, bool]]] = {"during": [], "after": []}

        async def flow(i: int) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=10) as c:
                while not back.is_set() or len(seen["after"]) < 40:
                    phase = "after" if back.is_set() else "during" if outage.is_set() else None
                    if i % 3 == 0:
                        r = await c.get("/v1/auth/me", headers=bearer(token) if phase != "after" else {})
                    elif i % 3 == 1:
                        r = await c.get("/v1/session/data", headers=browser)
                    else:
                        r = await c.post(
                            "/v1/auth/login", json=login, headers={"X-Session-Transport": "header"}
                        )
                    if phase == "during" and back.is_set():
                        # answered after Redis came back (empty, non-durable): a 401 is then correct
                        phase = None
                    if phase is not None:
                        code = r.json()["error"]["code"] if r.status_code >= 400 else None
                        seen[phase].append((r.status_code, code, "set-cookie" in r.headers))
                    await asyncio.sleep(0.02)

        tasks = [asyncio.create_task(flow(i)) for i in range(6)]
        await asyncio.sleep(0.3)
        redis_server.stop()
        outage.set()
        await asyncio.sleep(1.5)
        # during the outage, every kind of request: 503, no token, no cleared cookie
        r = await http.post("/v1/auth/login", json=login, headers={"Origin": base})
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
        assert "set-cookie" not in r.headers
        r = await http.get("/v1/auth/me", headers=browser)
        assert r.status_code == 503 and "set-cookie" not in r.headers
        r = await http.get("/readyz")
        assert r.status_code == 503
        redis_server.start()  # the same port, empty (non-durable): old sessions are gone (F4)
        back.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

        during = [s for s in seen["during"] if s[0] != 200]  # requests that started before the stop may pass
        assert during, "no request was made during the outage"
        assert {(s, c) for s, c, _ in during} <= {(503, "store_unavailable")}, set(during)
        assert not any(cleared for _, _, cleared in seen["during"])
        statuses_after = [s for s, _, _ in seen["after"]]
        assert 500 not in statuses_after and 200 in statuses_after
        assert (await http.get("/readyz")).status_code == 200
        # recovered, no restart: a new login works; the lost old session is a plain 401
        r = await http.post("/v1/auth/login", json=login, headers={"X-Session-Transport": "header"})
        assert r.status_code == 200
        assert (await http.get("/v1/auth/me", headers=bearer(r.json()["token"]))).status_code == 200
        r = await http.get("/v1/auth/me", headers=bearer(token))
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert server.proc is not None and server.proc.poll() is None  # the same process all along
