"""A loaded session: a dict of JSON values that remembers what changed since it was read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime

from .data import JSON, DataChanges, dumps
from .record import SessionRecord


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Session(MutableMapping[str, JSON]):
    """Changes stay local until `SessionManager.save`, which sends only the keys that differ.

    Nested values are compared by their JSON text, so `session["cart"].append(x)` is seen too.
    That text is taken when a list or dict is first handed out (the only way it can change in
    place), not at load: a request that never reads the data never encodes it.
    `incr` queues an atomic increment that the store applies, never a read-modify-write here.
    """

    __slots__ = ("_cleared", "_data", "_incr", "_snapshot", "record", "token")

    def __init__(self, record: SessionRecord, token: str | None = None) -> None:
        self.record = record
        self.token = token  # set only on the object that issued it; never stored
        self._reset(record)

    def _reset(self, record: SessionRecord) -> None:
        self.record = record
        self._data: dict[str, JSON] = dict(record.data)
        self._snapshot: dict[str, str] = {}  # JSON text of stored lists and dicts handed out
        self._incr: dict[str, int] = {}
        self._cleared = False

    # -- the mapping ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> JSON:
        value = self._data[key]
        if (
            isinstance(value, dict | list)
            and key not in self._snapshot
            and value is self.record.data.get(key)
        ):
            self._snapshot[key] = dumps(value)
        return value

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
        stored = self.record.data
        updated = {k: v for k, v in self._data.items() if k not in self._incr and self._differs(k, v, stored)}
        removed = frozenset(k for k in stored if k not in self._data and k not in self._incr)
        return DataChanges(set=updated, unset=removed, incr=dict(self._incr))

    def _differs(self, key: str, value: JSON, stored: Mapping[str, JSON]) -> bool:
        if key not in stored:
            return True
        if key in self._snapshot:  # a stored list or dict that was handed out: compare its text
            return dumps(value) != self._snapshot[key]
        return value is not stored[key] and dumps(value) != dumps(stored[key])

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
