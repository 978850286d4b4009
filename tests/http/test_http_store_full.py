"""A full SQLite store (SQLITE_FULL, made with `PRAGMA max_page_count` on the store's connection):
507 store_full with a message that says what to do, reads go on, writes resume once there is room.
The disk-full fault scenario (tests/faults) does the same with a real full file system."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from huihua.config import Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app
from huihua.stores import sqlite_path
from huihua.stores.inline import InlineAsyncStore
from huihua.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_a_full_store_answers_507_store_full_then_recovers(
    settings: Settings, clock: FakeClock
) -> None:
    sync = SQLiteStore(sqlite_path(settings.store)[0], raise_busy=True)
    # a visitor session, allowed the full data cap so one write needs more pages than there are
    roomy = replace(settings, anonymous_max_data_bytes=settings.max_data_bytes)
    app = create_app(roomy, store=InlineAsyncStore(sync), clock=clock, sweeper=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        r = await http.patch(
            "/v1/session/data", json={"set": {"a": 1}}, headers={"X-Session-Transport": "header"}
        )
        assert r.status_code == 200
        auth = {"Authorization": f"Bearer {r.headers['x-session-token']}"}
        db = sync._connection()  # the event loop's thread: the one the app's store uses
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page

        r = await http.patch("/v1/session/data", json={"set": {"big": "x" * 40000}}, headers=auth)
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "store_full"
        assert "free disk space" in r.json()["error"]["message"]
        r = await http.get("/v1/session/data", headers=auth)
        assert r.status_code == 200 and r.json()["data"] == {"a": 1}  # the refused write left nothing

        db.execute("PRAGMA max_page_count = 1073741823")
        r = await http.patch("/v1/session/data", json={"set": {"big": "x" * 40000}}, headers=auth)
        assert r.status_code == 200 and len(r.json()["data"]["big"]) == 40000
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sync.close()


def test_store_full_is_a_store_unavailable_for_callers_that_only_retry(tmp_path: Path) -> None:
    from huihua import StoreFull, StoreUnavailable

    assert issubclass(StoreFull, StoreUnavailable) and StoreFull.code == "store_full"


FILLERS = {
    "huihua_throttle": "INSERT INTO huihua_throttle VALUES (?, 0, 0, 0)",
    "huihua_user": "INSERT INTO huihua_user (id, username, created_at, updated_at) VALUES (?, ?, 0, 0)",
}


def fill(db: sqlite3.Connection, table: str = "huihua_throttle") -> None:
    """Fill the free space left in `table`'s pages (and its indexes'), with ever smaller rows."""
    sql = FILLERS[table]
    for repeat in (8, 2, 1):
        refused = None
        for i in range(100_000):
            key = f"f{repeat}-{i:05d}" * repeat
            try:
                db.execute(sql, (key,) * sql.count("?"))
            except sqlite3.OperationalError as exc:
                refused = str(exc)
                break
        assert refused is not None and "full" in refused, refused


async def test_a_full_accounts_database_answers_507_store_full(settings: Settings, clock: FakeClock) -> None:
    app = create_app(settings, clock=clock, sweeper=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        r = await http.post("/v1/accounts", json={"username": "alice", "password": "correct horse battery"})
        assert r.status_code == 201
        accounts = app.state.huihua.accounts.db
        db = accounts.without_waiting(accounts._db)  # the connection inline calls on this thread use
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        fill(db)
        fill(db, "huihua_user")
        # a registration writes on this thread's connection (the per-IP count, then the user;
        # password checks run in a worker thread, out of this pragma's reach): 507, not a 503
        # or a 4xx
        r = await http.post("/v1/accounts", json={"username": "bob", "password": "correct horse battery"})
        assert r.status_code == 507 and r.json()["error"]["code"] == "store_full", r.text
        db.execute("PRAGMA max_page_count = 1073741823")
        r = await http.post("/v1/auth/login", json={"username": "alice", "password": "correct horse battery"})
        assert r.status_code == 200
