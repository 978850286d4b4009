"""The store protocol's methods, written once for the stores whose operations are generators.

Redis and PostgreSQL write each operation once, as a generator (`_create`, `_get`, ...) that
yields I/O steps; their sync and async twins differ only in `_run`, which performs the steps.
These mixins turn every protocol method into `self._run(self._<operation>(...))`, for both.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol, TypeVar

from ..core.data import DataChanges
from ..core.record import SessionRecord, Timing

T = TypeVar("T")
G = Generator[Any, Any, T]


class Operations(Protocol):
    """What a store base provides: one generator per operation."""

    def _create(self, record: SessionRecord, max_per_user: int | None) -> G[list[str]]: ...
    def _get(self, key: str) -> G[SessionRecord | None]: ...
    def _update(
        self, key: str, now: float, changes: DataChanges | None, timing: Timing | None, max_bytes: int
    ) -> G[SessionRecord | None]: ...
    def _rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        keep_data: bool,
        max_bytes: int,
        *,
        max_per_user: int | None,
    ) -> G[tuple[SessionRecord, list[str]] | None]: ...
    def _revoke(self, key: str, now: float) -> G[SessionRecord | None]: ...
    def _revoke_id(self, user_id: str, session_id: str, now: float) -> G[bool]: ...
    def _revoke_user(self, user_id: str, now: float, except_id: str | None) -> G[list[str]]: ...
    def _set_user_blocked(self, user_id: str, blocked: bool, now: float) -> G[list[str]]: ...
    def _list_user(self, user_id: str, now: float) -> G[list[SessionRecord]]: ...
    def _purge(self, now: float, limit: int) -> G[int]: ...
    def _count(self, now: float) -> G[int]: ...
    def _kv_set(self, key: str, value: str, now: float, ttl: float, only_if_absent: bool) -> G[bool]: ...
    def _kv_get(self, key: str, now: float) -> G[str | None]: ...
    def _kv_delete(self, key: str, if_value: str | None) -> G[bool]: ...
    def _ping(self) -> G[None]: ...


class SyncOperations(Operations, Protocol):
    def _run(self, flow: G[T]) -> T: ...


class AsyncOperations(Operations, Protocol):
    async def _run(self, flow: G[T]) -> T: ...


class FlowStore:
    """The synchronous `Store` methods."""

    def create(self: SyncOperations, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        return self._run(self._create(record, max_per_user))

    def get(self: SyncOperations, key: str) -> SessionRecord | None:
        return self._run(self._get(key))

    def update(
        self: SyncOperations,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        return self._run(self._update(key, now, changes, timing, max_bytes))

    def rotate(
        self: SyncOperations,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        return self._run(self._rotate(old_key, new, now, keep_data, max_bytes, max_per_user=max_per_user))

    def revoke(self: SyncOperations, key: str, now: float) -> SessionRecord | None:
        return self._run(self._revoke(key, now))

    def revoke_id(self: SyncOperations, user_id: str, session_id: str, now: float) -> bool:
        return self._run(self._revoke_id(user_id, session_id, now))

    def revoke_user(
        self: SyncOperations, user_id: str, now: float, *, except_id: str | None = None
    ) -> list[str]:
        return self._run(self._revoke_user(user_id, now, except_id))

    def set_user_blocked(self: SyncOperations, user_id: str, blocked: bool, now: float) -> list[str]:
        return self._run(self._set_user_blocked(user_id, blocked, now))

    def list_user(self: SyncOperations, user_id: str, now: float) -> list[SessionRecord]:
        return self._run(self._list_user(user_id, now))

    def purge(self: SyncOperations, now: float, limit: int) -> int:
        return self._run(self._purge(now, limit))

    def count(self: SyncOperations, now: float) -> int:
        return self._run(self._count(now))

    def kv_set(
        self: SyncOperations, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False
    ) -> bool:
        return self._run(self._kv_set(key, value, now, ttl, only_if_absent))

    def kv_get(self: SyncOperations, key: str, *, now: float) -> str | None:
        return self._run(self._kv_get(key, now))

    def kv_delete(self: SyncOperations, key: str, *, if_value: str | None = None) -> bool:
        return self._run(self._kv_delete(key, if_value))

    def ping(self: SyncOperations) -> None:
        self._run(self._ping())


class AsyncFlowStore:
    """The asynchronous `AsyncStore` methods."""

    async def create(
        self: AsyncOperations, record: SessionRecord, *, max_per_user: int | None = None
    ) -> list[str]:
        return await self._run(self._create(record, max_per_user))

    async def get(self: AsyncOperations, key: str) -> SessionRecord | None:
        return await self._run(self._get(key))

    async def update(
        self: AsyncOperations,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        return await self._run(self._update(key, now, changes, timing, max_bytes))

    async def rotate(
        self: AsyncOperations,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        return await self._run(
            self._rotate(old_key, new, now, keep_data, max_bytes, max_per_user=max_per_user)
        )

    async def revoke(self: AsyncOperations, key: str, now: float) -> SessionRecord | None:
        return await self._run(self._revoke(key, now))

    async def revoke_id(self: AsyncOperations, user_id: str, session_id: str, now: float) -> bool:
        return await self._run(self._revoke_id(user_id, session_id, now))

    async def revoke_user(
        self: AsyncOperations, user_id: str, now: float, *, except_id: str | None = None
    ) -> list[str]:
        return await self._run(self._revoke_user(user_id, now, except_id))

    async def set_user_blocked(self: AsyncOperations, user_id: str, blocked: bool, now: float) -> list[str]:
        return await self._run(self._set_user_blocked(user_id, blocked, now))

    async def list_user(self: AsyncOperations, user_id: str, now: float) -> list[SessionRecord]:
        return await self._run(self._list_user(user_id, now))

    async def purge(self: AsyncOperations, now: float, limit: int) -> int:
        return await self._run(self._purge(now, limit))

    async def count(self: AsyncOperations, now: float) -> int:
        return await self._run(self._count(now))

    async def kv_set(
        self: AsyncOperations, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False
    ) -> bool:
        return await self._run(self._kv_set(key, value, now, ttl, only_if_absent))

    async def kv_get(self: AsyncOperations, key: str, *, now: float) -> str | None:
        return await self._run(self._kv_get(key, now))

    async def kv_delete(self: AsyncOperations, key: str, *, if_value: str | None = None) -> bool:
        return await self._run(self._kv_delete(key, if_value))

    async def ping(self: AsyncOperations) -> None:
        await self._run(self._ping())
