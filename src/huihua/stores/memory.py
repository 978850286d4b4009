"""An in-process store for tests and single-process development; the reference semantics."""

from __future__ import annotations

import threading
from dataclasses import replace

from ..core.data import DataChanges, apply_changes
from ..core.record import SessionRecord, Timing


class MemoryStore:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._users: dict[str, dict[str, str]] = {}  # user -> {session id: key}
        self._kv: dict[str, tuple[str, float]] = {}
        self._lock = threading.RLock()

    # -- sessions ------------------------------------------------------------------------------
    def create(self, record: SessionRecord) -> None:
        with self._lock:
            if record.key in self._sessions:
                raise ValueError("duplicate session key")
            self._sessions[record.key] = record
            if record.user_id is not None:
                self._users.setdefault(record.user_id, {})[record.id] = record.key

    def get(self, key: str) -> SessionRecord | None:
        return self._sessions.get(key)

    def _live(self, key: str, now: float) -> SessionRecord | None:
        record = self._sessions.get(key)
        return record if record is not None and record.is_live(now) else None

    def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        with self._lock:
            record = self._live(key, now)
            if record is None:
                return None
            data = apply_changes(record.data, changes, max_bytes=max_bytes) if changes else record.data
            updated = replace(record, data=data, timing=timing or record.timing, version=record.version + 1)
            self._sessions[key] = updated
            return updated

    def _tombstone(self, record: SessionRecord, now: float) -> None:
        self._sessions[record.key] = replace(record, data={}, revoked_at=now, version=record.version + 1)
        if record.user_id is not None:
            index = self._users.get(record.user_id, {})
            index.pop(record.id, None)
            if not index:
                self._users.pop(record.user_id, None)

    def rotate(
        self, old_key: str, new: SessionRecord, now: float, *, keep_data: bool, max_bytes: int
    ) -> SessionRecord | None:
        with self._lock:
            old = self._live(old_key, now)
            if old is None:
                return None
            if keep_data:
                merged = apply_changes(old.data, DataChanges(set=new.data), max_bytes=max_bytes)
                new = replace(new, data=merged)
            self._tombstone(old, now)
            self.create(new)
            return new

    def revoke(self, key: str, now: float) -> SessionRecord | None:
        with self._lock:
            record = self._live(key, now)
            if record is not None:
                self._tombstone(record, now)
            return record

    def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        with self._lock:
            key = self._users.get(user_id, {}).get(session_id)
            return key is not None and self.revoke(key, now) is not None

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        with self._lock:
            revoked = []
            for session_id, key in list(self._users.get(user_id, {}).items()):
                if session_id != except_id and self.revoke(key, now) is not None:
                    revoked.append(session_id)
            return revoked

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        with self._lock:
            keys = self._users.get(user_id, {}).values()
            live = [r for k in keys if (r := self._live(k, now)) is not None]
            return sorted(live, key=lambda r: (r.created_at, r.id))

    def purge(self, now: float, limit: int) -> int:
        with self._lock:
            dead = [k for k, r in self._sessions.items() if r.expires_at <= now][:limit]
            for key in dead:
                record = self._sessions.pop(key)
                if record.user_id is not None and record.revoked_at is None:
                    index = self._users.get(record.user_id, {})
                    index.pop(record.id, None)
                    if not index:
                        self._users.pop(record.user_id, None)
            return len(dead)

    def count(self, now: float) -> int:
        return sum(1 for r in list(self._sessions.values()) if r.is_live(now))

    # -- small key-value space -----------------------------------------------------------------
    def kv_set(self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False) -> bool:
        with self._lock:
            if only_if_absent and self.kv_get(key, now=now) is not None:
                return False
            self._kv[key] = (value, now + ttl)
            return True

    def kv_get(self, key: str, *, now: float) -> str | None:
        entry = self._kv.get(key)
        return entry[0] if entry is not None and now < entry[1] else None

    def kv_delete(self, key: str, *, if_value: str | None = None) -> bool:
        with self._lock:
            entry = self._kv.get(key)
            if entry is None or (if_value is not None and entry[0] != if_value):
                return False
            del self._kv[key]
            return True

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
