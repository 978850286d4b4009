"""A Redis Cluster master dies under load (kill -9), with `huihua serve` on the cluster.

Sessions are spread over the shards (each user's sessions live in its own `{TAG}` slot). While
the dead master's replica is not yet promoted, requests for its slots answer 503
store_unavailable; every other shard keeps answering 200; nothing answers 500 or 401; and once
the replica is promoted the same sessions answer 200 again, with their data, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, serve_env

from redis_servers import Cluster, Server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CLIENTS_PER_SHARD = 2


async def login_spread(http: httpx.AsyncClient, cluster: Cluster) -> dict[int, list[str]]:
    """Tokens of new users, CLIENTS_PER_SHARD on every master (by port)."""
    shards: dict[int, list[str]] = defaultdict(list)
    for i in range(60):
        if len(shards) == 3 and all(len(v) >= CLIENTS_PER_SHARD for v in shards.values()):
            break
        creds = {"username": f"shard{i}", "password": PASSWORD}
        header = {"X-Session-Transport": "header"}
        assert (await http.post("/v1/accounts", json=creds, headers=header)).status_code == 201
        r = await http.post("/v1/auth/login", json=creds, headers=header)
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        port = cluster.master_of("{" + token[:4] + "}").port
        if len(shards[port]) < CLIENTS_PER_SHARD:
            shards[port].append(token)
    assert len(shards) == 3
    return shards


async def bump(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.patch(
        "/v1/session/data", json={"incr": {"n": 1}}, headers={"Authorization": f"Bearer {token}"}
    )


async def test_a_dead_master_stops_only_its_shard_until_its_replica_takes_over(
    redis_cluster: Cluster, redis_cluster_url: str, tmp_path: Path
) -> None:
    env = serve_env(
        tmp_path, HUIHUA_STORE=redis_cluster_url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db"
    )
    server = ServeProcess(env, cwd=tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            shards = await login_spread(http, redis_cluster)
            victim_port = sorted(shards)[0]
            victim: Server = next(s for s in redis_cluster.servers if s.port == victim_port)
            counts = {t: 0 for tokens in shards.values() for t in tokens}
            statuses: dict[int, list[int]] = defaultdict(list)
            bodies: list[str] = []
            recovered_at: float | None = None

            async def client(port: int, token: str, until: float) -> None:
                nonlocal recovered_at
                while time.monotonic() < until and (
                    recovered_at is None or time.monotonic() < recovered_at + 2
                ):
                    r = await bump(http, token)
                    statuses[port].append(r.status_code)
                    if r.status_code == 200:
                        counts[token] = r.json()["data"]["n"]
                        if port == victim_port and killed_at is not None and recovered_at is None:
                            recovered_at = time.monotonic()
                    elif r.status_code != 503 or r.json()["error"]["code"] != "store_unavailable":
                        bodies.append(f"{r.status_code} {r.text}")
                    await asyncio.sleep(0.02)

            killed_at: float | None = None
            until = time.monotonic() + 2.0
            await asyncio.gather(*(client(p, t, until) for p, ts in shards.items() for t in ts))
            assert set(statuses) == set(shards) and all(s == 200 for v in statuses.values() for s in v)
            statuses.clear()
            victim.kill()
            killed_at = time.monotonic()
            until = killed_at + 25.0
            await asyncio.gather(*(client(p, t, until) for p, ts in shards.items() for t in ts))
        assert not bodies, bodies[:5]  # no 500, no 401, no other error
        assert 503 in statuses[victim_port], "the dead shard answered 503 store_unavailable"
        assert recovered_at is not None and statuses[victim_port][-1] == 200, "served again after promotion"
        for port in shards:
            if port != victim_port:
                assert set(statuses[port]) == {200}, (port, sorted(set(statuses[port])))
        assert server.proc is not None and server.proc.poll() is None  # the same process throughout
        assert "Traceback" not in server.log()
    finally:
        server.stop()
        redis_cluster.heal()
