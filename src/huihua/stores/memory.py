"""An in-process store for tests and single-process development; the reference semantics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from ..core.data import DataChanges, apply_changes
from ..core.record import SessionRecord, Timing


@dataclass(slots=True)
class Mark:
    """A user's revocation mark: sessions stamped with another epoch are dead."""

    epoch: int = 0
    blocked: bool = False
    changed_at: float = 0.0  # shown as the tombstone's revoked_at; never compared


class MemoryStore:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._epochs: dict[str, int] = {}  # session key -> the epoch it was stamped with
        self._users: dict[str, dict[str, str]] = {}  # user -> {session id: key}
        self._marks: dict[str, Mark] = {}
        self._kv: dict[str, tuple[str, float]] = {}
        self._lock = threading.RLock()

    # -- sessions ------------------------------------------------------------------------------
    def _fresh(self, record: SessionRecord) -> bool:
        if record.user_id is None:
            return True
        mark = self._marks.get(record.user_id)
        if mark is None:
            return self._epochs.get(record.key, 0) == 0
        return not mark.blocked and self._epochs.get(record.key, 0) == mark.epoch

    def _insert(self, record: SessionRecord) -> None:
        if record.key in self._sessions:
            raise ValueError("duplicate session key")
        self._sessions[record.key] = record
        if record.user_id is not None:
            self._epochs[record.key] = self._marks.get(record.user_id, Mark()).epoch
            self._users.setdefault(record.user_id, {})[record.id] = record.key

    def _cap(self, record: SessionRecord, now: float, max_per_user: int | None) -> list[str]:
        """Revoke the least recently used others beyond `max_per_user`; their public ids."""
        if max_per_user is None or record.user_id is None:
            return []
        others = [
            r
            for r in (self._live(k, now) for k in self._users.get(record.user_id, {}).values())
            if r is not None and r.key != record.key
        ]
        others.sort(key=lambda r: (r.last_seen_at, r.created_at, r.id))
        extra = others[: max(0, len(others) + 1 - max_per_user)]
        for r in extra:
            self._tombstone(r, now)
        return [r.id for r in extra]

    def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        with self._lock:
            self._insert(record)
            return self._cap(record, record.last_seen_at, max_per_user)

    def get(self, key: str) -> SessionRecord | None:
        record = self._sessions.get(key)
        if record is None or record.revoked_at is not None or record.user_id is None:
            return record
        with self._lock:
            if self._fresh(record):
                return record
            mark = self._marks.get(record.user_id, Mark())
            return replace(record, data={}, revoked_at=mark.changed_at)

    def _live(self, key: str, now: float) -> SessionRecord | None:
        record = self._sessions.get(key)
        ok = record is not None and record.is_live(now) and self._fresh(record)
        return record if ok else None

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
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        with self._lock:
            old = self._live(old_key, now)
            if old is None:
                return None
            if keep_data:
                merged = apply_changes(old.data, DataChanges(set=new.data), max_bytes=max_bytes)
                new = replace(new, data=merged)
            self._tombstone(old, now)
            self._insert(new)
            return new, self._cap(new, now, max_per_user)

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

    def _revoke_indexed(self, user_id: str, now: float, except_id: str | None) -> list[str]:
        revoked = []
        for session_id, key in list(self._users.get(user_id, {}).items()):
            if session_id != except_id and self.revoke(key, now) is not None:
                revoked.append(session_id)
        return revoked

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        with self._lock:
            revoked = self._revoke_indexed(user_id, now, except_id)
            kept = self._users.get(user_id, {}).get(except_id or "")
            keep = kept is not None and self._live(kept, now) is not None
            mark = self._marks.setdefault(user_id, Mark())
            mark.epoch, mark.changed_at = mark.epoch + 1, now
            if keep and kept is not None:
                self._epochs[kept] = mark.epoch
            return revoked

    def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        with self._lock:
            revoked = self._revoke_indexed(user_id, now, None) if blocked else []
            mark = self._marks.setdefault(user_id, Mark())
            mark.epoch, mark.blocked, mark.changed_at = mark.epoch + 1, blocked, now
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
                self._epochs.pop(key, None)
                if record.user_id is not None:
                    index = self._users.get(record.user_id, {})
                    if index.get(record.id) == key:
                        index.pop(record.id, None)
                    if not index:
                        self._users.pop(record.user_id, None)
            return len(dead)

    def count(self, now: float) -> int:
        with self._lock:
            return sum(1 for r in self._sessions.values() if r.is_live(now) and self._fresh(r))

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
