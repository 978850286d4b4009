"""The store protocol: the few atomic operations the session engine needs, sync and async.

Stores know nothing of HTTP, cookies or WeChat. They receive session keys (never tokens), apply
data deltas atomically, refuse to write a session that is revoked or expired (no resurrection),
and keep the per-user index consistent with the sessions. Every driver error becomes
`StoreUnavailable`; a store never answers "no session" because it failed.
"""

from __future__ import annotations

from typing import Protocol

from .data import DataChanges
from .record import SessionRecord, Timing


class Store(Protocol):
    def create(self, record: SessionRecord) -> None:
        """Insert a new session (and index it under its user)."""

    def get(self, key: str) -> SessionRecord | None:
        """The session under `key`, tombstones and expired ones included; None if absent."""

    def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        """Apply data changes and/or new deadlines atomically, only to a live session.
        None if it is absent, revoked or expired at `now`: nothing is written then."""

    def rotate(
        self, old_key: str, new: SessionRecord, now: float, *, keep_data: bool, max_bytes: int
    ) -> SessionRecord | None:
        """Atomically turn the live session `old_key` into a tombstone and create `new`, carrying
        the old data (merged under `new.data`) when `keep_data`. Of concurrent rotations of one
        session exactly one succeeds; the others get None."""

    def revoke(self, key: str, now: float) -> SessionRecord | None:
        """Make a live session a tombstone; its data is dropped. The record as it was, or None."""

    def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        """Revoke one session of `user_id` by its public id."""

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        """Revoke every live session of `user_id` but `except_id`; the public ids revoked."""

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The live sessions of `user_id`, oldest first."""

    def purge(self, now: float, limit: int) -> int:
        """Delete up to `limit` sessions whose deadline has passed (tombstones too)."""

    def count(self, now: float) -> int:
        """How many live sessions there are."""

    def kv_set(self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False) -> bool:
        """A small expiring key-value space for locks and shared caches (WeChat tokens)."""

    def kv_get(self, key: str, *, now: float) -> str | None: ...

    def kv_delete(self, key: str, *, if_value: str | None = None) -> bool: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class AsyncStore(Protocol):
    """The same operations, awaited; each store ships both twins over one implementation."""

    async def create(self, record: SessionRecord) -> None: ...

    async def get(self, key: str) -> SessionRecord | None: ...

    async def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None: ...

    async def rotate(
        self, old_key: str, new: SessionRecord, now: float, *, keep_data: bool, max_bytes: int
    ) -> SessionRecord | None: ...

    async def revoke(self, key: str, now: float) -> SessionRecord | None: ...

    async def revoke_id(self, user_id: str, session_id: str, now: float) -> bool: ...

    async def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]: ...

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]: ...

    async def purge(self, now: float, limit: int) -> int: ...

    async def count(self, now: float) -> int: ...

    async def kv_set(
        self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False
    ) -> bool: ...

    async def kv_get(self, key: str, *, now: float) -> str | None: ...

    async def kv_delete(self, key: str, *, if_value: str | None = None) -> bool: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
