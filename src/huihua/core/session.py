"""A loaded session: a dict of JSON values that remembers what changed since it was read."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime

from .data import JSON, DataChanges, dumps
from .record import SessionRecord


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Session(MutableMapping[str, JSON]):
    """Changes stay local until `SessionManager.save`, which sends only the keys that differ.

    Nested values are compared by their JSON text, so `session["cart"].append(x)` is seen too.
    `incr` queues an atomic increment that the store applies, never a read-modify-write here.
    """

    __slots__ = ("_cleared", "_data", "_incr", "_snapshot", "record", "token")

    def __init__(self, record: SessionRecord, token: str | None = None) -> None:
        self.record = record
        self.token = token  # set only on the object that issued it; never stored
        self._reset(record)

    def _reset(self, record: SessionRecord) -> None:
        self.record = record
        self._data: dict[str, JSON] = {k: v for k, v in record.data.items()}
        self._snapshot = {k: dumps(v) for k, v in record.data.items()}
        self._incr: dict[str, int] = {}
        self._cleared = False

    # -- the mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> JSON:
        return self._data[key]

    def __setitem__(self, key: str, value: JSON) -> None:
        dumps(value)  # fail at the assignment, not at save time
        self._incr.pop(key, None)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self._incr.pop(key, None)
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self._incr.clear()
        self._cleared = True

    def incr(self, key: str, by: int = 1) -> None:
        """Queue an atomic increment; the new value is visible after save."""
        self._incr[key] = self._incr.get(key, 0) + by

    # -- what changed --------------------------------------------------------------------------
    def changes(self) -> DataChanges:
        if self._cleared:
            return DataChanges(set=dict(self._data), incr=dict(self._incr), clear=True)
        updated = {
            k: v for k, v in self._data.items() if k not in self._incr and self._snapshot.get(k) != dumps(v)
        }
        removed = frozenset(k for k in self._snapshot if k not in self._data and k not in self._incr)
        return DataChanges(set=updated, unset=removed, incr=dict(self._incr))

    @property
    def modified(self) -> bool:
        return bool(self.changes())

    # -- what the store said -------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def user_id(self) -> str | None:
        return self.record.user_id

    @property
    def client(self) -> str:
        return self.record.client

    @property
    def created_at(self) -> datetime:
        return _at(self.record.created_at)

    @property
    def last_seen_at(self) -> datetime:
        return _at(self.record.timing.last_seen_at)

    @property
    def idle_expires_at(self) -> datetime | None:
        idle = self.record.timing.idle_expires_at
        return None if idle is None else _at(idle)

    @property
    def expires_at(self) -> datetime:
        return _at(self.record.expires_at)

    @property
    def absolute_expires_at(self) -> datetime:
        return _at(self.record.timing.absolute_expires_at)

    @property
    def persistent(self) -> bool:
        return self.record.timing.persistent

    def __repr__(self) -> str:  # never the token
        return f"<Session id={self.id} user={self.user_id!r} client={self.client} keys={len(self)}>"
