"""Cleanup without cron: the sweeper purges expired sessions, one process at a time."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

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


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """One store two processes share (memory:// by name stands in for one process's two tasks)."""
    if request.param == "memory":
        return f"memory://lease-{id(request)}"
    if request.param == "sqlite":
        return f"sqlite:///{os.fspath(tmp_path)}/lease.db"
    return str(request.getfixturevalue(f"{request.param}_url"))


class Stalling:
    """A real store, and the process using it stalls once at a chosen point: after its `after`-th
    call to one of `methods` (0: before the first one), `meanwhile` runs, then the process goes
    on. Every call reaches the store unchanged; this only decides what happens in between."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._plan: tuple[tuple[str, ...], int, Callable[[], None]] | None = None
        self._done = 0

    def stall(self, methods: tuple[str, ...], after: int, meanwhile: Callable[[], None]) -> None:
        self._plan, self._done = (methods, after, meanwhile), 0

    def _maybe_stall(self) -> None:
        if self._plan is not None and self._done == self._plan[1]:
            meanwhile, self._plan = self._plan[2], None
            meanwhile()

    def finish(self) -> None:
        """The stall comes now if the process made fewer calls than `after`."""
        if self._plan is not None:
            meanwhile, self._plan = self._plan[2], None
            meanwhile()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if self._plan is None or name not in self._plan[0]:
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self._maybe_stall()
            try:
                return method(*args, **kwargs)
            finally:
                self._done += 1
                self._maybe_stall()

        async def acall(*args: Any, **kwargs: Any) -> Any:
            self._maybe_stall()
            try:
                return await method(*args, **kwargs)
            finally:
                self._done += 1
                self._maybe_stall()

        return acall if inspect.iscoroutinefunction(method) else call


KV = ("kv_get", "kv_set", "kv_delete")


def _expired(url: str, clock: FakeClock, n: int) -> None:
    """`n` sessions that expired a while ago (made by a process whose clock was an hour behind)."""
    past = SessionManager(store_from_url(url), clock=FakeClock(clock.now() - 3600), events=())
    for _ in range(n):
        past.create(client="service")  # 15 minutes idle
    past.store.close()


@pytest.mark.parametrize(
    "after", [0, 1, 2], ids=["before-its-first-call", "after-one-call", "after-two-calls"]
)
def test_a_holder_that_stalls_past_its_lease_while_renewing_never_holds_it_with_another(
    shared_url: str, clock: FakeClock, after: int
) -> None:
    """The holder starts renewing, stalls (a GC pause, a stopped VM) until its lease has run out,
    and another process takes the lease meanwhile. Whatever call the stall comes after, the
    holder does not come back holding the lease, nor overwrite it: the other keeps it, and only
    the other sweeps. (A read then an unconditional write, stalled between the two, overwrote it.)"""
    stalling = Stalling(store_from_url(shared_url))
    first = SessionManager(stalling, clock=clock, events=())
    second = SessionManager(store_from_url(shared_url), clock=clock, events=())
    holder = Sweeper(first, interval=60, batch_size=10, pause=0)  # a 2-minute lease
    other = Sweeper(second, interval=60, batch_size=10, pause=0)
    try:
        assert holder.claim()
        assert not other.claim()
        clock.advance(60)  # the next round: the holder renews
        taken: list[bool] = []

        def stall() -> None:
            clock.advance(121)  # past any lease the holder took: it ran out during the stall
            taken.append(other.claim())

        stalling.stall(KV, after, stall)
        holder.claim()
        stalling.finish()
        assert taken == [True]  # the lease had run out: the other process took it
        assert second.store.kv_get(LOCK_KEY, now=clock.now()) == other.owner  # not overwritten
        assert other.holds() and not holder.holds()

        clock.advance(30)  # the next round, well within the other's lease
        _expired(shared_url, clock, 12)
        assert holder.sweep_once() == 0
        assert not holder.holds()
        assert second.store.kv_get(LOCK_KEY, now=clock.now()) == other.owner
        assert other.sweep_once() == 12
        assert other.holds()
    finally:
        first.store.close()
        second.store.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "after", [0, 1, 2], ids=["before-its-first-call", "after-one-call", "after-two-calls"]
)
async def test_the_async_sweeper_too_never_holds_the_lease_with_another_after_a_stall(
    shared_url: str, clock: FakeClock, after: int
) -> None:
    """The same race for the service's sweeper (the async source `Sweeper` is generated from): the stall
    is the event loop's, and the other process's claim runs to its end meanwhile."""
    stalling = Stalling(async_store_from_url(shared_url))
    other_store = store_from_url(shared_url)  # the other process, synchronous: it runs in the stall
    holder = AsyncSweeper(AsyncSessionManager(stalling, clock=clock, events=()), interval=60, batch_size=10)
    other = Sweeper(SessionManager(other_store, clock=clock, events=()), interval=60, batch_size=10, pause=0)
    try:
        assert await holder.claim()
        assert not other.claim()
        clock.advance(60)
        taken: list[bool] = []

        def stall() -> None:
            clock.advance(121)
            taken.append(other.claim())

        stalling.stall(KV, after, stall)
        await holder.claim()
        stalling.finish()
        assert taken == [True]
        assert other_store.kv_get(LOCK_KEY, now=clock.now()) == other.owner
        assert other.holds() and not holder.holds()
        clock.advance(30)
        _expired(shared_url, clock, 7)
        assert await holder.sweep_once() == 0
        assert other_store.kv_get(LOCK_KEY, now=clock.now()) == other.owner
        assert other.sweep_once() == 7
    finally:
        await stalling.store.close()
        other_store.close()


def test_a_holder_whose_lease_runs_out_between_batches_stops_purging(
    shared_url: str, clock: FakeClock
) -> None:
    stalling = Stalling(store_from_url(shared_url))
    first = SessionManager(stalling, clock=clock, events=())
    second = SessionManager(store_from_url(shared_url), clock=clock, events=())
    holder = Sweeper(first, interval=60, batch_size=10, pause=0)
    other = Sweeper(second, interval=60, batch_size=10, pause=0)
    try:
        _expired(shared_url, clock, 30)
        taken: list[bool] = []

        def stall() -> None:
            clock.advance(121)  # the first batch took longer than the lease
            taken.append(other.claim())

        stalling.stall(("purge",), 1, stall)
        assert holder.sweep_once() == 10  # one batch, then it saw its lease had run out
        assert taken == [True]
        assert other.sweep_once() == 20
    finally:
        first.store.close()
        second.store.close()


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


@pytest.mark.anyio
async def test_the_async_holder_stops_purging_when_its_lease_runs_out_between_batches(
    shared_url: str, clock: FakeClock
) -> None:
    stalling = Stalling(async_store_from_url(shared_url))
    other_store = store_from_url(shared_url)
    holder = AsyncSweeper(AsyncSessionManager(stalling, clock=clock, events=()), interval=60, batch_size=10)
    other = Sweeper(SessionManager(other_store, clock=clock, events=()), interval=60, batch_size=10, pause=0)
    try:
        _expired(shared_url, clock, 30)
        taken: list[bool] = []

        def stall() -> None:
            clock.advance(121)
            taken.append(other.claim())

        stalling.stall(("purge",), 1, stall)
        assert await holder.sweep_once() == 10
        assert taken == [True]
        assert other.sweep_once() == 20
    finally:
        await stalling.store.close()
        other_store.close()


def test_each_round_is_reported_with_its_lease_outcome(shared_url: str, clock: FakeClock) -> None:
    """What /metrics counts (huihua_sweeper_rounds_total, huihua_swept_sessions_total)."""
    first = SessionManager(store_from_url(shared_url), clock=clock, events=())
    second = SessionManager(store_from_url(shared_url), clock=clock, events=())
    rounds: list[tuple[str, str, int]] = []
    a = Sweeper(first, interval=60, pause=0, report=lambda outcome, n: rounds.append(("a", outcome, n)))
    b = Sweeper(second, interval=60, pause=0, report=lambda outcome, n: rounds.append(("b", outcome, n)))
    try:
        _expired(shared_url, clock, 5)
        assert a.sweep_once() == 5
        assert b.sweep_once() == 0
        assert a.sweep_once() == 0
        assert rounds == [("a", "held", 5), ("b", "waited", 0), ("a", "held", 0)]
    finally:
        first.store.close()
        second.store.close()
