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
