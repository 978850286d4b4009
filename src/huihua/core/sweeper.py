"""Cleanup without cron: a background sweep of expired sessions, run by one process at a time.

Every process runs a sweeper; each round they race for a lock in the store's key-value space
(`kv_set(only_if_absent=True)` with a TTL), and only the holder purges, in short batches with a
pause between them so concurrent requests never wait behind a long delete. Stores with native
TTLs (Redis) drop expired keys themselves; the sweep then finds little to do.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

from .async_manager import AsyncSessionManager
from .errors import StoreUnavailable
from .manager import SessionManager

logger = logging.getLogger("huihua.sweeper")
LOCK_KEY = "huihua:sweeper"


class _Lease:
    def __init__(self, interval: float) -> None:
        self.owner = secrets.token_hex(8)
        self.ttl = interval * 2


class Sweeper:
    """The synchronous sweeper: a daemon thread (Django, scripts)."""

    def __init__(
        self, manager: SessionManager, *, interval: float = 60.0, batch_size: int = 1000, pause: float = 0.01
    ) -> None:
        self.manager = manager
        self.interval = interval
        self.batch_size = batch_size
        self.pause = pause
        self._lease = _Lease(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self) -> bool:
        store, now = self.manager.store, self.manager.clock.now()
        if store.kv_get(LOCK_KEY, now=now) == self._lease.owner:
            return store.kv_set(LOCK_KEY, self._lease.owner, now=now, ttl=self._lease.ttl)
        return store.kv_set(LOCK_KEY, self._lease.owner, now=now, ttl=self._lease.ttl, only_if_absent=True)

    def sweep_once(self) -> int:
        """One round: purge everything expired if this process holds the lock."""
        if not self.claim():
            return 0
        total = 0
        while not self._stop.is_set():
            removed = self.manager.purge(batch_size=self.batch_size, max_batches=1)
            total += removed
            if removed < self.batch_size:
                break
            self._stop.wait(self.pause)
        return total

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.sweep_once()
                except StoreUnavailable as exc:
                    logger.warning("sweep skipped: %s", exc)

        self._thread = threading.Thread(target=loop, name="huihua-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.manager.store.kv_delete(LOCK_KEY, if_value=self._lease.owner)


class AsyncSweeper:
    """The asynchronous sweeper: a task on the service's event loop."""

    def __init__(
        self,
        manager: AsyncSessionManager,
        *,
        interval: float = 60.0,
        batch_size: int = 1000,
        pause: float = 0.01,
    ) -> None:
        self.manager = manager
        self.interval = interval
        self.batch_size = batch_size
        self.pause = pause
        self._lease = _Lease(interval)
        self._task: asyncio.Task[None] | None = None

    async def claim(self) -> bool:
        store, now = self.manager.store, self.manager.clock.now()
        if await store.kv_get(LOCK_KEY, now=now) == self._lease.owner:
            return await store.kv_set(LOCK_KEY, self._lease.owner, now=now, ttl=self._lease.ttl)
        return await store.kv_set(
            LOCK_KEY, self._lease.owner, now=now, ttl=self._lease.ttl, only_if_absent=True
        )

    async def sweep_once(self) -> int:
        if not await self.claim():
            return 0
        total = 0
        while True:
            removed = await self.manager.purge(batch_size=self.batch_size, max_batches=1)
            total += removed
            if removed < self.batch_size:
                return total
            await asyncio.sleep(self.pause)  # let requests in between batches

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.sweep_once()
                except StoreUnavailable as exc:
                    logger.warning("sweep skipped: %s", exc)

        self._task = asyncio.get_running_loop().create_task(loop(), name="huihua-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self.manager.store.kv_delete(LOCK_KEY, if_value=self._lease.owner)
        except StoreUnavailable:
            pass
