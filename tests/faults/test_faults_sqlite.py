"""SQLite under faults: kill -9 of a worker and of the whole server, a full disk, a locked file."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from load import HEADER, PASSWORD, Load
from servers import LockHolder, Serve, SmallDisk

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def test_kill_9_of_one_worker_mid_load(serve: Callable[..., Serve], scenario, tmp_path: Path) -> None:
    sc = scenario("sqlite-kill-worker", "sqlite", "kill -9 of one of 2 workers mid-load, 3 times; "
                  "the supervisor starts a new one on the same file")  # fmt: skip
    server = serve()
    sc.load = load = Load(server.url, max_requests=2500)
    await load.register()
    load.start()
    await load.wait_requests(300)
    for _ in range(3):
        load.fault()
        server.kill_worker()
        sc.faults_injected += 1
        load.recovered()  # recovery counts from the kill: the other worker goes on serving
        await asyncio.to_thread(server.wait_ready)  # the supervisor replaced it
        await load.wait_requests(200)
    await load.wait_acks_after_recovery(20)
    await load.stop()
    await load.verify()
    assert integrity(tmp_path / "huihua.db") == "ok"
    sc.check()


async def test_kill_9_of_the_whole_server_mid_load(
    serve: Callable[..., Serve], scenario, tmp_path: Path
) -> None:
    sc = scenario("sqlite-kill-server", "sqlite", "kill -9 of the supervisor and both workers at once "
                  "mid-load; restarted on the same file and port (the restart takes most of the recovery)")  # fmt: skip
    server = serve()
    sc.load = load = Load(server.url, max_requests=2500)
    await load.register()
    load.start()
    await load.wait_requests(200)
    load.fault()
    server.kill_all()
    sc.faults_injected += 1
    assert server.proc is not None and server.proc.returncode == -signal.SIGKILL
    load.recovered()  # recovery counts from the kill: the restart is part of it
    await asyncio.sleep(0.5)  # the clients see refused connections meanwhile
    assert integrity(tmp_path / "huihua.db") == "ok"
    server = serve(port=server.port)
    await load.wait_requests(200)
    await load.wait_acks_after_recovery(20)
    await load.stop()
    await load.verify()
    assert integrity(tmp_path / "huihua.db") == "ok"
    sc.check()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk", "6m").mount()
    yield disk
    disk.unmount()


async def fill_through_the_api(base_url: str, stop: asyncio.Event) -> list[tuple[int, str | None]]:
    """Visitors writing 30 kB each: new rows until the store refuses. Their answers, for the test."""
    seen: list[tuple[int, str | None]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        while not stop.is_set():
            try:
                r = await http.patch("/v1/session/data", json={"set": {"blob": "x" * 30000}}, headers=HEADER)
            except httpx.TransportError:
                continue
            code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
            seen.append((r.status_code, code))
            if r.status_code == 507:
                await asyncio.sleep(0.2)
    return seen


async def test_disk_full_answers_507_store_full_then_recovers(
    serve: Callable[..., Serve], scenario, small_disk: SmallDisk
) -> None:
    sc = scenario("sqlite-disk-full", "sqlite", "the SQLite file on a 6 MB tmpfs that is filled up "
                  "mid-load, then freed: writes answer 507 store_full, reads go on, nothing corrupted")  # fmt: skip
    db = small_disk.folder / "huihua.db"
    server = serve(HUIHUA_STORE=f"sqlite:///{db}")
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    load.fault()
    small_disk.fill()
    sc.faults_injected += 1
    stop = asyncio.Event()
    filler = asyncio.create_task(fill_through_the_api(server.url, stop))
    await load.wait_requests(250)
    stop.set()
    seen = await filler
    refused = load.ledger.statuses.get("fault", {}).get(507, 0)
    assert refused > 0, (load.ledger.statuses, seen[-5:])
    assert {code for status, code in seen if status >= 400} <= {"store_full"}, set(seen)
    assert integrity(db) == "ok"
    small_disk.free()
    load.recovered()
    await load.wait_acks_after_recovery(30)
    # space freed: writes are acknowledged again (200 with their data), not refused any more
    freed = load.ledger.write_acks_sent_after(load.recovered_at)
    assert freed.get("incr", 0) > 0 and freed.get("set", 0) > 0, f"no write acknowledged once freed: {freed}"
    after = load.ledger.statuses.get("after", {})
    assert after.get(507, 0) == 0, f"507 for requests sent after the space was freed: {after}"
    await load.stop()
    await load.verify()
    assert integrity(db) == "ok"
    sc.notes.append(f"{refused} ledger writes answered 507 store_full while full")
    sc.check()


async def test_file_locked_longer_than_the_busy_timeout(
    serve: Callable[..., Serve], scenario, tmp_path: Path
) -> None:
    sc = scenario("sqlite-locked", "sqlite", "another process holds BEGIN EXCLUSIVE on the file for 8 s "
                  "(the busy timeout is 5 s) mid-load: writes answer 503 store_unavailable, then recover")  # fmt: skip
    db = tmp_path / "huihua.db"
    server = serve()
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    holder = LockHolder(db)
    try:
        load.fault()
        await asyncio.to_thread(holder.hold)
        sc.faults_injected += 1
        await asyncio.sleep(8)
    finally:
        holder.release()
    load.recovered()
    during = dict(load.ledger.statuses.get("fault", {}))
    await load.wait_acks_after_recovery(30)
    await load.stop()
    await load.verify()
    assert during.get(503, 0) > 0, during
    assert integrity(db) == "ok"
    sc.notes.append(f"answers while locked: {during}")
    sc.check()


async def test_a_locked_accounts_file_does_not_freeze_the_worker(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """While another process holds the file's write lock, a login and a registration (whose
    throttle write and insert run inline on the event loop) wait for it off the loop: another
    request on the same worker answers at once. A lock shorter than the busy timeout costs no
    error: the waiting registration completes once the lock is gone."""
    server = serve(workers=1)  # one worker: every request below is served by the same event loop
    load = Load(server.url, clients=1)
    await load.register()
    holder = LockHolder(tmp_path / "huihua.db")
    await asyncio.to_thread(holder.hold)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def login() -> int:
                body = {"username": load.users[0], "password": PASSWORD}
                return (await http.post("/v1/auth/login", json=body, headers=HEADER)).status_code

            async def register(name: str) -> int:
                body = {"username": name, "password": PASSWORD}
                return (await http.post("/v1/accounts", json=body, headers=HEADER)).status_code

            async def health() -> list[float]:
                await asyncio.sleep(0.5)  # the login and the registration wait for the lock by now
                latencies = []
                for _ in range(5):  # through the whole wait, not only its start
                    started = time.monotonic()
                    assert (await http.get("/healthz")).status_code == 200
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.5)
                return latencies

            status, registered, latencies = await asyncio.gather(login(), register("locked-out"), health())
            holder.release()

            async def release_soon() -> None:
                await asyncio.sleep(1.0)
                holder.release()

            await asyncio.to_thread(holder.hold)
            short, _ = await asyncio.gather(register("waited"), release_soon())
    finally:
        holder.release()
    assert status == 503
    assert registered == 503
    assert max(latencies) < 1.0, f"/healthz took {max(latencies):.1f} s while requests waited for the lock"
    assert short == 201, "a lock shorter than the busy timeout must delay the registration, not fail it"
