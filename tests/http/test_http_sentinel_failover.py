"""A Sentinel failover under load, with `huihua serve` on `redis+sentinel://`.

`SENTINEL FAILOVER` promotes the replica while clients keep writing: requests answer 200 or 503
store_unavailable (never 500, never 401), the service follows the new master by itself, and every
session acknowledged before the failover is still there after it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, serve_env

from redis_servers import SentinelGroup

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_sentinel_failover_costs_503s_and_no_restart(
    redis_sentinel: SentinelGroup, redis_sentinel_url: str, tmp_path: Path
) -> None:
    env = serve_env(tmp_path, HUIHUA_STORE=redis_sentinel_url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/a.db")
    server = ServeProcess(env, cwd=tmp_path).start()
    before = redis_sentinel.current_master()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            tokens = []
            header = {"X-Session-Transport": "header"}
            for i in range(4):
                creds = {"username": f"sentinel{i}", "password": PASSWORD}
                assert (await http.post("/v1/accounts", json=creds, headers=header)).status_code == 201
                r = await http.post("/v1/auth/login", json=creds, headers=header)
                assert r.status_code == 200
                tokens.append(r.json()["token"])
            statuses: list[int] = []
            odd: list[str] = []
            after_switch: list[int] = []

            async def client(token: str, until: float) -> None:
                while time.monotonic() < until and len(after_switch) < 20:
                    r = await http.patch("/v1/session/data", json={"incr": {"n": 1}},
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                    statuses.append(r.status_code)
                    if r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable":
                        pass
                    elif r.status_code != 200:
                        odd.append(f"{r.status_code} {r.text}")
                    elif switched.is_set():
                        after_switch.append(r.status_code)
                    await asyncio.sleep(0.02)

            switched = asyncio.Event()

            async def failover() -> None:
                await asyncio.sleep(1.0)
                redis_sentinel.sentinels[0].client().execute_command(
                    "SENTINEL", "FAILOVER", redis_sentinel.MASTER
                )  # type: ignore[no-untyped-call]
                deadline = time.monotonic() + 30
                while redis_sentinel.current_master() is before:
                    assert time.monotonic() < deadline, "no failover"
                    await asyncio.sleep(0.1)
                switched.set()

            until = time.monotonic() + 40
            await asyncio.gather(failover(), *(client(t, until) for t in tokens))
            assert not odd, odd[:5]
            assert len(after_switch) >= 20, "served by the new master"
            for token in tokens:  # every session acknowledged before the failover is still valid
                r = await http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
        assert redis_sentinel.current_master() is not before
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()
