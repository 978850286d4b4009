"""The store protocol: the few atomic operations the session engine needs, sync and async.

Stores know nothing of HTTP, cookies or WeChat. They receive session keys (never tokens), apply
data deltas atomically, refuse to write a session that is revoked or expired (no resurrection),
and keep the per-user index consistent with the sessions. Every driver error becomes
`StoreUnavailable`; a store never answers "no session" because it failed.

Revocation does not depend on the index: each user has a *mark*, an integer epoch (absent = 0)
and a blocked flag, kept where nothing expires or evicts it. The store stamps every user session
with the epoch current when it is created or rotated, inside that same atomic operation. A user
session is live only if it is not revoked, not expired, its epoch equals its user's epoch and
the user is not blocked; `get` reports a stale one as a tombstone (`revoked_at` set, no data),
and no write touches it. `revoke_user` and `set_user_blocked` bump the epoch, so every older
session of the user is dead even if the index lost it. Anonymous sessions have no mark.

`max_per_user` (create, rotate): when the new session would leave its user with more live
sessions than this, the least recently used others (by `last_seen_at`) are revoked in the same
atomic operation; their public ids are returned so the engine can report them.
"""

from __future__ import annotations

from typing import Protocol

from .data import DataChanges
from .record import SessionRecord, Timing


class Store(Protocol):
    def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        """Insert a new session (index it under its user, stamp the user's epoch); the public
        ids of sessions revoked to keep `max_per_user`."""

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
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        """Atomically turn the live session `old_key` into a tombstone and create `new`, carrying
        the old data (merged under `new.data`) when `keep_data`. Of concurrent rotations of one
        session exactly one succeeds; the others get None. The new record and the public ids
        revoked to keep `max_per_user`."""

    def revoke(self, key: str, now: float) -> SessionRecord | None:
        """Make a live session a tombstone; its data is dropped. The record as it was, or None."""

    def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        """Revoke one session of `user_id` by its public id."""

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        """Bump the user's epoch (re-stamping the live session `except_id`, which survives), then
        tombstone the indexed live sessions; the public ids revoked. Sessions the index lost are
        dead too (their epoch is old), but not listed."""

    def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        """Block (or unblock) a user: bump the epoch and set the flag. While blocked, no session
        of the user is live, including one created meanwhile; unblocking does not revive any.
        Blocking tombstones the indexed live sessions; the public ids revoked."""

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

    async def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]: ...

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
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None: ...

    async def revoke(self, key: str, now: float) -> SessionRecord | None: ...

    async def revoke_id(self, user_id: str, session_id: str, now: float) -> bool: ...

    async def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]: ...

    async def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]: ...

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
