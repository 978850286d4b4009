"""Redis under faults, each on a redis-server of its own: kill -9 and restart with AOF
(`appendfsync always`, `everysec`), a stall longer than the client timeout, dropped connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from load import Load
from servers import RedisProcess, Serve

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    started: list[RedisProcess] = []

    def start(appendfsync: str | None = None) -> RedisProcess:
        r = RedisProcess(tmp_path / f"redis{len(started)}", appendfsync=appendfsync).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def serve_on(serve: Callable[..., Serve], redis: RedisProcess, tmp_path: Path) -> Serve:
    return serve(HUIHUA_STORE=redis.url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db")


async def kill_and_restart(load: Load, redis: RedisProcess, down: float = 1.0) -> float:
    """kill -9 of Redis mid-load, `down` seconds without it, then a restart on the same port and
    AOF. Returns the moment of the kill."""
    load.fault()
    killed_at = time.monotonic()
    redis.kill()
    await asyncio.sleep(down)
    await asyncio.to_thread(redis.start)
    load.recovered()
    return killed_at


@pytest.mark.parametrize("fsync", ["always", "everysec"])
async def test_kill_9_and_restart_with_aof(
    serve: Callable[..., Serve],
    redis_servers: Callable[..., RedisProcess],
    scenario,
    tmp_path: Path,
    fsync: str,
) -> None:
    sc = scenario(f"redis-aof-{fsync}", "redis", f"kill -9 of Redis (AOF, appendfsync {fsync}) mid-load, "
                  "twice; restarted on the same port and AOF after 1 s")  # fmt: skip
    redis = redis_servers(fsync)
    server = serve_on(serve, redis, tmp_path)
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    for _ in range(2):
        killed_at = await kill_and_restart(load, redis)
        sc.faults_injected += 1
        if fsync == "everysec":
            # everysec fsyncs once a second (and may postpone a write while an fsync lags, up to
            # 2 s): what was acknowledged in the last 2 s before the kill may be lost
            load.ledger.loss_windows.append((killed_at - 2.0, killed_at))
        await load.wait_acks_after_recovery(20)
        await load.wait_requests(100)
    await load.stop()
    await load.verify()
    if fsync == "everysec":
        sc.notes.append(
            f"{len(load.ledger.allowed_losses)} acknowledged writes of the last 2 s before a kill were lost "
            "(allowed for everysec; Redis write()s the AOF before it answers, so a process kill "
            "alone loses nothing: only an OS crash or power loss loses the last second)"
        )
    sc.check()


async def test_redis_stalls_longer_than_the_client_timeout(
    serve: Callable[..., Serve], redis_servers: Callable[..., RedisProcess], scenario, tmp_path: Path
) -> None:
    sc = scenario("redis-stall", "redis", "DEBUG SLEEP 5 (the client timeout is 2 s) mid-load, twice: "
                  "503 store_unavailable, no 500, no 401 for a live session, then recovery")  # fmt: skip
    redis = redis_servers("always")
    server = serve_on(serve, redis, tmp_path)
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    for _ in range(2):
        load.fault()
        sleeper = redis.sleep_async(5)
        sc.faults_injected += 1
        await asyncio.to_thread(sleeper.wait, 20)
        load.recovered()
        await load.wait_acks_after_recovery(20)
    during = dict(load.ledger.statuses.get("fault", {}))
    await load.stop()
    await load.verify()
    assert during.get(503, 0) > 0, during
    sc.notes.append(f"answers during the stalls: {during}")
    sc.check()


async def test_connections_dropped_mid_load(
    serve: Callable[..., Serve], redis_servers: Callable[..., RedisProcess], scenario, tmp_path: Path
) -> None:
    sc = scenario("redis-client-kill", "redis", "CLIENT KILL TYPE normal every 0.3 s for 3 s mid-load: "
                  "every connection of huihua dropped, no 500, no increment applied twice")  # fmt: skip
    redis = redis_servers("always")
    server = serve_on(serve, redis, tmp_path)
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    load.fault()
    killed = 0
    for _ in range(10):
        out = await asyncio.to_thread(redis.cli, "CLIENT", "KILL", "TYPE", "normal")
        killed += int(out or 0)
        sc.faults_injected += 1
        await asyncio.sleep(0.3)
    load.recovered()
    await load.wait_acks_after_recovery(30)
    await load.stop()
    await load.verify()
    assert killed > 0
    sc.notes.append(f"{killed} connections killed")
    sc.check()
