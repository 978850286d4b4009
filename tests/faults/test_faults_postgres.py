"""PostgreSQL under faults, on a cluster of our own (sessions and accounts in one database):
a restart under load, the service's connections terminated, a statement timeout behind a lock."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from load import HEADER, PASSWORD, Load
from servers import PostgresCluster, Serve

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    # not under pytest's tmp dir: that is private to root, and PostgreSQL runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="huihua-faults-pg-"))
    pg = PostgresCluster(folder)
    try:
        yield pg.init().start()
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def serve_on(serve: Callable[..., Serve], url: str) -> Serve:
    return serve(HUIHUA_STORE=url, HUIHUA_DATABASE=url)


async def test_restart_under_load(serve: Callable[..., Serve], cluster: PostgresCluster, scenario) -> None:
    sc = scenario("postgres-restart", "postgres", "pg_ctl restart -m fast of PostgreSQL mid-load, twice: "
                  "every connection of huihua dies; recovery without restarting huihua")  # fmt: skip
    url = cluster.create_database("faults_restart")
    server = serve_on(serve, url)
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    for _ in range(2):
        load.fault()
        await asyncio.to_thread(cluster.restart)
        sc.faults_injected += 1
        load.recovered()
        await load.wait_acks_after_recovery(20)
        await load.wait_requests(80)
    await load.stop()
    await load.verify()
    assert server.proc is not None and server.proc.poll() is None  # the same huihua all along
    sc.check()


def terminate_backends(url: str, db: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,),
        ).fetchall()
    return len(rows)


async def test_connections_terminated(
    serve: Callable[..., Serve], cluster: PostgresCluster, scenario
) -> None:
    sc = scenario("postgres-terminate", "postgres", "pg_terminate_backend of every connection of huihua "
                  "(store and accounts) every 0.3 s, 8 times, mid-load")  # fmt: skip
    url = cluster.create_database("faults_terminate")
    server = serve_on(serve, url)
    sc.load = load = Load(server.url, max_requests=3000)
    await load.register()
    load.start()
    await load.wait_requests(150)
    load.fault()
    ended = 0
    for _ in range(8):
        ended += await asyncio.to_thread(terminate_backends, cluster.url(), "faults_terminate")
        sc.faults_injected += 1
        await asyncio.sleep(0.3)
    load.recovered()
    await load.wait_acks_after_recovery(30)
    await load.stop()
    await load.verify()
    assert ended > 0
    sc.notes.append(f"{ended} backends terminated")
    sc.check()


@pytest.mark.parametrize("db_timeout", ["1s", None], ids=["database-1s", "store-default"])
async def test_statement_timeout_behind_a_lock(
    serve: Callable[..., Serve], cluster: PostgresCluster, scenario, db_timeout: str | None
) -> None:
    """With `statement_timeout` set on the database, and without (the store's own 5 s default):
    a request behind the lock answers 503 before the client's 7.5 s timeout, none hangs past it."""
    if db_timeout:
        sc = scenario("postgres-statement-timeout", "postgres", "statement_timeout = 1 s on the database "
                      "and another connection holding an ACCESS EXCLUSIVE lock on huihua_session for 9 s, "
                      "twice: 503 store_unavailable, then recovery without restarting huihua")  # fmt: skip
    else:
        sc = scenario("postgres-lock-store-timeout", "postgres", "no statement_timeout on the database; "
                      "an ACCESS EXCLUSIVE lock on huihua_session held for 9 s, twice: the store's own "
                      "5 s statement timeout answers 503 before the client gives up (7.5 s)")  # fmt: skip
    db = f"faults_timeout_{'db' if db_timeout else 'store'}"
    url = cluster.create_database(db)
    if db_timeout:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {db} SET statement_timeout = '{db_timeout}'")
    server = serve_on(serve, url)
    sc.load = load = Load(server.url, max_requests=3000, timeout=7.5)
    await load.register()
    load.start()
    await load.wait_requests(150)
    for _ in range(2):
        load.fault()
        with psycopg.connect(url) as locker:
            locker.execute("SET statement_timeout = 0")
            locker.execute("LOCK TABLE huihua_session IN ACCESS EXCLUSIVE MODE")
            sc.faults_injected += 1
            await asyncio.sleep(9)
            locker.rollback()
        load.recovered()
        await load.wait_acks_after_recovery(20)
    during = dict(load.ledger.statuses.get("fault", {}))
    await load.stop()
    await load.verify()
    assert during.get(503, 0) > 0, during
    assert during.get("transport", 0) == 0, f"requests hung past the client timeout: {during}"
    sc.notes.append(f"answers behind the lock: {during}")
    sc.check()


async def test_a_lock_on_the_accounts_table_bounds_logins(
    serve: Callable[..., Serve], cluster: PostgresCluster
) -> None:
    """No statement_timeout on the database; another connection holds an ACCESS EXCLUSIVE lock on
    huihua_user: a login answers 503 store_unavailable within the accounts database's own 5 s
    statement timeout (not a hang), and logins work again once the lock is gone."""
    url = cluster.create_database("faults_accounts_lock")
    server = serve_on(serve, url)
    load = Load(server.url, clients=1)
    await load.register()
    body = {"username": load.users[0], "password": PASSWORD}
    async with httpx.AsyncClient(base_url=server.url, timeout=7.5) as http:
        with psycopg.connect(url) as locker:
            locker.execute("SET statement_timeout = 0")
            locker.execute("LOCK TABLE huihua_user IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            r = await http.post("/v1/auth/login", json=body, headers=HEADER)
            took = time.monotonic() - started
            locker.rollback()
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_unavailable"
        assert 4.0 < took < 7.0, f"the login answered after {took:.1f} s"  # the 5 s timeout, not sooner
        r = await http.post("/v1/auth/login", json=body, headers=HEADER)
        assert r.status_code == 200, r.text
