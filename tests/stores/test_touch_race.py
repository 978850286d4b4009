"""A touch writes activity only, never the data it read: an increment landing between a load's
read and its touch must survive. Every store x (sync, async), contract style.

Issue 14 item 5: a touch that wrote the data back passed the whole suite, because every
concurrency test loaded with `touch=False` and the fake clock never crossed the touch interval.
"""

from __future__ import annotations

import inspect
from typing import Any

from huihua.core.data import DataChanges
from huihua.core.policy import MINUTE

from .conftest import Harness

LIMIT = 64 * 1024
BUMP = DataChanges(incr={"n": 1})


class IncrementAfterRead:
    """A real store that lets another writer's increment land right after every `get` of
    `key`: exactly the window between a load's read and its touch."""

    def __init__(self, store: Any, harness: Harness) -> None:
        self._store = store
        self._h = harness
        self.key = ""
        self.bumps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _bump(self) -> Any:
        self.bumps += 1
        return self._store.update(self.key, self._h.clock.now(), changes=BUMP, max_bytes=LIMIT)

    def get(self, key: str) -> Any:
        found = self._store.get(key)
        if key != self.key:
            return found
        if inspect.isawaitable(found):

            async def read_then_bump() -> Any:
                record = await found
                assert await self._bump() is not None
                return record

            return read_then_bump()
        assert self._bump() is not None
        return found


def test_an_increment_between_the_read_and_the_touch_survives(h: Harness) -> None:
    s = h.m.create(client="miniprogram", data={"n": 0})
    racing = IncrementAfterRead(h.new_raw_store(), h)
    racing.key = s.record.key
    m = h.manager(racing)
    for _ in range(12):
        h.clock.advance(MINUTE + 1)  # every load is due a touch
        loaded = m.load(s.token)
        assert loaded.record.last_seen_at == h.clock.now()  # the touch was written
        m.update(loaded, incr={"n": 1})  # an atomic store update: no read, no bump
    assert racing.bumps == 12
    assert h.m.load(s.token, touch=False)["n"] == 12 + racing.bumps


def test_parallel_loads_and_increments_across_touch_intervals_lose_nothing(h: Harness) -> None:
    s = h.m.create(client="miniprogram", data={"n": 0})
    workers, rounds = 8, 12

    def client(i: int) -> int:
        for r in range(rounds):
            if (r + i) % 3 == 0:
                h.clock.advance(MINUTE + 1)  # the next loads are due a touch
            loaded = h.m.load(s.token)  # touches when due, racing the others' increments
            h.m.update(loaded, incr={"n": 1})
            h.m.load(s.token)  # a read-only request in between, touching too
        return rounds

    results = h.parallel([lambda i=i: client(i) for i in range(workers)], workers=workers)
    assert [r for r in results if isinstance(r, Exception)] == []
    final = h.m.load(s.token, touch=False)
    assert final["n"] == workers * rounds
    assert final.record.last_seen_at > s.record.last_seen_at  # touches happened
