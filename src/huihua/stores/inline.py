"""The async twin of an in-process store: call the sync store inline, never in a thread.

Memory and SQLite operations take microseconds, so a thread hop would cost more than the work.
What must not happen is a blocked event loop: the SQLite store is opened with `raise_busy=True`
and lock waits are retried here with `asyncio.sleep`, up to a deadline, then `StoreUnavailable`.

Every `AsyncStore` method is written out (mypy checks each against the protocol) and hands the
sync store's method to `_inline`, the one place that runs it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..core.data import DataChanges
from ..core.errors import StoreUnavailable
from ..core.record import SessionRecord, Timing
from ..core.store import Store
from .sqlite import Busy

P = ParamSpec("P")
R = TypeVar("R")


class InlineAsyncStore:
    """An `AsyncStore` over a synchronous in-process `Store` (memory, SQLite)."""

    def __init__(self, store: Store, *, busy_deadline: float = 5.0) -> None:
        self.sync = store
        self._busy_deadline = busy_deadline

    async def _inline(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`method(*args, **kwargs)` now; while the database is busy, again after a short sleep."""
        give_up = time.monotonic() + self._busy_deadline
        delay = 0.0005
        while True:
            try:
                return method(*args, **kwargs)
            except Busy as exc:
                if time.monotonic() >= give_up:
                    raise StoreUnavailable(f"store busy for {self._busy_deadline}s") from exc
                await asyncio.sleep(delay * (1 + random.random()))  # noqa: S311 jitter only
                delay = min(delay * 2, 0.05)

    async def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        return await self._inline(self.sync.create, record, max_per_user=max_per_user)

    async def get(self, key: str) -> SessionRecord | None:
        return await self._inline(self.sync.get, key)

    async def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        method = self.sync.update
        return await self._inline(method, key, now, changes=changes, timing=timing, max_bytes=max_bytes)

    async def rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        return await self._inline(
            self.sync.rotate,
            old_key,
            new,
            now,
            keep_data=keep_data,
            max_bytes=max_bytes,
            max_per_user=max_per_user,
        )

    async def revoke(self, key: str, now: float) -> SessionRecord | None:
        return await self._inline(self.sync.revoke, key, now)

    async def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        return await self._inline(self.sync.revoke_id, user_id, session_id, now)

    async def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        return await self._inline(self.sync.revoke_user, user_id, now, except_id=except_id)

    async def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        return await self._inline(self.sync.set_user_blocked, user_id, blocked, now)

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._inline(self.sync.list_user, user_id, now)

    async def purge(self, now: float, limit: int) -> int:
        return await self._inline(self.sync.purge, now, limit)

    async def count(self, now: float) -> int:
        return await self._inline(self.sync.count, now)

    async def kv_set(
        self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False
    ) -> bool:
        return await self._inline(
            self.sync.kv_set, key, value, now=now, ttl=ttl, only_if_absent=only_if_absent
        )

    async def kv_get(self, key: str, *, now: float) -> str | None:
        return await self._inline(self.sync.kv_get, key, now=now)

    async def kv_delete(self, key: str, *, if_value: str | None = None) -> bool:
        return await self._inline(self.sync.kv_delete, key, if_value=if_value)

    async def ping(self) -> None:
        await self._inline(self.sync.ping)

    async def close(self) -> None:
        await self._inline(self.sync.close)
