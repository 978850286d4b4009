"""Cleanup without cron: the sweeper purges expired sessions, one process at a time."""

from __future__ import annotations

import os

import pytest

from huihua.core.async_manager import AsyncSessionManager
from huihua.core.clock import FakeClock
from huihua.core.manager import SessionManager
from huihua.core.sweeper import LOCK_KEY, AsyncSweeper, Sweeper
from huihua.stores import async_store_from_url, store_from_url


def _expired_and_live(manager: SessionManager, clock: FakeClock, expired: int, live: int) -> list[str]:
    for _ in range(expired):
        manager.create(client="service")  # 15 minutes idle
    clock.advance(3600)
    return [manager.create(client="browser").token or "" for _ in range(live)]


def test_only_the_lock_holder_sweeps_and_live_sessions_stay(
    tmp_path: os.PathLike[str], clock: FakeClock
) -> None:
    url = f"sqlite:///{os.fspath(tmp_path)}/s.db"
    first = SessionManager(store_from_url(url), clock=clock, events=())
    second = SessionManager(store_from_url(url), clock=clock, events=())  # another process's view
    live = _expired_and_live(first, clock, expired=25, live=3)
    a, b = (
        Sweeper(first, interval=60, batch_size=10, pause=0),
        Sweeper(second, interval=60, batch_size=10, pause=0),
    )
    assert a.sweep_once() == 25  # in batches of 10
    assert b.sweep_once() == 0  # the lock is a's for this round
    assert all(first.get(token) is not None for token in live)
    assert first.store.kv_get(LOCK_KEY, now=clock.now()) is not None
    clock.advance(121)  # a's lease (twice the interval) ran out: b may take over
    _expired_and_live(second, clock, expired=4, live=0)
    assert b.sweep_once() == 4 + 3  # the 3 browser sessions expired in the last hour too
    assert a.sweep_once() == 0
    b.stop()
    assert first.store.kv_get(LOCK_KEY, now=clock.now()) is None  # released on stop


@pytest.mark.anyio
async def test_async_sweeper_purges_between_pauses(clock: FakeClock) -> None:
    manager = AsyncSessionManager(async_store_from_url("memory://"), clock=clock, events=())
    for _ in range(7):
        await manager.create(client="service")
    keep = await manager.create(client="miniprogram")
    clock.advance(3600)
    sweeper = AsyncSweeper(manager, interval=60, batch_size=3, pause=0)
    assert await sweeper.sweep_once() == 7
    assert await manager.get(keep.token) is not None
    assert await AsyncSweeper(manager, interval=60).sweep_once() == 0  # another one waits its turn
    await sweeper.stop()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """One store two processes share (memory:// by name stands in for one process's two tasks)."""
    if request.param == "memory":
        return f"memory://lease-{id(request)}"
    if request.param == "sqlite":
        return f"sqlite:///{os.fspath(tmp_path)}/lease.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.anyio
async def test_a_second_async_sweeper_purges_nothing_while_the_first_holds_the_lease(
    shared_url: str, clock: FakeClock
) -> None:
    """With expired sessions still present (the older test only asked after all were purged)."""
    first = AsyncSessionManager(async_store_from_url(shared_url), clock=clock, events=())
    second = AsyncSessionManager(async_store_from_url(shared_url), clock=clock, events=())
    holder = AsyncSweeper(first, interval=3600, batch_size=2, pause=0)  # a 2-hour lease
    other = AsyncSweeper(second, interval=3600, batch_size=2, pause=0)
    try:

        async def expire(n: int) -> None:
            for _ in range(n):
                await first.create(client="service")  # 15 minutes idle
            clock.advance(20 * 60)  # expired; the lease has not run out

        await expire(5)
        assert await holder.claim()
        assert not await other.claim()  # the lease is the holder's
        assert await other.sweep_once() == 0
        assert await other.sweep_once() == 0  # asking again changes nothing
        assert await holder.sweep_once() == 5  # so all five were still there

        await expire(3)
        assert await other.sweep_once() == 0  # the holder renewed its lease by sweeping
        assert await holder.sweep_once() == 3

        await expire(4)
        clock.advance(2 * 3600)  # the holder fell silent: its lease ran out
        assert await other.sweep_once() == 4
        assert await holder.sweep_once() == 0  # and now it is the one that waits
        await expire(2)
        await other.stop()  # releases the lease at once
        assert await holder.sweep_once() == 2
    finally:
        await holder.stop()
        await first.store.close()
        await second.store.close()
