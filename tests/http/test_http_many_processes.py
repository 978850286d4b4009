"""Three `huihua serve` processes on one store (Redis, a Redis Cluster, PostgreSQL).

Nothing that must be shared lives in a process: a session made on one is read on the others,
revoke-all on the second ends it on all three at once, only the holder of the sweeper's lease
purges and it has one holder at a time, the WeChat access token is fetched once for all of them,
and a process killed with SIGKILL loses nothing it acknowledged; when it held the sweeper's
lease, another process takes the sweeping over within a bounded time.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, free_port, huihua_command, serve_env, wait_for_port
from test_http_metrics import sample

from huihua.core.clock import FakeClock
from huihua.core.manager import SessionManager
from huihua.core.store import Store
from huihua.core.sweeper import LOCK_KEY
from huihua.stores import store_from_url
from huihua.wechat.emulator.state import DEFAULT_APPID as EMULATOR_APPID
from huihua.wechat.emulator.state import DEFAULT_SECRET as EMULATOR_SECRET

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

STORES = ["redis_url", "redis_cluster_url", "postgres_url"]
SWEEP_INTERVAL = 1.0  # the lease lasts two intervals


async def sweeper_metrics(x: httpx.AsyncClient) -> dict[str, float]:
    text = (await x.get("/metrics")).text
    return {
        "held": sample(text, "huihua_sweeper_rounds_total", lease="held"),
        "waited": sample(text, "huihua_sweeper_rounds_total", lease="waited"),
        "failed": sample(text, "huihua_sweeper_rounds_total", lease="failed"),
        "swept": sample(text, "huihua_swept_sessions_total"),
        "lease": sample(text, "huihua_sweeper_lease_held"),
        "purges": sample(text, "huihua_store_latency_seconds_count", op="purge"),  # every purge call
    }


def expired_sessions(store: Store, n: int) -> list[str]:
    """The keys of `n` sessions that expired half an hour ago (made by a clock an hour behind)."""
    past = SessionManager(store, clock=FakeClock(time.time() - 3600), events=())
    return [past.create(client="service").record.key for _ in range(n)]


async def purged(store: Store, keys: list[str], within: float) -> float:
    """Seconds until no session of `keys` is stored any more; fails after `within`."""
    start = time.monotonic()
    while any(store.get(key) is not None for key in keys):
        assert time.monotonic() - start < within, f"expired sessions still stored after {within}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[str]:
    """The WeChat emulator as its own process, shared by the three services."""
    port = free_port()
    log = (tmp_path / "emulator.log").open("ab")
    proc = subprocess.Popen(
        [*huihua_command(), "emulator", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("store_fixture", STORES, ids=["redis", "redis-cluster", "postgres"])
async def test_three_processes_share_one_store(
    store_fixture: str, request: pytest.FixtureRequest, emulator: str, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue(store_fixture))
    env = serve_env(tmp_path, HUIHUA_STORE=url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db",
                    HUIHUA_SECRET_KEY="shared-secret-key-for-three-processes", HUIHUA_SWEEP_INTERVAL=str(SWEEP_INTERVAL),
                    HUIHUA_WECHAT_APPID=EMULATOR_APPID, HUIHUA_WECHAT_SECRET=EMULATOR_SECRET,
                    HUIHUA_WECHAT_API_BASE=emulator)  # fmt: skip
    servers = [ServeProcess(env, cwd=tmp_path) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:  # start together: each takes seconds on a busy machine
        list(pool.map(ServeProcess.start, servers))
    store = store_from_url(url)
    try:
        a, b, c = (httpx.AsyncClient(base_url=s.url, timeout=15) for s in servers)
        header = {"X-Session-Transport": "header"}
        creds = {"username": "everywhere", "password": PASSWORD}
        assert (await a.post("/v1/accounts", json=creds, headers=header)).status_code == 201

        # a session made on one process is read on the others
        tokens = [
            (await x.post("/v1/auth/login", json=creds, headers=header)).json()["token"] for x in (a, b, c)
        ]
        for x in (a, b, c):
            for token in tokens:
                r = await x.get("/v1/auth/me", headers=bearer(token))
                assert r.status_code == 200 and r.json()["user"]["username"] == "everywhere"

        # the sweeper: only the lease holder purges, and the lease has one holder at a time
        wave = expired_sessions(store, 30)
        await purged(store, wave, within=3 * SWEEP_INTERVAL + 10)
        while True:  # a few rounds each, so that a lease everyone held would show
            metrics = [await sweeper_metrics(x) for x in (a, b, c)]
            if min(m["held"] + m["waited"] for m in metrics) >= 4:
                break
            await asyncio.sleep(0.2)
        assert sum(m["swept"] for m in metrics) == 30, metrics  # each purged once, by a sweeper
        for m in metrics:
            assert m["purges"] == m["held"], metrics  # a purge in each round it held, none in others
            assert m["failed"] == 0, metrics
        # about one held round an interval in all, not one per process: one holder at a time (a
        # few more for hand-overs: a new holder's rounds need not fall where the old one's did)
        assert sum(m["held"] for m in metrics) <= max(m["held"] + m["waited"] for m in metrics) + 3, metrics
        holder = max(range(3), key=lambda i: (metrics[i]["lease"], metrics[i]["held"]))
        assert metrics[holder]["lease"] == 1, metrics
        assert store.kv_get(LOCK_KEY, now=time.time()) is not None

        # the WeChat access token is fetched once for all three (phone numbers need it)
        emu = httpx.AsyncClient(base_url=emulator, timeout=15)

        async def wechat_phone(x: httpx.AsyncClient, i: int) -> int:
            code = (await emu.post("/_emulator/login", json={})).json()
            r = await x.post("/v1/auth/wechat", json={"code": code["code"]}, headers=header)
            assert r.status_code == 200, r.text
            number = (
                await emu.post(
                    "/_emulator/phone-code", json={"openid": code["openid"], "phone": f"1380013800{i}"}
                )
            ).json()
            answer = await x.post(
                "/v1/auth/wechat/phone", json={"code": number["code"]}, headers=bearer(r.json()["token"])
            )
            return answer.status_code

        assert (
            await asyncio.gather(*(wechat_phone(x, i) for i, x in enumerate((a, b, c, a, b, c)))) == [200] * 6
        )
        calls = (await emu.get("/_emulator/calls")).json()["calls"]
        assert sum(1 for call in calls if "token" in call["path"] and "jscode" not in call["path"]) == 1, (
            calls
        )
        await emu.aclose()

        # revoke-all on the second ends the session on all three at once
        assert (await b.post("/v1/auth/logout-all", headers=bearer(tokens[1]))).status_code == 204
        for x in (a, b, c):
            for token in tokens:
                r = await x.get("/v1/auth/me", headers=bearer(token))
                assert r.status_code == 401, r.text

        # SIGKILL of the lease holder under load: every acknowledged login and counter is there,
        # read on another process, and another process takes the sweeping over
        victim, reader = servers[holder], (a, b, c)[(holder + 1) % 3]
        loaded = (a, b, c)[holder]
        survivors = [x for i, x in enumerate((a, b, c)) if i != holder]
        acked: dict[str, int] = {}

        async def load() -> None:
            while victim.proc is not None and victim.proc.poll() is None:
                try:
                    r = await loaded.post("/v1/auth/login", json=creds, headers=header)
                    if r.status_code != 200:
                        continue
                    token = r.json()["token"]
                    acked[token] = 0
                    for _ in range(3):
                        r = await loaded.patch(
                            "/v1/session/data", json={"incr": {"n": 1}}, headers=bearer(token)
                        )
                        if r.status_code == 200:
                            acked[token] = r.json()["data"]["n"]
                except httpx.TransportError:
                    return

        async def kill() -> None:
            await asyncio.sleep(1.5)
            victim.signal(signal.SIGKILL)
            victim.wait()

        await asyncio.gather(load(), kill())
        assert acked, "the load acknowledged something before the kill"
        for token, n in acked.items():
            r = await reader.get("/v1/session/data", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert r.json()["data"].get("n", 0) >= n

        before = [await sweeper_metrics(x) for x in survivors]
        wave = expired_sessions(store, 30)
        # the dead holder's lease runs out (two intervals), then a survivor's next round takes it
        took = await purged(store, wave, within=3 * SWEEP_INTERVAL + 5)
        after = [await sweeper_metrics(x) for x in survivors]
        gained = [m["held"] - old["held"] for m, old in zip(after, before, strict=True)]
        assert sum(gained) >= 1, (took, before, after)  # a survivor holds the lease now
        assert sum(m["swept"] - old["swept"] for m, old in zip(after, before, strict=True)) == 30
        for m in after:
            assert m["purges"] == m["held"], after
        assert store.kv_get(LOCK_KEY, now=time.time()) is not None
        for x in (a, b, c):
            await x.aclose()
    finally:
        store.close()
        for s in servers:
            s.stop()
