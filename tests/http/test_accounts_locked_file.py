"""The SQLite accounts database on the event loop (accounts/service.py `Accounts._db`): a query
runs inline while the file is free, and one that would wait for another connection's write lock
waits in a worker thread instead, so the loop keeps running and the call still succeeds once the
lock is gone (within the busy timeout) or answers StoreUnavailable after it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from huihua.accounts.database import SQLiteDatabase
from huihua.accounts.service import Accounts
from huihua.core.errors import StoreUnavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "accounts.db"


@pytest.fixture
def accounts(path: Path) -> Iterator[Accounts]:
    db = SQLiteDatabase(str(path), busy_timeout=2.0)
    yield Accounts(db)
    db.close()


def lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the write lock (as another process would)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


async def ticks_while(task: asyncio.Future[object]) -> float:
    """The longest the event loop went without running this coroutine while `task` ran."""
    longest, last = 0.0, time.monotonic()
    while not task.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


async def test_a_free_file_is_queried_inline_on_the_loop(accounts: Accounts) -> None:
    threads: list[int] = []
    await accounts._db(lambda: threads.append(threading.get_ident()))
    assert threads == [threading.get_ident()]  # the fast path: no thread hop


async def test_a_write_behind_a_lock_waits_off_the_loop_then_succeeds(accounts: Accounts, path: Path) -> None:
    user = await accounts.create_wechat_user()
    other = lock(path)
    threads: list[int] = []

    def write() -> None:
        threads.append(threading.get_ident())
        accounts.users.set_phone(user.id, "+8613800000000", 1.0)

    task = asyncio.ensure_future(accounts._db(write))
    loop = asyncio.get_running_loop()
    loop.call_later(0.8, other.rollback)  # the lock goes away well inside the busy timeout
    longest = await ticks_while(task)
    await task
    other.close()
    assert longest < 0.3, f"the event loop stood still for {longest:.2f} s"
    assert (
        len(threads) == 2 and threads[0] == threading.get_ident() != threads[1]
    )  # tried inline, then a thread
    got = await accounts.get(user.id)
    assert got is not None and got.phone == "+8613800000000"


async def test_a_lock_past_the_busy_timeout_is_store_unavailable(accounts: Accounts, path: Path) -> None:
    user = await accounts.create_wechat_user()
    other = lock(path)
    try:
        task = asyncio.ensure_future(accounts.set_disabled(user.id, True))
        longest = await ticks_while(task)
        with pytest.raises(StoreUnavailable, match="locked"):
            await task
    finally:
        other.close()
    assert longest < 0.3, f"the event loop stood still for {longest:.2f} s"
    got = await accounts.get(user.id)
    assert got is not None and not got.disabled  # nothing was written
