"""Cleanup without cron: a background sweep of expired sessions, run by one process at a time.

Every process runs a sweeper; each round they race for a lease in the store's key-value space,
and only the holder purges, in short batches with a pause between them so concurrent requests
never wait behind a long delete. Stores with native TTLs (Redis) drop expired keys themselves;
the sweep then finds little to do.

The lease uses only two atomic store operations, so at no moment do two processes hold it:

- taking it is `kv_set(only_if_absent=True)` with a TTL of two intervals;
- the holder never extends its lease in place (a read, then a write, could overwrite a lease
  that ran out meanwhile and was taken by another process). It gives its own lease back,
  `kv_delete(if_value=owner)`, and races for a new one like everyone else. If its lease ran out
  and another process took it, the delete finds another owner and the race is lost.
- a process holds the lease from its clock reading taken before the `kv_set` until a TTL later,
  never longer, and stops purging between two batches once that time has passed.

`AsyncSweeper` (a task on the service's event loop) is the hand-written source; `Sweeper` (a
daemon thread, for Django and scripts), at the end, is generated from it by scripts/unasync.py.
What differs between them beyond the substitutions, a task or a thread, is `AsyncRepeater` /
`Repeater`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable

from .async_manager import AsyncSessionManager
from .errors import StoreUnavailable
from .manager import SessionManager

logger = logging.getLogger("huihua.sweeper")
LOCK_KEY = "huihua:sweeper"
Report = Callable[[str, int], None]
"""Told after every round: ("held", sessions purged), ("waited", 0) or ("failed", 0)."""


def _ignore(outcome: str, purged: int) -> None:
    pass


class _Lease:
    """One process's side of the lease."""

    def __init__(self, interval: float) -> None:
        self.owner = secrets.token_hex(8)
        self.ttl = interval * 2
        self.deadline = 0.0  # this process holds the lease while the clock reads less than this
        self.maybe_ours = False  # a kv_set of ours may have written the key: give it back first

    def holds(self, now: float) -> bool:
        return now < self.deadline


class AsyncRepeater:
    """Runs `step` every `interval` seconds as a task on the running event loop."""

    release_errors: tuple[type[Exception], ...] = (StoreUnavailable,)
    """Store errors `stop` ignores when it gives the lease back: the shutdown goes on."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def stopping(self) -> bool:
        return False  # a task is stopped by cancelling it, at its next await

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def start(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                await step()

        self._task = asyncio.get_running_loop().create_task(loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class Repeater:
    """Runs `step` every `interval` seconds in a daemon thread."""

    release_errors: tuple[type[Exception], ...] = ()
    """None: the caller of `stop` sees the store's error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def start(self, interval: float, step: Callable[[], None]) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                step()

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


# unasync: source of Sweeper: everything below, up to the generated part.


class AsyncSweeper:
    """Purges expired sessions in the background while it holds the lease."""

    def __init__(
        self,
        manager: AsyncSessionManager,
        *,
        interval: float = 60.0,
        batch_size: int = 1000,
        pause: float = 0.01,
        report: Report = _ignore,
    ) -> None:
        self.manager = manager
        self.interval = interval
        self.batch_size = batch_size
        self.pause = pause
        self.report = report
        self._lease = _Lease(interval)
        self._repeater = AsyncRepeater("huihua-sweeper")

    @property
    def owner(self) -> str:
        """This sweeper's value in the lease key."""
        return self._lease.owner

    def holds(self) -> bool:
        """Whether this sweeper holds the lease now."""
        return self._lease.holds(self.manager.clock.now())

    async def claim(self) -> bool:
        """Give back the lease if it is ours, then race for it (see the module's docstring)."""
        store, lease, now = self.manager.store, self._lease, self.manager.clock.now()
        lease.deadline = 0.0
        if lease.maybe_ours:
            await store.kv_delete(LOCK_KEY, if_value=lease.owner)
            lease.maybe_ours = False
        lease.maybe_ours = True  # from here until the answer, the key may be ours
        won = await store.kv_set(LOCK_KEY, lease.owner, now=now, ttl=lease.ttl, only_if_absent=True)
        lease.maybe_ours = won
        if won:
            lease.deadline = now + lease.ttl
        return won

    async def sweep_once(self) -> int:
        """One round: purge everything expired if this process holds the lease, batch by batch
        while it still does."""
        if not await self.claim():
            self.report("waited", 0)
            return 0
        total = 0
        while not self._repeater.stopping() and self.holds():
            removed = await self.manager.purge(batch_size=self.batch_size, max_batches=1)
            total += removed
            if removed < self.batch_size:
                break
            await self._repeater.pause(self.pause)  # let requests in between batches
        self.report("held", total)
        return total

    async def _round(self) -> None:
        try:
            await self.sweep_once()
        except StoreUnavailable as exc:
            logger.warning("sweep skipped: %s", exc)
            self.report("failed", 0)

    def start(self) -> None:
        self._repeater.start(self.interval, self._round)

    async def stop(self) -> None:
        await self._repeater.stop()
        self._lease.deadline = 0.0
        try:
            await self.manager.store.kv_delete(LOCK_KEY, if_value=self._lease.owner)
        except self._repeater.release_errors:
            pass


# unasync: generated from core/sweeper.py by scripts/unasync.py: do not edit below this line;
# edit the async twin there, then run `python scripts/unasync.py`.


class Sweeper:
    """Purges expired sessions in the background while it holds the lease."""

    def __init__(
        self,
        manager: SessionManager,
        *,
        interval: float = 60.0,
        batch_size: int = 1000,
        pause: float = 0.01,
        report: Report = _ignore,
    ) -> None:
        self.manager = manager
        self.interval = interval
        self.batch_size = batch_size
        self.pause = pause
        self.report = report
        self._lease = _Lease(interval)
        self._repeater = Repeater("huihua-sweeper")

    @property
    def owner(self) -> str:
        """This sweeper's value in the lease key."""
        return self._lease.owner

    def holds(self) -> bool:
        """Whether this sweeper holds the lease now."""
        return self._lease.holds(self.manager.clock.now())

    def claim(self) -> bool:
        """Give back the lease if it is ours, then race for it (see the module's docstring)."""
        store, lease, now = self.manager.store, self._lease, self.manager.clock.now()
        lease.deadline = 0.0
        if lease.maybe_ours:
            store.kv_delete(LOCK_KEY, if_value=lease.owner)
            lease.maybe_ours = False
        lease.maybe_ours = True  # from here until the answer, the key may be ours
        won = store.kv_set(LOCK_KEY, lease.owner, now=now, ttl=lease.ttl, only_if_absent=True)
        lease.maybe_ours = won
        if won:
            lease.deadline = now + lease.ttl
        return won

    def sweep_once(self) -> int:
        """One round: purge everything expired if this process holds the lease, batch by batch
        while it still does."""
        if not self.claim():
            self.report("waited", 0)
            return 0
        total = 0
        while not self._repeater.stopping() and self.holds():
            removed = self.manager.purge(batch_size=self.batch_size, max_batches=1)
            total += removed
            if removed < self.batch_size:
                break
            self._repeater.pause(self.pause)  # let requests in between batches
        self.report("held", total)
        return total

    def _round(self) -> None:
        try:
            self.sweep_once()
        except StoreUnavailable as exc:
            logger.warning("sweep skipped: %s", exc)
            self.report("failed", 0)

    def start(self) -> None:
        self._repeater.start(self.interval, self._round)

    def stop(self) -> None:
        self._repeater.stop()
        self._lease.deadline = 0.0
        try:
            self.manager.store.kv_delete(LOCK_KEY, if_value=self._lease.owner)
        except self._repeater.release_errors:
            pass
